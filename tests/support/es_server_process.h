#pragma once

// EsBulkServer runs the Elasticsearch bulk-API test server
// (tests/support/es_bulk_server/, see its README.md) as a child process for
// one test, on a port it picked, and talks to it: plain HTTP helpers, the
// `/_test/*` control API, and the stdin commands (down/up).
//
//   EsBulkServer es({"--basic-auth", "elastic:secret", "--mapping", "status:long"});
//   ASSERT_TRUE(es.ok()) << es.error();
//   sink_config.endpoints = {es.url()};
//   ... run the sink ...
//   EXPECT_EQ(es.count("logs"), 1000);
//
// Ownership and lifetime: the object owns the child. The destructor closes
// the child's stdin (it exits on EOF), waits up to 5 s, then SIGKILLs and
// reaps it. If the test process dies, the child sees EOF and exits too.
// Thread-safety: the HTTP helpers are const and may be called from several
// threads at once; down()/up() and the destructor must not race each other.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tributary::test_support {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResult {
  int status = 0;     // 0: no response (connection refused, closed, timed out)
  std::string error;  // why there was no response
  HttpHeaders headers;
  std::string body;

  // The first header named `name` (case-insensitive), or "".
  std::string header(std::string_view name) const;
  // Every header named `name`.
  std::vector<std::string> headers_named(std::string_view name) const;
};

// One blocking HTTP/1.1 request to 127.0.0.1:`port` on a fresh connection.
// `Content-Length` is set from `body` when the method has one.
HttpResult http_request(uint16_t port, std::string_view method, std::string_view target, std::string_view body = {},
                        const HttpHeaders& headers = {}, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A stored document as GET /_test/docs returns it.
struct EsDoc {
  std::string index;
  std::string id;
  int64_t version = 0;
  std::string source;  // the `_source` JSON exactly as it was sent
};

class EsBulkServer {
 public:
  // Starts es_bulk_server with `--port 0` plus `args` and waits (up to 10 s)
  // for its "LISTENING <port>" line. Check ok() afterwards.
  explicit EsBulkServer(std::vector<std::string> args = {});
  ~EsBulkServer();
  EsBulkServer(const EsBulkServer&) = delete;
  EsBulkServer& operator=(const EsBulkServer&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:<port>"
  pid_t pid() const { return pid_; }

  // Raw requests; nothing added but Host (and what `headers` says).
  HttpResult get(std::string_view target, const HttpHeaders& headers = {}) const;
  HttpResult post(std::string_view target, std::string_view body,
                  const HttpHeaders& headers = {{"Content-Type", "application/x-ndjson"}}) const;
  HttpResult request(std::string_view method, std::string_view target, std::string_view body = {},
                     const HttpHeaders& headers = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  // The credentials given by --basic-auth / --api-key, as an Authorization
  // header (empty if none).
  HttpHeaders auth_headers() const;

  // GET /<index>/_count (with the configured credentials); 0 for an index
  // that does not exist, -1 if the request failed.
  int64_t count(std::string_view index) const;
  // GET /_test/docs?index=<index>; all indices when `index` is empty.
  std::vector<EsDoc> docs(std::string_view index = {}) const;
  // GET /_test/stats as raw JSON, and one top-level counter of it (-1 if
  // missing).
  std::string stats() const;
  int64_t stat(std::string_view name) const;
  // POST /_test/faults (grammar in es_bulk_server/faults.h); DELETE to clear.
  bool set_faults(std::string_view json) const;
  bool clear_faults() const;
  // DELETE /_test/docs: forget every index.
  bool reset_docs() const;

  // Stop listening and drop every connection / listen again on the same
  // port. Both return once the server has done it.
  bool down();
  bool up();

 private:
  bool command(std::string_view line);
  bool read_line(std::string* line, std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;   // the child's stdin (write end)
  int stdout_fd_ = -1;  // the child's stdout (read end)
  uint16_t port_ = 0;
  std::string error_;
  std::string pending_;  // stdout bytes read but not yet consumed
  HttpHeaders auth_;
};

}  // namespace tributary::test_support
