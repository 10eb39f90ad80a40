#include "sinks/es_http_client.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <zlib.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <thread>

#include "agent/log.h"

namespace tributary::es {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxResponseBytes = 64 * 1024 * 1024;
constexpr uint32_t kMaxResponseHeaderBytes = 1024 * 1024;

// One connection to one endpoint, plain or TLS.
struct Conn {
  size_t endpoint = 0;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool used = false;  // has carried a request before (may have been closed by the peer since)

  beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }
  template <typename F>
  void With(F&& f) {
    if (tls) f(*tls);
    else f(*plain);
  }
};

std::string Describe(const beast::error_code& ec) {
  std::string s = ec.message();
  if (ec.category() == asio::error::get_ssl_category()) {
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    s = buf;
  }
  return s;
}

}  // namespace

struct HttpClient::Impl {
  // Declared first, destroyed last: everything below holds I/O objects.
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  HttpClientOptions options;
  std::unique_ptr<ssl::context> tls_ctx;
  std::vector<Clock::time_point> down_until;
  std::vector<std::vector<std::unique_ptr<Conn>>> idle;
  size_t next_endpoint = 0;
  std::thread thread;

  // Picks the next endpoint in round-robin order that is not cooling down
  // and not yet tried by this request; if all are cooling down, the one
  // that will be back first. npos when every endpoint has been tried.
  size_t Pick(const std::vector<bool>& tried) {
    const size_t n = options.endpoints.size();
    const auto now = Clock::now();
    size_t fallback = SIZE_MAX;
    for (size_t k = 0; k < n; ++k) {
      size_t i = (next_endpoint + k) % n;
      if (tried[i]) continue;
      if (down_until[i] <= now) {
        next_endpoint = (i + 1) % n;
        return i;
      }
      if (fallback == SIZE_MAX || down_until[i] < down_until[fallback]) fallback = i;
    }
    if (fallback != SIZE_MAX) next_endpoint = (fallback + 1) % n;
    return fallback;
  }

  // A kept connection to `endpoint` that the server has not closed, or
  // null. Connections the server closed while they were idle (its own or
  // a proxy's idle timeout) are dropped here, before a request is written
  // to them: such a request would be lost without an answer and sent again
  // (HttpResponse::resent), counted as a retry though nothing was received.
  std::unique_ptr<Conn> TakeIdle(size_t endpoint) {
    auto& v = idle[endpoint];
    while (!v.empty()) {
      auto c = std::move(v.back());
      v.pop_back();
      if (!ClosedByPeer(*c)) return c;
    }
    return nullptr;
  }

  // An idle connection has nothing to read: a readable one was closed
  // (end of stream, reset) or carries something unasked for (a TLS alert);
  // either way it cannot take a request.
  static bool ClosedByPeer(Conn& c) {
    char byte;
    ssize_t n;
    do {
      n = ::recv(c.tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

  void ReturnIdle(std::unique_ptr<Conn> c) {
    auto& v = idle[c->endpoint];
    if (v.size() < options.max_idle_per_endpoint) v.push_back(std::move(c));
  }
};

namespace {

// One POST, from picking an endpoint to the callback. Lives in the
// handlers that hold its shared_ptr; runs on the I/O thread only.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(HttpClient::Impl* client, std::string target, std::shared_ptr<const std::string> body, bool gzip,
           HttpClient::Callback cb)
      : client_(client),
        target_(std::move(target)),
        body_(std::move(body)),
        gzip_(gzip),
        cb_(std::move(cb)),
        resolver_(client->io),
        tried_(client->options.endpoints.size(), false) {}

  void Start() {
    start_ = Clock::now();
    deadline_ = start_ + client_->options.timeout;
    Attempt();
  }

 private:
  void Attempt() {
    endpoint_ = client_->Pick(tried_);
    if (endpoint_ == SIZE_MAX) return Fail(last_error_, false);
    tried_[endpoint_] = true;
    BuildRequest();
    conn_ = client_->TakeIdle(endpoint_);
    if (conn_) return Send();
    Connect();
  }

  void BuildRequest() {
    const Endpoint& ep = client_->options.endpoints[endpoint_];
    req_ = {};
    req_.method(http::verb::post);
    req_.target(ep.path_prefix + target_);
    req_.version(11);
    req_.set(http::field::host, ep.host_header);
    req_.set(http::field::user_agent, client_->options.user_agent);
    req_.set(http::field::content_type, "application/x-ndjson");
    req_.set(http::field::accept, "application/json");
    // Without it a server may answer in any content coding (RFC 9110
    // 12.5.3); unreadable, a response that stored the documents was
    // retried, storing them again and again.
    req_.set(http::field::accept_encoding, "identity");
    if (gzip_) req_.set(http::field::content_encoding, "gzip");
    if (!client_->options.authorization.empty()) req_.set(http::field::authorization, client_->options.authorization);
    req_.keep_alive(true);
    req_.body() = beast::span<const char>(body_->data(), body_->size());
    req_.prepare_payload();
  }

  void Connect() {
    const Endpoint& ep = client_->options.endpoints[endpoint_];
    conn_ = std::make_unique<Conn>();
    conn_->endpoint = endpoint_;
    conn_->buffer.reserve(64 * 1024);  // read responses in large chunks, not 512 bytes
    if (ep.tls) {
      conn_->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(client_->io, *client_->tls_ctx);
    } else {
      conn_->plain = std::make_unique<beast::tcp_stream>(client_->io);
    }
    resolver_.async_resolve(ep.host, ep.port, [self = shared_from_this()](beast::error_code ec,
                                                                         tcp::resolver::results_type results) {
      if (ec) return self->ConnectFailed("resolve", ec);
      self->conn_->tcp().expires_at(self->deadline_);
      self->conn_->tcp().async_connect(results, [self](beast::error_code ec, const tcp::endpoint&) {
        if (ec) return self->ConnectFailed("connect", ec);
        self->conn_->tcp().socket().set_option(tcp::no_delay(true), ec);
        if (self->conn_->tls) return self->Handshake();
        self->Send();
      });
    });
  }

  void Handshake() {
    const Endpoint& ep = client_->options.endpoints[endpoint_];
    const TlsConfig& tls = client_->options.tls;
    beast::error_code ec;
    (void)asio::ip::make_address(ep.host, ec);  // SNI only for names, not addresses
    if (ec && !SSL_set_tlsext_host_name(conn_->tls->native_handle(), ep.host.c_str())) {
      return ConnectFailed("TLS SNI", beast::error_code(static_cast<int>(::ERR_get_error()),
                                                         asio::error::get_ssl_category()));
    }
    if (tls.verify_certificate && tls.verify_hostname)
      conn_->tls->set_verify_callback(ssl::host_name_verification(ep.host));
    conn_->tcp().expires_at(deadline_);
    conn_->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->ConnectFailed("TLS handshake", ec);
      self->Send();
    });
  }

  // The endpoint could not be reached: cool it down and try the next.
  void ConnectFailed(const char* step, beast::error_code ec) {
    const Endpoint& ep = client_->options.endpoints[endpoint_];
    bool timed_out = ec == beast::error::timeout;
    last_error_ = Status::Unavailable(std::string(step) + " " + ep.url + ": " +
                                      (timed_out ? std::string("timed out") : Describe(ec)));
    client_->down_until[endpoint_] = Clock::now() + client_->options.endpoint_cooldown;
    conn_.reset();
    if (Clock::now() >= deadline_) return Fail(last_error_, true);
    Attempt();
  }

  void Send() {
    if (fresh_retry_done_) resent_ = true;
    conn_->tcp().expires_at(deadline_);
    conn_->With([this](auto& stream) {
      http::async_write(stream, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->IoFailed("send", ec, false);
        self->Read();
      });
    });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxResponseBytes);
    // Beast's default is 8 KiB: Elasticsearch's deprecation `Warning`
    // headers, or a proxy's cookies, go past it in a valid response.
    parser_->header_limit(kMaxResponseHeaderBytes);
    conn_->With([this](auto& stream) {
      http::async_read(stream, conn_->buffer, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->IoFailed("read", ec, self->interim_ || self->parser_->got_some());
        // An interim response (100 Continue, 103 Early Hints: a proxy may
        // send one unasked) is no answer: the final one follows on the
        // same connection (RFC 9110 15.2). Taken as the answer, it was
        // counted a rejection, and the real answer was read as the next
        // request's.
        const unsigned status = self->parser_->get().result_int();
        if (status >= 100 && status < 200 && status != 101) {
          self->interim_ = true;
          return self->Read();
        }
        self->Done();
      });
    });
  }

  // Sending or reading failed. A kept-alive connection the server closed
  // in the meantime fails before any response byte: retry once on a fresh
  // connection to the same endpoint. The server may have read the request
  // before it closed (a crash, a proxy's idle timeout that crossed it), so
  // the response reports the resend (`resent`) for the caller to count.
  void IoFailed(const char* step, beast::error_code ec, bool got_response_bytes) {
    const Endpoint& ep = client_->options.endpoints[endpoint_];
    bool timed_out = ec == beast::error::timeout;
    bool stale = conn_->used && !got_response_bytes && !timed_out && !fresh_retry_done_;
    std::string what = std::string(step) + " " + ep.url + ": " + (timed_out ? std::string("timed out") : Describe(ec));
    conn_.reset();
    if (stale) {
      fresh_retry_done_ = true;
      first_attempt_ = Clock::now() - start_;
      resent_after_ = "the kept-alive connection was closed without a response (" + what + ")";
      return Connect();
    }
    Fail(Status::Unavailable(std::move(what)), timed_out);
  }

  void Done() {
    client_->down_until[endpoint_] = Clock::time_point{};
    auto res = parser_->release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.endpoint = endpoint_;
    if (out.status >= 300 && out.status < 400) out.location = std::string(res[http::field::location]);
    auto enc = res[http::field::content_encoding];
    if (!enc.empty() && !beast::iequals(enc, "identity")) {
      Status s = DecodeContent(std::string_view(enc.data(), enc.size()), res.body(), kMaxResponseBytes, &out.body);
      if (!s.ok()) out.error = Status::Corruption("response from " + client_->options.endpoints[endpoint_].url + ": " +
                                                  s.message());
    } else {
      out.body = std::move(res.body());
    }
    if (res.keep_alive() && out.status >= 200) {  // not after 101 Switching Protocols
      conn_->used = true;
      client_->ReturnIdle(std::move(conn_));
    }
    conn_.reset();
    out.duration = Clock::now() - start_;
    Complete(std::move(out));
  }

  void Fail(Status error, bool timed_out) {
    HttpResponse out;
    out.error = error.ok() ? Status::Unavailable("no endpoint could be reached") : std::move(error);
    out.timed_out = timed_out;
    out.endpoint = endpoint_ == SIZE_MAX ? 0 : endpoint_;
    out.duration = Clock::now() - start_;
    Complete(std::move(out));
  }

  void Complete(HttpResponse r) {
    r.resent = resent_;
    if (resent_) {
      r.resent_after = std::move(resent_after_);
      r.first_attempt = first_attempt_;
    }
    auto cb = std::move(cb_);
    cb_ = nullptr;
    if (cb) cb(std::move(r));
  }

  HttpClient::Impl* client_;
  std::string target_;
  std::shared_ptr<const std::string> body_;
  bool gzip_;
  HttpClient::Callback cb_;
  tcp::resolver resolver_;
  std::vector<bool> tried_;
  size_t endpoint_ = SIZE_MAX;
  std::unique_ptr<Conn> conn_;
  http::request<http::span_body<const char>> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  Clock::time_point start_, deadline_;
  Status last_error_;
  bool fresh_retry_done_ = false;  // a stale kept-alive connection was replaced
  bool interim_ = false;           // an interim (1xx) response came first
  bool resent_ = false;            // ... and the body went out again
  std::string resent_after_;       // how the stale connection's attempt ended
  Clock::duration first_attempt_{};  // ... and how long it took
};

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::Create(HttpClientOptions options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("no endpoints");
  std::unique_ptr<HttpClient> c(new HttpClient());
  c->impl_ = std::make_unique<Impl>();
  Impl& impl = *c->impl_;
  bool any_tls = false;
  for (const auto& e : options.endpoints) any_tls = any_tls || e.tls;
  if (any_tls) {
    impl.tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    beast::error_code ec;
    impl.tls_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                              ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (options.tls.verify_certificate) {
      impl.tls_ctx->set_verify_mode(ssl::verify_peer, ec);
      if (options.tls.ca_file) {
        impl.tls_ctx->load_verify_file(*options.tls.ca_file, ec);
        if (ec)
          return Status::InvalidArgument("tls.ca_file " + *options.tls.ca_file + ": " + Describe(ec) +
                                         " (a PEM file of CA certificates)");
      } else {
        impl.tls_ctx->set_default_verify_paths(ec);
        if (ec) return Status::InvalidArgument("cannot load the system's CA certificates: " + Describe(ec));
      }
    } else {
      impl.tls_ctx->set_verify_mode(ssl::verify_none, ec);
    }
    if (options.tls.crt_file && options.tls.key_file) {
      // An encrypted key is refused, not asked for on the terminal
      // (OpenSSL's default, which would hang an agent started with a tty).
      impl.tls_ctx->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); },
                                          ec);
      impl.tls_ctx->use_certificate_chain_file(*options.tls.crt_file, ec);
      if (ec) return Status::InvalidArgument("tls.crt_file " + *options.tls.crt_file + ": " + Describe(ec));
      impl.tls_ctx->use_private_key_file(*options.tls.key_file, ssl::context::pem, ec);
      if (ec)
        return Status::InvalidArgument("tls.key_file " + *options.tls.key_file + ": " + Describe(ec) +
                                       " (a PEM private key without a passphrase, the one of tls.crt_file)");
    }
  }
  impl.down_until.assign(options.endpoints.size(), Clock::time_point{});
  impl.idle.resize(options.endpoints.size());
  impl.options = std::move(options);
  return c;
}

void HttpClient::Start() {
  if (impl_->thread.joinable()) return;
  Impl* impl = impl_.get();
  impl_->thread = std::thread([impl] {
    NameThread("es-http");
    impl->io.run();
  });
}

HttpClient::~HttpClient() {
  if (!impl_) return;
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // Connections and pending handlers are destroyed with the Impl, the
  // io_context last.
  impl_->idle.clear();
}

void HttpClient::Post(std::string target, std::shared_ptr<const std::string> body, bool gzip, Callback callback) {
  auto ex = std::make_shared<Exchange>(impl_.get(), std::move(target), std::move(body), gzip, std::move(callback));
  asio::post(impl_->io, [ex] { ex->Start(); });
}

const Endpoint& HttpClient::endpoint(size_t i) const { return impl_->options.endpoints[i]; }
size_t HttpClient::endpoint_count() const { return impl_->options.endpoints.size(); }

// ---- Helpers ---------------------------------------------------------------

Status GzipCompress(std::string_view in, int level, std::string* out) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return Status::Internal("deflateInit2 failed");
  out->resize(deflateBound(&zs, static_cast<uLong>(in.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  zs.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("deflate failed");
  out->resize(produced);
  return Status::Ok();
}

namespace {
Status Inflate(std::string_view in, int window_bits, size_t max_size, std::string* out) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) return Status::Internal("inflateInit2 failed");
  out->clear();
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[16384];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Status::Corruption("invalid compressed body");
    }
    out->append(buf, sizeof buf - zs.avail_out);
    if (out->size() > max_size) {
      inflateEnd(&zs);
      return Status::Corruption("compressed body too large");
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return Status::Corruption("truncated compressed body");
    }
  }
  inflateEnd(&zs);
  return Status::Ok();
}
}  // namespace

Status GzipDecompress(std::string_view in, size_t max_size, std::string* out) {
  return Inflate(in, 16 + MAX_WBITS, max_size, out);
}

Status DecodeContent(std::string_view coding, std::string_view in, size_t max_size, std::string* out) {
  const beast::string_view c(coding.data(), coding.size());
  if (beast::iequals(c, "gzip") || beast::iequals(c, "x-gzip")) return GzipDecompress(in, max_size, out);
  if (beast::iequals(c, "deflate")) {
    // zlib's format as HTTP defines it (or gzip: detected), else the raw
    // deflate some servers send instead.
    Status s = Inflate(in, 32 + MAX_WBITS, max_size, out);
    if (!s.ok() && Inflate(in, -MAX_WBITS, max_size, out).ok()) return Status::Ok();
    return s;
  }
  return Status::Corruption("unsupported Content-Encoding " + std::string(coding));
}

std::string BasicAuthorization(std::string_view user, std::string_view password) {
  std::string plain = std::string(user) + ":" + std::string(password);
  std::string enc(4 * ((plain.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(enc.data()),
                          reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size()));
  enc.resize(static_cast<size_t>(n));
  OPENSSL_cleanse(plain.data(), plain.size());
  return "Basic " + enc;
}

}  // namespace tributary::es
