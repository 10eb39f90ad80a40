// The file source with thousands of files: what its searches on the
// new-file path and on each read of a parked file look at grows with the
// number of files (or of changes), not with its square. Counted, not
// timed (FileSource::ScanCountsForTesting); bench/ and the probe scripts
// measure the time.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/metrics.h"
#include "sources/file_source.h"
#include "tests/support/test_util.h"

namespace tributary {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::WaitFor;

// Keeps every message; each batch is delivered at once.
class DeliveringContext final : public SourceContext {
 public:
  explicit DeliveringContext(ComponentMetrics* metrics) : metrics_(metrics) {}
  bool Send(Batch batch) override {
    {
      std::lock_guard lock(mu_);
      for (const auto& e : batch.events()) messages_.insert(e.get("message")->as_string());
      count_ += batch.size();
    }
    batch.Finalize(BatchStatus::kDelivered);
    return true;
  }
  std::stop_token stop_token() const override { return stop_.get_token(); }
  ComponentMetrics& metrics() override { return *metrics_; }
  void RequestStop() { stop_.request_stop(); }
  bool Has(const std::string& m) {
    std::lock_guard lock(mu_);
    return messages_.count(m) > 0;
  }
  size_t distinct() {
    std::lock_guard lock(mu_);
    return messages_.size();
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  ComponentMetrics* metrics_;
  std::stop_source stop_;
  std::mutex mu_;
  std::set<std::string> messages_;
  size_t count_ = 0;
};

class RunningFileSource {
 public:
  RunningFileSource(const FileSource::Config& config, const std::string& data_dir)
      : metrics_(registry_.ForComponent("in", ComponentKind::kSource, "file")), ctx_(metrics_.get()) {
    BuildContext b{"in", data_dir, "testhost", metrics_.get()};
    auto built = FileSource::Build(config, b);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    source_ = std::move(built.value());
    thread_ = std::thread([this] { EXPECT_TRUE(source_->Run(ctx_).ok()); });
  }
  ~RunningFileSource() {
    ctx_.RequestStop();
    thread_.join();
    source_->Finish();
  }
  DeliveringContext& ctx() { return ctx_; }
  FileSource::ScanCounts counts() const { return static_cast<FileSource*>(source_.get())->ScanCountsForTesting(); }

 private:
  Metrics registry_;
  std::unique_ptr<ComponentMetrics> metrics_;
  DeliveringContext ctx_;
  std::unique_ptr<Source> source_;
  std::thread thread_;
};

constexpr size_t kFiles = 3000;
constexpr uint64_t kMaxOpen = 100;  // most files are parked, and reopened to be read

std::string FileName(size_t i) { return "f" + std::to_string(i) + ".log"; }
std::string FirstLine(size_t i) { return "first line of file " + std::to_string(i); }

FileSource::Config ManyFilesConfig(const TempDir& dir) {
  FileSource::Config c;
  c.include = {dir / "logs/*.log"};
  c.max_open_files = kMaxOpen;
  c.glob_minimum_cooldown_ms.ms = 100;
  return c;
}

void WriteManyFiles(const TempDir& dir) {
  std::filesystem::create_directories(dir / "logs");
  for (size_t i = 0; i < kFiles; ++i) testing::WriteFile(dir / ("logs/" + FileName(i)), FirstLine(i) + "\n");
}

// At start every file is a new identity that claims its inode, and all but
// max_open_files of them are parked, then reopened (parking another) to be
// read: before, each claim went through every identity known and each park
// through every file (kFiles^2 / 2, 4.5 million, of each).
TEST(FileSourceScaleTest, StartWithManyFilesLooksAtEachFileAFewTimes) {
  TempDir dir;
  WriteManyFiles(dir);
  RunningFileSource source(ManyFilesConfig(dir), dir / "data");
  ASSERT_TRUE(WaitFor([&] { return source.ctx().distinct() >= kFiles; }, 300s))
      << source.ctx().distinct() << " of " << kFiles << " first lines";
  for (size_t i = 0; i < kFiles; ++i) ASSERT_TRUE(source.ctx().Has(FirstLine(i))) << FirstLine(i);
  EXPECT_EQ(source.ctx().count(), kFiles);  // none twice
  const auto counts = source.counts();
  RecordProperty("claim_visits", std::to_string(counts.claim_visits));
  RecordProperty("park_visits", std::to_string(counts.park_visits));
  RecordProperty("published_entries", std::to_string(counts.published_entries));
  EXPECT_LE(counts.claim_visits, 2 * kFiles);
  EXPECT_GT(counts.park_visits, 0u);  // parked files were read
  EXPECT_LE(counts.park_visits, 10 * kFiles);
  EXPECT_LE(counts.published_entries, 4 * kFiles);
}

// Running, a line appended to one parked file at a time: each reopens that
// file (parking the idlest other) and changes one identity (its lead
// grows). Before, each park went through every file and each change handed
// every identity to the checkpoint writer again (kFiles per line).
TEST(FileSourceScaleTest, LinesToParkedFilesLookAtTheChangeOnly) {
  TempDir dir;
  WriteManyFiles(dir);
  RunningFileSource source(ManyFilesConfig(dir), dir / "data");
  ASSERT_TRUE(WaitFor([&] { return source.ctx().distinct() >= kFiles; }, 300s));
  const auto before = source.counts();
  constexpr size_t kLines = 40;
  for (size_t n = 0; n < kLines; ++n) {
    const size_t i = n * (kFiles / kLines);  // the first files read: parked by now
    const std::string line = "second line of file " + std::to_string(i);
    testing::AppendFile(dir / ("logs/" + FileName(i)), line + "\n");
    ASSERT_TRUE(WaitFor([&] { return source.ctx().Has(line); }, 60s)) << line;
  }
  const auto after = source.counts();
  RecordProperty("park_visits", std::to_string(after.park_visits - before.park_visits));
  RecordProperty("published_entries", std::to_string(after.published_entries - before.published_entries));
  EXPECT_EQ(source.ctx().count(), kFiles + kLines);
  EXPECT_GT(after.park_visits, before.park_visits);  // they were parked, and reopened
  // A few per line; at most the open files, when a discovery has just
  // queued them all (before: every file, kFiles per line).
  EXPECT_LE(after.park_visits - before.park_visits, kMaxOpen * kLines);
  // One identity per line (before: all of them, kFiles per line).
  EXPECT_LE(after.published_entries - before.published_entries, 20 * kLines);
  EXPECT_EQ(after.claim_visits, before.claim_visits);  // no new identity
}

}  // namespace
}  // namespace tributary
