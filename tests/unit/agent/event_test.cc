#include "agent/event.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "agent/json.h"

namespace tributary {
namespace {

TEST(EventTest, SetGetAndDottedPaths) {
  Event e;
  e.set("message", "hello");
  e.set("http.status", 200);
  ASSERT_NE(e.get("message"), nullptr);
  EXPECT_EQ(e.get("message")->as_string(), "hello");
  ASSERT_NE(e.get("http.status"), nullptr);
  EXPECT_EQ(e.get("http.status")->as_int(), 200);
  ASSERT_TRUE(e.get("http")->is_map());
  EXPECT_TRUE(e.remove("http.status"));
  EXPECT_EQ(e.get("http.status"), nullptr);
  EXPECT_EQ(e.get("nope"), nullptr);
}

TEST(EventTest, ExactKeyWithDotWinsOverPath) {
  Event e;
  e.fields().set("a.b", 1);
  e.set("a.b", 2);
  EXPECT_EQ(e.fields().size(), 1u);
  EXPECT_EQ(e.get("a.b")->as_int(), 2);
}

TEST(EventTest, KeepsInsertionOrderInJson) {
  Event e;
  e.set("z", 1);
  e.set("a", "x");
  e.set("m", true);
  std::string out;
  AppendJson(e, &out);
  EXPECT_EQ(out, R"({"z":1,"a":"x","m":true})");
}

std::string JsonOf(const Fields& f) {
  std::string out;
  AppendJson(f, &out);
  return out;
}

// Removed fields stay behind the live ones as spares (event.h): nothing
// that reads the map may see them.
TEST(FieldsTest, RemovedFieldsAreInvisible) {
  Fields f;
  f.append("a", "first");
  f.append("b", int64_t{2});
  f.append("c", "third");
  ASSERT_TRUE(f.erase("b"));
  EXPECT_FALSE(f.erase("b"));
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(f.find("b"), nullptr);
  EXPECT_EQ(JsonOf(f), R"({"a":"first","c":"third"})");
  f.truncate(1);
  EXPECT_EQ(f.find("c"), nullptr);
  EXPECT_EQ(JsonOf(f), R"({"a":"first"})");
  Fields same;
  same.append("a", "first");
  EXPECT_EQ(f, same);
  Fields copy = f;
  EXPECT_EQ(copy, same);
  f.clear();
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.find("a"), nullptr);
  EXPECT_EQ(JsonOf(f), "{}");
  // An append writes a spare over: key, kind and value are the new ones.
  f.append("x", true);
  f.append("a", int64_t{7});
  f.append("y", "new");
  f.append("z", nullptr);
  EXPECT_EQ(JsonOf(f), R"({"x":true,"a":7,"y":"new","z":null})");
}

TEST(FieldsTest, AnAppendReusesTheBufferOfTheSpareItWrites) {
  Fields f;
  const std::string long_line(200, 'x');
  f.append("message", std::string_view(long_line));
  const char* buffer = f.value(0).as_string().data();
  f.clear();
  f.append("message", std::string_view("a shorter line, but not short enough to fit in place"));
  EXPECT_EQ(f.value(0).as_string().data(), buffer);
  EXPECT_EQ(f.value(0).as_string(), "a shorter line, but not short enough to fit in place");
  // Erased from the middle: the later fields keep their order and the
  // erased one is the next to be written.
  f.append("file", "/var/log/app.log");
  f.append("offset", int64_t{1});
  ASSERT_TRUE(f.erase("message"));
  EXPECT_EQ(JsonOf(f), R"({"file":"/var/log/app.log","offset":1})");
  f.append("host", std::string_view("web-1.example.com, a name too long for a small string"));
  EXPECT_EQ(f.value(2).as_string().data(), buffer);
  EXPECT_EQ(JsonOf(f), R"({"file":"/var/log/app.log","offset":1,"host":"web-1.example.com, a name too long for a small string"})");
}

TEST(FieldsTest, ASpareKeepsNoLargeBufferForASmallValue) {
  Fields f;
  f.append("big", std::string(Fields::kSpareStringCapacity * 4, 'x'));
  Fields inner;
  inner.append("k", "v");
  f.append("map", std::move(inner));
  f.append("array", Array{Value(1), Value(2)});
  f.clear();
  f.append("big", "small");
  EXPECT_LE(f.value(0).as_string().capacity(), Fields::kSpareStringCapacity);
  f.append("map", "m");
  f.append("array", nullptr);
  EXPECT_EQ(JsonOf(f), R"({"big":"small","map":"m","array":null})");
  // A large buffer is reused for a value of at least a quarter of it.
  f.clear();
  f.append("big", std::string(Fields::kSpareStringCapacity * 4, 'x'));
  const char* buffer = f.value(0).as_string().data();
  f.clear();
  f.append("big", std::string_view(std::string(Fields::kSpareStringCapacity * 2, 'y')));
  EXPECT_EQ(f.value(0).as_string().data(), buffer);
  EXPECT_EQ(f.value(0).as_string(), std::string(Fields::kSpareStringCapacity * 2, 'y'));
}

// A source writes a Timestamp, a parser overwrites it with the record's
// own text, and the recycled event gets a Timestamp again: the text's
// buffer waits in the last spare instead of being freed and allocated.
TEST(FieldsTest, AFieldChangingKindKeepsItsStringBufferInTheLastSpare) {
  const std::string first(40, 'a'), second(30, 'b');
  Fields f;
  f.append("timestamp", Timestamp{});
  f.append("n", int64_t{1});
  f.append("m", int64_t{2});
  f.assign_at(0, std::string_view(first));
  const char* buffer = f.value(0).as_string().data();
  for (int line = 0; line < 3; ++line) {
    f.clear();
    f.append("timestamp", Timestamp{});  // the string goes to the last spare ("m")
    ASSERT_TRUE(f.value(0).is_timestamp());
    f.append("n", int64_t{line});
    EXPECT_EQ(JsonOf(f), R"({"timestamp":"1970-01-01T00:00:00.000000000Z","n":)" + std::to_string(line) + "}");
    f.assign_at(0, std::string_view(second));  // and comes back
    EXPECT_EQ(f.value(0).as_string().data(), buffer);
    f.append("m", int64_t{2});
    EXPECT_EQ(JsonOf(f), R"({"timestamp":")" + second + R"(","n":)" + std::to_string(line) + R"(,"m":2})");
  }
  // With no spare behind it, a field simply changes kind.
  f.assign_at(2, std::string_view(first));
  f.assign_at(2, 1.5);
  EXPECT_EQ(JsonOf(f), R"({"timestamp":")" + second + R"(","n":2,"m":1.5})");
}

TEST(FieldsTest, CopiesAndMovesCarryOnlyTheLiveFields) {
  Fields f;
  for (int i = 0; i < 8; ++i) f.append("k" + std::to_string(i), int64_t{i});
  f.truncate(2);
  Fields copy(f);
  EXPECT_EQ(copy.size(), 2u);
  EXPECT_EQ(JsonOf(copy), R"({"k0":0,"k1":1})");
  copy.append("n", "added");
  EXPECT_EQ(JsonOf(copy), R"({"k0":0,"k1":1,"n":"added"})");
  EXPECT_EQ(JsonOf(f), R"({"k0":0,"k1":1})");
  Fields moved(std::move(f));
  EXPECT_EQ(JsonOf(moved), R"({"k0":0,"k1":1})");
  EXPECT_TRUE(f.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty and usable
  f.append("again", 1);
  EXPECT_EQ(JsonOf(f), R"({"again":1})");
}

TEST(JsonTest, EscapesAndReplacesInvalidUtf8) {
  std::string out;
  AppendJsonString(std::string("a\"b\\c\n\x01\xff\xc3\xa9", 10), &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\xC3\xA9\"");
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
}

// The escaper scans eight or sixteen bytes at a time; a plain byte-by-byte escaper
// is the reference, on strings with every special byte at every position.
std::string ReferenceJsonString(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::string_view rest = s.substr(i);
      size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
      if (n != 0 && n <= rest.size() && IsValidUtf8(rest.substr(0, n))) {
        out.append(rest.substr(0, n));
        i += n;
      } else {
        out += "\xEF\xBF\xBD";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char esc[7];
          std::snprintf(esc, sizeof esc, "\\u%04x", c);
          out += esc;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out + "\"";
}

TEST(JsonTest, EscaperMatchesAByteByByteReference) {
  const std::vector<std::string> specials = {"\"", "\\", "\n", "\x01", "\x1f", " ", "\x7f", "\xff", "\xC3\xA9",
                                             "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xC3", "\xED\xA0\x80", "!", "#", "]"};
  for (size_t len = 0; len <= 40; ++len) {
    for (size_t pos = 0; pos <= len; ++pos) {
      for (const std::string& sp : specials) {
        std::string s(len, 'a');
        s.insert(pos, sp);
        std::string got;
        AppendJsonString(s, &got);
        ASSERT_EQ(got, ReferenceJsonString(s)) << "len " << len << " pos " << pos;
      }
    }
  }
  std::mt19937 rng(7);
  for (int n = 0; n < 2000; ++n) {
    std::string s(rng() % 80, ' ');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 'a' + rng() % 26);
    std::string got;
    AppendJsonString(s, &got);
    ASSERT_EQ(got, ReferenceJsonString(s));
  }
}

// The encoder writes through a cursor into the caller's string, growing it
// ahead and cutting it back: what was there before stays, and documents far
// larger than one growth step (long escaped strings, deep and wide values)
// come out whole and parse back to what went in.
TEST(JsonTest, LargeDocumentsAppendWholeAfterWhatTheBufferHeld) {
  std::mt19937 rng(11);
  Fields f;
  for (int i = 0; i < 300; ++i) {
    std::string s(rng() % 3000, 'x');
    for (char& c : s) c = "ab\"\\\n\x01 z"[rng() % 8];
    Array a{Value(int64_t{i}), Value(0.5 * i), Value(true), Value(nullptr), Value(s)};
    Fields inner;
    inner.set("s", Value(s));
    inner.set("t", Value(Timestamp(std::chrono::nanoseconds(int64_t{1700000000123456789} + i))));
    a.push_back(Value(std::move(inner)));
    f.set("k" + std::to_string(i), Value(std::move(a)));
  }
  std::string out = "prefix:";
  AppendJson(f, &out);
  ASSERT_EQ(out.substr(0, 7), "prefix:");
  JsonParser parser;
  Value back;
  ASSERT_TRUE(parser.Parse(out.substr(7), &back).ok());
  std::string again;
  AppendJson(back, &again);
  EXPECT_EQ(again, out.substr(7));
  ASSERT_TRUE(back.is_map());
  ASSERT_EQ(back.as_map().size(), 300u);
  const Value* first = back.as_map().find("k0");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->as_array()[4], f.find("k0")->as_array()[4]);  // the string, escapes and all
}

TEST(JsonTest, RoundTripsThroughParser) {
  JsonParser parser;
  Value v;
  ASSERT_TRUE(parser.Parse(R"({"a":1,"b":[true,null,2.5],"c":{"d":"e"}})", &v).ok());
  ASSERT_TRUE(v.is_map());
  std::string out;
  AppendJson(v, &out);
  EXPECT_EQ(out, R"({"a":1,"b":[true,null,2.5],"c":{"d":"e"}})");
  EXPECT_FALSE(parser.Parse("{not json", &v).ok());
}

// A float stays a float on the way out: a whole value keeps its ".0" (it
// was written `123456789`, which Elasticsearch maps as a long and the next
// hop parses as an int), and a number beyond int64, read as a double,
// is written as one.
TEST(JsonTest, AWholeFloatIsWrittenAsAFloat) {
  auto json = [](const Value& v) {
    std::string out;
    AppendJson(v, &out);
    return out;
  };
  EXPECT_EQ(json(Value(123456789.0)), "123456789.0");
  EXPECT_EQ(json(Value(-2.0)), "-2.0");
  EXPECT_EQ(json(Value(0.0)), "0.0");
  EXPECT_EQ(json(Value(2.5)), "2.5");
  EXPECT_EQ(json(Value(1e300)), "1e+300");
  EXPECT_EQ(json(Value(int64_t{123456789})), "123456789");
  JsonParser parser;
  Value v;
  ASSERT_TRUE(parser.Parse(R"({"f":123456789.0,"u":18446744073709551615,"i":7})", &v).ok());
  const std::string out = json(v);
  EXPECT_EQ(out, R"({"f":123456789.0,"u":18446744073709551616.0,"i":7})");
  // What it wrote reads back as the same kinds.
  Value again;
  ASSERT_TRUE(parser.Parse(out, &again).ok());
  EXPECT_TRUE(again.as_map().find("f")->is_double());
  EXPECT_TRUE(again.as_map().find("u")->is_double());
  EXPECT_TRUE(again.as_map().find("i")->is_int());
}

// One recycled map takes documents of changing shapes: every result equals
// a fresh parse, and a nested map or array of the same kind is written
// over in place rather than rebuilt.
TEST(JsonTest, MergingIntoARecycledMapEqualsAFreshParse) {
  const char* docs[] = {
      R"({"a":{"x":1,"y":"a string longer than the small-string buffer"},"b":[1,"two",{"c":3}],"n":null})",
      R"({"a":[1,2.5],"b":{"z":null},"n":"now a string"})",
      R"({"a":{"y":"t"},"b":[false,"two, again, and long enough to be on the heap",{"c":{"d":[]}}]})",
      R"({"n":18446744073709551615,"a":{"x":{"deeper":true},"y":"u"},"b":[]})",
      R"({"a":{"y":"v","x":-1},"b":[{"c":"x"}],"t":"2024-10-01T00:00:00Z"})",
  };
  JsonParser parser;
  Fields recycled;
  for (int round = 0; round < 3; ++round) {
    for (const char* doc : docs) {
      recycled.clear();
      recycled.append("t", Timestamp{});  // as a source writes it; the last document overwrites it
      ASSERT_TRUE(parser.ParseObjectInto(doc, &recycled).ok()) << doc;
      Fields fresh;
      fresh.append("t", Timestamp{});
      ASSERT_TRUE(parser.ParseObjectInto(doc, &fresh).ok()) << doc;
      EXPECT_EQ(recycled, fresh) << doc;
      EXPECT_EQ(JsonOf(recycled), JsonOf(fresh)) << doc;
    }
  }
  // The same shape again: the nested map and the array keep their storage.
  recycled.clear();
  ASSERT_TRUE(parser.ParseObjectInto(docs[2], &recycled).ok());
  const Fields* map = &recycled.find("a")->as_map();
  const Value* items = recycled.find("b")->as_array().data();
  recycled.clear();
  ASSERT_TRUE(parser.ParseObjectInto(docs[2], &recycled).ok());
  EXPECT_EQ(&recycled.find("a")->as_map(), map);
  EXPECT_EQ(recycled.find("b")->as_array().data(), items);
}

TEST(FieldsTest, AnEmptyMapAssignedOverAMapClearsIt) {
  Value v(Fields{});
  v.as_map().append("k", std::string_view("a value too long for the small-string buffer"));
  const char* buffer = v.as_map().value(0).as_string().data();
  v.assign_reusing(Fields());
  ASSERT_TRUE(v.is_map());
  EXPECT_TRUE(v.as_map().empty());
  v.as_map().append("k", std::string_view("another value too long for the small buffer"));
  EXPECT_EQ(v.as_map().value(0).as_string().data(), buffer);
  // A map that is not empty replaces the old one; so does any other kind.
  Fields other;
  other.append("o", 1);
  v.assign_reusing(Fields(other));
  EXPECT_EQ(v, Value(other));
  v.assign_reusing(Fields());
  v.assign_reusing(int64_t{7});
  EXPECT_EQ(v, Value(7));
  // append_slot hands out the spare's old value for the caller to write.
  Fields f;
  f.append("a", "x");
  f.clear();
  Value& slot = f.append_slot("b");
  EXPECT_EQ(f.key(0), "b");
  slot.assign_reusing(int64_t{2});
  EXPECT_EQ(JsonOf(f), R"({"b":2})");
  f.append_slot("c") = Value(true);  // past the spares: a new field, null until written
  EXPECT_EQ(JsonOf(f), R"({"b":2,"c":true})");
}

TEST(FieldsTest, AssignTextGivesEveryLengthAndKeepsTheBufferWhenItFits) {
  const std::string source = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
  for (size_t before = 0; before <= 40; ++before) {
    for (size_t after = 0; after <= 40; ++after) {
      std::string s(before, '#');
      s.reserve(64);
      const char* buffer = s.data();
      const std::string_view v(source.data() + 3, after);
      detail::AssignText(s, v);
      ASSERT_EQ(s, v) << before << " -> " << after;
      ASSERT_EQ(s.c_str()[after], '\0') << before << " -> " << after;
      EXPECT_EQ(s.data(), buffer) << before << " -> " << after;
    }
  }
  // A part of the string itself, as std::string::assign allows.
  for (size_t from = 0; from <= 20; ++from) {
    for (size_t n = 0; from + n <= 30; ++n) {
      std::string s = source.substr(0, 30);
      detail::AssignText(s, std::string_view(s).substr(from, n));
      ASSERT_EQ(s, source.substr(from, n)) << from << "+" << n;
    }
  }
}

TEST(JsonTest, DepthIsBounded) {
  JsonParser parser(8);
  std::string deep(20, '[');
  deep += std::string(20, ']');
  Value v;
  Status s = parser.Parse(deep, &v);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("deeper"), std::string::npos);
}

// Depth is the most objects and arrays nested in one another, empty ones
// included: simdjson's own bound skipped `{}` and `[]`, so {"a":{}} passed
// max_depth 1. Random documents (long and short, so that both the quick
// path and the tape walk run) against the depth they were built with.
TEST(JsonTest, DepthCountsEmptyObjectsAndArrays) {
  std::mt19937_64 rng(5);
  std::function<std::string(int, int*)> gen = [&](int level, int* depth) -> std::string {
    *depth = std::max(*depth, level);
    std::string out;
    const bool object = rng() % 2 == 0;
    out += object ? '{' : '[';
    const int n = level > 6 ? 0 : static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      if (k) out += ',';
      if (object) out += "\"k" + std::to_string(k) + "\":";
      switch (rng() % 5) {
        case 0: out += gen(level + 1, depth); break;
        case 1: out += "1.5"; break;
        case 2: out += "\"s\""; break;
        case 3: {  // a long, shallow value
          *depth = std::max(*depth, level + 1);
          out += "[1";
          for (int x = static_cast<int>(rng() % 40); x > 0; --x) out += ",1";
          out += "]";
          break;
        }
        default: out += gen(level + 1, depth); break;
      }
    }
    out += object ? '}' : ']';
    return out;
  };
  for (int round = 0; round < 3000; ++round) {
    int depth = 0;
    const std::string doc = gen(1, &depth);
    const size_t max_depth = 1 + rng() % 7;
    JsonParser parser(max_depth);
    Value v;
    Status s = parser.Parse(doc, &v);
    EXPECT_EQ(s.ok(), static_cast<size_t>(depth) <= max_depth) << doc << " depth " << depth << " max " << max_depth;
    if (!s.ok()) EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << doc;
  }
  // The edges, written out: an empty object or array is a level like any other.
  JsonParser one(1);
  Value v;
  EXPECT_TRUE(one.Parse("{}", &v).ok());
  EXPECT_TRUE(one.Parse("[1,2]", &v).ok());
  EXPECT_FALSE(one.Parse(R"({"a":{}})", &v).ok());
  EXPECT_FALSE(one.Parse("[[]]", &v).ok());
  JsonParser three(3);
  std::string wide = "{";
  for (int k = 0; k < 100; ++k) wide += "\"k" + std::to_string(k) + "\":" + std::to_string(k) + ",";
  EXPECT_TRUE(three.Parse(wide + R"("a":{"b":{}}})", &v).ok());
  EXPECT_FALSE(three.Parse(wide + R"("a":{"b":{"c":{}}}})", &v).ok());
  EXPECT_FALSE(three.Parse(wide + R"("a":{"b":{"c":[]}}, "z":1})", &v).ok());
  Fields f;
  EXPECT_FALSE(three.ParseObjectInto(wide + R"("a":[[[]]]})", &f).ok());
  EXPECT_TRUE(f.empty());
}

// The formatter caches the date and time of the last second per thread;
// gmtime + snprintf is the reference, over instants in and out of order.
TEST(TimeTest, Rfc3339MatchesGmtime) {
  auto reference = [](Timestamp t) {
    auto secs = std::chrono::floor<std::chrono::seconds>(t);
    std::time_t tt = secs.time_since_epoch().count();
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>((t - secs).count()));
    return std::string(buf);
  };
  std::mt19937_64 rng(11);
  std::vector<Timestamp> instants = {Timestamp{}, Timestamp{std::chrono::nanoseconds(-1)},
                                     Timestamp{std::chrono::seconds(951782400)},    // 2000-02-29
                                     // the ends of int64 nanoseconds: 2262-04-11 and 1677-09-21
                                     Timestamp{std::chrono::seconds(9223372035)},
                                     Timestamp{std::chrono::seconds(-9223372035)}};
  for (int i = 0; i < 5000; ++i) {
    int64_t s = static_cast<int64_t>(rng() % 8000000000ULL) - 2000000000;  // 1906 .. 2223
    Timestamp t{std::chrono::seconds(s) + std::chrono::nanoseconds(rng() % 1000000000)};
    instants.push_back(t);
    instants.push_back(t + std::chrono::nanoseconds(rng() % 2000000000));  // often the same second
  }
  for (Timestamp t : instants) ASSERT_EQ(FormatRfc3339(t), reference(t));
}

TEST(TimeTest, Rfc3339RoundTrip) {
  Timestamp t;
  ASSERT_TRUE(ParseRfc3339("2024-05-01T12:34:56.123456789Z", &t));
  EXPECT_EQ(FormatRfc3339(t), "2024-05-01T12:34:56.123456789Z");
  ASSERT_TRUE(ParseRfc3339("2024-05-01T14:34:56.5+02:00", &t));
  EXPECT_EQ(FormatRfc3339(t), "2024-05-01T12:34:56.500000000Z");
  EXPECT_FALSE(ParseRfc3339("2024-05-01 nonsense", &t));
  EXPECT_FALSE(ParseRfc3339("2024-13-01T00:00:00Z", &t));
}

// A date that does not exist, or one a Timestamp cannot hold, is refused:
// 30 February rolled over into March, and 2999 wrapped around to 1829.
TEST(TimeTest, Rfc3339RefusesImpossibleDatesAndYearsOutOfRange) {
  Timestamp t;
  EXPECT_FALSE(ParseRfc3339("2024-02-30T00:00:00Z", &t));
  EXPECT_FALSE(ParseRfc3339("2023-02-29T00:00:00Z", &t));
  EXPECT_FALSE(ParseRfc3339("2024-04-31T00:00:00Z", &t));
  ASSERT_TRUE(ParseRfc3339("2024-02-29T00:00:00Z", &t));
  EXPECT_EQ(FormatRfc3339(t), "2024-02-29T00:00:00.000000000Z");
  EXPECT_FALSE(ParseRfc3339("2999-01-01T00:00:00Z", &t));
  EXPECT_FALSE(ParseRfc3339("1500-01-01T00:00:00Z", &t));
  ASSERT_TRUE(ParseRfc3339("2261-12-31T23:59:59Z", &t));
  EXPECT_EQ(FormatRfc3339(t), "2261-12-31T23:59:59.000000000Z");
  ASSERT_TRUE(ParseRfc3339("1678-01-01T00:00:00Z", &t));
  EXPECT_EQ(FormatRfc3339(t), "1678-01-01T00:00:00.000000000Z");
}

}  // namespace
}  // namespace tributary
