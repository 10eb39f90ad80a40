#include "tests/support/es_server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

// Boost 1.74's asio/awaitable.hpp needs <utility> first in C++20 mode.
// clang-format off
#include <utility>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on

#include <simdjson.h>

namespace tributary::test_support {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr char kServerBinary[] = TRIBUTARY_BINARY_DIR "/tests/support/es_bulk_server/es_bulk_server";

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

std::string base64(std::string_view in) {
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kChars[(v >> s) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kChars[(v >> 18) & 63]);
    out.push_back(kChars[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kChars[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// Writes all of `data` to a pipe without letting a dead reader raise
// SIGPIPE in the test process.
bool write_all(int fd, std::string_view data) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  bool ok = true;
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      if (errno == EPIPE) {
        const timespec zero{0, 0};
        sigtimedwait(&pipe_set, nullptr, &zero);  // consume our SIGPIPE
      }
      break;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return ok;
}

}  // namespace

std::string HttpResult::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

std::vector<std::string> HttpResult::headers_named(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) out.push_back(v);
  }
  return out;
}

HttpResult http_request(uint16_t port, std::string_view method, std::string_view target, std::string_view body,
                        const HttpHeaders& headers, std::chrono::milliseconds timeout) {
  HttpResult result;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [k, v] : headers) req.insert(k, v);
  req.body() = std::string(body);
  if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());

  auto fail = [&](std::string_view what, const beast::error_code& ec) {
    result.error = std::string(what) + ": " + ec.message();
  };
  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port), [&](beast::error_code ec) {
    if (ec) return fail("connect", ec);
    http::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return fail("write", ec);
      http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
        if (ec) return fail("read", ec);
        auto& res = parser.get();
        result.status = res.result_int();
        for (const auto& field : res) {
          result.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
        result.body = std::move(res.body());
      });
    });
  });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return result;
}

EsBulkServer::EsBulkServer(std::vector<std::string> args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const size_t eq = a.find('=');
    const std::string flag = a.substr(0, eq);
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[i + 1];
    }
    if (flag == "--basic-auth") auth_ = {{"Authorization", "Basic " + base64(value)}};
    if (flag == "--api-key") auth_ = {{"Authorization", "ApiKey " + value}};
  }
  if (::access(kServerBinary, X_OK) != 0) {
    error_ =
        std::string("cannot run ") + kServerBinary + ": " + std::strerror(errno) + " (build the es_bulk_server target)";
    return;
  }
  std::vector<std::string> argv_storage = {kServerBinary, "--port", "0"};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + std::strerror(errno);
    return;
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + std::strerror(errno);
    ::close(in[0]);
    ::close(in[1]);
    return;
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    // Child: only async-signal-safe calls until exec.
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (pid_ < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    ::close(in[1]);
    ::close(out[0]);
    return;
  }
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];

  std::string line;
  if (!read_line(&line, Clock::now() + std::chrono::seconds(10))) {
    error_ = "es_bulk_server did not report LISTENING: " + line;
    return;
  }
  constexpr std::string_view kPrefix = "LISTENING ";
  if (line.rfind(kPrefix, 0) != 0) {
    error_ = "unexpected first line from es_bulk_server: " + line;
    return;
  }
  const long port = std::strtol(line.c_str() + kPrefix.size(), nullptr, 10);
  if (port <= 0 || port > 65535) {
    error_ = "bad port in: " + line;
    return;
  }
  port_ = static_cast<uint16_t>(port);
}

EsBulkServer::~EsBulkServer() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);  // EOF: the server exits
  if (pid_ > 0) {
    bool exited = false;
    // glibc 2.36's <sys/pidfd.h> lacks C++ linkage; use the system call.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      pollfd pfd{pidfd, POLLIN, 0};
      int rc;
      do {
        rc = ::poll(&pfd, 1, 5000);
      } while (rc < 0 && errno == EINTR);
      exited = rc == 1;
      ::close(pidfd);
    }
    if (!exited) ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

bool EsBulkServer::read_line(std::string* line, Clock::time_point deadline) {
  for (;;) {
    if (const size_t nl = pending_.find('\n'); nl != std::string::npos) {
      *line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      *line = "timed out";
      return false;
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;  // deadline re-checked above
    char buf[512];
    const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int status = 0;
      std::string why = "the process closed its stdout";
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        why = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                : "killed by signal " + std::to_string(WTERMSIG(status));
        pid_ = -1;
      }
      *line = why;
      return false;
    }
    pending_.append(buf, static_cast<size_t>(n));
  }
}

bool EsBulkServer::command(std::string_view command) {
  if (stdin_fd_ < 0) return false;
  if (!write_all(stdin_fd_, std::string(command) + "\n")) return false;
  std::string line;
  if (!read_line(&line, Clock::now() + std::chrono::seconds(10))) return false;
  const std::string_view verb = command.substr(0, command.find(' '));
  return line == "OK " + std::string(verb);
}

bool EsBulkServer::down() { return command("down"); }
bool EsBulkServer::up() { return command("up"); }

std::string EsBulkServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

HttpHeaders EsBulkServer::auth_headers() const { return auth_; }

HttpResult EsBulkServer::request(std::string_view method, std::string_view target, std::string_view body,
                                 const HttpHeaders& headers, std::chrono::milliseconds timeout) const {
  return http_request(port_, method, target, body, headers, timeout);
}

HttpResult EsBulkServer::get(std::string_view target, const HttpHeaders& headers) const {
  return request("GET", target, {}, headers);
}

HttpResult EsBulkServer::post(std::string_view target, std::string_view body, const HttpHeaders& headers) const {
  return request("POST", target, body, headers);
}

int64_t EsBulkServer::count(std::string_view index) const {
  const HttpResult r = get("/" + std::string(index) + "/_count?ignore_unavailable=true", auth_);
  if (r.status != 200) return -1;
  simdjson::dom::parser parser;
  int64_t n;
  if (parser.parse(r.body)["count"].get_int64().get(n) != simdjson::SUCCESS) return -1;
  return n;
}

std::vector<EsDoc> EsBulkServer::docs(std::string_view index) const {
  std::vector<EsDoc> out;
  const HttpResult r = get(index.empty() ? std::string("/_test/docs") : "/_test/docs?index=" + std::string(index));
  if (r.status != 200) return out;
  simdjson::dom::parser parser;
  std::string_view body = r.body;
  while (!body.empty()) {
    const size_t nl = body.find('\n');
    const std::string line(body.substr(0, nl));
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    simdjson::dom::element e;
    if (parser.parse(line).get(e) != simdjson::SUCCESS) continue;
    EsDoc doc;
    std::string_view s;
    if (e["_index"].get_string().get(s) == simdjson::SUCCESS) doc.index = std::string(s);
    if (e["_id"].get_string().get(s) == simdjson::SUCCESS) doc.id = std::string(s);
    if (e["_version"].get_int64().get(doc.version) != simdjson::SUCCESS) doc.version = 0;
    // `_source` is written last and verbatim; take its bytes, not a re-serialization.
    constexpr std::string_view kSourceKey = ",\"_source\":";
    if (const size_t at = line.find(kSourceKey); at != std::string::npos && line.back() == '}') {
      doc.source = line.substr(at + kSourceKey.size(), line.size() - at - kSourceKey.size() - 1);
    }
    out.push_back(std::move(doc));
  }
  return out;
}

std::string EsBulkServer::stats() const { return get("/_test/stats").body; }

int64_t EsBulkServer::stat(std::string_view name) const {
  simdjson::dom::parser parser;
  int64_t n;
  if (parser.parse(stats())[name].get_int64().get(n) != simdjson::SUCCESS) return -1;
  return n;
}

bool EsBulkServer::set_faults(std::string_view json) const {
  return request("POST", "/_test/faults", json, {{"Content-Type", "application/json"}}).status == 200;
}

bool EsBulkServer::clear_faults() const { return request("DELETE", "/_test/faults").status == 200; }

bool EsBulkServer::reset_docs() const { return request("DELETE", "/_test/docs").status == 200; }

}  // namespace tributary::test_support
