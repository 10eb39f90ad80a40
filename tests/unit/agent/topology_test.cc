#include "agent/topology.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/support/test_components.h"
#include "tests/support/test_util.h"

namespace tributary {
namespace {

using testing::SinkState;
using testing::SourceState;
using testing::WaitFor;

class TopologyTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::ResetTestComponents(); }
  std::unique_ptr<Topology> Build(const std::string& yaml) {
    config::Diagnostics diag;
    auto cfg = config::LoadConfigFromStrings({{"t.yaml", "data_dir: " + dir_.path() + "\n" + yaml}}, &diag);
    EXPECT_TRUE(cfg) << diag.ToString();
    if (!cfg) return nullptr;
    auto t = Topology::Build(*cfg, &metrics_, "testhost");
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }
  size_t Statuses(const std::string& id, BatchStatus s) {
    auto& st = SourceState(id);
    std::lock_guard lock(st.mu);
    return std::count(st.statuses.begin(), st.statuses.end(), s);
  }
  testing::TempDir dir_;
  Metrics metrics_;
};

TEST_F(TopologyTest, FanOutDeliversEverythingToEverySinkAndAcksAfterBoth) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 20, batch_size: 50 } }
sinks:
  a: { type: test_sink, inputs: [gen] }
  b: { type: test_sink, inputs: [gen] }
)");
  ASSERT_TRUE(t);
  SinkState("b").Pause();
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return SinkState("a").count() == 1000; }));
  EXPECT_EQ(Statuses("gen", BatchStatus::kDelivered), 0u) << "acked before sink b delivered";
  SinkState("b").Resume();
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kDelivered) == 20; }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
  EXPECT_EQ(SinkState("b").count(), 1000u);
  std::string m = metrics_.Serialize();
  EXPECT_EQ(testing::MetricValue(m, "tributary_component_sent_events_total", {{"component_id", "gen"}}), 1000);
  EXPECT_EQ(testing::MetricValue(m, "tributary_component_sent_events_total", {{"component_id", "a"}}), 1000);
  EXPECT_EQ(testing::MetricValue(m, "tributary_component_received_events_total", {{"component_id", "b"}}), 1000);
}

// A sink whose Run returns an error delivers nothing more: before, it was
// only logged, the sink stayed healthy, its buffer filled, and a stop gave
// the buffer up with exit 0. Now it asks the agent to shut down (the main
// loop polls AbandonedSink) and reports itself unhealthy.
TEST_F(TopologyTest, ASinkThatFailsAsksTheAgentToStopAndIsUnhealthy) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 20, batch_size: 50 } }
sinks:
  ok: { type: test_sink, inputs: [gen] }
  broken: { type: test_broken_sink, inputs: [gen] }
)");
  ASSERT_TRUE(t);
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return !t->AbandonedSink().empty(); }));
  EXPECT_EQ(t->AbandonedSink(), "broken: stopped with an error: broken on purpose");
  EXPECT_EQ(testing::MetricValue(metrics_.Serialize(), "tributary_component_healthy", {{"component_id", "broken"}}), 0);
  t->Stop(std::chrono::seconds(1));
}

TEST_F(TopologyTest, SlowSinkSlowsTheSourceAndNothingIsDropped) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 100, batch_size: 10 } }
transforms:
  tag: { type: add_fields, inputs: [gen], fields: { tagged: true } }
sinks:
  slow: { type: test_sink, inputs: [tag], buffer: { max_events: 30 } }
)");
  ASSERT_TRUE(t);
  auto& sink = SinkState("slow");
  sink.Pause();
  t->Start();
  // The sink holds one batch (paused in Write), the buffer 3, and the source
  // blocks on the next push: it cannot get further ahead than that.
  ASSERT_TRUE(WaitFor([&] {
    auto& st = SourceState("gen");
    std::lock_guard lock(st.mu);
    return st.sent_batches >= 5;
  }));
  {
    auto& st = SourceState("gen");
    std::lock_guard lock(st.mu);
    EXPECT_LE(st.sent_batches, 5u) << "source was not slowed down by the full buffer";
  }
  sink.Resume();
  ASSERT_TRUE(WaitFor([&] { return sink.count() == 1000; }));
  ASSERT_TRUE(t->Stop(std::chrono::seconds(5)));
  std::lock_guard lock(sink.mu);
  for (size_t i = 0; i < sink.events.size(); ++i) {
    ASSERT_EQ(sink.events[i].get("seq")->as_int(), static_cast<int64_t>(i)) << "lost or reordered";
    ASSERT_TRUE(sink.events[i].get("tagged")->as_bool());
  }
}

TEST_F(TopologyTest, ShutdownTimeoutFailsWhatWasNotDelivered) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 10, batch_size: 10 } }
sinks:
  stuck: { type: test_sink, inputs: [gen], buffer: { max_events: 1000 } }
)");
  ASSERT_TRUE(t);
  SinkState("stuck").Pause();
  t->Start();
  ASSERT_TRUE(WaitFor([&] {
    auto& st = SourceState("gen");
    std::lock_guard lock(st.mu);
    return st.sent_batches == 10;
  }));
  std::thread resume([&] {
    // The paused sink holds one batch in Write; unblock it only after the
    // hard stop so the rest is still in the buffer when the timeout hits.
    WaitFor([&] { return t->state() == Topology::State::kStopping; });
    WaitFor([&] { return Statuses("gen", BatchStatus::kFailed) >= 9; });
    SinkState("stuck").Resume();
  });
  EXPECT_FALSE(t->Stop(std::chrono::milliseconds(200)));
  resume.join();
  EXPECT_EQ(Statuses("gen", BatchStatus::kFailed), 9u);
  EXPECT_EQ(Statuses("gen", BatchStatus::kDelivered), 1u);
}

TEST_F(TopologyTest, RejectedEventsAreAckedAsRejected) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 3, batch_size: 5 } }
transforms:
  mark: { type: add_fields, inputs: [gen], fields: { reject: true } }
sinks:
  picky: { type: test_sink, inputs: [mark] }
)");
  ASSERT_TRUE(t);
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kRejected) == 3; }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
  EXPECT_EQ(SinkState("picky").count(), 0u);
  EXPECT_EQ(testing::MetricValue(metrics_.Serialize(), "tributary_component_errors_total",
                                 {{"component_id", "picky"}, {"error_type", "rejected"}}),
            15);
}

// Batches whose events are all filtered out, or that go to a route output
// nobody consumes, are done with: their sources may commit past them (a
// dropped batch with no status would count as failed).
TEST_F(TopologyTest, FilteredOutAndUnconsumedBatchesAreAckedAsDelivered) {
  auto t = Build(R"(
sources:
  gen: { type: test_source, batches: 4, batch_size: 5 }
  gen2: { type: test_source, batches: 3, batch_size: 5 }
transforms:
  none: { type: filter, inputs: [gen], condition: { field: seq, lt: 0 } }
  split: { type: route, inputs: [gen2], route: { low: { field: seq, lt: 0 } } }
sinks:
  a: { type: test_sink, inputs: [none] }
  b: { type: test_sink, inputs: [split._unmatched] }
)");
  ASSERT_TRUE(t);
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kDelivered) == 4; }));
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen2", BatchStatus::kDelivered) == 3; }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
  EXPECT_EQ(SinkState("a").count(), 0u);
  EXPECT_EQ(SinkState("b").count(), 15u);
  EXPECT_EQ(Statuses("gen", BatchStatus::kFailed) + Statuses("gen2", BatchStatus::kFailed), 0u);
}

// A route counts what it sends per output, and has no sent_events series
// without `output` (it stayed 0 next to the per-output ones).
TEST_F(TopologyTest, ARouteCountsSentEventsPerOutputOnly) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 4, batch_size: 10 } }
transforms:
  split: { type: route, inputs: [gen], route: { low: { field: seq, lt: 10 }, none: { field: seq, lt: 0 } } }
sinks:
  a: { type: test_sink, inputs: [split.low] }
  b: { type: test_sink, inputs: [split._unmatched] }
)");
  ASSERT_TRUE(t);
  t->Start();
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kDelivered) == 4; }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
  std::string m = metrics_.Serialize();
  auto sent = [&](const std::string& output) {
    return testing::MetricValue(m, "tributary_component_sent_events_total",
                                {{"component_id", "split"}, {"output", output}});
  };
  EXPECT_EQ(sent("low"), 10);
  EXPECT_EQ(sent("none"), 0);
  EXPECT_EQ(sent("_unmatched"), 30);
  EXPECT_EQ(testing::MetricValue(m, "tributary_component_received_events_total", {{"component_id", "split"}}), 40);
  std::istringstream in(m);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("tributary_component_sent_events_total{", 0) == 0 &&
        line.find("component_id=\"split\"") != std::string::npos)
      EXPECT_NE(line.find("output=\""), std::string::npos) << "a route series without an output: " << line;
  }
}

// What a sink's memory buffer counts against max_bytes (and reports as
// tributary_buffer_bytes) is the share of the source's bytes its events
// stand for: a route's outputs counted nothing, so a sink behind a route
// had no byte bound, and a filter's output counted what it dropped.
TEST_F(TopologyTest, TransformOutputsCarryTheirShareOfTheSourceBytes) {
  auto t = Build(R"(
sources: { gen: { type: test_source, batches: 6, batch_size: 10, event_bytes: 100 } }
transforms:
  split: { type: route, inputs: [gen], route: { low: { field: seq, lt: 25 } } }
  some: { type: filter, inputs: [gen], condition: { field: seq, lt: 25 } }
sinks:
  a: { type: test_sink, inputs: [split.low] }
  b: { type: test_sink, inputs: [split._unmatched] }
  c: { type: test_sink, inputs: [some] }
)");
  ASSERT_TRUE(t);
  for (const char* s : {"a", "b", "c"}) SinkState(s).Pause();
  t->Start();
  // Each paused sink holds its first batch in Write: a and c 10 events
  // of 10, 10, 5; b 5 of 5, 10, 10, 10.
  std::string m;
  auto buffered = [&](const char* metric, const std::string& sink) {
    return testing::MetricValue(m, metric, {{"component_id", sink}});
  };
  ASSERT_TRUE(WaitFor([&] {
    m = metrics_.Serialize();
    return buffered("tributary_buffer_events", "a") == 15 && buffered("tributary_buffer_events", "b") == 30 &&
           buffered("tributary_buffer_events", "c") == 15;
  })) << m;
  EXPECT_EQ(buffered("tributary_buffer_bytes", "a"), 1500);  // was 0
  EXPECT_EQ(buffered("tributary_buffer_bytes", "b"), 3000);  // was 0
  EXPECT_EQ(buffered("tributary_buffer_bytes", "c"), 1500);  // was 2000
  for (const char* s : {"a", "b", "c"}) SinkState(s).Resume();
  ASSERT_TRUE(WaitFor([&] { return Statuses("gen", BatchStatus::kDelivered) == 6; }));
  EXPECT_TRUE(t->Stop(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace tributary
