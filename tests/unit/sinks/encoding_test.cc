#include "sinks/encoding.h"

#include <gtest/gtest.h>

namespace tributary {
namespace {

std::string Encode(const std::string& codec, const Event& e, std::vector<std::string> except = {}) {
  EncodingConfig c;
  c.codec = codec;
  c.except_fields = std::move(except);
  std::string out;
  Encoder(c).Encode(e, &out);
  return out;
}

Event Sample() {
  Fields http;
  http.set("status", Value(int64_t{503}));
  http.set("path", Value("/a b"));
  Event e;
  e.fields().set("message", Value("GET / \"x\"\n"));
  e.fields().set("level", Value("error"));
  e.fields().set("http", Value(std::move(http)));
  e.fields().set("tags", Value(Array{Value("a"), Value(true)}));
  e.fields().set("empty", Value(""));
  e.fields().set("none", Value(nullptr));
  e.fields().set("at", Value(Timestamp(std::chrono::seconds(1714564800))));
  e.fields().set("back\\slash", Value("C:\\x"));
  return e;
}

TEST(EncodingTest, LogfmtFlattensQuotesAndEscapes) {
  EXPECT_EQ(Encode("logfmt", Sample()),
            "message=\"GET / \\\"x\\\"\\n\" level=error http.status=503 http.path=\"/a b\" tags[0]=a tags[1]=true "
            "empty=\"\" none=\"\" at=2024-05-01T12:00:00.000000000Z back\\slash=C:\\x");
  EXPECT_EQ(Encode("logfmt", Sample(), {"message", "http", "tags", "empty", "none", "at", "back\\slash"}),
            "level=error");
  Event control;
  control.fields().set("k", Value(std::string("a\x01=b", 4)));
  EXPECT_EQ(Encode("logfmt", control), "k=\"a\\u0001=b\"");
}

TEST(EncodingTest, JsonAndText) {
  Event e;
  e.fields().set("message", Value("hi"));
  e.fields().set("n", Value(int64_t{1}));
  EXPECT_EQ(Encode("json", e), "{\"message\":\"hi\",\"n\":1}");
  EXPECT_EQ(Encode("json", e, {"n"}), "{\"message\":\"hi\"}");
  EXPECT_EQ(Encode("text", e), "hi");
}

}  // namespace
}  // namespace tributary
