#include "sinks/elasticsearch_config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "agent/env.h"
#include "agent/template.h"
#include "sinks/es_http_client.h"

namespace tributary::es {

namespace {

// A strftime conversion that writes what an Elasticsearch name cannot
// have: an example of its text, the problem, and the fix.
struct BadConversion {
  std::string_view conversion, example, problem, fix;
};
constexpr BadConversion kBadConversions[] = {
    {"a", "Tue", "capitals", "write %u (the weekday as 1-7) instead"},
    {"A", "Tuesday", "capitals", "write %u (the weekday as 1-7) instead"},
    {"b", "Nov", "capitals", "write %m (the month as 01-12) instead"},
    {"h", "Nov", "capitals", "write %m (the month as 01-12) instead"},
    {"B", "November", "capitals", "write %m (the month as 01-12) instead"},
    {"c", "Tue Nov 24 10:00:00 2026", "capitals", "write %Y.%m.%d instead"},
    {"p", "AM", "capitals", "write %H (the hour as 00-23) instead"},
    {"r", "10:00:00 AM", "capitals", "write %H.%M.%S instead"},
    {"Z", "UTC", "capitals", "leave it out (the time is always UTC)"},
    {"D", "11/24/26", "`/`", "write %m.%d.%y instead"},
    {"x", "11/24/26", "`/`", "write %Y.%m.%d instead"},
    {"R", "10:00", "`:`", "write %H.%M instead"},
    {"T", "10:00:00", "`:`", "write %H.%M.%S instead"},
    {"X", "10:00:00", "`:`", "write %H.%M.%S instead"},
    {"e", " 4", "a space", "write %d (the day as 01-31) instead"},
    {"k", " 9", "a space", "write %H (the hour as 00-23) instead"},
    {"l", " 9", "a space", "write %I (the hour as 01-12) instead"},
    {"n", "a newline", "a newline", "leave it out"},
    {"t", "a tab", "a tab", "leave it out"},
};

// Elasticsearch refuses every document for an index (or data stream) name
// with a capital or one of its forbidden characters: say so now. What
// {{ field }} inserts is not judged; what a strftime conversion writes is
// (`%b` is `Nov`: the agent formats times in the C locale). `what` names
// the kind of name; `first` if `name` starts it (the first character
// matters).
std::string CheckName(const std::string& name, std::string_view what, bool first) {
  std::string problem;
  Template::ForEachConversion(name, [&](std::string_view c, size_t) {
    const std::string_view base = c.size() == 2 ? c.substr(1) : c;  // %Ey writes what %y does
    for (const auto& bad : kBadConversions) {
      if (!problem.empty() || bad.conversion != base) continue;
      const bool literal = bad.example != bad.problem;  // "a newline" is its own example
      problem = "`%" + std::string(c) + "` writes " + std::string(bad.problem) +
                (literal ? " (`" + std::string(bad.example) + "`)" : "") + ", which Elasticsearch " +
                std::string(what) + " may not have (it would reject every document); " +
                std::string(bad.fix);
    }
  });
  if (!problem.empty()) return problem;
  std::string fixed;  // the text written here, without templates and conversions
  for (size_t i = 0; i < name.size(); ++i) {
    if (name.compare(i, 2, "{{") == 0) {
      size_t end = name.find("}}", i);
      if (end == std::string::npos) break;
      i = end + 1;
    } else if (name[i] == '%' && i + 1 < name.size()) {
      ++i;  // a strftime conversion, judged above
      if ((name[i] == 'E' || name[i] == 'O') && i + 1 < name.size()) ++i;
    } else {
      fixed += name[i];
    }
  }
  for (char c : fixed)
    if (std::isupper(static_cast<unsigned char>(c)))
      return "Elasticsearch " + std::string(what) + " are lowercase (it rejects every document for `" + name + "`)";
  if (fixed.find_first_of("\\/*?\"<>| ,#:") != std::string::npos)
    return "Elasticsearch " + std::string(what) + " may not contain \\ / * ? \" < > | , # : or a space";
  if (first && !name.empty() && std::string_view("-_+").find(name.front()) != std::string_view::npos)
    return "Elasticsearch " + std::string(what) + " may not start with -, _ or +";
  return "";
}

}  // namespace

const config::Schema<BulkConfig>& BulkConfig::schema() {
  static const config::Schema<BulkConfig> s = [] {
    config::Schema<BulkConfig> s;
    s.Field("index", &BulkConfig::index,
            "Index to write to (mode `bulk`): strftime conversions (%Y, %m, %d, ...) use the event timestamp (UTC) "
            "and `{{ field }}` inserts a field. Events whose index cannot be rendered are rejected and counted. "
            "Capitals, forbidden characters and conversions that write them (%b, %a, %p, %Z, %T, ...) are errors, "
            "as Elasticsearch rejects such names; so is a `%` that is not a conversion.")
        .Check<std::string>(Template::CheckTarget)
        .Check<std::string>([](const std::string& index) { return CheckName(index, "index names", true); });
    s.Field("action", &BulkConfig::action, "Bulk action: `index` (overwrites a document with the same id) or "
                                           "`create` (never overwrites; a duplicate id counts as already delivered).")
        .Check<std::optional<std::string>>([](const std::optional<std::string>& a) -> std::string {
          if (!a || *a == "index" || *a == "create") return "";
          return "must be one of: index, create";
        })
        .DefaultText("index (create in data_stream mode)");
    return s;
  }();
  return s;
}

const config::Schema<DataStreamConfig>& DataStreamConfig::schema() {
  static const config::Schema<DataStreamConfig> s = [] {
    config::Schema<DataStreamConfig> s;
    s.Field("type", &DataStreamConfig::type, "Data stream type, the first part of `<type>-<dataset>-<namespace>`; "
                                             "templates allowed.")
        .Check<std::string>(Template::CheckTarget)
        .Check<std::string>([](const std::string& t) { return CheckName(t, "data stream names", true); });
    s.Field("dataset", &DataStreamConfig::dataset, "Data stream dataset; templates allowed.")
        .Check<std::string>(Template::CheckTarget)
        .Check<std::string>([](const std::string& d) { return CheckName(d, "data stream names", false); });
    s.Field("namespace", &DataStreamConfig::namespace_, "Data stream namespace; templates allowed.")
        .Check<std::string>(Template::CheckTarget)
        .Check<std::string>([](const std::string& n) { return CheckName(n, "data stream names", false); });
    return s;
  }();
  return s;
}

const config::Schema<AuthConfig>& AuthConfig::schema() {
  static const config::Schema<AuthConfig> s = [] {
    config::Schema<AuthConfig> s;
    s.Field("strategy", &AuthConfig::strategy, "`none`, `basic` (user and password) or `api_key`.")
        .OneOf({"none", "basic", "api_key"});
    s.Field("user", &AuthConfig::user, "User name for `basic`.");
    s.Field("password", &AuthConfig::password, "Password for `basic`; use `${ENV_VAR}`.").Secret();
    s.Field("api_key", &AuthConfig::api_key,
            "Encoded API key for `api_key` (the base64 `encoded` value Elasticsearch returns), sent as "
            "`Authorization: ApiKey <api_key>`; use `${ENV_VAR}`.")
        .Secret();
    return s;
  }();
  return s;
}

const config::Schema<TlsConfig>& TlsConfig::schema() {
  static const config::Schema<TlsConfig> s = [] {
    config::Schema<TlsConfig> s;
    s.Field("ca_file", &TlsConfig::ca_file,
            "PEM file of the CA certificates to trust for `https` endpoints; default: the system's trust store.");
    s.Field("crt_file", &TlsConfig::crt_file,
            "PEM file of the client certificate (chain) presented to endpoints that ask for one (mutual TLS); "
            "needs `key_file`.");
    s.Field("key_file", &TlsConfig::key_file, "PEM file of the client certificate's private key (unencrypted).");
    s.Validate([](const TlsConfig& c, const YAML::Node& node, const config::ParseContext& ctx) {
      if (c.crt_file.has_value() != c.key_file.has_value())
        ctx.Error(node, "`" + ctx.path + "`: `crt_file` and `key_file` go together",
                  c.crt_file ? "add `key_file`: the client certificate's private key"
                             : "add `crt_file`: the client certificate the key belongs to");
    });
    s.Field("verify_certificate", &TlsConfig::verify_certificate,
            "Verify the server's certificate chain. Turning this off allows anyone on the path to read the data.");
    s.Field("verify_hostname", &TlsConfig::verify_hostname,
            "Check that the certificate names the endpoint's host (DNS name or IP address).");
    return s;
  }();
  return s;
}

const config::Schema<EsBatchConfig>& EsBatchConfig::schema() {
  static const config::Schema<EsBatchConfig> s = [] {
    config::Schema<EsBatchConfig> s;
    s.Field("max_events", &EsBatchConfig::max_events, "Most documents per bulk request.").Min(1).Max(1000000);
    s.Field("max_bytes", &EsBatchConfig::max_bytes,
            "A bulk request is sent once its uncompressed body reaches this size.")
        .Min(1024);
    s.Field("timeout_secs", &EsBatchConfig::timeout_secs,
            "A partly filled bulk request is sent this long after its first event.")
        .Min(0.001);
    return s;
  }();
  return s;
}

const config::Schema<RequestConfig>& RequestConfig::schema() {
  static const config::Schema<RequestConfig> s = [] {
    config::Schema<RequestConfig> s;
    s.Field("concurrency", &RequestConfig::concurrency,
            "Bulk requests in flight or waiting to be retried at once (one keep-alive connection each).")
        .Min(1)
        .Max(256);
    s.Field("timeout_secs", &RequestConfig::timeout_secs,
            "Time for one request (connect, send, response); then it is retried.")
        .Min(0.001);
    s.Field("retry_initial_backoff_ms", &RequestConfig::retry_initial_backoff_ms,
            "First wait before a retry; doubles on each further retry of the same request, with jitter.")
        .Min(1);
    s.Field("retry_max_backoff_ms", &RequestConfig::retry_max_backoff_ms, "Longest wait between retries.").Min(1);
    return s;
  }();
  return s;
}

const config::Schema<DeadLetterConfig>& DeadLetterConfig::schema() {
  static const config::Schema<DeadLetterConfig> s = [] {
    config::Schema<DeadLetterConfig> s;
    s.Field("path", &DeadLetterConfig::path,
            "File that rejected documents are appended to, one JSON object per line (action, status, error, "
            "document); none by default. Its directory is created if need be; a file that cannot be written "
            "stops the start (exit 78).");
    return s;
  }();
  return s;
}

const config::Schema<ElasticsearchConfig>& ElasticsearchConfig::schema() {
  static const config::Schema<ElasticsearchConfig> s = [] {
    config::Schema<ElasticsearchConfig> s;
    s.Field("endpoints", &ElasticsearchConfig::endpoints,
            "Elasticsearch URLs (`http://` or `https://`, optional port and path prefix); requests go round-robin "
            "and fail over to the next endpoint when one cannot be reached.")
        .Required()
        .Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
          if (v.empty()) return "needs at least one URL";
          for (const auto& u : v) {
            auto e = ParseEndpoint(u);
            if (!e.ok()) return e.status().message();
          }
          return "";
        });
    s.Field("mode", &ElasticsearchConfig::mode,
            "`bulk`: documents go to `bulk.index`; `data_stream`: documents are created in the data stream "
            "`<type>-<dataset>-<namespace>` with the event `timestamp` as `@timestamp`.")
        .OneOf({"bulk", "data_stream"});
    s.Field("bulk", &ElasticsearchConfig::bulk, "Bulk API settings.");
    s.Field("data_stream", &ElasticsearchConfig::data_stream, "Data stream naming (mode `data_stream`).");
    s.Field("id_field", &ElasticsearchConfig::id_field,
            "Field whose value becomes the document `_id`, which makes retries idempotent (exactly one document "
            "per event). Events without it get an id from Elasticsearch.");
    s.Field("pipeline", &ElasticsearchConfig::pipeline, "Ingest pipeline to run the documents through.");
    s.Field("compression", &ElasticsearchConfig::compression, "Request body compression (gzip: zlib level 1).")
        .OneOf({"none", "gzip"});
    s.Field("auth", &ElasticsearchConfig::auth, "Authentication.");
    s.Field("tls", &ElasticsearchConfig::tls, "TLS settings for `https` endpoints.");
    s.Field("batch", &ElasticsearchConfig::batch, "How events are grouped into bulk requests.");
    s.Field("request", &ElasticsearchConfig::request, "Requests, timeouts and retries.");
    s.Field("dead_letter", &ElasticsearchConfig::dead_letter, "Where rejected documents are kept.");
    s.Validate([](const ElasticsearchConfig& c, const YAML::Node& node, const config::ParseContext& ctx) {
      auto at = [&](const char* a, const char* b) {
        YAML::Node n = node.IsMap() ? node[a] : YAML::Node();
        if (n.IsDefined() && b && n.IsMap() && n[b].IsDefined()) return YAML::Node(n[b]);
        return n.IsDefined() ? n : node;
      };
      if (c.data_stream_mode() && c.bulk.action && *c.bulk.action != "create")
        ctx.Error(at("bulk", "action"), "`" + ctx.Child("bulk.action").path + "` must be `create` in data_stream mode",
                  "data streams only accept `create`; leave `bulk.action` out");
      if (c.auth.strategy == "basic" && (c.auth.user.empty() || c.auth.password.empty()))
        ctx.Error(at("auth", nullptr), "`" + ctx.Child("auth").path + "`: strategy `basic` needs `user` and `password`");
      if (c.auth.strategy == "api_key" && c.auth.api_key.empty())
        ctx.Error(at("auth", nullptr), "`" + ctx.Child("auth").path + "`: strategy `api_key` needs `api_key`");
      if (c.auth.strategy == "none" && (!c.auth.user.empty() || !c.auth.password.empty() || !c.auth.api_key.empty()))
        ctx.Error(at("auth", nullptr), "`" + ctx.Child("auth").path + "` has credentials but `strategy: none`",
                  "set `strategy: basic` or `strategy: api_key`");
      if (c.request.retry_max_backoff_ms.ms < c.request.retry_initial_backoff_ms.ms)
        ctx.Error(at("request", "retry_max_backoff_ms"),
                  "`" + ctx.Child("request.retry_max_backoff_ms").path + "` must be at least `retry_initial_backoff_ms`");
      if (c.id_field && c.id_field->empty())
        ctx.Error(at("id_field", nullptr), "`" + ctx.Child("id_field").path + "` must not be empty");
      // The options of the other mode do nothing.
      const YAML::Node bulk = node.IsMap() ? node["bulk"] : YAML::Node();
      const bool has_bulk_index = bulk.IsDefined() && bulk.IsMap() && bulk["index"].IsDefined();
      if (c.data_stream_mode() && has_bulk_index)
        ctx.Warning(at("bulk", "index"), "`" + ctx.Child("bulk.index").path + "` does nothing in data_stream mode",
                    "documents go to the data stream `<data_stream.type>-<data_stream.dataset>-<data_stream.namespace>`");
      if (!c.data_stream_mode() && node.IsMap() && YAML::Node(node["data_stream"]).IsDefined())
        ctx.Warning(at("data_stream", nullptr), "`" + ctx.Child("data_stream").path + "` does nothing in bulk mode",
                    "set `mode: data_stream` to write to a data stream");
      // Elasticsearch (7.9 and later, with its stack templates) makes every
      // name of these patterns a data stream, which takes `create` with an
      // `@timestamp` only: in bulk mode each document would be refused.
      if (!c.data_stream_mode()) {
        for (std::string_view type : {"logs-", "metrics-", "traces-", "synthetics-"}) {
          std::string_view index = c.bulk.index;
          if (index.substr(0, type.size()) != type || index.find('-', type.size()) == std::string_view::npos) continue;
          ctx.Warning(has_bulk_index ? at("bulk", "index") : node,
                      "`" + ctx.Child("bulk.index").path + "` \"" + c.bulk.index + "\" matches Elasticsearch's " +
                          "built-in data stream template `" + std::string(type) + "*-*`: there, every document of " +
                          "mode `bulk` is refused (a data stream takes `create` with an `@timestamp`)",
                      "set `mode: data_stream` with `data_stream: { type: " + std::string(type.substr(0, type.size() - 1)) +
                          ", dataset: ..., namespace: ... }`, or pick another index name");
          break;
        }
      }
    });
    return s;
  }();
  return s;
}

Result<Endpoint> ParseEndpoint(std::string_view url) {
  Endpoint e;
  e.url = std::string(url);
  std::string_view rest = url;
  auto bad = [&](std::string why) {
    return Status::InvalidArgument("endpoint \"" + std::string(url) + "\": " + why);
  };
  if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else if (rest.substr(0, 8) == "https://") {
    e.tls = true;
    rest.remove_prefix(8);
  } else {
    return Status::InvalidArgument("endpoint \"" + std::string(url.substr(0, 64)) +
                                   "\" must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    e.url.clear();  // never echo credentials
    return Status::InvalidArgument("endpoint URLs must not hold credentials; use `auth` with `${ENV_VAR}`");
  }
  if (path.find_first_of("?#") != std::string_view::npos) return bad("query strings are not supported");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.path_prefix = std::string(path);
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("expected `:port` after the IPv6 address");
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return bad("missing host");
  // A space or a control character, which no host name holds ("exa mple"),
  // would be looked up and retried for ever.
  for (char c : host)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("the host name holds a space or a control character");
  if (port.empty()) {
    e.port = e.tls ? "443" : "80";
  } else {
    for (char c : port)
      if (c < '0' || c > '9') return bad("port must be a number");
    int p = std::atoi(std::string(port).c_str());
    if (p <= 0 || p > 65535) return bad("port must be between 1 and 65535");
    e.port = std::string(port);
  }
  e.host = std::string(host);
  bool v6 = e.host.find(':') != std::string::npos;
  e.host_header = (v6 ? "[" + e.host + "]" : e.host) + ":" + e.port;
  return e;
}

void CheckEnvironment(const ElasticsearchConfig& config, std::vector<config::EnvCheck>* out) {
  bool readable = true;
  for (const auto& [name, file] : {std::pair{"tls.ca_file", &config.tls.ca_file}, std::pair{"tls.crt_file", &config.tls.crt_file},
                                   std::pair{"tls.key_file", &config.tls.key_file}}) {
    if (!*file) continue;
    config::EnvCheck c{std::string(name) + " " + **file + " is readable", true, ""};
    if (::access((*file)->c_str(), R_OK) != 0) {
      c.ok = false;
      c.detail = std::strerror(errno);
      readable = false;
    }
    out->push_back(std::move(c));
  }
  // Readable is not usable: load them as the sink will (a file that is no
  // PEM certificate, a directory, a key of another certificate or one with a
  // passphrase failed only `run`, with exit 78).
  if (readable && (config.tls.ca_file || (config.tls.crt_file && config.tls.key_file))) {
    config::EnvCheck c{"the TLS files load (as PEM certificates and an unencrypted key that matches)", true, ""};
    HttpClientOptions probe;
    probe.endpoints.push_back(Endpoint{.tls = true, .host = "localhost", .port = "443", .url = "https://localhost"});
    probe.tls = config.tls;
    probe.tls.verify_certificate = true;  // so that ca_file is loaded
    if (auto client = HttpClient::Create(std::move(probe)); !client.ok()) {
      c.ok = false;
      c.detail = client.status().message();
    }
    out->push_back(std::move(c));
  }
  if (config.dead_letter.path) {
    config::EnvCheck c{"dead_letter.path " + *config.dead_letter.path + " can be written", true, ""};
    if (Status s = ProbeAppendable(*config.dead_letter.path); !s.ok()) {
      c.ok = false;
      c.detail = s.message();
    }
    out->push_back(std::move(c));
  }
}

}  // namespace tributary::es
