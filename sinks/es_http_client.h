#pragma once
// The HTTP/1.1 client of the `elasticsearch` sink (Boost.Beast over Asio,
// TLS through OpenSSL).
//
// HttpClient posts request bodies to a list of endpoints: each request goes
// to the next endpoint in round-robin order; an endpoint that cannot be
// reached (resolve, connect or TLS handshake failed) is skipped for a
// while, and the same request is tried on the next endpoint at once. After
// a request it keeps the connection open (keep-alive) for the next one; a
// kept connection the server has closed meanwhile is noticed before it is
// used, and replaced. A request on a kept connection that still fails
// before any response byte (the server closed it as the request went out,
// or after reading it) is sent once more at once on a new connection, and
// the response says so (`resent`): the server may have processed the
// first copy.
// Each request has one deadline (`timeout`) for connecting, sending and
// reading the response.
//
// Threads: one I/O thread owned by the client runs every connection.
// Post() may be called from any thread; callbacks run on the I/O thread.
// The caller limits how many requests are in flight (one connection each).
// Destroying the client stops the I/O thread; callbacks of requests still
// in flight are then never called.
//
// Secrets: the Authorization header value is only ever written to the
// socket, never to logs or errors.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/status.h"
#include "sinks/elasticsearch_config.h"

namespace tributary::es {

struct HttpClientOptions {
  std::vector<Endpoint> endpoints;
  std::chrono::milliseconds timeout{60000};
  TlsConfig tls;
  std::string authorization;  // the Authorization header's value, or empty
  std::string user_agent = "tributary";
  std::chrono::milliseconds endpoint_cooldown{1000};  // an unreachable endpoint is skipped this long
  // Kept-alive connections held per endpoint between requests; more are
  // closed when their request ends (a burst of retries or split requests
  // does not leave its connections open for good).
  size_t max_idle_per_endpoint = 8;
};

struct HttpResponse {
  Status error;            // no response: connect failed, timed out, connection lost
  bool timed_out = false;  // with error: the deadline passed
  int status = 0;          // HTTP status when !error
  std::string body;        // decoded (a gzip body is inflated)
  std::string location;    // the Location header of a redirect
  size_t endpoint = 0;     // the endpoint of the last attempt
  // The body went out a second time on a new connection, because the
  // kept-alive connection of the first attempt was closed without any
  // response byte; `resent_after` says how the first attempt ended. The
  // server may have received and processed that first copy.
  bool resent = false;
  std::string resent_after;
  // From the start to the end of the last attempt. With `resent`,
  // `first_attempt` is how long the first one took (until its connection
  // was found closed); the second one took the rest.
  std::chrono::steady_clock::duration duration{};
  std::chrono::steady_clock::duration first_attempt{};
};

class HttpClient {
 public:
  using Callback = std::function<void(HttpResponse)>;

  // Sets up TLS (CA file, verification); errors are configuration problems.
  static Result<std::unique_ptr<HttpClient>> Create(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts the I/O thread (Create opens nothing).
  void Start();

  // Sends `POST <endpoint path prefix><target>` with `body` (kept alive by
  // the shared pointer until the request is done). `gzip` adds
  // `Content-Encoding: gzip`. `callback` runs once on the I/O thread.
  void Post(std::string target, std::shared_ptr<const std::string> body, bool gzip, Callback callback);

  const Endpoint& endpoint(size_t i) const;
  size_t endpoint_count() const;

  struct Impl;  // implementation detail (es_http_client.cc)

 private:
  HttpClient() = default;
  std::unique_ptr<Impl> impl_;
};

// gzip (RFC 1952) helpers on zlib.
Status GzipCompress(std::string_view in, int level, std::string* out);
Status GzipDecompress(std::string_view in, size_t max_size, std::string* out);
// A response body in Content-Encoding `coding` (gzip, x-gzip, deflate: zlib
// or raw) into *out; another coding is an error.
Status DecodeContent(std::string_view coding, std::string_view in, size_t max_size, std::string* out);

// "Basic <base64(user:password)>".
std::string BasicAuthorization(std::string_view user, std::string_view password);

}  // namespace tributary::es
