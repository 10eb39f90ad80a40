#include <gtest/gtest.h>

#include "agent/json.h"
#include "tests/unit/transforms/transform_harness.h"

namespace tributary::testing {
namespace {

std::string Json(const Event& e) {
  std::string s;
  AppendJson(e, &s);
  return s;
}

TEST(JsonParserTest, MergesObjectIntoRootKeepingNestedValues) {
  TransformHarness h("json_parser", "{}");
  ASSERT_TRUE(h.ok()) << h.error();
  Event e = MessageEvent(R"({"level":"info","n":3,"f":1.5,"ok":true,"nil":null,"tags":["a",1],"http":{"status":200,"h":{"x":"y"}}})");
  e.fields().set("host", Value("h1"));
  auto out = h.RunDefault({std::move(e)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json(out[0]),
            R"({"host":"h1","level":"info","n":3,"f":1.5,"ok":true,"nil":null,"tags":["a",1],"http":{"status":200,"h":{"x":"y"}}})");
  EXPECT_EQ(out[0].get("http.status")->as_int(), 200);
  EXPECT_EQ(h.Errors("invalid_json"), 0);
}

TEST(JsonParserTest, KeepsFieldWhenAskedOrWhenTheDocumentSetsIt) {
  TransformHarness keep("json_parser", "drop_field: false\n");
  auto out = keep.RunDefault({MessageEvent(R"({"a":1})")});
  EXPECT_EQ(Json(out[0]), R"({"message":"{\"a\":1}","a":1})");
  TransformHarness drop("json_parser", "{}");
  out = drop.RunDefault({MessageEvent(R"({"message":"inner","a":1})")});
  EXPECT_EQ(Json(out[0]), R"({"message":"inner","a":1})");
}

TEST(JsonParserTest, TargetHoldsAnyJsonValue) {
  TransformHarness h("json_parser", "target: parsed\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent(R"({"a":{"b":[1,2]}})"), MessageEvent("[1,\"x\"]"), MessageEvent("42")});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(Json(out[0]), R"({"parsed":{"a":{"b":[1,2]}}})");
  EXPECT_EQ(Json(out[1]), R"({"parsed":[1,"x"]})");
  EXPECT_EQ(Json(out[2]), R"({"parsed":42})");
  TransformHarness nested("json_parser", "target: kube.labels\ndrop_field: false\n");
  out = nested.RunDefault({MessageEvent(R"({"app":"web"})")});
  EXPECT_EQ(out[0].get("kube.labels.app")->as_string(), "web");
  EXPECT_TRUE(out[0].get("message") != nullptr);
}

TEST(JsonParserTest, WrappedJsonInTwoSteps) {
  // A Docker json-file line: the application's JSON is a string inside.
  TransformHarness outer("json_parser", "{}");
  TransformHarness inner("json_parser", "field: log\n");
  ASSERT_TRUE(outer.ok() && inner.ok());
  auto step1 = outer.RunDefault(
      {MessageEvent(R"({"log":"{\"message\":\"user logged in\",\"user\":{\"id\":7}}\n","stream":"stdout","time":"2024-05-01T12:00:00Z"})")});
  ASSERT_EQ(step1.size(), 1u);
  ASSERT_TRUE(step1[0].get("log")->is_string());
  auto step2 = inner.RunDefault(std::move(step1));
  ASSERT_EQ(step2.size(), 1u);
  EXPECT_EQ(step2[0].get("message")->as_string(), "user logged in");
  EXPECT_EQ(step2[0].get("user.id")->as_int(), 7);
  EXPECT_EQ(step2[0].get("stream")->as_string(), "stdout");
  EXPECT_EQ(step2[0].get("log"), nullptr);
  EXPECT_EQ(outer.Errors("invalid_json") + inner.Errors("invalid_json"), 0);
}

TEST(JsonParserTest, InvalidInputsPassUnchangedAndCount) {
  TransformHarness h("json_parser", "{}");
  ASSERT_TRUE(h.ok()) << h.error();
  Event number;
  number.fields().set("message", Value(int64_t{3}));
  std::vector<Event> in;
  in.push_back(MessageEvent("{not json"));
  in.push_back(MessageEvent("[1,2]"));                 // not an object, root target
  in.push_back(MessageEvent("{\"a\":\"\xff\xfe\"}"));  // invalid UTF-8
  in.push_back(MessageEvent(""));
  in.push_back(MessageEvent("{\"a\":1} trailing"));
  in.push_back(std::move(number));
  in.push_back(Event());
  auto out = h.RunDefault(std::move(in));
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(out[0].get("message")->as_string(), "{not json");
  EXPECT_EQ(out[0].fields().size(), 1u);
  EXPECT_EQ(out[1].get("message")->as_string(), "[1,2]");
  EXPECT_EQ(out[2].get("message")->as_string(), "{\"a\":\"\xff\xfe\"}");
  EXPECT_EQ(out[2].get("a"), nullptr);
  EXPECT_EQ(out[5].get("message")->as_int(), 3);
  EXPECT_EQ(h.Errors("invalid_json"), 5);
  EXPECT_EQ(h.Errors("field_missing"), 2);
}

// An integer beyond 64 bits is read as a float, as Vector reads it; the
// rest of the document as usual. simdjson's DOM refuses such a document
// (NUMBER_ERROR): it counted as invalid_json and the event passed unparsed.
TEST(JsonParserTest, IntegersBeyond64BitsAreFloats) {
  TransformHarness h("json_parser", "max_depth: 4\n");
  ASSERT_TRUE(h.ok()) << h.error();
  Event existing = MessageEvent(R"({"a":1234567890123456789012345,"b":"x","n":7,"f":1.5,"ok":true,"z":null})");
  existing.fields().set("a", Value("old"));
  existing.fields().set("keep", Value(int64_t{1}));
  auto out = h.RunDefault({std::move(existing),
                           MessageEvent(R"({"m":{"big":98765432109876543210987654321,"l":[1,-1234567890123456789012345,"s"]}})"),
                           MessageEvent(R"({"neg":-1234567890123456789012345,"two64":18446744073709551616,)"
                                        R"("min":-9223372036854775808,"max":9223372036854775807,"u":18446744073709551615})")});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(h.Errors("invalid_json"), 0);
  // At the top, over a field the event had (in its place), the others kept.
  ASSERT_TRUE(out[0].get("a")->is_double()) << Json(out[0]);
  EXPECT_EQ(out[0].get("a")->as_double(), 1234567890123456789012345.0);
  EXPECT_EQ(out[0].fields().key(0), "a");
  EXPECT_EQ(out[0].get("message"), nullptr);
  EXPECT_EQ(out[0].get("b")->as_string(), "x");
  EXPECT_EQ(out[0].get("n")->as_int(), 7);
  EXPECT_EQ(out[0].get("f")->as_double(), 1.5);
  EXPECT_TRUE(out[0].get("ok")->as_bool());
  EXPECT_TRUE(out[0].get("z")->is_null());
  EXPECT_EQ(out[0].get("keep")->as_int(), 1);
  // Nested, in a map and in an array.
  ASSERT_TRUE(out[1].get("m.big") && out[1].get("m.big")->is_double()) << Json(out[1]);
  EXPECT_EQ(out[1].get("m.big")->as_double(), 98765432109876543210987654321.0);
  const Array& l = out[1].get("m.l")->as_array();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].as_int(), 1);
  EXPECT_EQ(l[1].as_double(), -1234567890123456789012345.0);
  EXPECT_EQ(l[2].as_string(), "s");
  // Negative; 2^64; and int64's own ends stay integers.
  ASSERT_TRUE(out[2].get("neg") && out[2].get("neg")->is_double()) << Json(out[2]);
  EXPECT_EQ(out[2].get("neg")->as_double(), -1234567890123456789012345.0);
  EXPECT_EQ(out[2].get("two64")->as_double(), 18446744073709551616.0);
  EXPECT_EQ(out[2].get("min")->as_int(), INT64_MIN);
  EXPECT_EQ(out[2].get("max")->as_int(), INT64_MAX);
  EXPECT_EQ(out[2].get("u")->as_double(), 18446744073709551615.0);

  // Whatever else is wrong with such a document still is.
  auto bad = h.RunDefault({MessageEvent(R"({"a":1234567890123456789012345} trailing)"),
                           MessageEvent(R"({"a":1234567890123456789012345,"b":01})"),
                           MessageEvent(R"({"a":1234567890123456789012345,})"),
                           MessageEvent(R"({"a":1234567890123456789012345x})"),
                           MessageEvent(R"([1234567890123456789012345])"),
                           MessageEvent(R"({"a":1234567890123456789012345,"d":[[[[1]]]]})")});
  ASSERT_EQ(bad.size(), 6u);
  for (const auto& e : bad) EXPECT_EQ(e.fields().size(), 1u) << Json(e);
  EXPECT_EQ(h.Errors("invalid_json"), 5);
  EXPECT_EQ(h.Errors("depth_exceeded"), 1);

  // Any JSON value under a target: a bare number too.
  TransformHarness t("json_parser", "target: v\n");
  out = t.RunDefault({MessageEvent("1234567890123456789012345"), MessageEvent("-1234567890123456789012345 ")});
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].get("v") && out[0].get("v")->is_double()) << Json(out[0]);
  EXPECT_EQ(out[0].get("v")->as_double(), 1234567890123456789012345.0);
  ASSERT_TRUE(out[1].get("v") && out[1].get("v")->is_double()) << Json(out[1]);
  EXPECT_EQ(out[1].get("v")->as_double(), -1234567890123456789012345.0);
  EXPECT_EQ(t.Errors("invalid_json"), 0);
}

TEST(JsonParserTest, DropInvalidDropsAndCounts) {
  TransformHarness h("json_parser", "drop_invalid: true\n");
  auto out = h.RunDefault({MessageEvent("{"), MessageEvent(R"({"ok":1})"), Event()});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].get("ok")->as_int(), 1);
  EXPECT_EQ(h.Discarded(false), 2);
}

std::string Nested(int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }

TEST(JsonParserTest, DepthIsBoundedAndCounted) {
  TransformHarness h("json_parser", "target: v\nmax_depth: 8\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent(Nested(8)), MessageEvent(Nested(9)), MessageEvent(Nested(100000))});
  ASSERT_EQ(out.size(), 3u);
  ASSERT_NE(out[0].get("v"), nullptr);
  EXPECT_TRUE(out[0].get("v")->is_array());
  EXPECT_EQ(out[1].get("v"), nullptr);
  EXPECT_EQ(out[1].get("message")->as_string(), Nested(9));
  EXPECT_EQ(out[2].get("v"), nullptr);
  EXPECT_EQ(h.Errors("depth_exceeded"), 2);
  // The default bound (64) holds for the root target too: no stack blow-up.
  TransformHarness d("json_parser", "{}");
  std::string deep = "{\"a\":" + Nested(200000) + "}";
  out = d.RunDefault({MessageEvent(deep)});
  EXPECT_EQ(out[0].get("a"), nullptr);
  EXPECT_EQ(d.Errors("depth_exceeded"), 1);
}

TEST(JsonParserTest, HugeDocument) {
  TransformHarness h("json_parser", "{}");
  std::string big(8 << 20, 'z');
  auto out = h.RunDefault({MessageEvent("{\"big\":\"" + big + "\",\"n\":1}")});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].get("big")->as_string().size(), big.size());
  EXPECT_EQ(out[0].get("n")->as_int(), 1);
}

// An event as the file source makes it: the members overwrite the fields
// the event has in place (a string over a string or over a timestamp), the
// others are appended in document order after the fields that stay.
TEST(JsonParserTest, MembersOverwriteInPlaceAndAppendInOrder) {
  TransformHarness h("json_parser", "{}");
  ASSERT_TRUE(h.ok()) << h.error();
  Event e;
  e.fields().append("message", std::string_view(R"({"host":"10.0.0.1","user":"bob","timestamp":"2024-10-01T00:00:00Z","status":404,"offset":null})"));
  e.fields().append("file", std::string_view("/var/log/x.log"));
  e.fields().append("host", std::string_view("agent-host-with-a-long-name"));
  e.fields().append("source_type", std::string_view("file"));
  e.fields().append("timestamp", Value(Timestamp{}));
  e.fields().append("offset", Value(int64_t{42}));
  auto out = h.RunDefault({std::move(e)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json(out[0]),
            R"({"file":"/var/log/x.log","host":"10.0.0.1","source_type":"file","timestamp":"2024-10-01T00:00:00Z",)"
            R"("offset":null,"user":"bob","status":404})");
  EXPECT_TRUE(out[0].get("timestamp")->is_string());
}

TEST(JsonParserTest, DuplicateKeysKeepTheLastValueOnce) {
  TransformHarness h("json_parser", "{}");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent(R"({"a":1,"b":2,"a":"three","m":{"x":1,"y":2,"x":[3]},"b":{"z":true}})")});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Json(out[0]), R"({"a":"three","b":{"z":true},"m":{"x":[3],"y":2}})");
  // More keys than the 64-bit key filter has bits: every one is kept once.
  std::string doc = "{";
  for (int i = 0; i < 200; ++i) doc += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  doc += "\"k7\":\"again\"}";
  out = h.RunDefault({MessageEvent(doc)});
  ASSERT_EQ(out[0].fields().size(), 200u);
  EXPECT_EQ(out[0].get("k7")->as_string(), "again");
  EXPECT_EQ(out[0].get("k199")->as_int(), 199);
  EXPECT_EQ(out[0].fields().key(199), "k199");
}

TEST(JsonParserTest, DepthBoundAtTheRoot) {
  TransformHarness h("json_parser", "max_depth: 3\n");
  ASSERT_TRUE(h.ok()) << h.error();
  auto out = h.RunDefault({MessageEvent(R"({"a":{"b":{"c":1}}})"), MessageEvent(R"({"a":{"b":{"c":{"d":1}}}})"),
                           MessageEvent(R"({"a":[[[1]]]})")});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].get("a.b.c")->as_int(), 1);
  EXPECT_EQ(Json(out[1]), R"({"message":"{\"a\":{\"b\":{\"c\":{\"d\":1}}}}"})");
  EXPECT_EQ(Json(out[2]), R"({"message":"{\"a\":[[[1]]]}"})");
  EXPECT_EQ(h.Errors("depth_exceeded"), 2);
  // An empty object or array is a level too ({"a":{}} passed max_depth 1).
  out = h.RunDefault({MessageEvent(R"({"a":{"b":{}}})"), MessageEvent(R"({"a":{"b":{"c":{}}}})"),
                      MessageEvent(R"({"a":[[[]]]})")});
  EXPECT_TRUE(out[0].get("a.b")->is_map());
  EXPECT_EQ(out[1].get("a"), nullptr);
  EXPECT_EQ(out[2].get("a"), nullptr);
  EXPECT_EQ(h.Errors("depth_exceeded"), 4);
}

TEST(JsonParserTest, FieldNotFirstAndNotDropped) {
  TransformHarness keep("json_parser", "field: raw\ndrop_field: false\n");
  TransformHarness drop("json_parser", "field: raw\n");
  ASSERT_TRUE(keep.ok() && drop.ok());
  auto make = [] {
    Event e;
    e.fields().append("a", Value(int64_t{1}));
    e.fields().append("raw", std::string_view(R"({"a":2,"b":3})"));
    e.fields().append("c", Value(int64_t{4}));
    return e;
  };
  EXPECT_EQ(Json(keep.RunDefault({make()})[0]), R"({"a":2,"raw":"{\"a\":2,\"b\":3}","c":4,"b":3})");
  EXPECT_EQ(Json(drop.RunDefault({make()})[0]), R"({"a":2,"c":4,"b":3})");
}

TEST(JsonParserTest, ConfigErrors) {
  EXPECT_NE(TransformHarness("json_parser", "max_depth: 0\n").error().find("must be at least 1"), std::string::npos);
  EXPECT_NE(TransformHarness("json_parser", "drop_invalids: true\n").error().find("did you mean `drop_invalid`"),
            std::string::npos);
  EXPECT_NE(TransformHarness("json_parser", "field: ''\n").error().find("must not be empty"), std::string::npos);
}

}  // namespace
}  // namespace tributary::testing
