#include "agent/kafka_client.h"

#include <simdjson.h>

#include <map>
#include <set>

namespace tributary::kafka {

bool IsSecretOption(std::string_view key) {
  auto has = [&](std::string_view s) { return key.find(s) != std::string_view::npos; };
  return has("password") || has("secret") || has("ssl.key.pem") || has("ssl_key") ||
         key == "sasl.oauthbearer.config" || has("keystore.pem") || has("token");
}

namespace {

// librdkafka's message for a rejected setting, without the value when the
// key is secret.
std::string SetError(const std::string& key, const char* errstr) {
  if (IsSecretOption(key)) return "`" + key + "`: invalid value (not shown: secret)";
  return "`" + key + "`: " + errstr;
}

}  // namespace

std::string CheckOptions(const std::map<std::string, std::string>& options) {
  ConfPtr conf(rd_kafka_conf_new());
  std::string problems;
  char errstr[512];
  for (const auto& [k, v] : options) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      if (!problems.empty()) problems += "; ";
      problems += SetError(k, errstr);
    }
  }
  return problems;
}

Result<ConfPtr> MakeConf(const std::vector<std::pair<std::string, std::string>>& defaults,
                         const std::map<std::string, std::string>& user) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [k, v] : defaults) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      return Status::Internal("librdkafka default " + k + ": " + errstr);
  }
  for (const auto& [k, v] : user) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      return Status::InvalidArgument("librdkafka_options: " + SetError(k, errstr));
  }
  return conf;
}

// ---- Statistics --------------------------------------------------------------

struct StatsMetrics::Impl {
  ComponentMetrics* metrics;
  simdjson::dom::parser parser;
  prometheus::Family<Gauge>* queue_messages_family;
  prometheus::Family<Gauge>* queue_bytes_family;
  prometheus::Family<Gauge>* rtt_family;
  prometheus::Family<Gauge>* lag_family;
  Gauge* queue_messages;
  Gauge* queue_bytes;
  std::map<std::string, Gauge*, std::less<>> rtt;
  std::map<std::string, Gauge*, std::less<>> lag;  // "topic\0partition", of assigned partitions only
  std::set<std::string, std::less<>> assigned;      // "topic\0partition"
};

namespace {

void PartitionKey(std::string_view topic, std::string_view partition, std::string* key) {
  key->assign(topic);
  key->push_back('\0');
  key->append(partition);
}

}  // namespace

StatsMetrics::StatsMetrics(ComponentMetrics* metrics) : impl_(std::make_unique<Impl>()) {
  impl_->metrics = metrics;
  auto& r = metrics->registry().registry();
  impl_->queue_messages_family = &prometheus::BuildGauge()
                                      .Name("tributary_kafka_queue_messages")
                                      .Help("Messages held by the Kafka client (producer: not yet delivered; "
                                            "consumer: fetched, not yet consumed).")
                                      .Register(r);
  impl_->queue_bytes_family = &prometheus::BuildGauge()
                                   .Name("tributary_kafka_queue_bytes")
                                   .Help("Bytes of the messages held by the Kafka client.")
                                   .Register(r);
  impl_->rtt_family = &prometheus::BuildGauge()
                           .Name("tributary_kafka_broker_rtt_seconds")
                           .Help("Average broker round-trip time over the last statistics interval.")
                           .Register(r);
  impl_->lag_family = &prometheus::BuildGauge()
                           .Name("tributary_kafka_consumer_lag_messages")
                           .Help("Messages between the consumer's position and the partition's end.")
                           .Register(r);
  impl_->queue_messages = &metrics->registry().Bind(*impl_->queue_messages_family, metrics->Labels());
  impl_->queue_bytes = &metrics->registry().Bind(*impl_->queue_bytes_family, metrics->Labels());
}

StatsMetrics::~StatsMetrics() = default;

bool StatsMetrics::Update(std::string_view json) {
  simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  if (impl_->parser.parse(padded).get(doc) != simdjson::SUCCESS) return false;
  int64_t v;
  if (doc["msg_cnt"].get_int64().get(v) == simdjson::SUCCESS) impl_->queue_messages->Set(static_cast<double>(v));
  if (doc["msg_size"].get_int64().get(v) == simdjson::SUCCESS) impl_->queue_bytes->Set(static_cast<double>(v));
  simdjson::dom::object brokers;
  if (doc["brokers"].get_object().get(brokers) == simdjson::SUCCESS) {
    for (auto [name, broker] : brokers) {
      int64_t nodeid;
      if (broker["nodeid"].get_int64().get(nodeid) != simdjson::SUCCESS || nodeid < 0) continue;  // bootstrap
      // "GroupCoordinator" (source "logical") is librdkafka's handle on
      // the coordinator, one of the brokers listed by host:port/id.
      std::string_view source;
      if (broker["source"].get_string().get(source) == simdjson::SUCCESS && source == "logical") continue;
      int64_t avg_us;
      if (broker["rtt"]["avg"].get_int64().get(avg_us) != simdjson::SUCCESS) continue;
      auto it = impl_->rtt.find(name);
      if (it == impl_->rtt.end()) {
        auto labels = impl_->metrics->Labels();
        labels["broker"] = std::string(name);
        it = impl_->rtt.emplace(std::string(name), &impl_->metrics->registry().Bind(*impl_->rtt_family, labels))
                 .first;
      }
      it->second->Set(static_cast<double>(avg_us) / 1e6);
    }
  }
  simdjson::dom::object topics;
  if (doc["topics"].get_object().get(topics) == simdjson::SUCCESS) {
    std::string key;
    for (auto [topic, t] : topics) {
      simdjson::dom::object partitions;
      if (t["partitions"].get_object().get(partitions) != simdjson::SUCCESS) continue;
      for (auto [pname, p] : partitions) {
        if (pname == "-1") continue;  // the unassigned-partition pseudo entry
        PartitionKey(topic, pname, &key);
        if (impl_->assigned.count(key) == 0) continue;  // another member's now, or never ours
        int64_t lag;
        if (p["consumer_lag"].get_int64().get(lag) != simdjson::SUCCESS) continue;
        if (lag < 0) {
          // librdkafka knows no position: nothing consumed from it and no
          // committed offset (yet). A partition that holds no messages
          // (its log start is its end) is 0 behind wherever the member
          // starts; any other waits until the lag is known.
          int64_t lo, hi;
          if (p["lo_offset"].get_int64().get(lo) != simdjson::SUCCESS ||
              p["hi_offset"].get_int64().get(hi) != simdjson::SUCCESS || lo < 0 || hi != lo)
            continue;
          lag = 0;
        }
        auto it = impl_->lag.find(key);
        if (it == impl_->lag.end()) {
          auto labels = impl_->metrics->Labels();
          labels["topic"] = std::string(topic);
          labels["partition"] = std::string(pname);
          it = impl_->lag.emplace(key, &impl_->metrics->registry().Bind(*impl_->lag_family, labels)).first;
        }
        it->second->Set(static_cast<double>(lag));
      }
    }
  }
  return true;
}

void StatsMetrics::PartitionAssigned(std::string_view topic, int32_t partition) {
  std::string key;
  PartitionKey(topic, std::to_string(partition), &key);
  impl_->assigned.insert(std::move(key));
}

void StatsMetrics::PartitionRevoked(std::string_view topic, int32_t partition) {
  std::string key;
  PartitionKey(topic, std::to_string(partition), &key);
  impl_->assigned.erase(key);
  auto it = impl_->lag.find(key);
  if (it == impl_->lag.end()) return;
  impl_->metrics->registry().Unbind(*impl_->lag_family, *it->second);
  impl_->lag.erase(it);
}

// ---- Callbacks ---------------------------------------------------------------

KafkaClient::KafkaClient(ComponentMetrics* metrics) : metrics_(metrics), id_(metrics->id()), stats_(metrics) {}

void KafkaClient::Install(rd_kafka_conf_t* conf) {
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_log_cb(conf, &KafkaClient::LogCallback);
  rd_kafka_conf_set_error_cb(conf, &KafkaClient::ErrorCallback);
  rd_kafka_conf_set_stats_cb(conf, &KafkaClient::StatsCallback);
}

void KafkaClient::OnError(rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason) {
  LogLimited(error_limiter_, LogLevel::kWarn, id_,
             std::string("kafka: ") + rd_kafka_err2name(err) + ": " + reason);
}

void KafkaClient::LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* self = static_cast<KafkaClient*>(rd_kafka_opaque(rk));
  if (self && self->OnLog(level, fac, buf)) return;
  LogLevel l = level <= 3 ? LogLevel::kError : level == 4 ? LogLevel::kWarn : level <= 6 ? LogLevel::kInfo
                                                                                         : LogLevel::kDebug;
  // A broker connection failure (facility FAIL) also reaches the error
  // callback, which logs it: once is enough.
  if (std::string_view(fac) == "FAIL") l = LogLevel::kDebug;
  if (!LogEnabled(l)) return;
  std::string msg = std::string("librdkafka ") + fac + ": " + buf;
  // Debug output (librdkafka's `debug` option) is asked for: not limited.
  if (self && l != LogLevel::kDebug) LogLimited(self->log_limiter_, l, self->id_, msg);
  else Log(l, self ? std::string_view(self->id_) : std::string_view(), msg);
}

void KafkaClient::ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  static_cast<KafkaClient*>(opaque)->OnError(rk, static_cast<rd_kafka_resp_err_t>(err), reason);
}

int KafkaClient::StatsCallback(rd_kafka_t*, char* json, size_t json_len, void* opaque) {
  auto* self = static_cast<KafkaClient*>(opaque);
  if (!self->stats_.Update(std::string_view(json, json_len)))
    LogLimited(self->log_limiter_, LogLevel::kDebug, self->id_, "kafka: unreadable statistics JSON");
  return 0;  // librdkafka frees json
}

}  // namespace tributary::kafka
