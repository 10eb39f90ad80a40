// The acknowledgement chain through disk buffers, in a whole topology.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "agent/topology.h"
#include "tests/support/test_components.h"
#include "tests/support/test_util.h"

namespace tributary {
namespace {

using testing::SinkState;
using testing::SourceState;
using testing::WaitFor;

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

}  // namespace
}  // namespace tributary
