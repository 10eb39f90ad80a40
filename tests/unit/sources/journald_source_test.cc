// The journald source against real journal files written by
// systemd-journal-remote (tests/support/journal_builder.h), run in-process
// with a context that records batches and lets the test acknowledge them.

#include "sources/journald_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "agent/metrics.h"
#include "tests/support/journal_builder.h"
#include "tests/support/test_util.h"

namespace tributary {
namespace {

using testing::JournalBuilder;
using testing::JournalEntry;
using testing::TempDir;
using testing::WaitFor;

// ---- Tracker and encoding --------------------------------------------------

TEST(JournalCursorTrackerTest, CommitsOnlyTheHighestContiguousAcknowledgedBatch) {
  JournalCursorTracker t;
  uint64_t a = t.Add("a"), b = t.Add("b"), c = t.Add("c"), d = t.Add("d");
  EXPECT_EQ(t.committed(), "");
  t.Ack(c, BatchStatus::kDelivered);
  EXPECT_EQ(t.committed(), "");  // a and b still pending
  t.Ack(a, BatchStatus::kDelivered);
  EXPECT_EQ(t.committed(), "a");
  t.Ack(b, BatchStatus::kRejected);  // rejected data is done with too
  EXPECT_EQ(t.committed(), "c");
  EXPECT_EQ(t.pending(), 1u);
  t.Ack(d, BatchStatus::kDelivered);
  EXPECT_EQ(t.committed(), "d");
  EXPECT_EQ(t.pending(), 0u);
}

TEST(JournalCursorTrackerTest, AFailedBatchHoldsTheCommitPoint) {
  JournalCursorTracker t;
  uint64_t a = t.Add("a"), b = t.Add("b"), c = t.Add("c");
  t.Ack(a, BatchStatus::kDelivered);
  t.Ack(b, BatchStatus::kFailed);
  t.Ack(c, BatchStatus::kDelivered);
  EXPECT_EQ(t.committed(), "a");
}

TEST(JournaldEncodingTest, PrintableValues) {
  EXPECT_TRUE(IsPrintableJournalValue("plain text"));
  EXPECT_TRUE(IsPrintableJournalValue("tab\tand\nnewline"));
  EXPECT_TRUE(IsPrintableJournalValue("grüße ✓"));
  EXPECT_TRUE(IsPrintableJournalValue(""));
  EXPECT_FALSE(IsPrintableJournalValue(std::string("nul\0byte", 8)));
  EXPECT_FALSE(IsPrintableJournalValue("\x1b[31mred\x1b[0m"));
  EXPECT_FALSE(IsPrintableJournalValue("carriage\r"));
  EXPECT_FALSE(IsPrintableJournalValue("del\x7f"));
  EXPECT_FALSE(IsPrintableJournalValue("bad \xff utf8"));
  EXPECT_FALSE(IsPrintableJournalValue("truncated \xc3"));
  EXPECT_FALSE(IsPrintableJournalValue("c1 \xc2\x85 control"));
}

TEST(JournaldEncodingTest, Base64) {
  auto b64 = [](std::string_view s) {
    std::string out;
    AppendBase64(s, &out);
    return out;
  };
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(b64(std::string("\x00\xff\n", 3)), "AP8K");
}

TEST(JournaldUnitNameTest, AddsServiceSuffix) {
  EXPECT_EQ(JournaldSource::NormalizeUnitName("nginx"), "nginx.service");
  EXPECT_EQ(JournaldSource::NormalizeUnitName("nginx.service"), "nginx.service");
  EXPECT_EQ(JournaldSource::NormalizeUnitName("sshd.socket"), "sshd.socket");
  EXPECT_EQ(JournaldSource::NormalizeUnitName("user@1000.service"), "user@1000.service");
  EXPECT_EQ(JournaldSource::NormalizeUnitName("foo.bar"), "foo.bar.service");
}

// ---- Reading real journal files ----------------------------------------------

// Records batches; finalizers are held until Acknowledge() (or destruction).
class RecordingContext final : public SourceContext {
 public:
  explicit RecordingContext(ComponentMetrics* metrics) : metrics_(metrics) {}

  bool Send(Batch batch) override {
    metrics_->received_events().Increment(static_cast<double>(batch.size()));
    metrics_->received_bytes().Increment(static_cast<double>(batch.bytes()));
    std::lock_guard lock(mu_);
    for (const auto& e : batch.events()) events_.push_back(e);
    bytes_ += batch.bytes();
    held_.push_back(std::move(batch));
    return true;
  }
  std::stop_token stop_token() const override { return stop_.get_token(); }
  ComponentMetrics& metrics() override { return *metrics_; }

  void RequestStop() { stop_.request_stop(); }
  size_t size() {
    std::lock_guard lock(mu_);
    return events_.size();
  }
  std::vector<Event> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<std::string> messages() {
    std::vector<std::string> out;
    for (const auto& e : events()) {
      const Value* m = e.get("message");
      out.push_back(m && m->is_string() ? m->as_string() : "<none>");
    }
    return out;
  }
  size_t bytes() {
    std::lock_guard lock(mu_);
    return bytes_;
  }
  // Acknowledges every batch held so far with `status`.
  void Acknowledge(BatchStatus status = BatchStatus::kDelivered) {
    std::vector<Batch> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& b : held) b.Finalize(status);
  }

 private:
  ComponentMetrics* metrics_;
  std::stop_source stop_;
  std::mutex mu_;
  std::vector<Event> events_;
  std::vector<Batch> held_;
  size_t bytes_ = 0;
};

// One source instance running on its own thread, as the topology runs it.
class RunningSource {
 public:
  RunningSource(const JournaldSource::Config& config, const std::string& data_dir,
                JournaldSource::NextFunction next = nullptr)
      : metrics_registry_(), metrics_(metrics_registry_.ForComponent("journal", ComponentKind::kSource, "journald")),
        ctx_(metrics_.get()) {
    BuildContext b{"journal", data_dir, "testhost", metrics_.get()};
    auto built = JournaldSource::Build(config, b);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    source_ = std::move(built.value());
    if (next) static_cast<JournaldSource*>(source_.get())->SetNextFunctionForTesting(next);
    thread_ = std::thread([this] {
      status_ = source_->Run(ctx_);
      ended_ = true;
    });
  }
  ~RunningSource() { Stop(); }

  // Waits for Run to return by itself (stop_at_end), then acknowledges
  // everything and writes the final checkpoint; Run's status, or an error
  // if it still runs after `timeout` (it is then stopped).
  Status Ended(std::chrono::milliseconds timeout) {
    if (!WaitFor([&] { return ended_.load(); }, timeout)) {
      Stop();
      return Status::Internal("the source was still running after " + std::to_string(timeout.count()) + " ms");
    }
    thread_.join();
    ctx_.Acknowledge();
    source_->Finish();
    return status_;
  }

  // Stops the thread, acknowledges everything, and writes the final
  // checkpoint, as a clean shutdown does.
  void Stop(bool acknowledge = true) {
    if (!thread_.joinable()) return;
    ctx_.RequestStop();
    thread_.join();
    EXPECT_TRUE(status_.ok()) << status_.ToString();
    if (acknowledge) ctx_.Acknowledge();
    source_->Finish();
  }
  RecordingContext& ctx() { return ctx_; }
  Metrics& registry() { return metrics_registry_; }
  bool WaitForEvents(size_t n) {
    return WaitFor([&] { return ctx_.size() >= n; }, std::chrono::seconds(20));
  }

 private:
  Metrics metrics_registry_;
  std::unique_ptr<ComponentMetrics> metrics_;
  RecordingContext ctx_;
  std::unique_ptr<Source> source_;
  std::thread thread_;
  Status status_;
  std::atomic<bool> ended_{false};
};

class JournaldSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::JournalRemoteBinary().empty()) GTEST_SKIP() << "systemd-journal-remote is not installed";
    std::filesystem::create_directories(journal_dir());
    std::filesystem::create_directories(data_dir());
    config_.journal_directory = journal_dir();
    config_.current_boot_only = false;  // the builder's entries carry a made-up boot id
  }
  std::string journal_dir() const { return tmp_ / "journal"; }
  std::string data_dir() const { return tmp_ / "data"; }
  std::string cursor_file() const { return data_dir() + "/journald/journal/cursor"; }

  // Reads everything there is (expecting exactly `n` events) and stops.
  std::vector<Event> ReadAll(size_t n) {
    RunningSource s(config_, data_dir());
    EXPECT_TRUE(s.WaitForEvents(n)) << "got " << s.ctx().size() << " of " << n;
    s.Stop();
    auto events = s.ctx().events();
    EXPECT_EQ(events.size(), n);
    return events;
  }
  static std::vector<std::string> Messages(const std::vector<Event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.get("message") ? e.get("message")->to_text() : "<none>");
    return out;
  }
  static std::vector<std::string> Range(const std::string& prefix, int first, int n) {
    std::vector<std::string> out;
    for (int i = first; i < first + n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
  }

  TempDir tmp_;
  JournaldSource::Config config_;
};

TEST_F(JournaldSourceTest, MapsWellKnownFieldsAndKeepsTheRest) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.Append({JournalEntry{{"__REALTIME_TIMESTAMP", "1700000000123456"},
                                   {"MESSAGE", "hello world"},
                                   {"_HOSTNAME", "web-1"},
                                   {"PRIORITY", "6"},
                                   {"_SYSTEMD_UNIT", "nginx.service"},
                                   {"TAG", "one"},
                                   {"TAG", "two"}},
                      JournalEntry{{"CODE_FILE", "main.c"}}}),
            "");
  auto events = ReadAll(2);
  ASSERT_EQ(events.size(), 2u);
  const Event& e = events[0];
  EXPECT_EQ(e.get("message")->as_string(), "hello world");
  EXPECT_EQ(e.get("host")->as_string(), "web-1");
  EXPECT_EQ(e.get("source_type")->as_string(), "journald");
  ASSERT_TRUE(e.get("timestamp")->is_timestamp());
  EXPECT_EQ(FormatRfc3339(e.get("timestamp")->as_timestamp()), "2023-11-14T22:13:20.123456000Z");
  EXPECT_EQ(e.get("PRIORITY")->as_string(), "6");
  EXPECT_EQ(e.get("_SYSTEMD_UNIT")->as_string(), "nginx.service");
  EXPECT_EQ(e.get("_BOOT_ID")->as_string(), JournalBuilder::BootId());
  EXPECT_EQ(e.get("MESSAGE"), nullptr);
  EXPECT_EQ(e.get("_HOSTNAME"), nullptr);
  EXPECT_EQ(e.get("binary_fields"), nullptr);
  // Repeated fields keep every value. sd-journal enumerates an entry's
  // data objects in its own order, so compare as a set.
  ASSERT_TRUE(e.get("TAG")->is_array());
  std::vector<std::string> tags;
  for (const auto& v : e.get("TAG")->as_array()) tags.push_back(v.as_string());
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{"one", "two"}));
  // No MESSAGE, no _HOSTNAME: no message, no host.
  EXPECT_EQ(events[1].get("message"), nullptr);
  EXPECT_EQ(events[1].get("host"), nullptr);
  EXPECT_EQ(events[1].get("CODE_FILE")->as_string(), "main.c");
}

// The time the client logged the entry, when it gave one, as journalctl
// and Vector show it; else the time journald received it.
TEST_F(JournaldSourceTest, TimestampIsTheSourceRealtimeWhenTheEntryHasOne) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.Append({JournalEntry{{"__REALTIME_TIMESTAMP", "1700000000123456"},
                                   {"_SOURCE_REALTIME_TIMESTAMP", "1600000000654321"},
                                   {"MESSAGE", "with source time"}},
                      JournalEntry{{"__REALTIME_TIMESTAMP", "1700000001000000"},
                                   {"_SOURCE_REALTIME_TIMESTAMP", "not a number"},
                                   {"MESSAGE", "invalid source time"}},
                      JournalEntry{{"__REALTIME_TIMESTAMP", "1700000002000000"}, {"MESSAGE", "received only"}}}),
            "");
  auto events = ReadAll(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(FormatRfc3339(events[0].get("timestamp")->as_timestamp()), "2020-09-13T12:26:40.654321000Z");
  EXPECT_EQ(events[0].get("_SOURCE_REALTIME_TIMESTAMP")->as_string(), "1600000000654321");
  EXPECT_EQ(FormatRfc3339(events[1].get("timestamp")->as_timestamp()), "2023-11-14T22:13:21.000000000Z");
  EXPECT_EQ(FormatRfc3339(events[2].get("timestamp")->as_timestamp()), "2023-11-14T22:13:22.000000000Z");
}

TEST_F(JournaldSourceTest, BinaryFieldsAreBase64AndListed) {
  JournalBuilder b(journal_dir() + "/x.journal");
  std::string blob("\x00\x01" "bin\nary\xff", 10);
  ASSERT_EQ(b.Append({JournalEntry{{"MESSAGE", "\x1b[31mred alert\x1b[0m"},
                                   {"BLOB", blob},
                                   {"TEXT", "multi\nline ok"},
                                   {"LATIN1", "caf\xe9"}}}),
            "");
  auto events = ReadAll(1);
  ASSERT_EQ(events.size(), 1u);
  const Event& e = events[0];
  std::string want_msg, want_blob, want_latin1;
  AppendBase64("\x1b[31mred alert\x1b[0m", &want_msg);
  AppendBase64(blob, &want_blob);
  AppendBase64("caf\xe9", &want_latin1);
  EXPECT_EQ(e.get("message")->as_string(), want_msg);
  EXPECT_EQ(e.get("BLOB")->as_string(), want_blob);
  EXPECT_EQ(e.get("BLOB")->as_string(), "AAFiaW4KYXJ5/w==");
  EXPECT_EQ(e.get("LATIN1")->as_string(), want_latin1);
  EXPECT_EQ(e.get("TEXT")->as_string(), "multi\nline ok");
  ASSERT_TRUE(e.get("binary_fields") && e.get("binary_fields")->is_array());
  std::vector<std::string> names;
  for (const auto& v : e.get("binary_fields")->as_array()) names.push_back(v.as_string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"BLOB", "LATIN1", "message"}));
}

// Entries of several units, some logged by the unit itself, some by PID 1
// or a root daemon about it, as journalctl -u considers them.
void WriteUnitEntries(JournalBuilder& b) {
  ASSERT_EQ(b.Append({
                JournalEntry{{"MESSAGE", "a-own"}, {"_SYSTEMD_UNIT", "a.service"}, {"_PID", "100"}},
                JournalEntry{{"MESSAGE", "b-own"}, {"_SYSTEMD_UNIT", "b.service"}, {"_PID", "200"}},
                JournalEntry{{"MESSAGE", "pid1-about-a"}, {"_PID", "1"}, {"UNIT", "a.service"},
                             {"_SYSTEMD_UNIT", "init.scope"}},
                JournalEntry{{"MESSAGE", "pid7-about-a"}, {"_PID", "7"}, {"UNIT", "a.service"}},
                JournalEntry{{"MESSAGE", "root-about-b"}, {"_UID", "0"}, {"OBJECT_SYSTEMD_UNIT", "b.service"}},
                JournalEntry{{"MESSAGE", "a-core"}, {"MESSAGE_ID", "fc2e22bc6ee647b6b90729ab34a250b1"},
                             {"_UID", "0"}, {"COREDUMP_UNIT", "a.service"}},
                JournalEntry{{"MESSAGE", "c-own"}, {"_SYSTEMD_UNIT", "c.socket"}},
                JournalEntry{{"MESSAGE", "kernel"}, {"_TRANSPORT", "kernel"}},
            }),
            "");
}

TEST_F(JournaldSourceTest, IncludeUnitsMatchesLikeJournalctl) {
  JournalBuilder b(journal_dir() + "/x.journal");
  WriteUnitEntries(b);
  config_.include_units = {"a"};  // -> a.service
  EXPECT_EQ(Messages(ReadAll(3)), (std::vector<std::string>{"a-own", "pid1-about-a", "a-core"}));
}

TEST_F(JournaldSourceTest, IncludeSeveralUnits) {
  JournalBuilder b(journal_dir() + "/x.journal");
  WriteUnitEntries(b);
  config_.include_units = {"b.service", "c.socket"};
  EXPECT_EQ(Messages(ReadAll(3)), (std::vector<std::string>{"b-own", "root-about-b", "c-own"}));
}

TEST_F(JournaldSourceTest, ExcludeUnits) {
  JournalBuilder b(journal_dir() + "/x.journal");
  WriteUnitEntries(b);
  config_.exclude_units = {"a"};
  EXPECT_EQ(Messages(ReadAll(5)),
            (std::vector<std::string>{"b-own", "pid7-about-a", "root-about-b", "c-own", "kernel"}));
}

// journalctl -u X.slice also shows every process in the slice
// (_SYSTEMD_SLICE=X.slice); exclude_units drops the same entries.
TEST_F(JournaldSourceTest, UnitsThatAreSlicesMatchTheirProcesses) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.Append({
                JournalEntry{{"MESSAGE", "in-slice"}, {"_SYSTEMD_UNIT", "foo@1.service"},
                             {"_SYSTEMD_SLICE", "system-foo.slice"}},
                JournalEntry{{"MESSAGE", "pid1-about-slice"}, {"_PID", "1"}, {"UNIT", "system-foo.slice"},
                             {"_SYSTEMD_UNIT", "init.scope"}, {"_SYSTEMD_SLICE", "-.slice"}},
                JournalEntry{{"MESSAGE", "other-slice"}, {"_SYSTEMD_UNIT", "bar.service"},
                             {"_SYSTEMD_SLICE", "system.slice"}},
            }),
            "");
  config_.include_units = {"system-foo.slice"};
  EXPECT_EQ(Messages(ReadAll(2)), (std::vector<std::string>{"in-slice", "pid1-about-slice"}));
  std::filesystem::remove_all(data_dir());
  config_.include_units = {};
  config_.exclude_units = {"system-foo.slice"};
  EXPECT_EQ(Messages(ReadAll(1)), (std::vector<std::string>{"other-slice"}));
}

// received_bytes counts what received_events counts: an entry dropped by
// exclude_matches adds neither, in a batch with others or alone.
TEST_F(JournaldSourceTest, ExcludedEntriesAddNoReceivedBytes) {
  JournalBuilder b(journal_dir() + "/x.journal");
  std::vector<JournalEntry> entries;
  for (int i = 0; i < 12; ++i) {
    bool cron = i % 3 == 0 || i >= 9;  // the last batch is excluded whole
    entries.push_back(JournalEntry{{"MESSAGE", "m" + std::to_string(i)},
                                   {"SYSLOG_IDENTIFIER", cron ? "CRON" : "app"}});
  }
  ASSERT_EQ(b.Append(entries), "");
  config_.batch_size = 3;
  auto read_bytes = [&](size_t n) {
    std::filesystem::remove_all(data_dir());
    RunningSource s(config_, data_dir());
    EXPECT_TRUE(s.WaitForEvents(n));
    s.Stop();
    EXPECT_EQ(s.ctx().size(), n);
    return s.ctx().bytes();
  };
  // The same six entries, selected by sd-journal's index or by exclusion.
  config_.include_matches = {{"SYSLOG_IDENTIFIER", {"app"}}};
  size_t included = read_bytes(6);
  config_.include_matches = {};
  config_.exclude_matches = {{"SYSLOG_IDENTIFIER", {"CRON"}}};
  size_t excluded = read_bytes(6);
  EXPECT_GT(included, 6 * std::string("MESSAGE=m1").size());
  EXPECT_EQ(excluded, included);
}

TEST_F(JournaldSourceTest, IncludeMatchesAnyPairAndAndWithUnits) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.Append({
                JournalEntry{{"MESSAGE", "m1"}, {"PRIORITY", "3"}, {"_SYSTEMD_UNIT", "a.service"}},
                JournalEntry{{"MESSAGE", "m2"}, {"PRIORITY", "6"}, {"_SYSTEMD_UNIT", "a.service"}},
                JournalEntry{{"MESSAGE", "m3"}, {"PRIORITY", "4"}, {"_SYSTEMD_UNIT", "b.service"}},
                JournalEntry{{"MESSAGE", "m4"}, {"PRIORITY", "6"}, {"SYSLOG_IDENTIFIER", "cron"}},
                JournalEntry{{"MESSAGE", "m5"}, {"PRIORITY", "7"}},
            }),
            "");
  config_.include_matches = {{"PRIORITY", {"3", "4"}}, {"SYSLOG_IDENTIFIER", {"cron"}}};
  EXPECT_EQ(Messages(ReadAll(3)), (std::vector<std::string>{"m1", "m3", "m4"}));

  // Units AND matches.
  std::filesystem::remove_all(data_dir());
  config_.include_units = {"a.service"};
  EXPECT_EQ(Messages(ReadAll(1)), (std::vector<std::string>{"m1"}));

  // exclude_matches drops what any pair matches.
  std::filesystem::remove_all(data_dir());
  config_.include_units = {};
  config_.include_matches = {};
  config_.exclude_matches = {{"PRIORITY", {"6"}}, {"MESSAGE", {"m5"}}};
  EXPECT_EQ(Messages(ReadAll(2)), (std::vector<std::string>{"m1", "m3"}));
}

std::string RunningBootId() {
  std::string boot = testing::ReadFile("/proc/sys/kernel/random/boot_id");
  boot.erase(std::remove_if(boot.begin(), boot.end(), [](char c) { return c == '-' || c == '\n'; }), boot.end());
  EXPECT_EQ(boot.size(), 32u);
  return boot;
}

TEST_F(JournaldSourceTest, CurrentBootOnly) {
  std::string boot = RunningBootId();
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.Append({JournalEntry{{"MESSAGE", "old boot"}},
                      JournalEntry{{"_BOOT_ID", boot}, {"MESSAGE", "this boot"}}}),
            "");
  config_.current_boot_only = true;
  EXPECT_EQ(Messages(ReadAll(1)), (std::vector<std::string>{"this boot"}));
}

// current_boot_only decides where a first start begins, nothing more: what
// follows the boot's first entry is read whatever its boot (entries of
// other machines' journals, or a next boot seen without a restart).
TEST_F(JournaldSourceTest, CurrentBootOnlyStartsAtTheBootAndThenReadsEverything) {
  std::string boot = RunningBootId();
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.Append({JournalEntry{{"MESSAGE", "old boot"}},
                      JournalEntry{{"_BOOT_ID", boot}, {"MESSAGE", "this boot"}}}),
            "");
  config_.current_boot_only = true;
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(1));
  ASSERT_EQ(b.AppendMessages("other-", 0, 3), "");  // the builder's made-up boot id
  ASSERT_TRUE(s.WaitForEvents(4)) << s.ctx().size();
  s.Stop();
  EXPECT_EQ(s.ctx().messages(), (std::vector<std::string>{"this boot", "other-0", "other-1", "other-2"}));
}

// After a reboot the checkpoint points into the previous boot: the rest of
// that boot (its shutdown messages, always) is read before the new boot's,
// with the default current_boot_only: true.
TEST_F(JournaldSourceTest, ACheckpointInAnEarlierBootResumesThereDespiteCurrentBootOnly) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("prev-", 0, 3), "");  // the builder's made-up boot id
  ReadAll(3);
  ASSERT_TRUE(std::filesystem::exists(cursor_file()));
  ASSERT_EQ(b.AppendMessages("prev-", 3, 7), "");
  std::vector<JournalEntry> cur;
  for (int i = 0; i < 3; ++i)
    cur.push_back(JournalEntry{{"_BOOT_ID", RunningBootId()}, {"MESSAGE", "cur-" + std::to_string(i)}});
  ASSERT_EQ(b.Append(cur), "");
  config_.current_boot_only = true;
  auto want = Range("prev-", 3, 7);
  for (auto& m : Range("cur-", 0, 3)) want.push_back(m);
  EXPECT_EQ(Messages(ReadAll(10)), want);
}

// A journal directory holds journals copied or collected from other boots
// and machines: by default a backfill of it reads every entry.
TEST_F(JournaldSourceTest, CurrentBootOnlyDefaultsToFalseWithAJournalDirectory) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("copied-", 0, 5), "");  // the builder's made-up boot id
  config_.current_boot_only.reset();
  config_.stop_at_end = true;
  EXPECT_EQ(Messages(ReadAll(5)), Range("copied-", 0, 5));
}

TEST_F(JournaldSourceTest, FollowsAppendedEntries) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("first-", 0, 5), "");
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(5));
  ASSERT_EQ(b.AppendMessages("second-", 0, 300), "");
  ASSERT_TRUE(s.WaitForEvents(305)) << s.ctx().size();
  // A new file in the directory is picked up too (rotation).
  ASSERT_EQ(JournalBuilder(journal_dir() + "/y.journal").AppendMessages("third-", 0, 7), "");
  ASSERT_TRUE(s.WaitForEvents(312)) << s.ctx().size();
  s.Stop();
  auto want = Range("first-", 0, 5);
  for (auto& m : Range("second-", 0, 300)) want.push_back(m);
  for (auto& m : Range("third-", 0, 7)) want.push_back(m);
  EXPECT_EQ(s.ctx().messages(), want);
  // received bytes = the sum of the entries' field data ("NAME=value").
  EXPECT_GT(s.ctx().bytes(), 312u * std::string("MESSAGE=first-0").size());
  auto text = s.registry().Serialize();
  EXPECT_EQ(testing::MetricValue(text, "tributary_component_received_events_total", {{"component_id", "journal"}}),
            312.0);
}

TEST_F(JournaldSourceTest, CheckpointOnlyAfterAcknowledgementAndResumeExactlyAfterIt) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("m", 0, 10), "");
  config_.checkpoint_interval_ms.ms = 0;
  {
    // Never acknowledged by the time Finish() runs: no checkpoint.
    RunningSource s(config_, data_dir());
    ASSERT_TRUE(s.WaitForEvents(10));
    s.Stop(/*acknowledge=*/false);
    EXPECT_FALSE(std::filesystem::exists(cursor_file())) << "checkpoint written without an acknowledgement";
  }
  {
    RunningSource s(config_, data_dir());
    ASSERT_TRUE(s.WaitForEvents(10));
    s.ctx().Acknowledge(BatchStatus::kFailed);
    s.Stop(/*acknowledge=*/false);
    EXPECT_FALSE(std::filesystem::exists(cursor_file())) << "checkpoint written without an acknowledgement";
  }
  {
    // Nothing was committed: everything again, then acknowledged.
    RunningSource s(config_, data_dir());
    ASSERT_TRUE(s.WaitForEvents(10));
    s.Stop();
    EXPECT_EQ(s.ctx().messages(), Range("m", 0, 10));
    EXPECT_TRUE(std::filesystem::exists(cursor_file()));
  }
  ASSERT_EQ(b.AppendMessages("m", 10, 5), "");
  {
    RunningSource s(config_, data_dir());
    ASSERT_TRUE(s.WaitForEvents(5));
    s.Stop();
    EXPECT_EQ(s.ctx().messages(), Range("m", 10, 5));
  }
  {
    // Nothing new: nothing read.
    RunningSource s(config_, data_dir());
    ASSERT_EQ(b.AppendMessages("m", 15, 1), "");
    ASSERT_TRUE(s.WaitForEvents(1));
    s.Stop();
    EXPECT_EQ(s.ctx().messages(), Range("m", 15, 1));
  }
}

TEST_F(JournaldSourceTest, ResumesAtTheNextEntryWhenTheCheckpointedOneWasVacuumed) {
  {
    JournalBuilder old_file(journal_dir() + "/old.journal");
    ASSERT_EQ(old_file.AppendMessages("old-", 0, 5), "");
  }
  {
    RunningSource s(config_, data_dir());
    ASSERT_TRUE(s.WaitForEvents(5));
    s.Stop();
  }
  ASSERT_TRUE(std::filesystem::exists(cursor_file()));
  // Later entries in a new file; the file holding the checkpointed entry is
  // deleted (vacuumed). The seek lands on the first new entry, which must
  // not be skipped.
  JournalBuilder new_file(journal_dir() + "/new.journal");
  ASSERT_EQ(new_file.AppendMessages("new-", 0, 4), "");
  std::filesystem::remove(journal_dir() + "/old.journal");
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(4));
  s.Stop();
  EXPECT_EQ(s.ctx().messages(), Range("new-", 0, 4));
}

// A cursor file of only whitespace is one problem, reported once: the
// source reads from the beginning as without a checkpoint.
TEST_F(JournaldSourceTest, AWhitespaceOnlyCheckpointIsReportedOnce) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("w", 0, 4), "");
  std::filesystem::create_directories(std::filesystem::path(cursor_file()).parent_path());
  testing::WriteFile(cursor_file(), "  \t \n");
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(4));
  s.Stop();
  EXPECT_EQ(s.ctx().messages(), Range("w", 0, 4));
  EXPECT_EQ(testing::MetricValue(s.registry().Serialize(), "tributary_component_errors_total",
                                 {{"component_id", "journal"}, {"error_type", "checkpoint_failed"}}),
            1.0);
}

// sd_journal_next failing now and then, as it may after a rotation or a
// vacuum: every 37th call fails.
std::atomic<int> g_next_calls{0};
int FlakyNext(sd_journal* j) {
  if (++g_next_calls % 37 == 0) return -EIO;
  return sd_journal_next(j);
}

TEST_F(JournaldSourceTest, ReadErrorsReopenAtTheLastCursorWithoutLossOrDuplicates) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("e", 0, 300), "");
  config_.batch_size = 50;  // errors land mid-batch
  g_next_calls = 0;
  RunningSource s(config_, data_dir(), FlakyNext);
  ASSERT_TRUE(s.WaitForEvents(300)) << s.ctx().size();
  ASSERT_EQ(b.AppendMessages("e", 300, 100), "");  // and while following
  ASSERT_TRUE(s.WaitForEvents(400)) << s.ctx().size();
  s.Stop();
  EXPECT_EQ(s.ctx().messages(), Range("e", 0, 400));
  auto errors = testing::MetricValue(s.registry().Serialize(), "tributary_component_errors_total",
                                     {{"component_id", "journal"}, {"error_type", "read_failed"}});
  ASSERT_TRUE(errors.has_value());
  EXPECT_GE(*errors, 8.0);
}

// The 120th read fails and the journal directory is gone when the source
// reopens it, as if its volume went away in the middle of a backfill.
std::string g_vanishing_dir;
int VanishingNext(sd_journal* j) {
  if (++g_next_calls == 120) {
    std::filesystem::rename(g_vanishing_dir, g_vanishing_dir + ".away");
    return -EIO;
  }
  return sd_journal_next(j);
}

// With stop_at_end a journal that cannot be reopened after a read error
// ends the source with the error, as one that cannot be opened at the
// start does: it was retried for ever, and the agent never exited. What
// was sent before is checkpointed, and the next run reads on from there.
TEST_F(JournaldSourceTest, StopAtEndEndsWithTheErrorWhenTheJournalCannotBeReopened) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("e", 0, 300), "");
  config_.batch_size = 50;  // two batches sent, the third one fails at its 20th entry
  config_.stop_at_end = true;
  g_next_calls = 0;
  g_vanishing_dir = journal_dir();
  {
    RunningSource s(config_, data_dir(), VanishingNext);
    Status st = s.Ended(std::chrono::seconds(10));
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("cannot reopen the journal after a read error: cannot open the journal in " +
                                journal_dir()),
              std::string::npos)
        << st.ToString();
    EXPECT_NE(st.message().find("with stop_at_end the source ends"), std::string::npos) << st.ToString();
    EXPECT_EQ(s.ctx().messages(), Range("e", 0, 100));
    auto errors = testing::MetricValue(s.registry().Serialize(), "tributary_component_errors_total",
                                       {{"component_id", "journal"}, {"error_type", "read_failed"}});
    EXPECT_EQ(errors, 2.0);  // the read, and the reopen
  }
  std::filesystem::rename(journal_dir() + ".away", journal_dir());
  RunningSource again(config_, data_dir());
  EXPECT_TRUE(again.Ended(std::chrono::seconds(20)).ok());
  EXPECT_EQ(again.ctx().messages(), Range("e", 100, 200));
}

TEST_F(JournaldSourceTest, SinceNowSkipsWhatIsThere) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("before-", 0, 20), "");
  config_.since_now = true;
  RunningSource s(config_, data_dir());
  // Entries appended after start arrive; the earlier ones never do. (The
  // source may not have reached the tail when the first append happens, so
  // append until something arrives.)
  ASSERT_TRUE(WaitFor([&] {
    if (s.ctx().size() > 0) return true;
    EXPECT_EQ(b.AppendMessages("after-", 0, 1), "");
    return s.ctx().size() > 0;
  }));
  s.Stop();
  for (const auto& m : s.ctx().messages()) EXPECT_EQ(m.rfind("after-", 0), 0u) << m;
}

// since_now, stopped before anything new arrived: the position it started
// from is its checkpoint, so what is written while the agent is down is
// read after the restart instead of being jumped over by a second since_now.
TEST_F(JournaldSourceTest, SinceNowCheckpointsWhereItStartedBeforeReadingAnything) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("old-", 0, 10), "");
  config_.since_now = true;
  {
    RunningSource s(config_, data_dir());
    s.Stop();
    EXPECT_EQ(s.ctx().size(), 0u);
  }
  EXPECT_TRUE(std::filesystem::exists(cursor_file()));
  ASSERT_EQ(b.AppendMessages("down-", 0, 5), "");  // while the agent is down
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(5)) << s.ctx().size();
  s.Stop();
  EXPECT_EQ(s.ctx().messages(), Range("down-", 0, 5));
}

// The same for a unit that has logged nothing yet: its position is the
// journal's end when the source started.
TEST_F(JournaldSourceTest, SinceNowForAQuietUnitResumesWhereItStarted) {
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("other-", 0, 10, {{"_SYSTEMD_UNIT", "other.service"}}), "");
  config_.since_now = true;
  config_.include_units = {"quiet"};
  {
    RunningSource s(config_, data_dir());
    s.Stop();
    EXPECT_EQ(s.ctx().size(), 0u);
  }
  ASSERT_EQ(b.AppendMessages("quiet-", 0, 3, {{"_SYSTEMD_UNIT", "quiet.service"}}), "");
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(3)) << s.ctx().size();
  ASSERT_EQ(b.AppendMessages("quiet-", 3, 2, {{"_SYSTEMD_UNIT", "quiet.service"}}), "");
  ASSERT_TRUE(s.WaitForEvents(5)) << s.ctx().size();
  s.Stop();
  EXPECT_EQ(s.ctx().messages(), Range("quiet-", 0, 5));
}

// A journal file sd-journal cannot open is skipped by it without a word:
// the source logs and counts each such file once (read_failed), and still
// reads the others, at start and when one appears while following.
TEST_F(JournaldSourceTest, JournalFilesThatDoNotOpenAreCountedOnce) {
  namespace fs = std::filesystem;
  JournalBuilder good(journal_dir() + "/good.journal");
  ASSERT_EQ(good.AppendMessages("good-", 0, 5), "");
  // Damaged copies of a real journal file, made outside the directory and
  // moved in, dated an hour back (a fresh failing file may be one being
  // created, and is checked again later).
  const fs::path made = tmp_ / "made";
  fs::create_directories(made);
  JournalBuilder full((made / "full.journal").string());
  ASSERT_EQ(full.AppendMessages("lost-", 0, 5), "");
  auto damaged = [&](const std::string& name, auto damage) {
    fs::path p = made / name;
    fs::copy_file(made / "full.journal", p, fs::copy_options::overwrite_existing);
    damage(p);
    fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(1));
    return p;
  };
  auto truncate = [](const fs::path& p) { fs::resize_file(p, 4096); };
  auto scramble = [](const fs::path& p) {
    std::string text = testing::ReadFile(p.string());
    for (size_t i = 0; i < 64 && i < text.size(); ++i) text[i] = static_cast<char>(0xa5 ^ i);
    testing::WriteFile(p.string(), text);
  };
  fs::rename(damaged("t.journal", truncate), journal_dir() + "/truncated.journal");
  fs::rename(damaged("s.journal", scramble), journal_dir() + "/scrambled.journal");
  auto read_failed = [](RunningSource& s) {
    return testing::MetricValue(s.registry().Serialize(), "tributary_component_errors_total",
                                {{"component_id", "journal"}, {"error_type", "read_failed"}})
        .value_or(0);
  };
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(5));
  EXPECT_EQ(read_failed(s), 2.0);
  // One more while following; the two known ones are not counted again.
  ASSERT_EQ(good.AppendMessages("good-", 5, 1), "");
  fs::rename(damaged("e.journal", [](const fs::path& p) { fs::resize_file(p, 0); }), journal_dir() + "/empty.journal");
  // (Found by the check every 10 s: sd-journal reports no change for a
  // file it failed to open.)
  ASSERT_TRUE(WaitFor([&] { return read_failed(s) >= 3.0; }, std::chrono::seconds(30))) << read_failed(s);
  ASSERT_EQ(good.AppendMessages("good-", 6, 1), "");
  ASSERT_TRUE(s.WaitForEvents(7));
  s.Stop();
  EXPECT_EQ(read_failed(s), 3.0);
  EXPECT_EQ(s.ctx().messages(), Range("good-", 0, 7));
}

// In a one-shot run a damaged file copied in moments ago (a fresh mtime)
// is reported before the run ends.
TEST_F(JournaldSourceTest, AFreshDamagedFileIsReportedBeforeAStopAtEndRunEnds) {
  JournalBuilder good(journal_dir() + "/good.journal");
  ASSERT_EQ(good.AppendMessages("good-", 0, 3), "");
  testing::WriteFile(journal_dir() + "/garbage.journal", std::string(100000, 'x'));
  config_.stop_at_end = true;
  RunningSource s(config_, data_dir());
  ASSERT_TRUE(s.WaitForEvents(3));
  // The run ends by itself; Stop() joins it.
  s.Stop();
  EXPECT_EQ(testing::MetricValue(s.registry().Serialize(), "tributary_component_errors_total",
                                 {{"component_id", "journal"}, {"error_type", "read_failed"}}),
            1.0);
}

TEST_F(JournaldSourceTest, CheckEnvironmentReportsUnreadableDirectory) {
  std::vector<config::EnvCheck> checks;
  JournaldSource::CheckEnvironment(config_, &checks);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_FALSE(checks[0].ok) << "an empty directory holds no journal files";
  JournalBuilder b(journal_dir() + "/x.journal");
  ASSERT_EQ(b.AppendMessages("m", 0, 1), "");
  checks.clear();
  JournaldSource::CheckEnvironment(config_, &checks);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_TRUE(checks[0].ok) << checks[0].detail;
  config_.journal_directory = tmp_ / "missing";
  checks.clear();
  JournaldSource::CheckEnvironment(config_, &checks);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_FALSE(checks[0].ok);
}

}  // namespace
}  // namespace tributary
