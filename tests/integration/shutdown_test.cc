// Whole-binary scenarios for stopping the agent as a service manager does:
// how long a stop takes (systemd's TimeoutStopSec, the kubelet's grace
// period), signals during a reload's drain, a second signal, and what the
// log, the metrics and the exit code say about what a stop gave up.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <regex>
#include <string>

#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A FIFO opened for reading and never read: a stdout that stalls once the
// pipe is full, like a container's log pipe that nobody drains.
class StalledReader {
 public:
  explicit StalledReader(const std::string& path) : path_(path) {
    mkfifo(path.c_str(), 0600);
    fd_ = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  }
  ~StalledReader() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  // Runs the agent with its stdout on the FIFO.
  std::vector<std::string> Launcher() const { return {"bash", "-c", "exec \"$@\" > \"" + path_ + "\"", "bash"}; }

 private:
  std::string path_;
  int fd_ = -1;
};

// A console sink stuck in write() ignores the hard stop. The stop used to
// take shutdown_timeout_secs, then up to 5 s for the sources and 5 s more
// for the stuck sink: 7 s here, past a TimeoutStopSec set from the docs.
TEST(ShutdownTest, AStopWithASinkStuckInAWriteEndsWithinTheShutdownTimeout) {
  TempDir dir;
  StalledReader out(dir / "stdout.fifo");
  ASSERT_TRUE(out.ok());
  Agent agent(dir,
              "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\nshutdown_timeout_secs: 2\n" +
                  R"(
sources: { demo: { type: demo_logs, interval: 0 } }
sinks: { out: { type: console, inputs: [demo], encoding: { codec: text }, buffer: { max_events: 1000 } } }
)",
              {}, {}, false, out.Launcher());
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  // The pipe is full and the buffer behind the stuck sink too.
  ASSERT_TRUE(WaitFor([&] { return agent.Metric("tributary_buffer_events", {{"component_id", "out"}}) >= 900; }))
      << agent.Metrics();
  const auto start = Clock::now();
  agent.process().Signal(SIGTERM);
  auto code = agent.process().Wait(seconds(15));
  const auto took = Clock::now() - start;
  ASSERT_TRUE(code.has_value()) << agent.process().Stderr();
  EXPECT_LT(took, milliseconds(2500)) << agent.process().Stderr();
  EXPECT_GE(took, milliseconds(1900)) << "the drain should have waited" << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find("[out] sink did not stop; abandoning it"), std::string::npos)
      << agent.process().Stderr();
}

// Time since `start` at which `text` first appeared in the agent's log,
// read when it is seen; nullopt if it did not appear within `timeout`.
std::optional<Clock::duration> SeenAfter(Agent& agent, const std::string& text, Clock::time_point start,
                                         seconds timeout = seconds(20)) {
  if (!WaitFor([&] { return agent.process().Stderr().find(text) != std::string::npos; }, timeout))
    return std::nullopt;
  return Clock::now() - start;
}

// An Elasticsearch sink whose endpoint refuses connections holds what it
// took: a drain waits for it until the timeout. The file source reads
// again what the stop gives up (exit 0).
std::string DownSinkConfig(const TempDir& dir, int timeout_secs) {
  std::string lines;
  for (int i = 0; i < 1000; ++i) lines += "line " + std::to_string(i) + "\n";
  WriteFile(dir / "in.log", lines);
  return "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\nshutdown_timeout_secs: " +
         std::to_string(timeout_secs) + "\n" +
         "sources: { in: { type: file, include: [\"" + (dir / "in.log") + "\"], read_from: beginning } }\n"
         "sinks: { es: { type: elasticsearch, inputs: [in], endpoints: [\"http://127.0.0.1:9\"], "
         "bulk: { index: logs } } }\n";
}

void WaitForBufferedEvents(Agent& agent) {
  ASSERT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_buffer_received_events_total", {{"component_id", "es"}}).value_or(0) > 0;
  })) << agent.Metrics();
}

// Between a source and a full buffer wait the source's gathered group and,
// with transforms on a worker pool, up to 4 × (threads + 1) groups more.
// Gathered by count alone (1,000 events), that held every line of this
// 32 MB backlog of 8 KiB lines (ten times the 1 MiB buffer; with 100 KiB
// lines, gigabytes). Each group now also ends at about 1 MiB of input: at
// most 13 of 128 lines. Counted by the stop, as what the stopped buffer
// refused.
TEST(ShutdownTest, WhatWaitsForAFullBufferIsBoundedInBytes) {
  TempDir dir;
  const int kLines = 4000;
  {
    std::string text;
    for (int i = 0; i < kLines; ++i) text += std::to_string(i) + " " + std::string(8 * 1024 - 10, 'x') + "\n";
    WriteFile(dir / "in.log", text);
  }
  Agent agent(dir,
              "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\nshutdown_timeout_secs: 1\n"
              "sources: { in: { type: file, include: [\"" + (dir / "in.log") + "\"], read_from: beginning } }\n"
              "transforms: { tag: { type: add_fields, inputs: [in], fields: { t: x } } }\n"
              "sinks: { es: { type: elasticsearch, inputs: [tag], endpoints: [\"http://127.0.0.1:9\"], "
              "bulk: { index: logs }, batch: { max_bytes: 256KiB }, request: { concurrency: 1 }, "
              "buffer: { type: memory, max_bytes: 1MiB, when_full: block } } }\n",
              {"--threads", "2"});
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  // Blocked: the source sends nothing more while the buffer stays full.
  auto sent = [&] {
    return agent.Metric("tributary_component_sent_events_total", {{"component_id", "in"}}).value_or(-1);
  };
  double last = -1;
  int same = 0;
  ASSERT_TRUE(WaitFor([&] {
    const double now = sent();
    same = now > 0 && now == last ? same + 1 : 0;
    last = now;
    return same >= 20;  // unchanged over 20 polls
  }, seconds(30))) << agent.Metrics();
  agent.process().Signal(SIGTERM);
  ASSERT_TRUE(agent.process().Wait(seconds(30)).has_value());
  const std::string log = agent.process().Stderr();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("(\\d+) refused by its stopped buffer"))) << log;
  EXPECT_LE(std::stoi(m[1]), 13 * 128 + 128) << log;
  EXPECT_LT(last, kLines) << "the source read the whole backlog: " << log;
}

// What a stop gives up is read again at the next start from the file's
// checkpoint, if the file still holds it. Not a file deleted since it was
// read, nor one truncated with its copy outside the globs (logrotate's
// copytruncate to app.log.1 under `*.log`): the stop said "the file source
// `in` reads them again at the next start" and exited 0 all the same (the
// chaos probe lost 8,209 lines so). The line now says how many are lost
// and where, and the agent exits 1. `change` runs once every line of
// logs/kept.log (300) and logs/app.log (200) is in the sink's buffer,
// behind an endpoint that refuses connections.
struct Stopped {
  std::optional<int> code;
  std::string log;
};
Stopped StopAfterChangingTheFiles(const TempDir& dir, const std::string& include,
                                  const std::function<void(const std::string& app)>& change) {
  std::filesystem::create_directories(dir / "logs");
  std::string kept, app;
  for (int i = 0; i < 300; ++i) kept += "kept line " + std::to_string(i) + "\n";
  for (int i = 0; i < 200; ++i) app += "app line " + std::to_string(i) + "\n";
  WriteFile(dir / "logs/kept.log", kept);
  WriteFile(dir / "logs/app.log", app);
  Agent agent(dir, "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\nshutdown_timeout_secs: 2\n" +
                       "sources: { in: { type: file, include: [\"" + (dir / include) + "\"] } }\n" +
                       "sinks: { es: { type: elasticsearch, inputs: [in], endpoints: [\"http://127.0.0.1:9\"], "
                       "bulk: { index: logs } } }\n");
  Stopped out;
  if (agent.api_port() == 0) {
    out.log = agent.process().Stderr();
    return out;
  }
  EXPECT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_buffer_received_events_total", {{"component_id", "es"}}).value_or(0) == 500;
  })) << agent.Metrics();
  change(dir / "logs/app.log");
  agent.process().Signal(SIGTERM);
  out.code = agent.process().Wait(seconds(30));
  out.log = agent.process().Stderr();
  return out;
}

TEST(ShutdownTest, AStopThatGivesUpLinesOfAFileDeletedSinceSaysTheyAreLost) {
  TempDir dir;
  auto stopped = StopAfterChangingTheFiles(dir, "logs/*.log", [](const std::string& app) { ::unlink(app.c_str()); });
  EXPECT_EQ(stopped.code, std::optional<int>(1)) << stopped.log;
  EXPECT_NE(stopped.log.find("ERROR [es] gave up 500 events at the stop"), std::string::npos) << stopped.log;
  EXPECT_NE(stopped.log.find("the file source `in` (except 200 events of files deleted, truncated or rewritten since "
                             "it read them, which are lost: " + (dir / "logs/app.log") + " (deleted)) reads them "
                             "again at the next start"),
            std::string::npos)
      << stopped.log;
}

TEST(ShutdownTest, AStopThatGivesUpLinesOfAFileTruncatedSinceSaysTheyAreLost) {
  TempDir dir;
  auto stopped =
      StopAfterChangingTheFiles(dir, "logs/*.log", [](const std::string& app) { ::truncate(app.c_str(), 0); });
  EXPECT_EQ(stopped.code, std::optional<int>(1)) << stopped.log;
  EXPECT_NE(stopped.log.find("(except 200 events of files deleted, truncated or rewritten since it read them, which "
                             "are lost: " + (dir / "logs/app.log") + " (truncated or rewritten))"),
            std::string::npos)
      << stopped.log;
}

// A reload whose drain times out gives up what the sink still held; the
// file source's checkpoint brings it back at once, in the new pipeline. The
// line said "at the next start", as if nothing would be read until a
// restart.
TEST(ShutdownTest, AReloadThatGivesUpLinesSaysTheNewPipelineReadsThemAgain) {
  TempDir dir;
  std::filesystem::create_directories(dir / "logs");
  std::string app;
  for (int i = 0; i < 200; ++i) app += "app line " + std::to_string(i) + "\n";
  WriteFile(dir / "logs/app.log", app);
  Agent agent(dir, "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\nshutdown_timeout_secs: 2\n" +
                       "sources: { in: { type: file, include: [\"" + (dir / "logs/*.log") + "\"] } }\n" +
                       "sinks: { es: { type: elasticsearch, inputs: [in], endpoints: [\"http://127.0.0.1:9\"], "
                       "bulk: { index: logs } } }\n");
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_buffer_received_events_total", {{"component_id", "es"}}).value_or(0) == 200;
  })) << agent.Metrics();
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return agent.process().Stderr().find("reloaded:") != std::string::npos; }, seconds(20)))
      << agent.process().Stderr();
  const std::string log = agent.process().Stderr();
  EXPECT_NE(log.find("WARN [es] gave up 200 events at the stop"), std::string::npos) << log;
  EXPECT_NE(log.find(": the file source `in` reads them again when the new pipeline starts"), std::string::npos) << log;
  EXPECT_EQ(log.find("at the next start"), std::string::npos) << log;
  agent.process().Signal(SIGTERM);
  EXPECT_TRUE(agent.process().Wait(seconds(30)).has_value());
}

// copytruncate: the next start finds the lines in the copy, whether the
// globs match it or it is beside the file.
void ExpectReadAgainFromTheCopy(const std::string& include) {
  TempDir dir;
  auto stopped = StopAfterChangingTheFiles(dir, include, [](const std::string& app) {
    std::filesystem::copy_file(app, app + ".1");
    ::truncate(app.c_str(), 0);
  });
  EXPECT_EQ(stopped.code, std::optional<int>(0)) << stopped.log;
  EXPECT_NE(stopped.log.find("WARN [es] gave up 500 events at the stop"), std::string::npos) << stopped.log;
  EXPECT_NE(stopped.log.find(": the file source `in` reads them again at the next start"), std::string::npos)
      << stopped.log;
}

TEST(ShutdownTest, AStopThatGivesUpLinesOfAFileCopytruncatedWithinTheGlobsReadsThemAgain) {
  ExpectReadAgainFromTheCopy("logs/*.log*");
}

TEST(ShutdownTest, AStopThatGivesUpLinesOfAFileCopytruncatedBesideTheGlobsReadsThemAgain) {
  ExpectReadAgainFromTheCopy("logs/*.log");
}

// A SIGTERM while a reload drains the old pipeline (systemctl stop or an
// upgrade during systemctl reload, with a sink down) waited for the drain,
// then for a new pipeline and its full shutdown_timeout_secs: twice the
// timeout, past TimeoutStopSec, and the signal was logged only then. It
// must be taken at once and turn the drain under way into the shutdown.
TEST(ShutdownTest, ASigtermDuringAReloadsDrainIsTheShutdown) {
  TempDir dir;
  Agent agent(dir, DownSinkConfig(dir, 4));
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  WaitForBufferedEvents(agent);
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(SeenAfter(agent, "received SIGHUP", Clock::now()));
  const auto start = Clock::now();
  agent.process().Signal(SIGTERM);
  auto logged = SeenAfter(agent, "received SIGTERM during a reload, shutting down", start, seconds(10));
  ASSERT_TRUE(logged) << agent.process().Stderr();
  EXPECT_LT(*logged, milliseconds(1000)) << agent.process().Stderr();
  EXPECT_EQ(HttpGet("127.0.0.1", agent.api_port(), "/ready").status, 503);
  auto code = agent.process().Wait(seconds(15));
  const auto took = Clock::now() - start;
  ASSERT_TRUE(code.has_value()) << agent.process().Stderr();
  EXPECT_EQ(*code, 0) << agent.process().Stderr();
  EXPECT_LT(took, milliseconds(4500)) << agent.process().Stderr();
  const std::string err = agent.process().Stderr();
  EXPECT_EQ(err.find("reloaded:"), std::string::npos) << "a new pipeline started:\n" << err;
}

// A second SIGINT/SIGTERM during the drain was ignored without a word: an
// operator pressing Ctrl-C twice waited the whole shutdown_timeout_secs. It
// forces the shutdown now, and the exit code says so.
TEST(ShutdownTest, ASecondSignalForcesTheShutdown) {
  TempDir dir;
  Agent agent(dir, DownSinkConfig(dir, 20));
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  WaitForBufferedEvents(agent);
  agent.process().Signal(SIGINT);
  ASSERT_TRUE(SeenAfter(agent, "received SIGINT, shutting down", Clock::now())) << agent.process().Stderr();
  const auto start = Clock::now();
  agent.process().Signal(SIGINT);
  auto code = agent.process().Wait(seconds(25));
  const auto took = Clock::now() - start;
  ASSERT_TRUE(code.has_value()) << agent.process().Stderr();
  EXPECT_EQ(*code, 130) << agent.process().Stderr();
  EXPECT_LT(took, milliseconds(1500)) << agent.process().Stderr();
  const std::string err = agent.process().Stderr();
  EXPECT_NE(err.find("received a second shutdown signal (SIGINT): forcing the shutdown"), std::string::npos) << err;
  EXPECT_NE(err.find("stopped (forced)"), std::string::npos) << err;
}

// The same when the first signal came during a reload's drain.
TEST(ShutdownTest, ASecondSignalForcesAShutdownThatCameDuringAReload) {
  TempDir dir;
  Agent agent(dir, DownSinkConfig(dir, 20));
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  WaitForBufferedEvents(agent);
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(SeenAfter(agent, "received SIGHUP", Clock::now()));
  agent.process().Signal(SIGTERM);
  ASSERT_TRUE(SeenAfter(agent, "received SIGTERM during a reload", Clock::now())) << agent.process().Stderr();
  const auto start = Clock::now();
  agent.process().Signal(SIGTERM);
  auto code = agent.process().Wait(seconds(25));
  ASSERT_TRUE(code.has_value()) << agent.process().Stderr();
  EXPECT_EQ(*code, 130) << agent.process().Stderr();
  EXPECT_LT(Clock::now() - start, milliseconds(1500)) << agent.process().Stderr();
}

}  // namespace
}  // namespace tributary::testing
