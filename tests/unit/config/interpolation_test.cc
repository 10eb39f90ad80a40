#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "config/config.h"

namespace tributary::config {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(InterpolationTest, ReplacesVariablesDefaultsAndDollars) {
  Diagnostics diag;
  auto env = FakeEnv({{"HOST", "db1"}, {"EMPTY", ""}});
  EXPECT_EQ(Interpolate("a: ${HOST}\nb: ${MISSING:-x y}\nc: ${EMPTY:-d}\nd: ${EMPTY-d}\ne: $$5 and $x\n", "f", env, &diag),
            "a: db1\nb: x y\nc: d\nd: \ne: $5 and $x\n");
  EXPECT_FALSE(diag.has_errors()) << diag.ToString();
}

// A default or a message is interpolated in turn, and only when it is used.
TEST(InterpolationTest, ADefaultMayItselfReferToAVariable) {
  Diagnostics diag;
  const std::string text = "a: ${A:-${B:-x}}\nb: \"${A:-pre-${B:-x}-post}\"\nc: ${A:-$$HOME}\nd: ${A:-${B:?need B}}\n";
  // A reference that failed leaves an empty string (on its own line, where
  // the schema's error about it is dropped).
  EXPECT_EQ(Interpolate(text, "f", FakeEnv({}), &diag), "a: x\nb: \"pre-x-post\"\nc: $HOME\nd: \"\"\n");
  ASSERT_EQ(diag.error_count(), 1u) << diag.ToString();
  EXPECT_EQ(diag.all()[0].location.ToString(), "f:4:9");  // the ${B:?...} inside the default
  EXPECT_NE(diag.all()[0].message.find("B is required: need B"), std::string::npos) << diag.ToString();

  Diagnostics with_b;
  EXPECT_EQ(Interpolate(text, "f", FakeEnv({{"B", "b"}}), &with_b), "a: b\nb: \"pre-b-post\"\nc: $HOME\nd: b\n");
  EXPECT_FALSE(with_b.has_errors()) << with_b.ToString();

  Diagnostics with_a;  // the default is not looked at: no error for B
  EXPECT_EQ(Interpolate(text, "f", FakeEnv({{"A", "a"}}), &with_a), "a: a\nb: \"a\"\nc: a\nd: a\n");
  EXPECT_FALSE(with_a.has_errors()) << with_a.ToString();

  Diagnostics bad;
  Interpolate("k: ${A:-${B}}\nl: ${A:-${B:-x}\n", "f", FakeEnv({}), &bad);
  ASSERT_EQ(bad.error_count(), 2u) << bad.ToString();
  EXPECT_EQ(bad.all()[0].location.ToString(), "f:1:9");
  EXPECT_NE(bad.all()[0].message.find("B is not set"), std::string::npos) << bad.ToString();
  EXPECT_EQ(bad.all()[1].location.ToString(), "f:2:4");
  EXPECT_NE(bad.all()[1].message.find("unterminated"), std::string::npos) << bad.ToString();
}

// What docs/reference/global.md says of an empty value: standing alone it
// leaves nothing, which YAML reads as null (an option that may be left out
// is then not set); quoted, it is the empty string.
TEST(InterpolationTest, AnEmptyValueAloneIsNullAndQuotedIsEmpty) {
  Diagnostics diag;
  auto env = FakeEnv({{"EMPTY", ""}});
  YAML::Node n = YAML::Load(Interpolate("a: ${EMPTY}\nb: ${EMPTY-d}\nc: ${MISSING:-}\nd: \"${EMPTY}\"\n"
                                        "e: '${EMPTY-d}'\nf: [${EMPTY}]\n",
                                        "f", env, &diag));
  EXPECT_FALSE(diag.has_errors()) << diag.ToString();
  EXPECT_TRUE(n["a"].IsNull());
  EXPECT_TRUE(n["b"].IsNull());
  EXPECT_TRUE(n["c"].IsNull());
  ASSERT_TRUE(n["d"].IsScalar());
  EXPECT_EQ(n["d"].Scalar(), "");
  ASSERT_TRUE(n["e"].IsScalar());
  EXPECT_EQ(n["e"].Scalar(), "");
  EXPECT_EQ(n["f"].size(), 0u);
}

// Without the colon, as in the shell, only an unset variable takes the
// default or is an error: one set to "" is used as it is.
TEST(InterpolationTest, WithoutTheColonOnlyAnUnsetVariableCounts) {
  Diagnostics diag;
  auto env = FakeEnv({{"EMPTY", ""}, {"SET", "v"}});
  EXPECT_EQ(Interpolate("a: ${MISSING-d}\nb: ${EMPTY-d}\nc: ${SET-d}\nd: ${EMPTY?need it}\ne: ${SET?need it}\n", "f",
                        env, &diag),
            "a: d\nb: \nc: v\nd: \ne: v\n");
  EXPECT_FALSE(diag.has_errors()) << diag.ToString();
  Diagnostics missing;
  Interpolate("x: 1\ny: ${MISSING?set MISSING}\nz: ${EMPTY:?set EMPTY}\n", "f", env, &missing);
  ASSERT_EQ(missing.error_count(), 2u) << missing.ToString();
  EXPECT_EQ(missing.all()[0].location.ToString(), "f:2:4");
  EXPECT_NE(missing.all()[0].message.find("MISSING is required: set MISSING"), std::string::npos) << missing.ToString();
  EXPECT_EQ(missing.all()[1].location.ToString(), "f:3:4");
  EXPECT_NE(missing.all()[1].message.find("EMPTY is required: set EMPTY"), std::string::npos) << missing.ToString();
}

TEST(InterpolationTest, RequiredVariableErrorNamesLineAndColumn) {
  Diagnostics diag;
  Interpolate("x: 1\npassword: ${ES_PASSWORD:?set the Elasticsearch password}\n", "conf.yaml", FakeEnv({}), &diag);
  ASSERT_EQ(diag.error_count(), 1u);
  const auto& d = diag.all()[0];
  EXPECT_EQ(d.location.ToString(), "conf.yaml:2:11");
  EXPECT_NE(d.message.find("ES_PASSWORD"), std::string::npos);
  EXPECT_NE(d.message.find("set the Elasticsearch password"), std::string::npos);
}

TEST(InterpolationTest, UnsetPlainVariableIsAnErrorWithAHint) {
  Diagnostics diag;
  Interpolate("a: ${NOPE}\n", "f", FakeEnv({}), &diag);
  ASSERT_EQ(diag.error_count(), 1u);
  EXPECT_NE(diag.all()[0].hint.find("${NOPE:-"), std::string::npos);
}

// One mistake, one error: the value a failed reference left empty gave a
// second one ("must be one of: ... (got \"\")"), at the next line.
TEST(InterpolationTest, AFailedReferenceIsOneErrorNotAlsoOneAboutTheEmptyValue) {
  Diagnostics diag;
  auto cfg = LoadConfigFromStrings({{"f.yaml", "sources:\n  demo:\n    type: demo_logs\n    format: ${NOPE}\n"
                                                "sinks: { out: { type: blackhole, inputs: [demo] } }\n"}},
                                   &diag, LoadOptions{FakeEnv({}), true});
  EXPECT_FALSE(cfg);
  ASSERT_EQ(diag.error_count(), 1u) << diag.ToString();
  EXPECT_EQ(diag.all()[0].location.ToString(), "f.yaml:4:13");
  EXPECT_NE(diag.all()[0].message.find("environment variable NOPE is not set"), std::string::npos) << diag.ToString();
}

TEST(InterpolationTest, SkipsCommentLinesAndRejectsNewlinesAndBadSyntax) {
  Diagnostics diag;
  auto env = FakeEnv({{"BAD", "a\nb: c"}});
  EXPECT_EQ(Interpolate("# uses ${NOT_SET}\nk: v\n", "f", env, &diag), "# uses ${NOT_SET}\nk: v\n");
  EXPECT_FALSE(diag.has_errors());
  Interpolate("k: ${BAD}\n", "f", env, &diag);
  Interpolate("k: ${1X}\n", "f", env, &diag);
  Interpolate("k: ${OPEN\n", "f", env, &diag);
  EXPECT_EQ(diag.error_count(), 3u) << diag.ToString();
}

TEST(InterpolationTest, SecretValuesNeverAppearInErrors) {
  Diagnostics diag;
  auto env = FakeEnv({{"SECRET", "hunter2"}});
  std::string text = Interpolate("sinks:\n  x:\n    type: nope\n    password: ${SECRET}\n", "f", env, &diag);
  auto cfg = LoadConfigFromStrings({{"f", "sinks:\n  x:\n    type: nope\n    password: ${SECRET}\n"}}, &diag,
                                   LoadOptions{env, true});
  EXPECT_FALSE(cfg.has_value());
  EXPECT_EQ(diag.ToString().find("hunter2"), std::string::npos) << diag.ToString();
}

// A value reads back exactly as the variable holds it, wherever the
// reference stands: YAML's quotes, comments and brackets do not leak in.
TEST(InterpolationTest, AValueReadsBackAsTheVariableHoldsItWhateverItsCharacters) {
  const std::vector<std::string> values = {"abc\"def", "ab\\qcd", "#secret", "*secret", "se: cret", "it's", "a, b]",
                                           "x #y", "null", "- item", "plain"};
  for (const std::string& v : values) {
    Diagnostics diag;
    const std::string text = Interpolate(
        "a: ${V}\nb: \"${V}\"\nc: '${V}'\nd: { k: ${V}, k2: \"${V}\" }\ne: [ ${V} ]\nf:\n  - ${V}  # note\n", "f",
        FakeEnv({{"V", v}}), &diag);
    ASSERT_FALSE(diag.has_errors()) << diag.ToString();
    YAML::Node n;
    ASSERT_NO_THROW(n = YAML::Load(text)) << v << " gave:\n" << text;
    EXPECT_EQ(n["a"].Scalar(), v) << text;
    EXPECT_EQ(n["b"].Scalar(), v) << text;
    EXPECT_EQ(n["c"].Scalar(), v) << text;
    EXPECT_EQ(n["d"]["k"].Scalar(), v) << text;
    EXPECT_EQ(n["d"]["k2"].Scalar(), v) << text;
    ASSERT_TRUE(n["e"].IsSequence()) << text;
    EXPECT_EQ(n["e"][0].Scalar(), v) << text;
    EXPECT_EQ(n["f"][0].Scalar(), v) << text;
  }
}

TEST(InterpolationTest, PartOfAValueAListAndABlockScalarGoInAsWritten) {
  Diagnostics diag;
  auto env = FakeEnv({{"HOST", "es1"}, {"LIST", "[a, b]"}, {"Q", "x\"y"}});
  EXPECT_EQ(Interpolate("u: http://${HOST}:9200\ni: ${LIST}\nr: |\n  ${Q} \"${Q}\" # ${Q}\nn: ${Q}\n", "f", env, &diag),
            "u: http://es1:9200\ni: [a, b]\nr: |\n  x\"y \"x\"y\" # x\"y\nn: x\"y\n");
  EXPECT_FALSE(diag.has_errors()) << diag.ToString();
}

TEST(InterpolationTest, CommentsAtTheEndOfALineAreNotInterpolated) {
  Diagnostics diag;
  EXPECT_EQ(Interpolate("k: v  # uses ${NOT_SET}\nq: \"a # ${X}\"\n", "f", FakeEnv({{"X", "1"}}), &diag),
            "k: v  # uses ${NOT_SET}\nq: \"a # 1\"\n");
  EXPECT_FALSE(diag.has_errors()) << diag.ToString();
}

// An error after or in a substituted value points at the file as written,
// and names the variable rather than showing its value.
TEST(InterpolationTest, ErrorsPointAtTheFileAsWrittenAndNameTheVariableNotItsValue) {
  Diagnostics diag;
  auto env = FakeEnv({{"FMT", std::string(80, 'j')}, {"PW", "hunter2secret"}});
  auto cfg = LoadConfigFromStrings(
      {{"f",
        "sources:\n"
        "  d: { type: demo_logs, format: \"${FMT}\", count: many }\n"
        "sinks:\n"
        "  out:\n"
        "    type: elasticsearch\n"
        "    inputs: [d]\n"
        "    endpoints: [\"http://127.0.0.1:1\"]\n"
        "    compression: ${PW}\n"}},
      &diag, LoadOptions{env, true});
  EXPECT_FALSE(cfg.has_value());
  const std::string all = diag.ToString();
  EXPECT_EQ(all.find("hunter2secret"), std::string::npos) << all;
  bool count = false, compression = false;
  for (const Diagnostic& d : diag.all()) {
    if (d.message.find("count") != std::string::npos) {
      count = true;
      EXPECT_EQ(d.location.ToString(), "f:2:50") << d.ToString();
    }
    if (d.message.find("compression") != std::string::npos) {
      compression = true;
      EXPECT_EQ(d.location.ToString(), "f:8:18") << d.ToString();
      EXPECT_NE(d.ToString().find("${PW}"), std::string::npos) << d.ToString();
    }
  }
  EXPECT_TRUE(count && compression) << all;
}

// A value that starts with `[` or `{` goes in as YAML: a password such as
// `[s3cr3t` broke the syntax with a hint about a bracket "opened at 9:49"
// that the file does not have there. The hint names the variable and the
// fix, and the location is in the file as written.
TEST(InterpolationTest, ASyntaxErrorFromASubstitutedValueNamesTheVariable) {
  for (const std::string pw : {"[s3cr3t", "{s3cr3t"}) {
    Diagnostics diag;
    auto cfg = LoadConfigFromStrings(
        {{"f",
          "sources:\n"
          "  d: { type: demo_logs }\n"
          "sinks:\n"
          "  out: { type: elasticsearch, inputs: [d], endpoints: [\"http://e:9200\"], "
          "auth: { strategy: basic, user: u, password: ${PW} } }\n"}},
        &diag, LoadOptions{FakeEnv({{"PW", pw}}), true});
    EXPECT_FALSE(cfg.has_value());
    ASSERT_EQ(diag.error_count(), 1u) << diag.ToString();
    const Diagnostic& d = diag.all()[0];
    EXPECT_NE(d.message.find("YAML syntax error"), std::string::npos) << d.ToString();
    EXPECT_EQ(d.hint.rfind(std::string("the value of `${PW}` starts with `") + pw[0] + "`, so it is read as YAML", 0),
              0u)
        << d.ToString();
    EXPECT_NE(d.hint.find("quote it: \"${PW}\""), std::string::npos) << d.ToString();
    EXPECT_EQ(d.ToString().find("s3cr3t"), std::string::npos) << d.ToString();
    EXPECT_GE(d.location.line, 4) << d.ToString();  // at the value, or where YAML gave up
  }
}

}  // namespace
}  // namespace tributary::config
