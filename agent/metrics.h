#pragma once
// Internal metrics: one Prometheus registry per process, with the metric
// families of DESIGN.md created once, and per-component handle bundles bound
// at build time so the hot path never looks a metric up by name.
//
// Lifecycle across reloads: the registry lives as long as the process, and
// a reload builds every component again against it, so the series of a
// component kept across the reload (same labels) are the same objects and
// keep counting. Every series of a component is made through Metrics::Bind,
// which remembers it; Reload opens a new generation before it builds, and
// afterwards RemoveUnboundSeries drops the series of components that no
// longer exist (and of outputs or buffers they no longer have).
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
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

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
  // `outputs`: the component's named outputs (route). A component with
  // named outputs sends nothing on its default one, so, as in Vector, it has
  // only the per-output sent_events series (SentEventsForOutput), no
  // unlabelled one.
  ComponentMetrics(Metrics* metrics, std::string id, ComponentKind kind, std::string type,
                   const std::vector<std::string>& outputs = {});

  Counter& received_events() { return *received_events_; }
  Counter& received_bytes() { return *received_bytes_; }
  // Only for a component without named outputs (has_default_output()).
  Counter& sent_events() { return *sent_events_; }
  bool has_default_output() const { return sent_events_ != nullptr; }
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
  Counter* sent_events_;  // null for a component with named outputs
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

  std::unique_ptr<ComponentMetrics> ForComponent(std::string id, ComponentKind kind, std::string type,
                                                 const std::vector<std::string>& outputs = {});
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
  // SIGHUP reloads: applied, and refused (the running pipeline was kept).
  Counter& reloaded;
  Counter& reload_rejected;

  // Refreshes gauges derived at scrape time (uptime).
  void Refresh();

  // The series `labels` of `family` (made, or the existing one), remembered
  // as bound in the current generation. Every series that carries a
  // `component_id` is made through here, at build time or, for label sets
  // known only at run time (a broker, a partition, an error type from the
  // server), when first seen.
  template <typename T, typename... Args>
  T& Bind(prometheus::Family<T>& family, const prometheus::Labels& labels, Args&&... args);

  // Takes one series made by Bind off /metrics at once, for a label set
  // that stopped being true while the component runs (a Kafka partition
  // revoked from the consumer). The caller drops its handle: nothing may
  // update `metric` afterwards. Binding the same labels again makes a new
  // series from 0.
  template <typename T>
  void Unbind(prometheus::Family<T>& family, T& metric);

  // A reload: series bound from now on belong to the new topology.
  void BeginGeneration();
  // After the new topology is built, before it starts: removes from /metrics
  // every series not bound since BeginGeneration whose component
  // (component_id, component_kind, component_type) bound nothing since
  // either, i.e. is gone or changed type; and, of the components still
  // there, the series of build-time label sets they no longer have (an
  // `output` they lost, a `buffer_type` they no longer use). A kept
  // component's other series (bound at run time) stay, with their values.
  // Series of `keep_ids` stay whatever happens: a sink thread abandoned by
  // the old topology may still update them. Nothing else may hold a handle
  // to a removed series. Returns how many were removed.
  size_t RemoveUnboundSeries(const std::set<std::string>& keep_ids = {});

 private:
  struct BoundSeries {
    prometheus::Labels labels;
    void* family = nullptr;
    void (*remove)(void* family, void* metric) = nullptr;
    uint64_t generation = 0;
  };
  std::mutex series_mu_;
  std::unordered_map<void*, BoundSeries> series_;  // by metric; under series_mu_
  uint64_t generation_ = 0;                        // under series_mu_
};

template <typename T, typename... Args>
T& Metrics::Bind(prometheus::Family<T>& family, const prometheus::Labels& labels, Args&&... args) {
  // Under the lock: RemoveUnboundSeries may not remove what is being bound.
  std::lock_guard lock(series_mu_);
  T& metric = family.Add(labels, std::forward<Args>(args)...);
  BoundSeries& s = series_[&metric];
  if (s.family == nullptr) {
    s.labels = labels;
    s.family = &family;
    s.remove = [](void* f, void* m) { static_cast<prometheus::Family<T>*>(f)->Remove(static_cast<T*>(m)); };
  }
  s.generation = generation_;
  return metric;
}

template <typename T>
void Metrics::Unbind(prometheus::Family<T>& family, T& metric) {
  std::lock_guard lock(series_mu_);
  if (series_.erase(&metric) == 0) return;  // not made by Bind, or removed by a reload already
  family.Remove(&metric);
}

}  // namespace tributary
