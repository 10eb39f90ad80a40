#pragma once
// `kafka` sink: produces one Kafka message per event with librdkafka.
//
// Delivery: each input batch is encoded at once into one arena (values and
// keys back to back) and produced without copying, each message pointing
// into the arena, its opaque the batch's record; the events are released
// right after they are queued. The record keeps only the batch's finalizers,
// the arena and a count of messages without a delivery report, and the batch
// is finalized when the last report arrives — Delivered when all were
// written to the cluster (acks=all on an idempotent producer by default),
// Rejected when some were refused permanently (authorization, message too
// large, invalid record, unknown topic: counted per reason in
// component_errors_total and in discarded_events_total), never on enqueue.
// Retriable failures (timeouts, brokers down, not enough replicas) are
// produced again after a backoff from the same arena bytes, so an outage
// holds data instead of dropping it; a full librdkafka queue makes the sink
// stop taking batches (backpressure into the buffer). A fatal error of the
// idempotent producer rebuilds the producer and re-sends what it held.
// `acknowledgements: false` finalizes batches as soon as they are enqueued
// (the source moves on; failures are still retried and counted).
//
// Shutdown: Run returns once the input is closed and every message has a
// delivery report, or at the hard stop, when the rest is purged and
// finalized Failed; messages of batches already finalized (acknowledgements:
// false) are counted instead and reported as lost
// (SinkContext::GaveUpAcknowledged).
//
// Threads: Run owns the producer and serves its callbacks (delivery
// reports, statistics, errors) from rd_kafka_poll on the sink thread.

#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/component.h"
#include "agent/kafka_client.h"
#include "agent/log.h"
#include "agent/template.h"
#include "config/registry.h"
#include "config/schema.h"
#include "sinks/encoding.h"

namespace tributary {

class KafkaSink final : public Sink, private kafka::KafkaClient {
 public:
  struct Config {
    std::string bootstrap_servers;
    std::string topic;
    std::string key_field;
    std::string compression = "none";
    EncodingConfig encoding;
    std::map<std::string, std::string> headers;  // header name -> field path
    bool acknowledgements = true;
    std::map<std::string, std::string> librdkafka_options;
    config::Millis retry_initial_backoff_ms{100};
    config::Millis retry_max_backoff_ms{10000};
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary =
      "Produces events to Kafka; acknowledges them from the broker's delivery reports.";
  static Result<std::unique_ptr<Sink>> Build(const Config& config, BuildContext& ctx);
  static void CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out);
  // The librdkafka settings the sink starts from, before librdkafka_options.
  static std::vector<std::pair<std::string, std::string>> DefaultOptions(const Config& config);
  // How a delivery error is handled: an error_type for a permanent refusal
  // (the event is rejected), or "" if the message is produced again.
  static const char* PermanentErrorType(rd_kafka_resp_err_t err);

  ~KafkaSink() override;
  Status Run(SinkContext& ctx) override;

 private:
  // One input batch with messages not yet resolved (the opaque of each of
  // its messages). Its events are gone; librdkafka points into `arena`.
  struct Pending {
    std::vector<FinalizerRef> finalizers;
    std::string arena;         // every value and key of the batch
    uint32_t outstanding = 0;  // messages without a final outcome
    uint32_t produced = 0;     // produce calls librdkafka queued (retries too)
    BatchStatus worst = BatchStatus::kDelivered;
    bool finalized = false;    // acknowledgements: false releases early
    std::chrono::steady_clock::time_point start;
    std::list<Pending>::iterator self;
  };
  // A message to produce (again): its bytes are in its batch's arena.
  struct Message {
    Pending* pending = nullptr;
    const char* value = nullptr;
    size_t value_len = 0;
    const char* key = nullptr;  // nullptr: no key (or, on a retry, in retry_key)
    size_t key_len = 0;
    // A retried message's key: librdkafka copies keys and frees its copy
    // when the delivery report returns, so a retry keeps its own.
    std::optional<std::string> retry_key;
    int64_t timestamp_ms = 0;
    rd_kafka_headers_t* headers = nullptr;  // owned until produced
    std::string topic;                      // templated topics only
    // Produced on its own: its batch was refused by a broker as too large.
    bool alone = false;
  };
  // Where one event's bytes went in the arena while a batch is encoded.
  struct Encoded {
    size_t value_off, value_len, key_off, key_len;  // key_off npos: no key
    int64_t timestamp_ms;
  };
  enum class ProduceResult { kQueued, kQueueFull, kResolved, kFatal };
  enum ErrorKind : int {
    kTopicAuthorization,
    kClusterAuthorization,
    kMessageTooLarge,
    kInvalidMessage,
    kUnknownTopic,
    kProduceFailed,
    kTemplateFailed,
    kDeliveryFailed,
    kNumErrorKinds
  };

  KafkaSink(const Config& config, Template topic, kafka::ConfPtr conf, BuildContext& ctx);
  Status CreateProducer();
  void DestroyProducer();
  // Takes a batch, encodes it, produces all its events (waits on a full
  // queue) and releases the events.
  void Start(Batch batch);
  // Fills the message of event i of the batch being started (not its topic).
  void Prepare(const Event& e, const Encoded& enc, Pending* p, Message* m);
  // The handle of a topic by name (templated topics; cached).
  rd_kafka_topic_t* Topic(const std::string& name);
  ProduceResult Produce(Message* m, rd_kafka_topic_t* rkt);
  // Records the final outcome of one message.
  void Resolve(Pending* p, BatchStatus status);
  void Reject(Pending* p, ErrorKind kind, std::string_view why);
  void Drop(Message* m);  // releases what a message not produced owns
  // Why librdkafka's produce call refused a message as too large: its own
  // message.max.bytes check, before any broker saw it.
  std::string RefusedAsTooLarge(size_t value_len, size_t key_len, bool headers) const;
  void OnDelivery(const rd_kafka_message_t* msg);
  void ProduceRetries();
  void Recreate();
  void FailEverything();
  void Poll(int timeout_ms);
  void FlushCounters();
  bool Stopping() const;
  void OnError(rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason) override;
  static void DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static ErrorKind KindOf(rd_kafka_resp_err_t err);

  Config config_;
  Template topic_;
  Encoder encoder_;
  bool text_;  // encoding.codec text: the sink reads `message` itself
  kafka::ConfPtr conf_template_;  // duplicated for each producer instance
  std::string message_max_bytes_;  // the producer's message.max.bytes, for error messages
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* static_topic_ = nullptr;
  std::map<std::string, rd_kafka_topic_t*, std::less<>> topics_;  // templated topics
  SinkContext* ctx_ = nullptr;

  std::list<Pending> pending_;
  std::vector<Message> retry_;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds retry_delay_;
  // The payload of a message produced on its own whose delivery report is
  // due; nothing else is produced meanwhile (see ProduceRetries).
  const void* alone_in_flight_ = nullptr;
  bool fatal_ = false;
  bool recreating_ = false;
  bool healthy_ = true;

  // Reused per batch / message.
  std::string scratch_;
  std::vector<Encoded> encoded_;
  std::string header_value_;
  std::string topic_name_;

  Counter* errors_[kNumErrorKinds];
  Counter* retries_;
  Histogram* duration_;
  uint64_t sent_events_acc_ = 0, sent_bytes_acc_ = 0, discarded_acc_ = 0;
  uint64_t error_acc_[kNumErrorKinds] = {};
  uint64_t retries_acc_ = 0;
  // Messages of batches finalized early (acknowledgements: false) that
  // the stop gave up: reported once, SinkContext::GaveUpAcknowledged.
  uint64_t acknowledged_given_up_ = 0;
  RateLimiter reject_limiter_;
  RateLimiter retry_limiter_;
};

}  // namespace tributary
