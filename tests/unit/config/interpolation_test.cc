#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tributary::config
