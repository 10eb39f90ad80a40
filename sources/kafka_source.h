#pragma once
// `kafka` source: consumes topics as a member of a consumer group.
//
// Each message becomes an event: its value decoded as text (`message`) or as
// a JSON object (its fields), plus `topic`, `partition`, `offset`, `key`,
// `headers` and `timestamp` (the message's, unless the JSON carries one).
//
// Offsets: a batch's finalizer reports its fate to an AckTracker that keeps,
// per assigned partition, the batches in flight in offset order. A partition's
// commit point only moves over a contiguous run of batches acknowledged
// Delivered or Rejected; a Failed batch holds it (its messages are read
// again after a restart or rebalance). Commits are explicit
// (enable.auto.commit=false) every `commit_interval_ms`, when partitions are
// revoked in a rebalance (after waiting up to `revoke_ack_timeout_ms` for
// their acknowledgements, and dropping what was read but not yet sent), and
// at shutdown once every sink has stopped.
//
// Threads: Run owns the consumer and serves its callbacks (rebalance, commit
// results, statistics) on the source thread; finalizers run on sink threads
// and only touch the tracker (mutex). Finish() commits and closes the
// consumer on the main thread after Run returned.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/component.h"
#include "agent/json.h"
#include "agent/kafka_client.h"
#include "config/schema.h"

namespace tributary {

class KafkaSource final : public Source, private kafka::KafkaClient {
 public:
  struct DecodingConfig {
    std::string codec = "text";
    static const config::Schema<DecodingConfig>& schema();
  };
  struct Config {
    std::string bootstrap_servers;
    std::string group_id;
    std::vector<std::string> topics;
    std::string auto_offset_reset = "latest";
    DecodingConfig decoding;
    std::string key_field = "key";
    std::string topic_field = "topic";
    std::string partition_field = "partition";
    std::string offset_field = "offset";
    std::string headers_field = "headers";
    uint64_t max_batch_events = 1000;
    config::Millis commit_interval_ms{1000};
    config::Millis revoke_ack_timeout_ms{5000};
    std::map<std::string, std::string> librdkafka_options;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary =
      "Consumes Kafka topics in a consumer group; commits offsets only for acknowledged messages.";
  static Result<std::unique_ptr<Source>> Build(const Config& config, BuildContext& ctx);
  static std::vector<std::pair<std::string, std::string>> DefaultOptions(const Config& config);

  ~KafkaSource() override;
  Status Run(SourceContext& ctx) override;
  void Finish() override;
  bool ReadsUndeliveredAgain() const override { return true; }

  // Per-partition acknowledgement bookkeeping; shared with finalizers.
  class AckTracker;

 private:
  struct PartitionState;
  KafkaSource(const Config& config, kafka::ConfPtr conf, BuildContext& ctx);
  Status CreateConsumer();
  Status Subscribe();
  void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void OnCommit(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets);
  // Commits the acknowledged offsets of every assigned partition that moved.
  void Commit(bool sync);
  // librdkafka's "offset reset" warning: counted as `offset_reset` and
  // logged with what it means.
  bool OnLog(int level, std::string_view facility, std::string_view text) override;
  void AddMessage(const rd_kafka_message_t* msg);
  bool SendBatch(SourceContext& ctx);
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void CommitCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                             void* opaque);

  Config config_;
  kafka::ConfPtr conf_;
  std::string host_;
  rd_kafka_t* rk_ = nullptr;
  std::shared_ptr<AckTracker> tracker_;
  JsonParser json_;
  bool json_codec_;

  // The batch being filled: events and, per event, its partition and offset.
  std::vector<Event> events_;
  std::vector<std::pair<PartitionState*, int64_t>> origins_;
  bool commit_now_ = false;  // a partition's first offset was pinned (AckTracker::Pin)
  size_t batch_bytes_ = 0;

  Counter* decode_errors_;
  Counter* consume_errors_;
  Counter* commit_errors_;
  Counter* offset_resets_;
  Counter* checkpoints_;
  RateLimiter limiter_;
};

}  // namespace tributary
