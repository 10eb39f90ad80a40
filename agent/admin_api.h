#pragma once
// The admin HTTP API (Boost.Beast, HTTP/1.1 with keep-alive) on one thread:
//   GET /metrics  Prometheus text format of every internal metric
//   GET /health   200 while the process is serving
//   GET /ready    200 once the topology is running, 503 while starting,
//                 reloading a broken config or shutting down
// Start() binds synchronously so a busy port is reported at startup.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/metrics.h"
#include "agent/status.h"

namespace tributary {

class AdminApi {
 public:
  // `ready` is polled per request: true = 200, false = 503 with `reason`.
  using ReadyFn = std::function<bool(std::string* reason)>;

  AdminApi(Metrics* metrics, ReadyFn ready);
  ~AdminApi();

  // Binds `address` (host:port; port 0 picks one) and starts serving.
  Status Start(const std::string& address);
  // Whether the host of `address` is one of this machine's (binds it with
  // port 0 and lets go; the port itself may be held by a running agent):
  // for validate's check of the machine.
  static Status CheckHost(const std::string& address);
  void Stop();
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace tributary
