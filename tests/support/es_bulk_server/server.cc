#include "tests/support/es_bulk_server/server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <iostream>
#include <optional>

namespace es_test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// Waits for work posted to an I/O thread; false if the server stopped first.
template <typename T>
bool await(std::future<T>& f) {
  return f.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
}

}  // namespace

// One client connection: read a request, apply the connection faults, ask
// the Cluster, write the reply, repeat while keep-alive. Owned by the
// handlers in flight (shared_from_this); runs on its own strand.
class Server::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Server& server)
      : stream_(std::move(socket)), server_(server), timer_(stream_.get_executor()) {
    server_.cluster_.connection_opened();
  }
  ~Session() {
    server_.cluster_.connection_closed();
    server_.forget(this);
  }

  void start() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::read_header, shared_from_this()));
  }
  net::any_io_executor executor() { return stream_.get_executor(); }

  // On the strand.
  void close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  void read_header() {
    if (closed_) return;
    arm_idle_timer();
    parser_.emplace();
    parser_->body_limit(server_.max_content_length_);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    ++idle_generation_;  // a request came (or the read failed): no longer idle
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  // idle_timeout_ms (faults.h): a connection still waiting for the first
  // byte of its next request when the timer fires is closed. Bytes that
  // arrived but were not yet handed to the strand are the race a real
  // proxy has too: the client sees its request go unanswered.
  void arm_idle_timer() {
    const int64_t ms = server_.cluster_.idle_timeout_ms();
    if (ms <= 0) return;
    const uint64_t generation = ++idle_generation_;
    timer_.expires_after(std::chrono::milliseconds(ms));
    timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (ec || self->closed_ || generation != self->idle_generation_ || self->buffer_.size() > 0) return;
      if (self->server_.verbose_) std::cerr << "(idle connection closed)\n";
      self->server_.cluster_.idle_connection_closed();
      self->close();
    });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) return reply_and_close(http::status::payload_too_large);
    if (ec == http::error::header_limit) return reply_and_close(http::status::request_header_fields_too_large);
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset || closed_) {
      return close();
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return reply_and_close(http::status::bad_request);  // malformed HTTP
    }
    close();
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    call_ = HttpCall{};
    call_.method = std::string(req.method_string());
    call_.target = std::string(req.target());
    call_.content_type = std::string(req[http::field::content_type]);
    call_.content_encoding = std::string(req[http::field::content_encoding]);
    call_.authorization = std::string(req[http::field::authorization]);
    call_.accept_encoding = std::string(req[http::field::accept_encoding]);
    call_.body = std::move(req.body());
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    const CallPlan plan = server_.cluster_.plan(call_);
    if (plan.close_without_reply) {
      if (server_.verbose_) std::cerr << call_.method << " " << call_.target << " -> (connection closed)\n";
      return close();
    }
    if (plan.delay_ms > 0) {
      timer_.expires_after(std::chrono::milliseconds(plan.delay_ms));
      timer_.async_wait([self = shared_from_this()](beast::error_code) {
        if (!self->closed_) self->respond();
      });
      return;
    }
    respond();
  }

  void respond() {
    HttpReply reply = server_.cluster_.handle(call_);
    if (server_.verbose_) std::cerr << call_.method << " " << call_.target << " -> " << reply.status << "\n";
    res_ = {};
    res_.version(version_);
    res_.result(static_cast<http::status>(reply.status));
    if (!reply.body.empty() || reply.status != 200) res_.set(http::field::content_type, reply.content_type);
    for (auto& [name, value] : reply.headers) res_.insert(name, value);
    res_.body() = head_ ? std::string() : std::move(reply.body);
    res_.keep_alive(keep_alive_);
    res_.prepare_payload();
    down_ms_ = reply.down_ms;
    if (reply.interim) {  // 100 Continue, unasked, then the reply (faults: interim_responses)
      continue_.emplace(http::status::continue_, version_);
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        http::async_write(self->stream_, self->res_, beast::bind_front_handler(&Session::on_write, self));
      });
      return;
    }
    http::async_write(stream_, res_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (down_ms_ > 0) server_.down_for(down_ms_);
    if (ec || !keep_alive_) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return close();
    }
    read_header();
  }

  void reply_and_close(http::status status) {
    res_ = {};
    res_.version(11);
    res_.result(status);
    res_.keep_alive(false);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, size_t) { self->close(); });
  }

  beast::tcp_stream stream_;
  Server& server_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  http::response<http::string_body> res_;
  HttpCall call_;
  bool keep_alive_ = true;
  bool head_ = false;
  unsigned version_ = 11;
  int64_t down_ms_ = 0;
  bool closed_ = false;
  uint64_t idle_generation_ = 0;  // the armed idle timer fires only while it is current
};

Server::Server(Cluster& cluster, size_t max_content_length, bool verbose)
    : cluster_(cluster),
      max_content_length_(max_content_length),
      verbose_(verbose),
      work_(ioc_.get_executor()),
      acceptor_strand_(net::make_strand(ioc_)),
      acceptor_(acceptor_strand_),
      up_timer_(acceptor_strand_) {}

Server::~Server() {
  stop();
  wait();
}

bool Server::listen(const std::string& host, uint16_t port, std::string* error) {
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) {
    *error = "bad --host [" + host + "]: " + ec.message();
    return false;
  }
  endpoint_ = tcp::endpoint(address, port);
  if (!open_listener(error)) return false;
  endpoint_.port(port_);  // up() comes back on the same port
  return true;
}

bool Server::open_listener(std::string* error) {
  beast::error_code ec;
  acceptor_.open(endpoint_.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint_, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on " + endpoint_.address().to_string() + ":" + std::to_string(endpoint_.port()) + ": " +
             ec.message();
    beast::error_code ignored;
    acceptor_.close(ignored);
    return false;
  }
  port_ = acceptor_.local_endpoint().port();
  listening_ = true;
  accept();
  return true;
}

void Server::accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (!listening_ || ec == net::error::operation_aborted) return;
    if (!ec) {
      auto session = std::make_shared<Session>(std::move(socket), *this);
      {
        std::lock_guard lock(sessions_mu_);
        sessions_[session.get()] = session;
      }
      session->start();
    }
    accept();
  });
}

void Server::close_listener() {
  if (!listening_) return;
  listening_ = false;
  beast::error_code ignored;
  acceptor_.close(ignored);
}

std::vector<std::shared_ptr<Server::Session>> Server::live_sessions() {
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard lock(sessions_mu_);
  for (auto& [ptr, weak] : sessions_) {
    if (auto s = weak.lock()) out.push_back(std::move(s));
  }
  return out;
}

void Server::forget(Session* session) {
  std::lock_guard lock(sessions_mu_);
  sessions_.erase(session);
}

void Server::run(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

void Server::wait() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Server::stop() { ioc_.stop(); }

bool Server::down(std::string* error) {
  std::promise<void> closed;
  auto closed_future = closed.get_future();
  net::post(acceptor_strand_, [&] {
    up_timer_.cancel();
    close_listener();
    closed.set_value();
  });
  if (!await(closed_future)) {
    *error = "server is not running";
    return false;
  }
  for (auto& session : live_sessions()) {
    std::promise<void> done;
    auto done_future = done.get_future();
    net::post(session->executor(), [&] {
      session->close();
      done.set_value();
    });
    if (!await(done_future)) {
      *error = "server is not running";
      return false;
    }
  }
  return true;
}

bool Server::up(std::string* error) {
  std::promise<std::string> opened;
  auto opened_future = opened.get_future();
  net::post(acceptor_strand_, [&] {
    up_timer_.cancel();
    std::string err;
    if (!listening_) open_listener(&err);
    opened.set_value(err);
  });
  if (!await(opened_future)) {
    *error = "server is not running";
    return false;
  }
  *error = opened_future.get();
  return error->empty();
}

void Server::down_for(int64_t ms) {
  net::post(acceptor_strand_, [this, ms] {
    close_listener();
    for (auto& session : live_sessions()) {
      net::post(session->executor(), [session] { session->close(); });
    }
    up_timer_.expires_after(std::chrono::milliseconds(ms));
    up_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;  // cancelled by down() or up()
      std::string error;
      if (!listening_ && !open_listener(&error)) std::cerr << "es_bulk_server: " << error << "\n";
    });
  });
}

}  // namespace es_test
