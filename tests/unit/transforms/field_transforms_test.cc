// add_fields, remove_fields, rename_fields, timestamp_parser, filter, route, sample.
#include <gtest/gtest.h>

#include "agent/json.h"
#include "tests/unit/transforms/transform_harness.h"
#include "transforms/time_format.h"

namespace tributary::testing {
namespace {

std::string Json(const Event& e) {
  std::string s;
  AppendJson(e, &s);
  return s;
}

Event Make(std::initializer_list<std::pair<const char*, Value>> fields) {
  Event e;
  for (const auto& [k, v] : fields) e.set(k, v);
  return e;
}

TEST(AddFieldsTest, ConstantsKeepTheirYamlTypesAndTemplatesRenderFields) {
  TransformHarness h("add_fields", R"(
fields:
  env: prod
  answer: 42
  ratio: 0.5
  on: true
  nothing: null
  quoted: "42"
  service: "svc-{{ source_type }}"
  where: "{{ http.status }} at {{ host }}"
  nested.key: x
hostname_field: node
)");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"source_type", Value("file")}, {"host", Value("h1")}, {"http.status", Value(503)}})});
  ASSERT_EQ(out.size(), 1u);
  const Event& e = out[0];
  EXPECT_EQ(e.get("env")->as_string(), "prod");
  EXPECT_EQ(e.get("answer")->as_int(), 42);
  EXPECT_EQ(e.get("ratio")->as_double(), 0.5);
  EXPECT_EQ(e.get("on")->as_bool(), true);
  EXPECT_TRUE(e.get("nothing")->is_null());
  EXPECT_EQ(e.get("quoted")->as_string(), "42");
  EXPECT_EQ(e.get("service")->as_string(), "svc-file");
  EXPECT_EQ(e.get("where")->as_string(), "503 at h1");
  EXPECT_EQ(e.get("nested.key")->as_string(), "x");
  EXPECT_EQ(e.get("node")->as_string(), "testhost");
  EXPECT_EQ(h.Errors("template_failed"), 0);
}

// std::from_chars reads `Nan`, `inf` and `Infinity` as doubles, which JSON
// writes as null: `user: Nan` lost the user's name. They are words (YAML's
// own are `.nan` and `.inf`).
TEST(AddFieldsTest, NanAndInfAreWordsNotNumbers) {
  TransformHarness h("add_fields", "fields: { a: Nan, b: inf, c: -Infinity, d: 1e3 }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].get("a")->as_string(), "Nan");
  EXPECT_EQ(out[0].get("b")->as_string(), "inf");
  EXPECT_EQ(out[0].get("c")->as_string(), "-Infinity");
  EXPECT_EQ(out[0].get("d")->as_double(), 1000.0);
}

// YAML 1.2's core schema reads 0x1F (hex) and 0o17 (octal) as integers;
// they stayed strings. A sign before a hex or octal number, a capital
// prefix, or a digit that does not belong keep it a string, as in YAML;
// quoted, it is the text.
TEST(AddFieldsTest, HexAndOctalAreIntegersAsInYaml12) {
  TransformHarness h("add_fields",
                     "fields: { a: 0x1F, b: 0o17, c: '0x1F', d: 0x1G, e: 0O17, f: -0x1F, g: 0o8, h: 0x7FFFFFFFFFFFFFFF, "
                     "i: 0123 }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json(out[0]), R"({"a":31,"b":15,"c":"0x1F","d":"0x1G","e":"0O17","f":"-0x1F","g":"0o8",)"
                          R"("h":9223372036854775807,"i":123})");
}

// YAML's .inf, -.inf and .nan are floats JSON cannot carry (they went out
// as null): an error at the value, which says how to keep the text.
TEST(AddFieldsTest, InfinityAndNanAreRefusedWhereWritten) {
  TransformHarness h("add_fields", "fields:\n  a: .inf\n  b: -.Inf\n  c: .NaN\n  d: '.inf'\n  e: 1e400\n");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().find("test.yaml:2:6"), std::string::npos) << h.error();
  EXPECT_NE(h.error().find("`transforms.t.fields.a` is .inf, a number JSON cannot carry (it would be written as null)"),
            std::string::npos)
      << h.error();
  EXPECT_NE(h.error().find("quote it ('.inf') for the text"), std::string::npos) << h.error();
  EXPECT_NE(h.error().find("`transforms.t.fields.b` is -.Inf"), std::string::npos) << h.error();
  EXPECT_NE(h.error().find("`transforms.t.fields.c` is .NaN"), std::string::npos) << h.error();
  EXPECT_NE(h.error().find("`transforms.t.fields.e` is 1e400"), std::string::npos) << h.error();
  EXPECT_EQ(h.error().find("fields.d"), std::string::npos) << h.error();
}

// YAML 1.2's core schema reads `+5` as the integer 5 and `+5.0` as a
// float; they stayed strings. `+` alone, `+-5` or `'+5'` quoted are strings.
TEST(AddFieldsTest, APlusSignedNumberIsANumber) {
  TransformHarness h("add_fields", "fields: { a: +5, b: +5.0, c: +.5, d: +1e3, e: +, f: +-5, g: '+5', h: +x }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json(out[0]), R"({"a":5,"b":5.0,"c":0.5,"d":1000.0,"e":"+","f":"+-5","g":"+5","h":"+x"})");
}

TEST(AddFieldsTest, OverwriteAndATemplateWhoseFieldIsMissing) {
  TransformHarness keep("add_fields", "fields: { env: new, tag: \"t-{{ missing }}\" }\noverwrite: false\n");
  ASSERT_TRUE(keep.ok()) << keep.error();
  auto out = keep.RunDefault({Make({{"env", Value("old")}}), Make({{"missing", Value("here")}})});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].get("env")->as_string(), "old");
  EXPECT_EQ(out[0].get("tag"), nullptr);  // the field is left unset, the event goes on, counted
  EXPECT_EQ(out[1].get("env")->as_string(), "new");
  EXPECT_EQ(out[1].get("tag")->as_string(), "t-here");
  EXPECT_EQ(keep.Errors("template_failed"), 1);
  TransformHarness replace("add_fields", "fields: { env: new }\n");
  ASSERT_TRUE(replace.ok()) << replace.error();
  EXPECT_EQ(replace.RunDefault({Make({{"env", Value("old")}})})[0].get("env")->as_string(), "new");
}

// With overwrite off, `x.y` on an event whose `x` is 5 replaced x with
// {y: ...}: the existing value was lost. It is kept, the field is not
// added, and that is counted. A map on the way is filled in as before.
TEST(AddFieldsTest, OverwriteOffKeepsAValueOnThePathThatIsNotAMap) {
  TransformHarness keep("add_fields", "fields: { x.y: 2, m.y: 3, n.y: 4 }\noverwrite: false\n");
  ASSERT_TRUE(keep.ok()) << keep.error();
  Event in = Make({{"x", Value(5)}, {"m.z", Value(1)}});
  auto out = keep.RunDefault({in});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json(out[0]), R"({"x":5,"m":{"z":1,"y":3},"n":{"y":4}})");
  EXPECT_EQ(keep.Errors("parent_not_a_map"), 1);
  // With overwrite on (the default) the field is written over the value.
  TransformHarness replace("add_fields", "fields: { x.y: 2 }\n");
  ASSERT_TRUE(replace.ok()) << replace.error();
  EXPECT_EQ(Json(replace.RunDefault({in})[0]), R"({"x":{"y":2},"m":{"z":1}})");
  EXPECT_EQ(replace.Errors("parent_not_a_map"), 0);
}

// The fields are a map: every template sees the event as it came in, not
// the fields set beside it. They were set in the names' order, so `who`
// saw `status: 999` and `a_who` (sorted before `status`) saw 200.
TEST(AddFieldsTest, TemplatesSeeTheEventAsItCameIn) {
  TransformHarness h("add_fields", R"(
fields:
  status: 999
  who: "st={{ status }}"
  a_who: "st={{ status }}"
  z: "{{ added }}"
  added: here
)");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"status", Value(200)}}), Make({{"status", Value(201)}, {"added", Value("was")}})});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Json(out[0]), R"({"status":999,"a_who":"st=200","added":"here","who":"st=200"})");
  EXPECT_EQ(out[1].get("who")->as_string(), "st=201");
  EXPECT_EQ(out[1].get("z")->as_string(), "was");
  EXPECT_EQ(h.Errors("template_failed"), 1);  // the first event's `z`: it had no `added`
}

TEST(AddFieldsTest, ConfigErrors) {
  auto err = [](const std::string& yaml) { return TransformHarness("add_fields", yaml).error(); };
  EXPECT_NE(err("{}\n").find("missing required option `transforms.t.fields`"), std::string::npos);
  EXPECT_NE(err("fields: { a: [1, 2] }\n").find("`transforms.t.fields.a` must be a scalar"), std::string::npos);
  // An unquoted template, which YAML reads as a map: the fix the kafka
  // topic's error gives was missing here.
  EXPECT_NE(err("fields:\n  svc: {{ service }}\n").find("a `{{ field }}` template must be quoted"), std::string::npos)
      << err("fields:\n  svc: {{ service }}\n");
  EXPECT_NE(err("fields: { a: \"{{ b\" }\n").find("unterminated `{{`"), std::string::npos);
  EXPECT_NE(err("fields: { a: \"{{ }}\" }\n").find("`transforms.t.fields.a`"), std::string::npos);
  EXPECT_NE(err("fields: { \"\": 1 }\n").find("`transforms.t.fields` has an empty field name"), std::string::npos);
}

TEST(RemoveFieldsTest, RemovesTopLevelAndNested) {
  TransformHarness h("remove_fields", "fields: [a, http.headers, missing]\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"a", Value(1)}, {"b", Value(2)}, {"http.headers", Value("x")}, {"http.code", Value(3)}})});
  EXPECT_EQ(Json(out[0]), R"({"b":2,"http":{"code":3}})");
  EXPECT_NE(TransformHarness("remove_fields", "fields: []\n").error().find("at least one"), std::string::npos);
  EXPECT_NE(TransformHarness("remove_fields", "{}\n").error().find("missing required option"), std::string::npos);
}

TEST(RenameFieldsTest, RenamesAndDropsEmptyParents) {
  TransformHarness h("rename_fields", "fields: { a: z, http.code: status, missing: x }\ndrop_empty: true\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"a", Value(1)}, {"http.code", Value(3)}, {"z", Value("old")}})});
  EXPECT_EQ(Json(out[0]), R"({"z":1,"status":3})");
  TransformHarness keep("rename_fields", "fields: { http.code: status }\n");
  out = keep.RunDefault({Make({{"http.code", Value(3)}})});
  EXPECT_EQ(Json(out[0]), R"({"http":{},"status":3})");
  EXPECT_NE(TransformHarness("rename_fields", "fields: { a: '' }\n").error().find("must not be empty"),
            std::string::npos);
}

// The renames of an event happen at once: a swap swaps, and a chain moves
// each value one step (one after the other, `a: b` wrote over b before
// `b: a` moved it, and b's value was lost).
TEST(RenameFieldsTest, ASwapAndAChainLoseNothing) {
  TransformHarness swap("rename_fields", "fields: { a: b, b: a }\n");
  ASSERT_TRUE(swap.ok()) << swap.error();
  auto out = swap.RunDefault({Make({{"a", Value(1)}, {"b", Value(2)}})});
  ASSERT_NE(out[0].get("a"), nullptr) << Json(out[0]);
  ASSERT_NE(out[0].get("b"), nullptr) << Json(out[0]);
  EXPECT_EQ(out[0].get("a")->as_int(), 2);
  EXPECT_EQ(out[0].get("b")->as_int(), 1);
  TransformHarness chain("rename_fields", "fields: { a: b, b: c }\n");
  ASSERT_TRUE(chain.ok()) << chain.error();
  out = chain.RunDefault({Make({{"a", Value(1)}, {"b", Value(2)}})});
  ASSERT_NE(out[0].get("b"), nullptr) << Json(out[0]);
  ASSERT_NE(out[0].get("c"), nullptr) << Json(out[0]);
  EXPECT_EQ(out[0].get("a"), nullptr);
  EXPECT_EQ(out[0].get("b")->as_int(), 1);
  EXPECT_EQ(out[0].get("c")->as_int(), 2);
}

TEST(TimestampParserTest, FormatsInOrderZonesAndFailures) {
  TransformHarness h("timestamp_parser", R"(
field: time
formats: ["%d/%b/%Y:%H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%f", unix_ms, rfc3339]
timezone: "-05:00"
drop_field: true
)");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"time", Value("10/Oct/2000:13:55:36 -0700")}}),
                           Make({{"time", Value("2024-05-01 12:00:00.123456")}}),
                           Make({{"time", Value("1700000000123")}}),
                           Make({{"time", Value("2024-05-01T12:00:00Z")}}),
                           Make({{"time", Value("yesterday")}}),
                           Make({{"other", Value(1)}})});
  ASSERT_EQ(out.size(), 6u);
  auto ts = [&](size_t i) { return FormatRfc3339(out[i].get("timestamp")->as_timestamp()); };
  EXPECT_EQ(ts(0), "2000-10-10T20:55:36.000000000Z");
  EXPECT_EQ(ts(1), "2024-05-01T17:00:00.123456000Z");  // no %z: the configured -05:00
  EXPECT_EQ(ts(2), "2023-11-14T22:13:20.123000000Z");
  EXPECT_EQ(ts(3), "2024-05-01T12:00:00.000000000Z");
  EXPECT_EQ(out[0].get("time"), nullptr);
  EXPECT_EQ(out[4].get("time")->as_string(), "yesterday");
  EXPECT_EQ(out[4].get("timestamp"), nullptr);
  EXPECT_EQ(h.Errors("timestamp_parse_failed"), 1);
  EXPECT_EQ(h.Errors("field_missing"), 1);
}

TEST(TimestampParserTest, YearlessSyslogTimeAndDropFailed) {
  TransformHarness h("timestamp_parser", "field: t\nformats: ['%b %d %H:%M:%S']\ndrop_failed: true\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"t", Value("Mar  3 04:05:06")}}), Make({{"t", Value("Mar 3")}})});
  ASSERT_EQ(out.size(), 1u);
  std::string s = FormatRfc3339(out[0].get("timestamp")->as_timestamp());
  EXPECT_EQ(s.substr(4), "-03-03T04:05:06.000000000Z");
  EXPECT_EQ(h.Discarded(false), 1);
  EXPECT_NE(TransformHarness("timestamp_parser", "formats: ['plain']\n").error().find("no % conversion"),
            std::string::npos);
  EXPECT_NE(TransformHarness("timestamp_parser", "formats: [unix]\ntimezone: Europe/Nowhere\n").error().find("time zone"),
            std::string::npos);
}

// A time without a year always took the current UTC year: `Dec 31
// 23:59:59` read just after New Year landed almost a year ahead. It takes
// the latest of next, this and last year that is at most a day ahead.
TEST(TimeFormatTest, AYearlessTimeIsNeverTakenAsMonthsAhead) {
  auto at = [](const char* text) {
    Timestamp t;
    EXPECT_TRUE(ParseRfc3339(text, &t)) << text;
    return t;
  };
  auto read = [](const TimeFormat& f, const char* zone, const char* text, Timestamp now) -> std::string {
    TimeZone tz;
    EXPECT_TRUE(TimeZone::Parse(zone, &tz)) << zone;
    Timestamp out;
    if (!f.Apply(text, tz, &out, now)) return "failed";
    return FormatRfc3339(out);
  };
  auto syslog = TimeFormat::Parse("%b %d %H:%M:%S");
  ASSERT_TRUE(syslog.ok());
  const Timestamp new_year = at("2025-01-01T00:00:30Z");
  EXPECT_EQ(read(*syslog, "UTC", "Dec 31 23:59:59", new_year), "2024-12-31T23:59:59.000000000Z");
  EXPECT_EQ(read(*syslog, "UTC", "Jan  1 00:00:10", new_year), "2025-01-01T00:00:10.000000000Z");
  EXPECT_EQ(read(*syslog, "UTC", "Jan  2 00:00:30", new_year), "2025-01-02T00:00:30.000000000Z");  // a day ahead
  EXPECT_EQ(read(*syslog, "UTC", "Jan  2 00:00:31", new_year), "2024-01-02T00:00:31.000000000Z");  // more
  EXPECT_EQ(read(*syslog, "UTC", "Jun 15 08:00:00", at("2025-07-01T00:00:00Z")), "2025-06-15T08:00:00.000000000Z");
  EXPECT_EQ(read(*syslog, "UTC", "Aug 15 08:00:00", at("2025-07-01T00:00:00Z")), "2024-08-15T08:00:00.000000000Z");
  // Just before New Year in UTC it is already 1 January in Tokyo: next year.
  EXPECT_EQ(read(*syslog, "Asia/Tokyo", "Jan  1 05:00:00", at("2024-12-31T20:00:00Z")),
            "2024-12-31T20:00:00.000000000Z");
  EXPECT_EQ(read(*syslog, "+14:00", "Jan  1 09:00:00", at("2024-12-30T20:00:00Z")),
            "2024-12-31T19:00:00.000000000Z");  // UTC is still a day and more from New Year
  EXPECT_EQ(read(*syslog, "-05:00", "Dec 31 22:00:00", at("2025-01-01T03:30:00Z")), "2025-01-01T03:00:00.000000000Z");
  // 29 February of the last leap year; a day no year has still fails.
  EXPECT_EQ(read(*syslog, "UTC", "Feb 29 10:00:00", at("2025-03-01T00:00:00Z")), "2024-02-29T10:00:00.000000000Z");
  EXPECT_EQ(read(*syslog, "UTC", "Feb 30 10:00:00", at("2025-03-01T00:00:00Z")), "failed");
  // A format with a year ignores the clock.
  auto full = TimeFormat::Parse("%Y %b %d %H:%M:%S");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(read(*full, "UTC", "2031 Dec 31 23:59:59", new_year), "2031-12-31T23:59:59.000000000Z");
}

// `%f` reads 1 to 9 digits, as documented; a tenth was read and dropped
// silently. It fails now, as chrono's %f (Vector's) does.
TEST(TimeFormatTest, AFractionHasOneToNineDigits) {
  auto f = TimeFormat::Parse("%Y-%m-%d %H:%M:%S.%f");
  ASSERT_TRUE(f.ok());
  auto read = [&](const char* text) -> std::string {
    Timestamp out;
    return f->Apply(text, TimeZone{}, &out) ? FormatRfc3339(out) : "failed";
  };
  EXPECT_EQ(read("2024-05-01 12:00:00.1"), "2024-05-01T12:00:00.100000000Z");
  EXPECT_EQ(read("2024-05-01 12:00:00.123456789"), "2024-05-01T12:00:00.123456789Z");
  EXPECT_EQ(read("2024-05-01 12:00:00.1234567891"), "failed");
  EXPECT_EQ(read("2024-05-01 12:00:00.000000000000"), "failed");
  EXPECT_EQ(read("2024-05-01 12:00:00."), "failed");
  TransformHarness r("regex_parser", "patterns: ['^(?P<t>.+)$']\ntypes: { t: 'timestamp|%H:%M:%S.%f %Y-%m-%d' }\n");
  ASSERT_TRUE(r.ok()) << r.error();
  auto out = r.RunDefault({Make({{"message", Value("12:00:00.1234567891 2024-05-01")}})});
  EXPECT_EQ(out[0].get("t"), nullptr);
  EXPECT_EQ(r.Errors("conversion_failed"), 1);
}

// IANA names, from the system's database (tzdata): summer time applies,
// and the two hours a year that do not map one to one have a fixed answer.
TEST(TimestampParserTest, NamedTimeZonesFollowSummerTime) {
  TransformHarness h("timestamp_parser", "field: t\nformats: ['%Y-%m-%d %H:%M:%S']\ntimezone: Europe/Paris\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"t", Value("2024-01-15 12:00:00")}}),   // CET, +01:00
                           Make({{"t", Value("2024-07-01 12:00:00")}}),   // CEST, +02:00
                           Make({{"t", Value("2024-03-31 02:30:00")}}),   // skipped: 02:00 became 03:00
                           Make({{"t", Value("2024-10-27 02:30:00")}})});  // twice: first in CEST
  ASSERT_EQ(out.size(), 4u);
  auto at = [&](size_t i) { return FormatRfc3339(out[i].get("timestamp")->as_timestamp()); };
  EXPECT_EQ(at(0), "2024-01-15T11:00:00.000000000Z");
  EXPECT_EQ(at(1), "2024-07-01T10:00:00.000000000Z");
  EXPECT_EQ(at(2), "2024-03-31T01:00:00.000000000Z");  // the moment of the change
  EXPECT_EQ(at(3), "2024-10-27T00:30:00.000000000Z");
  // A zone west of UTC, through regex_parser's typed captures.
  TransformHarness r("regex_parser",
                     "patterns: ['^(?P<at>.+)$']\ntypes: { at: 'timestamp|%d/%m/%Y %H:%M' }\n"
                     "timezone: America/New_York\n");
  ASSERT_TRUE(r.ok()) << r.error();
  auto parsed = r.RunDefault({Make({{"message", Value("04/07/2024 09:15")}})});
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(FormatRfc3339(parsed[0].get("at")->as_timestamp()), "2024-07-04T13:15:00.000000000Z");
  // A misspelt name is a config error naming the closest one.
  const std::string err =
      TransformHarness("timestamp_parser", "formats: [unix]\ntimezone: Europe/Pari\n").error();
  EXPECT_NE(err.find("did you mean Europe/Paris?"), std::string::npos) << err;
}

TEST(TimestampParserTest, AConversionStrptimeCannotReadIsAConfigErrorNamingIt) {
  // Such a format would fail every event at run time; it is caught at load.
  for (const char* good : {"%d/%b/%Y:%H:%M:%S %z", "%Y-%m-%dT%H:%M:%S.%f%z", "%b %e %H:%M:%S", "%a, %d %b %Y %T %Z",
                           "%s", "%Y%m%d %I:%M:%S %p", "%F %R", "%j/%y %k:%M", "%%%Y", "%c", "%D %X"}) {
    TransformHarness h("timestamp_parser", std::string("formats: ['") + good + "']\n");
    EXPECT_TRUE(h.ok()) << good << ": " << h.error();
  }
  for (auto [format, named] : std::vector<std::pair<const char*, const char*>>{
           {"%Y-%m-%d %Q", "`%Q`"}, {"%Y %q", "`%q`"}, {"%H:%M:%S.%f %i", "`%i`"}}) {
    std::string e = TransformHarness("timestamp_parser", std::string("formats: ['") + format + "']\n").error();
    EXPECT_NE(e.find(std::string("strptime cannot read ") + named), std::string::npos) << format << ": " << e;
  }
  std::string e = TransformHarness("regex_parser", "patterns: ['(?P<t>.*)']\ntypes: { t: 'timestamp|%Y %Q' }\n").error();
  EXPECT_NE(e.find("strptime cannot read `%Q`"), std::string::npos) << e;
}

TEST(FilterTest, KeepsMatchingAndCountsTheRest) {
  TransformHarness h("filter",
                     "condition: { all: [ { field: status, gte: 500 }, { field: path, matches: '^/api/' } ] }\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({Make({{"status", Value(503)}, {"path", Value("/api/x")}}),
                           Make({{"status", Value(200)}, {"path", Value("/api/x")}}),
                           Make({{"status", Value(500)}, {"path", Value("/web")}}),
                           Make({{"status", Value(599)}, {"path", Value("/api/")}})});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].get("status")->as_int(), 503);
  EXPECT_EQ(out[1].get("status")->as_int(), 599);
  EXPECT_EQ(h.Discarded(true), 2);
  std::string e = TransformHarness("filter", "condition:\n  all:\n    - { field: status, gtee: 500 }\n").error();
  EXPECT_NE(e.find("test.yaml:3:24"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean `gte`"), std::string::npos) << e;
  EXPECT_NE(TransformHarness("filter", "{}\n").error().find("missing required option `transforms.t.condition`"),
            std::string::npos);
}

TEST(RouteTest, NamedOutputsCopiesAndUnmatched) {
  TransformHarness h("route", R"(
route:
  errors: { field: status, gte: 500 }
  api: { field: path, matches: '^/api/' }
)");
  ASSERT_TRUE(h.ok()) << h.error();
  ASSERT_EQ(h.named_outputs(), (std::vector<std::string>{"api", "errors", "_unmatched"}));
  auto outs = h.Run({Make({{"status", Value(503)}, {"path", Value("/api/x")}}),
                     Make({{"status", Value(200)}, {"path", Value("/api/y")}}),
                     Make({{"status", Value(500)}, {"path", Value("/web")}}),
                     Make({{"status", Value(200)}, {"path", Value("/web")}})});
  ASSERT_EQ(outs.size(), 4u);
  EXPECT_TRUE(outs[0].empty());
  ASSERT_EQ(outs[1].size(), 2u);  // api
  EXPECT_EQ(outs[1].events()[0].get("status")->as_int(), 503);
  EXPECT_EQ(outs[1].events()[1].get("path")->as_string(), "/api/y");
  ASSERT_EQ(outs[2].size(), 2u);  // errors
  EXPECT_EQ(outs[2].events()[0].get("path")->as_string(), "/api/x");
  EXPECT_EQ(outs[2].events()[1].get("path")->as_string(), "/web");
  ASSERT_EQ(outs[3].size(), 1u);  // _unmatched
  EXPECT_EQ(outs[3].events()[0].get("status")->as_int(), 200);
  EXPECT_NE(TransformHarness("route", "route: { _unmatched: {field: a, eq: 1} }\n").error().find("invalid output name"),
            std::string::npos);
  EXPECT_NE(TransformHarness("route", "route: { a.b: {field: a, eq: 1} }\n").error().find("invalid output name"),
            std::string::npos);
  EXPECT_NE(TransformHarness("route", "route: { x: {field: a, eqq: 1} }\n").error().find("transforms.t.route.x.eqq"),
            std::string::npos);
}

TEST(SampleTest, RateByCountAndByKey) {
  TransformHarness h("sample", "rate: 10\n");
  ASSERT_TRUE(h.ok()) << h.error();
  std::vector<Event> in;
  for (int i = 0; i < 1000; ++i) in.push_back(Make({{"i", Value(i)}}));
  auto out = h.RunDefault(std::move(in));
  EXPECT_EQ(out.size(), 100u);
  EXPECT_EQ(h.Discarded(true), 900);

  // By key: every event of one key shares its fate, in any instance.
  TransformHarness a("sample", "rate: 4\nkey_field: trace\n");
  TransformHarness b("sample", "rate: 4\nkey_field: trace\n");
  std::vector<Event> ea, eb;
  for (int i = 0; i < 4000; ++i) {
    ea.push_back(Make({{"trace", Value("t" + std::to_string(i % 400))}}));
    eb.push_back(Make({{"trace", Value("t" + std::to_string(i % 400))}}));
  }
  auto oa = a.RunDefault(std::move(ea));
  auto ob = b.RunDefault(std::move(eb));
  ASSERT_EQ(oa.size(), ob.size());
  EXPECT_EQ(oa.size() % 10, 0u);  // whole keys (10 events each) kept or dropped
  EXPECT_GT(oa.size(), 4000u / 4 / 2);
  EXPECT_LT(oa.size(), 4000u / 4 * 2);
  for (size_t i = 0; i < oa.size(); ++i) EXPECT_EQ(oa[i], ob[i]);

  TransformHarness ex("sample", "rate: 1000000\nexclude: { field: level, eq: error }\n");
  out = ex.RunDefault({Make({{"level", Value("error")}}), Make({{"level", Value("info")}}),
                       Make({{"level", Value("error")}}), Make({{"level", Value("info")}})});
  ASSERT_EQ(out.size(), 3u);  // both errors, and the first info (count 0)
  EXPECT_NE(TransformHarness("sample", "rate: 0\n").error().find("at least 1"), std::string::npos);
  EXPECT_NE(TransformHarness("sample", "rate: 2\nexclude: {field: a}\n").error().find("no operator"), std::string::npos);
}

}  // namespace
}  // namespace tributary::testing
