#include "agent/healthcheck.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tributary {

namespace {

struct Split {
  std::string host;
  std::string port;
};

Split SplitAddress(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return {address, "8686"};
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, address.substr(colon + 1)};
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `fd` is ready for `events` or the deadline passes.
bool WaitReady(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

}  // namespace

std::string ProbeAddress(const std::string& listen_address) {
  Split s = SplitAddress(listen_address);
  if (s.host.empty() || s.host == "0.0.0.0") s.host = "127.0.0.1";
  if (s.host == "::") s.host = "::1";
  if (s.host.find(':') != std::string::npos) return "[" + s.host + "]:" + s.port;
  return s.host + ":" + s.port;
}

Status HttpProbe(const std::string& address, const std::string& path, std::chrono::milliseconds timeout,
                 int* status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Split s = SplitAddress(address);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(s.host.c_str(), s.port.c_str(), &hints, &found); rc != 0) {
    return Status::IoError("cannot resolve " + address + ": " + gai_strerror(rc));
  }
  Status last = Status::IoError("no address for " + address);
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = Status::FromErrno("socket", errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS && WaitReady(fd, POLLOUT, deadline)) {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else if (err == EINPROGRESS) {
        err = ETIMEDOUT;
      }
    }
    if (err != 0) {
      last = Status::FromErrno("connect to " + address, err);
      ::close(fd);
      continue;
    }
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\nConnection: close\r\n\r\n";
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR) && WaitReady(fd, POLLOUT, deadline)) {
        continue;
      } else {
        break;
      }
    }
    // The status line is all we need: "HTTP/1.x NNN ...".
    std::string head;
    while (sent == request.size() && head.find("\r\n") == std::string::npos && head.size() < 1024) {
      char buf[512];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        head.append(buf, static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR) && WaitReady(fd, POLLIN, deadline)) {
        continue;
      } else {
        break;
      }
    }
    ::close(fd);
    ::freeaddrinfo(found);
    if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) {
      return Status::IoError("no HTTP response from " + address + path +
                             (RemainingMs(deadline) == 0 ? " (timed out)" : ""));
    }
    auto space = head.find(' ');
    *status = std::atoi(head.c_str() + space + 1);
    return Status::Ok();
  }
  ::freeaddrinfo(found);
  return last;
}

}  // namespace tributary
