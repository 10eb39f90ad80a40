#pragma once

// The HTTP/1.1 side of the Elasticsearch test server: a Boost.Beast
// listener with keep-alive connections, `Expect: 100-continue`, request size
// limits, the connection-level faults (delay, close without reply, idle
// timeout) and the "down" mode (stop listening and drop every connection,
// then come back on the same port).
//
// Threading: `threads` threads run one io_context. The acceptor and each
// connection live on their own strand. down(), up() and stop() may be called
// from any thread that is not one of the server's own; down_for() from any
// thread. The Cluster must outlive the Server.

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>, which fails in C++20 mode: <utility> must come first.
// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tests/support/es_bulk_server/cluster.h"

namespace es_test {

class Server {
 public:
  Server(Cluster& cluster, size_t max_content_length, bool verbose);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (port 0 picks a free one).
  bool listen(const std::string& host, uint16_t port, std::string* error);
  uint16_t port() const { return port_; }
  boost::asio::io_context& io_context() { return ioc_; }

  // Starts `threads` I/O threads and returns.
  void run(int threads);
  // Blocks until stop() has been called and the I/O threads have ended.
  void wait();
  void stop();

  // Down mode: close the listening socket and every connection; up() binds
  // the same port again. Both block until done.
  bool down(std::string* error);
  bool up(std::string* error);
  // Goes down now and comes back up after `ms` (does not block).
  void down_for(int64_t ms);

 private:
  class Session;

  void accept();
  void close_listener();                   // on the acceptor strand
  bool open_listener(std::string* error);  // on the acceptor strand
  std::vector<std::shared_ptr<Session>> live_sessions();
  void forget(Session* session);

  Cluster& cluster_;
  const size_t max_content_length_;
  const bool verbose_;

  // Declared before ioc_: sessions destroyed with the io_context still
  // unregister themselves here.
  std::mutex sessions_mu_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;

  boost::asio::io_context ioc_;
  // Keeps run() going while down (no acceptor, no connections).
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::strand<boost::asio::io_context::executor_type> acceptor_strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer up_timer_;
  boost::asio::ip::tcp::endpoint endpoint_;
  uint16_t port_ = 0;
  bool listening_ = false;  // on the acceptor strand
  std::vector<std::thread> threads_;
};

}  // namespace es_test
