#include "tests/support/es_bulk_server/cluster.h"

#include <algorithm>
#include <cctype>
#include <random>

#include "tests/support/es_bulk_server/codec.h"

namespace es_test {
namespace {

constexpr std::string_view kWwwAuthenticateBasic = "Basic realm=\"security\" charset=\"UTF-8\"";
constexpr std::string_view kWwwAuthenticateApiKey = "ApiKey";

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) parts.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return parts;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

const std::string* param(const std::vector<std::pair<std::string, std::string>>& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string random_uuid() {
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::mt19937_64 rng(rd());
  std::string out(22, 'A');
  for (auto& c : out) c = kChars[rng() % 64];
  return out;
}

HttpReply plain_error(int status, std::string message) {
  HttpReply r;
  r.status = status;
  Json body = Json::object().add("error", std::move(message)).add("status", status);
  r.body = body.dump();
  return r;
}

HttpReply json_reply(int status, const Json& body) {
  HttpReply r;
  r.status = status;
  r.body = body.dump();
  return r;
}

}  // namespace

Json error_cause(std::string_view type, std::string reason) {
  return Json::object().add("type", type).add("reason", std::move(reason));
}

HttpReply error_reply(int status, Json cause) {
  Json root = Json::object();
  for (const auto& [k, v] : cause.members()) {
    if (k != "caused_by") root.add(k, v);
  }
  Json error = Json::object().add("root_cause", Json::array().push(std::move(root)));
  for (const auto& [k, v] : cause.members()) error.add(k, v);
  return json_reply(status, Json::object().add("error", std::move(error)).add("status", status));
}

Cluster::Cluster(ClusterOptions options, Faults faults)
    : options_(std::move(options)), cluster_uuid_(random_uuid()), faults_(std::move(faults)) {}

bool Cluster::is_data_stream(std::string_view name) const {
  return std::any_of(options_.data_stream_patterns.begin(), options_.data_stream_patterns.end(),
                     [&](const std::string& p) { return glob_match(p, name); });
}

bool Cluster::patch_faults(std::string_view json, int64_t* down_ms, std::string* error) {
  std::lock_guard lock(mu_);
  return apply_faults_patch(json, &faults_, down_ms, error);
}

CallPlan Cluster::plan(const HttpCall& call) {
  CallPlan plan;
  const std::string_view target = call.target;
  if (target.rfind("/_test/", 0) == 0) return plan;
  const std::string_view path = target.substr(0, target.find('?'));
  const bool is_bulk = path == "/_bulk" || (path.size() > 6 && path.substr(path.size() - 6) == "/_bulk");
  std::lock_guard lock(mu_);
  plan.delay_ms = faults_.delay_ms;
  if (plan.delay_ms > 0) ++stats_.delayed_requests;
  if (is_bulk && faults_.take_close_connection()) {
    plan.close_without_reply = true;
    ++stats_.closed_connections;
  }
  return plan;
}

int64_t Cluster::idle_timeout_ms() {
  std::lock_guard lock(mu_);
  return faults_.idle_timeout_ms;
}

void Cluster::idle_connection_closed() {
  std::lock_guard lock(mu_);
  ++stats_.idle_closed_connections;
}

HttpReply Cluster::handle(HttpCall& call) {
  std::string path;
  Params params;
  HttpReply reply;
  if (!split_target(call.target, &path, &params)) {
    reply = error_reply(
        400, error_cause("illegal_argument_exception", "unterminated escape sequence in [" + call.target + "]"));
  } else if (path.rfind("/_test/", 0) == 0) {
    reply = control(call, path, params);
    finish(call, &reply);
    return reply;  // control calls stay out of the stats
  } else {
    {
      std::lock_guard lock(mu_);
      ++stats_.requests;
      stats_.bytes_received += static_cast<int64_t>(call.body.size());
    }
    if (auto denied = authenticate(call, path)) {
      reply = std::move(*denied);
    } else {
      reply = route(call, path, params);
    }
    if (path == "/_bulk" || path.ends_with("/_bulk")) {
      std::lock_guard lock(mu_);
      reply.interim = faults_.take_interim_response();
    }
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.http_status[reply.status];
  }
  reply.headers.emplace_back("X-elastic-product", "Elasticsearch");
  finish(call, &reply);
  return reply;
}

void Cluster::finish(const HttpCall& call, HttpReply* reply) {
  int64_t warnings = 0;
  std::string encoding;
  if (call.target.rfind("/_test/", 0) != 0) {
    std::lock_guard lock(mu_);
    warnings = faults_.warning_headers;
    encoding = faults_.response_encoding;
  }
  for (int64_t i = 0; i < warnings; ++i)
    reply->headers.emplace_back("Warning", "299 Elasticsearch-8.7.1-0000000 \"[" + std::to_string(i) +
                                               "] this request uses a deprecated parameter (injected by es_bulk_server)"
                                               "; see the deprecation logs for details\"");
  if (encoding == "deflate" && !reply->body.empty()) {
    reply->body = zlib_compress(reply->body);
    reply->headers.emplace_back("Content-Encoding", "deflate");
    return;
  }
  if (!options_.compress_responses || reply->body.empty()) return;
  // Accept-Encoding: a token list; honour "gzip" unless given q=0.
  std::string ae = call.accept_encoding;
  std::transform(ae.begin(), ae.end(), ae.begin(), [](unsigned char c) { return std::tolower(c); });
  const size_t pos = ae.find("gzip");
  if (pos == std::string::npos) return;
  const size_t end = ae.find(',', pos);
  const std::string token = ae.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  if (token.find("q=0") != std::string::npos && token.find("q=0.") == std::string::npos) return;
  reply->body = gzip_compress(reply->body);
  reply->headers.emplace_back("Content-Encoding", "gzip");
}

std::optional<HttpReply> Cluster::authenticate(const HttpCall& call, const std::string& path) {
  if (!options_.basic_auth && options_.api_key.empty()) return std::nullopt;
  const std::string_view auth = call.authorization;
  std::string reason;
  if (iequals_prefix(auth, "Basic ")) {
    std::string decoded;
    std::string_view user = "";
    if (base64_decode(auth.substr(6), &decoded)) {
      const size_t colon = decoded.find(':');
      user = std::string_view(decoded).substr(0, colon);
      if (options_.basic_auth && colon != std::string::npos && user == options_.basic_user &&
          std::string_view(decoded).substr(colon + 1) == options_.basic_password) {
        return std::nullopt;
      }
    }
    reason = "unable to authenticate user [" + std::string(user) + "] for REST request [" + path + "]";
  } else if (iequals_prefix(auth, "ApiKey ")) {
    if (!options_.api_key.empty() && auth.substr(7) == options_.api_key) return std::nullopt;
    reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request";
  } else {
    reason = "missing authentication credentials for REST request [" + path + "]";
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.auth_failures;
  }
  Json challenge = Json::array().push(kWwwAuthenticateBasic).push(kWwwAuthenticateApiKey);
  HttpReply r = error_reply(
      401, error_cause("security_exception", reason).add("header", Json::object().add("WWW-Authenticate", challenge)));
  r.headers.emplace_back("WWW-Authenticate", std::string(kWwwAuthenticateBasic));
  r.headers.emplace_back("WWW-Authenticate", std::string(kWwwAuthenticateApiKey));
  return r;
}

HttpReply Cluster::route(HttpCall& call, const std::string& path, const Params& params) {
  const std::vector<std::string_view> parts = split_path(path);
  const std::string& m = call.method;
  auto wrong_method = [&](std::string_view allowed) {
    HttpReply r = plain_error(405, "Incorrect HTTP method for uri [" + call.target + "] and method [" + m +
                                       "], allowed: [" + std::string(allowed) + "]");
    r.headers.emplace_back("Allow", std::string(allowed));
    return r;
  };
  if (parts.empty()) {
    if (m == "GET" || m == "HEAD") return info(m == "HEAD");
    return wrong_method("GET, HEAD");
  }
  const std::string_view last = parts.back();
  if (last == "_bulk" && parts.size() <= 2) {
    if (m != "POST" && m != "PUT") return wrong_method("POST, PUT");
    return bulk(call, parts.size() == 2 ? parts[0] : std::string_view(), params);
  }
  if (last == "_count" && parts.size() <= 2) {
    if (m != "GET" && m != "POST") return wrong_method("GET, POST");
    return count(call, parts.size() == 2 ? parts[0] : std::string_view("_all"), params);
  }
  if (last == "_refresh" && parts.size() <= 2) {
    if (m != "GET" && m != "POST") return wrong_method("GET, POST");
    return json_reply(
        200, Json::object().add("_shards", Json::object().add("total", 1).add("successful", 1).add("failed", 0)));
  }
  if (parts.size() >= 2 && parts[0] == "_cluster" && parts[1] == "health" && parts.size() <= 3) {
    if (m != "GET") return wrong_method("GET");
    return health();
  }
  return plain_error(400, "no handler found for uri [" + call.target + "] and method [" + m + "]");
}

HttpReply Cluster::info(bool head) {
  Json version = Json::object()
                     .add("number", options_.es_version)
                     .add("build_flavor", "default")
                     .add("build_type", "tar")
                     .add("build_hash", "0000000000000000000000000000000000000000")
                     .add("build_date", "2023-04-27T04:33:42.127815583Z")
                     .add("build_snapshot", false)
                     .add("lucene_version", "9.5.0")
                     .add("minimum_wire_compatibility_version", "7.17.0")
                     .add("minimum_index_compatibility_version", "7.0.0");
  HttpReply r = json_reply(200, Json::object()
                                    .add("name", "es-bulk-server")
                                    .add("cluster_name", options_.cluster_name)
                                    .add("cluster_uuid", cluster_uuid_)
                                    .add("version", std::move(version))
                                    .add("tagline", "You Know, for Search"));
  if (head) r.body.clear();
  return r;
}

HttpReply Cluster::health() {
  int64_t shards = 0;
  int64_t unassigned = 0;
  {
    std::lock_guard lock(mu_);
    shards = static_cast<int64_t>(indices_.size());
    for (const auto& [name, idx] : indices_) {
      if (!idx.data_stream) ++unassigned;  // one replica that has no second node
    }
  }
  const int64_t total = shards + unassigned;
  return json_reply(200, Json::object()
                             .add("cluster_name", options_.cluster_name)
                             .add("status", unassigned ? "yellow" : "green")
                             .add("timed_out", false)
                             .add("number_of_nodes", 1)
                             .add("number_of_data_nodes", 1)
                             .add("active_primary_shards", shards)
                             .add("active_shards", shards)
                             .add("relocating_shards", 0)
                             .add("initializing_shards", 0)
                             .add("unassigned_shards", unassigned)
                             .add("delayed_unassigned_shards", 0)
                             .add("number_of_pending_tasks", 0)
                             .add("number_of_in_flight_fetch", 0)
                             .add("task_max_waiting_in_queue_millis", 0)
                             .add("active_shards_percent_as_number", total ? 100.0 * shards / total : 100.0));
}

std::vector<const Cluster::IndexData*> Cluster::resolve(std::string_view expr, std::string* missing) const {
  std::vector<const IndexData*> out;
  auto add = [&](const IndexData* idx) {
    if (std::find(out.begin(), out.end(), idx) == out.end()) out.push_back(idx);
  };
  size_t pos = 0;
  while (pos <= expr.size()) {
    size_t comma = expr.find(',', pos);
    if (comma == std::string_view::npos) comma = expr.size();
    const std::string_view part = expr.substr(pos, comma - pos);
    pos = comma + 1;
    if (part.empty()) continue;
    if (part == "_all" || part.find('*') != std::string_view::npos) {
      for (const auto& [name, idx] : indices_) {
        if (part == "_all" || glob_match(part, name)) add(&idx);
      }
    } else if (auto it = indices_.find(part); it != indices_.end()) {
      add(&it->second);
    } else if (missing->empty()) {
      *missing = std::string(part);
    }
  }
  return out;
}

HttpReply Cluster::count(const HttpCall& call, std::string_view expr, const Params& params) {
  static constexpr std::string_view kAllowed[] = {
      "ignore_unavailable", "allow_no_indices", "expand_wildcards", "routing", "preference",
      "min_score",          "terminate_after",  "pretty",           "human",   "error_trace",
      "filter_path"};
  for (const auto& [k, v] : params) {
    if (std::find(std::begin(kAllowed), std::end(kAllowed), k) == std::end(kAllowed)) {
      if (k == "q" || k == "df" || k == "analyzer" || k == "default_operator" || k == "lenient") {
        return error_reply(
            400, error_cause("illegal_argument_exception",
                             "es_bulk_server models only match_all counts; parameter [" + k + "] is not supported"));
      }
      return error_reply(
          400, error_cause("illegal_argument_exception",
                           "request [" + std::string(call.target) + "] contains unrecognized parameter: [" + k + "]"));
    }
  }
  if (!call.body.empty()) {
    // Only {"query":{"match_all":{}}} (or an empty object) is modelled.
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    simdjson::dom::object obj, query, match_all;
    const bool ok =
        parser.parse(call.body).get(root) == simdjson::SUCCESS && root.get_object().get(obj) == simdjson::SUCCESS &&
        (obj.size() == 0 || (obj.size() == 1 && obj["query"].get_object().get(query) == simdjson::SUCCESS &&
                             query.size() == 1 && query["match_all"].get_object().get(match_all) == simdjson::SUCCESS));
    if (!ok) {
      return error_reply(400, error_cause("illegal_argument_exception",
                                          "es_bulk_server models only match_all counts; got " + call.body));
    }
  }
  const std::string* ignore = param(params, "ignore_unavailable");
  const bool ignore_unavailable = ignore && (ignore->empty() || *ignore == "true");
  std::lock_guard lock(mu_);
  std::string missing;
  const auto found = resolve(expr, &missing);
  if (!missing.empty() && !ignore_unavailable) {
    return error_reply(404, error_cause("index_not_found_exception", "no such index [" + missing + "]")
                                .add("resource.type", "index_or_alias")
                                .add("resource.id", missing)
                                .add("index_uuid", "_na_")
                                .add("index", missing));
  }
  int64_t n = 0;
  for (const IndexData* idx : found) n += idx->live;
  const int64_t shards = static_cast<int64_t>(found.size());
  return json_reply(
      200, Json::object()
               .add("count", n)
               .add("_shards",
                    Json::object().add("total", shards).add("successful", shards).add("skipped", 0).add("failed", 0)));
}

HttpReply Cluster::dump_docs(const Params& params) {
  const std::string* expr = param(params, "index");
  HttpReply r;
  r.content_type = "application/x-ndjson";
  std::lock_guard lock(mu_);
  std::string missing;
  const auto found = resolve(expr ? std::string_view(*expr) : std::string_view("_all"), &missing);
  for (const IndexData* idx : found) {
    for (const StoredDoc& d : idx->docs) {
      if (d.deleted) continue;
      Json line =
          Json::object().add("_index", idx->name).add("_id", d.id).add("_version", d.version).add("_seq_no", d.seq_no);
      if (options_.keep_sources) line.add("_source", Json::raw(d.source));
      line.dump(&r.body);
      r.body.push_back('\n');
    }
  }
  return r;
}

HttpReply Cluster::stats_reply() {
  std::lock_guard lock(mu_);
  int64_t docs = 0;
  for (const auto& [name, idx] : indices_) docs += idx.live;
  auto by_code = [](const std::map<int, int64_t>& m) {
    Json out = Json::object();
    for (const auto& [code, n] : m) out.add(std::to_string(code), n);
    return out;
  };
  Json actions = Json::object();
  for (const auto& [name, n] : stats_.actions) actions.add(name, n);
  return json_reply(200, Json::object()
                             .add("requests", stats_.requests)
                             .add("bulk_requests", stats_.bulk_requests)
                             .add("items", stats_.items)
                             .add("docs", docs)
                             .add("indices", static_cast<int64_t>(indices_.size()))
                             .add("bytes_received", stats_.bytes_received)
                             .add("gzip_requests", stats_.gzip_requests)
                             .add("auth_failures", stats_.auth_failures)
                             .add("injected_request_failures", stats_.injected_request_failures)
                             .add("injected_item_rejections", stats_.injected_item_rejections)
                             .add("closed_connections", stats_.closed_connections)
                             .add("idle_closed_connections", stats_.idle_closed_connections)
                             .add("delayed_requests", stats_.delayed_requests)
                             .add("connections_opened", connections_opened_.load())
                             .add("connections_open", connections_open_.load())
                             .add("http_status", by_code(stats_.http_status))
                             .add("item_status", by_code(stats_.item_status))
                             .add("actions", std::move(actions)));
}

HttpReply Cluster::control(HttpCall& call, const std::string& path, const Params& params) {
  const std::string& m = call.method;
  if (path == "/_test/docs") {
    if (m == "GET") return dump_docs(params);
    if (m == "DELETE") {
      const std::string* expr = param(params, "index");
      std::lock_guard lock(mu_);
      std::string missing;
      int64_t removed = 0;
      std::vector<std::string> names;
      for (const IndexData* idx : resolve(expr ? std::string_view(*expr) : "_all", &missing)) {
        names.push_back(idx->name);
      }
      for (const auto& name : names) removed += static_cast<int64_t>(indices_.erase(name));
      return json_reply(200, Json::object().add("acknowledged", true).add("deleted_indices", removed));
    }
  } else if (path == "/_test/stats") {
    if (m == "GET") return stats_reply();
    if (m == "DELETE") {
      std::lock_guard lock(mu_);
      stats_ = Stats{};
      return json_reply(200, Json::object().add("acknowledged", true));
    }
  } else if (path == "/_test/faults") {
    if (m == "GET") {
      std::lock_guard lock(mu_);
      return json_reply(200, faults_.to_json());
    }
    if (m == "DELETE") {
      std::lock_guard lock(mu_);
      faults_ = Faults{};
      return json_reply(200, faults_.to_json());
    }
    if (m == "POST" || m == "PUT") {
      int64_t down_ms = 0;
      std::string error;
      if (!patch_faults(call.body, &down_ms, &error)) {
        return error_reply(400, error_cause("illegal_argument_exception", error));
      }
      std::lock_guard lock(mu_);
      HttpReply r = json_reply(200, faults_.to_json());
      r.down_ms = down_ms;
      return r;
    }
  } else {
    return plain_error(404, "unknown test endpoint [" + path + "]; see tests/support/es_bulk_server/README.md");
  }
  return plain_error(405, "Incorrect HTTP method for uri [" + path + "] and method [" + m + "]");
}

}  // namespace es_test
