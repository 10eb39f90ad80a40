#include "agent/disk_buffer.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <random>
#include <thread>

#include "tests/support/test_util.h"

namespace tributary {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WaitFor;
using namespace std::chrono_literals;

// An Env that injects failures: short writes with ENOSPC, fsync errors,
// failing deletes.
class FaultEnv : public EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(Env::Default()) {}
  std::atomic<bool> enospc{false};
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_remove{false};
  std::atomic<int> syncs{0};
  std::atomic<int> failed_appends{0};
  std::atomic<uint64_t> appended{0};  // bytes appended to segment files
  std::atomic<uint64_t> synced{0};    // `appended` as of the last successful fsync

  class File : public WritableFile {
   public:
    File(FaultEnv* env, std::unique_ptr<WritableFile> inner, bool segment)
        : env_(env), inner_(std::move(inner)), segment_(segment) {}
    Status Append(std::string_view data) override {
      if (env_->enospc) {
        ++env_->failed_appends;
        (void)inner_->Append(data.substr(0, data.size() / 2));  // a short write
        return Status::FromErrno("write", ENOSPC);
      }
      Status s = inner_->Append(data);
      if (s.ok() && segment_) env_->appended += data.size();
      return s;
    }
    Status Sync() override {
      if (env_->fail_sync) return Status::FromErrno("fdatasync", EIO);
      uint64_t a = env_->appended.load();
      Status s = inner_->Sync();
      ++env_->syncs;
      if (s.ok() && segment_ && a > env_->synced) env_->synced = a;
      return s;
    }
    Status Truncate(uint64_t size) override { return inner_->Truncate(size); }

   private:
    FaultEnv* env_;
    std::unique_ptr<WritableFile> inner_;
    bool segment_;
  };

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p, bool t) override {
    auto f = target()->NewWritableFile(p, t);
    if (!f.ok()) return f.status();
    return std::unique_ptr<WritableFile>(
        new File(this, std::move(f).value(), p.find("segment-") != std::string::npos));
  }
  Status RemoveFile(const std::string& p) override {
    if (fail_remove && p.find("segment-") != std::string::npos) return Status::IoError("injected");
    return target()->RemoveFile(p);
  }
};

Batch MakeBatch(uint64_t first, size_t n, std::atomic<int>* delivered = nullptr,
                std::atomic<int>* failed = nullptr, size_t pad = 0) {
  std::vector<Event> events;
  for (size_t i = 0; i < n; ++i) {
    Event e;
    e.fields().set("seq", static_cast<int64_t>(first + i));
    e.fields().set("message", std::string(pad, 'x') + "line " + std::to_string(first + i));
    e.fields().set("timestamp", Timestamp(std::chrono::nanoseconds(1700000000123456789LL + static_cast<int64_t>(i))));
    events.push_back(std::move(e));
  }
  Batch b(std::move(events));
  b.set_bytes(n * 10);
  if (delivered || failed) {
    b.add_finalizer(Finalizer::Create([delivered, failed](BatchStatus s) {
      if (s == BatchStatus::kDelivered && delivered) ++*delivered;
      if (s != BatchStatus::kDelivered && failed) ++*failed;
    }));
  }
  return b;
}

class DiskBufferTest : public ::testing::Test {
 protected:
  std::unique_ptr<DiskBuffer> Open(std::chrono::milliseconds flush = 0ms, uint64_t max_size = 64 << 20,
                                   bool drop = false, uint64_t segment_size = 64 << 10) {
    DiskBufferOptions o;
    o.dir = dir_ / "buf";
    o.name = "test";
    o.max_size = max_size;
    o.drop_when_full = drop;
    o.flush_interval = flush;
    o.segment_size = segment_size;
    o.env = &env_;
    auto r = DiskBuffer::Open(o, metrics_->ForBuffer("s", "file", "disk"));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  // Reads batches until `n` events arrived or nothing comes for `idle`;
  // acks each batch unless ack is false (then keeps them in *held).
  std::vector<int64_t> Drain(DiskBuffer* b, size_t n, bool ack = true, std::vector<Batch>* held = nullptr,
                             std::chrono::milliseconds idle = 300ms) {
    std::vector<int64_t> seqs;
    while (seqs.size() < n) {
      Batch batch;
      auto r = b->Next(&batch, idle);
      if (r != SinkInput::Result::kBatch) break;
      for (const auto& e : batch.events()) seqs.push_back(e.fields().find("seq")->as_int());
      if (ack) batch.Finalize(BatchStatus::kDelivered);
      else if (held) held->push_back(std::move(batch));
    }
    return seqs;
  }

  std::vector<std::string> Segments() {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir_ / "buf"))
      if (e.path().filename().string().rfind("segment-", 0) == 0) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  double Corrupt() { return metrics_->ForBuffer("s", "file", "disk").discarded_corrupt->Value(); }

  TempDir dir_;
  FaultEnv env_;
  std::unique_ptr<Metrics> metrics_ = std::make_unique<Metrics>();
};

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

TEST_F(DiskBufferTest, RoundTripsBatchesAndAcksUpstreamOnlyAfterFsync) {
  auto b = Open(0ms);
  std::atomic<int> delivered{0};
  std::vector<uint64_t> synced_at_ack;
  std::mutex mu;
  for (int i = 0; i < 20; ++i) {
    Batch batch = MakeBatch(static_cast<uint64_t>(i) * 10, 10);
    batch.add_finalizer(Finalizer::Create([&](BatchStatus s) {
      EXPECT_EQ(s, BatchStatus::kDelivered);
      std::lock_guard lock(mu);
      synced_at_ack.push_back(env_.synced.load());
      ++delivered;
    }));
    const uint64_t before = env_.appended.load();
    ASSERT_TRUE(b->Push(std::move(batch)));
    // flush_interval 0: durable (and acknowledged) before Push returns.
    ASSERT_EQ(delivered.load(), i + 1);
    EXPECT_GT(synced_at_ack.back(), before);
    EXPECT_GE(synced_at_ack.back(), env_.appended.load());
  }
  EXPECT_EQ(b->stats().events, 200u);
  Batch first;
  ASSERT_EQ(b->Next(&first, 1s), SinkInput::Result::kBatch);
  ASSERT_EQ(first.size(), 10u);
  EXPECT_EQ(first.bytes(), 100u);
  EXPECT_EQ(first.events()[0].fields().find("message")->as_string(), "line 0");
  EXPECT_EQ(first.events()[3].fields().find("timestamp")->as_timestamp().time_since_epoch().count(),
            1700000000123456792LL);
  first.Finalize(BatchStatus::kDelivered);
  EXPECT_EQ(Drain(b.get(), 190), Range(10, 200));
  EXPECT_EQ(b->stats().events, 0u);
}

TEST_F(DiskBufferTest, IntervalFlushAcksAfterTheBackgroundFsync) {
  auto b = Open(200ms);
  std::atomic<int> delivered{0};
  const int syncs_before = env_.syncs.load();
  const uint64_t appended_before = env_.appended.load();
  ASSERT_TRUE(b->Push(MakeBatch(0, 5, &delivered)));
  ASSERT_GT(env_.appended.load(), appended_before);
  // Written, not yet synced: not acknowledged, and not readable either.
  if (env_.syncs.load() == syncs_before) {
    EXPECT_EQ(delivered.load(), 0);
  }
  ASSERT_TRUE(WaitFor([&] { return delivered.load() == 1; }, 5s));
  EXPECT_GE(env_.synced.load(), env_.appended.load() - 0);
  EXPECT_EQ(Drain(b.get(), 5), Range(0, 5));
}

// A stop or reload that keeps the buffer ends when Next says kClosed, and
// then the sources write their last checkpoints: by then every batch the
// buffer synced must have been acknowledged to them. The acknowledgements
// run on the flusher's thread after the fsync; Next said kClosed as soon as
// the fsync was recorded, before they had run, and a reload read the file
// again from an older checkpoint (5,000 lines out for 3,000 in).
TEST_F(DiskBufferTest, ClosedIsReportedOnlyOnceTheSyncedBatchesAreAcknowledged) {
  auto b = Open(20ms);
  std::atomic<bool> acknowledged{false};
  Batch batch = MakeBatch(0, 5);
  batch.add_finalizer(Finalizer::Create([&](BatchStatus s) {
    EXPECT_EQ(s, BatchStatus::kDelivered);
    std::this_thread::sleep_for(300ms);  // a slow acknowledgement path: the window the race needs
    acknowledged = true;
  }));
  ASSERT_TRUE(b->Push(std::move(batch)));
  b->CloseKeeping();
  Batch out;
  ASSERT_EQ(b->Next(&out, 5s), SinkInput::Result::kClosed);
  EXPECT_TRUE(acknowledged.load()) << "closed before the synced batch was acknowledged";
}

TEST_F(DiskBufferTest, RestartRedeliversWhatWasNotAcknowledgedInOrder) {
  {
    auto b = Open(0ms);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10)));
    std::vector<Batch> held;
    EXPECT_EQ(Drain(b.get(), 50, false, &held), Range(0, 50));
    ASSERT_EQ(held.size(), 5u);
    // Out of order: 0, 1 and 3 acked; 2 and 4 not. Contiguous = 0..1.
    held[3].Finalize(BatchStatus::kDelivered);
    held[0].Finalize(BatchStatus::kDelivered);
    held[1].Finalize(BatchStatus::kDelivered);
    held[4].Finalize(BatchStatus::kFailed);
    EXPECT_EQ(b->stats().events, 80u);
    b.reset();  // held[2] is still out: its ack arrives after the buffer is gone
    held[2].Finalize(BatchStatus::kDelivered);
  }
  auto b = Open(0ms);
  EXPECT_EQ(b->stats().events, 80u);
  EXPECT_EQ(Drain(b.get(), 80), Range(20, 100));
  // Pushing continues the numbering; nothing is counted as corrupt.
  ASSERT_TRUE(b->Push(MakeBatch(100, 10)));
  EXPECT_EQ(Drain(b.get(), 10), Range(100, 110));
  EXPECT_EQ(Corrupt(), 0);
}

TEST_F(DiskBufferTest, CrashStateCopiedMidRunRecoversEverythingAcknowledgedUpstream) {
  // A copy of the directory while the buffer runs is what kill -9 leaves.
  auto b = Open(50ms, 64 << 20, false, 32 << 10);
  std::atomic<int> delivered{0};
  std::thread writer([&] {
    for (int i = 0; i < 400; ++i) b->Push(MakeBatch(static_cast<uint64_t>(i) * 5, 5, &delivered, nullptr, 50));
  });
  std::thread reader([&] { Drain(b.get(), 1000, true, nullptr, 2s); });
  EXPECT_TRUE(WaitFor([&] { return delivered.load() >= 100; }, 10s));  // no ASSERT: the threads must be joined
  int acked_before_copy = delivered.load();
  // Ledger first, then the segments (files deleted meanwhile were wholly
  // acknowledged; recovery must cope with their absence).
  fs::create_directories(dir_ / "crash");
  std::error_code ec;
  fs::copy_file(dir_ / "buf/ledger", dir_ / "crash/ledger", ec);
  for (const auto& seg : Segments())
    fs::copy_file(seg, (dir_ / "crash/") + fs::path(seg).filename().string(), ec);
  writer.join();
  reader.join();
  b.reset();
  fs::remove_all(dir_ / "buf");
  fs::rename(dir_ / "crash", dir_ / "buf");
  auto r = Open(50ms);
  auto seqs = Drain(r.get(), 100000);
  ASSERT_FALSE(seqs.empty());
  // In order, no gaps, and reaching at least what was acknowledged upstream.
  for (size_t i = 1; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], seqs[i - 1] + 1) << i;
  EXPECT_GE(seqs.back() + 1, acked_before_copy * 5);
  EXPECT_EQ(Corrupt(), 0);
}

TEST_F(DiskBufferTest, SegmentsAreDeletedOnceAcknowledged) {
  auto b = Open(0ms, 64 << 20, false, 32 << 10);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, nullptr, 100)));
  EXPECT_GT(Segments().size(), 5u);
  EXPECT_GT(b->stats().bytes, 200u * 10 * 100);
  EXPECT_EQ(Drain(b.get(), 2000).size(), 2000u);
  // Everything but the active segment (still being written) goes.
  ASSERT_TRUE(WaitFor([&] { return Segments().size() == 1 && b->stats().segments == 1; }, 5s));
  EXPECT_LE(b->stats().bytes, (32u << 10) + 2000);
  EXPECT_EQ(b->stats().bytes, fs::file_size(Segments()[0]));
  EXPECT_EQ(b->stats().events, 0u);
}

TEST_F(DiskBufferTest, CrashBetweenLedgerWriteAndSegmentDeleteRecovers) {
  env_.fail_remove = true;
  {
    auto b = Open(0ms, 64 << 20, false, 32 << 10);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, nullptr, 100)));
    EXPECT_EQ(Drain(b.get(), 300).size(), 300u);
  }
  const std::string first = Segments().front();
  env_.fail_remove = false;
  auto b = Open(0ms, 64 << 20, false, 32 << 10);
  EXPECT_FALSE(fs::exists(first));
  EXPECT_EQ(Drain(b.get(), 1000), Range(300, 500));
}

TEST_F(DiskBufferTest, RandomByteFlipsAreSkippedAndCounted) {
  for (int seed = 0; seed < 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    fs::remove_all(dir_ / "buf");
    metrics_ = std::make_unique<Metrics>();
    const int kBatches = 60, kPer = 10;
    {
      auto b = Open(0ms, 64 << 20, false, 40 << 10);
      for (int i = 0; i < kBatches; ++i)
        ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * kPer, kPer, nullptr, nullptr, 30)));
    }
    std::mt19937_64 rng(static_cast<uint64_t>(seed));
    auto segs = Segments();
    ASSERT_GT(segs.size(), 1u);
    for (int k = 0; k < 4; ++k) {
      const std::string& p = segs[rng() % segs.size()];
      auto size = fs::file_size(p);
      if (size == 0) continue;
      std::string data = testing::ReadFile(p);
      data[rng() % size] ^= static_cast<char>(1 + rng() % 255);
      testing::WriteFile(p, data);
    }
    auto b = Open(0ms, 64 << 20, false, 40 << 10);
    ASSERT_NE(b, nullptr);
    auto seqs = Drain(b.get(), kBatches * kPer);
    // Every event is either delivered (once, in order) or counted.
    for (size_t i = 1; i < seqs.size(); ++i) ASSERT_LT(seqs[i - 1], seqs[i]);
    const auto stats = b->stats();
    // Exact: a gap in the event numbering between intact records, or
    // between the last intact record and what the ledger saw fsynced.
    EXPECT_EQ(seqs.size() + stats.corrupt_events, static_cast<size_t>(kBatches * kPer));
    if (stats.corrupt_events > 0) EXPECT_GT(stats.corrupt_bytes, 0u);
    EXPECT_EQ(Corrupt(), static_cast<double>(stats.corrupt_events));
    // The buffer keeps working after corruption.
    ASSERT_TRUE(b->Push(MakeBatch(100000, 3)));
    EXPECT_EQ(Drain(b.get(), 3), Range(100000, 100003));
  }
}

// Walks a segment by the format in disk_buffer.h: for each byte, the index
// of the record it belongs to (-1 for block trailers), and in *field which
// part of a fragment it is (0 crc, 1 len, 2 type, 3 data, -1 trailer).
std::vector<int> RecordOfEachByte(const std::string& seg, std::vector<int>* field) {
  constexpr size_t kBlock = 32 * 1024;
  std::vector<int> rec(seg.size(), -1);
  field->assign(seg.size(), -1);
  int record = -1;
  size_t p = 0;
  while (p < seg.size()) {
    size_t left = kBlock - p % kBlock;
    if (left < 7) {
      p += left;
      continue;
    }
    size_t len = static_cast<uint8_t>(seg[p + 4]) | static_cast<size_t>(static_cast<uint8_t>(seg[p + 5])) << 8;
    int type = seg[p + 6];
    if (type == 1 || type == 2) ++record;
    for (size_t i = 0; i < 7 + len && p + i < seg.size(); ++i) {
      rec[p + i] = record;
      (*field)[p + i] = i < 4 ? 0 : i < 6 ? 1 : i < 7 ? 2 : 3;
    }
    p += 7 + len;
  }
  return rec;
}

// The checksum is zlib's CRC-32 of the type byte and the data, as
// disk_buffer.h defines it: segments written by earlier releases (which
// computed it with zlib) read back, and every fragment here checks out
// against zlib computed independently.
TEST_F(DiskBufferTest, FragmentChecksumsAreZlibsCrc32OfTypeAndData) {
  {
    auto b = Open(0ms, 64 << 20, false, 16 << 20);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 100, 100, nullptr, nullptr, 500)));
  }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 1u);
  const std::string seg = testing::ReadFile(segs[0]);
  constexpr size_t kBlock = 32 * 1024;
  int fragments = 0;
  for (size_t p = 0; p < seg.size();) {
    if (kBlock - p % kBlock < 7) {
      p += kBlock - p % kBlock;
      continue;
    }
    auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(seg[p + i])); };
    const uint32_t stored = byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24;
    const size_t len = byte(4) | byte(5) << 8;
    if (byte(6) == 0) break;  // the zero fill at the end
    ASSERT_LE(p + 7 + len, seg.size());
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(seg.data() + p + 6), 1);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(seg.data() + p + 7), static_cast<uInt>(len));
    ASSERT_EQ(stored, static_cast<uint32_t>(crc)) << "fragment at " << p;
    ++fragments;
    p += 7 + len;
  }
  EXPECT_GT(fragments, 4);  // records span blocks: first, middle and last fragments
  // And a segment whose checksums zlib computed is read by this build: the
  // events above come back whole.
  auto b = Open(0ms, 64 << 20, false, 16 << 20);
  EXPECT_EQ(Drain(b.get(), 400), Range(0, 400));
  EXPECT_EQ(Corrupt(), 0.0);
}

// The guarantee of docs/guarantees.md: one damaged byte costs the record it
// is in and nothing else, although records are larger than a 32 KiB block
// (so most blocks begin inside a record whose start may be gone).
TEST_F(DiskBufferTest, AFlippedByteLosesOnlyItsRecordAndEveryOtherRecordIsDelivered) {
  const int kBatches = 40, kPer = 100;  // ~60 KB a record: 2-3 blocks each
  {
    auto b = Open(0ms, 64 << 20, false, 16 << 20);
    for (int i = 0; i < kBatches; ++i)
      ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * kPer, kPer, nullptr, nullptr, 500)));
  }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 1u);
  fs::copy(dir_ / "buf", dir_ / "orig");  // the segment and the ledger
  const std::string original = testing::ReadFile(segs[0]);
  ASSERT_GT(original.size(), static_cast<size_t>(kBatches) * 32 * 1024);
  std::vector<int> field;
  const std::vector<int> record_of = RecordOfEachByte(original, &field);
  ASSERT_EQ(record_of.back(), kBatches - 1);

  std::mt19937_64 rng(7);
  int cases = 0;
  while (cases < 16) {
    const size_t at = rng() % original.size();
    // A damaged length or type can also cost the next record when it starts
    // in the same block (the rest of a block without a usable length is
    // skipped): the other parts of a fragment must cost exactly one.
    if (field[at] != 0 && field[at] != 3) continue;
    const int hit = record_of[at];
    SCOPED_TRACE("byte " + std::to_string(at) + " of record " + std::to_string(hit));
    ++cases;
    fs::remove_all(dir_ / "buf");
    fs::copy(dir_ / "orig", dir_ / "buf");
    std::string data = original;
    data[at] ^= static_cast<char>(1 + rng() % 255);
    testing::WriteFile(segs[0], data);
    metrics_ = std::make_unique<Metrics>();
    auto b = Open(0ms, 64 << 20, false, 16 << 20);
    ASSERT_NE(b, nullptr);
    auto seqs = Drain(b.get(), kBatches * kPer);
    std::vector<int64_t> want = Range(0, hit * kPer);
    for (int64_t i = (hit + 1) * kPer; i < kBatches * kPer; ++i) want.push_back(i);
    ASSERT_EQ(seqs, want);
    EXPECT_EQ(b->stats().corrupt_events, static_cast<uint64_t>(kPer));
    EXPECT_EQ(Corrupt(), kPer);
    EXPECT_GT(b->stats().corrupt_bytes, 0u);
    EXPECT_EQ(b->stats().events, 0u);
  }
}

// The error line names the segment that holds the damage, not the one in
// which reading resumed, and says when a segment is missing or cut short.
TEST_F(DiskBufferTest, CorruptionIsReportedAgainstTheDamagedSegment) {
  for (int scenario = 0; scenario < 3; ++scenario) {
    SCOPED_TRACE("scenario " + std::to_string(scenario));
    fs::remove_all(dir_ / "buf");
    metrics_ = std::make_unique<Metrics>();
    {
      auto b = Open(0ms, 64 << 20, false, 40 << 10);
      for (int i = 0; i < 150; ++i)
        ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, nullptr, 100)));
    }
    auto segs = Segments();
    ASSERT_GT(segs.size(), 3u);
    const std::string damaged = fs::path(segs[1]).filename().string();
    std::string expected;
    if (scenario == 0) {
      // The last record of the segment: reading resumes in the next one.
      std::string data = testing::ReadFile(segs[1]);
      data[data.size() - 10] ^= 0x55;
      testing::WriteFile(segs[1], data);
      expected = "corrupt bytes in " + damaged;
    } else if (scenario == 1) {
      fs::remove(segs[1]);
      expected = ": " + damaged + " is missing";
    } else {
      fs::resize_file(segs[1], fs::file_size(segs[1]) / 2);
      expected = "corrupt bytes in " + damaged + "; it ends inside a record (cut short)";
    }
    ::testing::internal::CaptureStderr();
    auto b = Open(0ms, 64 << 20, false, 40 << 10);
    auto seqs = Drain(b.get(), 1500);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_GT(b->stats().corrupt_events, 0u);
    EXPECT_EQ(seqs.size() + b->stats().corrupt_events, 1500u);
    EXPECT_NE(log.find(expected), std::string::npos) << log;
    // Reading resumes in the next segment, which is intact.
    EXPECT_EQ(log.find(fs::path(segs[2]).filename().string()), std::string::npos) << log;
  }
}

// A torn or emptied newest segment: the events the ledger saw fsynced and no
// intact record holds are counted once, at recovery, and the buffer's event
// count goes back to 0 once the rest is delivered (it used to stay at the
// number lost, for ever).
TEST_F(DiskBufferTest, LostTailOfTheNewestSegmentIsCountedOnceAndTheEventCountReachesZero) {
  for (bool empty : {false, true}) {
    SCOPED_TRACE(empty ? "emptied" : "truncated");
    fs::remove_all(dir_ / "buf");
    metrics_ = std::make_unique<Metrics>();
    {
      auto b = Open(0ms, 64 << 20, false, 40 << 10);
      for (int i = 0; i < 60; ++i)
        ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, nullptr, 100)));
    }  // a clean close writes the ledger: 600 events fsynced
    std::vector<std::string> segs;
    for (const auto& p : Segments())
      if (fs::file_size(p) > 0) segs.push_back(p);
    ASSERT_GT(segs.size(), 2u);
    const std::string newest = fs::path(segs.back()).filename().string();
    fs::resize_file(segs.back(), empty ? 0 : fs::file_size(segs.back()) - 50);  // inside its last record
    ::testing::internal::CaptureStderr();
    auto b = Open(0ms, 64 << 20, false, 40 << 10);
    auto seqs = Drain(b.get(), 1000);
    const std::string log = ::testing::internal::GetCapturedStderr();
    ASSERT_FALSE(seqs.empty());
    EXPECT_EQ(seqs, Range(0, static_cast<int64_t>(seqs.size())));
    EXPECT_LT(seqs.size(), 600u);
    EXPECT_EQ(seqs.size() + b->stats().corrupt_events, 600u);
    EXPECT_EQ(Corrupt(), 600.0 - static_cast<double>(seqs.size()));
    EXPECT_EQ(b->stats().events, 0u);
    EXPECT_EQ(metrics_->ForBuffer("s", "file", "disk").events->Value(), 0);
    EXPECT_NE(log.find(empty ? ": " + newest + " is empty" : "corrupt bytes in " + newest), std::string::npos) << log;
    // New events follow; a restart counts nothing again.
    ASSERT_TRUE(b->Push(MakeBatch(600, 10)));
    EXPECT_EQ(Drain(b.get(), 10), Range(600, 610));
    EXPECT_EQ(b->stats().events, 0u);
    b.reset();
    metrics_ = std::make_unique<Metrics>();
    b = Open(0ms, 64 << 20, false, 40 << 10);
    EXPECT_EQ(b->stats().events, 0u);
    EXPECT_EQ(Drain(b.get(), 10).size(), 0u);
    EXPECT_EQ(Corrupt(), 0);
  }
}

TEST_F(DiskBufferTest, TruncatedMiddleSegmentLosesOnlyItsTailAndCountsIt) {
  {
    auto b = Open(0ms, 64 << 20, false, 40 << 10);
    for (int i = 0; i < 60; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, nullptr, 100)));
  }
  auto segs = Segments();
  ASSERT_GT(segs.size(), 2u);
  fs::resize_file(segs[0], fs::file_size(segs[0]) / 2);
  auto b = Open(0ms);
  auto seqs = Drain(b.get(), 600);
  EXPECT_EQ(seqs.size() + b->stats().corrupt_events, 600u);
  EXPECT_GT(b->stats().corrupt_events, 0u);
  EXPECT_EQ(seqs.back(), 599);
}

TEST_F(DiskBufferTest, TornTailOfLastSegmentIsTruncated) {
  {
    auto b = Open(0ms);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10)));
  }
  auto segs = Segments();
  // Half a record at the end, as a crash mid-write leaves it.
  std::string data = testing::ReadFile(segs.back());
  testing::WriteFile(segs.back(), data + data.substr(0, 60));
  auto b = Open(0ms);
  EXPECT_EQ(Drain(b.get(), 100), Range(0, 100));
  EXPECT_EQ(b->stats().corrupt_bytes, 60u);
  ASSERT_TRUE(b->Push(MakeBatch(100, 10)));
  EXPECT_EQ(Drain(b.get(), 10), Range(100, 110));
}

TEST_F(DiskBufferTest, DeletedOrGarbledLedgerIsRebuiltFromSegments) {
  for (bool garble : {false, true}) {
    fs::remove_all(dir_ / "buf");
    {
      auto b = Open(0ms, 64 << 20, false, 32 << 10);
      for (int i = 0; i < 30; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, nullptr, 100)));
      EXPECT_EQ(Drain(b.get(), 100).size(), 100u);  // acknowledged, maybe still on disk
    }
    if (garble) testing::WriteFile((dir_ / "buf") + "/ledger", "garbage that is not a ledger");
    else fs::remove((dir_ / "buf") + "/ledger");
    auto b = Open(0ms);
    ASSERT_NE(b, nullptr);
    auto seqs = Drain(b.get(), 300);
    // Everything not acknowledged comes out; acknowledged records still on
    // disk come again (duplicates, never loss).
    ASSERT_FALSE(seqs.empty());
    EXPECT_LE(seqs.front(), 100);
    EXPECT_EQ(seqs.back(), 299);
    for (size_t i = 1; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], seqs[i - 1] + 1);
    EXPECT_EQ(Corrupt(), 0);
  }
}

TEST_F(DiskBufferTest, ZeroLengthAndStraySegmentsDoNotStopIt) {
  {
    auto b = Open(0ms);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10)));
  }
  testing::WriteFile((dir_ / "buf") + "/segment-00000000000000ff.log", "");
  testing::WriteFile((dir_ / "buf") + "/segment-0000000000000100.log", "");
  testing::WriteFile((dir_ / "buf") + "/ledger.tmp", "half a ledger");
  auto b = Open(0ms);
  EXPECT_EQ(Drain(b.get(), 50), Range(0, 50));
  ASSERT_TRUE(b->Push(MakeBatch(50, 10)));
  EXPECT_EQ(Drain(b.get(), 10), Range(50, 60));
  EXPECT_FALSE(fs::exists((dir_ / "buf") + "/ledger.tmp"));
}

TEST_F(DiskBufferTest, SecondOpenOfTheSameDirectoryFails) {
  auto b = Open(0ms);
  DiskBufferOptions o;
  o.dir = dir_ / "buf";
  auto second = DiskBuffer::Open(o, metrics_->ForBuffer("s", "file", "disk"));
  EXPECT_FALSE(second.ok());
}

TEST_F(DiskBufferTest, FullBlocksUntilTheSinkAcknowledges) {
  auto b = Open(0ms, 1 << 20, false, 64 << 10);
  std::atomic<int> pushed{0};
  std::thread writer([&] {
    for (int i = 0; i < 400; ++i) {
      b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, nullptr, 1000));
      ++pushed;
    }
  });
  // ~10 KiB per batch, 1 MiB max: the writer stalls around 100 batches.
  ASSERT_TRUE(WaitFor([&] { return pushed.load() > 50; }, 10s));
  int stalled_at = pushed.load();
  EXPECT_FALSE(WaitFor([&] { return pushed.load() >= 400; }, 500ms));
  EXPECT_LT(pushed.load(), 150);
  EXPECT_LE(b->stats().bytes, 1u << 20);
  (void)stalled_at;
  auto seqs = Drain(b.get(), 4000, true, nullptr, 5s);
  writer.join();
  EXPECT_EQ(seqs, Range(0, 4000));
}

TEST_F(DiskBufferTest, FullDropsNewestAndCountsThem) {
  auto b = Open(0ms, 1 << 20, true, 64 << 10);
  std::atomic<int> delivered{0}, rejected{0};
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, &delivered, &rejected, 1000)));
  EXPECT_GT(rejected.load(), 50);
  EXPECT_EQ(delivered.load() + rejected.load(), 200);
  EXPECT_EQ(b->stats().full_events, static_cast<uint64_t>(rejected.load()) * 10);
  EXPECT_EQ(metrics_->ForBuffer("s", "file", "disk").discarded_full->Value(), rejected.load() * 10.0);
  EXPECT_EQ(Drain(b.get(), 2000), Range(0, delivered.load() * 10));
}

TEST_F(DiskBufferTest, FullDropsNewestLogsAtARateLimit) {
  auto b = Open(0ms, 1 << 20, true, 64 << 10);
  std::atomic<int> rejected{0};
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(b->Push(MakeBatch(static_cast<uint64_t>(i) * 10, 10, nullptr, &rejected, 1000)));
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_GT(rejected.load(), 50);
  // The limiter's burst (5 lines in 10 s), not one line per dropped batch.
  size_t lines = 0;
  for (size_t p = 0; (p = log.find("dropped 10 events (when_full: drop_newest)", p)) != std::string::npos; ++p) ++lines;
  EXPECT_EQ(lines, 5u) << log;
  EXPECT_NE(log.find("WARN [test] disk buffer is full (max_size 1048576 bytes): dropped 10 events"), std::string::npos)
      << log;
}

TEST_F(DiskBufferTest, DiskFullBlocksWithoutLossAndRecovers) {
  auto b = Open(0ms);
  ASSERT_TRUE(b->Push(MakeBatch(0, 10)));
  env_.enospc = true;
  std::atomic<bool> done{false};
  std::atomic<int> delivered{0};
  std::thread writer([&] {
    b->Push(MakeBatch(10, 10, &delivered));
    done = true;
  });
  ASSERT_TRUE(WaitFor([&] { return env_.failed_appends.load() >= 2; }, 5s));
  EXPECT_FALSE(done.load());
  EXPECT_EQ(delivered.load(), 0);
  env_.enospc = false;  // space comes back
  writer.join();
  EXPECT_EQ(delivered.load(), 1);
  // The short writes were cut off: no corruption, nothing lost.
  EXPECT_EQ(Drain(b.get(), 20), Range(0, 20));
  EXPECT_EQ(b->stats().corrupt_bytes, 0u);
  b.reset();
  auto again = Open(0ms);
  EXPECT_EQ(again->stats().corrupt_bytes, 0u);
}

TEST_F(DiskBufferTest, DiskFullWithDropNewestDropsAndCounts) {
  auto b = Open(0ms, 64 << 20, true);
  std::atomic<int> delivered{0}, rejected{0};
  ASSERT_TRUE(b->Push(MakeBatch(0, 10, &delivered, &rejected)));
  env_.enospc = true;
  ASSERT_TRUE(b->Push(MakeBatch(10, 10, &delivered, &rejected)));
  env_.enospc = false;
  ASSERT_TRUE(b->Push(MakeBatch(20, 10, &delivered, &rejected)));
  EXPECT_EQ(delivered.load(), 2);
  EXPECT_EQ(rejected.load(), 1);
  EXPECT_EQ(metrics_->ForBuffer("s", "file", "disk").discarded_full->Value(), 10);
  auto seqs = Drain(b.get(), 20);
  EXPECT_EQ(seqs.size(), 20u);
  EXPECT_EQ(seqs.front(), 0);
  EXPECT_EQ(seqs.back(), 29);
  EXPECT_EQ(Corrupt(), 0);
}

TEST_F(DiskBufferTest, FsyncFailureIsNeverAcknowledgedAsDelivered) {
  auto b = Open(0ms);
  std::atomic<int> delivered{0}, failed{0};
  env_.fail_sync = true;
  b->Push(MakeBatch(0, 10, &delivered, &failed));
  EXPECT_EQ(delivered.load(), 0);
  EXPECT_EQ(failed.load(), 1);
  env_.fail_sync = false;
  b->Push(MakeBatch(10, 10, &delivered, &failed));
  EXPECT_EQ(delivered.load(), 1);
}

TEST_F(DiskBufferTest, CloseDrainsThenReportsClosedAndAbortStopsAtOnce) {
  auto b = Open(10s);  // a long interval: Close must still flush
  std::atomic<int> delivered{0};
  ASSERT_TRUE(b->Push(MakeBatch(0, 10, &delivered)));
  b->Close();
  EXPECT_EQ(Drain(b.get(), 10, true, nullptr, 5s), Range(0, 10));
  // Close asks the flusher thread for the fsync; the acknowledgement follows it.
  EXPECT_TRUE(WaitFor([&] { return delivered.load() == 1; }, 5s)) << delivered.load();
  Batch x;
  EXPECT_EQ(b->Next(&x, 1s), SinkInput::Result::kClosed);
  std::atomic<int> failed{0};
  EXPECT_FALSE(b->Push(MakeBatch(10, 1, nullptr, &failed)));
  EXPECT_EQ(failed.load(), 1);

  auto dir2 = dir_ / "buf2";
  DiskBufferOptions o;
  o.dir = dir2;
  o.flush_interval = 10s;
  auto c = std::move(DiskBuffer::Open(o, metrics_->ForBuffer("t", "file", "disk"))).value();
  std::atomic<int> d2{0};
  ASSERT_TRUE(c->Push(MakeBatch(0, 10, &d2)));
  c->Abort();
  EXPECT_EQ(d2.load(), 1);  // durable once synced at abort: acknowledged
  EXPECT_EQ(c->Next(&x, 1s), SinkInput::Result::kClosed);
}

}  // namespace
}  // namespace tributary
