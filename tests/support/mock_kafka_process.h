#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tributary::test_support {

// MockKafka runs tests/support/mock_kafka/mock_kafka (a Kafka cluster on
// librdkafka's mock API, speaking the real protocol on 127.0.0.1) as a child
// process for one test, and talks to it over its stdin/stdout.
//
//   MockKafka kafka(/*brokers=*/3, {{"logs", 3}});
//   conf.set("bootstrap.servers", kafka.bootstrap_servers());
//   EXPECT_EQ(kafka.command("broker_down 2"), "OK broker 2 down");
//
// Ownership and lifecycle: the object owns the child and its stdin/stdout. The
// constructor returns once the cluster printed its bootstrap servers; the
// destructor closes the child's stdin (the program exits on EOF), waits for
// it up to `stop_timeout`, then SIGKILLs and reaps it. If the test process
// itself dies, the closed pipe still ends the child.
//
// Errors: the constructor and command() throw std::runtime_error when the
// program cannot be started, exits, or does not answer within the deadline;
// GoogleTest reports that as a test failure. An "ERR ..." reply is returned,
// not thrown.
//
// Thread safety: none; use one object from one thread at a time.
class MockKafka {
 public:
  struct Options {
    int brokers = 3;
    // Topics created before the bootstrap line is printed: {name, partitions}.
    // Other topics are auto-created with the mock's default partition count.
    std::vector<std::pair<std::string, int>> topics;
    // Extra command-line arguments, e.g. {"--debug", "mock"}.
    std::vector<std::string> extra_args;
    std::chrono::milliseconds start_timeout{10000};
    std::chrono::milliseconds command_timeout{5000};
    std::chrono::milliseconds stop_timeout{5000};
  };

  MockKafka();  // Options{}: 3 brokers, no topics.
  explicit MockKafka(Options options);
  // Options{} with the given brokers and {name, partitions} topics.
  explicit MockKafka(int brokers,
                     std::vector<std::pair<std::string, int>> topics = {});
  ~MockKafka();

  MockKafka(const MockKafka&) = delete;
  MockKafka& operator=(const MockKafka&) = delete;

  // "127.0.0.1:port,127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }

  // Sends one command line (grammar in tests/support/mock_kafka/README.md)
  // and returns the reply line without its newline: "OK ..." or "ERR ...".
  std::string command(std::string_view line);

  // Like command(), but throws unless the reply starts with "OK".
  std::string command_ok(std::string_view line);

  // Closes the child's stdin, waits up to `stop_timeout` for it to exit, and
  // reaps it. Returns its exit status (0 after EOF, "quit" or SIGTERM), or -1
  // if it had to be killed or died of a signal. Later calls return -1. The
  // destructor calls this.
  int stop();

  // The child's pid while it runs, else -1.
  pid_t pid() const { return pid_; }

  // Path of the mock_kafka program the tests use.
  static std::string program_path();

 private:
  // Reads one line from the child's stdout, throwing after `timeout`.
  std::string read_line(std::chrono::milliseconds timeout,
                        std::string_view waiting_for);

  Options options_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;     // write end of the child's stdin
  int stdout_fd_ = -1;    // read end of the child's stdout
  std::string buffered_;  // bytes read past the last returned line
  std::string bootstrap_servers_;
};

}  // namespace tributary::test_support
