// Globs, fingerprints, multiline joining and checkpoint bookkeeping of the
// file source.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "sources/file/checkpoints.h"
#include "sources/file/fingerprint.h"
#include "sources/file/glob.h"
#include "sources/file/multiline.h"
#include "tests/support/test_util.h"

namespace tributary::file {
namespace {

using tributary::testing::TempDir;
using tributary::testing::WriteFile;

TEST(GlobTest, Match) {
  EXPECT_TRUE(GlobMatch("/var/log/*.log", "/var/log/app.log"));
  EXPECT_FALSE(GlobMatch("/var/log/*.log", "/var/log/sub/app.log"));
  EXPECT_TRUE(GlobMatch("/var/log/**/*.log", "/var/log/app.log"));
  EXPECT_TRUE(GlobMatch("/var/log/**/*.log", "/var/log/a/b/c/app.log"));
  EXPECT_FALSE(GlobMatch("/var/log/**/*.log", "/var/lib/a/app.log"));
  EXPECT_TRUE(GlobMatch("/var/log/**", "/var/log/a/b"));
  EXPECT_TRUE(GlobMatch("/var/log/app-?.[lt]og", "/var/log/app-1.log"));
  EXPECT_FALSE(GlobMatch("/var/log/app-?.[lt]og", "/var/log/app-12.log"));
  // Without '/': the file name only.
  EXPECT_TRUE(GlobMatch("*.gz", "/var/log/app.log.1.gz"));
  EXPECT_FALSE(GlobMatch("*.gz", "/var/log.gz/app.log"));
}

TEST(GlobTest, BaseDir) {
  EXPECT_EQ(GlobBaseDir("/var/log/app/*.log"), "/var/log/app");
  EXPECT_EQ(GlobBaseDir("/var/log/**/x.log"), "/var/log");
  EXPECT_EQ(GlobBaseDir("/var/log/app.log"), "/var/log");
  EXPECT_EQ(GlobBaseDir("/*.log"), "/");
}

TEST(GlobTest, ExpandWalksDirectoriesAndReportsNonFiles) {
  TempDir dir;
  std::filesystem::create_directories(dir / "a/b/c");
  WriteFile(dir / "top.log", "x\n");
  WriteFile(dir / "a/one.log", "x\n");
  WriteFile(dir / "a/b/c/deep.log", "x\n");
  WriteFile(dir / "a/b/skip.txt", "x\n");
  std::filesystem::create_directories(dir / "a/dir.log");
  ::mkfifo((dir / "a/fifo.log").c_str(), 0644);
  GlobWalk walk;
  ExpandGlob(dir.path() + "/**/*.log", &walk);
  std::vector<std::string> files, dirs, others;
  for (auto& m : walk.matches)
    (m.is_directory ? dirs : m.is_other ? others : files).push_back(m.path.substr(dir.path().size()));
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"/a/b/c/deep.log", "/a/one.log", "/top.log"}));
  EXPECT_EQ(dirs, (std::vector<std::string>{"/a/dir.log"}));
  EXPECT_EQ(others, (std::vector<std::string>{"/a/fifo.log"}));
  // Every directory that was read can be watched.
  EXPECT_NE(std::find(walk.directories.begin(), walk.directories.end(), dir / "a/b/c"), walk.directories.end());
  // A literal file name: its directory is reported for watching even before it exists.
  GlobWalk lit;
  ExpandGlob(dir / "later.log", &lit);
  EXPECT_TRUE(lit.matches.empty());
  EXPECT_EQ(lit.directories, std::vector<std::string>{dir.path()});
}

Result<std::optional<Identity>> FingerprintOf(const std::string& path, const FingerprintOptions& o) {
  int fd = ::open(path.c_str(), O_RDONLY);
  struct stat st;
  ::fstat(fd, &st);
  auto r = Fingerprint(fd, st, o);
  ::close(fd);
  return r;
}

TEST(FingerprintTest, ChecksumWaitsForLinesAndSurvivesCopies) {
  TempDir dir;
  FingerprintOptions o;
  o.lines = 2;
  WriteFile(dir / "a", "first\nsec");
  auto a = FingerprintOf(dir / "a", o);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());  // one line only: waits
  WriteFile(dir / "a", "first\nsecond\nthird\n");
  a = FingerprintOf(dir / "a", o);
  ASSERT_TRUE(a->has_value());
  WriteFile(dir / "copy", "first\nsecond\nother\n");
  auto c = FingerprintOf(dir / "copy", o);
  EXPECT_EQ((*a)->fingerprint, (*c)->fingerprint);
  EXPECT_EQ((*a)->head_bytes, 13u);
  WriteFile(dir / "b", "first\nsecond!\n");
  EXPECT_NE(FingerprintOf(dir / "b", o).value()->fingerprint, (*a)->fingerprint);
  // ignored_header_bytes skips a shared header.
  o.lines = 1;
  o.ignored_header_bytes = 4;
  WriteFile(dir / "h1", "HDR\nline-a\n");
  WriteFile(dir / "h2", "HDR\nline-b\n");
  EXPECT_NE(FingerprintOf(dir / "h1", o).value()->fingerprint, FingerprintOf(dir / "h2", o).value()->fingerprint);
}

TEST(FingerprintTest, LongFirstLineCountsAtMaxLineBytes) {
  TempDir dir;
  FingerprintOptions o;
  o.max_line_bytes = 100;
  WriteFile(dir / "a", std::string(150, 'x'));  // no newline, longer than the cap
  auto a = FingerprintOf(dir / "a", o);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->has_value());
}

TEST(FingerprintTest, SameHeadDetectsRewrite) {
  TempDir dir;
  FingerprintOptions o;
  WriteFile(dir / "a", "one\ntwo\n");
  auto id = *FingerprintOf(dir / "a", o).value();
  int fd = ::open((dir / "a").c_str(), O_RDONLY);
  EXPECT_TRUE(SameHead(fd, id, o).value());
  WriteFile(dir / "a", "uno\n");  // truncated and rewritten in place
  EXPECT_FALSE(SameHead(fd, id, o).value());
  ::close(fd);
}

TEST(FingerprintTest, DeviceAndInode) {
  TempDir dir;
  FingerprintOptions o;
  o.checksum = false;
  WriteFile(dir / "a", "");
  WriteFile(dir / "b", "");
  auto a = FingerprintOf(dir / "a", o);
  ASSERT_TRUE(a->has_value());  // ready at once, even when empty
  EXPECT_NE((*a)->fingerprint, FingerprintOf(dir / "b", o).value()->fingerprint);
  std::filesystem::rename(dir / "a", dir / "c");
  EXPECT_EQ((*a)->fingerprint, FingerprintOf(dir / "c", o).value()->fingerprint);
}

struct Msg {
  std::string text;
  uint64_t start, end;
  bool operator==(const Msg&) const = default;
};

std::vector<Msg> Aggregate(MultilineMode mode, const char* start, const char* cond, std::vector<std::string> lines) {
  MultilineRules rules;
  rules.start = std::make_unique<RE2>(start);
  rules.condition = std::make_unique<RE2>(cond);
  rules.mode = mode;
  MultilineAggregator agg(&rules);
  std::vector<Msg> out;
  auto emit = [&](std::string_view m, uint64_t s, uint64_t e) { out.push_back({std::string(m), s, e}); };
  uint64_t off = 0;
  auto now = std::chrono::steady_clock::now();
  for (auto& l : lines) {
    agg.Add(l, off, off + l.size() + 1, now, emit);
    off += l.size() + 1;
  }
  agg.Flush(emit);
  return out;
}

TEST(MultilineTest, ContinueThrough) {
  auto out = Aggregate(MultilineMode::kContinueThrough, R"(^\S)", R"(^\s)",
                       {"Exception", "  at a", "  at b", "next", "plain", "  orphan"});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], (Msg{"Exception\n  at a\n  at b", 0, 24}));
  EXPECT_EQ(out[1].text, "next");
  EXPECT_EQ(out[2].text, "plain\n  orphan");
}

TEST(MultilineTest, ContinueThroughLeavesUnstartedLinesAlone) {
  auto out = Aggregate(MultilineMode::kContinueThrough, R"(^ERR)", R"(^\s)", {"  lost", "ERR x", "  y", "ok"});
  std::vector<std::string> texts;
  for (auto& m : out) texts.push_back(m.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"  lost", "ERR x\n  y", "ok"}));
}

TEST(MultilineTest, ContinuePast) {
  // Lines ending in '\' continue; the first line without one is the last.
  auto out = Aggregate(MultilineMode::kContinuePast, R"(\\$)", R"(\\$)", {"a \\", "b \\", "c", "d"});
  std::vector<std::string> texts;
  for (auto& m : out) texts.push_back(m.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"a \\\nb \\\nc", "d"}));
}

TEST(MultilineTest, HaltBefore) {
  auto out = Aggregate(MultilineMode::kHaltBefore, R"(^\[)", R"(^\[)", {"[1] a", "b", "[2] c", "d", "e"});
  std::vector<std::string> texts;
  for (auto& m : out) texts.push_back(m.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"[1] a\nb", "[2] c\nd\ne"}));
  EXPECT_EQ(out[1].start, 8u);
}

TEST(MultilineTest, HaltWith) {
  auto out = Aggregate(MultilineMode::kHaltWith, R"(^BEGIN)", R"(^END)", {"BEGIN", "x", "END", "y"});
  std::vector<std::string> texts;
  for (auto& m : out) texts.push_back(m.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"BEGIN\nx\nEND", "y"}));
}

TEST(MultilineTest, TimeoutFlushesAndBufferedStartHoldsTheCheckpoint) {
  MultilineRules rules;
  rules.start = std::make_unique<RE2>(R"(^\S)");
  rules.condition = std::make_unique<RE2>(R"(^\s)");
  rules.timeout = std::chrono::milliseconds(50);
  MultilineAggregator agg(&rules);
  std::vector<std::string> out;
  auto emit = [&](std::string_view m, uint64_t, uint64_t) { out.emplace_back(m); };
  auto t0 = std::chrono::steady_clock::now();
  agg.Add("head", 10, 15, t0, emit);
  agg.Add(" tail", 15, 21, t0, emit);
  EXPECT_TRUE(agg.buffering());
  EXPECT_EQ(agg.buffered_start(), 10u);
  agg.Poll(t0 + std::chrono::milliseconds(49), emit);
  EXPECT_TRUE(out.empty());
  agg.Poll(t0 + std::chrono::milliseconds(50), emit);
  EXPECT_EQ(out, std::vector<std::string>{"head\n tail"});
  EXPECT_FALSE(agg.buffering());
}

TEST(MultilineTest, MessageSizeIsCapped) {
  MultilineRules rules;
  rules.start = std::make_unique<RE2>(R"(^\S)");
  rules.condition = std::make_unique<RE2>(R"(^\s)");
  rules.max_bytes = 10;
  MultilineAggregator agg(&rules);
  std::vector<std::string> out;
  auto emit = [&](std::string_view m, uint64_t, uint64_t) { out.emplace_back(m); };
  auto now = std::chrono::steady_clock::now();
  agg.Add("abc", 0, 4, now, emit);
  agg.Add(" def", 4, 9, now, emit);
  agg.Add(" ghi", 9, 14, now, emit);
  agg.Flush(emit);
  EXPECT_EQ(out, std::vector<std::string>{"abc\n def"});
  EXPECT_EQ(agg.truncated(), 1u);
}

TEST(AckTrackerTest, AdvancesOnlyOverContiguousAcknowledgements) {
  AckTracker t;
  Progress p(1);
  uint64_t a = t.Add(&p, 100);
  uint64_t b = t.Add(&p, 200);
  uint64_t c = t.Add(&p, 300);
  t.Resolve(&p, c, BatchStatus::kDelivered);
  EXPECT_EQ(t.Acked(&p), 0u);
  t.Resolve(&p, a, BatchStatus::kRejected);  // rejected counts as settled
  EXPECT_EQ(t.Acked(&p), 100u);
  t.Resolve(&p, b, BatchStatus::kDelivered);
  EXPECT_EQ(t.Acked(&p), 300u);
  EXPECT_FALSE(t.HasPending(&p));
  t.Advance(&p, 350);  // nothing pending: at once
  EXPECT_EQ(t.Acked(&p), 350u);
}

TEST(AckTrackerTest, FailedBatchBlocksThePosition) {
  AckTracker t;
  Progress p(1);
  uint64_t a = t.Add(&p, 100);
  uint64_t b = t.Add(&p, 200);
  t.Advance(&p, 250);
  t.Resolve(&p, a, BatchStatus::kFailed);
  t.Resolve(&p, b, BatchStatus::kDelivered);
  EXPECT_EQ(t.Acked(&p), 0u);
}

TEST(AckTrackerTest, DeliveriesThatMoveTheOffsetAreCountedAndAnnounced) {
  AckTracker t;
  Progress p(1);
  int calls = 0;
  t.set_on_advance([&] { ++calls; });
  uint64_t a = t.Add(&p, 100);
  uint64_t b = t.Add(&p, 200);
  t.Resolve(&p, b, BatchStatus::kDelivered);  // behind a: nothing moves yet
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(t.deliveries(), 0u);
  t.Resolve(&p, a, BatchStatus::kDelivered);  // both settle: one move
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(t.deliveries(), 1u);
  EXPECT_EQ(t.Acked(&p), 200u);
  t.Advance(&p, 250);  // the source's own skip is no delivery
  t.Reset(&p, 300);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(t.deliveries(), 1u);
  t.set_on_advance(nullptr);
  t.Resolve(&p, t.Add(&p, 400), BatchStatus::kDelivered);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(t.deliveries(), 2u);
}

TEST(AckTrackerTest, FinalizerResolvesEveryFileOfTheBatch) {
  auto t = std::make_shared<AckTracker>();
  auto p1 = std::make_shared<Progress>(1);
  auto p2 = std::make_shared<Progress>(2);
  {
    FinalizerRef f = MakeFinalizer(t, {{p1, t->Add(p1.get(), 10)}, {p2, t->Add(p2.get(), 20)}});
    FinalizerRef copy = f;  // fan-out to two sinks
    copy.Release(BatchStatus::kDelivered);
    EXPECT_EQ(t->Acked(p1.get()), 0u);
    f.Release(BatchStatus::kDelivered);
  }
  EXPECT_EQ(t->Acked(p1.get()), 10u);
  EXPECT_EQ(t->Acked(p2.get()), 20u);
}

TEST(CheckpointFileTest, SaveLoadRoundTrip) {
  TempDir dir;
  CheckpointFile f;
  f.strategy = "checksum";
  f.entries.push_back({0xfedcba9876543210ULL, 12345, "/var/log/a \"quoted\".log", 1, 2});
  f.entries.push_back({1, 0, "/x", 0, 0});
  ASSERT_TRUE(SaveCheckpoints(dir / "cp.json", f).ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "cp.json.tmp"));
  auto l = LoadCheckpoints(dir / "cp.json");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->strategy, "checksum");
  ASSERT_EQ(l->entries.size(), 2u);
  EXPECT_EQ(l->entries[0].fingerprint, 0xfedcba9876543210ULL);
  EXPECT_EQ(l->entries[0].offset, 12345u);
  EXPECT_EQ(l->entries[0].path, "/var/log/a \"quoted\".log");
  EXPECT_EQ(l->entries[0].ino, 2u);
  auto missing = LoadCheckpoints(dir / "none.json");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->entries.empty());
  WriteFile(dir / "bad.json", "{\"checkpoints\": [");
  EXPECT_FALSE(LoadCheckpoints(dir / "bad.json").ok());
}

// A symlink's target is kept; checkpoints written before `target` existed
// still load, with none.
TEST(CheckpointFileTest, TargetRoundTripsAndOldCheckpointsLoadWithout) {
  TempDir dir;
  CheckpointFile f;
  f.strategy = "checksum";
  f.entries.push_back({1, 10, "/var/log/containers/a.log", 1, 2});
  f.entries.back().target = "/var/log/pods/ns_a_u/app/0.log";
  f.entries.push_back({2, 20, "/var/log/app.log", 1, 3});
  ASSERT_TRUE(SaveCheckpoints(dir / "cp.json", f).ok());
  auto l = LoadCheckpoints(dir / "cp.json");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_EQ(l->entries.size(), 2u);
  EXPECT_EQ(l->entries[0].target, "/var/log/pods/ns_a_u/app/0.log");
  EXPECT_EQ(l->entries[1].target, "");
  const std::string text = tributary::testing::ReadFile(dir / "cp.json");
  EXPECT_EQ(text.find("\"target\""), text.rfind("\"target\"")) << "a path that is no symlink has no `target`: " << text;
  WriteFile(dir / "old.json",
            "{\"version\":1,\"strategy\":\"checksum\",\"checkpoints\":[\n{\"fingerprint\":\"0000000000000001\","
            "\"offset\":10,\"path\":\"/var/log/containers/a.log\",\"dev\":1,\"ino\":2}]}\n");
  auto old = LoadCheckpoints(dir / "old.json");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ASSERT_EQ(old->entries.size(), 1u);
  EXPECT_EQ(old->entries[0].offset, 10u);
  EXPECT_EQ(old->entries[0].target, "");
}

// The checkpoints file is rewritten whole: with thousands of files, 4
// writes a second of it cost megabytes a second for a trickle of lines.
TEST(CheckpointsTest, TheWriteIntervalGrowsWithTheFilesKnownUpToFiveSeconds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(CheckpointInterval(0), milliseconds(250));
  EXPECT_EQ(CheckpointInterval(255), milliseconds(250));
  EXPECT_EQ(CheckpointInterval(256), milliseconds(500));
  EXPECT_EQ(CheckpointInterval(1000), milliseconds(1000));
  EXPECT_EQ(CheckpointInterval(5000), milliseconds(5000));
  EXPECT_EQ(CheckpointInterval(1000000), milliseconds(5000));
}

}  // namespace
}  // namespace tributary::file
