#pragma once
// Options of the `elasticsearch` sink (docs/reference/sinks/elasticsearch.md)
// and the parsed form of its endpoints.
//
// The tables below drive parsing, validation and the reference page; the
// cross-option rules (auth strategy needs its credentials, data_stream mode
// only creates) are in ElasticsearchConfig::schema()'s validator. Plain
// values, immutable after parsing, safe to share.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/status.h"
#include "config/registry.h"
#include "config/schema.h"

namespace tributary::es {

struct BulkConfig {
  std::string index = "tributary-%Y.%m.%d";
  std::optional<std::string> action;  // index | create; default index (create in data_stream mode)
  static const config::Schema<BulkConfig>& schema();
};

struct DataStreamConfig {
  std::string type = "logs";
  std::string dataset = "generic";
  std::string namespace_ = "default";
  static const config::Schema<DataStreamConfig>& schema();
};

struct AuthConfig {
  std::string strategy = "none";  // none | basic | api_key
  std::string user;
  std::string password;  // secret
  std::string api_key;   // secret: base64 of "id:key", as Elasticsearch issues it
  static const config::Schema<AuthConfig>& schema();
};

struct TlsConfig {
  std::optional<std::string> ca_file;
  std::optional<std::string> crt_file;  // client certificate (chain), PEM
  std::optional<std::string> key_file;  // its private key, PEM, unencrypted
  bool verify_certificate = true;
  bool verify_hostname = true;
  static const config::Schema<TlsConfig>& schema();
};

struct EsBatchConfig {
  uint64_t max_events = 1000;
  config::ByteSize max_bytes{10 * 1024 * 1024};
  config::Seconds timeout_secs{1.0};
  static const config::Schema<EsBatchConfig>& schema();
};

struct RequestConfig {
  int concurrency = 4;
  config::Seconds timeout_secs{60};
  config::Millis retry_initial_backoff_ms{100};
  config::Millis retry_max_backoff_ms{30000};
  static const config::Schema<RequestConfig>& schema();
};

struct DeadLetterConfig {
  std::optional<std::string> path;
  static const config::Schema<DeadLetterConfig>& schema();
};

struct ElasticsearchConfig {
  std::vector<std::string> endpoints;
  std::string mode = "bulk";  // bulk | data_stream
  BulkConfig bulk;
  DataStreamConfig data_stream;
  std::optional<std::string> id_field;
  std::optional<std::string> pipeline;
  std::string compression = "none";  // none | gzip
  AuthConfig auth;
  TlsConfig tls;
  EsBatchConfig batch;
  RequestConfig request;
  DeadLetterConfig dead_letter;
  static const config::Schema<ElasticsearchConfig>& schema();

  bool data_stream_mode() const { return mode == "data_stream"; }
  // The bulk action actually used: "create" or "index".
  std::string action() const {
    if (bulk.action) return *bulk.action;
    return data_stream_mode() ? "create" : "index";
  }
};

// One entry of `endpoints`, e.g. "https://es-1.example:9200/prefix".
struct Endpoint {
  bool tls = false;
  std::string host;         // without brackets for IPv6
  std::string port;         // "9200"; default 80 / 443 by scheme
  std::string path_prefix;  // "" or "/prefix" (no trailing slash)
  std::string host_header;  // "host:port" as sent in Host:
  std::string url;          // as written, for logs (never holds credentials)
};

// Parses an endpoint URL: http or https, a host, an optional port and path.
// Credentials in the URL are refused (they would end up in logs): use `auth`.
Result<Endpoint> ParseEndpoint(std::string_view url);

// `validate`'s checks: TLS CA file readable, dead-letter directory writable.
void CheckEnvironment(const ElasticsearchConfig& config, std::vector<config::EnvCheck>* out);

}  // namespace tributary::es
