#pragma once
// Helpers for unit and integration tests: temporary directories, polling
// with a deadline (never sleeps to wait), child processes, HTTP GET,
// Prometheus text parsing, and starting the tributary binary.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tributary::testing {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `condition` every few milliseconds until it holds or `timeout`
// passes. Returns whether it held.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(20));

void WriteFile(const std::string& path, const std::string& content);
void AppendFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);  // "" if missing
std::vector<std::string> ReadLines(const std::string& path);

// A child process with stdout and stderr captured to files.
class Process {
 public:
  struct Options {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;  // added to the parent's environment
    bool pipe_stdin = false;                 // else stdin is /dev/null
  };
  explicit Process(Options options);
  ~Process();  // SIGKILLs and reaps the child if still running
  Process(const Process&) = delete;

  int pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit up to `timeout`; the exit code (128+signal if killed).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();
  void WriteStdin(const std::string& data);
  void CloseStdin();
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  int pid_ = -1;
  int stdin_fd_ = -1;
  std::optional<int> exit_code_;
  std::string out_path_;
  std::string err_path_;
  TempDir dir_;
};

struct HttpResponse {
  int status = 0;  // 0 = connection failed
  std::string body;
};
HttpResponse HttpGet(const std::string& host, int port, const std::string& target);

// The value of a metric sample `name{labels...}` in Prometheus text, where
// every label given must match (others are ignored); nullopt if absent.
std::optional<double> MetricValue(const std::string& text, const std::string& name,
                                  const std::map<std::string, std::string>& labels = {});

// The tributary binary built by this tree.
std::string TributaryBinary();
std::string SourceDir();
std::string BinaryDir();

// One run of the tributary command line, to its exit (at most 20 s).
struct CliRun {
  int code;  // -1: it did not exit in time
  std::string out, err;
};
CliRun Tributary(std::vector<std::string> args, std::map<std::string, std::string> env = {});

// A tributary process running a config written to dir/tributary.yaml. The
// config should set `api.address: 127.0.0.1:0`; api_port() is read from
// the agent's log.
class Agent {
 public:
  // `launcher`: a command that runs the agent, e.g. {"prlimit", "--nofile=64:64"}.
  Agent(const TempDir& dir, const std::string& config_yaml, std::vector<std::string> extra_args = {},
        std::map<std::string, std::string> env = {}, bool pipe_stdin = false,
        std::vector<std::string> launcher = {});
  Process& process() { return *process_; }
  // Waits for the "API listening" log line; 0 if it did not appear.
  int api_port(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  std::string Metrics();
  std::optional<double> Metric(const std::string& name, const std::map<std::string, std::string>& labels = {});

 private:
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

}  // namespace tributary::testing
