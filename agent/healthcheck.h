#pragma once
// A tiny HTTP GET for container health checks (`tributary healthcheck`), so
// that images need no curl. Blocking, one request, bounded by a deadline.
// Thread-compatible: no shared state.

#include <chrono>
#include <string>

#include "agent/status.h"

namespace tributary {

// The address to probe for an `api.address` the agent listens on: wildcard
// hosts (0.0.0.0, ::) become the loopback address of the same family;
// "localhost" and bracketed IPv6 hosts are accepted. Returns "host:port" with
// IPv6 hosts in brackets.
std::string ProbeAddress(const std::string& listen_address);

// GETs `path` from `address` (host:port) over HTTP/1.0 and returns the status
// code in *status. Fails with an IoError if no response arrives by `timeout`.
Status HttpProbe(const std::string& address, const std::string& path, std::chrono::milliseconds timeout,
                 int* status);

}  // namespace tributary
