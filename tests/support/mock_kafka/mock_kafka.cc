// mock_kafka: a Kafka cluster for tests, built on librdkafka's mock cluster
// API (rdkafka_mock.h). It speaks the real Kafka protocol on loopback TCP, so
// producers, consumers and kcat talk to it as to a real cluster, and it takes
// line commands on stdin to take brokers down, add latency and inject errors.
//
// Process contract (see README.md next to this file for the full grammar):
//   stdout  exactly one line "BOOTSTRAP host:port[,host:port...]" once the
//           cluster is up, then one reply line per command: "OK ..." or
//           "ERR <reason>". Nothing else is ever written to stdout.
//   stdin   one command per line. EOF on stdin ends the program, so it dies
//           with the test that started it.
//   stderr  librdkafka's log and start-up errors.
//   SIGTERM, SIGINT, SIGHUP end the program cleanly; exit status 0.
//
// Threads: the main thread reads stdin and signals; librdkafka runs the mock
// brokers on its own threads. The mock API calls used here are safe to make
// from the main thread while the cluster runs.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kMaxBrokers = 64;
constexpr int kMaxPartitions = 10000;
constexpr long long kMaxPushedErrors = 1000000;
// A command line longer than this is answered with ERR and discarded.
constexpr size_t kMaxLineBytes = 64 * 1024;

constexpr std::string_view kUsage =
    "usage: mock_kafka [--brokers N] [--topic NAME:PARTITIONS]... "
    "[--debug CONTEXTS]\n"
    "  --brokers N               number of brokers, ids 1..N (default 3)\n"
    "  --topic NAME:PARTITIONS   create a topic at start (repeatable)\n"
    "  --debug CONTEXTS          librdkafka debug contexts, e.g. "
    "mock,protocol\n"
    "Prints 'BOOTSTRAP <servers>' on stdout, then answers commands on stdin.\n"
    "See tests/support/mock_kafka/README.md.\n";

// Kafka protocol request types, by their names in the Kafka protocol guide.
// Only those the mock cluster handles are listed; any other key is still
// accepted as a number.
struct ApiKeyName {
  std::string_view name;
  int16_t key;
};
constexpr ApiKeyName kApiKeys[] = {
    {"Produce", 0},
    {"Fetch", 1},
    {"ListOffsets", 2},
    {"Metadata", 3},
    {"OffsetCommit", 8},
    {"OffsetFetch", 9},
    {"FindCoordinator", 10},
    {"JoinGroup", 11},
    {"Heartbeat", 12},
    {"LeaveGroup", 13},
    {"SyncGroup", 14},
    {"DescribeGroups", 15},
    {"ListGroups", 16},
    {"SaslHandshake", 17},
    {"ApiVersions", 18},
    {"CreateTopics", 19},
    {"DeleteTopics", 20},
    {"DeleteRecords", 21},
    {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23},
    {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},
    {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
    {"SaslAuthenticate", 36},
    {"OffsetDelete", 47},
};

// Error names that rdkafka.h defines only as aliases (#define), or that newer
// librdkafka releases use for the same code, so rd_kafka_get_err_descs()
// does not list them.
struct ErrorAlias {
  std::string_view name;
  rd_kafka_resp_err_t code;
};
constexpr ErrorAlias kErrorAliases[] = {
    {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
    {"GROUP_LOAD_IN_PROGRESS", RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS},
    {"GROUP_COORDINATOR_NOT_AVAILABLE",
     RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE},
    {"NOT_COORDINATOR_FOR_GROUP", RD_KAFKA_RESP_ERR_NOT_COORDINATOR},
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a')
                                           : c;
           };
           return lower(x) == lower(y);
         });
}

// Parses all of `text` as a decimal integer within [min, max].
std::optional<long long> parse_int(std::string_view text, long long min,
                                   long long max) {
  long long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < min ||
      value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<int16_t> parse_api_key(std::string_view text) {
  for (const ApiKeyName& api : kApiKeys) {
    if (iequals(text, api.name) ||
        (text.size() == api.name.size() + 7 &&
         iequals(text.substr(api.name.size()), "Request") &&
         iequals(text.substr(0, api.name.size()), api.name))) {
      return api.key;
    }
  }
  if (auto number = parse_int(text, 0, INT16_MAX)) {
    return static_cast<int16_t>(*number);
  }
  return std::nullopt;
}

std::string api_key_name(int16_t key) {
  for (const ApiKeyName& api : kApiKeys) {
    if (api.key == key) return std::string(api.name);
  }
  return "ApiKey" + std::to_string(key);
}

// Accepts "TOPIC_AUTHORIZATION_FAILED", "RD_KAFKA_RESP_ERR_TOPIC_...",
// "_TRANSPORT" (librdkafka-internal codes keep their leading underscore),
// any case, or a number such as 29 or -195.
std::optional<rd_kafka_resp_err_t> parse_error_code(std::string_view text) {
  constexpr std::string_view kPrefix = "RD_KAFKA_RESP_ERR_";
  if (text.size() > kPrefix.size() &&
      iequals(text.substr(0, kPrefix.size()), kPrefix)) {
    text.remove_prefix(kPrefix.size());
  }
  if (auto number = parse_int(text, INT16_MIN, INT16_MAX)) {
    return static_cast<rd_kafka_resp_err_t>(*number);
  }
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr && iequals(text, descs[i].name)) {
      return descs[i].code;
    }
  }
  for (const ErrorAlias& alias : kErrorAliases) {
    if (iequals(text, alias.name)) return alias.code;
  }
  return std::nullopt;
}

std::string error_label(rd_kafka_resp_err_t code) {
  return std::string(rd_kafka_err2name(code)) + "(" +
         std::to_string(static_cast<int>(code)) + ")";
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t start = line.find_first_not_of(" \t", pos);
    if (start == std::string_view::npos) break;
    size_t end = line.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = line.size();
    words.push_back(line.substr(start, end - start));
    pos = end;
  }
  return words;
}

// Executes control commands against one mock cluster. Owns nothing; used
// only from the main thread.
class Controller {
 public:
  Controller(rd_kafka_mock_cluster_t* cluster, int brokers)
      : cluster_(cluster), brokers_(brokers) {}

  // Returns the reply line, without its newline. Sets *quit for "quit".
  std::string execute(std::string_view line, bool* quit) {
    std::vector<std::string_view> w = split_words(line);
    if (w.empty()) return "ERR empty command";
    std::string_view cmd = w[0];
    size_t args = w.size() - 1;
    if (cmd == "ping" && args == 0) return "OK pong";
    if (cmd == "quit" && args == 0) {
      *quit = true;
      return "OK bye";
    }
    if ((cmd == "broker_down" || cmd == "broker_up") && args == 1) {
      return broker_up_down(cmd == "broker_up", w[1]);
    }
    if (cmd == "rtt" && args == 2) return rtt(w[1], w[2]);
    if (cmd == "push_errors" && args == 3) {
      return push_errors(w[1], w[2], w[3]);
    }
    if (cmd == "clear_errors" && args == 1) return clear_errors(w[1]);
    if (cmd == "create_topic" && args == 2) return create_topic(w[1], w[2]);
    if (cmd == "leader" && args == 3) return leader(w[1], w[2], w[3]);
    for (std::string_view known :
         {"ping", "quit", "broker_down", "broker_up", "rtt", "push_errors",
          "clear_errors", "create_topic", "leader"}) {
      if (cmd == known) {
        return "ERR wrong number of arguments for " + std::string(cmd);
      }
    }
    return "ERR unknown command " + std::string(cmd);
  }

 private:
  // A broker id, or -1 for all brokers.
  std::optional<int32_t> parse_broker(std::string_view text) const {
    auto id = parse_int(text, -1, brokers_);
    if (!id || *id == 0) return std::nullopt;
    return static_cast<int32_t>(*id);
  }

  std::string broker_up_down(bool up, std::string_view id_text) {
    auto id = parse_broker(id_text);
    if (!id) return bad_broker(id_text);
    rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(cluster_, *id)
                                 : rd_kafka_mock_broker_set_down(cluster_, *id);
    if (err) return "ERR " + std::string(rd_kafka_err2str(err));
    return "OK broker " + std::string(id_text) + (up ? " up" : " down");
  }

  std::string rtt(std::string_view id_text, std::string_view ms_text) {
    auto id = parse_broker(id_text);
    if (!id) return bad_broker(id_text);
    auto ms = parse_int(ms_text, 0, 3600 * 1000);
    if (!ms)
      return "ERR bad rtt " + std::string(ms_text) + ", want 0..3600000 ms";
    rd_kafka_resp_err_t err =
        rd_kafka_mock_broker_set_rtt(cluster_, *id, static_cast<int>(*ms));
    if (err) return "ERR " + std::string(rd_kafka_err2str(err));
    return "OK broker " + std::string(id_text) + " rtt " + std::to_string(*ms) +
           " ms";
  }

  std::string push_errors(std::string_view api_text,
                          std::string_view count_text,
                          std::string_view error_text) {
    auto api = parse_api_key(api_text);
    if (!api) return "ERR unknown api key " + std::string(api_text);
    auto count = parse_int(count_text, 1, kMaxPushedErrors);
    if (!count) {
      return "ERR bad count " + std::string(count_text) + ", want 1.." +
             std::to_string(kMaxPushedErrors);
    }
    auto error = parse_error_code(error_text);
    if (!error) return "ERR unknown error code " + std::string(error_text);
    std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(*count),
                                            *error);
    rd_kafka_mock_push_request_errors_array(cluster_, *api, errors.size(),
                                            errors.data());
    return "OK pushed " + std::to_string(*count) + " " + error_label(*error) +
           " onto " + api_key_name(*api) + "(" + std::to_string(*api) + ")";
  }

  std::string clear_errors(std::string_view api_text) {
    auto api = parse_api_key(api_text);
    if (!api) return "ERR unknown api key " + std::string(api_text);
    rd_kafka_mock_clear_request_errors(cluster_, *api);
    return "OK cleared " + api_key_name(*api) + "(" + std::to_string(*api) +
           ")";
  }

  std::string create_topic(std::string_view name,
                           std::string_view partitions_text) {
    auto partitions = parse_int(partitions_text, 1, kMaxPartitions);
    if (!partitions) {
      return "ERR bad partition count " + std::string(partitions_text);
    }
    std::string topic(name);
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
        cluster_, topic.c_str(), static_cast<int>(*partitions),
        std::min(brokers_, 3));
    if (err) return "ERR " + error_label(err) + " " + rd_kafka_err2str(err);
    return "OK topic " + topic + " " + std::to_string(*partitions) +
           " partitions";
  }

  std::string leader(std::string_view topic_text,
                     std::string_view partition_text,
                     std::string_view id_text) {
    auto partition = parse_int(partition_text, 0, kMaxPartitions - 1);
    if (!partition) return "ERR bad partition " + std::string(partition_text);
    auto id = parse_broker(id_text);  // -1: leaderless
    if (!id) return bad_broker(id_text);
    std::string topic(topic_text);
    rd_kafka_resp_err_t err = rd_kafka_mock_partition_set_leader(
        cluster_, topic.c_str(), static_cast<int32_t>(*partition), *id);
    if (err) return "ERR " + std::string(rd_kafka_err2str(err));
    return "OK " + topic + "[" + std::to_string(*partition) + "] leader " +
           std::string(id_text);
  }

  std::string bad_broker(std::string_view text) const {
    return "ERR bad broker id " + std::string(text) + ", want 1.." +
           std::to_string(brokers_) + " or -1 for all";
  }

  rd_kafka_mock_cluster_t* cluster_;
  int brokers_;
};

struct Options {
  int brokers = 3;
  std::vector<std::pair<std::string, int>> topics;
  std::string debug;
};

// Returns nullopt after printing the reason to stderr.
std::optional<Options> parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != arg.npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      std::exit(0);
    } else if (arg == "--brokers") {
      auto n = take_value() ? parse_int(value, 1, kMaxBrokers) : std::nullopt;
      if (!n) {
        std::fprintf(stderr, "mock_kafka: --brokers wants 1..%d\n",
                     kMaxBrokers);
        return std::nullopt;
      }
      options.brokers = static_cast<int>(*n);
    } else if (arg == "--topic") {
      size_t colon = take_value() ? value.rfind(':') : std::string_view::npos;
      auto partitions =
          colon == std::string_view::npos
              ? std::nullopt
              : parse_int(value.substr(colon + 1), 1, kMaxPartitions);
      if (!partitions || colon == 0) {
        std::fprintf(stderr,
                     "mock_kafka: --topic wants NAME:PARTITIONS, got '%.*s'\n",
                     static_cast<int>(value.size()), value.data());
        return std::nullopt;
      }
      options.topics.emplace_back(std::string(value.substr(0, colon)),
                                  static_cast<int>(*partitions));
    } else if (arg == "--debug") {
      if (!take_value()) {
        std::fprintf(stderr, "mock_kafka: --debug wants a value\n");
        return std::nullopt;
      }
      options.debug = std::string(value);
    } else {
      std::fprintf(stderr, "mock_kafka: unknown argument '%s'\n%s", argv[i],
                   kUsage.data());
      return std::nullopt;
    }
  }
  return options;
}

// Writes all of `line` plus a newline to stdout, unbuffered.
bool write_line(std::string line) {
  line.push_back('\n');
  std::string_view rest = line;
  while (!rest.empty()) {
    ssize_t n = write(STDOUT_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads commands from stdin and answers them until quit, EOF, a signal, or
// stdout going away. Returns the exit status.
int serve(Controller& controller, int signal_fd) {
  std::string pending;
  bool discarding = false;  // inside an over-long line
  char chunk[4096];
  for (;;) {
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("mock_kafka: poll");
      return 1;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      if (read(signal_fd, &info, sizeof info) == sizeof info) {
        std::fprintf(stderr, "mock_kafka: %s, exiting\n",
                     strsignal(static_cast<int>(info.ssi_signo)));
      }
      return 0;
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    bool eof = n <= 0;
    if (!eof) pending.append(chunk, static_cast<size_t>(n));
    if (eof && !pending.empty() && !discarding) pending.push_back('\n');

    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::string_view line(pending.data(), newline);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (discarding) {
        discarding = false;
      } else {
        bool quit = false;
        if (!write_line(controller.execute(line, &quit))) return 0;
        if (quit) return 0;
      }
      pending.erase(0, newline + 1);
    }
    if (pending.size() > kMaxLineBytes) {
      pending.clear();
      if (!discarding && !write_line("ERR line too long")) return 0;
      discarding = true;
    }
    if (eof) return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options = parse_options(argc, argv);
  if (!options) return 2;

  // Block the exit signals before librdkafka starts its threads, so they
  // inherit the mask and the signals are only seen through signal_fd.
  sigset_t exit_signals;
  sigemptyset(&exit_signals);
  sigaddset(&exit_signals, SIGTERM);
  sigaddset(&exit_signals, SIGINT);
  sigaddset(&exit_signals, SIGHUP);
  sigaddset(&exit_signals, SIGPIPE);  // a closed stdout shows as EPIPE
  pthread_sigmask(SIG_BLOCK, &exit_signals, nullptr);
  sigdelset(&exit_signals, SIGPIPE);
  int signal_fd = signalfd(-1, &exit_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::perror("mock_kafka: signalfd");
    return 1;
  }

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // Without --debug, keep librdkafka to warnings and errors: its notices are
  // about the hosting handle (e.g. "No bootstrap.servers configured"), which
  // never connects anywhere and would only clutter test logs.
  const char* log_setting = options->debug.empty() ? "log_level" : "debug";
  const char* log_value = options->debug.empty() ? "4" : options->debug.c_str();
  if (rd_kafka_conf_set(conf, log_setting, log_value, errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "mock_kafka: --debug: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  // The handle only hosts the mock cluster; it never connects anywhere.
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "mock_kafka: rd_kafka_new: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster =
      rd_kafka_mock_cluster_new(rk, options->brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "mock_kafka: could not create the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }

  int status = 0;
  for (const auto& [name, partitions] : options->topics) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
        cluster, name.c_str(), partitions, std::min(options->brokers, 3));
    if (err) {
      std::fprintf(stderr, "mock_kafka: creating topic %s: %s\n", name.c_str(),
                   rd_kafka_err2str(err));
      status = 1;
      break;
    }
  }

  if (status == 0) {
    if (write_line(std::string("BOOTSTRAP ") +
                   rd_kafka_mock_cluster_bootstraps(cluster))) {
      Controller controller(cluster, options->brokers);
      status = serve(controller, signal_fd);
    }
  }

  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  close(signal_fd);
  return status;
}
