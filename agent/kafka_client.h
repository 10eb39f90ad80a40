#pragma once
// What the `kafka` sink and the `kafka` source share: building a librdkafka
// configuration from defaults plus the user's `librdkafka_options` (values
// of secret keys never appear in messages), routing librdkafka's logs,
// errors and statistics to a component, and turning the statistics JSON into
// metrics.
//
// KafkaClient is the opaque every rd_kafka_t of a component is created with;
// librdkafka calls its callbacks from rd_kafka_poll / rd_kafka_consumer_poll
// on the component's own thread, except the log callback, which may come
// from librdkafka's internal threads (Log is thread-safe).

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/status.h"

namespace tributary::kafka {

// True for librdkafka properties whose values are secrets (passwords, keys,
// OAuth secrets): never logged, never echoed in errors.
bool IsSecretOption(std::string_view key);

// A schema check for a `librdkafka_options` map: "" if librdkafka accepts
// every key and value, else the problems (secret values are not quoted).
std::string CheckOptions(const std::map<std::string, std::string>& options);

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

// Applies `defaults` and then `user` (user settings win) to a new conf.
Result<ConfPtr> MakeConf(const std::vector<std::pair<std::string, std::string>>& defaults,
                         const std::map<std::string, std::string>& user);

// Gauges fed from librdkafka's statistics JSON (statistics.interval.ms).
//   tributary_kafka_queue_messages / _bytes  messages waiting in the client
//       (producer: not yet delivered; consumer: fetched, not yet consumed)
//   tributary_kafka_broker_rtt_seconds{broker}  average request round trip
//   tributary_kafka_consumer_lag_messages{topic,partition}  (consumers)
// Handles for new brokers/partitions are created when first seen (stats
// come every few seconds, off the data path). A consumer's lag is reported
// only for the partitions it holds (PartitionAssigned): the statistics go on
// listing a partition after a rebalance took it away, with the lag it had,
// and another member now reports it. Not thread-safe: used from the thread
// that polls the client (which also runs the rebalance callback).
class StatsMetrics {
 public:
  explicit StatsMetrics(ComponentMetrics* metrics);
  ~StatsMetrics();
  // Parses one statistics document; false (and nothing updated) if malformed.
  bool Update(std::string_view json);

  // A consumer's assignment: lag is reported for a partition from its
  // assignment on; when it is revoked or lost its lag series leaves
  // /metrics at once.
  void PartitionAssigned(std::string_view topic, int32_t partition);
  void PartitionRevoked(std::string_view topic, int32_t partition);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Base of the opaque given to rd_kafka_new: logs with the component id and
// dispatches errors and statistics.
class KafkaClient {
 public:
  explicit KafkaClient(ComponentMetrics* metrics);
  virtual ~KafkaClient() = default;

  // Sets this object as the conf's opaque and installs the log, error and
  // statistics callbacks.
  void Install(rd_kafka_conf_t* conf);

  // A client-level error (all brokers down, authentication, fatal, ...).
  virtual void OnError(rd_kafka_t* rk, rd_kafka_resp_err_t err, const char* reason);
  // A librdkafka log line, before it is logged (from any thread): true if
  // this client logged it itself. Some events reach an application only as
  // a log line (a consumer's offset reset after "offset out of range").
  virtual bool OnLog(int level, std::string_view facility, std::string_view text) { return false; }
  const std::string& id() const { return id_; }

 protected:
  ComponentMetrics* metrics_;
  std::string id_;
  StatsMetrics stats_;
  RateLimiter log_limiter_{10, std::chrono::seconds(10)};
  RateLimiter error_limiter_{5, std::chrono::seconds(10)};

 private:
  static void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf);
  static void ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static int StatsCallback(rd_kafka_t* rk, char* json, size_t json_len, void* opaque);
};

}  // namespace tributary::kafka
