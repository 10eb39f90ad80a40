#include "config/schema.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tributary::config {
namespace {

struct Inner {
  std::string mode = "fast";
  int64_t depth = 3;
  static const Schema<Inner>& schema() {
    static const Schema<Inner> s = [] {
      Schema<Inner> s;
      s.Field("mode", &Inner::mode, "Mode.").OneOf({"fast", "safe"});
      s.Field("depth", &Inner::depth, "Depth.").Min(1).Max(10);
      return s;
    }();
    return s;
  }
};

struct Outer {
  std::string name;
  bool enabled = true;
  ByteSize size{1024};
  Millis wait_ms{500};
  Seconds timeout_secs{30};
  std::vector<std::string> include;
  std::optional<std::string> password;
  Regex pattern;
  Inner inner;
  static const Schema<Outer>& schema() {
    static const Schema<Outer> s = [] {
      Schema<Outer> s;
      s.Field("name", &Outer::name, "Name.").Required();
      s.Field("enabled", &Outer::enabled, "Enabled.");
      s.Field("size", &Outer::size, "Size.");
      s.Field("wait_ms", &Outer::wait_ms, "Wait.");
      s.Field("timeout_secs", &Outer::timeout_secs, "Timeout.");
      s.Field("include", &Outer::include, "Globs.");
      s.Field("password", &Outer::password, "Password.").Secret();
      s.Field("pattern", &Outer::pattern, "Regex.");
      s.Field("inner", &Outer::inner, "Nested.");
      return s;
    }();
    return s;
  }
};

bool ParseText(const std::string& text, Outer* out, Diagnostics* diag) {
  return Outer::schema().Parse(YAML::Load(text), out, ParseContext{diag, "t.yaml", "x"});
}

TEST(SchemaTest, ParsesEveryTypeAndKeepsDefaults) {
  Diagnostics diag;
  Outer o;
  ASSERT_TRUE(ParseText("name: a\nsize: 64MiB\nwait_ms: 2s\ntimeout_secs: 1500ms\ninclude: [a, b]\n"
                        "pattern: '^x+$'\ninner: { depth: 5 }\n",
                        &o, &diag))
      << diag.ToString();
  EXPECT_EQ(o.name, "a");
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.size.bytes, 64u * 1024 * 1024);
  EXPECT_EQ(o.wait_ms.ms, 2000);
  EXPECT_DOUBLE_EQ(o.timeout_secs.secs, 1.5);
  EXPECT_EQ(o.include, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.pattern.pattern, "^x+$");
  EXPECT_EQ(o.inner.mode, "fast");
  EXPECT_EQ(o.inner.depth, 5);
  EXPECT_FALSE(o.password.has_value());
}

TEST(SchemaTest, UnknownKeyGetsSuggestionAndLocation) {
  Diagnostics diag;
  Outer o;
  EXPECT_FALSE(ParseText("name: a\nincldue: [x]\n", &o, &diag));
  ASSERT_EQ(diag.error_count(), 1u);
  EXPECT_EQ(diag.all()[0].location.ToString(), "t.yaml:2:1");
  EXPECT_EQ(diag.all()[0].hint, "did you mean `include`?");
  EXPECT_NE(diag.all()[0].message.find("x.incldue"), std::string::npos);
}

TEST(SchemaTest, UnknownKeyThatBelongsInASubTableSaysWhere) {
  Diagnostics diag;
  Outer o;
  EXPECT_FALSE(ParseText("name: a\ndepth: 5\n", &o, &diag));
  ASSERT_EQ(diag.error_count(), 1u);
  EXPECT_EQ(diag.all()[0].hint, "did you mean `inner.depth`?");
}

TEST(SchemaTest, CollectsAllProblems) {
  Diagnostics diag;
  Outer o;
  EXPECT_FALSE(ParseText("enabled: maybe\nsize: lots\nwait_ms: [1]\npattern: '(unclosed'\n"
                         "inner: { mode: slow, depth: 99 }\n",
                         &o, &diag));
  // enabled, size, wait_ms, pattern, inner.mode, inner.depth, missing name.
  EXPECT_EQ(diag.error_count(), 7u) << diag.ToString();
  std::string all = diag.ToString();
  EXPECT_NE(all.find("t.yaml:1:10: error: `x.enabled` must be true or false"), std::string::npos) << all;
  EXPECT_NE(all.find("missing required option `x.name`"), std::string::npos) << all;
  EXPECT_NE(all.find("invalid regular expression"), std::string::npos) << all;
  EXPECT_NE(all.find("must be at most 10"), std::string::npos) << all;
  EXPECT_NE(all.find("must be one of: fast, safe"), std::string::npos) << all;
}

// What a user of other shippers writes first: one glob without brackets,
// and a misspelt required option, which is one mistake and one error.
TEST(SchemaTest, OneItemForAListAndAMisspeltRequiredOption) {
  Diagnostics diag;
  Outer o;
  ASSERT_TRUE(ParseText("name: a\ninclude: /var/log/*.log\n", &o, &diag)) << diag.ToString();
  EXPECT_EQ(o.include, std::vector<std::string>{"/var/log/*.log"});
  EXPECT_FALSE(ParseText("include: ~\n", &o, &diag));  // null is not an item
  Diagnostics misspelt;
  EXPECT_FALSE(ParseText("nme: a\n", &o, &misspelt));
  ASSERT_EQ(misspelt.error_count(), 1u) << misspelt.ToString();
  EXPECT_EQ(misspelt.all()[0].hint, "did you mean `name`?");
  // A word of an option's name, as other shippers name it.
  Diagnostics worded;
  EXPECT_FALSE(ParseText("name: a\nsecs: 5\n", &o, &worded));
  ASSERT_EQ(worded.error_count(), 1u) << worded.ToString();
  EXPECT_EQ(worded.all()[0].hint, "did you mean `timeout_secs`?");
}

struct Brokers {
  std::string servers;
  static const Schema<Brokers>& schema() {
    static const Schema<Brokers> s = [] {
      Schema<Brokers> s;
      s.Field("servers", &Brokers::servers, "Brokers.").JoinsList(",").Check<std::string>([](const std::string& v) {
        return v.empty() ? std::string("must not be empty") : "";
      });
      return s;
    }();
    return s;
  }
};

TEST(SchemaTest, AStringThatJoinsAList) {
  auto parse = [](const std::string& text, Brokers* b, Diagnostics* d) {
    return Brokers::schema().Parse(YAML::Load(text), b, ParseContext{d, "t.yaml", "x"});
  };
  Diagnostics diag;
  Brokers b;
  ASSERT_TRUE(parse("servers: [a:9092, b:9092]\n", &b, &diag)) << diag.ToString();
  EXPECT_EQ(b.servers, "a:9092,b:9092");
  ASSERT_TRUE(parse("servers: a:9092\n", &b, &diag)) << diag.ToString();
  EXPECT_EQ(b.servers, "a:9092");
  EXPECT_FALSE(parse("servers: [a, {b: 1}]\n", &b, &diag));
  EXPECT_FALSE(parse("servers: []\n", &b, &diag));  // checked after joining: empty
  EXPECT_EQ(Brokers::schema().Docs()[0].type, "string or list of string");
}

struct Checked {
  std::vector<std::string> formats;
  std::map<std::string, std::string> renames;
  static const Schema<Checked>& schema() {
    static const Schema<Checked> s = [] {
      Schema<Checked> s;
      s.Field("formats", &Checked::formats, "Formats.").Check<std::vector<std::string>>([](const auto& v) {
        if (v.empty()) return std::string("must list at least one format");
        for (const auto& f : v)
          if (f.find('Q') != std::string::npos) return "`" + f + "` has Q";
        return std::string();
      });
      s.Field("renames", &Checked::renames, "Renames.").Check<std::map<std::string, std::string>>([](const auto& m) {
        for (const auto& [from, to] : m)
          if (to.empty()) return std::string("field names must not be empty");
        return std::string();
      });
      return s;
    }();
    return s;
  }
};

// A check over a whole list or map reported at the option's first line:
// in block style, the first entry's, not the bad one's, and only the
// first bad entry.
TEST(SchemaTest, AListOrMapCheckPointsAtEachBadEntry) {
  auto parse = [](const std::string& text, Diagnostics* d) {
    Checked c;
    return Checked::schema().Parse(YAML::Load(text), &c, ParseContext{d, "t.yaml", "x"});
  };
  Diagnostics diag;
  EXPECT_FALSE(parse("formats:\n  - '%Y'\n  - '%Q'\n  - ok\n  - Q2\nrenames:\n  a: b\n  c: ''\n", &diag));
  ASSERT_EQ(diag.error_count(), 3u) << diag.ToString();
  EXPECT_EQ(diag.all()[0].location.ToString(), "t.yaml:3:5");
  EXPECT_EQ(diag.all()[0].message, "`x.formats[1]`: `%Q` has Q");
  EXPECT_EQ(diag.all()[1].location.ToString(), "t.yaml:5:5");
  EXPECT_EQ(diag.all()[1].message, "`x.formats[3]`: `Q2` has Q");
  EXPECT_EQ(diag.all()[2].location.ToString(), "t.yaml:8:3");
  EXPECT_EQ(diag.all()[2].message, "`x.renames`: field names must not be empty");
  // Flow style: the entry's column.
  Diagnostics flow;
  EXPECT_FALSE(parse("formats: [a, '%Q']\n", &flow));
  ASSERT_EQ(flow.error_count(), 1u) << flow.ToString();
  EXPECT_EQ(flow.all()[0].location.ToString(), "t.yaml:1:14");
  // A problem of the whole, and one item written alone: at the option.
  Diagnostics whole;
  EXPECT_FALSE(parse("formats: []\n", &whole));
  ASSERT_EQ(whole.error_count(), 1u) << whole.ToString();
  EXPECT_EQ(whole.all()[0].ToString(), "t.yaml:1:10: error: `x.formats`: must list at least one format");
  Diagnostics alone;
  EXPECT_FALSE(parse("formats: '%Q'\n", &alone));
  ASSERT_EQ(alone.error_count(), 1u) << alone.ToString();
  EXPECT_EQ(alone.all()[0].ToString(), "t.yaml:1:10: error: `x.formats`: `%Q` has Q");
}

// `topic: {{ service }}` unquoted, as Vector and Helm users write it, is a
// map in YAML: the error said only "got a map".
TEST(SchemaTest, AnUnquotedTemplateIsToldToBeQuoted) {
  Diagnostics diag;
  Outer o;
  EXPECT_FALSE(ParseText("name: {{ service }}\n", &o, &diag));
  ASSERT_EQ(diag.error_count(), 1u) << diag.ToString();
  EXPECT_EQ(diag.all()[0].message, "`x.name` must be a string, got a map");
  EXPECT_EQ(diag.all()[0].hint, "a `{{ field }}` template must be quoted: write \"{{ ... }}\" in double or single quotes");
  Diagnostics quoted;
  ASSERT_TRUE(ParseText("name: \"{{ service }}\"\n", &o, &quoted)) << quoted.ToString();
  EXPECT_EQ(o.name, "{{ service }}");
}

TEST(SchemaTest, SecretValuesAreNotEchoed) {
  Diagnostics diag;
  Outer o;
  EXPECT_FALSE(ParseText("name: a\npassword: {nested: s3cret}\n", &o, &diag));
  EXPECT_EQ(diag.ToString().find("s3cret"), std::string::npos);
}

TEST(SchemaTest, SizesAndDurations) {
  uint64_t b;
  EXPECT_TRUE(ParseByteSize("2M", &b));
  EXPECT_EQ(b, 2000000u);
  EXPECT_TRUE(ParseByteSize("1.5KiB", &b));
  EXPECT_EQ(b, 1536u);
  EXPECT_FALSE(ParseByteSize("12 parsecs", &b));
  double ms;
  EXPECT_TRUE(ParseDuration("250ms", 1000, &ms));
  EXPECT_DOUBLE_EQ(ms, 250);
  EXPECT_TRUE(ParseDuration("3", 1000, &ms));
  EXPECT_DOUBLE_EQ(ms, 3000);
  EXPECT_TRUE(ParseDuration("1m", 1, &ms));
  EXPECT_DOUBLE_EQ(ms, 60000);
  EXPECT_FALSE(ParseDuration("-1s", 1, &ms));
  // Beyond what fits: an error, not a wrapped or saturated number.
  EXPECT_TRUE(ParseByteSize("1000000TB", &b));
  EXPECT_FALSE(ParseByteSize("100000000TiB", &b));
  EXPECT_FALSE(ParseDuration("99999999999999999999999d", 1, &ms));
  EXPECT_TRUE(ParseDuration("36500d", 1, &ms));
  EXPECT_FALSE(ParseDuration("36501d", 1, &ms));
  // Floats in exponent form, which the docs list as numbers, were "not a
  // duration" ("1e3" read as 1 with the unit "e3").
  EXPECT_TRUE(ParseDuration("1e3", 1, &ms));
  EXPECT_DOUBLE_EQ(ms, 1000);
  EXPECT_TRUE(ParseDuration("2.5E1", 1000, &ms));
  EXPECT_DOUBLE_EQ(ms, 25000);
  EXPECT_FALSE(ParseDuration("-1e3", 1, &ms));
  EXPECT_TRUE(ParseByteSize("1e6", &b));
  EXPECT_EQ(b, 1000000u);
  EXPECT_FALSE(ParseByteSize("1e30", &b));
  EXPECT_TRUE(ParseDuration("5sec", 1, &ms));  // a unit with an `e` is still a unit
  EXPECT_DOUBLE_EQ(ms, 5000);
}

// A duration past what the runtime's clocks hold (int64 nanoseconds from
// their epoch) was accepted (the bound was int64 milliseconds) and
// wrapped around at run time: `timeout_secs: 1000000d` timed every
// Elasticsearch request out at once, and each was sent again. An error
// at its location now, stating the longest duration.
TEST(SchemaTest, ADurationTooLongForTheClocksIsAnError) {
  for (const std::string value : {"1000000d", "106752d", "9999999999", "36501d", "1e20"}) {
    Diagnostics diag;
    Outer o;
    EXPECT_FALSE(ParseText("name: a\ntimeout_secs: " + value + "\n", &o, &diag)) << value;
    ASSERT_EQ(diag.error_count(), 1u) << diag.ToString();
    EXPECT_EQ(diag.all()[0].location.ToString(), "t.yaml:2:15");
    EXPECT_EQ(diag.all()[0].message, "`x.timeout_secs` is too long (got \"" + value + "\")");
    EXPECT_NE(diag.all()[0].hint.find("the longest duration is 36500d (100 years)"), std::string::npos);
  }
  Diagnostics diag;
  Outer o;
  ASSERT_TRUE(ParseText("name: a\ntimeout_secs: 36500d\nwait_ms: 36500d\n", &o, &diag)) << diag.ToString();
  EXPECT_EQ(o.timeout_secs.get(), std::chrono::hours(24 * 36500));
  EXPECT_EQ(o.wait_ms.get(), std::chrono::hours(24 * 36500));
  // What the runtime does with it: a deadline from now, still in the future.
  const auto now = std::chrono::steady_clock::now();
  EXPECT_GT(now + o.timeout_secs.get(), now);
  EXPECT_GT(std::chrono::system_clock::now() + o.wait_ms.get(), std::chrono::system_clock::now());
}

// `flush_interval_ms: 500us` became 0 (for a disk buffer: fsync every
// batch) and `1.5` became 1, silently. A duration is held in whole
// milliseconds: anything else is an error naming the two nearest.
TEST(SchemaTest, ADurationThatIsNotWholeMillisecondsIsAnError) {
  for (const auto& [text, hint] : std::vector<std::pair<std::string, std::string>>{
           {"wait_ms: 500us", "write 0ms or 1ms"},
           {"wait_ms: 1.5", "write 1ms or 2ms"},
           {"wait_ms: 2500001ns", "write 2ms or 3ms"},
           {"timeout_secs: 0.0005", "write 0ms or 1ms"},
           {"timeout_secs: 1.0015", "write 1001ms or 1002ms"}}) {
    Diagnostics diag;
    Outer o;
    EXPECT_FALSE(ParseText("name: a\n" + text + "\n", &o, &diag)) << text;
    ASSERT_EQ(diag.error_count(), 1u) << diag.ToString();
    EXPECT_EQ(diag.all()[0].location.line, 2) << text;
    EXPECT_NE(diag.all()[0].message.find("must be a whole number of milliseconds"), std::string::npos)
        << diag.ToString();
    EXPECT_EQ(diag.all()[0].hint, "durations are counted in milliseconds: " + hint) << text;
  }
  // Fractions that are whole milliseconds are fine, and kept exactly.
  Diagnostics diag;
  Outer o;
  ASSERT_TRUE(ParseText("name: a\nwait_ms: 1.5s\ntimeout_secs: 1.001\n", &o, &diag)) << diag.ToString();
  EXPECT_EQ(o.wait_ms.ms, 1500);
  EXPECT_EQ(o.timeout_secs.get(), std::chrono::milliseconds(1001));
  ASSERT_TRUE(ParseText("name: a\nwait_ms: 3000us\ntimeout_secs: 0.1\n", &o, &diag)) << diag.ToString();
  EXPECT_EQ(o.wait_ms.ms, 3);
  EXPECT_EQ(o.timeout_secs.get(), std::chrono::milliseconds(100));
}

struct Numbers {
  int64_t count = 0;
  int small = 0;
  uint64_t big = 0;
  double ratio = 0;
  ByteSize size{0};
  Millis wait_ms{0};
  Seconds timeout_secs{0};
  static const Schema<Numbers>& schema() {
    static const Schema<Numbers> s = [] {
      Schema<Numbers> s;
      s.Field("count", &Numbers::count, "Count.");
      s.Field("small", &Numbers::small, "Small.");
      s.Field("big", &Numbers::big, "Big.");
      s.Field("ratio", &Numbers::ratio, "Ratio.");
      s.Field("size", &Numbers::size, "Size.");
      s.Field("wait_ms", &Numbers::wait_ms, "Wait.");
      s.Field("timeout_secs", &Numbers::timeout_secs, "Timeout.");
      return s;
    }();
    return s;
  }
};

// An integer option takes what YAML 1.2's core schema reads as an integer:
// `0x10` (hex) and `0o20` (octal) were "must be an integer", and `+2` too.
// Garbage is still an error at its place, with the forms that work.
TEST(SchemaTest, IntegerOptionsTakeYaml12HexAndOctal) {
  auto parse = [](const std::string& text, Numbers* n, Diagnostics* diag) {
    return Numbers::schema().Parse(YAML::Load(text), n, ParseContext{diag, "t.yaml", "x"});
  };
  Diagnostics diag;
  Numbers n;
  ASSERT_TRUE(parse("count: 0x10\nsmall: 0o17\nbig: 0xFFFFFFFFFFFFFFFF\nratio: 0x8\nsize: 0x100000\n"
                    "wait_ms: 0o1750\ntimeout_secs: +2\n",
                    &n, &diag))
      << diag.ToString();
  EXPECT_EQ(n.count, 16);
  EXPECT_EQ(n.small, 15);
  EXPECT_EQ(n.big, UINT64_MAX);
  EXPECT_DOUBLE_EQ(n.ratio, 8);
  EXPECT_EQ(n.size.bytes, 1048576u);
  EXPECT_EQ(n.wait_ms.ms, 1000);
  EXPECT_DOUBLE_EQ(n.timeout_secs.secs, 2);
  ASSERT_TRUE(parse("count: -9223372036854775808\nratio: -1.5e3\n", &n, &diag)) << diag.ToString();
  EXPECT_EQ(n.count, INT64_MIN);
  EXPECT_DOUBLE_EQ(n.ratio, -1500);

  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"count: 0x1G", "`x.count` must be an integer (got \"0x1G\")"},
           {"count: -0x10", "`x.count` must be an integer (got \"-0x10\")"},
           {"count: 0x8000000000000000", "`x.count` is out of range (got \"0x8000000000000000\")"},
           {"small: 0x80000000", "`x.small` is out of range (got \"0x80000000\")"},
           {"big: -1", "`x.big` must be a non-negative integer (got \"-1\")"},
           {"ratio: .inf", "`x.ratio` must be a finite number (got \".inf\")"},
           {"ratio: 0x", "`x.ratio` must be a number (got \"0x\")"},
           {"size: 0x1Q", "`x.size` must be a size in bytes (got \"0x1Q\")"}}) {
    Diagnostics d;
    Numbers m;
    EXPECT_FALSE(parse(text, &m, &d)) << text;
    ASSERT_EQ(d.error_count(), 1u) << text << "\n" << d.ToString();
    EXPECT_EQ(d.all()[0].message, message) << text;
    EXPECT_EQ(d.all()[0].location.ToString(), "t.yaml:1:" + std::to_string(text.find(':') + 3)) << text;
  }
  Diagnostics d;
  EXPECT_FALSE(parse("count: 0x1G", &n, &d));
  EXPECT_EQ(d.all()[0].hint, "a whole number: 16, or in hex 0x10, in octal 0o20");
}

// YAML 1.2's core schema, tag by tag (yaml.org/spec/1.2.2, 10.3.2).
TEST(SchemaTest, ResolveCoreScalarFollowsTheYaml12CoreSchema) {
  using Kind = CoreScalar::Kind;
  for (const char* s : {"", "~", "null", "Null", "NULL"}) EXPECT_EQ(ResolveCoreScalar(s).kind, Kind::kNull) << s;
  for (const char* s : {"true", "True", "TRUE"}) {
    EXPECT_EQ(ResolveCoreScalar(s).kind, Kind::kBool) << s;
    EXPECT_TRUE(ResolveCoreScalar(s).b) << s;
  }
  EXPECT_FALSE(ResolveCoreScalar("FALSE").b);
  for (const auto& [s, v] : std::vector<std::pair<std::string, int64_t>>{
           {"0", 0}, {"-12", -12}, {"+12", 12}, {"007", 7}, {"0x1F", 31}, {"0xff", 255}, {"0o17", 15}, {"0o0", 0}}) {
    EXPECT_EQ(ResolveCoreScalar(s).kind, Kind::kInt) << s;
    EXPECT_EQ(ResolveCoreScalar(s).i, v) << s;
  }
  for (const auto& [s, v] : std::vector<std::pair<std::string, double>>{
           {"1.5", 1.5}, {"-.5", -0.5}, {"+.5", 0.5}, {"1.", 1}, {"1e3", 1000}, {"1.5E-1", 0.15}, {"-2e+2", -200},
           {"9223372036854775808", 9223372036854775808.0}, {"0xFFFFFFFFFFFFFFFF", 18446744073709551615.0}}) {
    EXPECT_EQ(ResolveCoreScalar(s).kind, Kind::kFloat) << s;
    EXPECT_DOUBLE_EQ(ResolveCoreScalar(s).d, v) << s;
  }
  for (const char* s : {".inf", ".Inf", "+.INF", "1e400"}) EXPECT_EQ(ResolveCoreScalar(s).d, HUGE_VAL) << s;
  EXPECT_EQ(ResolveCoreScalar("-.inf").d, -HUGE_VAL);
  for (const char* s : {".nan", ".NaN", ".NAN"}) EXPECT_TRUE(std::isnan(ResolveCoreScalar(s).d)) << s;
  for (const char* s : {"yes", "on", "tRUE", "nan", "inf", ".iNf", "-.nan", "Infinity", "0X1F", "-0x1F", "+0o17",
                        "0x", "0o", "0o8", "0x1G", "1e", "e3", ".", "+", "-", "1_000", "1:30", "0b101", " 1", "1 "})
    EXPECT_EQ(ResolveCoreScalar(s).kind, Kind::kString) << s;
}

struct Sized {
  ByteSize max_size{64 << 20};
  static const Schema<Sized>& schema() {
    static const Schema<Sized> s = [] {
      Schema<Sized> s;
      s.Field("max_size", &Sized::max_size, "Size.").Min(1 << 20).Max(4'000'000'000);
      return s;
    }();
    return s;
  }
};

// A size's bounds are stated as a user writes a size, not as a bare
// number of bytes ("must be at least 1048576").
TEST(SchemaTest, SizeBoundsAreStatedInTheSizeSyntax) {
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"max_size: 1000KiB", "`x.max_size` must be at least 1MiB"},
           {"max_size: 5GB", "`x.max_size` must be at most 4GB"}}) {
    Diagnostics diag;
    Sized out;
    EXPECT_FALSE(Sized::schema().Parse(YAML::Load(text), &out, ParseContext{&diag, "t.yaml", "x"}));
    ASSERT_EQ(diag.error_count(), 1u) << text;
    EXPECT_EQ(diag.all()[0].message, message);
  }
  EXPECT_EQ(Sized::schema().Docs()[0].default_value, "64MiB");
  for (const auto& [bytes, text] : std::vector<std::pair<uint64_t, std::string>>{
           {0, "0"}, {1, "1"}, {1000, "1KB"}, {1024, "1KiB"}, {1536, "1536"}, {4096, "4KiB"},
           {10'000'000, "10MB"}, {1 << 20, "1MiB"}, {1'024'000, "1000KiB"}, {3ull << 40, "3TiB"}}) {
    EXPECT_EQ(FormatByteSize(bytes), text);
    uint64_t back = 0;
    EXPECT_TRUE(ParseByteSize(text, &back)) << text;
    EXPECT_EQ(back, bytes) << text;
  }
}

TEST(SchemaTest, DocsListEveryOptionWithDefaults) {
  auto docs = Outer::schema().Docs();
  ASSERT_EQ(docs.size(), 9u);
  EXPECT_EQ(docs[0].name, "name");
  EXPECT_TRUE(docs[0].required);
  EXPECT_EQ(docs[2].default_value, "1KiB");
  EXPECT_TRUE(docs[6].secret);
  ASSERT_NE(docs[8].nested, nullptr);
  EXPECT_EQ(docs[8].nested->Names(), (std::vector<std::string>{"mode", "depth"}));
}

}  // namespace
}  // namespace tributary::config
