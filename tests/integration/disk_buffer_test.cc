// Whole-binary tests of the disk buffer: kill -9 at random moments,
// corruption between runs, and a sink that is down for a while.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <cstdlib>

#include "tests/support/es_server_process.h"
#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// demo_logs (json, numbered by `seq`) → add_fields {run} → file sink with a
// disk buffer. idle_timeout_secs: 0 makes the sink reopen its file for
// every batch, so pointing the output directory at a plain file takes the
// sink down (ENOTDIR) until it is pointed back.
std::string Config(const TempDir& dir, const std::string& source_extra, const std::string& buffer_extra) {
  return "data_dir: " + (dir / "data") + "\n" +
         "api: { address: 127.0.0.1:0 }\n"
         "shutdown_timeout_secs: 5\n"
         "sources:\n"
         "  gen: { type: demo_logs, format: json, " + source_extra + " }\n"
         "transforms:\n"
         "  tag: { type: add_fields, inputs: [gen], fields: { run: \"${RUN}\" } }\n"
         "sinks:\n"
         "  out:\n"
         "    type: file\n"
         "    inputs: [tag]\n"
         "    path: " + (dir / "out") + "/out.log\n"
         "    idle_timeout_secs: 0\n"
         "    encoding: { codec: json }\n"
         "    buffer: { type: disk, " + buffer_extra + " }\n";
}

// `out` is a symlink, swapped atomically (rename over it): to the real
// output directory (sink up), or to a plain file (sink down: ENOTDIR).
void PointOut(const TempDir& dir, const std::string& target) {
  fs::create_directories(dir / "out.real");
  if (!fs::exists(dir / "blocker")) WriteFile(dir / "blocker", "not a directory");
  fs::remove(dir / "out.tmp");
  fs::create_symlink(target, dir / "out.tmp");
  fs::rename(dir / "out.tmp", dir / "out");
}
void SinkDown(const TempDir& dir) { PointOut(dir, dir / "blocker"); }
void SinkUp(const TempDir& dir) { PointOut(dir, dir / "out.real"); }

// run → seq → how many times it was delivered.
std::map<std::string, std::map<int64_t, int>> Delivered(const TempDir& dir) {
  static const std::regex kSeq(R"(\\"seq\\":([0-9]+))");
  static const std::regex kRun(R"("run":"([^"]*)\")");
  std::map<std::string, std::map<int64_t, int>> out;
  for (const auto& line : ReadLines(dir / "out/out.log")) {
    std::smatch s, r;
    if (!std::regex_search(line, s, kSeq) || !std::regex_search(line, r, kRun)) {
      ADD_FAILURE() << "unexpected line: " << line;
      continue;
    }
    ++out[r[1]][std::stoll(s[1])];
  }
  return out;
}

double BufferMetric(Agent& a, const std::string& name, std::map<std::string, std::string> labels = {}) {
  labels["component_id"] = "out";
  return a.Metric(name, labels).value_or(-1);
}

TEST(DiskBufferKillTest, TwentyKillsAtRandomMomentsLoseNothingThatReachedTheBuffer) {
  TempDir dir;
  SinkUp(dir);
  std::mt19937 rng(std::random_device{}());
  const std::string config = Config(dir, "interval: 0.001", "max_size: 8388608, flush_interval_ms: 50");
  std::map<std::string, double> in_buffer_at_kill;  // run → events written into the buffer
  for (int run = 0; run < 20; ++run) {
    // Every third run the sink is down: its events pile up in the buffer
    // and must come out in a later run.
    const bool down = run % 3 == 0;
    if (down) SinkDown(dir);
    Agent agent(dir, config, {}, {{"RUN", std::to_string(run)}});
    ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
    const double threshold = std::uniform_int_distribution<int>(20, 300)(rng);
    double received = 0;
    ASSERT_TRUE(WaitFor([&] {
      received = BufferMetric(agent, "tributary_buffer_received_events_total");
      return received >= threshold;
    })) << agent.process().Stderr();
    agent.process().Signal(SIGKILL);
    agent.process().Wait(5s);
    in_buffer_at_kill[std::to_string(run)] = received;
    if (down) SinkUp(dir);
  }
  // A last clean run delivers what is left, then stops.
  {
    Agent agent(dir, Config(dir, "count: 1, interval: 3600", "max_size: 8388608, flush_interval_ms: 50"), {},
                {{"RUN", "final"}});
    ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
    // Received first, then empty: read the other way round, the event could
    // arrive between the two reads and still be in the buffer at the stop
    // (kept on disk for the next start, not written: a CI run failed so).
    ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_received_events_total") >= 1 &&
                                     BufferMetric(agent, "tributary_buffer_events") == 0; }))
        << agent.process().Stderr();
    EXPECT_EQ(BufferMetric(agent, "tributary_buffer_discarded_events_total", {{"reason", "corrupt"}}), 0);
    agent.process().Signal(SIGTERM);
    EXPECT_EQ(agent.process().Wait(10s), 0);
  }
  auto delivered = Delivered(dir);
  int64_t total = 0, duplicates = 0, worst = 0;
  for (const auto& [run, at_kill] : in_buffer_at_kill) {
    const auto& seqs = delivered[run];
    ASSERT_FALSE(seqs.empty()) << "run " << run;
    // No gaps: 0..max each at least once, and at least everything that
    // was in the buffer when the process was killed.
    EXPECT_EQ(seqs.begin()->first, 0) << "run " << run;
    EXPECT_EQ(seqs.rbegin()->first + 1, static_cast<int64_t>(seqs.size())) << "gap in run " << run;
    EXPECT_GE(static_cast<double>(seqs.size()), at_kill) << "run " << run;
    int64_t dups = 0;
    for (const auto& [seq, n] : seqs) dups += n - 1;
    duplicates += dups;
    worst = std::max(worst, dups);
    total += static_cast<int64_t>(seqs.size());
    // The in-flight window: what the sink wrote after the last ledger write
    // (50 ms at ~1000 events/s, plus a backlog burst after a down run).
    EXPECT_LE(dups, 2000) << "run " << run;
  }
  EXPECT_EQ(delivered["final"].size(), 1u);
  std::cout << "[ kill -9 ] 20 kills, " << total << " distinct events delivered, " << duplicates
            << " duplicates (worst run " << worst << ")\n";
}

// Batches already between the source and the buffer still land after the
// buffer reports full (many of them under ASan): returns the source's sent
// count once it has not moved for 500 ms, or -1 if it never settles.
double WaitUntilStalled(const std::function<double()>& sent) {
  double value = sent();
  auto last_change = std::chrono::steady_clock::now();
  bool settled = WaitFor(
      [&] {
        double now = sent();
        if (now != value) value = now, last_change = std::chrono::steady_clock::now();
        return std::chrono::steady_clock::now() - last_change >= std::chrono::milliseconds(500);
      },
      std::chrono::seconds(20));
  return settled ? value : -1;
}

TEST(DiskBufferIntegrationTest, SinkDownWithBlockStopsTheSourceAndLosesNothing) {
  TempDir dir;
  SinkDown(dir);
  const int kCount = 60000;
  Agent agent(dir, Config(dir, "count: " + std::to_string(kCount) + ", interval: 0, batch_size: 100",
                          "max_size: 1048576, when_full: block, flush_interval_ms: 20"),
              {}, {{"RUN", "1"}});
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  // The buffer fills up to max_size and the source stops sending.
  auto source_sent = [&] {
    return agent.Metric("tributary_component_sent_events_total", {{"component_id", "gen"}}).value_or(-1);
  };
  ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_bytes") > 900000; }))
      << agent.process().Stderr();
  double stalled = WaitUntilStalled(source_sent);
  ASSERT_GE(stalled, 0);
  ASSERT_FALSE(WaitFor([&] { return source_sent() > stalled; }, 1500ms));
  EXPECT_LT(stalled, kCount);
  EXPECT_LE(BufferMetric(agent, "tributary_buffer_bytes"), 1048576 + 65536);
  SinkUp(dir);
  ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out/out.log").size() >= static_cast<size_t>(kCount); }, 60s))
      << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(10s), 0);
  auto seqs = Delivered(dir)["1"];
  EXPECT_EQ(seqs.size(), static_cast<size_t>(kCount));
  for (const auto& [seq, n] : seqs) ASSERT_EQ(n, 1) << seq;  // no crash: no duplicates
  EXPECT_EQ(seqs.rbegin()->first, kCount - 1);
}

// data_dir on a 4 MiB tmpfs with a 64 MiB buffer: the disk fills up before
// the buffer does. With `block` the source waits (ENOSPC is backpressure),
// nothing is lost, and everything flows once the sink frees space.
TEST(DiskBufferIntegrationTest, RealDiskFullOnATmpfsBlocksAndRecovers) {
  TempDir dir;
  const std::string mnt = dir / "data";
  fs::create_directories(mnt);
  if (std::system(("mount -t tmpfs -o size=4m tmpfs '" + mnt + "' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root); ENOSPC is covered by the injected-fault unit tests";
  struct Unmount {
    std::string m;
    ~Unmount() { (void)std::system(("umount -l '" + m + "'").c_str()); }
  } unmount{mnt};
  SinkDown(dir);
  const int kCount = 40000;  // ~10 MiB in the buffer: more than the tmpfs holds
  Agent agent(dir, Config(dir, "count: " + std::to_string(kCount) + ", interval: 0, batch_size: 100",
                          "max_size: 67108864, when_full: block, flush_interval_ms: 20"),
              {}, {{"RUN", "1"}});
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return agent.process().Stderr().find("No space left on device") != std::string::npos; }))
      << agent.process().Stderr();
  auto source_sent = [&] {
    return agent.Metric("tributary_component_sent_events_total", {{"component_id", "gen"}}).value_or(-1);
  };
  double stalled = WaitUntilStalled(source_sent);
  ASSERT_GE(stalled, 0);
  ASSERT_FALSE(WaitFor([&] { return source_sent() > stalled; }, 1500ms));
  EXPECT_LT(stalled, kCount);
  SinkUp(dir);
  ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out/out.log").size() >= static_cast<size_t>(kCount); }, 30s))
      << agent.process().Stderr() << "\n" << ReadLines(dir / "out/out.log").size() << " lines\n" << agent.Metrics();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(10s), 0);
  auto seqs = Delivered(dir)["1"];
  EXPECT_EQ(seqs.size(), static_cast<size_t>(kCount));
  for (const auto& [seq, n] : seqs) ASSERT_EQ(n, 1) << seq;
}

// Runs an agent whose sink is down until `events` sit in the disk buffer,
// then stops it cleanly (the buffer keeps them).
void FillBuffer(const TempDir& dir, int events) {
  SinkDown(dir);
  Agent agent(dir, Config(dir, "count: " + std::to_string(events) + ", interval: 0, batch_size: 50",
                          "max_size: 8388608, flush_interval_ms: 0"),
              {}, {{"RUN", "1"}});
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_events") == events; }))
      << agent.process().Stderr();
  // ... and the ledger has seen them all fsynced (write_event, see the
  // ledger grammar in agent/disk_buffer.h).
  ASSERT_TRUE(WaitFor([&] {
    std::string l = ReadFile(dir / "data/buffer/out/ledger");
    if (l.size() != 64) return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(l[52 + i])) << (8 * i);
    return v == static_cast<uint64_t>(events);
  }));
  agent.process().Signal(SIGKILL);
  agent.process().Wait(5s);
  SinkUp(dir);
}

std::vector<std::string> SegmentFiles(const TempDir& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir / "data/buffer/out"))
    if (e.path().filename().string().rfind("segment-", 0) == 0 && fs::file_size(e.path()) > 0)
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(DiskBufferIntegrationTest, CorruptionBetweenRunsIsSkippedCountedAndTheRestDelivered) {
  std::mt19937 rng(std::random_device{}());
  for (int scenario = 0; scenario < 4; ++scenario) {
    SCOPED_TRACE("scenario " + std::to_string(scenario));
    TempDir dir;
    const int kEvents = 20000;
    FillBuffer(dir, kEvents);
    auto segs = SegmentFiles(dir);
    ASSERT_GE(segs.size(), 1u);
    bool exact = true;
    switch (scenario) {
      case 0:  // random byte flips
        for (int k = 0; k < 5; ++k) {
          const auto& p = segs[rng() % segs.size()];
          std::string data = ReadFile(p);
          data[rng() % data.size()] ^= static_cast<char>(1 + rng() % 255);
          WriteFile(p, data);
        }
        break;
      case 1:  // a truncated segment
        fs::resize_file(segs[0], fs::file_size(segs[0]) * 2 / 3);
        break;
      case 2:  // a deleted ledger and a zero-length segment
        fs::remove(dir / "data/buffer/out/ledger");
        WriteFile(dir / "data/buffer/out/segment-00000000000000ff.log", "");
        break;
      case 3:  // a garbled ledger: records are delivered again, none lost
        WriteFile(dir / "data/buffer/out/ledger", std::string(68, 'x'));
        exact = false;
        break;
    }
    Agent agent(dir, Config(dir, "count: 0, interval: 3600", "max_size: 8388608"), {}, {{"RUN", "2"}});
    ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
    double corrupt = 0;
    ASSERT_TRUE(WaitFor([&] {
      corrupt = BufferMetric(agent, "tributary_buffer_discarded_events_total", {{"reason", "corrupt"}});
      return BufferMetric(agent, "tributary_buffer_events") == 0 &&
             static_cast<double>(Delivered(dir)["1"].size()) + corrupt >= kEvents;
    })) << agent.process().Stderr();
    agent.process().Signal(SIGTERM);
    EXPECT_EQ(agent.process().Wait(10s), 0);
    auto seqs = Delivered(dir)["1"];
    if (exact) EXPECT_EQ(static_cast<double>(seqs.size()) + corrupt, kEvents);
    else EXPECT_EQ(seqs.size(), static_cast<size_t>(kEvents));
    if (scenario <= 1) {
      EXPECT_GT(corrupt, 0);
      EXPECT_NE(agent.process().Stderr().find("corrupt bytes"), std::string::npos) << agent.process().Stderr();
    } else {
      EXPECT_EQ(corrupt, 0);
    }
  }
}

// A file source (it checkpoints, so what the agent acknowledged is never
// read again) into the file sink behind `out`, with the given buffer and a
// short drain: a reload while the sink is down stops the old pipeline hard.
std::string FileToFileConfig(const TempDir& dir, const std::string& buffer) {
  return "data_dir: " + (dir / "data") + "\n" +
         "api: { address: 127.0.0.1:0 }\n"
         "shutdown_timeout_secs: 1\n"
         "sources:\n"
         "  in: { type: file, include: [\"" + (dir / "in.log") + "\"] }\n"
         "sinks:\n"
         "  out:\n"
         "    type: file\n"
         "    inputs: [in]\n"
         "    path: " + (dir / "out") + "/out.log\n"
         "    idle_timeout_secs: 0\n"
         "    encoding: { codec: text }\n"
         "    buffer: " + buffer + "\n";
}

std::string NumberedLines(int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) out += "line " + std::to_string(i) + "\n";
  return out;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// Users reload when a sink is down. The drain times out, the old pipeline
// stops hard, and its disk buffer (still locked before by the leaked old
// pipeline: the agent exited 1) goes on in the new one: the agent keeps
// running and, once the sink is back, everything arrives exactly once.
TEST(DiskBufferIntegrationTest, ReloadWhileTheSinkIsDownKeepsRunningAndLosesNothing) {
  TempDir dir;
  SinkDown(dir);
  WriteFile(dir / "in.log", NumberedLines(0, 2000));
  const std::string config = FileToFileConfig(dir, "{ type: disk, flush_interval_ms: 20 }");
  Agent agent(dir, config);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_events") == 2000; }))
      << agent.process().Stderr();
  for (int reload = 1; reload <= 2; ++reload) {
    agent.process().Signal(SIGHUP);
    ASSERT_TRUE(WaitFor([&] { return Count(agent.process().Stderr(), "reloaded:") == static_cast<size_t>(reload); }))
        << agent.process().Stderr();
    ASSERT_TRUE(agent.process().Running()) << agent.process().Stderr();
  }
  EXPECT_EQ(agent.process().Stderr().find("locked by"), std::string::npos) << agent.process().Stderr();
  // The new pipeline reads on from the checkpoint, into the same buffer.
  AppendFile(dir / "in.log", NumberedLines(2000, 3000));
  ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_events") == 3000; }))
      << agent.process().Stderr();
  SinkUp(dir);
  ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out/out.log").size() >= 3000; }, 60s))
      << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(10s), 0) << agent.process().Stderr();
  EXPECT_EQ(ReadLines(dir / "out/out.log"), ReadLines(dir / "in.log")) << "lost, doubled or out of order";
}

// `type: disk` → `type: memory` while the sink is down: the events the disk
// buffer holds were acknowledged to the file source long ago, so nothing
// else would deliver them. The reload says so, names the directory and the
// count, delivers them first, and removes the directory once drained.
TEST(DiskBufferIntegrationTest, ReloadFromDiskToMemoryDeliversWhatTheDiskBufferHeldFirst) {
  TempDir dir;
  SinkDown(dir);
  WriteFile(dir / "in.log", NumberedLines(0, 2000));
  Agent agent(dir, FileToFileConfig(dir, "{ type: disk, flush_interval_ms: 20 }"));
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_events") == 2000; }))
      << agent.process().Stderr();
  WriteFile(dir / "tributary.yaml", FileToFileConfig(dir, "{ type: memory }"));
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Count(agent.process().Stderr(), "reloaded:") == 1; }))
      << agent.process().Stderr();
  const std::string err = agent.process().Stderr();
  EXPECT_NE(err.find("the disk buffer in " + (dir / "data/buffer/out") + " holds 2000 undelivered events"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("undelivered events will be read again"), std::string::npos) << err;
  AppendFile(dir / "in.log", NumberedLines(2000, 3000));
  SinkUp(dir);
  ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out/out.log").size() >= 3000; }, 60s))
      << agent.process().Stderr();
  EXPECT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_buffer_events", {{"component_id", "out"}, {"buffer_type", "disk"}}) == 0;
  })) << agent.Metrics();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(10s), 0) << agent.process().Stderr();
  EXPECT_EQ(ReadLines(dir / "out/out.log"), ReadLines(dir / "in.log")) << "lost, doubled or out of order";
  EXPECT_FALSE(fs::exists(dir / "data/buffer/out")) << "the drained disk buffer is left behind";
}

// `type: disk` → `type: memory` with the disk buffer empty: its directory
// goes, and so do its series. Before, looking into it bound the sink's
// `buffer_type="disk"` series again, and they stayed on /metrics until the
// next reload.
TEST(DiskBufferIntegrationTest, ReloadFromAnEmptyDiskBufferToMemoryLeavesNoDiskSeries) {
  TempDir dir;
  SinkUp(dir);
  WriteFile(dir / "in.log", NumberedLines(0, 500));
  Agent agent(dir, FileToFileConfig(dir, "{ type: disk, flush_interval_ms: 20 }"));
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out/out.log").size() == 500; })) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_events") == 0; }));
  WriteFile(dir / "tributary.yaml", FileToFileConfig(dir, "{ type: memory }"));
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Count(agent.process().Stderr(), "reloaded:") == 1; }))
      << agent.process().Stderr();
  const std::string metrics = agent.Metrics();
  EXPECT_EQ(metrics.find("buffer_type=\"disk\""), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("buffer_type=\"memory\""), std::string::npos) << metrics;
  EXPECT_FALSE(fs::exists(dir / "data/buffer/out"));
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(10s), 0) << agent.process().Stderr();
}

// A sink renamed while its disk buffer holds events (the sink down): the
// buffer is kept under the old id, and its events, acknowledged to the
// file source long ago, would be sent nowhere. Before, the only line was
// the drain's timeout; now each start and reload names the directory, the
// count and the way out, and giving the sink its id back delivers them.
TEST(DiskBufferIntegrationTest, ARenamedSinkWhoseDiskBufferHoldsEventsIsReportedAndItsOldIdDeliversThem) {
  TempDir dir;
  SinkDown(dir);
  WriteFile(dir / "in.log", NumberedLines(0, 2000));
  const std::string config = FileToFileConfig(dir, "{ type: disk, flush_interval_ms: 20 }");
  std::string renamed = config;
  renamed.replace(renamed.find("  out:\n"), 7, "  archive:\n");
  Agent agent(dir, config);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_events") == 2000; }))
      << agent.process().Stderr();
  WriteFile(dir / "tributary.yaml", renamed);
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Count(agent.process().Stderr(), "reloaded:") == 1; }))
      << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find((dir / "data/buffer/out") +
                                          " holds 2000 undelivered events of the disk buffer of sink `out`, which "
                                          "the configuration no longer has"),
            std::string::npos)
      << agent.process().Stderr();
  WriteFile(dir / "tributary.yaml", config);
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Count(agent.process().Stderr(), "reloaded:") == 2; }))
      << agent.process().Stderr();
  EXPECT_EQ(Count(agent.process().Stderr(), "which the configuration no longer has"), 1u)
      << "the empty buffer of `archive` is reported too";
  SinkUp(dir);
  ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out/out.log").size() >= 2000; }, 60s))
      << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(10s), 0) << agent.process().Stderr();
  EXPECT_EQ(ReadLines(dir / "out/out.log"), ReadLines(dir / "in.log")) << "lost, doubled or out of order";
}

// A stop signal while a slow sink works through a disk backlog: the disk
// buffer keeps what the sink has not taken, so the stop ends once the
// request in flight is answered, and the next start delivers the rest,
// each line once. Before, the stop waited for the backlog to empty: the
// whole drain of shutdown_timeout_secs with no source reading (a reload
// the same), then a hard stop that sent again what was in flight.
TEST(DiskBufferIntegrationTest, AStopWithADiskBacklogEndsAfterTheRequestInFlightAndTheNextStartSendsTheRest) {
  test_support::EsBulkServer es({"--delay-ms", "100"});
  ASSERT_TRUE(es.ok()) << es.error();
  TempDir dir;
  constexpr int kLines = 20000;  // 200 requests of 100: 20 s at 100 ms each
  // Lines of ~100 bytes, as logs have: a disk record (what the sink takes at
  // once) is then one read of the file source, ~650 lines, not thousands.
  std::string text;
  for (int i = 0; i < kLines; ++i) text += "line " + std::to_string(i) + " " + std::string(90, 'x') + "\n";
  WriteFile(dir / "in.log", text);
  const std::string config = "data_dir: " + (dir / "data") + "\napi: { address: 127.0.0.1:0 }\n" +
                             "shutdown_timeout_secs: 10\n"
                             "sources:\n  in: { type: file, include: [\"" + (dir / "in.log") + "\"] }\n" +
                             "sinks:\n  out:\n    type: elasticsearch\n    inputs: [in]\n    endpoints: [\"" +
                             es.url() + "\"]\n    bulk: { index: logs }\n"
                             "    batch: { max_events: 100, timeout_secs: 0.05 }\n"
                             "    request: { concurrency: 1 }\n"
                             "    buffer: { type: disk, flush_interval_ms: 20 }\n";
  {
    Agent agent(dir, config);
    ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
    ASSERT_TRUE(WaitFor([&] {
      return BufferMetric(agent, "tributary_buffer_received_events_total") == kLines && es.count("logs") >= 300;
    })) << agent.process().Stderr();
    const auto stop = std::chrono::steady_clock::now();
    agent.process().Signal(SIGTERM);
    EXPECT_EQ(agent.process().Wait(15s), 0) << agent.process().Stderr();
    EXPECT_LT(std::chrono::steady_clock::now() - stop, 4s) << "the stop waited for the backlog";
    EXPECT_EQ(agent.process().Stderr().find("shutdown timeout reached"), std::string::npos)
        << agent.process().Stderr();
  }
  const int64_t before_restart = es.count("logs");
  EXPECT_LT(before_restart, kLines / 2) << "no backlog was left for the next start: the test proves nothing";
  ASSERT_TRUE(es.set_faults("{\"delay_ms\": 0}"));
  Agent agent(dir, config);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return es.count("logs") >= kLines; }, 60s)) << agent.process().Stderr();
  EXPECT_TRUE(WaitFor([&] { return BufferMetric(agent, "tributary_buffer_events") == 0; }));
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(10s), 0) << agent.process().Stderr();
  std::set<std::string> lines;
  const std::regex message("\"message\":\"([^\"]*)\"");
  for (const auto& d : es.docs("logs"))
    if (std::smatch m; std::regex_search(d.source, m, message)) lines.insert(m[1]);
  EXPECT_EQ(es.count("logs"), kLines) << "lines sent twice";
  EXPECT_EQ(lines.size(), static_cast<size_t>(kLines)) << "lines lost";
}

}  // namespace
}  // namespace tributary::testing
