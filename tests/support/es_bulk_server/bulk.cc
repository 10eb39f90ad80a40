// The `_bulk` endpoint of the Elasticsearch test server.
//
// Request body grammar (Elasticsearch's documented NDJSON):
//   body   = { line } ; the last byte must be "\n"
//   line   = action "\n" [ source "\n" ]   ; delete has no source line
//   action = {"index"|"create"|"update"|"delete": { metadata }}
//   a line may end in "\r\n"; blank lines are skipped (as Elasticsearch does)
//
// Processing, in Elasticsearch's order:
//   1. whole-request checks: parameters, Content-Type (406), decoding, line
//      syntax and metadata (400 illegal_argument_exception /
//      x_content_parse_exception), request validation (400
//      action_request_validation_exception);
//   2. per item, before the shard: index name, data stream op type,
//      require_alias / require_data_stream, ingest pipeline;
//   3. per item, on the shard: injected 429 rejections, then document
//      parsing (mapping, @timestamp), then the write itself (409 conflicts).

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <random>

#include "tests/support/es_bulk_server/cluster.h"
#include "tests/support/es_bulk_server/codec.h"
#include "tests/support/es_bulk_server/mapping.h"

namespace es_test {

enum class BulkOp { kIndex, kCreate, kUpdate, kDelete };

struct Cluster::BulkItem {
  BulkOp op = BulkOp::kIndex;
  int line = 0;  // of the action
  std::string index;
  std::string id;
  bool has_id = false;
  std::string_view source;  // index/create: the document line
  std::optional<int64_t> if_seq_no;
  std::optional<int64_t> if_primary_term;
  std::optional<int64_t> version;
  std::string version_type = "internal";
  std::string pipeline;
  bool require_alias = false;
  bool require_data_stream = false;
  // update
  std::string doc;
  std::string upsert;
  bool has_doc = false;
  bool has_upsert = false;
  bool has_script = false;
  bool doc_as_upsert = false;
  bool detect_noop = true;
  // Outcome of the checks made outside the lock.
  bool data_stream = false;
  std::optional<Json> pre_error;  // before the shard
  int pre_status = 0;
  std::optional<Json> doc_error;  // document parsing (400)

  std::string_view action_name() const {
    switch (op) {
      case BulkOp::kIndex:
        return "index";
      case BulkOp::kCreate:
        return "create";
      case BulkOp::kUpdate:
        return "update";
      case BulkOp::kDelete:
        return "delete";
    }
    return "index";
  }
};

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

const std::string* find_param(const std::vector<std::pair<std::string, std::string>>& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool flag_param(const std::vector<std::pair<std::string, std::string>>& params, std::string_view key) {
  const std::string* v = find_param(params, key);
  return v && (v->empty() || *v == "true");
}

std::string_view token_name(element v) {
  switch (v.type()) {
    case element_type::OBJECT:
      return "START_OBJECT";
    case element_type::ARRAY:
      return "START_ARRAY";
    case element_type::STRING:
      return "VALUE_STRING";
    case element_type::INT64:
    case element_type::UINT64:
      return "VALUE_NUMBER_INT";
    case element_type::DOUBLE:
      return "VALUE_NUMBER_FLOAT";
    case element_type::BOOL:
      return v.get_bool().value_unsafe() ? "VALUE_TRUE" : "VALUE_FALSE";
    case element_type::NULL_VALUE:
      return "VALUE_NULL";
  }
  return "VALUE";
}

// The text of a scalar metadata value (Elasticsearch takes numbers as text).
std::string scalar_text(element v) {
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  return simdjson::minify(v);
}

std::string lower_trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t");
  std::string out(s.substr(b, e - b + 1));
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// application/json, application/x-ndjson and their compatible-with=7|8
// vendor forms, optionally with charset=UTF-8.
bool acceptable_content_type(std::string_view header) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t semi = header.find(';', pos);
    if (semi == std::string_view::npos) semi = header.size();
    parts.push_back(lower_trim(header.substr(pos, semi - pos)));
    pos = semi + 1;
  }
  const std::string& media = parts[0];
  const bool plain = media == "application/json" || media == "application/x-ndjson";
  const bool vendor =
      media == "application/vnd.elasticsearch+json" || media == "application/vnd.elasticsearch+x-ndjson";
  if (!plain && !vendor) return false;
  bool compatible = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    if (eq == std::string::npos) return false;
    const std::string key = parts[i].substr(0, eq);
    std::string value = parts[i].substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (key == "charset" && value != "utf-8") return false;
    if (key == "compatible-with") {
      if (value != "7" && value != "8") return false;
      compatible = true;
    }
  }
  return plain || compatible;
}

// Why Elasticsearch would refuse `name` as an index name, or "".
std::string invalid_index_reason(std::string_view name) {
  if (name.find_first_of("\\/*?\"<>| ,") != std::string_view::npos) {
    return "must not contain the following characters [' ','\"','*',',','/','<','>','?','\\','|']";
  }
  if (name.find('#') != std::string_view::npos) return "must not contain '#'";
  if (name.find(':') != std::string_view::npos) return "must not contain ':'";
  if (name[0] == '_' || name[0] == '-' || name[0] == '+') return "must not start with '_', '-', or '+'";
  if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return "must be lowercase";
  if (name == "." || name == "..") return "must not be '.' or '..'";
  if (name.size() > 255) return "index name is too long, (" + std::to_string(name.size()) + " > 255)";
  return {};
}

std::string utc_date_dotted() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y.%m.%d", &tm);
  return buf;
}

Json shards(int total, int successful) {
  return Json::object().add("total", total).add("successful", successful).add("failed", 0);
}

Json item_error(std::string_view index, const std::optional<std::string>& id, int status, Json cause) {
  Json body = Json::object().add("_index", index);
  body.add("_id", id ? Json(*id) : Json(nullptr));
  return body.add("status", status).add("error", std::move(cause));
}

HttpReply injected_failure(int status) {
  if (status == 429) {
    return error_reply(429, error_cause("es_rejected_execution_exception",
                                        "rejected execution of coordinating operation [coordinating_and_primary_"
                                        "bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, "
                                        "max_coordinating_and_primary_bytes=0] (injected by es_bulk_server)"));
  }
  if (status == 503) {
    return error_reply(503, error_cause("cluster_block_exception",
                                        "blocked by: [SERVICE_UNAVAILABLE/2/no master]; (injected by es_bulk_server)"));
  }
  if (status < 400) {  // a redirect, as a proxy in front of the cluster sends it: not Elasticsearch's shape
    HttpReply reply;
    reply.status = status;
    reply.content_type = "text/html";
    reply.body = "<html><body>" + std::to_string(status) + " (injected by es_bulk_server)</body></html>\n";
    reply.headers.emplace_back("Location", "https://es.invalid:9243/_bulk");
    return reply;
  }
  return error_reply(status, error_cause("es_bulk_server_injected_exception",
                                         "injected failure with status [" + std::to_string(status) + "]"));
}

void merge_into(element old_value, element patch, std::string* out) {
  simdjson::dom::object old_obj, patch_obj;
  if (old_value.get_object().get(old_obj) != simdjson::SUCCESS ||
      patch.get_object().get(patch_obj) != simdjson::SUCCESS) {
    out->append(simdjson::minify(patch));
    return;
  }
  out->push_back('{');
  bool first = true;
  auto key = [&](std::string_view k) {
    if (!first) out->push_back(',');
    first = false;
    append_json_string(out, k);
    out->push_back(':');
  };
  for (auto kv : old_obj) {
    key(kv.key);
    element replacement;
    if (patch_obj.at_key(kv.key).get(replacement) == simdjson::SUCCESS) {
      merge_into(kv.value, replacement, out);
    } else {
      out->append(simdjson::minify(kv.value));
    }
  }
  for (auto kv : patch_obj) {
    element existing;
    if (old_obj.at_key(kv.key).get(existing) == simdjson::SUCCESS) continue;
    key(kv.key);
    out->append(simdjson::minify(kv.value));
  }
  out->push_back('}');
}

}  // namespace

HttpReply Cluster::bulk(HttpCall& call, std::string_view default_index, const Params& params) {
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    ++stats_.bulk_requests;
  }
  static constexpr std::string_view kAllowed[] = {"pipeline",
                                                  "refresh",
                                                  "routing",
                                                  "timeout",
                                                  "wait_for_active_shards",
                                                  "_source",
                                                  "_source_excludes",
                                                  "_source_includes",
                                                  "require_alias",
                                                  "require_data_stream",
                                                  "list_executed_pipelines",
                                                  "filter_path",
                                                  "pretty",
                                                  "human",
                                                  "error_trace"};
  const std::string_view path = std::string_view(call.target).substr(0, call.target.find('?'));
  for (const auto& [k, v] : params) {
    if (std::find(std::begin(kAllowed), std::end(kAllowed), k) == std::end(kAllowed)) {
      return error_reply(
          400, error_cause("illegal_argument_exception",
                           "request [" + std::string(path) + "] contains unrecognized parameter: [" + k + "]"));
    }
    if (k == "refresh" && !v.empty() && v != "true" && v != "false" && v != "wait_for") {
      return error_reply(400, error_cause("illegal_argument_exception", "Unknown value for refresh: [" + v + "]."));
    }
  }
  if (call.body.empty()) {
    return error_reply(400, error_cause("parse_exception", "request body or source parameter is required"));
  }
  if (!acceptable_content_type(call.content_type)) {
    HttpReply r;
    r.status = 406;
    r.body = Json::object()
                 .add("error", "Content-Type header [" + call.content_type + "] is not supported")
                 .add("status", 406)
                 .dump();
    return r;
  }

  std::string decoded;
  std::string_view body;
  const std::string encoding = lower_trim(call.content_encoding);
  if (encoding.empty() || encoding == "identity") {
    call.body.reserve(call.body.size() + simdjson::SIMDJSON_PADDING);
    body = call.body;
  } else if (encoding == "gzip" || encoding == "x-gzip" || encoding == "deflate") {
    std::string error;
    switch (inflate_body(call.body, encoding != "deflate", options_.max_content_length, simdjson::SIMDJSON_PADDING,
                         &decoded, &error)) {
      case InflateResult::kOk:
        break;
      case InflateResult::kTooLarge: {
        HttpReply r;
        r.status = 413;
        r.body.clear();
        return r;
      }
      case InflateResult::kCorrupt:
        return error_reply(400, error_cause("illegal_argument_exception",
                                            "failed to decompress the " + encoding + " request body: " + error));
    }
    if (encoding != "deflate") {
      std::lock_guard lock(mu_);
      ++stats_.gzip_requests;
    }
    body = decoded;
  } else {
    return error_reply(400,
                       error_cause("illegal_argument_exception", "es_bulk_server does not support Content-Encoding [" +
                                                                     call.content_encoding + "]; use gzip or deflate"));
  }

  std::shared_ptr<const Mapping> mapping;
  {
    std::lock_guard lock(mu_);
    int status = 0;
    if (faults_.take_request_failure(&status)) {
      ++stats_.injected_request_failures;
      return injected_failure(status);
    }
    mapping = faults_.mapping;
  }

  std::vector<BulkItem> items;
  if (auto rejected = parse_bulk(body, default_index, params, &items)) return std::move(*rejected);
  check_items(&items, *mapping);

  Json results = Json::array();
  bool errors = false;
  {
    std::lock_guard lock(mu_);
    for (BulkItem& item : items) {
      int status = 0;
      results.push(execute(item, *mapping, &status));
      if (status >= 300 && !(item.op == BulkOp::kDelete && status == 404)) errors = true;
      ++stats_.items;
      ++stats_.item_status[status];
      ++stats_.actions[std::string(item.action_name())];
    }
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  Json response =
      Json::object().add("took", static_cast<int64_t>(took)).add("errors", errors).add("items", std::move(results));
  HttpReply reply;
  if (const std::string* filter = find_param(params, "filter_path")) {
    std::string error;
    Json filtered = apply_filter_path(response, *filter, &error);
    if (!error.empty()) return error_reply(400, error_cause("illegal_argument_exception", error));
    reply.body = filtered.dump();
  } else {
    reply.body = response.dump();
  }
  return reply;
}

std::optional<HttpReply> Cluster::parse_bulk(std::string_view body, std::string_view default_index,
                                             const Params& params, std::vector<BulkItem>* items) {
  auto illegal = [](std::string reason) {
    return error_reply(400, error_cause("illegal_argument_exception", std::move(reason)));
  };
  auto parse_error = [](int line, std::string reason) {
    std::string text = std::string("[").append(std::to_string(line)).append(":1] ").append(reason);
    return error_reply(400, error_cause("x_content_parse_exception", std::move(text)));
  };
  if (body.back() != '\n') return illegal("The bulk request must be terminated by a newline [\\n]");

  const std::string* default_pipeline = find_param(params, "pipeline");
  const bool default_require_alias = flag_param(params, "require_alias");
  const bool default_require_data_stream = flag_param(params, "require_data_stream");
  simdjson::dom::parser& parser = thread_parser();

  size_t pos = 0;
  int line = 0;
  // Lines are views into `body`, whose buffer has simdjson's padding after it.
  auto next_line = [&](std::string_view* out) {
    if (pos >= body.size()) return false;
    const size_t nl = body.find('\n', pos);
    *out = body.substr(pos, nl - pos);
    if (!out->empty() && out->back() == '\r') out->remove_suffix(1);
    pos = nl + 1;
    ++line;
    return true;
  };

  std::string_view raw;
  while (next_line(&raw)) {
    if (raw.find_first_not_of(" \t") == std::string_view::npos) continue;
    const int n = line;
    const std::string where = "Malformed action/metadata line [" + std::to_string(n) + "], ";
    element root;
    if (auto ec = parser.parse(raw.data(), raw.size(), false).get(root); ec != simdjson::SUCCESS) {
      return parse_error(n, simdjson::error_message(ec));
    }
    simdjson::dom::object line_obj;
    if (root.get_object().get(line_obj) != simdjson::SUCCESS) {
      return illegal(where + "expected START_OBJECT but found [" + std::string(token_name(root)) + "]");
    }
    if (line_obj.size() == 0) return illegal(where + "expected FIELD_NAME but found [END_OBJECT]");
    if (line_obj.size() > 1) return illegal(where + "expected END_OBJECT but found [FIELD_NAME]");
    const auto action = *line_obj.begin();
    BulkItem item;
    item.line = n;
    if (action.key == "index") {
      item.op = BulkOp::kIndex;
    } else if (action.key == "create") {
      item.op = BulkOp::kCreate;
    } else if (action.key == "update") {
      item.op = BulkOp::kUpdate;
    } else if (action.key == "delete") {
      item.op = BulkOp::kDelete;
    } else {
      return illegal(where + "expected field [create], [delete], [index] or [update] but found [" +
                     std::string(action.key) + "]");
    }
    simdjson::dom::object meta;
    if (action.value.get_object().get(meta) != simdjson::SUCCESS) {
      return illegal(where + "expected START_OBJECT or END_OBJECT but found [" + std::string(token_name(action.value)) +
                     "]");
    }
    item.index = std::string(default_index);
    if (default_pipeline) item.pipeline = *default_pipeline;
    item.require_alias = default_require_alias;
    item.require_data_stream = default_require_data_stream;
    for (auto kv : meta) {
      const std::string_view key = kv.key;
      const element v = kv.value;
      const element_type t = v.type();
      if (t == element_type::NULL_VALUE) continue;
      const bool object_allowed = key == "_source" || key == "dynamic_templates";
      if (t == element_type::ARRAY || (t == element_type::OBJECT && !object_allowed)) {
        return illegal(where + "expected a simple value for field [" + std::string(key) + "] but found [" +
                       std::string(token_name(v)) + "]");
      }
      auto as_long = [&](std::optional<int64_t>* out) {
        int64_t x;
        if (v.get_int64().get(x) != simdjson::SUCCESS) {
          std::string text = scalar_text(v);
          char* end = nullptr;
          x = std::strtoll(text.c_str(), &end, 10);
          if (text.empty() || *end != '\0') return false;
        }
        *out = x;
        return true;
      };
      if (key == "_index") {
        item.index = scalar_text(v);
      } else if (key == "_id") {
        item.id = scalar_text(v);
        item.has_id = true;
      } else if (key == "op_type") {
        const std::string op = scalar_text(v);
        if (op == "create") {
          if (item.op == BulkOp::kIndex) item.op = BulkOp::kCreate;
        } else if (op != "index") {
          return illegal("opType must be 'create' or 'index', found: [" + op + "]");
        }
      } else if (key == "version") {
        if (!as_long(&item.version)) return illegal(where + "[version] must be a number");
      } else if (key == "version_type") {
        item.version_type = scalar_text(v);
        if (item.version_type != "internal" && item.version_type != "external" && item.version_type != "external_gte") {
          return illegal("No version type match [" + item.version_type + "]");
        }
      } else if (key == "if_seq_no") {
        if (!as_long(&item.if_seq_no)) return illegal(where + "[if_seq_no] must be a number");
      } else if (key == "if_primary_term") {
        if (!as_long(&item.if_primary_term)) return illegal(where + "[if_primary_term] must be a number");
      } else if (key == "pipeline") {
        item.pipeline = scalar_text(v);
      } else if (key == "require_alias") {
        item.require_alias = scalar_text(v) == "true";
      } else if (key == "require_data_stream") {
        item.require_data_stream = scalar_text(v) == "true";
      } else if (key == "routing" || key == "retry_on_conflict" || key == "_source" || key == "dynamic_templates" ||
                 key == "list_executed_pipelines") {
        // accepted; no effect on a one-shard store
      } else {
        return illegal("Action/metadata line [" + std::to_string(n) + "] contains an unknown parameter [" +
                       std::string(key) + "]");
      }
    }
    if (item.op != BulkOp::kDelete) {
      std::string_view source;
      if (!next_line(&source)) {
        // Elasticsearch silently drops a final action without a source line;
        // a shipper that sends one has a bug, so say so.
        return illegal(where + "[" + std::string(item.action_name()) +
                       "] has no source line (es_bulk_server rejects what Elasticsearch would silently drop)");
      }
      item.source = source;
      if (item.op == BulkOp::kUpdate && !source.empty()) {
        element upd;
        if (auto ec = parser.parse(source.data(), source.size(), false).get(upd); ec != simdjson::SUCCESS) {
          return parse_error(line, simdjson::error_message(ec));
        }
        simdjson::dom::object upd_obj;
        if (upd.get_object().get(upd_obj) != simdjson::SUCCESS) {
          return parse_error(line, "[UpdateRequest] Expected START_OBJECT but was: " + std::string(token_name(upd)));
        }
        for (auto kv : upd_obj) {
          bool b = false;
          if (kv.key == "doc" || kv.key == "upsert") {
            if (kv.value.type() != element_type::OBJECT) {
              return parse_error(line, "[UpdateRequest] failed to parse field [" + std::string(kv.key) + "]");
            }
            (kv.key == "doc" ? item.doc : item.upsert) = simdjson::minify(kv.value);
            (kv.key == "doc" ? item.has_doc : item.has_upsert) = true;
          } else if (kv.key == "doc_as_upsert" || kv.key == "detect_noop" || kv.key == "scripted_upsert") {
            if (kv.value.get_bool().get(b) != simdjson::SUCCESS) {
              return parse_error(line, "[UpdateRequest] failed to parse field [" + std::string(kv.key) + "]");
            }
            if (kv.key == "doc_as_upsert") item.doc_as_upsert = b;
            if (kv.key == "detect_noop") item.detect_noop = b;
          } else if (kv.key == "script") {
            item.has_script = true;
          } else if (kv.key != "_source") {
            return parse_error(line, "[UpdateRequest] unknown field [" + std::string(kv.key) + "]");
          }
        }
      }
    }
    items->push_back(std::move(item));
  }

  std::vector<std::string> problems;
  for (const BulkItem& item : *items) {
    if (item.index.empty()) problems.push_back("index is missing");
    if ((item.op == BulkOp::kIndex || item.op == BulkOp::kCreate) && item.source.empty()) {
      problems.push_back("source is missing");
    }
    if (item.has_id && item.id.empty()) problems.push_back("if _id is specified it must not be empty");
    if (item.id.size() > 512) {
      problems.push_back("id [" + item.id +
                         "] is too long, must be no longer than 512 bytes but was: " + std::to_string(item.id.size()));
    }
    if ((item.op == BulkOp::kUpdate || item.op == BulkOp::kDelete) && !item.has_id) problems.push_back("id is missing");
    if (item.op == BulkOp::kUpdate && !item.has_doc && !item.has_script) problems.push_back("script or doc is missing");
    if (item.op == BulkOp::kCreate && item.version_type != "internal") {
      problems.push_back("create operations only support internal versioning. use index instead");
    }
    if (item.version_type != "internal" && !item.version) {
      problems.push_back("an external version type requires a version");
    }
    if (item.version_type == "internal" && item.version && item.op != BulkOp::kDelete) {
      problems.push_back(
          "internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and "
          "`if_primary_term` instead");
    }
  }
  if (items->empty()) problems.push_back("no requests added");
  if (!problems.empty()) {
    std::string reason = "Validation Failed: ";
    for (size_t i = 0; i < problems.size(); ++i) reason += std::to_string(i + 1) + ": " + problems[i] + ";";
    return error_reply(400, error_cause("action_request_validation_exception", std::move(reason)));
  }
  return std::nullopt;
}

void Cluster::check_items(std::vector<BulkItem>* items, const Mapping& mapping) {
  simdjson::dom::parser& parser = thread_parser();
  std::map<std::string, std::string, std::less<>> invalid_names;  // name -> reason ("" = valid)
  for (BulkItem& item : *items) {
    auto cached = invalid_names.find(item.index);
    if (cached == invalid_names.end()) {
      cached = invalid_names.emplace(item.index, invalid_index_reason(item.index)).first;
    }
    item.data_stream = is_data_stream(item.index);
    auto pre = [&](int status, Json cause) {
      item.pre_status = status;
      item.pre_error = std::move(cause);
    };
    if (!cached->second.empty()) {
      pre(400, error_cause("invalid_index_name_exception", "Invalid index name [" + item.index + "], " + cached->second)
                   .add("index_uuid", "_na_")
                   .add("index", item.index));
    } else if (item.data_stream && item.op != BulkOp::kCreate) {
      pre(400, error_cause("illegal_argument_exception",
                           "only write ops with an op_type of create are allowed in data streams"));
    } else if (item.require_alias) {
      pre(404, error_cause("index_not_found_exception", "no such index [" + item.index +
                                                            "] and [require_alias] request flag is [true] and [" +
                                                            item.index + "] is not an alias")
                   .add("index", item.index));
    } else if (item.require_data_stream && !item.data_stream) {
      pre(404, error_cause("index_not_found_exception", "no such index [" + item.index +
                                                            "] and [require_data_stream] request flag is [true] "
                                                            "and [" +
                                                            item.index + "] is not a data stream")
                   .add("index", item.index));
    } else if (!item.pipeline.empty() && item.pipeline != "_none" && item.op != BulkOp::kDelete) {
      pre(400, error_cause("illegal_argument_exception", "pipeline with id [" + item.pipeline + "] does not exist"));
    } else if (item.has_script) {
      pre(400, error_cause("illegal_argument_exception", "es_bulk_server does not run update scripts"));
    }
    if (item.pre_error || (item.op != BulkOp::kIndex && item.op != BulkOp::kCreate)) continue;
    if (!item.has_id) {
      item.id = new_id();
      item.has_id = true;
    }
    element doc;
    if (auto ec = parser.parse(item.source.data(), item.source.size(), false).get(doc); ec != simdjson::SUCCESS) {
      item.doc_error = error_cause("mapper_parsing_exception", "failed to parse")
                           .add("caused_by", error_cause("x_content_parse_exception",
                                                         "[1:1] " + std::string(simdjson::error_message(ec))));
    } else {
      item.doc_error = check_document(doc, mapping, item.data_stream, item.id);
    }
  }
}

Cluster::IndexData& Cluster::index_for(const BulkItem& item) {
  auto it = indices_.find(item.index);
  if (it != indices_.end()) return it->second;
  IndexData& idx = indices_[item.index];
  idx.name = item.index;
  idx.data_stream = item.data_stream;
  idx.backing = item.data_stream ? ".ds-" + item.index + "-" + utc_date_dotted() + "-000001" : item.index;
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::mt19937 rng(std::random_device{}());
  idx.uuid.resize(22);
  for (char& c : idx.uuid) c = kChars[rng() % 64];
  return idx;
}

std::string Cluster::new_id() {
  // 15 bytes -> 20 base64url characters, like Elasticsearch's auto ids:
  // 6 bytes of start time, 3 random bytes, 6 bytes of a counter.
  static const uint64_t start_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  static const uint32_t salt = std::random_device{}();
  const uint64_t n = id_counter_.fetch_add(1);
  std::string raw(15, '\0');
  for (int i = 0; i < 6; ++i) raw[i] = static_cast<char>(start_ms >> (8 * (5 - i)));
  for (int i = 0; i < 3; ++i) raw[6 + i] = static_cast<char>(salt >> (8 * (2 - i)));
  for (int i = 0; i < 6; ++i) raw[9 + i] = static_cast<char>(n >> (8 * (5 - i)));
  std::string id = base64_encode(raw);
  std::replace(id.begin(), id.end(), '+', '-');
  std::replace(id.begin(), id.end(), '/', '_');
  return id;
}

std::string Cluster::merge_sources(std::string_view old_source, std::string_view patch) {
  element old_root, patch_root;
  if (merge_old_parser_.parse(old_source.data(), old_source.size(), true).get(old_root) != simdjson::SUCCESS ||
      merge_new_parser_.parse(patch.data(), patch.size(), true).get(patch_root) != simdjson::SUCCESS) {
    return std::string(patch);
  }
  std::string out;
  merge_into(old_root, patch_root, &out);
  return out;
}

Json Cluster::execute(BulkItem& item, const Mapping& mapping, int* status) {
  const std::string_view action = item.action_name();
  auto wrap = [&](Json body) { return Json::object().add(std::string(action), std::move(body)); };
  const std::optional<std::string> given_id = item.has_id ? std::optional<std::string>(item.id) : std::nullopt;
  if (item.pre_error) {
    *status = item.pre_status;
    return wrap(item_error(item.index, given_id, *status, std::move(*item.pre_error)));
  }
  IndexData& idx = index_for(item);
  const std::string& shown = idx.data_stream ? idx.backing : idx.name;
  auto with_shard = [&](Json cause) { return cause.add("index_uuid", idx.uuid).add("shard", "0").add("index", shown); };
  auto fail = [&](int code, Json cause) {
    *status = code;
    return wrap(item_error(shown, given_id, code, std::move(cause)));
  };
  auto done = [&](const StoredDoc& d, std::string_view result, int code) {
    *status = code;
    const bool noop = result == "noop";
    return wrap(Json::object()
                    .add("_index", shown)
                    .add("_id", d.id)
                    .add("_version", d.version)
                    .add("result", result)
                    .add("_shards", noop ? shards(0, 0) : shards(idx.data_stream ? 1 : 2, 1))
                    .add("_seq_no", d.seq_no)
                    .add("_primary_term", 1)
                    .add("status", code));
  };

  if (faults_.take_item_rejection()) {
    ++stats_.injected_item_rejections;
    return fail(429, error_cause("es_rejected_execution_exception",
                                 "rejected execution of primary operation [coordinating_and_primary_bytes=0, "
                                 "replica_bytes=0, all_bytes=0, primary_operation_bytes=" +
                                     std::to_string(item.source.size()) +
                                     ", max_coordinating_and_primary_bytes=0] (injected by es_bulk_server)"));
  }
  if (item.doc_error) return fail(400, std::move(*item.doc_error));

  auto it = idx.by_id.find(item.id);
  StoredDoc* existing = it == idx.by_id.end() ? nullptr : &idx.docs[it->second];
  const bool exists = existing && !existing->deleted;
  auto write = [&](std::string source, std::optional<int64_t> version) -> StoredDoc& {
    StoredDoc* d = existing;
    if (!d) {
      idx.by_id.emplace(item.id, idx.docs.size());
      d = &idx.docs.emplace_back();
      d->id = item.id;
    }
    if (!exists) ++idx.live;
    d->version = version ? *version : d->version + 1;
    d->seq_no = idx.next_seq_no++;
    d->source = options_.keep_sources ? std::move(source) : std::string();
    d->deleted = false;
    return *d;
  };

  if (item.if_seq_no || item.if_primary_term) {
    const int64_t want_seq = item.if_seq_no.value_or(-2);
    const int64_t want_term = item.if_primary_term.value_or(0);
    if (!exists || existing->seq_no != want_seq || want_term != 1) {
      std::string reason = "[" + item.id + "]: version conflict, required seqNo [" + std::to_string(want_seq) +
                           "], primary term [" + std::to_string(want_term) + "]. ";
      reason += exists ? "current document has seqNo [" + std::to_string(existing->seq_no) + "] and primary term [1]"
                       : "but no document was found";
      return fail(409, with_shard(error_cause("version_conflict_engine_exception", reason)));
    }
  }

  switch (item.op) {
    case BulkOp::kCreate:
      if (exists) {
        return fail(409, with_shard(error_cause("version_conflict_engine_exception",
                                                "[" + item.id +
                                                    "]: version conflict, document already exists "
                                                    "(current version [" +
                                                    std::to_string(existing->version) + "])")));
      }
      return done(write(std::string(item.source), std::nullopt), "created", 201);
    case BulkOp::kIndex: {
      std::optional<int64_t> version;
      if (item.version_type != "internal") {
        const int64_t current = exists ? existing->version : -1;
        const bool gte = item.version_type == "external_gte";
        if (exists && (gte ? current > *item.version : current >= *item.version)) {
          return fail(409, with_shard(error_cause("version_conflict_engine_exception",
                                                  "[" + item.id + "]: version conflict, current version [" +
                                                      std::to_string(current) +
                                                      (gte ? "] is higher than" : "] is higher or equal to") +
                                                      " the one provided [" + std::to_string(*item.version) + "]")));
        }
        version = *item.version;
      }
      const bool created = !exists;
      return done(write(std::string(item.source), version), created ? "created" : "updated", created ? 201 : 200);
    }
    case BulkOp::kDelete: {
      if (!exists) {
        StoredDoc ghost;
        ghost.id = item.id;
        ghost.version = existing ? existing->version + 1 : 1;
        ghost.seq_no = idx.next_seq_no++;
        if (existing) existing->version = ghost.version;
        return done(ghost, "not_found", 404);
      }
      existing->deleted = true;
      existing->version += 1;
      existing->seq_no = idx.next_seq_no++;
      existing->source.clear();
      --idx.live;
      return done(*existing, "deleted", 200);
    }
    case BulkOp::kUpdate: {
      std::string merged;
      std::string_view result;
      int code;
      if (!exists) {
        if (!item.doc_as_upsert && !item.has_upsert) {
          return fail(404,
                      with_shard(error_cause("document_missing_exception", "[" + item.id + "]: document missing")));
        }
        merged = item.doc_as_upsert ? item.doc : item.upsert;
        result = "created";
        code = 201;
      } else {
        merged = merge_sources(existing->source.empty() ? "{}" : existing->source, item.doc);
        if (item.detect_noop && merged == existing->source) return done(*existing, "noop", 200);
        result = "updated";
        code = 200;
      }
      element doc;
      if (merge_old_parser_.parse(merged).get(doc) == simdjson::SUCCESS) {
        if (auto problem = check_document(doc, mapping, false, item.id)) return fail(400, std::move(*problem));
      }
      return done(write(std::move(merged), std::nullopt), result, code);
    }
  }
  *status = 500;
  return wrap(Json::object());
}

}  // namespace es_test
