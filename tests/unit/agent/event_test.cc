#include "agent/event.h"

#include <gtest/gtest.h>

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

TEST(JsonTest, EscapesAndReplacesInvalidUtf8) {
  std::string out;
  AppendJsonString(std::string("a\"b\\c\n\x01\xff\xc3\xa9", 10), &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\xC3\xA9\"");
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // surrogate
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

TEST(JsonTest, DepthIsBounded) {
  JsonParser parser(8);
  std::string deep(20, '[');
  deep += std::string(20, ']');
  Value v;
  Status s = parser.Parse(deep, &v);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("deeper"), std::string::npos);
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

}  // namespace
}  // namespace tributary
