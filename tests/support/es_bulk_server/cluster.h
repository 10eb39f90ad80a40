#pragma once

// The Elasticsearch side of the test server: a one-node "cluster" that
// answers the REST calls a log shipper makes (`_bulk`, `_count`, `/`,
// `_cluster/health`) the way Elasticsearch 8 documents them, plus the
// `/_test/*` control endpoints. It knows nothing about sockets: the
// connection layer (server.h) turns HTTP requests into HttpCall and writes
// back HttpReply.
//
// Thread-safety: every public method may be called from any thread. Request
// bodies are parsed outside the lock; the document store, faults and stats
// are guarded by one mutex.

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tests/support/es_bulk_server/faults.h"
#include "tests/support/es_bulk_server/json.h"

namespace es_test {

struct ClusterOptions {
  std::vector<std::string> data_stream_patterns;  // globs, e.g. "logs-*-*"
  bool basic_auth = false;
  std::string basic_user;
  std::string basic_password;
  std::string api_key;                            // exact `Authorization: ApiKey <value>`; empty = off
  size_t max_content_length = 100 * 1024 * 1024;  // like http.max_content_length
  bool keep_sources = true;                       // false: store ids and versions only
  bool compress_responses = true;                 // gzip replies when the client accepts it
  std::string es_version = "8.7.1";
  std::string cluster_name = "tributary-test";
};

struct HttpCall {
  std::string method;  // upper case
  std::string target;  // path and query, as received
  std::string content_type;
  std::string content_encoding;
  std::string authorization;
  std::string accept_encoding;
  std::string body;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t down_ms = 0;  // > 0: stop listening for this long once the reply is sent
  bool interim = false;  // send `100 Continue` first (faults: interim_responses)
};

// What the connection layer does with a request before handing it over.
struct CallPlan {
  int64_t delay_ms = 0;
  bool close_without_reply = false;
};

class Cluster {
 public:
  Cluster(ClusterOptions options, Faults faults);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Decides (and consumes) the connection-level faults for one request.
  CallPlan plan(const HttpCall& call);
  // Answers one request. May move from call.body.
  HttpReply handle(HttpCall& call);

  // Replaces the faults with a control-API patch (see faults.h).
  bool patch_faults(std::string_view json, int64_t* down_ms, std::string* error);

  void connection_opened() { ++connections_opened_, ++connections_open_; }
  // The idle timeout in force (faults.h); 0: none.
  int64_t idle_timeout_ms();
  // The connection layer closed a connection that waited idle_timeout_ms.
  void idle_connection_closed();
  void connection_closed() { --connections_open_; }

 private:
  using Params = std::vector<std::pair<std::string, std::string>>;

  struct StoredDoc {
    std::string id;
    int64_t version = 0;
    int64_t seq_no = 0;
    std::string source;
    bool deleted = false;
  };
  struct IndexData {
    std::string name;     // what clients address: an index or a data stream
    std::string backing;  // data streams: ".ds-<name>-<yyyy.MM.dd>-000001"
    bool data_stream = false;
    std::string uuid;
    std::vector<StoredDoc> docs;  // in order of first write
    std::unordered_map<std::string, size_t> by_id;
    int64_t live = 0;
    int64_t next_seq_no = 0;
  };
  struct Stats {
    int64_t requests = 0;
    int64_t bulk_requests = 0;
    int64_t items = 0;
    int64_t bytes_received = 0;
    int64_t gzip_requests = 0;
    int64_t auth_failures = 0;
    int64_t injected_request_failures = 0;
    int64_t injected_item_rejections = 0;
    int64_t closed_connections = 0;
    int64_t idle_closed_connections = 0;
    int64_t delayed_requests = 0;
    std::map<int, int64_t> http_status;
    std::map<int, int64_t> item_status;
    std::map<std::string, int64_t> actions;
  };
  struct BulkItem;  // bulk.cc

  // Router pieces (cluster.cc).
  HttpReply route(HttpCall& call, const std::string& path, const Params& params);
  HttpReply control(HttpCall& call, const std::string& path, const Params& params);
  std::optional<HttpReply> authenticate(const HttpCall& call, const std::string& path);
  HttpReply count(const HttpCall& call, std::string_view expr, const Params& params);
  HttpReply info(bool head);
  HttpReply health();
  HttpReply dump_docs(const Params& params);
  HttpReply stats_reply();
  void finish(const HttpCall& call, HttpReply* reply);
  bool is_data_stream(std::string_view name) const;
  // Indices named by a comma-separated expression with `*` wildcards. Sets
  // `missing` to the first concrete name that does not exist. Needs mu_.
  std::vector<const IndexData*> resolve(std::string_view expr, std::string* missing) const;

  // Bulk (bulk.cc).
  HttpReply bulk(HttpCall& call, std::string_view default_index, const Params& params);
  std::optional<HttpReply> parse_bulk(std::string_view body, std::string_view default_index, const Params& params,
                                      std::vector<BulkItem>* items);
  void check_items(std::vector<BulkItem>* items, const Mapping& mapping);
  // Runs one item against the store; returns {"<action>": {...}}. Needs mu_.
  Json execute(BulkItem& item, const Mapping& mapping, int* status);
  std::string merge_sources(std::string_view old_source, std::string_view patch);  // needs mu_
  IndexData& index_for(const BulkItem& item);                                      // needs mu_
  std::string new_id();

  const ClusterOptions options_;
  const std::string cluster_uuid_;
  std::atomic<int64_t> connections_opened_{0};
  std::atomic<int64_t> connections_open_{0};
  std::atomic<uint64_t> id_counter_{0};

  std::mutex mu_;
  Faults faults_;
  Stats stats_;
  std::map<std::string, IndexData, std::less<>> indices_;
  simdjson::dom::parser merge_old_parser_;  // update merges, under mu_
  simdjson::dom::parser merge_new_parser_;
};

// ES-shaped error helpers shared by cluster.cc and bulk.cc.
Json error_cause(std::string_view type, std::string reason);
// {"error":{"root_cause":[...],...cause},"status":N}
HttpReply error_reply(int status, Json cause);

}  // namespace es_test
