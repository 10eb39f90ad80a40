#include "agent/admin_api.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

#include "agent/log.h"

namespace tributary {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Metrics* metrics, const AdminApi::ReadyFn* ready)
      : stream_(std::move(socket)), metrics_(metrics), ready_(ready) {}

  void Start() { Read(); }

 private:
  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    response_ = {};
    response_.version(request_.version());
    response_.keep_alive(request_.keep_alive());
    response_.set(http::field::server, "tributary/" TRIBUTARY_VERSION);
    const auto target = request_.target();
    std::string path(target.substr(0, target.find('?')));
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      Reply(http::status::method_not_allowed, "text/plain", "method not allowed\n");
    } else if (path == "/metrics") {
      Reply(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", metrics_->Serialize());
    } else if (path == "/health") {
      Reply(http::status::ok, "application/json", "{\"ok\":true}\n");
    } else if (path == "/ready") {
      std::string reason;
      bool ok = (*ready_)(&reason);
      Reply(ok ? http::status::ok : http::status::service_unavailable, "application/json",
            ok ? "{\"ready\":true}\n" : "{\"ready\":false,\"reason\":\"" + reason + "\"}\n");
    } else {
      Reply(http::status::not_found, "text/plain", "not found: try /metrics, /health or /ready\n");
    }
  }

  void Reply(http::status status, const char* content_type, std::string body) {
    response_.result(status);
    response_.set(http::field::content_type, content_type);
    if (request_.method() == http::verb::head) {
      response_.content_length(body.size());
    } else {
      response_.body() = std::move(body);
      response_.prepare_payload();
    }
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      if (self->response_.keep_alive()) self->Read();
      else {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      }
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  Metrics* metrics_;
  const AdminApi::ReadyFn* ready_;
};

}  // namespace

struct AdminApi::Impl {
  Metrics* metrics;
  ReadyFn ready;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket), metrics, &ready)->Start();
      Accept();
    });
  }
};

AdminApi::AdminApi(Metrics* metrics, ReadyFn ready) : impl_(std::make_unique<Impl>()) {
  impl_->metrics = metrics;
  impl_->ready = std::move(ready);
}

AdminApi::~AdminApi() { Stop(); }

namespace {

Result<tcp::endpoint> ParseAddress(const std::string& address) {
  auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  // The config check has made sure of the form; this guards other callers.
  uint16_t port_number = 0;
  const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  if (auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), port_number);
      port.empty() || err != std::errc() || end != port.data() + port.size())
    return Status::InvalidArgument("api.address: the port of `" + address + "` must be a number from 0 to 65535");
  beast::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("api.address: `" + host + "` is not an IP address");
  return tcp::endpoint(ip, port_number);
}

}  // namespace

Status AdminApi::CheckHost(const std::string& address) {
  auto endpoint = ParseAddress(address);
  if (!endpoint.ok()) return endpoint.status();
  asio::io_context io;
  tcp::acceptor acc(io);
  beast::error_code ec;
  acc.open(endpoint->protocol(), ec);
  if (!ec) acc.bind(tcp::endpoint(endpoint->address(), 0), ec);
  if (ec == boost::system::errc::address_not_available)
    return Status::InvalidArgument(endpoint->address().to_string() + " is not an address of this machine");
  if (ec) return Status::IoError(ec.message());
  return Status::Ok();
}

Status AdminApi::Start(const std::string& address) {
  auto endpoint_or = ParseAddress(address);
  if (!endpoint_or.ok()) return endpoint_or.status();
  const tcp::endpoint endpoint = *endpoint_or;
  beast::error_code ec;
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IoError("cannot listen on " + address + ": " + ec.message());
  port_ = acc.local_endpoint().port();
  impl_->Accept();
  impl_->thread = std::thread([this] {
    NameThread("api");
    impl_->io.run();
  });
  const std::string host = endpoint.address().to_string();
  const std::string shown = endpoint.address().is_v6() ? "[" + host + "]" : host;
  TLOG_INFO("", "API listening on http://" + shown + ":" + std::to_string(port_) + " (/metrics /health /ready)");
  return Status::Ok();
}

void AdminApi::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace tributary
