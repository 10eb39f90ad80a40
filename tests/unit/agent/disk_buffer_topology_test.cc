// The acknowledgement chain through disk buffers, in a whole topology.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "agent/disk_buffer.h"
#include "agent/topology.h"
#include "tests/support/test_components.h"
#include "tests/support/test_util.h"

namespace tributary {
namespace {

using testing::SinkState;
using testing::SourceState;
using testing::WaitFor;

// For a test that leaves a sink thread stuck (paused) and abandoned:
// whatever happens in it, the thread is let go before the next test resets
// the test components, and the metric handles of the abandoned topology,
// which point into the fixture's Metrics, stay valid.
struct LetGo {
  std::string sink;
  std::unique_ptr<Metrics>& metrics;
  ~LetGo() {
    SinkState(sink).Resume();
    (void)metrics.release();
  }
};

class DiskBufferTopologyTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::ResetTestComponents(); }
  std::unique_ptr<Topology> Build(const std::string& yaml) {
    config::Diagnostics diag;
    auto cfg = config::LoadConfigFromStrings({{"t.yaml", "data_dir: " + dir_.path() + "\n" + yaml}}, &diag);
    EXPECT_TRUE(cfg) << diag.ToString();
    if (!cfg) return nullptr;
    auto t = Topology::Build(*cfg, metrics_.get(), "testhost");
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }
  size_t Statuses(const std::string& id, BatchStatus s) {
    auto& st = SourceState(id);
    std::lock_guard lock(st.mu);
    return std::count(st.statuses.begin(), st.statuses.end(), s);
  }
  std::vector<int64_t> Seqs(const std::string& sink) {
    auto& st = SinkState(sink);
    std::lock_guard lock(st.mu);
    std::vector<int64_t> out;
    for (const auto& e : st.events) out.push_back(e.get("seq")->as_int());
    return out;
  }
  testing::TempDir dir_;
  std::unique_ptr<Metrics> metrics_ = std::make_unique<Metrics>();
};

constexpr const char* kFanOut = R"(
sources: { gen: { type: test_source, batches: 20, batch_size: 50 } }
sinks:
  mem: { type: test_sink, inputs: [gen] }
  disk: { type: test_sink, inputs: [gen], buffer: { type: disk, flush_interval_ms: 20 } }
)";

TEST_F(DiskBufferTopologyTest, FanOutToDiskAndMemoryAcksWhenDurableAndDelivered) {
  auto t = Build(kFanOut);
  ASSERT_TRUE(t);
  SinkState("disk").Pause();
  SinkState("mem").Pause();
  t->Start();
  // On disk is not enough while the memory sink has not delivered.
  ASSERT_TRUE(WaitFor([&] {
    return testing::MetricValue(metrics_->Serialize(), "tributary_buffer_events", {{"component_id", "disk"}}) ==
           1000;
  }));
  EXPECT_EQ(Statuses("gen", BatchStatus::kDelivered), 0u);
  // Delivered by the memory sink and durable in the disk buffer: the source
  // may commit, although the disk sink has not sent anything yet.
  SinkState("mem").Resume();
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kDelivered) == 20; }));
  EXPECT_LE(SinkState("disk").count(), 50u);
  std::thread resume([&] {
    WaitFor([&] { return t->state() == Topology::State::kStopping; });
    SinkState("disk").Resume();
  });
  t->Stop(std::chrono::milliseconds(300));
  resume.join();
  EXPECT_EQ(Statuses("gen", BatchStatus::kFailed), 0u);
  const auto first_run = Seqs("disk");
  t.reset();

  // The next run delivers from the disk buffer what the disk sink had not
  // acknowledged: together, every event, in order, none missing.
  testing::ResetTestComponents();
  metrics_ = std::make_unique<Metrics>();
  t = Build(R"(
sources: { gen: { type: test_source, batches: 0, batch_size: 1 } }
sinks:
  disk: { type: test_sink, inputs: [gen], buffer: { type: disk, flush_interval_ms: 20 } }
)");
  ASSERT_TRUE(t);
  t->Start();
  ASSERT_TRUE(WaitFor([&] {
    return testing::MetricValue(metrics_->Serialize(), "tributary_buffer_events", {{"component_id", "disk"}}) == 0;
  }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
  auto second_run = Seqs("disk");
  std::set<int64_t> all(first_run.begin(), first_run.end());
  all.insert(second_run.begin(), second_run.end());
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_EQ(*all.rbegin(), 999);
  for (size_t i = 1; i < second_run.size(); ++i) ASSERT_EQ(second_run[i], second_run[i - 1] + 1);
  EXPECT_EQ(testing::MetricValue(metrics_->Serialize(), "tributary_buffer_discarded_events_total",
                                 {{"component_id", "disk"}, {"reason", "corrupt"}}),
            0);
}

TEST_F(DiskBufferTopologyTest, RejectedEventsBehindADiskBufferAreCountedAndAcked) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 3, batch_size: 5 } }
transforms:
  mark: { type: add_fields, inputs: [gen], fields: { reject: true } }
sinks:
  picky: { type: test_sink, inputs: [mark], buffer: { type: disk, flush_interval_ms: 0 } }
)");
  ASSERT_TRUE(t);
  t->Start();
  // Upstream: durable = delivered. Downstream the sink rejects; the buffer
  // moves past the rejected records (they are not retried forever).
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kDelivered) == 3; }));
  ASSERT_TRUE(WaitFor([&] {
    std::string m = metrics_->Serialize();
    return testing::MetricValue(m, "tributary_component_errors_total",
                                {{"component_id", "picky"}, {"error_type", "rejected"}}) == 15 &&
           testing::MetricValue(m, "tributary_buffer_events", {{"component_id", "picky"}}) == 0;
  }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
}

constexpr const char* kOneDiskSink = R"(
sources: { gen: { type: test_source, batches: 10, batch_size: 10 } }
sinks:
  disk: { type: test_sink, inputs: [gen], buffer: { type: disk, flush_interval_ms: 20 } }
)";

// A sink thread stuck in a write that ignores the hard stop is abandoned
// by Stop. Disposing of its topology must still unlock its disk buffer, so
// that the next pipeline (a reload) can open it; the stuck batch is
// delivered again by the next pipeline (at least once), nothing is lost.
TEST_F(DiskBufferTopologyTest, AStuckSinkThreadDoesNotKeepItsDiskBufferLocked) {
  LetGo let_go{"disk", metrics_};
  auto t = Build(kOneDiskSink);
  ASSERT_TRUE(t);
  SinkState("disk").Pause();
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kDelivered) == 10; }));  // durable
  EXPECT_FALSE(t->Stop(std::chrono::milliseconds(100)));  // the stuck thread is abandoned at the deadline
  ASSERT_TRUE(t->HasAbandonedThreads());
  Topology::Dispose(std::move(t));

  t = Build(R"(
sources: { gen: { type: test_source, batches: 0 } }
sinks:
  disk: { type: test_sink, inputs: [gen], buffer: { type: disk, flush_interval_ms: 20 } }
)");
  ASSERT_TRUE(t) << "the abandoned pipeline still holds the disk buffer";
  t->Start();
  SinkState("disk").Resume();  // both the stuck thread and the new one deliver
  ASSERT_TRUE(WaitFor([&] {
    return testing::MetricValue(metrics_->Serialize(), "tributary_buffer_events", {{"component_id", "disk"}}) == 0;
  }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
  // The stuck batch twice (its ack came after the release, so the new
  // pipeline delivered it again), everything else once.
  ASSERT_TRUE(WaitFor([&] { return SinkState("disk").count() == 110; })) << SinkState("disk").count();
  auto seqs = Seqs("disk");
  std::map<int64_t, int> times;
  for (int64_t s : seqs) ++times[s];
  EXPECT_EQ(times.size(), 100u);
  for (const auto& [seq, n] : times) EXPECT_EQ(n, seq < 10 ? 2 : 1) << seq;
}

// The topology of a stop that abandons a stuck sink thread was kept whole
// for the life of the process: its sources with the files and watches
// they hold, its transforms, the other sinks' buffers. Only the stuck
// sink's own parts are kept now.
TEST_F(DiskBufferTopologyTest, AnAbandonedSinkKeepsOnlyItsOwnPartsAlive) {
  LetGo let_go{"stuck", metrics_};
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 10, batch_size: 10 } }
transforms: { re: { type: test_regex, inputs: [gen], pattern: x } }
sinks:
  stuck: { type: test_sink, inputs: [re] }
  fine: { type: test_sink, inputs: [gen] }
)");
  ASSERT_TRUE(t);
  SinkState("stuck").Pause();
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return SinkState("fine").count() == 100; }));
  EXPECT_FALSE(t->Stop(std::chrono::milliseconds(100)));
  ASSERT_EQ(t->AbandonedSinks(), std::vector<std::string>{"stuck"});
  EXPECT_EQ(SourceState("gen").alive, 1);
  Topology::Dispose(std::move(t));
  EXPECT_EQ(SourceState("gen").alive, 0) << "the source is kept with the abandoned sink";
  SinkState("stuck").Resume();  // the abandoned thread ends with what it still has
  ASSERT_TRUE(WaitFor([&] { return SinkState("stuck").count() > 0; }));
}

// A sink whose buffer changed from disk to memory between two runs gets
// what its disk buffer still held first, then the memory buffer's events;
// once that is delivered the disk buffer's directory is removed.
TEST_F(DiskBufferTopologyTest, ASinkSwitchedFromDiskToMemoryDeliversWhatItsDiskBufferHeld) {
  // What the sink's disk buffer held when the last run stopped: 10
  // batches of 10, acknowledged upstream long ago.
  {
    DiskBufferOptions o;
    o.dir = dir_.path() + "/buffer/disk";
    o.name = "disk";
    o.flush_interval = std::chrono::milliseconds(0);
    auto b = DiskBuffer::Open(o, metrics_->ForBuffer("disk", "test_sink", "disk"));
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    for (int64_t batch = 0, seq = 0; batch < 10; ++batch) {
      std::vector<Event> events;
      for (int i = 0; i < 10; ++i) {
        Event e;
        e.set("seq", seq++);
        events.push_back(std::move(e));
      }
      ASSERT_TRUE((*b)->Push(Batch(std::move(events))));
    }
  }
  SinkState("disk").Pause();  // the memory buffer's events must wait for the disk buffer's
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 2, batch_size: 10 } }
sinks:
  disk: { type: test_sink, inputs: [gen], buffer: { type: memory } }
)");
  ASSERT_TRUE(t);
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return SourceState("gen").sent_batches == 2; }));
  SinkState("disk").Resume();
  ASSERT_TRUE(WaitFor([&] { return SinkState("disk").count() == 120; }));
  ASSERT_TRUE(WaitFor([&] {
    return testing::MetricValue(metrics_->Serialize(), "tributary_buffer_events",
                                {{"component_id", "disk"}, {"buffer_type", "disk"}}) == 0;
  }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
  t.reset();
  // The disk buffer's 100 (seq 0-99), in order, then the source's 20 (0-19).
  std::vector<int64_t> want;
  for (int64_t i = 0; i < 100; ++i) want.push_back(i);
  for (int64_t i = 0; i < 20; ++i) want.push_back(i);
  EXPECT_EQ(Seqs("disk"), want);
  EXPECT_EQ(Statuses("gen", BatchStatus::kDelivered), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/buffer/disk")) << "the drained directory is left behind";

  // The next start finds nothing to deliver, and has no disk buffer.
  testing::ResetTestComponents();
  metrics_ = std::make_unique<Metrics>();
  t = Build(R"(
sources: { gen: { type: test_source, batches: 0 } }
sinks:
  disk: { type: test_sink, inputs: [gen], buffer: { type: memory } }
)");
  ASSERT_TRUE(t);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/buffer/disk"));
  EXPECT_FALSE(testing::MetricValue(metrics_->Serialize(), "tributary_buffer_events",
                                    {{"component_id", "disk"}, {"buffer_type", "disk"}}));
}

}  // namespace
}  // namespace tributary
