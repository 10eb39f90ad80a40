// The bulk protocol without a server: request bodies, item classification,
// response parsing, endpoint URLs and the option table's rules.

#include "sinks/elasticsearch_encoder.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include "agent/json.h"
#include "config/config.h"
#include "sinks/es_http_client.h"

namespace tributary::es {
namespace {

Timestamp At(const char* rfc3339) {
  Timestamp t;
  EXPECT_TRUE(ParseRfc3339(rfc3339, &t));
  return t;
}

Event MakeEvent(std::string message, const char* ts = "2024-05-01T12:00:00.5Z") {
  Event e;
  e.fields().set(kMessageField, std::move(message));
  e.fields().set(kTimestampField, At(ts));
  return e;
}

BulkEncoder MakeEncoder(const ElasticsearchConfig& c) {
  auto e = BulkEncoder::Create(c);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

TEST(BulkEncoderTest, IndexActionWithTimeBasedIndex) {
  ElasticsearchConfig c;
  c.bulk.index = "logs-%Y.%m.%d";
  auto enc = MakeEncoder(c);
  std::string body;
  EncodedItem a, b;
  ASSERT_TRUE(enc.Encode(MakeEvent("hello"), &body, &a).ok());
  ASSERT_TRUE(enc.Encode(MakeEvent("next \"day\"\n", "2024-05-02T00:00:00Z"), &body, &b).ok());
  EXPECT_EQ(body,
            "{\"index\":{\"_index\":\"logs-2024.05.01\"}}\n"
            "{\"message\":\"hello\",\"timestamp\":\"2024-05-01T12:00:00.500000000Z\"}\n"
            "{\"index\":{\"_index\":\"logs-2024.05.02\"}}\n"
            "{\"message\":\"next \\\"day\\\"\\n\",\"timestamp\":\"2024-05-02T00:00:00.000000000Z\"}\n");
  EXPECT_EQ(a.begin, 0u);
  EXPECT_EQ(body.substr(a.source_begin, 12), "{\"message\":\"");
  EXPECT_EQ(a.end, b.begin);
  EXPECT_EQ(b.end, body.size());
  EXPECT_FALSE(a.has_id);
}

TEST(BulkEncoderTest, FieldTemplateAndIdField) {
  ElasticsearchConfig c;
  c.bulk.index = "app-{{ service }}";
  c.bulk.action = "create";
  c.id_field = "seq";
  auto enc = MakeEncoder(c);
  Event e = MakeEvent("x");
  e.fields().set("service", "api");
  e.fields().set("seq", int64_t{42});
  std::string body;
  EncodedItem item;
  ASSERT_TRUE(enc.Encode(e, &body, &item).ok());
  EXPECT_EQ(body.substr(0, item.source_begin), "{\"create\":{\"_index\":\"app-api\",\"_id\":\"42\"}}\n");
  EXPECT_TRUE(item.has_id);
  EXPECT_TRUE(enc.create_action());

  // Missing id: sent without one, and counted.
  Event no_id = MakeEvent("y");
  no_id.fields().set("service", "api");
  EncodedItem item2;
  ASSERT_TRUE(enc.Encode(no_id, &body, &item2).ok());
  EXPECT_FALSE(item2.has_id);
  EXPECT_EQ(enc.TakeMissingIds(), 1u);
  EXPECT_EQ(enc.TakeMissingIds(), 0u);

  // Missing template field: an error, and the body is untouched.
  const size_t before = body.size();
  EncodedItem item3;
  Status s = enc.Encode(MakeEvent("z"), &body, &item3);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("service"), std::string::npos);
  EXPECT_EQ(body.size(), before);
}

// Elasticsearch refuses a whole bulk request for one `_id` over 512 bytes
// (action_request_validation_exception): such an event goes without one,
// as an event without the field does, and is counted with the longest.
TEST(BulkEncoderTest, AnIdOverFiveHundredTwelveBytesIsLeftOut) {
  ElasticsearchConfig c;
  c.bulk.index = "logs";
  c.id_field = "seq";
  auto enc = MakeEncoder(c);
  std::string body;
  EncodedItem item;
  Event at_limit = MakeEvent("a");
  at_limit.fields().set("seq", std::string(512, 'x'));
  ASSERT_TRUE(enc.Encode(at_limit, &body, &item).ok());
  EXPECT_TRUE(item.has_id);
  // 450 characters, 600 bytes: the limit is in bytes.
  std::string long_id(300, 'x');
  for (int i = 0; i < 150; ++i) long_id += "\xc3\xa9";  // é
  Event over = MakeEvent("b");
  over.fields().set("seq", long_id);
  const size_t start = body.size();
  ASSERT_TRUE(enc.Encode(over, &body, &item).ok());
  EXPECT_FALSE(item.has_id);
  EXPECT_EQ(body.substr(start, item.source_begin - start), "{\"index\":{\"_index\":\"logs\"}}\n");
  size_t longest = 0;
  EXPECT_EQ(enc.TakeLongIds(&longest), 1u);
  EXPECT_EQ(longest, 600u);
  EXPECT_EQ(enc.TakeMissingIds(), 0u);
  EXPECT_EQ(enc.TakeLongIds(&longest), 0u);
}

TEST(BulkEncoderTest, DataStreamUsesCreateAndAtTimestamp) {
  ElasticsearchConfig c;
  c.mode = "data_stream";
  c.data_stream.dataset = "{{ app }}";
  auto enc = MakeEncoder(c);
  EXPECT_TRUE(enc.create_action());
  Event e = MakeEvent("m");
  e.fields().set("app", "nginx");
  std::string body;
  EncodedItem item;
  ASSERT_TRUE(enc.Encode(e, &body, &item).ok());
  EXPECT_EQ(body,
            "{\"create\":{\"_index\":\"logs-nginx-default\"}}\n"
            "{\"message\":\"m\",\"@timestamp\":\"2024-05-01T12:00:00.500000000Z\",\"app\":\"nginx\"}\n");

  // An event with its own @timestamp keeps both fields as they are.
  Event own = MakeEvent("m");
  own.fields().set("app", "x");
  own.fields().set("@timestamp", "2020-01-01T00:00:00Z");
  body.clear();
  ASSERT_TRUE(enc.Encode(own, &body, &item).ok());
  EXPECT_NE(body.find("\"timestamp\":\"2024-05-01"), std::string::npos);
  EXPECT_NE(body.find("\"@timestamp\":\"2020-01-01T00:00:00Z\""), std::string::npos);

  // Without any timestamp, @timestamp is added first.
  Event none;
  none.fields().set("app", "y");
  body.clear();
  ASSERT_TRUE(enc.Encode(none, &body, &item).ok());
  EXPECT_EQ(body.substr(item.source_begin, 15), "{\"@timestamp\":\"");
}

TEST(BulkEncoderTest, BodyIsValidNdjsonForHostileInput) {
  ElasticsearchConfig c;
  c.bulk.index = "i-{{ name }}";
  auto enc = MakeEncoder(c);
  Event e = MakeEvent(std::string("bin\x00\xff\n\r\"\\", 10));
  e.fields().set("name", "a\"b\nc");
  std::string body;
  EncodedItem item;
  ASSERT_TRUE(enc.Encode(e, &body, &item).ok());
  // Exactly two lines, each valid JSON.
  ASSERT_EQ(std::count(body.begin(), body.end(), '\n'), 2);
  JsonParser p;
  Value v;
  EXPECT_TRUE(p.Parse(std::string_view(body).substr(0, item.source_begin - 1), &v).ok());
  EXPECT_EQ(v.as_map().find("index")->as_map().find("_index")->as_string(), "i-a\"b\nc");
  EXPECT_TRUE(p.Parse(std::string_view(body).substr(item.source_begin, item.end - item.source_begin - 1), &v).ok());
}

TEST(ClassifyTest, Items) {
  EXPECT_EQ(ClassifyItem(200, false), ItemOutcome::kDelivered);
  EXPECT_EQ(ClassifyItem(201, false), ItemOutcome::kDelivered);
  EXPECT_EQ(ClassifyItem(409, true), ItemOutcome::kDelivered);  // create with _id: already there
  EXPECT_EQ(ClassifyItem(409, false), ItemOutcome::kRejected);  // index version conflict
  EXPECT_EQ(ClassifyItem(429, false), ItemOutcome::kRetry);
  EXPECT_EQ(ClassifyItem(500, false), ItemOutcome::kRetry);
  EXPECT_EQ(ClassifyItem(503, true), ItemOutcome::kRetry);
  EXPECT_EQ(ClassifyItem(400, false), ItemOutcome::kRejected);
  EXPECT_EQ(ClassifyItem(404, false), ItemOutcome::kRejected);
  EXPECT_EQ(ClassifyItem(403, false), ItemOutcome::kRetry);  // security_exception: not the document's fault
  EXPECT_EQ(ClassifyItem(401, true), ItemOutcome::kRetry);
}

TEST(ClassifyTest, Requests) {
  EXPECT_EQ(ClassifyRequest(200), RequestOutcome::kItems);
  EXPECT_EQ(ClassifyRequest(429), RequestOutcome::kRetry);
  EXPECT_EQ(ClassifyRequest(502), RequestOutcome::kRetry);
  EXPECT_EQ(ClassifyRequest(503), RequestOutcome::kRetry);
  EXPECT_EQ(ClassifyRequest(408), RequestOutcome::kRetry);
  EXPECT_EQ(ClassifyRequest(401), RequestOutcome::kAuthRetry);
  EXPECT_EQ(ClassifyRequest(403), RequestOutcome::kAuthRetry);
  EXPECT_EQ(ClassifyRequest(407), RequestOutcome::kAuthRetry);
  EXPECT_EQ(ClassifyRequest(413), RequestOutcome::kTooLarge);
  EXPECT_EQ(ClassifyRequest(400), RequestOutcome::kSplit);
  EXPECT_EQ(ClassifyRequest(422), RequestOutcome::kSplit);
  // No answer of the bulk API: nothing said about the documents.
  for (int status : {100, 101, 300, 301, 302, 307, 308, 404, 405, 406, 409, 415, 426, 600, 999})
    EXPECT_EQ(ClassifyRequest(status), RequestOutcome::kHold) << status;
}

TEST(ClassifyTest, RequestErrorBodies) {
  std::string type, reason;
  EXPECT_TRUE(ParseRequestError(
      R"({"error":{"root_cause":[{"type":"action_request_validation_exception","reason":"Validation Failed: 1: id is too long;"}],"type":"action_request_validation_exception","reason":"Validation Failed: 1: id is too long;"},"status":400})",
      &type, &reason));
  EXPECT_EQ(type, "action_request_validation_exception");
  EXPECT_EQ(reason, "Validation Failed: 1: id is too long;");
  EXPECT_TRUE(ParseRequestError(R"({"error":{"type":"x_content_parse_exception"},"status":400})", &type, &reason));
  EXPECT_EQ(type, "x_content_parse_exception");
  EXPECT_EQ(reason, "");
  // Elasticsearch's own "no handler" answer to a wrong path, a proxy's
  // page, nothing: not about the documents.
  EXPECT_FALSE(ParseRequestError(R"({"error":"no handler found for uri [/x/_bulk] and method [POST]","status":400})",
                                 &type, &reason));
  EXPECT_FALSE(ParseRequestError("<html><body>400 Bad Request</body></html>", &type, &reason));
  EXPECT_FALSE(ParseRequestError("", &type, &reason));
  EXPECT_FALSE(ParseRequestError(R"({"error":{"reason":"no type"}})", &type, &reason));
}

std::vector<EncodedItem> Items(size_t n, bool has_id = false) {
  std::vector<EncodedItem> v(n);
  for (auto& i : v) i.has_id = has_id;
  return v;
}

TEST(BulkResponseClassifierTest, NoErrorsMeansAllDelivered) {
  BulkResponseClassifier c;
  std::string body = R"({"took":3,"errors":false,"items":[{"index":{"status":201}},{"index":{"status":201}}]})";
  std::vector<ItemResult> results;
  BulkResponseClassifier::Summary sum;
  ASSERT_TRUE(c.Classify(&body, false, Items(2), &results, &sum).ok());
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(sum.delivered, 2u);
  // filter_path=errors,... may leave nothing but the flag.
  body = R"({"errors":false})";
  ASSERT_TRUE(c.Classify(&body, false, Items(5), &results, &sum).ok());
  EXPECT_EQ(sum.delivered, 5u);
  // The flag is found wherever it stands, after a thousand items too.
  body = R"({"items":[)";
  for (int i = 0; i < 1000; ++i) body += std::string(i ? "," : "") + R"({"index":{"status":201}})";
  body += R"(],"took":7,"errors":false})";
  ASSERT_TRUE(c.Classify(&body, false, Items(1000), &results, &sum).ok());
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(sum.delivered, 1000u);
}

TEST(BulkResponseClassifierTest, MixedItems) {
  BulkResponseClassifier c;
  std::string body = R"({"errors":true,"items":[
    {"create":{"status":201}},
    {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}},
    {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [status] of type [long]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"n/a\""}}}},
    {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"document already exists"}}},
    {"create":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}}
  ]})";
  std::vector<ItemResult> results;
  BulkResponseClassifier::Summary sum;
  ASSERT_TRUE(c.Classify(&body, true, Items(5, true), &results, &sum).ok());
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[0].outcome, ItemOutcome::kDelivered);
  EXPECT_EQ(results[1].outcome, ItemOutcome::kRetry);
  EXPECT_EQ(results[1].error_type, "es_rejected_execution_exception");
  EXPECT_EQ(results[2].outcome, ItemOutcome::kRejected);
  EXPECT_EQ(results[2].status, 400);
  EXPECT_EQ(results[2].error_type, "mapper_parsing_exception");
  EXPECT_EQ(results[2].reason, "failed to parse field [status] of type [long]");
  EXPECT_EQ(results[2].cause_type, "illegal_argument_exception");
  EXPECT_EQ(results[2].cause_reason, "For input string: \"n/a\"");
  EXPECT_EQ(results[1].cause_type, "");
  EXPECT_EQ(results[3].outcome, ItemOutcome::kDelivered);  // create + _id + 409
  EXPECT_EQ(results[4].outcome, ItemOutcome::kRetry);
  EXPECT_EQ(sum.delivered, 2u);
  EXPECT_EQ(sum.already_present, 1u);  // the 409, also in `delivered`
  EXPECT_EQ(sum.retry, 2u);
  EXPECT_EQ(sum.rejected, 1u);

  // The same 409 without an _id (or on `index`) is a rejection.
  std::string again = body;
  ASSERT_TRUE(c.Classify(&again, false, Items(5, true), &results, &sum).ok());
  EXPECT_EQ(results[3].outcome, ItemOutcome::kRejected);
  EXPECT_EQ(sum.already_present, 0u);
}

TEST(BulkResponseClassifierTest, MissingItemsAreRetried) {
  BulkResponseClassifier c;
  std::string body = R"({"errors":true,"items":[{"index":{"status":400,"error":{"type":"x","reason":"y"}}}, {"index":{}}]})";
  std::vector<ItemResult> results;
  BulkResponseClassifier::Summary sum;
  ASSERT_TRUE(c.Classify(&body, false, Items(3), &results, &sum).ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, ItemOutcome::kRejected);
  EXPECT_EQ(results[1].outcome, ItemOutcome::kRetry);  // no status
  EXPECT_EQ(results[2].outcome, ItemOutcome::kRetry);  // absent
  EXPECT_EQ(sum.missing, 2u);
  EXPECT_EQ(sum.rejected, 1u);
}

TEST(BulkResponseClassifierTest, GarbageIsAnError) {
  BulkResponseClassifier c;
  std::vector<ItemResult> results;
  BulkResponseClassifier::Summary sum;
  for (std::string body : {std::string("<html>bad gateway</html>"), std::string("[]"), std::string("{}"),
                           std::string(R"({"errors":true})"), std::string(R"({"errors":"no"})"), std::string()}) {
    EXPECT_EQ(c.Classify(&body, false, Items(1), &results, &sum).code(), StatusCode::kCorruption) << body;
  }
}

TEST(EndpointTest, Parse) {
  auto e = ParseEndpoint("http://127.0.0.1:9200");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->tls);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, "9200");
  EXPECT_EQ(e->path_prefix, "");
  EXPECT_EQ(e->host_header, "127.0.0.1:9200");
  e = ParseEndpoint("https://es.example/proxy/es/");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->tls);
  EXPECT_EQ(e->port, "443");
  EXPECT_EQ(e->path_prefix, "/proxy/es");
  e = ParseEndpoint("http://[::1]:9201");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->host_header, "[::1]:9201");
  EXPECT_FALSE(ParseEndpoint("ftp://x").ok());
  EXPECT_FALSE(ParseEndpoint("http://:9200").ok());
  EXPECT_FALSE(ParseEndpoint("http://h:99999").ok());
  EXPECT_FALSE(ParseEndpoint("http://h:x").ok());
  // A space in the host was looked up, and retried, for ever.
  auto space = ParseEndpoint("http://exa mple:9200");
  ASSERT_FALSE(space.ok());
  EXPECT_NE(space.status().message().find("the host name holds a space"), std::string::npos);
  EXPECT_FALSE(ParseEndpoint("http://h\t:9200").ok());
  auto cred = ParseEndpoint("http://elastic:hunter2@h:9200");
  ASSERT_FALSE(cred.ok());
  EXPECT_EQ(cred.status().message().find("hunter2"), std::string::npos);
}

TEST(HttpHelpersTest, GzipRoundTripAndBasicAuth) {
  std::string in;
  for (int i = 0; i < 1000; ++i) in += "{\"index\":{}}\n{\"message\":\"line " + std::to_string(i) + "\"}\n";
  std::string z, back;
  ASSERT_TRUE(GzipCompress(in, 1, &z).ok());
  EXPECT_LT(z.size(), in.size() / 4);
  EXPECT_EQ(static_cast<unsigned char>(z[0]), 0x1f);
  ASSERT_TRUE(GzipDecompress(z, 1 << 20, &back).ok());
  EXPECT_EQ(back, in);
  EXPECT_FALSE(GzipDecompress(z.substr(0, z.size() / 2), 1 << 20, &back).ok());
  EXPECT_FALSE(GzipDecompress(z, 100, &back).ok());
  // Content codings of a response: gzip, and deflate as zlib, raw or gzip.
  ASSERT_TRUE(DecodeContent("GZIP", z, 1 << 20, &back).ok());
  EXPECT_EQ(back, in);
  ASSERT_TRUE(DecodeContent("deflate", z, 1 << 20, &back).ok());
  EXPECT_EQ(back, in);
  for (int bits : {MAX_WBITS, -MAX_WBITS}) {
    z_stream zs{};
    ASSERT_EQ(deflateInit2(&zs, 1, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string d(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(d.data());
    zs.avail_out = static_cast<uInt>(d.size());
    ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    d.resize(zs.total_out);
    deflateEnd(&zs);
    back.clear();
    ASSERT_TRUE(DecodeContent("deflate", d, 1 << 20, &back).ok()) << bits;
    EXPECT_EQ(back, in) << bits;
  }
  EXPECT_FALSE(DecodeContent("br", z, 1 << 20, &back).ok());
  EXPECT_EQ(BasicAuthorization("elastic", "changeme"), "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==");
}

// The option table's cross-option rules, through the schema (the unit
// test binary does not link the component registrations).
std::optional<ElasticsearchConfig> Load(const std::string& sink_yaml, config::Diagnostics* diag) {
  YAML::Node node = YAML::Load(sink_yaml);
  ElasticsearchConfig c;
  config::ParseContext ctx{diag, "t.yaml", "sinks.es"};
  if (!ElasticsearchConfig::schema().Parse(node, &c, ctx)) return std::nullopt;
  return c;
}

TEST(ElasticsearchConfigTest, Rules) {
  {
    config::Diagnostics d;
    auto c = Load("    endpoints: [\"http://127.0.0.1:9200\"]\n    id_field: seq\n    compression: gzip\n", &d);
    ASSERT_TRUE(c) << d.ToString();
    const auto& es = *c;
    EXPECT_EQ(es.action(), "index");
    EXPECT_EQ(*es.id_field, "seq");
  }
  {
    config::Diagnostics d;
    auto c = Load("    endpoints: [\"http://h:1\"]\n    mode: data_stream\n", &d);
    ASSERT_TRUE(c) << d.ToString();
    EXPECT_EQ(c->action(), "create");
  }
  struct Bad {
    const char* yaml;
    const char* expect;
  };
  for (const Bad& b : std::vector<Bad>{
           {"    endpoints: []\n", "at least one"},
           {"    endpoints: [\"h:9200\"]\n", "http://"},
           {"    endpoints: [\"http://h:1\"]\n    mode: data_stream\n    bulk: { action: index }\n", "create"},
           {"    endpoints: [\"http://h:1\"]\n    bulk: { action: upsert }\n", "index, create"},
           {"    endpoints: [\"http://h:1\"]\n    auth: { strategy: basic, user: u }\n", "password"},
           {"    endpoints: [\"http://h:1\"]\n    auth: { strategy: api_key }\n", "api_key"},
           {"    endpoints: [\"http://h:1\"]\n    auth: { password: s3cret-value }\n", "strategy"},
           {"    endpoints: [\"http://h:1\"]\n    request: { concurrency: 0 }\n", "concurrency"},
           {"    endpoints: [\"http://h:1\"]\n    bulk: { index: \"x-{{ a\" }\n", "unterminated"},
           {"    endpoints: [\"http://h:1\"]\n    compresion: gzip\n", "compression"},
       }) {
    config::Diagnostics d;
    auto c = Load(b.yaml, &d);
    EXPECT_FALSE(c) << b.yaml;
    EXPECT_NE(d.ToString().find(b.expect), std::string::npos) << b.yaml << "\n" << d.ToString();
    EXPECT_EQ(d.ToString().find("s3cret-value"), std::string::npos) << d.ToString();
  }
}

// Valid, but not what the user meant: warnings, at the option's line.
TEST(ElasticsearchConfigTest, Warnings) {
  struct Case {
    const char* yaml;
    const char* expect;  // "" for no warning
  };
  for (const Case& w : std::vector<Case>{
           // Elasticsearch 7.9+ makes these data streams: bulk mode's documents are refused.
           {"    endpoints: [\"http://h:1\"]\n    bulk: { index: logs-myapp-default }\n",
            "matches Elasticsearch's built-in data stream template `logs-*-*`"},
           {"    endpoints: [\"http://h:1\"]\n    bulk: { index: \"metrics-{{ app }}-prod\" }\n", "`metrics-*-*`"},
           {"    endpoints: [\"http://h:1\"]\n    bulk: { index: \"logs-%Y.%m.%d\" }\n", ""},
           {"    endpoints: [\"http://h:1\"]\n    bulk: { index: \"applogs-a-b\" }\n", ""},
           // Options of the other mode.
           {"    endpoints: [\"http://h:1\"]\n    mode: data_stream\n    bulk: { index: foo }\n",
            "`sinks.es.bulk.index` does nothing in data_stream mode"},
           {"    endpoints: [\"http://h:1\"]\n    data_stream: { dataset: foo }\n",
            "`sinks.es.data_stream` does nothing in bulk mode"},
           {"    endpoints: [\"http://h:1\"]\n    mode: data_stream\n    data_stream: { dataset: foo }\n", ""},
       }) {
    config::Diagnostics d;
    auto c = Load(w.yaml, &d);
    ASSERT_TRUE(c) << w.yaml << d.ToString();
    if (*w.expect == '\0') {
      EXPECT_TRUE(d.all().empty()) << w.yaml << d.ToString();
    } else {
      ASSERT_EQ(d.all().size(), 1u) << w.yaml << d.ToString();
      EXPECT_NE(d.ToString().find("warning: "), std::string::npos) << d.ToString();
      EXPECT_NE(d.ToString().find(w.expect), std::string::npos) << w.yaml << d.ToString();
    }
  }
}

}  // namespace
}  // namespace tributary::es
