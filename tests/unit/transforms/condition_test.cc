#include "transforms/condition.h"

#include <gtest/gtest.h>

namespace tributary {
namespace {

struct Parsed {
  std::optional<Condition> cond;
  std::string errors;
};

Parsed ParseText(const std::string& yaml) {
  config::Diagnostics diag;
  Parsed p;
  p.cond = Condition::Parse(YAML::Load(yaml), config::ParseContext{&diag, "c.yaml", "condition"});
  p.errors = diag.ToString();
  return p;
}

bool Match(const std::string& yaml, const Event& e) {
  auto p = ParseText(yaml);
  EXPECT_TRUE(p.cond.has_value()) << p.errors;
  return p.cond && p.cond->Matches(e);
}

Event Sample() {
  Event e;
  e.set("status", Value(int64_t{503}));
  e.set("latency", Value(0.25));
  e.set("path", Value("/api/users"));
  e.set("code", Value("404"));
  e.set("ok", Value(false));
  e.set("nothing", Value());
  e.set("tags", Value(Array{Value("a"), Value(int64_t{2})}));
  e.set("http.method", Value("GET"));
  Timestamp t;
  ParseRfc3339("2024-05-01T12:00:00Z", &t);
  e.set("timestamp", Value(t));
  return e;
}

TEST(ConditionTest, Comparisons) {
  Event e = Sample();
  EXPECT_TRUE(Match("{field: status, eq: 503}", e));
  EXPECT_FALSE(Match("{field: status, eq: 500}", e));
  EXPECT_TRUE(Match("{field: status, ne: 500}", e));
  EXPECT_TRUE(Match("{field: status, eq: 503.0}", e));
  EXPECT_TRUE(Match("{field: status, gte: 500, lt: 600}", e));
  EXPECT_FALSE(Match("{field: status, gt: 503}", e));
  EXPECT_TRUE(Match("{field: status, lte: 503}", e));
  EXPECT_TRUE(Match("{field: latency, gt: 0.2}", e));
  EXPECT_TRUE(Match("{field: latency, lt: 1}", e));
  EXPECT_TRUE(Match("{field: code, eq: 404}", e));  // numeric string vs number
  EXPECT_TRUE(Match("{field: code, gte: 400}", e));
  EXPECT_TRUE(Match("{field: code, eq: '404'}", e));
  EXPECT_TRUE(Match("{field: path, eq: /api/users}", e));
  EXPECT_TRUE(Match("{field: path, gt: /api/a}", e));  // strings order lexically
  EXPECT_TRUE(Match("{field: ok, eq: false}", e));
  EXPECT_TRUE(Match("{field: nothing, eq: null}", e));
  EXPECT_TRUE(Match("{field: http.method, eq: GET}", e));
  EXPECT_TRUE(Match("{field: timestamp, gt: '2024-01-01T00:00:00Z'}", e));
  EXPECT_FALSE(Match("{field: timestamp, lt: '2024-01-01T00:00:00+00:00'}", e));
  EXPECT_TRUE(Match("{field: timestamp, eq: '2024-05-01T14:00:00+02:00'}", e));
}

TEST(ConditionTest, MatchesExistsContains) {
  Event e = Sample();
  EXPECT_TRUE(Match("{field: path, matches: '^/api/'}", e));
  EXPECT_FALSE(Match("{field: path, matches: '^/web/'}", e));
  EXPECT_TRUE(Match("{field: status, matches: '^5\\d\\d$'}", e));  // non-strings match on their text
  EXPECT_TRUE(Match("{field: path, exists: true}", e));
  EXPECT_TRUE(Match("{field: missing, exists: false}", e));
  EXPECT_FALSE(Match("{field: missing, exists: true}", e));
  EXPECT_TRUE(Match("{field: path, contains: users}", e));
  EXPECT_FALSE(Match("{field: path, contains: admin}", e));
  EXPECT_TRUE(Match("{field: tags, contains: a}", e));
  EXPECT_TRUE(Match("{field: tags, contains: 2}", e));
  EXPECT_FALSE(Match("{field: tags, contains: b}", e));
}

TEST(ConditionTest, MissingFieldsAndIncomparableTypes) {
  Event e = Sample();
  for (const char* op : {"eq", "gt", "gte", "lt", "lte", "matches", "contains"})
    EXPECT_FALSE(Match(std::string("{field: missing, ") + op + ": 'x'}", e)) << op;
  EXPECT_TRUE(Match("{field: missing, ne: 'x'}", e));
  EXPECT_FALSE(Match("{field: path, gt: 5}", e));   // a non-numeric string vs a number
  EXPECT_FALSE(Match("{field: tags, gt: 1}", e));   // an array has no order
  EXPECT_FALSE(Match("{field: ok, eq: 0}", e));
}

// A null field has no text: `eq: ''` held on it (its text was empty), and
// `matches: '^$'` too. Null equals only null, as in Vector.
TEST(ConditionTest, NullIsNotTheEmptyString) {
  Event e;
  e.set("n", Value());
  e.set("e", Value(""));
  e.set("a", Value(Array{Value(), Value(int64_t{1})}));
  EXPECT_FALSE(Match("{ field: n, eq: '' }", e));
  EXPECT_TRUE(Match("{ field: n, ne: '' }", e));
  EXPECT_FALSE(Match("{ field: n, matches: '^$' }", e));
  EXPECT_FALSE(Match("{ field: n, contains: '' }", e));
  for (const char* op : {"gt", "gte", "lt", "lte"})
    EXPECT_FALSE(Match(std::string("{ field: n, ") + op + ": '' }", e)) << op;
  EXPECT_TRUE(Match("{ field: n, eq: null }", e));
  EXPECT_FALSE(Match("{ field: n, ne: null }", e));
  EXPECT_FALSE(Match("{ field: a, contains: '' }", e));  // a null element is not '' either
  EXPECT_TRUE(Match("{ field: a, contains: null }", e));
  // The empty string is still itself.
  EXPECT_TRUE(Match("{ field: e, eq: '' }", e));
  EXPECT_TRUE(Match("{ field: e, matches: '^$' }", e));
  EXPECT_FALSE(Match("{ field: e, eq: null }", e));
}

// `+5` is the number 5 as an operand (YAML 1.2), and a string field "+5"
// reads as a number too, so `eq: +5` still holds for it.
TEST(ConditionTest, APlusSignedNumberIsANumber) {
  Event e;
  e.set("i", Value(int64_t{5}));
  e.set("s", Value("+5"));
  e.set("f", Value(0.5));
  EXPECT_TRUE(Match("{ field: i, eq: +5 }", e));
  EXPECT_TRUE(Match("{ field: i, gt: +4.5 }", e));
  EXPECT_TRUE(Match("{ field: s, eq: +5 }", e));
  EXPECT_TRUE(Match("{ field: s, eq: 5 }", e));
  EXPECT_TRUE(Match("{ field: s, lt: 6 }", e));
  EXPECT_TRUE(Match("{ field: f, eq: +.5 }", e));
  EXPECT_FALSE(Match("{ field: i, eq: '+5' }", e));  // quoted: the text "+5", and 5's text is "5"
}

// `eq: NaN` was read as the number NaN, which equals nothing, not even the
// string "NaN" a field holds.
TEST(ConditionTest, NanAndInfOperandsAreWords) {
  Event e;
  e.set("v", Value("NaN"));
  e.set("w", Value("inf"));
  EXPECT_TRUE(Match("{ field: v, eq: NaN }", e));
  EXPECT_TRUE(Match("{ field: w, eq: inf }", e));
  EXPECT_FALSE(Match("{ field: v, eq: nan }", e));
}

// YAML 1.2: `0x1F` is the number 31 (it was the text "0x1F"), and still
// matches a field that reads "0x1F"; `.inf` is infinity; `.nan`, which
// would equal nothing, is an error at its place.
TEST(ConditionTest, HexOctalAndInfinityOperandsAreNumbersAndNanIsRefused) {
  Event e;
  e.set("n", Value(int64_t{31}));
  e.set("s", Value("0x1F"));
  EXPECT_TRUE(Match("{ field: n, eq: 0x1F }", e));
  EXPECT_TRUE(Match("{ field: n, gt: 0o17 }", e));
  EXPECT_TRUE(Match("{ field: s, eq: 0x1F }", e));
  EXPECT_FALSE(Match("{ field: n, eq: '0x1F' }", e));
  EXPECT_TRUE(Match("{ field: n, lt: .inf }", e));
  EXPECT_TRUE(Match("{ field: n, gt: -.inf }", e));
  auto p = ParseText("{ field: n, eq: .nan }");
  EXPECT_FALSE(p.cond);
  EXPECT_NE(p.errors.find("c.yaml:1:17"), std::string::npos) << p.errors;
  EXPECT_NE(p.errors.find("`condition.eq` is .nan, YAML's not-a-number, which equals nothing"), std::string::npos)
      << p.errors;
  EXPECT_TRUE(Match("{ field: s, matches: .nan }", e) == false);  // a pattern, not a number
}

TEST(ConditionTest, Combinators) {
  Event e = Sample();
  EXPECT_TRUE(Match("{ all: [ { field: status, gte: 500 }, { field: path, matches: '^/api/' } ] }", e));
  EXPECT_FALSE(Match("{ all: [ { field: status, gte: 500 }, { field: path, matches: '^/web/' } ] }", e));
  EXPECT_TRUE(Match("{ any: [ { field: status, eq: 1 }, { field: path, contains: api } ] }", e));
  EXPECT_FALSE(Match("{ any: [ { field: status, eq: 1 }, { field: path, contains: web } ] }", e));
  EXPECT_TRUE(Match("{ not: { field: status, lt: 500 } }", e));
  EXPECT_TRUE(Match("[ { field: status, eq: 503 }, { not: { any: [ {field: ok, eq: true} ] } } ]", e));
  EXPECT_TRUE(Match("{ all: [] }", e));
  EXPECT_FALSE(Match("{ any: [] }", e));
  auto p = ParseText("{ all: [ { field: status, gte: 500 }, { not: { field: path, matches: '^/api/' } } ] }");
  ASSERT_TRUE(p.cond);
  EXPECT_EQ(p.cond->ToString(), "(status >= 500 and not path matches '^/api/')");
}

// `{ field: timestamp, lt: '2999-01-01T00:00:00Z' }` (a year a timestamp
// cannot hold) or `gt: yesterday` held for no event, without a word at
// load: a warning at the operand now, saying why.
TEST(ConditionTest, AnOrderOnTimestampWithSomethingThatIsNotATimeIsAWarning) {
  for (const auto& [yaml, why] : std::vector<std::pair<std::string, std::string>>{
           {"{ field: timestamp, lt: '2999-05-01T00:00:00+02:00' }", "(1677-09-22 to 2262-04-11)"},
           {"{ field: timestamp, gte: '2263-01-01T00:00:00Z' }", "(1677-09-22 to 2262-04-11)"},
           {"{ field: timestamp, gt: yesterday }", "this is not an RFC 3339 time:"}}) {
    auto p = ParseText(yaml);
    ASSERT_TRUE(p.cond.has_value()) << p.errors;
    EXPECT_NE(p.errors.find("c.yaml:1:"), std::string::npos) << p.errors;
    EXPECT_NE(p.errors.find("warning: `condition."), std::string::npos) << p.errors;
    EXPECT_NE(p.errors.find("`timestamp` holds a time"), std::string::npos) << p.errors;
    EXPECT_NE(p.errors.find(why), std::string::npos) << p.errors;
    EXPECT_FALSE(p.cond->Matches(Sample())) << yaml;
  }
  for (const std::string ok : {"{ field: timestamp, lt: '2200-05-01T00:00:00+02:00' }",
                               "{ field: timestamp, eq: yesterday }", "{ field: code, gt: yesterday }"}) {
    auto p = ParseText(ok);
    ASSERT_TRUE(p.cond.has_value()) << p.errors;
    EXPECT_EQ(p.errors, "") << ok;
  }
}

TEST(ConditionTest, ParseErrorsHaveLocations) {
  auto p = ParseText("all:\n  - { field: status, gte: 500 }\n  - { field: path, matchs: '^/api/' }\n");
  EXPECT_FALSE(p.cond);
  EXPECT_NE(p.errors.find("c.yaml:3:20"), std::string::npos) << p.errors;
  EXPECT_NE(p.errors.find("did you mean `matches`"), std::string::npos) << p.errors;
  p = ParseText("{ field: path, matches: '(' }");
  EXPECT_NE(p.errors.find("invalid regular expression"), std::string::npos) << p.errors;
  EXPECT_NE(p.errors.find("c.yaml:1:25"), std::string::npos) << p.errors;
  EXPECT_NE(ParseText("{ status: 5 }").errors.find("needs `field`"), std::string::npos);
  EXPECT_NE(ParseText("{ field: status }").errors.find("has no operator"), std::string::npos);
  EXPECT_NE(ParseText("{ field: a, exists: maybe }").errors.find("true or false"), std::string::npos);
  EXPECT_NE(ParseText("{ field: a, gt: [1] }").errors.find("single value"), std::string::npos);
  EXPECT_NE(ParseText("{ field: a, gt: true }").errors.find("number, a string"), std::string::npos);
  EXPECT_NE(ParseText("{ all: { field: a, eq: 1 } }").errors.find("must be a list"), std::string::npos);
  EXPECT_NE(ParseText("{ all: [], any: [] }").errors.find("only key"), std::string::npos);
  EXPECT_NE(ParseText("{ field: a, eq: 1, not: {field: b, eq: 2} }").errors.find("must be the only key"),
            std::string::npos);
  EXPECT_NE(ParseText("just text").errors.find("must be a condition map"), std::string::npos);
  // Every problem is reported, not just the first.
  p = ParseText("any: [ { field: a, eqq: 1 }, { field: b, gtt: 2 } ]");
  EXPECT_NE(p.errors.find("eqq"), std::string::npos);
  EXPECT_NE(p.errors.find("gtt"), std::string::npos);
}

}  // namespace
}  // namespace tributary
