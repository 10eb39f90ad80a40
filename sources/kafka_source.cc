#include "sources/kafka_source.h"

#include <regex.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "agent/log.h"
#include "agent/memory.h"
#include "config/registry.h"

namespace tributary {

// ---- Acknowledgement tracking ----------------------------------------------------

// One assigned partition. A new assignment of the same partition gets a new
// state; a revoked one is only kept alive by batches still in flight, whose
// acknowledgements then change nothing that is committed.
struct KafkaSource::PartitionState {
  enum : uint8_t { kPending, kAcked, kFailed };
  struct Range {
    uint64_t seq;         // the batch
    int64_t next_offset;  // one past the batch's last message of this partition
    uint8_t state;
  };
  std::string topic;
  int32_t partition;
  std::deque<Range> in_flight;  // in offset order
  int64_t acked = -1;           // commit point: every offset below is acknowledged
  int64_t committed = -1;       // last commit point sent
  bool revoked = false;
  bool pinned = false;  // AckTracker::Pin was called; the source's thread only
};

class KafkaSource::AckTracker {
 public:
  std::shared_ptr<PartitionState> Assign(const std::string& topic, int32_t partition) {
    std::lock_guard lock(mu_);
    auto& slot = assigned_[{topic, partition}];
    if (slot) slot->revoked = true;
    slot = std::make_shared<PartitionState>();
    slot->topic = topic;
    slot->partition = partition;
    return slot;
  }
  std::shared_ptr<PartitionState> Find(const char* topic, int32_t partition) {
    std::lock_guard lock(mu_);
    auto it = assigned_.find({topic, partition});
    return it == assigned_.end() ? nullptr : it->second;
  }
  void Revoke(const std::string& topic, int32_t partition) {
    std::lock_guard lock(mu_);
    auto it = assigned_.find({topic, partition});
    if (it == assigned_.end()) return;
    it->second->revoked = true;
    assigned_.erase(it);
  }
  void RevokeAll() {
    std::lock_guard lock(mu_);
    for (auto& [k, s] : assigned_) s->revoked = true;
    assigned_.clear();
  }

  // The first message read from a partition since it was assigned becomes
  // its commit point, as if everything before it were delivered: where the
  // group had no committed offset (a new group or partition, offsets
  // expired), auto_offset_reset chose where to start, and a restart or the
  // next owner must start there too, not choose again. With `latest`, a
  // member stopped or killed before its first delivery would otherwise
  // skip what it had read. True if this pinned it (to be committed now).
  bool Pin(PartitionState* ps, int64_t offset) {
    std::lock_guard lock(mu_);
    if (ps->acked >= 0 || !ps->in_flight.empty()) return false;
    ps->acked = offset;
    return true;
  }

  // Registers a batch covering, per partition, offsets up to next_offset-1.
  uint64_t Track(const std::vector<std::pair<PartitionState*, int64_t>>& ranges) {
    std::lock_guard lock(mu_);
    uint64_t seq = ++next_seq_;
    for (const auto& [ps, next] : ranges) ps->in_flight.push_back({seq, next, PartitionState::kPending});
    return seq;
  }

  void Ack(uint64_t seq, const std::vector<std::shared_ptr<PartitionState>>& parts, BatchStatus status) {
    {
      std::lock_guard lock(mu_);
      for (const auto& ps : parts) {
        for (auto& r : ps->in_flight) {
          if (r.seq != seq) continue;
          r.state = status == BatchStatus::kFailed ? PartitionState::kFailed : PartitionState::kAcked;
          break;
        }
        while (!ps->in_flight.empty() && ps->in_flight.front().state == PartitionState::kAcked) {
          ps->acked = ps->in_flight.front().next_offset;
          ps->in_flight.pop_front();
        }
      }
    }
    cv_.notify_all();
  }

  // Waits until no batch of these partitions is pending, or the deadline.
  bool WaitSettled(const std::vector<std::shared_ptr<PartitionState>>& parts,
                   std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] {
      for (const auto& ps : parts)
        for (const auto& r : ps->in_flight)
          if (r.state == PartitionState::kPending) return false;
      return true;
    });
  }

  // Assigned partitions whose commit point moved since the last commit
  // (marked committed), as a list for rd_kafka_commit; nullptr if none.
  rd_kafka_topic_partition_list_t* TakeCommits() {
    std::lock_guard lock(mu_);
    rd_kafka_topic_partition_list_t* list = nullptr;
    auto add = [&](PartitionState* ps) {
      if (ps->revoked || ps->acked < 0 || ps->acked <= ps->committed) return;
      if (!list) list = rd_kafka_topic_partition_list_new(8);
      rd_kafka_topic_partition_list_add(list, ps->topic.c_str(), ps->partition)->offset = ps->acked;
      ps->committed = ps->acked;
    };
    for (auto& [k, ps] : assigned_) add(ps.get());
    return list;
  }

  // A commit failed: commit these partitions again next time.
  void CommitFailed(const char* topic, int32_t partition) {
    std::lock_guard lock(mu_);
    auto it = assigned_.find({topic, partition});
    if (it != assigned_.end()) it->second->committed = -1;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<std::string, int32_t>, std::shared_ptr<PartitionState>> assigned_;
  uint64_t next_seq_ = 0;
};

// ---- Config ----------------------------------------------------------------------

const config::Schema<KafkaSource::DecodingConfig>& KafkaSource::DecodingConfig::schema() {
  static const config::Schema<DecodingConfig> s = [] {
    config::Schema<DecodingConfig> s;
    s.Field("codec", &DecodingConfig::codec,
            "`text`: the value becomes `message`; `json`: the value's JSON object becomes the event's fields "
            "(not an object or not JSON: counted, and kept as `message`).")
        .OneOf({"text", "json"});
    return s;
  }();
  return s;
}

const config::Schema<KafkaSource::Config>& KafkaSource::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    auto not_empty = [](const std::string& v) { return v.empty() ? std::string("must not be empty") : ""; };
    s.Field("bootstrap_servers", &Config::bootstrap_servers,
            "host:port of the brokers to bootstrap from, comma-separated or as a list.")
        .Required()
        .JoinsList(",")
        .Check<std::string>(not_empty);
    s.Field("group_id", &Config::group_id, "Consumer group; members of one group share the partitions.")
        .Required()
        .Check<std::string>(not_empty);
    s.Field("topics", &Config::topics, "Topics to consume: names, or regular expressions starting with `^`.")
        .Required()
        .Check<std::vector<std::string>>([](const std::vector<std::string>& t) {
          if (t.empty()) return std::string("must list at least one topic");
          for (const auto& n : t)
            if (n.empty()) return std::string("topic names must not be empty");
          return std::string();
        });
    s.Field("auto_offset_reset", &Config::auto_offset_reset,
            "Where a partition without a committed offset starts: `earliest`, `latest`, or `error`. The start is "
            "committed as soon as a message is read from it.")
        .OneOf({"earliest", "latest", "error"});
    s.Field("decoding", &Config::decoding, "How a message value becomes an event.");
    s.Field("key_field", &Config::key_field, "Field for the message key (null if none); empty: not added.");
    s.Field("topic_field", &Config::topic_field, "Field for the topic name; empty: not added.");
    s.Field("partition_field", &Config::partition_field, "Field for the partition number; empty: not added.");
    s.Field("offset_field", &Config::offset_field, "Field for the message offset; empty: not added.");
    s.Field("headers_field", &Config::headers_field,
            "Field for the message headers (a map of name to string); empty: not added.");
    s.Field("max_batch_events", &Config::max_batch_events, "Most messages per batch.").Min(1).Max(100000);
    s.Field("commit_interval_ms", &Config::commit_interval_ms,
            "How often acknowledged offsets are committed; what was read after the last commit may be read "
            "again after a crash.")
        .Min(10);
    s.Field("revoke_ack_timeout_ms", &Config::revoke_ack_timeout_ms,
            "In a rebalance, how long to wait for acknowledgements of revoked partitions' messages before "
            "committing and giving them up.")
        .Min(0);
    s.Field("librdkafka_options", &Config::librdkafka_options,
            "librdkafka consumer properties (TLS, SASL, session.timeout.ms, ...), applied over the source's "
            "defaults; values of secret keys such as sasl.password are never logged.")
        .Check<std::map<std::string, std::string>>(kafka::CheckOptions);
    // Each topic at its own line: a name Kafka allows, or a pattern that
    // librdkafka compiles (POSIX extended, with regcomp), so that a bad one
    // is a config error rather than a source that stops at subscribe.
    s.Validate([](const Config& c, const YAML::Node& node, const config::ParseContext& ctx) {
      const YAML::Node list = node["topics"];
      for (size_t i = 0; i < c.topics.size(); ++i) {
        const std::string& t = c.topics[i];
        if (t.empty()) continue;  // reported by the option's own check
        const YAML::Node at = list.IsSequence() ? list[i] : list;
        const std::string where = "`" + ctx.path + ".topics[" + std::to_string(i) + "]`";
        if (t.front() == '^') {
          regex_t re;
          if (int rc = regcomp(&re, t.c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
            char msg[256];
            regerror(rc, &re, msg, sizeof msg);
            ctx.Error(at, where + ": invalid regular expression: " + msg,
                      "a pattern topic is a POSIX extended regular expression (librdkafka's), e.g. '^logs-.*'");
          } else {
            regfree(&re);
          }
        } else if (t.size() > 249 || t.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                         "0123456789._-") != std::string::npos) {
          ctx.Error(at, where + ": `" + t + "` is not a Kafka topic name",
                    "names are up to 249 of a-z A-Z 0-9 . _ -; a pattern starts with ^");
        }
      }
      // Properties the source sets from its own options, or must hold for
      // its commits to follow deliveries: one set here wins, silently.
      static const std::map<std::string, std::string> kManaged = {
          {"bootstrap.servers", "use the source's `bootstrap_servers`"},
          {"group.id", "use the source's `group_id`"},
          {"auto.offset.reset", "use the source's `auto_offset_reset`"},
          {"enable.auto.commit", "the source commits what its sinks acknowledged; with librdkafka committing too, "
                                 "messages not yet delivered are committed, and lost at a crash"},
          {"enable.auto.offset.store", "the source stores the offsets its sinks acknowledged; with librdkafka "
                                       "storing them as they are read, messages not yet delivered are committed, "
                                       "and lost at a crash"},
      };
      for (const auto& [key, value] : c.librdkafka_options) {
        auto it = kManaged.find(key);
        if (it == kManaged.end()) continue;
        ctx.Warning(config::KeyNode(node["librdkafka_options"], key),
                    "`" + ctx.path + ".librdkafka_options` sets `" + key + "`, which replaces what the source sets",
                    it->second);
      }
    });
    return s;
  }();
  return s;
}

std::vector<std::pair<std::string, std::string>> KafkaSource::DefaultOptions(const Config& config) {
  // A pattern subscription finds topics created later at librdkafka's
  // metadata refresh: every 300 s by default, and with `latest` what such a
  // topic receives before that is never read. 30 s here.
  const bool pattern = std::any_of(config.topics.begin(), config.topics.end(),
                                   [](const std::string& t) { return !t.empty() && t[0] == '^'; });
  std::vector<std::pair<std::string, std::string>> options = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"group.id", config.group_id},
      {"client.id", "tributary"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", config.auto_offset_reset},
      {"enable.partition.eof", "false"},
      {"statistics.interval.ms", "10000"},
      {"log.connection.close", "false"},
  };
  if (pattern) options.emplace_back("topic.metadata.refresh.interval.ms", "30000");
  return options;
}

Result<std::unique_ptr<Source>> KafkaSource::Build(const Config& config, BuildContext& ctx) {
  auto conf = kafka::MakeConf(DefaultOptions(config), config.librdkafka_options);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<KafkaSource> source(new KafkaSource(config, std::move(conf).value(), ctx));
  // As the kafka sink does: librdkafka checks how properties go together
  // (SASL mechanisms and their options, TLS files) only when a client is
  // made. Made here, a combination it refuses fails the build (exit 78 at
  // start, a refused reload) instead of the source's thread once the
  // pipeline runs (the agent went on without it). It joins the group only
  // when Run subscribes.
  if (Status s = source->CreateConsumer(); !s.ok()) return s;
  return std::unique_ptr<Source>(std::move(source));
}

KafkaSource::KafkaSource(const Config& config, kafka::ConfPtr conf, BuildContext& ctx)
    : kafka::KafkaClient(ctx.metrics),
      config_(config),
      conf_(std::move(conf)),
      host_(ctx.hostname),
      tracker_(std::make_shared<AckTracker>()),
      json_codec_(config.decoding.codec == "json"),
      decode_errors_(&ctx.metrics->Errors("decode_failed", "receiving")),
      consume_errors_(&ctx.metrics->Errors("consume_failed", "receiving")),
      commit_errors_(&ctx.metrics->Errors("commit_failed", "receiving")),
      offset_resets_(&ctx.metrics->Errors("offset_reset", "receiving")),
      checkpoints_(&ctx.metrics->Checkpoints()) {}

KafkaSource::~KafkaSource() {
  if (rk_) {
    rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    rk_ = nullptr;
  }
}

// librdkafka tells a consumer that the offset it was about to fetch is not
// on the broker only through a warning (facility OFFSET): "events [0]: offset
// reset (at offset 6175, broker 1) to cached BEGINNING offset 6447: ...
// Offset out of range". The partition then goes on from where
// `auto_offset_reset` points; whatever the broker deleted before it was read
// (the topic's retention overtook a consumer that was behind, or the topic
// was deleted and created again) is gone. Resets librdkafka makes for no
// error (no committed offset yet) are debug lines and do not come here.
bool KafkaSource::OnLog(int level, std::string_view facility, std::string_view text) {
  if (facility != "OFFSET" || level > 4 || text.find("offset reset (at ") == std::string_view::npos) return false;
  offset_resets_->Increment();
  LogLimited(limiter_, LogLevel::kError, id(),
             "kafka: " + std::string(text) +
                 ": the next offset of this partition is no longer on the broker (deleted by the topic's "
                 "retention before it was read, or the topic was recreated); reading goes on from where "
                 "auto_offset_reset (" + config_.auto_offset_reset +
                 ") points, and messages deleted in between were not read "
                 "(tributary_component_errors_total{error_type=\"offset_reset\"})");
  return true;
}

Status KafkaSource::CreateConsumer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_dup(conf_.get());
  Install(conf);
  rd_kafka_conf_set_rebalance_cb(conf, &KafkaSource::RebalanceCallback);
  rd_kafka_conf_set_offset_commit_cb(conf, &KafkaSource::CommitCallback);
  char errstr[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk_) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("cannot create Kafka consumer: ") + errstr);
  }
  rd_kafka_poll_set_consumer(rk_);
  return Status::Ok();
}

Status KafkaSource::Subscribe() {
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(static_cast<int>(config_.topics.size()));
  for (const auto& t : config_.topics) rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err) {
    std::string names;
    for (const auto& t : config_.topics) names += (names.empty() ? "" : ", ") + t;
    return Status::InvalidArgument("cannot subscribe to " + names + ": " + rd_kafka_err2str(err));
  }
  return Status::Ok();
}

// ---- Callbacks ---------------------------------------------------------------------

void KafkaSource::RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<KafkaSource*>(static_cast<kafka::KafkaClient*>(opaque))->OnRebalance(rk, err, partitions);
}

void KafkaSource::CommitCallback(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                                 void* opaque) {
  static_cast<KafkaSource*>(static_cast<kafka::KafkaClient*>(opaque))->OnCommit(err, offsets);
}

void KafkaSource::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t* partitions) {
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    std::string names;
    for (int i = 0; i < partitions->cnt; ++i) {
      tracker_->Assign(partitions->elems[i].topic, partitions->elems[i].partition);
      stats_.PartitionAssigned(partitions->elems[i].topic, partitions->elems[i].partition);
      names += (i ? " " : "") + std::string(partitions->elems[i].topic) + "[" +
               std::to_string(partitions->elems[i].partition) + "]";
    }
    TLOG_INFO(id(), "assigned " + (names.empty() ? std::string("no partitions") : names));
    rd_kafka_error_t* e = nullptr;
    if (cooperative) e = rd_kafka_incremental_assign(rk, partitions);
    else if (rd_kafka_resp_err_t ae = rd_kafka_assign(rk, partitions))
      TLOG_ERROR(id(), std::string("assign failed: ") + rd_kafka_err2str(ae));
    if (e) {
      TLOG_ERROR(id(), std::string("assign failed: ") + rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
    return;
  }
  // Revoked (or an error: treated as losing everything). Drop what was read
  // from those partitions but not sent, wait a little for what is in flight,
  // commit what is acknowledged, then let the partitions go.
  std::vector<std::shared_ptr<PartitionState>> parts;
  for (int i = 0; i < partitions->cnt; ++i)
    if (auto ps = tracker_->Find(partitions->elems[i].topic, partitions->elems[i].partition)) parts.push_back(ps);
  size_t kept = 0;
  for (size_t i = 0; i < events_.size(); ++i) {
    bool revoked = std::any_of(parts.begin(), parts.end(), [&](auto& p) { return p.get() == origins_[i].first; });
    if (revoked) continue;
    if (kept != i) {
      events_[kept] = std::move(events_[i]);
      origins_[kept] = origins_[i];
    }
    ++kept;
  }
  events_.resize(kept);
  origins_.resize(kept);
  const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
  if (!lost && !parts.empty()) {
    auto deadline = std::chrono::steady_clock::now() + config_.revoke_ack_timeout_ms.get();
    if (!tracker_->WaitSettled(parts, deadline))
      TLOG_WARN(id(), "rebalance: some revoked messages were not acknowledged in time; the new owner reads them again");
    Commit(/*sync=*/true);
  }
  for (const auto& ps : parts) tracker_->Revoke(ps->topic, ps->partition);
  // Their lag is the new owner's to report: the series leave /metrics now,
  // not with the last value they had until a reload.
  for (int i = 0; i < partitions->cnt; ++i)
    stats_.PartitionRevoked(partitions->elems[i].topic, partitions->elems[i].partition);
  TLOG_INFO(id(), std::string(lost ? "lost " : "revoked ") + std::to_string(partitions->cnt) + " partition(s)");
  if (cooperative) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, partitions)) {
      TLOG_ERROR(id(), std::string("unassign failed: ") + rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

void KafkaSource::OnCommit(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets) {
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  bool any = err != RD_KAFKA_RESP_ERR_NO_ERROR;
  if (offsets) {
    for (int i = 0; i < offsets->cnt; ++i) {
      if (!offsets->elems[i].err) continue;
      any = true;
      tracker_->CommitFailed(offsets->elems[i].topic, offsets->elems[i].partition);
    }
  }
  if (any) {
    commit_errors_->Increment();
    LogLimited(limiter_, LogLevel::kWarn, id(), std::string("offset commit failed: ") + rd_kafka_err2str(err));
  } else {
    checkpoints_->Increment();
  }
}

void KafkaSource::Commit(bool sync) {
  rd_kafka_topic_partition_list_t* list = tracker_->TakeCommits();
  if (!list) return;
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, sync ? 0 : 1);
  if (sync) OnCommit(err, list);
  else if (err) OnCommit(err, list);
  rd_kafka_topic_partition_list_destroy(list);
}

// ---- Reading -----------------------------------------------------------------------

void KafkaSource::AddMessage(const rd_kafka_message_t* msg) {
  if (msg->err) {
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    // A pattern no topic matches yet: the subscription the docs advise for
    // topics created later, not a failure (it was counted as one).
    if ((msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) &&
        msg->rkt && rd_kafka_topic_name(msg->rkt)[0] == '^') {
      LogLimited(limiter_, LogLevel::kInfo, id(),
                 std::string("no topic matches ") + rd_kafka_topic_name(msg->rkt) +
                     " yet: one created later is read from its next metadata refresh");
      return;
    }
    consume_errors_->Increment();
    std::string where = msg->rkt ? std::string(" (") + rd_kafka_topic_name(msg->rkt) + ")" : "";
    LogLimited(limiter_, LogLevel::kWarn, id(),
               std::string("consume error") + where + ": " + rd_kafka_message_errstr(msg));
    return;
  }
  const char* topic = rd_kafka_topic_name(msg->rkt);
  // The partition's current state; batches fill from one poll loop, so the
  // last one looked up is usually the right one.
  PartitionState* ps = origins_.empty() ? nullptr : origins_.back().first;
  if (!ps || ps->partition != msg->partition || ps->topic != topic) {
    auto found = tracker_->Find(topic, msg->partition);
    if (!found) return;  // not ours anymore: the new owner reads it
    ps = found.get();
  }
  if (!ps->pinned) {  // once per assignment, not a lock per message
    ps->pinned = true;
    if (tracker_->Pin(ps, msg->offset)) commit_now_ = true;
  }
  std::string_view payload(static_cast<const char*>(msg->payload), msg->payload ? msg->len : 0);
  Event e;
  bool decoded = false;
  if (json_codec_) {
    Value v;
    Status s = json_.Parse(payload, &v);
    if (s.ok() && v.is_map()) {
      e = Event(std::move(v.as_map()));
      decoded = true;
      if (Value* ts = e.fields().find(kTimestampField); ts && ts->is_string()) {
        Timestamp t;
        if (ParseRfc3339(ts->as_string(), &t)) *ts = Value(t);
      }
    } else {
      decode_errors_->Increment();
      LogLimited(limiter_, LogLevel::kWarn, id(),
                 std::string("message at ") + topic + "/" + std::to_string(msg->partition) + " offset " +
                     std::to_string(msg->offset) + " kept as text: " +
                     (s.ok() ? "JSON value is not an object" : s.message()));
    }
  }
  Fields& f = e.fields();
  if (!decoded) {
    f.reserve(10);
    f.set(kMessageField, payload);
  }
  if (!config_.topic_field.empty()) f.set(config_.topic_field, Value(std::string_view(topic)));
  if (!config_.partition_field.empty()) f.set(config_.partition_field, Value(int64_t{msg->partition}));
  if (!config_.offset_field.empty()) f.set(config_.offset_field, Value(int64_t{msg->offset}));
  if (!config_.key_field.empty()) {
    if (msg->key) f.set(config_.key_field, Value(std::string_view(static_cast<const char*>(msg->key), msg->key_len)));
    else f.set(config_.key_field, Value());
  }
  if (!config_.headers_field.empty()) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
      Fields h;
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
        h.set(name, value ? Value(std::string_view(static_cast<const char*>(value), size)) : Value());
      f.set(config_.headers_field, Value(std::move(h)));
    }
  }
  if (!f.find(kTimestampField)) {
    rd_kafka_timestamp_type_t tstype;
    int64_t ms = rd_kafka_message_timestamp(msg, &tstype);
    f.set(kTimestampField, ms >= 0 ? Value(Timestamp(std::chrono::milliseconds(ms))) : Value(Now()));
  }
  if (!f.find(kHostField)) f.set(kHostField, host_);
  if (!f.find(kSourceTypeField)) f.set(kSourceTypeField, "kafka");
  batch_bytes_ += payload.size();
  events_.push_back(std::move(e));
  origins_.emplace_back(ps, msg->offset);
}

bool KafkaSource::SendBatch(SourceContext& ctx) {
  if (events_.empty()) return true;
  // One range per partition: batches are filled in offset order.
  std::vector<std::pair<PartitionState*, int64_t>> ranges;
  for (const auto& [ps, offset] : origins_) {
    auto it = std::find_if(ranges.begin(), ranges.end(), [&](auto& r) { return r.first == ps; });
    if (it == ranges.end()) ranges.emplace_back(ps, offset + 1);
    else it->second = std::max(it->second, offset + 1);
  }
  uint64_t seq = tracker_->Track(ranges);
  std::vector<std::shared_ptr<PartitionState>> parts;
  parts.reserve(ranges.size());
  for (const auto& r : ranges) {
    auto sp = tracker_->Find(r.first->topic.c_str(), r.first->partition);
    if (sp && sp.get() == r.first) parts.push_back(std::move(sp));
  }
  Batch batch(std::move(events_));
  batch.set_bytes(batch_bytes_);
  batch.add_finalizer(Finalizer::Create(
      [tracker = tracker_, seq, parts = std::move(parts)](BatchStatus s) { tracker->Ack(seq, parts, s); }));
  events_ = {};
  events_.reserve(config_.max_batch_events);
  origins_.clear();
  batch_bytes_ = 0;
  return ctx.Send(std::move(batch));
}

Status KafkaSource::Run(SourceContext& ctx) {
  Status s = rk_ ? Status::Ok() : CreateConsumer();  // made by Build
  if (s.ok()) s = Subscribe();
  if (!s.ok()) return s;
  auto stop = ctx.stop_token();
  auto last_commit = std::chrono::steady_clock::now();
  events_.reserve(config_.max_batch_events);
  while (!stop.stop_requested()) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, events_.empty() ? 100 : 0);
    if (msg) {
      AddMessage(msg);
      rd_kafka_message_destroy(msg);
    } else if (events_.empty()) {
      ReturnFreeMemoryWhenIdle();
    }
    if ((!msg && !events_.empty()) || events_.size() >= config_.max_batch_events) {
      if (!SendBatch(ctx)) break;
    }
    auto now = std::chrono::steady_clock::now();
    if (commit_now_ || now - last_commit >= config_.commit_interval_ms.get()) {
      Commit(/*sync=*/false);
      last_commit = now;
      commit_now_ = false;
    }
  }
  events_.clear();  // read but never sent: read again from the committed offset
  origins_.clear();
  Commit(/*sync=*/false);
  return Status::Ok();
}

void KafkaSource::Finish() {
  if (!rk_) return;
  Commit(/*sync=*/true);
  // Leaving the group revokes the assignment through OnRebalance (which
  // commits again if anything moved) and commits nothing else.
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_);
  if (err) TLOG_WARN(id(), std::string("consumer close: ") + rd_kafka_err2str(err));
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
}

TRIBUTARY_REGISTER_SOURCE("kafka", KafkaSource);

}  // namespace tributary
