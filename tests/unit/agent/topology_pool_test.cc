// The worker pool path of the topology (--threads > 1): batches of one
// source reach the sinks in the order sent although workers finish them
// out of order; a blocked sink stops the source after a bounded number of
// batches; every finalizer fires once with the right status.

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "agent/topology.h"
#include "config/registry.h"
#include "tests/support/test_util.h"

namespace tributary {
namespace {

using testing::TempDir;
using testing::MetricValue;
using testing::WaitFor;

struct Shared {
  int batches = 0;
  int events_per_batch = 0;
  std::atomic<int> created{0};  // batches made, sent or not
  std::atomic<int> sent{0};
  std::atomic<int> delivered{0};
  std::atomic<int> failed{0};
  std::atomic<bool> gate_open{true};
  // SendMore instead of Send; after `pause_after` batches the source says
  // so and waits for `resume`, then flushes.
  bool send_more = false;
  int pause_after = -1;
  std::atomic<bool> paused{false};
  std::atomic<bool> resume{false};
  std::mutex mu;
  std::vector<int64_t> seen;  // seq numbers in sink order
  std::thread::id source_thread;
  std::set<std::thread::id> transform_threads;
};
Shared* g_shared = nullptr;

class SeqSource final : public Source {
 public:
  Status Run(SourceContext& ctx) override {
    int64_t seq = 0;
    {
      std::lock_guard lock(g_shared->mu);
      g_shared->source_thread = std::this_thread::get_id();
    }
    for (int b = 0; b < g_shared->batches && !ctx.stop_token().stop_requested(); ++b) {
      std::vector<Event> events;
      for (int i = 0; i < g_shared->events_per_batch; ++i) {
        Event e;
        e.fields().set("seq", Value(seq++));
        events.push_back(std::move(e));
      }
      Batch batch(std::move(events));
      g_shared->created.fetch_add(1);
      batch.add_finalizer(Finalizer::Create([](BatchStatus s) {
        (s == BatchStatus::kDelivered ? g_shared->delivered : g_shared->failed).fetch_add(1);
      }));
      if (!(g_shared->send_more ? ctx.SendMore(std::move(batch)) : ctx.Send(std::move(batch)))) break;
      g_shared->sent.fetch_add(1);
      if (b + 1 == g_shared->pause_after) {
        g_shared->paused = true;
        while (!g_shared->resume.load() && !ctx.stop_token().stop_requested())
          std::this_thread::sleep_for(std::chrono::milliseconds(1));  // held by the test, not waiting for a result
        ctx.Flush();
      }
    }
    if (g_shared->send_more) ctx.Flush();
    return Status::Ok();
  }
};

// Takes longer on some batches than others so that workers finish out of order.
class JitterTransform final : public Transform {
 public:
  void Process(Batch& in, std::span<Batch> outputs) override {
    int64_t first = in.events().front().get("seq")->as_int();
    int64_t batch_no = first / std::max(1, g_shared->events_per_batch);
    std::this_thread::sleep_for(std::chrono::microseconds((batch_no % 4 == 0) ? 2000 : 50));
    {
      std::lock_guard lock(g_shared->mu);
      g_shared->transform_threads.insert(std::this_thread::get_id());
    }
    for (Event& e : in.mutable_events()) e.fields().set("seen_by", Value("jitter"));
    outputs[0] = std::move(in);
  }
};

class RecordingSink final : public Sink {
 public:
  Status Run(SinkContext& ctx) override {
    while (!g_shared->gate_open.load()) {
      if (ctx.hard_stop().stop_requested()) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a gate, not a wait for a result
    }
    Batch b;
    while (true) {
      auto r = ctx.input().Next(&b, std::chrono::milliseconds(50));
      if (r == SinkInput::Result::kClosed) return Status::Ok();
      if (r != SinkInput::Result::kBatch) continue;
      {
        std::lock_guard lock(g_shared->mu);
        for (const Event& e : b.events()) {
          EXPECT_EQ(e.get("seen_by")->as_string(), "jitter");
          g_shared->seen.push_back(e.get("seq")->as_int());
        }
      }
      b.Finalize(BatchStatus::kDelivered);
    }
  }
};

struct NoOptions {};

config::ComponentType MakeType(ComponentKind kind, const char* name) {
  config::ComponentType t;
  t.kind = kind;
  t.name = name;
  t.build_source = [](const void*, BuildContext&) -> Result<std::unique_ptr<Source>> {
    return std::unique_ptr<Source>(new SeqSource());
  };
  t.build_transform = [](const void*, BuildContext&) -> Result<std::unique_ptr<Transform>> {
    return std::unique_ptr<Transform>(new JitterTransform());
  };
  t.build_sink = [](const void*, BuildContext&) -> Result<std::unique_ptr<Sink>> {
    return std::unique_ptr<Sink>(new RecordingSink());
  };
  return t;
}

config::Config MakeConfig(const std::string& data_dir, uint64_t buffer_events) {
  static const config::ComponentType source = MakeType(ComponentKind::kSource, "seq");
  static const config::ComponentType transform = MakeType(ComponentKind::kTransform, "jitter");
  static const config::ComponentType sink = MakeType(ComponentKind::kSink, "recording");
  auto options = std::make_shared<NoOptions>();
  config::Config cfg;
  cfg.global.data_dir = data_dir;
  config::ComponentConfig s;
  s.id = "src";
  s.kind = ComponentKind::kSource;
  s.type = "seq";
  s.type_info = &source;
  s.options = options;
  config::ComponentConfig t;
  t.id = "jit";
  t.kind = ComponentKind::kTransform;
  t.type = "jitter";
  t.type_info = &transform;
  t.inputs = {"src"};
  t.options = options;
  config::ComponentConfig k;
  k.id = "rec";
  k.kind = ComponentKind::kSink;
  k.type = "recording";
  k.type_info = &sink;
  k.inputs = {"jit"};
  k.options = options;
  k.buffer.max_events = buffer_events;
  cfg.components = {s, t, k};
  return cfg;
}

// Every event reached the sink once, in the order sent, and every batch
// was finalized delivered.
void ExpectAllDeliveredInOrder(const Shared& shared) {
  const size_t events = static_cast<size_t>(shared.batches * shared.events_per_batch);
  ASSERT_EQ(shared.seen.size(), events);
  for (size_t i = 0; i < events; ++i) ASSERT_EQ(shared.seen[i], static_cast<int64_t>(i));
  EXPECT_EQ(shared.delivered.load(), shared.batches);
  EXPECT_EQ(shared.failed.load(), 0);
}

class TopologyPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { g_shared = &shared_; }
  void TearDown() override { g_shared = nullptr; }
  Shared shared_;
  TempDir dir_;
  Metrics metrics_;
};

// --threads 3 is the source's thread and two workers: a worker takes a
// batch while the pool holds fewer than four of the source's, and the
// source transforms the others itself. Order is kept across all three.
TEST_F(TopologyPoolTest, KeepsSourceOrderAcrossWorkersAndTheSourceThread) {
  shared_.batches = 200;
  shared_.events_per_batch = 5;
  auto t = Topology::Build(MakeConfig(dir_.path(), 100000), &metrics_, "h", /*threads=*/3);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  (*t)->Start();
  ASSERT_TRUE((*t)->WaitSourcesFinished(std::chrono::seconds(30)));
  ASSERT_TRUE((*t)->Stop(std::chrono::seconds(10)));
  ExpectAllDeliveredInOrder(shared_);
  EXPECT_EQ(shared_.transform_threads.size(), 3u);
  EXPECT_EQ(shared_.transform_threads.count(shared_.source_thread), 1u);
}

TEST_F(TopologyPoolTest, BlockedSinkStopsTheSourceAfterABoundedNumberOfBatches) {
  shared_.batches = 100;
  shared_.events_per_batch = 10;
  shared_.gate_open = false;
  // The buffer holds one batch; 4 × 2 threads (the source's and one worker)
  // = 8 batches may be in flight.
  auto t = Topology::Build(MakeConfig(dir_.path(), 10), &metrics_, "h", /*threads=*/2);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  (*t)->Start();
  ASSERT_TRUE(WaitFor([&] { return shared_.sent.load() >= 9; }));
  EXPECT_FALSE(WaitFor([&] { return shared_.sent.load() > 9; }, std::chrono::milliseconds(300)));
  EXPECT_EQ(shared_.sent.load(), 9);
  EXPECT_EQ(shared_.delivered.load(), 0);
  shared_.gate_open = true;
  ASSERT_TRUE((*t)->WaitSourcesFinished(std::chrono::seconds(30)));
  ASSERT_TRUE((*t)->Stop(std::chrono::seconds(10)));
  ASSERT_EQ(shared_.seen.size(), 1000u);
  for (size_t i = 0; i < shared_.seen.size(); ++i) ASSERT_EQ(shared_.seen[i], static_cast<int64_t>(i));
  EXPECT_EQ(shared_.delivered.load(), 100);
}

TEST_F(TopologyPoolTest, HardStopWithABlockedSinkFailsWhatIsHeld) {
  shared_.batches = 100;
  shared_.events_per_batch = 10;
  shared_.gate_open = false;
  auto t = Topology::Build(MakeConfig(dir_.path(), 10), &metrics_, "h", /*threads=*/2);
  ASSERT_TRUE(t.ok());
  (*t)->Start();
  // 4 × 2 threads in flight and one batch in the buffer: the source is
  // blocked once 9 are sent (unless it saw the stop first).
  ASSERT_TRUE(WaitFor([&] { return shared_.sent.load() >= 9; }));
  EXPECT_FALSE((*t)->Stop(std::chrono::milliseconds(200)));  // cannot drain: hard stop
  // Every batch the source created is finalized exactly once, none
  // delivered: the 9 sent, and the one whose Send was refused if the
  // source was in it when the stop came.
  EXPECT_EQ(shared_.delivered.load(), 0);
  EXPECT_EQ(shared_.sent.load(), 9);
  EXPECT_GE(shared_.created.load(), 9);
  EXPECT_LE(shared_.created.load(), 10);
  EXPECT_EQ(shared_.failed.load(), shared_.created.load());
}

TEST_F(TopologyPoolTest, SingleThreadRunsInline) {
  shared_.batches = 50;
  shared_.events_per_batch = 3;
  auto t = Topology::Build(MakeConfig(dir_.path(), 100000), &metrics_, "h", /*threads=*/1);
  ASSERT_TRUE(t.ok());
  (*t)->Start();
  ASSERT_TRUE((*t)->WaitSourcesFinished(std::chrono::seconds(30)));
  ASSERT_TRUE((*t)->Stop(std::chrono::seconds(10)));
  ASSERT_EQ(shared_.seen.size(), 150u);
  EXPECT_EQ(shared_.delivered.load(), 50);
}

// SendMore gathers small batches: nothing reaches the sink's buffer until
// about a sink batch has gathered or the source flushes; then everything
// arrives in order and every finalizer fires once.
void ExpectGatheredUntilFlushed(Shared& shared, Metrics& metrics, const std::string& dir, size_t threads) {
  shared.batches = 500;
  shared.events_per_batch = 10;
  shared.send_more = true;
  shared.pause_after = 30;  // 300 events: fewer than a sink batch
  auto t = Topology::Build(MakeConfig(dir, 100000), &metrics, "h", threads);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto buffered = [&] {
    return MetricValue(metrics.Serialize(), "tributary_buffer_received_events_total", {{"component_id", "rec"}})
        .value_or(0);
  };
  (*t)->Start();
  ASSERT_TRUE(WaitFor([&] { return shared.paused.load(); }));
  EXPECT_EQ(shared.sent.load(), 30);
  EXPECT_EQ(buffered(), 0);  // gathered, not pushed
  shared.resume = true;
  ASSERT_TRUE(WaitFor([&] { return buffered() >= 300; }));  // the flush pushed them
  ASSERT_TRUE((*t)->WaitSourcesFinished(std::chrono::seconds(30)));
  ASSERT_TRUE((*t)->Stop(std::chrono::seconds(10)));
  ExpectAllDeliveredInOrder(shared);
}

TEST_F(TopologyPoolTest, SendMoreGathersUntilFlushedInline) {
  ExpectGatheredUntilFlushed(shared_, metrics_, dir_.path(), 1);
}

TEST_F(TopologyPoolTest, SendMoreGathersUntilFlushedWithWorkers) {
  ExpectGatheredUntilFlushed(shared_, metrics_, dir_.path(), 2);
}

}  // namespace
}  // namespace tributary
