#include <gtest/gtest.h>

#include "agent/json.h"
#include "tests/unit/transforms/transform_harness.h"

namespace tributary::testing {
namespace {

const char* kApache =
    R"re(^(?P<host>[\w\.]+) - (?P<user>[\w]+) (?P<bytes_in>[\d]+) \[(?P<timestamp>.*)\] "(?P<method>[\w]+) (?P<path>.*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$)re";
const char* kLine = R"(1.2.3.4 - bob 12 [10/Oct/2000:13:55:36 -0700] "GET /api/x" 503 77)";

std::string ApacheConfig(const std::string& extra = "") {
  std::string yaml = "patterns: ['" + std::string(kApache) + "']\n";
  yaml += "types: { status: int, bytes_in: int, bytes_out: int, timestamp: \"timestamp|%d/%b/%Y:%H:%M:%S %z\" }\n";
  return yaml + extra;
}

TEST(RegexParserTest, ParsesApacheLineWithTypes) {
  TransformHarness h("regex_parser", ApacheConfig());
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent(kLine)});
  ASSERT_EQ(out.size(), 1u);
  const Event& e = out[0];
  EXPECT_EQ(e.get("message"), nullptr);  // drop_field defaults to true
  EXPECT_EQ(e.get("host")->as_string(), "1.2.3.4");
  EXPECT_EQ(e.get("user")->as_string(), "bob");
  EXPECT_EQ(e.get("bytes_in")->as_int(), 12);
  EXPECT_EQ(e.get("method")->as_string(), "GET");
  EXPECT_EQ(e.get("path")->as_string(), "/api/x");
  EXPECT_EQ(e.get("status")->as_int(), 503);
  EXPECT_EQ(e.get("bytes_out")->as_int(), 77);
  ASSERT_TRUE(e.get("timestamp")->is_timestamp());
  EXPECT_EQ(FormatRfc3339(e.get("timestamp")->as_timestamp()), "2000-10-10T20:55:36.000000000Z");
  EXPECT_EQ(h.Errors("pattern_mismatch"), 0);
}

TEST(RegexParserTest, KeepsFieldWhenDropFieldFalse) {
  TransformHarness h("regex_parser", ApacheConfig("drop_field: false\n"));
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent(kLine)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].get("message")->as_string(), kLine);
  EXPECT_EQ(out[0].get("status")->as_int(), 503);
}

TEST(RegexParserTest, FirstMatchingPatternWins) {
  TransformHarness h("regex_parser", R"(
patterns: ['^(?P<a>\d+)$', '^(?P<b>\w+)$', '^(?P<c>.*)$']
)");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent("123"), MessageEvent("abc"), MessageEvent("a b")});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].get("a")->as_string(), "123");
  EXPECT_EQ(out[0].get("b"), nullptr);
  EXPECT_EQ(out[1].get("b")->as_string(), "abc");
  EXPECT_EQ(out[2].get("c")->as_string(), "a b");
}

TEST(RegexParserTest, EveryTypeConverts) {
  TransformHarness h("regex_parser", R"(
patterns: ['^(?P<i>\S+) (?P<f>\S+) (?P<b>\S+) (?P<s>\S+) (?P<t>\S+) (?P<u>\S+) (?P<frac>\S+ \S+)$']
types: { i: int, f: float, b: bool, s: string, t: timestamp, u: "timestamp|unix_ms", frac: "timestamp|%Y-%m-%d %H:%M:%S.%f" }
timezone: "+02:00"
)");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent("-42 2.5e3 yes 007 2024-05-01T12:00:00.5+01:00 1700000000123 2024-05-01 12:00:00.25")});
  ASSERT_EQ(out.size(), 1u);
  const Event& e = out[0];
  EXPECT_EQ(e.get("i")->as_int(), -42);
  EXPECT_DOUBLE_EQ(e.get("f")->as_double(), 2500.0);
  EXPECT_EQ(e.get("b")->as_bool(), true);
  EXPECT_EQ(e.get("s")->as_string(), "007");
  EXPECT_EQ(FormatRfc3339(e.get("t")->as_timestamp()), "2024-05-01T11:00:00.500000000Z");
  EXPECT_EQ(FormatRfc3339(e.get("u")->as_timestamp()), "2023-11-14T22:13:20.123000000Z");
  // No %z: the configured zone (+02:00) applies.
  EXPECT_EQ(FormatRfc3339(e.get("frac")->as_timestamp()), "2024-05-01T10:00:00.250000000Z");
  EXPECT_EQ(h.Errors("conversion_failed"), 0);
}

TEST(RegexParserTest, BoolSpellings) {
  TransformHarness h("regex_parser", "patterns: ['^(?P<b>.*)$']\ntypes: { b: bool }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  std::vector<Event> in;
  for (const char* s : {"true", "FALSE", "On", "off", "1", "0", "yes", "No"}) in.push_back(MessageEvent(s));
  auto out = h.RunDefault(std::move(in));
  ASSERT_EQ(out.size(), 8u);
  const bool expect[] = {true, false, true, false, true, false, true, false};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(out[i].get("b")->as_bool(), expect[i]) << i;
}

TEST(RegexParserTest, FailedConversionLeavesEventUntouchedAndCounts) {
  TransformHarness h("regex_parser", R"(
patterns: ['^(?P<n>\S+) (?P<w>\S+)$']
types: { n: int }
)");
  ASSERT_TRUE(h.ok()) << h.error();
  std::vector<Event> in;
  for (const char* s : {"12x word", "99999999999999999999 w", "1.5 w", " w", "+7 ok"}) in.push_back(MessageEvent(s));
  auto out = h.RunDefault(std::move(in));
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].get("message")->as_string(), "12x word");
  EXPECT_EQ(out[0].get("w"), nullptr);
  EXPECT_EQ(out[0].fields().size(), 1u);
  EXPECT_EQ(out[1].get("message")->as_string(), "99999999999999999999 w");  // overflow
  EXPECT_EQ(out[2].get("message")->as_string(), "1.5 w");
  EXPECT_EQ(out[3].get("message")->as_string(), " w");  // \S+ cannot match empty: mismatch
  EXPECT_EQ(out[4].get("n")->as_int(), 7);
  EXPECT_EQ(h.Errors("conversion_failed"), 3);
  EXPECT_EQ(h.Errors("pattern_mismatch"), 1);
}

TEST(RegexParserTest, FloatBoolTimestampFailuresCount) {
  TransformHarness h("regex_parser", R"(
patterns: ['^(?P<v>.*)$']
types: { v: float }
)");
  TransformHarness hb("regex_parser", "patterns: ['^(?P<v>.*)$']\ntypes: { v: bool }\n");
  TransformHarness ht("regex_parser", "patterns: ['^(?P<v>.*)$']\ntypes: { v: \"timestamp|%Y-%m-%d\" }\n");
  ASSERT_TRUE(h.ok() && hb.ok() && ht.ok());
  EXPECT_EQ(h.RunDefault({MessageEvent("1.2.3")}).size(), 1u);
  EXPECT_EQ(hb.RunDefault({MessageEvent("maybe")}).size(), 1u);
  EXPECT_EQ(ht.RunDefault({MessageEvent("2024-13-45")}).size(), 1u);
  EXPECT_EQ(ht.RunDefault({MessageEvent("2024-01-02 trailing")}).size(), 1u);
  EXPECT_EQ(h.Errors("conversion_failed"), 1);
  EXPECT_EQ(hb.Errors("conversion_failed"), 1);
  EXPECT_EQ(ht.Errors("conversion_failed"), 2);
}

// `inf` and `nan` are no JSON number (they went out as null, the parse
// counted a success), 30 February is no date (strptime took it, and it
// became 1 March) and 2999 no year a timestamp holds (it wrapped to 1829).
TEST(RegexParserTest, NonFiniteFloatsImpossibleDatesAndFarYearsFailToConvert) {
  TransformHarness h("regex_parser", "patterns: ['^(?P<v>.*)$']\ntypes: { v: float }\n");
  TransformHarness ht("regex_parser", "patterns: ['^(?P<v>.*)$']\ntypes: { v: \"timestamp|%Y-%m-%d %H:%M:%S\" }\n");
  ASSERT_TRUE(h.ok() && ht.ok());
  for (const char* s : {"inf", "-Infinity", "nan", "NaN"}) {
    auto out = h.RunDefault({MessageEvent(s)});
    ASSERT_EQ(out.size(), 1u);
    ASSERT_NE(out[0].get("message"), nullptr) << s << " was parsed";
    EXPECT_EQ(out[0].get("message")->as_string(), s);  // passed on unparsed
  }
  EXPECT_EQ(h.Errors("conversion_failed"), 4);
  for (const char* s : {"2024-02-30 00:00:00", "2999-01-01 00:00:00", "1500-06-01 00:00:00"}) {
    auto out = ht.RunDefault({MessageEvent(s)});
    ASSERT_EQ(out.size(), 1u);
    ASSERT_NE(out[0].get("message"), nullptr) << s << " was parsed";
    EXPECT_EQ(out[0].get("message")->as_string(), s);
  }
  EXPECT_EQ(ht.Errors("conversion_failed"), 3);
  auto ok = ht.RunDefault({MessageEvent("2024-02-29 12:00:00")});
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(FormatRfc3339(ok[0].get("v")->as_timestamp()), "2024-02-29T12:00:00.000000000Z");
}

TEST(RegexParserTest, DropFailedDropsAndCounts) {
  TransformHarness h("regex_parser", ApacheConfig("drop_failed: true\n"));
  ASSERT_TRUE(h.ok()) << h.error();
  Event no_message;
  no_message.fields().set("other", Value("x"));
  Event not_string;
  not_string.fields().set("message", Value(int64_t{5}));
  auto out = h.RunDefault({MessageEvent("garbage"), MessageEvent(kLine), std::move(no_message),
                           std::move(not_string), MessageEvent("1.2.3.4 - bob 99999999999999999999 [x] \"GET /\" 200 1")});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].get("status")->as_int(), 503);
  EXPECT_EQ(h.Errors("pattern_mismatch"), 1);
  EXPECT_EQ(h.Errors("field_missing"), 2);
  EXPECT_EQ(h.Errors("conversion_failed"), 1);
  EXPECT_EQ(h.Discarded(false), 4);
}

TEST(RegexParserTest, PatternThatMatchesNothing) {
  TransformHarness h("regex_parser", "patterns: ['^(?P<x>never)\\z(?P<y>a)']\n");
  ASSERT_TRUE(h.ok()) << h.error();
  std::vector<Event> in;
  for (int i = 0; i < 100; ++i) in.push_back(MessageEvent("line " + std::to_string(i)));
  auto out = h.RunDefault(std::move(in));
  EXPECT_EQ(out.size(), 100u);
  EXPECT_EQ(out[42].get("message")->as_string(), "line 42");
  EXPECT_EQ(h.Errors("pattern_mismatch"), 100);
}

TEST(RegexParserTest, InvalidUtf8AndHugeFields) {
  TransformHarness h("regex_parser", "patterns: ['^(?P<a>\\S+) (?P<b>.*)$']\n");
  ASSERT_TRUE(h.ok()) << h.error();
  std::string bad = "\xff\xfe\xc3 \x80tail\x01";
  std::string huge(4 << 20, 'x');
  huge += " end";
  auto out = h.RunDefault({MessageEvent(bad), MessageEvent(huge), MessageEvent(std::string(1 << 20, 'y'))});
  ASSERT_EQ(out.size(), 3u);
  ASSERT_NE(out[0].get("a"), nullptr);
  EXPECT_EQ(out[0].get("a")->as_string(), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(out[0].get("b")->as_string(), "\xEF\xBF\xBDtail\x01");
  EXPECT_EQ(h.Errors("invalid_utf8"), 1);
  ASSERT_NE(out[1].get("a"), nullptr);
  EXPECT_EQ(out[1].get("a")->as_string().size(), 4u << 20);
  EXPECT_EQ(out[1].get("b")->as_string(), "end");
  EXPECT_EQ(out[2].get("message")->as_string().size(), 1u << 20);  // no space: mismatch
  EXPECT_EQ(h.Errors("pattern_mismatch"), 1);
}

TEST(RegexParserTest, OptionalGroupThatDidNotTakePartIsNotSet) {
  TransformHarness h("regex_parser", "patterns: ['^(?P<a>\\w+)(?: (?P<b>\\d+))?$']\ntypes: { b: int }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent("word"), MessageEvent("word 5")});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].get("b"), nullptr);
  EXPECT_EQ(out[1].get("b")->as_int(), 5);
}

TEST(RegexParserTest, GroupNamedLikeTheFieldReplacesIt) {
  TransformHarness h("regex_parser", "patterns: ['^\\[\\w+\\] (?P<message>.*)$']\ndrop_field: false\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent("[INFO] hello there")});
  EXPECT_EQ(out[0].get("message")->as_string(), "hello there");
  TransformHarness h2("regex_parser", "patterns: ['^\\[\\w+\\] (?P<message>.*)$']\n");
  out = h2.RunDefault({MessageEvent("[INFO] hello there")});
  EXPECT_EQ(out[0].get("message")->as_string(), "hello there");
}

TEST(RegexParserTest, NestedSourceField) {
  TransformHarness h("regex_parser", "field: http.line\npatterns: ['^(?P<verb>\\w+)']\n");
  ASSERT_TRUE(h.ok()) << h.error();
  Event e;
  e.set("http.line", Value("POST /x"));
  auto out = h.RunDefault({std::move(e)});
  EXPECT_EQ(out[0].get("verb")->as_string(), "POST");
  EXPECT_EQ(out[0].get("http.line"), nullptr);
}

// The write path: groups whose names the event already has overwrite those
// fields in place (whatever their kind), the others are appended in pattern
// order; the parsed field is removed from where it was.
TEST(RegexParserTest, ExistingFieldsAreOverwrittenInPlaceAndNewOnesAppendedInOrder) {
  TransformHarness h("regex_parser", ApacheConfig());
  ASSERT_TRUE(h.ok()) << h.error();
  Event in;
  in.fields().append("message", std::string_view(kLine));
  in.fields().append("file", std::string_view("/var/log/a.log"));
  in.fields().append("host", std::string_view("agent-host"));
  in.fields().append("status", Value(true));           // another kind: replaced by the int
  in.fields().append("timestamp", Value(Timestamp{}));  // replaced by the parsed timestamp
  in.fields().append("offset", Value(int64_t{7}));
  auto out = h.RunDefault({std::move(in)});
  ASSERT_EQ(out.size(), 1u);
  Timestamp ts;
  ASSERT_TRUE(ParseRfc3339("2000-10-10T20:55:36Z", &ts));
  Fields want;
  want.append("file", std::string_view("/var/log/a.log"));
  want.append("host", std::string_view("1.2.3.4"));
  want.append("status", Value(int64_t{503}));
  want.append("timestamp", Value(ts));
  want.append("offset", Value(int64_t{7}));
  want.append("user", std::string_view("bob"));
  want.append("bytes_in", Value(int64_t{12}));
  want.append("method", std::string_view("GET"));
  want.append("path", std::string_view("/api/x"));
  want.append("bytes_out", Value(int64_t{77}));
  EXPECT_EQ(out[0], Event(want)) << [&] { std::string s; AppendJson(out[0], &s); return s; }();
}

TEST(RegexParserTest, KeptFieldStaysInPlaceAndStringsOverwriteLongerOnes) {
  TransformHarness h("regex_parser", "patterns: ['^(?P<a>\\w+) (?P<b>\\w+)$']\ndrop_field: false\n");
  ASSERT_TRUE(h.ok()) << h.error();
  Event in;
  in.fields().append("a", std::string(100, 'z'));  // a long string: its buffer is reused
  in.fields().append("message", std::string_view("x yy"));
  in.fields().append("c", Value(int64_t{1}));
  auto out = h.RunDefault({std::move(in), MessageEvent("short")});
  ASSERT_EQ(out.size(), 2u);
  Fields want;
  want.append("a", std::string_view("x"));
  want.append("message", std::string_view("x yy"));
  want.append("c", Value(int64_t{1}));
  want.append("b", std::string_view("yy"));
  EXPECT_EQ(out[0], Event(want));
  EXPECT_EQ(out[1], MessageEvent("short"));  // mismatch: untouched
  EXPECT_EQ(h.Errors("pattern_mismatch"), 1);
}

TEST(RegexParserTest, FailedConversionAfterStringGroupsLeavesExistingFieldsUntouched) {
  TransformHarness h("regex_parser", "patterns: ['^(?P<host>\\S+) (?P<n>\\S+)$']\ntypes: { n: int }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  Event in = MessageEvent("newhost notanumber");
  in.fields().append("host", std::string_view("oldhost"));
  Event copy = in;
  auto out = h.RunDefault({std::move(in)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], copy);
  EXPECT_EQ(h.Errors("conversion_failed"), 1);
}

TEST(RegexParserTest, SeveralPatternsWithDifferentGroupsReuseScratch) {
  // Patterns with different group counts, alternating, over several batches.
  TransformHarness h("regex_parser",
                     "patterns: ['^(?P<n>\\d+)$', '^(?P<a>\\w+) (?P<b>\\w+) (?P<c>\\w+) (?P<d>\\d+)$']\n"
                     "types: { n: int, d: int }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  for (int round = 0; round < 3; ++round) {
    auto out = h.RunDefault({MessageEvent("5"), MessageEvent("p q r 9"), MessageEvent("6")});
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].get("n")->as_int(), 5);
    EXPECT_EQ(out[0].fields().size(), 1u);
    EXPECT_EQ(out[1].get("c")->as_string(), "r");
    EXPECT_EQ(out[1].get("d")->as_int(), 9);
    EXPECT_EQ(out[1].fields().size(), 4u);
    EXPECT_EQ(out[2].get("n")->as_int(), 6);
  }
}

TEST(RegexParserTest, TheParsedTextComesBackWholeWhateverTheOutcome) {
  // The field's string is lent to the matcher and given back: a kept
  // field, a mismatch and a failed conversion each leave it as it was,
  // long (on the heap) or short (inline), over several batches that
  // trade the buffers around.
  TransformHarness h("regex_parser",
                     "patterns: ['^(?P<n>\\S+) (?P<w>.*)$']\n"
                     "types: { n: int }\n"
                     "drop_field: false\n");
  ASSERT_TRUE(h.ok()) << h.error();
  const std::string long_tail(300, 'x');
  const std::vector<std::string> lines = {"1 " + long_tail, "nospace", "2 b", "x " + long_tail, "3 " + long_tail + "y",
                                          "", "4 c"};
  for (int round = 0; round < 3; ++round) {
    std::vector<Event> in;
    for (const auto& l : lines) in.push_back(MessageEvent(l));
    auto out = h.RunDefault(std::move(in));
    ASSERT_EQ(out.size(), lines.size());
    for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(out[i].get("message")->as_string(), lines[i]) << i;
    EXPECT_EQ(out[0].get("w")->as_string(), long_tail);
    EXPECT_EQ(out[1].get("w"), nullptr);  // mismatch
    EXPECT_EQ(out[3].get("w"), nullptr);  // "x" is no int
    EXPECT_EQ(out[4].get("w")->as_string(), long_tail + "y");
    EXPECT_EQ(out[6].get("n")->as_int(), 4);
  }
  EXPECT_EQ(h.Errors("pattern_mismatch"), 6);
  EXPECT_EQ(h.Errors("conversion_failed"), 3);
}

TEST(RegexParserTest, ConfigErrors) {
  auto err = [](const std::string& yaml) { return TransformHarness("regex_parser", yaml).error(); };
  EXPECT_NE(err("field: message\n").find("missing required option `transforms.t.patterns`"), std::string::npos);
  EXPECT_NE(err("patterns: ['(?P<a>']\n").find("invalid regular expression"), std::string::npos);
  EXPECT_NE(err("patterns: ['\\d+']\n").find("has no named capture group"), std::string::npos);
  std::string e = err("patterns: ['(?P<status>\\d+)']\ntypes: { status: integr }\n");
  EXPECT_NE(e.find("test.yaml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown type \"integr\""), std::string::npos) << e;
  e = err("patterns: ['(?P<status>\\d+)']\ntypes: { stauts: int }\n");
  EXPECT_NE(e.find("names no capture group"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean `status`"), std::string::npos) << e;
  EXPECT_NE(err("patterns: ['(?P<t>.*)']\ntypes: { t: \"timestamp|nopercent\" }\n").find("no % conversion"),
            std::string::npos);
  EXPECT_NE(err("patterns: ['(?P<t>.*)']\ntimezone: Mars/Base\n").find("unknown time zone"), std::string::npos);
  EXPECT_NE(err("patterns: ['(?P<t>.*)']\ndrop_feild: true\n").find("did you mean `drop_field`"), std::string::npos);
  EXPECT_NE(err("patterns: []\n").find("must not be empty"), std::string::npos);
}

// Every bad pattern of the list is reported, each at its own line, with
// what to write in RE2 for what PCRE, Onigmo and Java users bring.
TEST(RegexParserTest, EveryBadPatternIsReportedAtItsLineWithTheRe2Way) {
  const std::string e = TransformHarness("regex_parser",
                                         "patterns:\n"
                                         "  - '(?P<ok>x)'\n"
                                         "  - '(?P<b>x'\n"
                                         "  - '^(?<name>\\w+)'\n"
                                         "  - '^(?P<a>\\w+)(?=x)'\n"
                                         "  - '(?P<w>\\w) \\1'\n"
                                         "  - '(?P<a>x)(?P<a>y)'\n")
                            .error();
  EXPECT_NE(e.find("test.yaml:3:5: error: `transforms.t.patterns[1]`: invalid regular expression: missing )"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("test.yaml:4:5: error: `transforms.t.patterns[2]`"), std::string::npos) << e;
  EXPECT_NE(e.find("RE2 writes a named group as (?P<name>...)"), std::string::npos) << e;
  EXPECT_NE(e.find("test.yaml:5:5: error: `transforms.t.patterns[3]`"), std::string::npos) << e;
  EXPECT_NE(e.find("no lookahead or lookbehind"), std::string::npos) << e;
  EXPECT_NE(e.find("test.yaml:6:5: error: `transforms.t.patterns[4]`"), std::string::npos) << e;
  EXPECT_NE(e.find("no backreferences"), std::string::npos) << e;
  EXPECT_NE(e.find("test.yaml:7:5: error: `transforms.t.patterns[5]` names two groups alike"), std::string::npos) << e;
}

}  // namespace
}  // namespace tributary::testing
