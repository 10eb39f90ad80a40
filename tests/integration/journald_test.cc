// The journald source in the real binary: journal files written by
// systemd-journal-remote, restarts with SIGTERM and kill -9, and a real
// systemd-journald run in a private mount namespace.

#include <gtest/gtest.h>

#include <functional>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "tests/support/compliance.h"
#include "tests/support/journal_builder.h"
#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

std::vector<std::string> Range(const std::string& prefix, int first, int n) {
  std::vector<std::string> out;
  for (int i = first; i < first + n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

class JournaldBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (JournalRemoteBinary().empty()) GTEST_SKIP() << "systemd-journal-remote is not installed";
    std::filesystem::create_directories(dir_ / "journal");
  }
  std::string Config(const std::string& extra = "") const {
    return "data_dir: " + (dir_ / "data") + "\n" +
           "api:\n  address: 127.0.0.1:0\n"
           "sources:\n"
           "  journal:\n"
           "    type: journald\n"
           "    journal_directory: " + (dir_ / "journal") + "\n"
           "    current_boot_only: false\n"
           "    batch_size: 7\n" + extra +
           "sinks:\n"
           "  out:\n"
           "    type: file\n"
           "    inputs: [journal]\n"
           "    path: " + (dir_ / "out.log") + "\n"
           "    encoding: { codec: text }\n";
  }
  std::vector<std::string> Output() const { return ReadLines(dir_ / "out.log"); }
  // Config() with the sink down (its directory is a file) and a buffer of
  // 50 events: the source stops in the middle of what it reads, until
  // UnblockSink(). Its output is then BlockedOutput().
  std::string BlockedConfig() const {
    WriteFile(dir_ / "blocker", "a file where the sink wants a directory\n");
    std::string config = Config();
    config.replace(config.find("path: "), 6 + (dir_ / "out.log").size(), "path: " + (dir_ / "blocker/out.log"));
    return config + "    buffer: { max_events: 50 }\n";
  }
  bool WaitForBlocked(Agent& agent) {
    return WaitFor([&] { return agent.Metric("tributary_buffer_events", {{"component_id", "out"}}).value_or(0) >= 40; });
  }
  void UnblockSink() {
    std::filesystem::remove(dir_ / "blocker");
    std::filesystem::create_directories(dir_ / "blocker");
  }
  std::vector<std::string> BlockedOutput() const { return ReadLines(dir_ / "blocker/out.log"); }
  // Reads old-0..9 from `sub`/a.journal, lets `replace` put another
  // directory in the place of `sub`, writes new-0..4 into it: they arrive,
  // nothing twice, and the log says `said` (unless empty).
  void ExpectAReplacementIsRead(const std::string& sub, const std::function<void()>& replace, const std::string& said) {
    std::filesystem::create_directories(dir_ / sub);
    JournalBuilder a(dir_ / (sub + "/a.journal"));
    ASSERT_EQ(a.AppendMessages("old-", 0, 10), "");
    Agent agent(dir_, Config());
    ASSERT_TRUE(WaitForLines(10)) << agent.process().Stderr();
    replace();
    JournalBuilder b(dir_ / (sub + "/b.journal"));
    ASSERT_EQ(b.AppendMessages("new-", 0, 5), "");
    EXPECT_TRUE(WaitFor([&] {
      auto out = Output();
      return !out.empty() && out.back() == "new-4";
    }, std::chrono::seconds(40))) << agent.process().Stderr();
    EXPECT_EQ(Output().size(), 15u) << "read twice or skipped";
    if (!said.empty()) EXPECT_NE(agent.process().Stderr().find(said), std::string::npos) << agent.process().Stderr();
    agent.process().Signal(SIGTERM);
    EXPECT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0) << agent.process().Stderr();
  }
  bool WaitForLines(size_t n) {
    return WaitFor([&] { return Output().size() >= n; }, std::chrono::seconds(30));
  }

  TempDir dir_;
};

TEST_F(JournaldBinaryTest, ResumesAfterSigtermWithNothingTwiceAndNothingSkipped) {
  JournalBuilder b(dir_ / "journal/x.journal");
  ASSERT_EQ(b.AppendMessages("m", 0, 100, {{"_SYSTEMD_UNIT", "app.service"}}), "");
  {
    Agent agent(dir_, Config());
    ASSERT_TRUE(WaitForLines(100)) << agent.process().Stderr();
    // Following: entries appended while running arrive.
    ASSERT_EQ(b.AppendMessages("m", 100, 30), "");
    ASSERT_TRUE(WaitForLines(130)) << agent.process().Stderr();
    std::string metrics = agent.Metrics();
    ExpectComponentMetrics(metrics, "journal", "source", "journald");
    EXPECT_EQ(MetricValue(metrics, "tributary_component_received_events_total", {{"component_id", "journal"}}),
              130.0);
    auto bytes = MetricValue(metrics, "tributary_component_received_bytes_total", {{"component_id", "journal"}});
    ASSERT_TRUE(bytes.has_value());
    // Exactly the field data "NAME=value": MESSAGE=mN (10 to 12 bytes),
    // _BOOT_ID=<32 hex> (41), and _SYSTEMD_UNIT=app.service (25) on the first 100.
    double want = 10 * 10 + 90 * 11 + 30 * 12 + 130 * 41 + 100 * 25;
    EXPECT_EQ(*bytes, want);
    agent.process().Signal(SIGTERM);
    ASSERT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0) << agent.process().Stderr();
  }
  ASSERT_TRUE(std::filesystem::exists(dir_ / "data/journald/journal/cursor"));
  ASSERT_EQ(b.AppendMessages("m", 130, 45), "");
  {
    Agent agent(dir_, Config());
    ASSERT_TRUE(WaitForLines(175)) << agent.process().Stderr();
    ASSERT_EQ(b.AppendMessages("m", 175, 5), "");
    ASSERT_TRUE(WaitForLines(180)) << agent.process().Stderr();
    agent.process().Signal(SIGTERM);
    ASSERT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0) << agent.process().Stderr();
  }
  EXPECT_EQ(Output(), Range("m", 0, 180));
}

TEST_F(JournaldBinaryTest, KillNineLosesNothing) {
  JournalBuilder b(dir_ / "journal/x.journal");
  ASSERT_EQ(b.AppendMessages("k", 0, 200), "");
  {
    Agent agent(dir_, Config("    checkpoint_interval_ms: 50\n"));
    ASSERT_TRUE(WaitForLines(200)) << agent.process().Stderr();
    // Let at least one checkpoint land, then kill without a chance to flush.
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir_ / "data/journald/journal/cursor"); }));
    agent.process().Signal(SIGKILL);
    agent.process().Wait(std::chrono::seconds(10));
  }
  ASSERT_EQ(b.AppendMessages("k", 200, 20), "");
  Agent agent(dir_, Config());
  ASSERT_TRUE(WaitFor([&] {
    auto out = Output();
    return !out.empty() && out.back() == "k219";
  }, std::chrono::seconds(30))) << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  ASSERT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0);
  auto out = Output();
  std::set<std::string> seen(out.begin(), out.end());
  for (const auto& m : Range("k", 0, 220)) EXPECT_TRUE(seen.count(m)) << m << " lost";
  // Duplicates are only what was read after the last checkpoint.
  EXPECT_LT(out.size(), 220u + 200u);
}

// A journal file truncated in place while the source is in the middle of it
// (`: > x.journal`, a copy over it): sd-journal reads it through mmap, and a
// read past the new end raised SIGBUS, which killed the agent. The source
// now drops the batch it was reading, says so, reopens at its last cursor
// and reads on; what the cut took is lost.
TEST_F(JournaldBinaryTest, AJournalFileTruncatedWhileItIsReadDoesNotKillTheAgent) {
  JournalBuilder a(dir_ / "journal/a.journal");
  ASSERT_EQ(a.AppendMessages(std::string(200, 'x'), 0, 20000), "");
  Agent agent(dir_, BlockedConfig());
  ASSERT_TRUE(WaitForBlocked(agent)) << agent.process().Stderr();
  std::filesystem::resize_file(a.file(), 100000);
  UnblockSink();
  ASSERT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_component_errors_total",
                        {{"component_id", "journal"}, {"error_type", "read_failed"}}).value_or(0) >= 1 ||
           !agent.process().Running();
  }, std::chrono::seconds(30))) << agent.process().Stderr();
  ASSERT_TRUE(agent.process().Running()) << "the agent died\n" << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find("a journal file was truncated or overwritten while it was read (SIGBUS)"),
            std::string::npos)
      << agent.process().Stderr();
  JournalBuilder b(dir_ / "journal/b.journal");
  ASSERT_EQ(b.AppendMessages("after-", 0, 10), "");
  EXPECT_TRUE(WaitFor([&] {
    auto out = BlockedOutput();
    return !out.empty() && out.back() == "after-9";
  }, std::chrono::seconds(30))) << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0) << agent.process().Stderr();
}

// sd-journal adds a journal file that appeared only when asked
// (sd_journal_process), and the source asked only once it had caught up:
// by then it read past the new file's first entries, which sort before
// its position, and they were never read. Asked after every full batch.
TEST_F(JournaldBinaryTest, AFileThatAppearsWhileTheSourceCatchesUpIsReadFromItsFirstEntry) {
  JournalBuilder a(dir_ / "journal/a.journal");
  ASSERT_EQ(a.AppendMessages("a-", 0, 20000), "");  // the backlog
  Agent agent(dir_, BlockedConfig());
  ASSERT_TRUE(WaitForBlocked(agent)) << agent.process().Stderr();
  // While the source is behind: a new file, then newer entries in the old one.
  JournalBuilder b(dir_ / "journal/b.journal");
  ASSERT_EQ(b.AppendMessages("b-", 0, 10), "");
  ASSERT_EQ(a.AppendMessages("a-", 20000, 10), "");
  UnblockSink();
  ASSERT_TRUE(WaitFor([&] {
    auto out = BlockedOutput();
    return !out.empty() && out.back() == "a-20009";
  }, std::chrono::seconds(60))) << agent.process().Stderr();
  const auto out = BlockedOutput();
  const std::set<std::string> seen(out.begin(), out.end());
  for (const auto& m : Range("b-", 0, 10)) EXPECT_TRUE(seen.count(m)) << m << " lost";
  EXPECT_EQ(out.size(), 20020u);
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0) << agent.process().Stderr();
}

// sd-journal watches the directory it opened: one put in its place
// (removed and made again, renamed and replaced, a volume mounted over an
// empty mount point) was never seen, and nothing more was read until a
// restart, without a word.
TEST_F(JournaldBinaryTest, AJournalDirectoryReplacedWhileRunningIsReadFromItsReplacement) {
  ExpectAReplacementIsRead("journal", [&] {
    std::filesystem::rename(dir_ / "journal", dir_ / "journal.old");
    std::filesystem::create_directories(dir_ / "journal");
  }, "was replaced (made again, renamed or mounted over)");
}

// A directory removed and made again may get its old inode back (ext4
// reuses it at once), and a machine-id subdirectory (the layout of
// /var/log/journal) replaced leaves journal_directory itself as it was:
// found by the files sd-journal does not have open, at the next check of
// the directory (every 10 s). Its own watch of the parent directory may
// see the new subdirectory first (a CI run did, in 0.4 s): then there is
// nothing to reopen and nothing is said, so only the lines are checked.
TEST_F(JournaldBinaryTest, AJournalSubdirectoryRemovedAndMadeAgainIsReadAgain) {
  const std::string machine = "journal/0123456789abcdef0123456789abcdef";
  ExpectAReplacementIsRead(machine, [&] {
    std::filesystem::remove_all(dir_ / machine);
    std::filesystem::create_directories(dir_ / machine);
  }, "");
}

// Entries vacuumed before the source read them are gone (inherent), but the
// source can tell: its checkpointed entry is older than anything left in
// the journal. Before, the restart read on from the oldest entry left
// without a word, and nothing counted the loss.
TEST_F(JournaldBinaryTest, ACheckpointOlderThanTheWholeJournalIsReportedAsVacuumed) {
  JournalBuilder a(dir_ / "journal/a.journal");
  ASSERT_EQ(a.AppendMessages("a-", 0, 50), "");
  {
    Agent agent(dir_, Config());
    ASSERT_TRUE(WaitForLines(50)) << agent.process().Stderr();
    agent.process().Signal(SIGTERM);
    ASSERT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0) << agent.process().Stderr();
  }
  ASSERT_EQ(a.AppendMessages("a-", 50, 50), "");  // written while stopped, never read:
  JournalBuilder b(dir_ / "journal/b.journal");
  ASSERT_EQ(b.AppendMessages("b-", 0, 10), "");
  std::filesystem::remove(a.file());  // vacuumed
  Agent agent(dir_, Config());
  ASSERT_TRUE(WaitForLines(60)) << agent.process().Stderr();
  EXPECT_EQ(Output()[50], "b-0");
  EXPECT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_component_errors_total",
                        {{"component_id", "journal"}, {"error_type", "entries_vacuumed"}}) == 1;
  })) << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find("is no longer in the journal, whose oldest entry is of"), std::string::npos)
      << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0) << agent.process().Stderr();
}

TEST_F(JournaldBinaryTest, StopAtEndExitsAndTheNextRunContinues) {
  JournalBuilder b(dir_ / "journal/x.journal");
  ASSERT_EQ(b.AppendMessages("s", 0, 60), "");
  WriteFile(dir_ / "once.yaml", Config("    stop_at_end: true\n"));
  Process::Options o;
  o.argv = {TributaryBinary(), "-c", dir_ / "once.yaml"};
  {
    Process p(o);
    ASSERT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Stderr();
  }
  EXPECT_EQ(Output(), Range("s", 0, 60));
  ASSERT_EQ(b.AppendMessages("s", 60, 3), "");
  {
    Process p(o);
    ASSERT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Stderr();
  }
  EXPECT_EQ(Output(), Range("s", 0, 63));
}

// sd-journal keeps every journal file open and skips, without a word, those
// past the open files limit, leaving no descriptor for the checkpoint: the
// source then retried for ever, blaming the checkpoint file, also with
// stop_at_end.
TEST_F(JournaldBinaryTest, MoreJournalFilesThanTheOpenFilesLimitAllowsAreNamedAsTheCause) {
  JournalBuilder b(dir_ / "journal/x.journal");
  ASSERT_EQ(b.AppendMessages("s", 0, 20), "");
  for (int i = 0; i < 60; ++i)
    std::filesystem::copy_file(dir_ / "journal/x.journal", dir_ / ("journal/copy-" + std::to_string(i) + ".journal"));
  WriteFile(dir_ / "once.yaml", Config("    stop_at_end: true\n"));
  auto run_with_limit = [&](int files) {
    return Process::Options{{"/bin/sh", "-c", "ulimit -n " + std::to_string(files) + " && exec \"$0\" -c \"$1\"",
                             TributaryBinary(), dir_ / "once.yaml"},
                            {},
                            false};
  };
  Process low(run_with_limit(64));
  auto code = low.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "still running:\n" << low.Stderr();
  EXPECT_EQ(*code, 1) << low.Stderr();
  EXPECT_NE(low.Stderr().find("has 61 files, and sd-journal keeps each open, but the agent may open only "),
            std::string::npos)
      << low.Stderr();
  EXPECT_NE(low.Stderr().find("(open files limit 64, "), std::string::npos) << low.Stderr();
  Process enough(run_with_limit(256));
  ASSERT_EQ(enough.Wait(std::chrono::seconds(30)), 0) << enough.Stderr();
  EXPECT_GE(Output().size(), 20u);
}

// The backfill of the docs: journals of another machine (their boot ids are
// not this kernel's) in a journal_directory, current_boot_only left at its
// default, read to the end.
TEST_F(JournaldBinaryTest, ABackfillOfACopiedDirectoryWithDefaultsReadsEveryEntry) {
  JournalBuilder b(dir_ / "journal/x.journal");
  ASSERT_EQ(b.AppendMessages("copied-", 0, 20), "");
  std::string config = Config("    stop_at_end: true\n");
  const std::string boot_line = "    current_boot_only: false\n";
  ASSERT_NE(config.find(boot_line), std::string::npos);
  config.erase(config.find(boot_line), boot_line.size());
  WriteFile(dir_ / "once.yaml", config);
  Process p({{TributaryBinary(), "-c", dir_ / "once.yaml"}, {}, false});
  ASSERT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Stderr();
  EXPECT_EQ(Output(), Range("copied-", 0, 20));
}

// A journal directory that is not there: a one-shot run ends with the
// error (exit 1, as when any source ends with one) instead of waiting for
// it forever; a following run waits for it, logging the wait once.
TEST_F(JournaldBinaryTest, AMissingJournalDirectoryEndsAStopAtEndRunWithTheError) {
  const std::string missing = dir_ / "missing";
  std::string config = Config("    stop_at_end: true\n");
  config.replace(config.find(dir_ / "journal"), (dir_ / "journal").size(), missing);
  WriteFile(dir_ / "once.yaml", config);
  Process p({{TributaryBinary(), "-c", dir_ / "once.yaml"}, {}, false});
  auto code = p.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "still running:\n" << p.Stderr();
  EXPECT_EQ(*code, 1) << p.Stderr();
  EXPECT_NE(p.Stderr().find("all sources finished, source journal: I/O error: cannot open the journal in " + missing +
                            ": No such file or directory; with stop_at_end the source ends instead of waiting for it"),
            std::string::npos)
      << p.Stderr();
}

TEST_F(JournaldBinaryTest, AMissingJournalDirectoryIsWaitedForAndLoggedOnce) {
  const std::string later = dir_ / "later";
  std::string config = Config();
  config.replace(config.find(dir_ / "journal"), (dir_ / "journal").size(), later);
  Agent agent(dir_, config);
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  // Five attempts within the first second (the retry backs off from 50 ms).
  ASSERT_TRUE(WaitFor([&] {
    auto errors = agent.Metric("tributary_component_errors_total",
                               {{"component_id", "journal"}, {"error_type", "read_failed"}});
    return errors.has_value() && *errors >= 5;
  })) << agent.process().Stderr();
  const std::string err = agent.process().Stderr();
  size_t lines = 0;
  for (size_t pos = 0; (pos = err.find("cannot open the journal in " + later, pos)) != std::string::npos; ++pos) ++lines;
  EXPECT_EQ(lines, 1u) << err;
  EXPECT_NE(err.find("retrying until it opens (this is logged at most once a minute)"), std::string::npos) << err;
  {
    // Made elsewhere and moved into place whole, as a volume is mounted.
    std::filesystem::create_directories(dir_ / "staging");
    JournalBuilder b(dir_ / "staging/x.journal");
    ASSERT_EQ(b.AppendMessages("w", 0, 3), "");
  }
  std::filesystem::rename(dir_ / "staging", later);
  ASSERT_TRUE(WaitForLines(3)) << agent.process().Stderr();
  EXPECT_EQ(Output(), Range("w", 0, 3));
}

// An empty cursor file (never written so by the agent, which renames a
// whole file into place) is reported, not taken silently as "no
// checkpoint" while the whole journal is read again.
TEST_F(JournaldBinaryTest, AnEmptyCheckpointIsReported) {
  JournalBuilder b(dir_ / "journal/x.journal");
  ASSERT_EQ(b.AppendMessages("e", 0, 5), "");
  WriteFile(dir_ / "once.yaml", Config("    stop_at_end: true\n"));
  std::filesystem::create_directories(dir_ / "data/journald/journal");
  WriteFile(dir_ / "data/journald/journal/cursor", "");
  Process p({{TributaryBinary(), "-c", dir_ / "once.yaml"}, {}, false});
  ASSERT_EQ(p.Wait(std::chrono::seconds(30)), 0) << p.Stderr();
  EXPECT_NE(p.Stderr().find("data/journald/journal/cursor is empty; starting as if there were none"), std::string::npos)
      << p.Stderr();
}

TEST_F(JournaldBinaryTest, ValidateChecksTheJournalDirectory) {
  WriteFile(dir_ / "t.yaml", Config());
  Process::Options o;
  o.argv = {TributaryBinary(), "validate", "-c", dir_ / "t.yaml"};
  {
    Process p(o);
    EXPECT_EQ(p.Wait(std::chrono::seconds(20)), 78) << "an empty journal directory must fail validation";
    EXPECT_NE(p.Stdout().find("journal: journal directory"), std::string::npos) << p.Stdout();
  }
  JournalBuilder b(dir_ / "journal/x.journal");
  ASSERT_EQ(b.AppendMessages("v", 0, 1), "");
  Process p(o);
  EXPECT_EQ(p.Wait(std::chrono::seconds(20)), 0) << p.Stdout() << p.Stderr();
}

// ---- A real systemd-journald ------------------------------------------------

// systemd-journald run as root in its own mount namespace, with tmpfs on
// /run (and on /var/log/journal, so nothing reaches the host's journal).
// Clients run inside the namespace through nsenter.
class PrivateJournald {
 public:
  static std::string Unavailable() {
    if (::geteuid() != 0) return "needs root to mount tmpfs in a private mount namespace";
    if (::access("/lib/systemd/systemd-journald", X_OK) != 0) return "systemd-journald is not installed";
    Process::Options o;
    o.argv = {"unshare", "-m", "--propagation", "private", "true"};
    Process p(o);
    auto rc = p.Wait(std::chrono::seconds(10));
    if (rc != 0) return "unshare -m is not permitted here: " + p.Stderr();
    return "";
  }

  explicit PrivateJournald(const TempDir& dir) {
    std::string script = dir / "journald.sh";
    WriteFile(script,
              "set -e\n"
              "mount -t tmpfs tmpfs /run\n"
              "if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi\n"
              "exec /lib/systemd/systemd-journald\n");
    Process::Options o;
    o.argv = {"unshare", "-m", "--propagation", "private", "sh", script};
    process_ = std::make_unique<Process>(o);
  }

  int pid() const { return process_->pid(); }
  Process& process() { return *process_; }

  // Runs a shell command inside the namespace; its exit code.
  int Run(const std::string& command, std::string* out = nullptr) {
    Process::Options o;
    o.argv = {"nsenter", "-t", std::to_string(pid()), "-m", "sh", "-c", command};
    Process p(o);
    auto rc = p.Wait(std::chrono::seconds(30));
    if (out) *out = p.Stdout() + p.Stderr();
    return rc.value_or(-1);
  }
  bool WaitReady() {
    return WaitFor([&] { return Run("test -S /run/systemd/journal/stdout && ls /run/log/journal/*/system.journal") == 0; });
  }
  // Logs lines "<prefix><i>" as separate entries from one stream.
  int Log(const std::string& prefix, int first, int n) {
    return Run("seq -f '" + prefix + "%.0f' " + std::to_string(first) + " " + std::to_string(first + n - 1) +
               " | systemd-cat -t tributary-test");
  }
  int ArchivedFiles() {
    std::string out;
    Run("ls /run/log/journal/*/ | grep -c '^system@' || true", &out);
    return std::atoi(out.c_str());
  }

 private:
  std::unique_ptr<Process> process_;
};

TEST(JournaldLiveTest, FollowsARealJournaldThroughRotationAndVacuum) {
  std::string why = PrivateJournald::Unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  PrivateJournald journald(dir);
  ASSERT_TRUE(journald.WaitReady()) << journald.process().Stderr();

  std::string config = "data_dir: " + (dir / "data") + "\n" +
                       "api: { address: 127.0.0.1:0 }\n"  // not the default port another agent may hold
                       "sources:\n"
                       "  journal:\n"
                       "    type: journald\n"  // the system journal: /run/log/journal in the namespace
                       "    include_matches: { SYSLOG_IDENTIFIER: [tributary-test] }\n"
                       "    checkpoint_interval_ms: 100\n"
                       "sinks:\n"
                       "  out:\n"
                       "    type: file\n"
                       "    inputs: [journal]\n"
                       "    path: " + (dir / "out.log") + "\n"
                       "    encoding: { codec: json }\n";
  WriteFile(dir / "tributary.yaml", config);
  auto start_agent = [&] {
    Process::Options o;
    o.argv = {"nsenter", "-t", std::to_string(journald.pid()), "-m", TributaryBinary(), "run", "-c",
              dir / "tributary.yaml"};
    return std::make_unique<Process>(o);
  };
  auto messages = [&] {
    std::vector<std::string> out;
    for (const auto& line : ReadLines(dir / "out.log")) {
      // {"message":"live-N",...}: the events are JSON; pick the message.
      auto p = line.find("\"message\":\"");
      if (p == std::string::npos) continue;
      p += 11;
      out.push_back(line.substr(p, line.find('"', p) - p));
    }
    return out;
  };
  auto wait_messages = [&](size_t n, Process& agent) {
    bool ok = WaitFor([&] { return messages().size() >= n; }, std::chrono::seconds(30));
    EXPECT_TRUE(ok) << "have " << messages().size() << " of " << n << "\n" << agent.Stderr();
    return ok;
  };

  auto agent = start_agent();
  ASSERT_EQ(journald.Log("live-", 0, 100), 0);
  ASSERT_TRUE(wait_messages(100, *agent));

  // Rotation while following: the active file is archived and a new one
  // started; entries on both sides of it arrive once.
  ::kill(journald.pid(), SIGUSR2);
  ASSERT_TRUE(WaitFor([&] { return journald.ArchivedFiles() >= 1; }));
  ASSERT_EQ(journald.Log("live-", 100, 100), 0);
  ASSERT_TRUE(wait_messages(200, *agent));

  // Vacuum: the archived file is deleted under the reader.
  ::kill(journald.pid(), SIGUSR2);
  ASSERT_TRUE(WaitFor([&] { return journald.ArchivedFiles() >= 2; }));
  std::string out;
  ASSERT_EQ(journald.Run("journalctl --vacuum-files=1 -D /run/log/journal/*/", &out), 0) << out;
  ASSERT_LT(journald.ArchivedFiles(), 2) << out;
  ASSERT_EQ(journald.Log("live-", 200, 100), 0);
  ASSERT_TRUE(wait_messages(300, *agent));

  // Restart: resumes after the checkpoint.
  agent->Signal(SIGTERM);
  ASSERT_EQ(agent->Wait(std::chrono::seconds(20)), 0) << agent->Stderr();
  ASSERT_EQ(journald.Log("live-", 300, 50), 0);
  agent = start_agent();
  ASSERT_TRUE(wait_messages(350, *agent));
  agent->Signal(SIGTERM);
  ASSERT_EQ(agent->Wait(std::chrono::seconds(20)), 0) << agent->Stderr();
  EXPECT_EQ(messages(), Range("live-", 0, 350));

  // The events carry journald's own fields.
  auto lines = ReadLines(dir / "out.log");
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("\"source_type\":\"journald\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"SYSLOG_IDENTIFIER\":\"tributary-test\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"_TRANSPORT\":\"stdout\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"host\":"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace tributary::testing
