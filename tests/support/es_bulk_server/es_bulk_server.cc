// es_bulk_server: a strict Elasticsearch `_bulk` API test server.
//
// Started by tests (see tests/support/es_server_process.h). Prints exactly
// one line, "LISTENING <port>", once it accepts connections. Exits cleanly on
// SIGTERM/SIGINT or when its stdin reaches EOF, so it dies with the test
// that spawned it. Lines on stdin are commands, each answered by one line on
// stdout ("OK <command>" or "ERR <reason>"):
//   down            stop listening and close every connection
//   up              listen again on the same port
//   faults <json>   same as POST /_test/faults
//   quit            exit
// Flags, the control API and the modelled contract: README.md here.

#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "tests/support/es_bulk_server/cluster.h"
#include "tests/support/es_bulk_server/faults.h"
#include "tests/support/es_bulk_server/server.h"

namespace {

using es_test::Cluster;
using es_test::ClusterOptions;
using es_test::Faults;
using es_test::FieldType;
using es_test::Server;

constexpr char kUsage[] = R"(usage: es_bulk_server [flags]
  --host ADDR                   listen address (default 127.0.0.1)
  --port N                      listen port; 0 picks a free one (default 0)
  --threads N                   I/O threads (default 2)
  --basic-auth USER:PASSWORD    require HTTP basic auth
  --api-key VALUE               require "Authorization: ApiKey VALUE" (VALUE = base64 of id:key)
  --data-stream PATTERN         names matching this glob are data streams (repeatable)
  --mapping FIELD:TYPE          explicit field type (repeatable): long integer short byte
                                double float boolean keyword text date object
  --faults JSON                 initial faults, same JSON as POST /_test/faults
  --fail-requests STATUS:N      whole-request STATUS for the next N bulk requests
  --fail-requests-fraction STATUS:F   ... for fraction F of bulk requests
  --reject-items-first N        per-item 429 for the next N items
  --reject-items-every K        per-item 429 for every K-th item
  --reject-items-fraction F     per-item 429 for fraction F of items
  --delay-ms N                  delay every non-control request by N ms
  --close-connections N         close the connection instead of answering the next N bulk requests
  --idle-timeout-ms N           close a connection that waits N ms for its next request
  --max-content-length BYTES    request size limit, also after decompression (default 100mb)
  --es-version X.Y.Z            version reported by GET / (default 8.7.1)
  --no-sources                  keep ids and versions only (for long benchmarks)
  --no-response-compression     never gzip responses
  --ignore-stdin                do not exit on stdin EOF (for manual runs)
  --verbose                     log each request to stderr
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "es_bulk_server: " << message << "\n" << kUsage;
  std::exit(2);
}

int64_t parse_int(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0) usage_error(flag + " needs a non-negative integer, got [" + text + "]");
  return v;
}

double parse_fraction(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= 0 && v <= 1)) {
    usage_error(flag + " needs a fraction between 0 and 1, got [" + text + "]");
  }
  return v;
}

size_t parse_size(const std::string& flag, std::string text) {
  size_t mult = 1;
  for (auto [suffix, m] :
       {std::pair<const char*, size_t>{"kb", 1024}, {"mb", 1024 * 1024}, {"gb", 1024 * 1024 * 1024}}) {
    const std::string s = suffix;
    if (text.size() > s.size() && text.compare(text.size() - s.size(), s.size(), s) == 0) {
      text.resize(text.size() - s.size());
      mult = m;
      break;
    }
  }
  return static_cast<size_t>(parse_int(flag, text)) * mult;
}

// "A:B" split at the last colon.
std::pair<std::string, std::string> split_last_colon(const std::string& flag, const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    usage_error(flag + " needs A:B, got [" + text + "]");
  }
  return {text.substr(0, colon), text.substr(colon + 1)};
}

struct Config {
  ClusterOptions cluster;
  Faults faults;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int threads = 2;
  bool ignore_stdin = false;
  bool verbose = false;
};

Config parse_flags(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) usage_error("unexpected argument [" + arg + "]");
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto take = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--no-sources") {
      c.cluster.keep_sources = false;
    } else if (arg == "--no-response-compression") {
      c.cluster.compress_responses = false;
    } else if (arg == "--ignore-stdin") {
      c.ignore_stdin = true;
    } else if (arg == "--verbose") {
      c.verbose = true;
    } else if (arg == "--host") {
      c.host = take();
    } else if (arg == "--port") {
      const int64_t p = parse_int(arg, take());
      if (p > 65535) usage_error("--port out of range");
      c.port = static_cast<uint16_t>(p);
    } else if (arg == "--threads") {
      c.threads = static_cast<int>(std::max<int64_t>(1, parse_int(arg, take())));
    } else if (arg == "--basic-auth") {
      const std::string v = take();
      const size_t colon = v.find(':');
      if (colon == std::string::npos || colon == 0) usage_error("--basic-auth needs USER:PASSWORD");
      c.cluster.basic_auth = true;
      c.cluster.basic_user = v.substr(0, colon);
      c.cluster.basic_password = v.substr(colon + 1);
    } else if (arg == "--api-key") {
      c.cluster.api_key = take();
      if (c.cluster.api_key.empty()) usage_error("--api-key needs a value");
    } else if (arg == "--data-stream") {
      c.cluster.data_stream_patterns.push_back(take());
    } else if (arg == "--mapping") {
      auto [field, type_name] = split_last_colon(arg, take());
      FieldType type;
      if (!es_test::parse_field_type(type_name, &type)) usage_error("--mapping: unknown type [" + type_name + "]");
      auto mapping = std::make_shared<es_test::Mapping>(*c.faults.mapping);
      mapping->set(field, type);
      c.faults.mapping = std::move(mapping);
    } else if (arg == "--faults") {
      int64_t down_ms = 0;
      std::string error;
      if (!es_test::apply_faults_patch(take(), &c.faults, &down_ms, &error)) usage_error("--faults: " + error);
      if (down_ms) usage_error("--faults: down_ms makes no sense at startup");
    } else if (arg == "--fail-requests" || arg == "--fail-requests-fraction") {
      auto [status, amount] = split_last_colon(arg, take());
      const int64_t code = parse_int(arg, status);
      if (code < 300 || code > 599) usage_error(arg + ": status must be 300-599");
      c.faults.fail_status = static_cast<int>(code);
      c.faults.fail_count = 0;
      c.faults.fail_fraction = {};
      if (arg == "--fail-requests") {
        c.faults.fail_count = parse_int(arg, amount);
      } else {
        c.faults.fail_fraction.fraction = parse_fraction(arg, amount);
      }
    } else if (arg == "--reject-items-first") {
      c.faults.reject_first = parse_int(arg, take());
    } else if (arg == "--reject-items-every") {
      c.faults.reject_every = parse_int(arg, take());
    } else if (arg == "--reject-items-fraction") {
      c.faults.reject_fraction.fraction = parse_fraction(arg, take());
    } else if (arg == "--delay-ms") {
      c.faults.delay_ms = parse_int(arg, take());
    } else if (arg == "--close-connections") {
      c.faults.close_connections = parse_int(arg, take());
    } else if (arg == "--idle-timeout-ms") {
      c.faults.idle_timeout_ms = parse_int(arg, take());
    } else if (arg == "--max-content-length") {
      c.cluster.max_content_length = parse_size(arg, take());
    } else if (arg == "--es-version") {
      c.cluster.es_version = take();
    } else {
      usage_error("unknown flag [" + arg + "]");
    }
  }
  return c;
}

std::mutex stdout_mu;

void say(const std::string& line) {
  std::lock_guard lock(stdout_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void run_command(const std::string& line, Cluster& cluster, Server& server) {
  const std::string command = line.substr(0, line.find(' '));
  std::string error;
  if (command == "down") {
    say(server.down(&error) ? "OK down" : "ERR " + error);
  } else if (command == "up") {
    say(server.up(&error) ? "OK up" : "ERR " + error);
  } else if (command == "faults") {
    int64_t down_ms = 0;
    const size_t space = line.find(' ');
    const std::string json = space == std::string::npos ? std::string() : line.substr(space + 1);
    if (!cluster.patch_faults(json, &down_ms, &error)) {
      say("ERR " + error);
      return;
    }
    if (down_ms > 0) server.down_for(down_ms);
    say("OK faults");
  } else if (command == "quit") {
    say("OK quit");
    server.stop();
  } else if (!command.empty()) {
    say("ERR unknown command [" + command + "]; expected down, up, faults <json>, quit");
  }
}

// Reads commands from stdin until EOF (then stops the server) or until
// `wake_fd` becomes readable (shutdown from elsewhere).
void stdin_loop(int wake_fd, Cluster& cluster, Server& server) {
  std::string buffer;
  char chunk[4096];
  for (;;) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) return;
    if (!fds[0].revents) continue;
    const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF, or stdin closed/invalid
    buffer.append(chunk, static_cast<size_t>(n));
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      run_command(line, cluster, server);
    }
  }
  server.stop();
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Config config = parse_flags(argc, argv);
  const size_t max_content_length = config.cluster.max_content_length;
  Cluster cluster(std::move(config.cluster), std::move(config.faults));
  Server server(cluster, max_content_length, config.verbose);
  std::string error;
  if (!server.listen(config.host, config.port, &error)) {
    std::cerr << "es_bulk_server: " << error << "\n";
    return 1;
  }
  boost::asio::signal_set signals(server.io_context(), SIGTERM, SIGINT);
  signals.async_wait([&server](const boost::system::error_code& ec, int) {
    if (!ec) server.stop();
  });
  server.run(config.threads);
  say("LISTENING " + std::to_string(server.port()));

  int wake[2] = {-1, -1};
  std::thread stdin_thread;
  if (!config.ignore_stdin) {
    if (::pipe(wake) != 0) {
      std::perror("es_bulk_server: pipe");
      return 1;
    }
    stdin_thread = std::thread(stdin_loop, wake[0], std::ref(cluster), std::ref(server));
  }
  server.wait();
  if (stdin_thread.joinable()) {
    const char byte = 0;
    (void)!::write(wake[1], &byte, 1);
    stdin_thread.join();
    ::close(wake[0]);
    ::close(wake[1]);
  }
  return 0;
}
