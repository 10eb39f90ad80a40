// The kafka sink's acknowledgement bookkeeping against librdkafka's
// in-process mock cluster: a batch's events are released once queued, and
// the batch is finalized from the delivery report of its last message, with
// the worst outcome of any of its messages.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>  // after rdkafka.h

#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include "agent/batch.h"
#include "agent/component.h"
#include "agent/metrics.h"
#include "sinks/kafka_sink.h"

namespace tributary {
namespace {

using Clock = std::chrono::steady_clock;

class QueueInput : public SinkInput {
 public:
  std::deque<Batch> batches;
  Result Next(Batch* out, std::chrono::milliseconds) override {
    if (batches.empty()) return Result::kClosed;
    *out = std::move(batches.front());
    batches.pop_front();
    return Result::kBatch;
  }
};

class TestContext : public SinkContext {
 public:
  explicit TestContext(ComponentMetrics* m) : metrics_(m) {}
  SinkInput& input() override { return input_; }
  ComponentMetrics& metrics() override { return *metrics_; }
  std::stop_token hard_stop() const override { return stop_.get_token(); }
  void SetHealthy(bool, std::string_view) override {}
  QueueInput input_;

 private:
  ComponentMetrics* metrics_;
  std::stop_source stop_;
};

// One finalized batch: its status and when (after the sink started).
struct Outcome {
  int calls = 0;
  BatchStatus status = BatchStatus::kDelivered;
  Clock::duration at{};
};

Batch MakeBatch(const std::string& prefix, int n, Outcome* outcome, Clock::time_point start) {
  std::vector<Event> events(n);
  for (int i = 0; i < n; ++i) {
    events[i].fields().append(kTimestampField, Now());
    events[i].fields().append(kMessageField, prefix + "-" + std::to_string(i));
  }
  Batch b(std::move(events));
  b.add_finalizer(Finalizer::Create([outcome, start](BatchStatus s) {
    ++outcome->calls;
    outcome->status = s;
    outcome->at = Clock::now() - start;
  }));
  return b;
}

// Holds an in-process mock cluster with one broker and topic `logs`.
class MockCluster {
 public:
  MockCluster() {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    mc_ = rd_kafka_mock_cluster_new(rk_, 1);
    rd_kafka_mock_topic_create(mc_, "logs", 1, 1);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(rk_);
  }
  rd_kafka_mock_cluster_t* get() { return mc_; }
  std::string bootstrap() const { return rd_kafka_mock_cluster_bootstraps(mc_); }
  // A text sink to topic `logs`, one request of at most 10 messages at a time.
  KafkaSink::Config SinkConfig() const {
    KafkaSink::Config config;
    config.bootstrap_servers = bootstrap();
    config.topic = "logs";
    config.encoding.codec = "text";
    config.librdkafka_options = {{"enable.idempotence", "false"}, {"batch.num.messages", "10"},
                                 {"max.in.flight", "1"}};
    return config;
  }

 private:
  rd_kafka_t* rk_;
  rd_kafka_mock_cluster_t* mc_;
};

// Two batches of 50 go out in requests of at most 10 messages, one at a
// time, each taking at least the broker's 50 ms round trip. The third
// request (within messages 2-29 of batch A) is refused permanently: A is Rejected, once,
// after its last report; B is Delivered, once, after its own last report.
TEST(KafkaSinkAckTest, BatchIsFinalizedFromItsLastReportWithTheWorstOutcome) {
  MockCluster mock;
  constexpr int kRttMs = 50;
  rd_kafka_mock_broker_set_rtt(mock.get(), 1, kRttMs);
  // A permanent refusal of the whole request (MSG_SIZE_TOO_LARGE is
  // one too, but the sink produces such a batch's messages again alone).
  rd_kafka_mock_push_request_errors(mock.get(), /*Produce*/ 0, 3, RD_KAFKA_RESP_ERR_NO_ERROR,
                                    RD_KAFKA_RESP_ERR_NO_ERROR, RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP);

  Metrics metrics;
  auto cm = metrics.ForComponent("out", ComponentKind::kSink, "kafka");
  KafkaSink::Config config = mock.SinkConfig();
  config.librdkafka_options["linger.ms"] = "20";
  BuildContext bctx{"out", "/tmp", "host", cm.get()};
  auto sink = KafkaSink::Build(config, bctx);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();

  TestContext ctx(cm.get());
  Outcome a, b;
  const auto start = Clock::now();
  ctx.input_.batches.push_back(MakeBatch("a", 50, &a, start));
  ctx.input_.batches.push_back(MakeBatch("b", 50, &b, start));
  ASSERT_TRUE(sink.value()->Run(ctx).ok());

  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(a.status, BatchStatus::kRejected);
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(b.status, BatchStatus::kDelivered);
  // Not on enqueue: A's five requests went one after another, and B's after.
  EXPECT_GE(a.at, std::chrono::milliseconds(4 * kRttMs));
  EXPECT_GE(b.at, std::chrono::milliseconds(9 * kRttMs));
  EXPECT_GE(b.at, a.at);
  // The refused request held at most batch.num.messages (fewer when
  // librdkafka sent before the batch was full, e.g. under a sanitizer).
  const double refused = cm->discarded_unintentional().Value();
  EXPECT_GE(refused, 1);
  EXPECT_LE(refused, 10);
  EXPECT_EQ(cm->sent_events().Value() + refused, 100);
  EXPECT_EQ(cm->Errors("invalid_message", "sending").Value(), refused);
}

// acknowledgements: false finalizes each batch Delivered once it is queued,
// long before its reports; a refusal is still counted.
TEST(KafkaSinkAckTest, WithoutAcknowledgementsBatchesAreFinalizedOnEnqueue) {
  MockCluster mock;
  rd_kafka_mock_broker_set_rtt(mock.get(), 1, 200);
  rd_kafka_mock_push_request_errors(mock.get(), /*Produce*/ 0, 1, RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP);

  Metrics metrics;
  auto cm = metrics.ForComponent("out", ComponentKind::kSink, "kafka");
  KafkaSink::Config config = mock.SinkConfig();
  config.acknowledgements = false;
  BuildContext bctx{"out", "/tmp", "host", cm.get()};
  auto sink = KafkaSink::Build(config, bctx);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();

  TestContext ctx(cm.get());
  Outcome a;
  const auto start = Clock::now();
  ctx.input_.batches.push_back(MakeBatch("a", 30, &a, start));
  ASSERT_TRUE(sink.value()->Run(ctx).ok());
  const auto done = Clock::now() - start;

  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(a.status, BatchStatus::kDelivered);
  // Long before the three requests' answers, which Run still waited for.
  EXPECT_GE(done, std::chrono::milliseconds(3 * 200));
  EXPECT_LT(a.at + std::chrono::milliseconds(400), done);
  const double refused = cm->discarded_unintentional().Value();
  EXPECT_GE(refused, 1);
  EXPECT_LE(refused, 10);
  EXPECT_EQ(cm->sent_events().Value() + refused, 30);
}

}  // namespace
}  // namespace tributary
