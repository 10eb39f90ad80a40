#include "sinks/kafka_sink.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "agent/backoff.h"
#include "agent/memory.h"
#include "config/registry.h"

namespace tributary {

namespace {

constexpr std::chrono::milliseconds kIdleWait{200};
constexpr std::chrono::milliseconds kBusyWait{5};

const char* const kErrorTypes[] = {
    "topic_authorization_failed", "cluster_authorization_failed", "message_too_large", "invalid_message",
    "unknown_topic",              "produce_failed",               "template_failed",   "delivery_failed"};

}  // namespace

const config::Schema<KafkaSink::Config>& KafkaSink::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("bootstrap_servers", &Config::bootstrap_servers,
            "host:port of the brokers to bootstrap from, comma-separated or as a list.")
        .Required()
        .JoinsList(",")
        .Check<std::string>([](const std::string& v) { return v.empty() ? std::string("must not be empty") : ""; });
    s.Field("topic", &Config::topic,
            "Topic to produce to; `{{ field }}` inserts a field of the event. The text around it is checked as "
            "Kafka checks topic names: letters, digits, `.`, `_` and `-`, at most 249 characters.")
        .Required()
        .Check<std::string>(Template::CheckTarget)
        .Check<std::string>([](const std::string& topic) -> std::string {
          // Kafka refuses any other name: every event would be rejected
          // as `unknown_topic` at run time. What {{ field }} inserts is
          // not judged.
          size_t fixed = 0;
          for (size_t i = 0; i < topic.size(); ++i) {
            if (topic.compare(i, 2, "{{") == 0) {
              i = topic.find("}}", i) + 1;  // terminated: CheckTarget passed
              fixed = std::string::npos;
              continue;
            }
            const char c = topic[i];
            if (c == '%' && i + 1 < topic.size()) {  // a time conversion (CheckTarget knows it)
              i += topic[i + 1] == 'E' || topic[i + 1] == 'O' ? 2 : 1;
              fixed = std::string::npos;
              continue;
            }
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
              return std::string("Kafka topic names hold only letters, digits, `.`, `_` and `-` (not `") + c +
                     "`): the broker would refuse every message";
            if (fixed != std::string::npos) ++fixed;
          }
          if (fixed != std::string::npos && fixed > 249)
            return "Kafka topic names are at most 249 characters long";
          if (topic == "." || topic == "..") return "Kafka topic names may not be `.` or `..`";
          return "";
        });
    s.Field("key_field", &Config::key_field,
            "Field whose text is the message key (messages with the same key go to the same partition); "
            "empty or absent field: no key.");
    s.Field("compression", &Config::compression, "Compression codec of produced message sets.")
        .OneOf({"none", "gzip", "snappy", "lz4", "zstd"});
    s.Field("encoding", &Config::encoding, "How an event becomes the message value.");
    s.Field("headers", &Config::headers,
            "Message headers: header name -> field (dotted path) whose text is the value; absent fields are "
            "left out.");
    s.Field("acknowledgements", &Config::acknowledgements,
            "Acknowledge events to the source only when Kafka confirmed them (true), or as soon as they are "
            "queued in the producer (false: faster hand-off, at-most-once if the agent dies).");
    s.Field("librdkafka_options", &Config::librdkafka_options,
            "librdkafka producer properties (TLS, SASL, linger.ms, ...), applied over the sink's defaults; "
            "values of secret keys such as sasl.password are never logged.")
        .Check<std::map<std::string, std::string>>(kafka::CheckOptions);
    s.Field("retry_initial_backoff_ms", &Config::retry_initial_backoff_ms,
            "Wait before producing a message again after a retriable delivery failure.")
        .Min(1);
    s.Field("retry_max_backoff_ms", &Config::retry_max_backoff_ms, "Longest wait between retries.").Min(1);
    return s;
  }();
  return s;
}

std::vector<std::pair<std::string, std::string>> KafkaSink::DefaultOptions(const Config& config) {
  // The idempotent producer needs acks=all: a user who trades durability
  // for speed with `acks: "1"` or "0" gets it without idempotence, unless
  // they asked for both (which librdkafka refuses, and so does the build).
  const auto& user = config.librdkafka_options;
  const auto acks = user.find("acks");
  const bool weaker_acks = acks != user.end() && acks->second != "all" && acks->second != "-1";
  const bool idempotence = !weaker_acks || user.count("enable.idempotence") > 0;
  return {
      {"bootstrap.servers", config.bootstrap_servers},
      {"client.id", "tributary"},
      {"enable.idempotence", idempotence ? "true" : "false"},
      {"acks", "all"},
      {"compression.codec", config.compression},
      {"statistics.interval.ms", "10000"},
      {"log.connection.close", "false"},
  };
}

Result<std::unique_ptr<Sink>> KafkaSink::Build(const Config& config, BuildContext& ctx) {
  auto topic = Template::Parse(config.topic);
  if (!topic.ok()) return topic.status();
  auto conf = kafka::MakeConf(DefaultOptions(config), config.librdkafka_options);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<KafkaSink> sink(new KafkaSink(config, std::move(topic).value(), std::move(conf).value(), ctx));
  // librdkafka checks how properties go together (idempotence and acks,
  // SASL mechanisms, TLS files) only when a client is made: made here, a
  // combination it refuses fails the build (exit 78 at start, a refused
  // reload) rather than the sink's thread once the pipeline runs.
  if (Status s = sink->CreateProducer(); !s.ok()) return s;
  return std::unique_ptr<Sink>(std::move(sink));
}

void KafkaSink::CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out) {
  for (const auto& [k, v] : config.librdkafka_options) {
    if (k.size() < 9 || k.compare(k.size() - 9, 9, ".location") != 0 || v == "probe") continue;
    config::EnvCheck c;
    c.what = "librdkafka_options " + k + " " + v + ": readable";
    c.ok = ::access(v.c_str(), R_OK) == 0;
    if (!c.ok) c.detail = std::strerror(errno);
    out->push_back(std::move(c));
  }
}

KafkaSink::KafkaSink(const Config& config, Template topic, kafka::ConfPtr conf, BuildContext& ctx)
    : kafka::KafkaClient(ctx.metrics),
      config_(config),
      topic_(std::move(topic)),
      encoder_(config.encoding),
      text_(config.encoding.codec == "text"),
      conf_template_(std::move(conf)),
      retry_delay_(config.retry_initial_backoff_ms.get()),
      retries_(&ctx.metrics->Retries()),
      duration_(&ctx.metrics->RequestDuration()) {
  for (int k = 0; k < kNumErrorKinds; ++k)
    errors_[k] = &ctx.metrics->Errors(kErrorTypes[k], k == kTemplateFailed ? "processing" : "sending");
  char value[64];
  size_t size = sizeof value;
  if (rd_kafka_conf_get(conf_template_.get(), "message.max.bytes", value, &size) == RD_KAFKA_CONF_OK)
    message_max_bytes_ = value;
}

KafkaSink::~KafkaSink() { DestroyProducer(); }

// ---- Producer lifecycle --------------------------------------------------------

Status KafkaSink::CreateProducer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_dup(conf_template_.get());
  Install(conf);
  rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::DeliveryCallback);
  char errstr[512];
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka producer: ") + errstr);
  }
  if (topic_.is_static()) {
    static_topic_ = rd_kafka_topic_new(rk_, config_.topic.c_str(), nullptr);
    if (!static_topic_) return Status::InvalidArgument("cannot create topic handle " + config_.topic);
  }
  fatal_ = false;
  return Status::Ok();
}

void KafkaSink::DestroyProducer() {
  if (!rk_) return;
  if (static_topic_) rd_kafka_topic_destroy(static_topic_);
  static_topic_ = nullptr;
  for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
  topics_.clear();
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
}

// ---- Errors and outcomes -----------------------------------------------------------

const char* KafkaSink::PermanentErrorType(rd_kafka_resp_err_t err) {
  ErrorKind k = KindOf(err);
  return k == kDeliveryFailed ? "" : kErrorTypes[k];
}

KafkaSink::ErrorKind KafkaSink::KindOf(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED: return kTopicAuthorization;
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED: return kClusterAuthorization;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE: return kMessageTooLarge;
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR__BAD_MSG: return kInvalidMessage;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: return kUnknownTopic;
    default: return kDeliveryFailed;
  }
}

bool KafkaSink::Stopping() const { return ctx_->hard_stop().stop_requested(); }

void KafkaSink::Resolve(Pending* p, BatchStatus status) {
  if (status > p->worst) p->worst = status;
  // Given up at the stop after the batch was acknowledged (only the stop
  // fails a message): its source has moved past it.
  if (p->finalized && status == BatchStatus::kFailed) ++acknowledged_given_up_;
  if (--p->outstanding > 0) return;
  // One sample per batch, from its first produce to its last delivery
  // report: not for a batch nothing of which reached librdkafka (refused
  // locally, a topic template that failed), nor one given up at the stop.
  if (p->produced > 0 && p->worst != BatchStatus::kFailed)
    duration_->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - p->start).count());
  if (!p->finalized) {
    for (auto& f : p->finalizers) f.Release(p->worst);
  }
  pending_.erase(p->self);
}

void KafkaSink::Reject(Pending* p, ErrorKind kind, std::string_view why) {
  ++error_acc_[kind];
  ++discarded_acc_;
  LogLimited(reject_limiter_, LogLevel::kError, id(),
             std::string("event rejected (") + kErrorTypes[kind] + "): " + std::string(why));
  Resolve(p, BatchStatus::kRejected);
}

void KafkaSink::Drop(Message* m) {
  if (m->headers) rd_kafka_headers_destroy(m->headers);
  m->headers = nullptr;
}

void KafkaSink::FlushCounters() {
  if (sent_events_acc_) metrics_->sent_events().Increment(static_cast<double>(sent_events_acc_));
  if (sent_bytes_acc_) metrics_->sent_bytes().Increment(static_cast<double>(sent_bytes_acc_));
  if (discarded_acc_) metrics_->discarded_unintentional().Increment(static_cast<double>(discarded_acc_));
  if (retries_acc_) retries_->Increment(static_cast<double>(retries_acc_));
  for (int k = 0; k < kNumErrorKinds; ++k)
    if (error_acc_[k]) errors_[k]->Increment(static_cast<double>(error_acc_[k]));
  sent_events_acc_ = sent_bytes_acc_ = discarded_acc_ = retries_acc_ = 0;
  std::fill(std::begin(error_acc_), std::end(error_acc_), 0);
}

void KafkaSink::DeliveryCallback(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<KafkaSink*>(static_cast<kafka::KafkaClient*>(opaque))->OnDelivery(msg);
}

void KafkaSink::OnDelivery(const rd_kafka_message_t* msg) {
  Pending* p = static_cast<Pending*>(msg->_private);
  const bool was_alone = alone_in_flight_ != nullptr && msg->payload == alone_in_flight_;
  if (was_alone) alone_in_flight_ = nullptr;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++sent_events_acc_;
    sent_bytes_acc_ += msg->len + msg->key_len;
    if (!healthy_) {
      healthy_ = true;
      ctx_->SetHealthy(true, "");
    }
    retry_delay_ = config_.retry_initial_backoff_ms.get();
    Resolve(p, BatchStatus::kDelivered);
    return;
  }
  const bool purged = msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
  if (Stopping()) {
    Resolve(p, BatchStatus::kFailed);
    return;
  }
  ErrorKind kind = KindOf(msg->err);
  // A broker checks its (or the topic's) max.message.bytes against the
  // whole record batch, and librdkafka fails every message of a refused
  // batch: small messages were rejected for the batch they were in. They
  // are produced again one at a time; only one refused alone is too large.
  const bool permanent = kind != kDeliveryFailed && !purged && !recreating_;
  const bool batch_too_large = permanent && kind == kMessageTooLarge && !was_alone;
  if (permanent && !batch_too_large) {
    Reject(p, kind,
           kind == kMessageTooLarge
               ? std::string("refused by the broker on its own as too large: ") + rd_kafka_err2str(msg->err) +
                     " (the message is " + std::to_string(msg->len + msg->key_len) +
                     " bytes of value and key; raise the topic's max.message.bytes or send smaller events)"
               : std::string(rd_kafka_err2str(msg->err)));
    return;
  }
  // Retriable (or purged while the producer is rebuilt): produce it again.
  if (batch_too_large) {
    ++error_acc_[kDeliveryFailed];
    ++retries_acc_;
    LogLimited(retry_limiter_, LogLevel::kWarn, id(),
               std::string("a broker refused a batch of messages as too large (") + rd_kafka_err2name(msg->err) +
                   "): the topic's or broker's max.message.bytes is below the producer's batch size; producing "
                   "them again one at a time, which is slow: set message.max.bytes (or batch.size) in "
                   "librdkafka_options below the topic's limit");
  } else if (!purged) {
    ++error_acc_[kDeliveryFailed];
    ++retries_acc_;
    if (healthy_) {
      healthy_ = false;
      ctx_->SetHealthy(false, std::string("delivery failed: ") + rd_kafka_err2str(msg->err));
    }
    LogLimited(retry_limiter_, LogLevel::kWarn, id(),
               std::string("delivery failed, will retry: ") + rd_kafka_err2name(msg->err) + ": " +
                   rd_kafka_err2str(msg->err));
  }
  if (retry_.empty()) {
    const bool now = purged || batch_too_large;
    retry_at_ = std::chrono::steady_clock::now() + (now ? std::chrono::milliseconds(0) : retry_delay_);
    if (!now) retry_delay_ = std::min(retry_delay_ * 2, config_.retry_max_backoff_ms.get());
  }
  // The message again, from the same arena bytes (produced without copy).
  Message m;
  m.pending = p;
  m.value = static_cast<const char*>(msg->payload);
  m.value_len = msg->len;
  if (msg->key != nullptr) m.retry_key.emplace(static_cast<const char*>(msg->key), msg->key_len);
  rd_kafka_timestamp_type_t ts_type;
  int64_t ts = rd_kafka_message_timestamp(msg, &ts_type);
  m.timestamp_ms = ts_type == RD_KAFKA_TIMESTAMP_CREATE_TIME && ts > 0 ? ts : 0;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs)
    m.headers = rd_kafka_headers_copy(hdrs);
  if (!static_topic_) m.topic = rd_kafka_topic_name(msg->rkt);
  m.alone = batch_too_large || was_alone;
  retry_.push_back(std::move(m));
}

void KafkaSink::OnError(rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
    TLOG_ERROR(id(), std::string("fatal producer error, rebuilding the producer: ") + rd_kafka_err2name(orig) +
                         ": " + buf);
    fatal_ = true;
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && healthy_) {
    healthy_ = false;
    ctx_->SetHealthy(false, std::string("all brokers down: ") + reason);
  }
  KafkaClient::OnError(rk, err, reason);
}

// ---- Producing --------------------------------------------------------------------

rd_kafka_topic_t* KafkaSink::Topic(const std::string& name) {
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
  if (!rkt) return nullptr;
  if (topics_.size() >= 1024) {  // bound the cache for high-cardinality templates
    for (auto& [n, t] : topics_) rd_kafka_topic_destroy(t);
    topics_.clear();
  }
  topics_.emplace(name, rkt);
  return rkt;
}

KafkaSink::ProduceResult KafkaSink::Produce(Message* m, rd_kafka_topic_t* rkt) {
  if (!rk_) return ProduceResult::kFatal;  // a rebuild was cut short by the hard stop
  if (!rkt) {
    rkt = static_topic_ ? static_topic_ : Topic(m->topic);
    if (!rkt) {
      Drop(m);
      Reject(m->pending, kUnknownTopic, "invalid topic name " + m->topic);
      return ProduceResult::kResolved;
    }
  }
  // No copy (flags 0): the value and key stay in the batch's arena until the
  // batch's last delivery report.
  const char* key = m->retry_key ? m->retry_key->data() : m->key;
  const size_t key_len = m->retry_key ? m->retry_key->size() : m->key_len;
  rd_kafka_resp_err_t err;
  if (m->headers) {
    err = rd_kafka_producev(rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(0),
                            RD_KAFKA_V_VALUE(const_cast<char*>(m->value), m->value_len),
                            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(m->timestamp_ms),
                            RD_KAFKA_V_HEADERS(m->headers), RD_KAFKA_V_OPAQUE(m->pending), RD_KAFKA_V_END);
    if (!err) m->headers = nullptr;  // ownership passes only on success
  } else {
    err = rd_kafka_producev(rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(0),
                            RD_KAFKA_V_VALUE(const_cast<char*>(m->value), m->value_len),
                            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(m->timestamp_ms),
                            RD_KAFKA_V_OPAQUE(m->pending), RD_KAFKA_V_END);
  }
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      if (m->pending->produced++ == 0) m->pending->start = std::chrono::steady_clock::now();
      return ProduceResult::kQueued;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return ProduceResult::kQueueFull;
    case RD_KAFKA_RESP_ERR__FATAL: fatal_ = true; return ProduceResult::kFatal;
    default: break;
  }
  const bool had_headers = m->headers != nullptr;
  Drop(m);
  ErrorKind kind = KindOf(err);
  // librdkafka's text for this code is the broker's ("Broker: Message size
  // too large"), but from produce it is the producer's own check.
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
    Reject(m->pending, kind, RefusedAsTooLarge(m->value_len, key_len, had_headers));
    return ProduceResult::kResolved;
  }
  Reject(m->pending, kind == kDeliveryFailed ? kProduceFailed : kind, rd_kafka_err2str(err));
  return ProduceResult::kResolved;
}

std::string KafkaSink::RefusedAsTooLarge(size_t value_len, size_t key_len, bool headers) const {
  std::string s = "refused locally by the producer, never sent to a broker: the message is " +
                  std::to_string(value_len + key_len) + " bytes (value " + std::to_string(value_len) + ", key " +
                  std::to_string(key_len) + (headers ? ", plus headers" : "") +
                  ", plus the record overhead), over the producer's message.max.bytes";
  if (!message_max_bytes_.empty()) s += " (" + message_max_bytes_ + ")";
  s += "; raise it in librdkafka_options (and the broker's or topic's limit with it) or send smaller events";
  return s;
}

void KafkaSink::Prepare(const Event& e, const Encoded& enc, Pending* p, Message* m) {
  m->pending = p;
  m->value = p->arena.data() + enc.value_off;
  m->value_len = enc.value_len;
  m->key = enc.key_off == std::string::npos ? nullptr : p->arena.data() + enc.key_off;
  m->key_len = enc.key_len;
  m->timestamp_ms = enc.timestamp_ms;
  m->headers = nullptr;
  for (const auto& [name, field] : config_.headers) {
    const Value* v = e.get(field);
    if (!v || v->is_null()) continue;
    if (!m->headers) m->headers = rd_kafka_headers_new(config_.headers.size());
    header_value_.clear();
    v->append_text(&header_value_);
    rd_kafka_header_add(m->headers, name.data(), static_cast<ssize_t>(name.size()), header_value_.data(),
                        static_cast<ssize_t>(header_value_.size()));
  }
}

void KafkaSink::Start(Batch batch) {
  const size_t n = batch.size();
  if (n == 0) {
    batch.Finalize(BatchStatus::kDelivered);
    return;
  }
  pending_.emplace_back();
  Pending& p = pending_.back();
  p.self = std::prev(pending_.end());
  p.finalizers = std::move(batch.finalizers());
  p.start = std::chrono::steady_clock::now();
  p.outstanding = static_cast<uint32_t>(n) + 1;  // +1 holds the batch open while producing

  // Encode every event into one arena: values and keys back to back.
  const std::vector<Event>& events = batch.events();
  scratch_.clear();
  encoded_.resize(n);
  const bool keyed = !config_.key_field.empty();
  for (size_t i = 0; i < n; ++i) {
    const Event& e = events[i];
    Encoded& enc = encoded_[i];
    enc.value_off = scratch_.size();
    const Value* ts = nullptr;
    if (text_) {
      // The `message` field as text (as Encoder does) and the timestamp, in
      // one pass over the top-level fields.
      const Value* message = nullptr;
      const Fields& f = e.fields();
      for (size_t j = 0, fn = f.size(); j < fn; ++j) {
        const std::string& k = f.key(j);
        if (!message && k == kMessageField) message = &f.value(j);
        else if (!ts && k == kTimestampField) ts = &f.value(j);
      }
      if (message) message->append_text(&scratch_);
    } else {
      encoder_.Encode(e, &scratch_);
      ts = e.fields().find(kTimestampField);
    }
    enc.value_len = scratch_.size() - enc.value_off;
    enc.key_off = std::string::npos;
    enc.key_len = 0;
    if (keyed) {
      if (const Value* k = e.get(config_.key_field); k && !k->is_null()) {
        enc.key_off = scratch_.size();
        k->append_text(&scratch_);
        enc.key_len = scratch_.size() - enc.key_off;
      }
    }
    enc.timestamp_ms = 0;
    if (ts && ts->is_timestamp())
      enc.timestamp_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(ts->as_timestamp().time_since_epoch()).count();
  }
  p.arena.assign(scratch_);  // exact size; never reallocated while messages point into it

  Message m;
  auto stash = [&] {  // produced later (in order), by ProduceRetries
    if (!topic_.is_static()) m.topic = topic_name_;
    retry_.push_back(std::move(m));
    m = Message();
  };
  for (size_t i = 0; i < n; ++i) {
    const Event& e = events[i];
    Prepare(e, encoded_[i], &p, &m);
    rd_kafka_topic_t* rkt = static_topic_;
    if (!topic_.is_static()) {
      topic_name_.clear();
      Status s = topic_.Render(e, &topic_name_);
      if (!s.ok()) {
        Drop(&m);
        Reject(&p, kTemplateFailed, "cannot render topic: " + s.message());
        continue;
      }
      if (rk_ && !(rkt = Topic(topic_name_))) {
        Drop(&m);
        Reject(&p, kUnknownTopic, "invalid topic name " + topic_name_);
        continue;
      }
    }
    if (fatal_ || !retry_.empty()) {
      // Keep message order behind earlier retries and across a rebuild.
      stash();
      continue;
    }
    ProduceResult r;
    while ((r = Produce(&m, rkt)) == ProduceResult::kQueueFull) {
      // The producer's queue is full: wait for deliveries (backpressure).
      if (Stopping()) {
        Drop(&m);
        for (size_t j = i; j < n; ++j) Resolve(&p, BatchStatus::kFailed);
        Resolve(&p, BatchStatus::kDelivered);  // the guard
        return;
      }
      Poll(100);
    }
    if (r == ProduceResult::kFatal) stash();
  }
  if (!config_.acknowledgements && !p.finalized && p.outstanding > 1) {
    p.finalized = true;
    for (auto& f : p.finalizers) f.Release(BatchStatus::kDelivered);
  }
  Resolve(&p, BatchStatus::kDelivered);  // the guard
  // `batch` (the events) is released here, right after being queued.
}

void KafkaSink::ProduceRetries() {
  if (retry_.empty() || fatal_ || std::chrono::steady_clock::now() < retry_at_) return;
  // A message to produce on its own waits until the producer holds no
  // other (so that librdkafka puts it in a batch by itself), and then
  // nothing follows it until its delivery report.
  if (alone_in_flight_ != nullptr || (retry_.front().alone && rd_kafka_outq_len(rk_) > 0)) return;
  std::vector<Message> todo;
  todo.swap(retry_);
  size_t i = 0;
  for (; i < todo.size(); ++i) {
    const bool alone = todo[i].alone;
    if (alone && i > 0) break;
    const void* payload = todo[i].value;
    ProduceResult r = Produce(&todo[i], nullptr);
    if (r == ProduceResult::kQueueFull || r == ProduceResult::kFatal) break;
    if (alone) {
      if (r == ProduceResult::kQueued) alone_in_flight_ = payload;
      ++i;
      break;
    }
  }
  // What did not fit goes back in front of anything queued meanwhile.
  if (i < todo.size())
    retry_.insert(retry_.begin(), std::make_move_iterator(todo.begin() + static_cast<ptrdiff_t>(i)),
                  std::make_move_iterator(todo.end()));
}

void KafkaSink::Poll(int timeout_ms) {
  rd_kafka_poll(rk_, timeout_ms);
  FlushCounters();
  if (fatal_ && !recreating_) Recreate();
}

void KafkaSink::Recreate() {
  // Everything the broken producer holds comes back as purged delivery
  // reports and is queued for retry on the new one.
  recreating_ = true;
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_, 0);
  rd_kafka_flush(rk_, 5000);
  DestroyProducer();
  recreating_ = false;
  Status s;
  auto backoff = config_.retry_initial_backoff_ms.get();
  while (!(s = CreateProducer()).ok()) {
    LogLimited(retry_limiter_, LogLevel::kError, id(), s.ToString());
    if (!SleepFor(backoff, ctx_->hard_stop())) return;
    backoff = std::min(backoff * 2, config_.retry_max_backoff_ms.get());
  }
  retry_at_ = std::chrono::steady_clock::now();
}

void KafkaSink::FailEverything() {
  if (rk_) {
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
    rd_kafka_poll(rk_, 0);
  }
  std::vector<Message> left;
  left.swap(retry_);
  for (Message& m : left) {
    Drop(&m);
    Resolve(m.pending, BatchStatus::kFailed);
  }
  // Messages whose reports never came: the batch is given up as a whole;
  // one acknowledged already (acknowledgements: false) is counted instead.
  for (auto& p : pending_) {
    if (p.finalized) {
      acknowledged_given_up_ += p.outstanding;
      continue;
    }
    for (auto& f : p.finalizers) f.Release(BatchStatus::kFailed);
    p.finalized = true;
  }
  if (acknowledged_given_up_ > 0) ctx_->GaveUpAcknowledged(acknowledged_given_up_);
  acknowledged_given_up_ = 0;
}

Status KafkaSink::Run(SinkContext& ctx) {
  ctx_ = &ctx;
  if (!rk_) {  // made by Build, unless a hard stop destroyed it since
    Status s = CreateProducer();
    if (!s.ok()) return s;
  }
  ctx.SetHealthy(true, "");
  bool input_open = true;
  Batch batch;
  while (true) {
    Poll(0);
    if (!rk_) break;  // hard stop during a rebuild
    ProduceRetries();
    if (Stopping()) break;
    if (input_open && (fatal_ || !retry_.empty())) {
      // Retries first: new batches wait in the buffer (backpressure).
      Poll(10);
    } else if (input_open) {
      const bool busy = !pending_.empty();
      auto r = ctx.input().Next(&batch, busy ? kBusyWait : kIdleWait);
      if (r == SinkInput::Result::kBatch) Start(std::move(batch));
      else if (r == SinkInput::Result::kClosed) input_open = false;
      else if (!busy) ReturnFreeMemoryWhenIdle();
    } else {
      if (pending_.empty()) break;
      Poll(50);
    }
  }
  if (Stopping() || !pending_.empty()) {
    FailEverything();
    FlushCounters();
    DestroyProducer();
    pending_.clear();
    return Status::Ok();
  }
  FlushCounters();
  DestroyProducer();
  return Status::Ok();
}

TRIBUTARY_REGISTER_SINK("kafka", KafkaSink);

}  // namespace tributary
