// Tests of the Elasticsearch bulk-API test server (tests/support/es_bulk_server)
// through its test-side helper (tests/support/es_server_process.h). Each test
// starts its own server on a port the server picked.

#include <gtest/gtest.h>
#include <simdjson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/es_server_process.h"

namespace tributary::test_support {
namespace {

using namespace std::chrono_literals;

const HttpHeaders kNdjson = {{"Content-Type", "application/x-ndjson"}};

// `n` index actions for `index`, with documents {"n":i,"message":"line i"}.
std::string index_actions(int n, std::string_view index, int first = 0) {
  std::string body;
  for (int i = first; i < first + n; ++i) {
    body += "{\"index\":{\"_index\":\"" + std::string(index) + "\"}}\n";
    body += "{\"n\":" + std::to_string(i) + ",\"message\":\"line " + std::to_string(i) + "\"}\n";
  }
  return body;
}

std::string gzip(std::string_view in) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// The parts of a bulk response the tests look at.
struct BulkResponse {
  bool parsed = false;
  bool errors = false;
  struct Item {
    std::string action;
    int64_t status = 0;
    std::string index;
    std::string id;  // empty when null
    std::string result;
    std::string error_type;
    std::string error_reason;
  };
  std::vector<Item> items;
};

BulkResponse parse_bulk(const std::string& body) {
  BulkResponse out;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return out;
  if (root["errors"].get_bool().get(out.errors) != simdjson::SUCCESS) return out;
  simdjson::dom::array items;
  if (root["items"].get_array().get(items) != simdjson::SUCCESS) return out;
  for (simdjson::dom::object wrapper : items) {
    for (auto [action, v] : wrapper) {
      BulkResponse::Item item;
      item.action = std::string(action);
      std::string_view s;
      if (v["status"].get_int64().get(item.status) != simdjson::SUCCESS) item.status = 0;
      if (v["_index"].get_string().get(s) == simdjson::SUCCESS) item.index = std::string(s);
      if (v["_id"].get_string().get(s) == simdjson::SUCCESS) item.id = std::string(s);
      if (v["result"].get_string().get(s) == simdjson::SUCCESS) item.result = std::string(s);
      if (v["error"]["type"].get_string().get(s) == simdjson::SUCCESS) item.error_type = std::string(s);
      if (v["error"]["reason"].get_string().get(s) == simdjson::SUCCESS) item.error_reason = std::string(s);
      out.items.push_back(std::move(item));
    }
  }
  out.parsed = true;
  return out;
}

// error.type of an ES-shaped whole-request error body.
std::string error_type(const std::string& body) {
  simdjson::dom::parser parser;
  std::string_view s;
  if (parser.parse(body)["error"]["type"].get_string().get(s) != simdjson::SUCCESS) return {};
  return std::string(s);
}

std::string error_reason(const std::string& body) {
  simdjson::dom::parser parser;
  std::string_view s;
  if (parser.parse(body)["error"]["reason"].get_string().get(s) != simdjson::SUCCESS) return {};
  return std::string(s);
}

TEST(EsBulkServerTest, IndexesDocumentsAndCountsThem) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r = es.post("/_bulk", index_actions(25, "app"));
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.header("X-elastic-product"), "Elasticsearch");
  const BulkResponse b = parse_bulk(r.body);
  ASSERT_TRUE(b.parsed) << r.body;
  EXPECT_FALSE(b.errors);
  ASSERT_EQ(b.items.size(), 25u);
  for (const auto& item : b.items) {
    EXPECT_EQ(item.action, "index");
    EXPECT_EQ(item.status, 201);
    EXPECT_EQ(item.result, "created");
    EXPECT_EQ(item.index, "app");
    EXPECT_EQ(item.id.size(), 20u) << "auto-generated ids look like Elasticsearch's";
  }
  EXPECT_EQ(es.count("app"), 25);
  EXPECT_EQ(es.count("missing"), 0);

  const std::vector<EsDoc> docs = es.docs("app");
  ASSERT_EQ(docs.size(), 25u);
  EXPECT_EQ(docs[3].source, R"({"n":3,"message":"line 3"})");
  EXPECT_EQ(docs[3].id, b.items[3].id);
  EXPECT_EQ(es.stat("items"), 25);
}

TEST(EsBulkServerTest, DefaultIndexComesFromThePath) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r =
      es.post("/web/_bulk", "{\"create\":{\"_id\":\"a\"}}\n{\"x\":1}\r\n{\"index\":{\"_index\":\"other\"}}\n{}\n");
  ASSERT_EQ(r.status, 200) << r.body;
  const BulkResponse b = parse_bulk(r.body);
  ASSERT_EQ(b.items.size(), 2u);
  EXPECT_EQ(b.items[0].index, "web");
  EXPECT_EQ(b.items[0].id, "a");
  EXPECT_EQ(b.items[1].index, "other");
  EXPECT_EQ(es.count("web"), 1);
  EXPECT_EQ(es.count("other"), 1);
  EXPECT_EQ(es.count("web,other"), 2);
  EXPECT_EQ(es.count("*"), 2);
}

TEST(EsBulkServerTest, RejectsBodyWithoutTrailingNewline) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  std::string body = index_actions(2, "app");
  body.pop_back();
  const HttpResult r = es.post("/_bulk", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_type(r.body), "illegal_argument_exception");
  EXPECT_EQ(error_reason(r.body), "The bulk request must be terminated by a newline [\\n]");
  EXPECT_EQ(es.count("app"), 0) << "nothing of a rejected request is indexed";
}

TEST(EsBulkServerTest, RejectsUnsupportedContentTypeWith406) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const std::string body = index_actions(1, "app");
  HttpResult r = es.post("/_bulk", body, {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 406);
  EXPECT_EQ(r.body, R"({"error":"Content-Type header [text/plain] is not supported","status":406})");
  r = es.post("/_bulk", body, {});
  EXPECT_EQ(r.status, 406) << "a missing Content-Type is rejected too";

  // What Elasticsearch accepts.
  for (const char* type : {"application/json", "application/x-ndjson; charset=UTF-8",
                           "application/vnd.elasticsearch+x-ndjson;compatible-with=8"}) {
    r = es.post("/_bulk", body, {{"Content-Type", type}});
    EXPECT_EQ(r.status, 200) << type << ": " << r.body;
  }
  EXPECT_EQ(es.count("app"), 3);
}

TEST(EsBulkServerTest, AcceptsGzipBodies) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r = es.post("/_bulk", gzip(index_actions(40, "zipped")),
                               {{"Content-Type", "application/x-ndjson"}, {"Content-Encoding", "gzip"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(parse_bulk(r.body).errors);
  EXPECT_EQ(es.count("zipped"), 40);
  EXPECT_EQ(es.stat("gzip_requests"), 1);

  const HttpResult corrupt =
      es.post("/_bulk", "not gzip at all", {{"Content-Type", "application/x-ndjson"}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(corrupt.status, 400);
  EXPECT_EQ(es.count("zipped"), 40);
}

TEST(EsBulkServerTest, GzipsResponsesForClientsThatAcceptIt) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r = es.post("/_bulk", index_actions(1, "app"),
                               {{"Content-Type", "application/x-ndjson"}, {"Accept-Encoding", "gzip"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Encoding"), "gzip");
  ASSERT_GE(r.body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(r.body[1]), 0x8b);
}

TEST(EsBulkServerTest, EnforcesBasicAuth) {
  EsBulkServer es({"--basic-auth", "elastic:s3cret"});
  ASSERT_TRUE(es.ok()) << es.error();
  const std::string body = index_actions(3, "app");

  HttpResult r = es.post("/_bulk", body);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_type(r.body), "security_exception");
  EXPECT_EQ(error_reason(r.body), "missing authentication credentials for REST request [/_bulk]");
  const auto challenges = r.headers_named("WWW-Authenticate");
  ASSERT_EQ(challenges.size(), 2u);
  EXPECT_EQ(challenges[0], "Basic realm=\"security\" charset=\"UTF-8\"");

  // base64("elastic:wrong")
  r = es.post("/_bulk", body,
              {{"Content-Type", "application/x-ndjson"}, {"Authorization", "Basic ZWxhc3RpYzp3cm9uZw=="}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_reason(r.body), "unable to authenticate user [elastic] for REST request [/_bulk]");
  EXPECT_EQ(es.get("/").status, 401);

  HttpHeaders headers = es.auth_headers();
  headers.emplace_back("Content-Type", "application/x-ndjson");
  r = es.post("/_bulk", body, headers);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(es.count("app"), 3);
  EXPECT_EQ(es.stat("auth_failures"), 3);
}

TEST(EsBulkServerTest, EnforcesApiKey) {
  const std::string key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";
  EsBulkServer es({"--api-key", key});
  ASSERT_TRUE(es.ok()) << es.error();
  EXPECT_EQ(es.get("/", {{"Authorization", "ApiKey nope"}}).status, 401);
  EXPECT_EQ(es.get("/", {{"Authorization", "ApiKey " + key}}).status, 200);
}

TEST(EsBulkServerTest, CreateConflictsAndIndexOverwrites) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  ASSERT_EQ(es.post("/_bulk", "{\"create\":{\"_index\":\"app\",\"_id\":\"1\"}}\n{\"v\":1}\n").status, 200);
  const HttpResult r = es.post("/_bulk",
                               "{\"create\":{\"_index\":\"app\",\"_id\":\"1\"}}\n{\"v\":2}\n"
                               "{\"index\":{\"_index\":\"app\",\"_id\":\"1\"}}\n{\"v\":3}\n"
                               "{\"create\":{\"_index\":\"app\",\"_id\":\"2\"}}\n{\"v\":4}\n");
  ASSERT_EQ(r.status, 200);
  const BulkResponse b = parse_bulk(r.body);
  ASSERT_EQ(b.items.size(), 3u);
  EXPECT_TRUE(b.errors);
  EXPECT_EQ(b.items[0].status, 409);
  EXPECT_EQ(b.items[0].error_type, "version_conflict_engine_exception");
  EXPECT_EQ(b.items[0].error_reason, "[1]: version conflict, document already exists (current version [1])");
  EXPECT_EQ(b.items[1].status, 200);
  EXPECT_EQ(b.items[1].result, "updated");
  EXPECT_EQ(b.items[2].status, 201);
  const auto docs = es.docs("app");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].source, R"({"v":3})");
  EXPECT_EQ(docs[0].version, 2);
}

TEST(EsBulkServerTest, RejectsAFractionOfItemsWith429) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  ASSERT_TRUE(es.set_faults(R"({"reject_items":{"fraction":0.25}})"));
  const HttpResult r = es.post("/_bulk", index_actions(8, "app"));
  ASSERT_EQ(r.status, 200);
  const BulkResponse b = parse_bulk(r.body);
  ASSERT_EQ(b.items.size(), 8u);
  EXPECT_TRUE(b.errors);
  for (size_t i = 0; i < b.items.size(); ++i) {
    const bool rejected = i == 3 || i == 7;  // every 4th, deterministically
    EXPECT_EQ(b.items[i].status, rejected ? 429 : 201) << "item " << i;
    EXPECT_EQ(b.items[i].error_type, rejected ? "es_rejected_execution_exception" : "") << "item " << i;
  }
  EXPECT_EQ(es.count("app"), 6);
  EXPECT_EQ(es.stat("injected_item_rejections"), 2);

  // The first N items, across requests, then nothing.
  ASSERT_TRUE(es.set_faults(R"({"reject_items":{"first":3}})"));
  BulkResponse b1 = parse_bulk(es.post("/_bulk", index_actions(2, "app")).body);
  BulkResponse b2 = parse_bulk(es.post("/_bulk", index_actions(2, "app")).body);
  ASSERT_EQ(b1.items.size(), 2u);
  ASSERT_EQ(b2.items.size(), 2u);
  EXPECT_EQ(b1.items[0].status, 429);
  EXPECT_EQ(b1.items[1].status, 429);
  EXPECT_EQ(b2.items[0].status, 429);
  EXPECT_EQ(b2.items[1].status, 201);
}

TEST(EsBulkServerTest, MappingErrorsRejectExactlyTheBadDocuments) {
  EsBulkServer es({"--mapping", "status:long", "--mapping", "http.ok:boolean"});
  ASSERT_TRUE(es.ok()) << es.error();
  const std::vector<std::pair<std::string, bool>> docs = {
      {R"({"status":200})", true},
      {R"({"status":"abc"})", false},
      {R"({"status":"404"})", true},  // numeric strings are coerced
      {R"({"status":true})", false},
      {R"({"status":1.5})", true},  // fractions are truncated
      {R"({"status":{"code":1}})", false},
      {R"({"status":null})", true},
      {R"({"status":3e30})", false},  // out of range for a long
      {R"({"status":[1,2]})", true},
      {R"({"http":{"ok":"yes"}})", false},
      {R"({"http.ok":false})", true},
      {R"({"other":"anything"})", true},
      {R"({"a":1,"a":2})", false},  // duplicate keys
      {R"(not json)", false},
  };
  std::string body;
  for (const auto& [doc, ok] : docs) body += "{\"index\":{\"_index\":\"typed\"}}\n" + doc + "\n";
  const HttpResult r = es.post("/_bulk", body);
  ASSERT_EQ(r.status, 200) << r.body;
  const BulkResponse b = parse_bulk(r.body);
  ASSERT_EQ(b.items.size(), docs.size());
  EXPECT_TRUE(b.errors);
  int64_t accepted = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    const bool ok = docs[i].second;
    accepted += ok;
    EXPECT_EQ(b.items[i].status, ok ? 201 : 400) << docs[i].first;
    EXPECT_EQ(b.items[i].error_type, ok ? "" : "mapper_parsing_exception") << docs[i].first;
  }
  EXPECT_EQ(es.count("typed"), accepted);
  EXPECT_EQ(b.items[1].error_reason, "failed to parse field [status] of type [long] in document with id '" +
                                         b.items[1].id + "'. Preview of field's value: 'abc'");
}

TEST(EsBulkServerTest, FailsTheNextNRequestsWith503) {
  EsBulkServer es({"--fail-requests", "503:2"});
  ASSERT_TRUE(es.ok()) << es.error();
  const std::string body = index_actions(5, "app");
  for (int i = 0; i < 2; ++i) {
    const HttpResult r = es.post("/_bulk", body);
    EXPECT_EQ(r.status, 503) << "request " << i;
    EXPECT_EQ(error_type(r.body), "cluster_block_exception");
  }
  EXPECT_EQ(es.count("app"), 0);
  EXPECT_EQ(es.post("/_bulk", body).status, 200);
  EXPECT_EQ(es.count("app"), 5);

  // Changed at runtime: 429 for every other request.
  ASSERT_TRUE(es.set_faults(R"({"fail_requests":{"status":429,"fraction":0.5}})"));
  std::vector<int> statuses;
  for (int i = 0; i < 4; ++i) statuses.push_back(es.post("/_bulk", body).status);
  EXPECT_EQ(statuses, (std::vector<int>{200, 429, 200, 429}));
  EXPECT_EQ(es.stat("injected_request_failures"), 4);
}

TEST(EsBulkServerTest, DataStreamsAcceptOnlyCreateWithTimestamp) {
  EsBulkServer es({"--data-stream", "logs-*-*"});
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r =
      es.post("/_bulk",
              "{\"index\":{\"_index\":\"logs-app-default\"}}\n{\"@timestamp\":\"2024-05-01T10:00:00Z\"}\n"
              "{\"create\":{\"_index\":\"logs-app-default\"}}\n{\"message\":\"no timestamp\"}\n"
              "{\"create\":{\"_index\":\"logs-app-default\"}}\n{\"@timestamp\":\"yesterday\"}\n"
              "{\"create\":{\"_index\":\"logs-app-default\"}}\n"
              "{\"@timestamp\":\"2024-05-01T10:00:00.123456789+02:00\",\"message\":\"ok\"}\n"
              "{\"index\":{\"_index\":\"plain\"}}\n{\"message\":\"not a data stream\"}\n");
  ASSERT_EQ(r.status, 200);
  const BulkResponse b = parse_bulk(r.body);
  ASSERT_EQ(b.items.size(), 5u);
  EXPECT_EQ(b.items[0].status, 400);
  EXPECT_EQ(b.items[0].error_reason, "only write ops with an op_type of create are allowed in data streams");
  EXPECT_EQ(b.items[1].status, 400);
  EXPECT_EQ(b.items[1].error_type, "mapper_parsing_exception");
  EXPECT_EQ(b.items[2].status, 400);
  EXPECT_EQ(b.items[3].status, 201);
  EXPECT_EQ(b.items[3].index.rfind(".ds-logs-app-default-", 0), 0u) << b.items[3].index;
  EXPECT_EQ(b.items[4].status, 201);
  EXPECT_EQ(es.count("logs-app-default"), 1);
}

TEST(EsBulkServerTest, MalformedActionLinesFailTheWholeRequest) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"insert\":{}}\n{}\n",
       "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [insert]"},
      {"{\"index\":{\"_type\":\"doc\"}}\n{}\n", "Action/metadata line [1] contains an unknown parameter [_type]"},
      {"[1]\n", "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]"},
      {"{\"index\":{}}\n{}\n{\"index\":{},\"create\":{}}\n{}\n",
       "Malformed action/metadata line [3], expected END_OBJECT but found [FIELD_NAME]"},
  };
  for (const auto& [body, reason] : cases) {
    const HttpResult r = es.post("/app/_bulk", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(error_type(r.body), "illegal_argument_exception") << body;
    EXPECT_EQ(error_reason(r.body), reason) << body;
  }
  HttpResult r = es.post("/_bulk", "{\"index\":{}}\n{}\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_reason(r.body), "Validation Failed: 1: index is missing;");
  r = es.post("/_bulk", "{\"index\":{\"_index\":\"app\"}\n{}\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_type(r.body), "x_content_parse_exception");
  EXPECT_EQ(es.count("app"), 0);
}

TEST(EsBulkServerTest, FilterPathTrimsTheResponse) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r = es.post("/_bulk?filter_path=errors,items.*.status", index_actions(2, "app"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"errors":false,"items":[{"index":{"status":201}},{"index":{"status":201}}]})");
  EXPECT_EQ(es.post("/_bulk?refresh=true&pipeline=_none", index_actions(1, "app")).status, 200);
  EXPECT_EQ(es.post("/_bulk?bogus=1", index_actions(1, "app")).status, 400);
}

TEST(EsBulkServerTest, UpdateAndDelete) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r = es.post("/app/_bulk",
                               "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"a\":1}}\n"
                               "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"a\":1},\"doc_as_upsert\":true}\n"
                               "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"b\":{\"c\":2}}}\n"
                               "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"a\":1}}\n"
                               "{\"delete\":{\"_id\":\"2\"}}\n"
                               "{\"index\":{\"_id\":\"2\"}}\n{}\n"
                               "{\"delete\":{\"_id\":\"2\"}}\n");
  ASSERT_EQ(r.status, 200) << r.body;
  const BulkResponse b = parse_bulk(r.body);
  ASSERT_EQ(b.items.size(), 7u);
  EXPECT_EQ(b.items[0].status, 404);
  EXPECT_EQ(b.items[0].error_type, "document_missing_exception");
  EXPECT_EQ(b.items[1].result, "created");
  EXPECT_EQ(b.items[2].result, "updated");
  EXPECT_EQ(b.items[3].result, "noop");
  EXPECT_EQ(b.items[4].result, "not_found");
  EXPECT_EQ(b.items[4].status, 404);
  EXPECT_EQ(b.items[6].result, "deleted");
  const auto docs = es.docs("app");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].source, R"({"a":1,"b":{"c":2}})");
}

TEST(EsBulkServerTest, DownRefusesConnectionsUntilUp) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  const uint16_t port = es.port();
  ASSERT_TRUE(es.down());
  const HttpResult refused = es.post("/_bulk", index_actions(1, "app"));
  EXPECT_EQ(refused.status, 0);
  EXPECT_NE(refused.error.find("connect"), std::string::npos) << refused.error;
  ASSERT_TRUE(es.up());
  EXPECT_EQ(es.port(), port);
  EXPECT_EQ(es.post("/_bulk", index_actions(1, "app")).status, 200);
  EXPECT_EQ(es.count("app"), 1);
}

TEST(EsBulkServerTest, ClosesConnectionsWithoutAReplyOnRequest) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  ASSERT_TRUE(es.set_faults(R"({"close_connections":1})"));
  const HttpResult dropped = es.post("/_bulk", index_actions(1, "app"));
  EXPECT_EQ(dropped.status, 0);
  EXPECT_EQ(es.count("app"), 0) << "a dropped request was not processed";
  EXPECT_EQ(es.post("/_bulk", index_actions(1, "app")).status, 200);
  EXPECT_EQ(es.stat("closed_connections"), 1);
}

// idle_timeout_ms closes a kept-alive connection that waits that long for
// its next request, as a proxy's idle timeout does.
TEST(EsBulkServerTest, ClosesAKeptAliveConnectionIdleForTheIdleTimeout) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  ASSERT_TRUE(es.set_faults(R"({"idle_timeout_ms":100})"));
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  timeval tv{10, 0};  // a recv that never ends fails the test instead
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(es.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  const std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";  // keep-alive by default
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << "no end of stream: " << std::strerror(errno);
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;  // answered, then closed once idle
  EXPECT_EQ(es.stat("idle_closed_connections"), 1);
}

TEST(EsBulkServerTest, DelayProvokesClientTimeouts) {
  EsBulkServer es({"--delay-ms", "2000"});
  ASSERT_TRUE(es.ok()) << es.error();
  const HttpResult r = es.request("POST", "/_bulk", index_actions(1, "app"), kNdjson, 50ms);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("timeout"), std::string::npos) << r.error;
  EXPECT_EQ(es.stat("delayed_requests"), 1);
  EXPECT_TRUE(es.get("/_test/faults").status == 200) << "control calls are never delayed";
}

TEST(EsBulkServerTest, ServesManyConcurrentConnections) {
  EsBulkServer es;
  ASSERT_TRUE(es.ok()) << es.error();
  constexpr int kThreads = 16, kRequests = 10, kDocs = 10;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        const HttpResult r = es.post("/_bulk", index_actions(kDocs, "load", (t * kRequests + i) * kDocs));
        if (r.status != 200 || parse_bulk(r.body).errors) ++failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_EQ(es.count("load"), kThreads * kRequests * kDocs);
}

TEST(EsBulkServerTest, ClusterInfoAndHealth) {
  EsBulkServer es({"--es-version", "8.11.3"});
  ASSERT_TRUE(es.ok()) << es.error();
  simdjson::dom::parser parser;
  std::string_view s;
  const HttpResult info = es.get("/");
  ASSERT_EQ(info.status, 200);
  ASSERT_EQ(parser.parse(info.body)["version"]["number"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "8.11.3");
  const HttpResult health = es.get("/_cluster/health");
  ASSERT_EQ(health.status, 200);
  ASSERT_EQ(parser.parse(health.body)["status"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "green");
  EXPECT_EQ(es.get("/_bulk").status, 405);
  EXPECT_EQ(es.get("/no/such/thing").status, 400);
}

// A standard client (curl, in a subprocess) gets the same treatment, keep-alive
// and `Expect: 100-continue` included.
TEST(EsBulkServerTest, CurlCanBulkIndex) {
  if (::access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl is not installed";
  EsBulkServer es({"--basic-auth", "elastic:s3cret"});
  ASSERT_TRUE(es.ok()) << es.error();
  const std::string path = ::testing::TempDir() + "/es_bulk_server_test_body.ndjson";
  {
    std::ofstream out(path, std::ios::binary);
    out << index_actions(50, "curl");
  }
  const int64_t connections_before = es.stat("connections_opened");
  // Two transfers in one invocation share one connection. curl 7.88 sends
  // `Expect: 100-continue` by itself only above 1 MiB; ask for it so the
  // interim response is exercised (without it curl would stall for 1 s).
  const std::string cmd =
      "/usr/bin/curl -sS -u elastic:s3cret -H 'Content-Type: application/x-ndjson' "
      "-H 'Expect: 100-continue' "
      "--data-binary @" +
      path + " -w '\\n%{http_code}\\n' " + es.url() + "/_bulk " + es.url() + "/_bulk 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0;) output.append(buf, n);
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  std::vector<std::string> lines;
  for (size_t pos = 0, nl; (nl = output.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    lines.push_back(output.substr(pos, nl - pos));
  }
  ASSERT_EQ(lines.size(), 4u) << output;
  EXPECT_EQ(lines[1], "200");
  EXPECT_EQ(lines[3], "200");
  const BulkResponse b = parse_bulk(lines[0]);
  EXPECT_TRUE(b.parsed);
  EXPECT_FALSE(b.errors);
  EXPECT_EQ(b.items.size(), 50u);
  EXPECT_EQ(es.stat("connections_opened") - connections_before, 2) << "curl's one connection plus this stats call";
  EXPECT_EQ(es.count("curl"), 100);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tributary::test_support
