#include "agent/buffer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace tributary {
namespace {

Batch MakeBatch(size_t n, std::atomic<int>* rejected, size_t bytes = 0) {
  std::vector<Event> events(n);
  Batch b(std::move(events));
  b.set_bytes(bytes);
  b.add_finalizer(Finalizer::Create([rejected](BatchStatus s) {
    if (s == BatchStatus::kRejected) ++*rejected;
  }));
  return b;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = 0; (p = text.find(what, p)) != std::string::npos; p += what.size()) ++n;
  return n;
}

// drop_newest drops, counts and says so in the log, through a limiter: a
// sink that is down for an hour must not write a line per dropped batch.
TEST(MemoryBufferTest, DropNewestCountsAndLogsAtARateLimit) {
  Metrics metrics;
  MemoryBuffer b("out", 10, /*max_bytes=*/1 << 20, /*drop_when_full=*/true, metrics.ForBuffer("out", "file", "memory"));
  std::atomic<int> rejected{0};
  ASSERT_TRUE(b.Push(MakeBatch(10, &rejected)));
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(b.Push(MakeBatch(3, &rejected)));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rejected.load(), 50);
  EXPECT_EQ(metrics.ForBuffer("out", "file", "memory").discarded_full->Value(), 150);
  EXPECT_EQ(Count(log, "WARN [out] memory buffer is full (max_events 10): dropped 3 events (when_full: drop_newest)"),
            5u)
      << log;
  EXPECT_EQ(Count(log, "\n"), 5u) << log;
}

// A Push waiting for room runs the caller's WhileBlocked work on the
// caller's thread, again and again, and returns once there is room; an
// Abort ends the wait whatever the work does.
TEST(MemoryBufferTest, ABlockedPushRunsTheCallersWorkUntilThereIsRoom) {
  struct Counting : WhileBlocked {
    void Work() override {
      EXPECT_EQ(std::this_thread::get_id(), thread);
      ++calls;
    }
    std::thread::id thread;
    std::atomic<int> calls{0};
  };
  Metrics metrics;
  MemoryBuffer b("out", 10, /*max_bytes=*/1 << 20, /*drop_when_full=*/false, metrics.ForBuffer("out", "file", "memory"));
  std::atomic<int> rejected{0};
  ASSERT_TRUE(b.Push(MakeBatch(10, &rejected)));
  Counting work;
  std::atomic<bool> pushed{false};
  std::thread pusher([&] {
    work.thread = std::this_thread::get_id();
    EXPECT_TRUE(b.Push(MakeBatch(5, &rejected), &work));
    pushed = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (work.calls < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_GE(work.calls.load(), 3);
  EXPECT_FALSE(pushed.load());
  Batch out;
  ASSERT_EQ(b.Next(&out, std::chrono::milliseconds(0)), SinkInput::Result::kBatch);  // room
  pusher.join();
  EXPECT_TRUE(pushed.load());

  // Full again: an Abort makes the waiting Push return false.
  Counting work2;
  std::thread aborted([&] {
    work2.thread = std::this_thread::get_id();
    EXPECT_FALSE(b.Push(MakeBatch(10, &rejected), &work2));
  });
  while (work2.calls < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  b.Abort();
  aborted.join();
}

// max_bytes bounds the buffer as max_events does, whichever is reached
// first (R4 of the resource probe: 10,000 lines of 100 KiB made 1.1 GB),
// with the same exception: a batch over the bound on its own passes once
// the buffer is empty, or it would wait for ever.
TEST(MemoryBufferTest, MaxBytesBlocksAndABiggerBatchPassesWhenEmpty) {
  struct Counting : WhileBlocked {
    void Work() override { ++calls; }
    std::atomic<int> calls{0};
  };
  Metrics metrics;
  const BufferMetrics m = metrics.ForBuffer("out", "file", "memory");
  MemoryBuffer b("out", 10000, /*max_bytes=*/1000, /*drop_when_full=*/false, m);
  std::atomic<int> rejected{0};
  ASSERT_TRUE(b.Push(MakeBatch(2, &rejected, 600)));
  ASSERT_TRUE(b.Push(MakeBatch(2, &rejected, 400)));  // exactly max_bytes
  EXPECT_EQ(m.bytes->Value(), 1000);
  Counting work;
  std::atomic<bool> pushed{false};
  std::thread pusher([&] {
    EXPECT_TRUE(b.Push(MakeBatch(1, &rejected, 5000), &work));  // alone over max_bytes
    pushed = true;
  });
  struct Joiner {  // on a failed ASSERT too
    MemoryBuffer& b;
    std::thread& t;
    ~Joiner() {
      if (!t.joinable()) return;
      b.Abort();
      t.join();
    }
  } joiner{b, pusher};
  // Work runs only while the push waits for room.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto wait_calls = [&](int n) {
    while (work.calls < n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return work.calls >= n;
  };
  ASSERT_TRUE(wait_calls(1));
  Batch out;
  ASSERT_EQ(b.Next(&out, std::chrono::milliseconds(0)), SinkInput::Result::kBatch);
  EXPECT_EQ(out.bytes(), 600u);
  // 400 bytes left and 10,000 events of room: the 5,000-byte batch waits
  // for the buffer to be empty.
  ASSERT_TRUE(wait_calls(work.calls + 2));
  EXPECT_FALSE(pushed.load()) << "passed while the buffer held 400 of its 1000 bytes";
  ASSERT_EQ(b.Next(&out, std::chrono::milliseconds(0)), SinkInput::Result::kBatch);
  EXPECT_EQ(out.bytes(), 400u);
  pusher.join();  // empty: it passes
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(m.bytes->Value(), 5000);
  EXPECT_EQ(m.events->Value(), 1);
  ASSERT_EQ(b.Next(&out, std::chrono::milliseconds(0)), SinkInput::Result::kBatch);
  EXPECT_EQ(out.bytes(), 5000u);
  EXPECT_EQ(rejected.load(), 0);
}

// drop_newest applies to the byte bound too, and the log says which bound.
TEST(MemoryBufferTest, DropNewestAppliesToMaxBytes) {
  Metrics metrics;
  const BufferMetrics m = metrics.ForBuffer("out", "file", "memory");
  MemoryBuffer b("out", 10000, /*max_bytes=*/1 << 20, /*drop_when_full=*/true, m);
  std::atomic<int> rejected{0};
  ASSERT_TRUE(b.Push(MakeBatch(3, &rejected, 3 << 20)));  // alone over max_bytes: kept
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(b.Push(MakeBatch(2, &rejected, 10)));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rejected.load(), 1);
  EXPECT_EQ(m.discarded_full->Value(), 2);
  EXPECT_EQ(m.events->Value(), 3);
  EXPECT_EQ(Count(log, "WARN [out] memory buffer is full (max_bytes 1MiB): dropped 2 events (when_full: drop_newest)"),
            1u)
      << log;
}

}  // namespace
}  // namespace tributary
