#include "tests/support/mock_kafka_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace tributary::test_support {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error("MockKafka: " + what + ": " + std::strerror(errno));
}

int remaining_ms(Clock::time_point deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

std::string MockKafka::program_path() {
#ifdef TRIBUTARY_MOCK_KAFKA_BINARY
  return TRIBUTARY_MOCK_KAFKA_BINARY;
#else
  return TRIBUTARY_BINARY_DIR "/tests/support/mock_kafka/mock_kafka";
#endif
}

MockKafka::MockKafka() : MockKafka(Options{}) {}

MockKafka::MockKafka(int brokers,
                     std::vector<std::pair<std::string, int>> topics)
    : MockKafka([&] {
        Options options;
        options.brokers = brokers;
        options.topics = std::move(topics);
        return options;
      }()) {}

MockKafka::MockKafka(Options options) : options_(std::move(options)) {
  std::vector<std::string> args = {program_path(), "--brokers",
                                   std::to_string(options_.brokers)};
  for (const auto& [name, partitions] : options_.topics) {
    args.push_back("--topic");
    args.push_back(name + ":" + std::to_string(partitions));
  }
  args.insert(args.end(), options_.extra_args.begin(),
              options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  // stdin is a socket so that writing to an exited child gives EPIPE through
  // MSG_NOSIGNAL instead of a SIGPIPE that would kill the test binary.
  int stdin_pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stdin_pair) != 0) {
    throw_errno("socketpair");
  }
  int stdout_pipe[2];
  if (pipe2(stdout_pipe, O_CLOEXEC) != 0) {
    int saved = errno;
    close(stdin_pair[0]);
    close(stdin_pair[1]);
    errno = saved;
    throw_errno("pipe2");
  }
  stdin_fd_ = stdin_pair[0];
  stdout_fd_ = stdout_pipe[0];

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdin_pair[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, stdout_pipe[1], STDOUT_FILENO);
  // The child starts with no blocked signals and default dispositions, so
  // that whatever the test binary did to its own signals does not leak in.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int spawn_error =
      posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  close(stdin_pair[1]);
  close(stdout_pipe[1]);
  if (spawn_error != 0) {
    pid_ = -1;
    close_fd(stdin_fd_);
    close_fd(stdout_fd_);
    errno = spawn_error;
    throw_errno("starting " + args[0]);
  }

  try {
    std::string line = read_line(options_.start_timeout, "the BOOTSTRAP line");
    constexpr std::string_view kPrefix = "BOOTSTRAP ";
    if (!line.starts_with(kPrefix) || line.size() == kPrefix.size()) {
      throw std::runtime_error(
          "MockKafka: expected 'BOOTSTRAP <servers>', got '" + line + "'");
    }
    bootstrap_servers_ = line.substr(kPrefix.size());
  } catch (...) {
    stop();
    throw;
  }
}

MockKafka::~MockKafka() { stop(); }

std::string MockKafka::command(std::string_view line) {
  if (line.find('\n') != std::string_view::npos) {
    throw std::invalid_argument("MockKafka: a command is one line");
  }
  if (stdin_fd_ < 0) throw std::runtime_error("MockKafka: not running");
  std::string out(line);
  out.push_back('\n');
  std::string_view rest = out;
  while (!rest.empty()) {
    ssize_t n = send(stdin_fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("sending '" + std::string(line) + "'");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return read_line(options_.command_timeout,
                   "the reply to '" + std::string(line) + "'");
}

std::string MockKafka::command_ok(std::string_view line) {
  std::string reply = command(line);
  if (!reply.starts_with("OK")) {
    throw std::runtime_error("MockKafka: '" + std::string(line) +
                             "' failed: " + reply);
  }
  return reply;
}

std::string MockKafka::read_line(std::chrono::milliseconds timeout,
                                 std::string_view waiting_for) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    if (size_t newline = buffered_.find('\n'); newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    if (stdout_fd_ < 0) throw std::runtime_error("MockKafka: not running");
    pollfd fd = {stdout_fd_, POLLIN, 0};
    int ready = poll(&fd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw_errno("poll");
    if (ready == 0) {
      throw std::runtime_error("MockKafka: no answer from mock_kafka within " +
                               std::to_string(timeout.count()) +
                               " ms, waiting for " + std::string(waiting_for));
    }
    char chunk[4096];
    ssize_t n = read(stdout_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("reading from mock_kafka");
    if (n == 0) {
      throw std::runtime_error(
          "MockKafka: mock_kafka closed its stdout (exited?) while waiting "
          "for " +
          std::string(waiting_for) + "; its stderr is above");
    }
    buffered_.append(chunk, static_cast<size_t>(n));
  }
}

int MockKafka::stop() {
  if (pid_ <= 0) return -1;
  // EOF on its stdin makes mock_kafka exit; its stdout reaching EOF tells us
  // it has. Past the deadline it is killed. Either way it is reaped.
  close_fd(stdin_fd_);
  const Clock::time_point deadline = Clock::now() + options_.stop_timeout;
  bool exited = false;
  while (stdout_fd_ >= 0) {
    pollfd fd = {stdout_fd_, POLLIN, 0};
    int ready = poll(&fd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char chunk[4096];
    ssize_t n = read(stdout_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      exited = n == 0;
      break;
    }
  }
  close_fd(stdout_fd_);
  if (!exited) {
    std::fprintf(stderr,
                 "MockKafka: mock_kafka (pid %d) did not exit within %lld ms "
                 "of EOF on stdin; killing it\n",
                 static_cast<int>(pid_),
                 static_cast<long long>(options_.stop_timeout.count()));
    kill(pid_, SIGKILL);
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  if (exited && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    std::fprintf(stderr, "MockKafka: mock_kafka (pid %d) ended with %s %d\n",
                 static_cast<int>(pid_),
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
  pid_ = -1;
  return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace tributary::test_support
