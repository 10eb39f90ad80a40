#pragma once
// Internal metrics: one Prometheus registry per process, with the metric
// families of DESIGN.md created once, and per-component handle bundles bound
// at build time so the hot path never looks a metric up by name.
//
// Thread-safety: all handles are safe to update from any thread; creating
// new label sets (ComponentMetrics::Errors etc.) takes a lock and belongs in
// build(), not on the data path.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace tributary {

enum class ComponentKind { kSource, kTransform, kSink };
const char* ComponentKindName(ComponentKind k);

using Counter = prometheus::Counter;
using Gauge = prometheus::Gauge;
using Histogram = prometheus::Histogram;

class Metrics;

// The handles every component has (the required metrics of DESIGN.md).
class ComponentMetrics {
 public:
  ComponentMetrics(Metrics* metrics, std::string id, ComponentKind kind, std::string type);

  Counter& received_events() { return *received_events_; }
  Counter& received_bytes() { return *received_bytes_; }
  Counter& sent_events() { return *sent_events_; }
  Counter& sent_bytes() { return *sent_bytes_; }
  Counter& discarded_intentional() { return *discarded_intentional_; }
  Counter& discarded_unintentional() { return *discarded_unintentional_; }

  // Label-set constructors: call at build time and keep the reference.
  Counter& Errors(std::string_view error_type, std::string_view stage);
  Counter& SentEventsForOutput(std::string_view output);
  Histogram& RequestDuration();
  Counter& Retries();
  Counter& AlreadyPresent();  // sinks: delivered because the destination already held them
  Gauge& FilesWatched();
  Counter& Checkpoints();
  Gauge& Healthy();  // 1 healthy, 0 not (sinks; set by the runtime from SinkContext::SetHealthy)

  const std::string& id() const { return id_; }
  ComponentKind kind() const { return kind_; }
  const std::string& type() const { return type_; }
  Metrics& registry() { return *metrics_; }
  prometheus::Labels Labels() const;

 private:
  Metrics* metrics_;
  std::string id_;
  ComponentKind kind_;
  std::string type_;
  Counter* received_events_;
  Counter* received_bytes_;
  Counter* sent_events_;
  Counter* sent_bytes_;
  Counter* discarded_intentional_;
  Counter* discarded_unintentional_;
};

// Handles for one sink's buffer.
struct BufferMetrics {
  Gauge* events;
  Gauge* bytes;
  Counter* received_events;
  Counter* sent_events;
  Counter* discarded_full;     // reason="full" (when_full: drop_newest)
  Counter* discarded_corrupt;  // reason="corrupt" (disk buffer recovery)
};

class Metrics {
  // Declared first: the family references below are built from it.
  std::shared_ptr<prometheus::Registry> registry_;
  std::chrono::steady_clock::time_point start_;

 public:
  Metrics();

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }
  // The Prometheus text exposition of every metric.
  std::string Serialize();

  std::unique_ptr<ComponentMetrics> ForComponent(std::string id, ComponentKind kind, std::string type);
  BufferMetrics ForBuffer(const std::string& sink_id, const std::string& sink_type,
                          const std::string& buffer_type);

  prometheus::Family<Counter>& received_events;
  prometheus::Family<Counter>& received_bytes;
  prometheus::Family<Counter>& sent_events;
  prometheus::Family<Counter>& sent_bytes;
  prometheus::Family<Counter>& errors;
  prometheus::Family<Counter>& discarded;
  prometheus::Family<Counter>& already_present;
  prometheus::Family<Gauge>& buffer_events;
  prometheus::Family<Gauge>& buffer_bytes;
  prometheus::Family<Counter>& buffer_received;
  prometheus::Family<Counter>& buffer_sent;
  prometheus::Family<Counter>& buffer_discarded;
  prometheus::Family<Gauge>& files_watched;
  prometheus::Family<Counter>& checkpoints;
  prometheus::Family<Histogram>& request_duration;
  prometheus::Family<Counter>& retries;
  prometheus::Family<Gauge>& healthy;
  prometheus::Family<Gauge>& uptime;
  prometheus::Family<Gauge>& build_info;

  // Refreshes gauges derived at scrape time (uptime).
  void Refresh();
};

}  // namespace tributary
