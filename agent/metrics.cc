#include "agent/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace tributary {

const char* ComponentKindName(ComponentKind k) {
  switch (k) {
    case ComponentKind::kSource: return "source";
    case ComponentKind::kTransform: return "transform";
    case ComponentKind::kSink: return "sink";
  }
  return "unknown";
}

namespace {

template <typename T>
prometheus::Family<T>& Build(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::detail::Builder<T>().Name(name).Help(help).Register(r);
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      start_(std::chrono::steady_clock::now()),
      received_events(Build<Counter>(*registry_, "tributary_component_received_events_total",
                                     "Events received by a component.")),
      received_bytes(Build<Counter>(*registry_, "tributary_component_received_bytes_total",
                                    "Raw bytes received by a component (sources: bytes read).")),
      sent_events(Build<Counter>(*registry_, "tributary_component_sent_events_total",
                                 "Events sent on by a component (sinks: delivered).")),
      sent_bytes(Build<Counter>(*registry_, "tributary_component_sent_bytes_total",
                                "Encoded bytes sent by a sink.")),
      errors(Build<Counter>(*registry_, "tributary_component_errors_total",
                            "Errors by type and stage.")),
      discarded(Build<Counter>(*registry_, "tributary_component_discarded_events_total",
                               "Events discarded, intentionally (filters) or not.")),
      already_present(Build<Counter>(*registry_, "tributary_component_already_present_events_total",
                                     "Events a sink counted as delivered because the destination already held "
                                     "them (elasticsearch: item 409 on create with an _id).")),
      buffer_events(Build<Gauge>(*registry_, "tributary_buffer_events", "Events in a sink's buffer.")),
      buffer_bytes(Build<Gauge>(*registry_, "tributary_buffer_bytes", "Bytes in a sink's buffer.")),
      buffer_received(Build<Counter>(*registry_, "tributary_buffer_received_events_total",
                                     "Events written into a sink's buffer.")),
      buffer_sent(Build<Counter>(*registry_, "tributary_buffer_sent_events_total",
                                 "Events read out of a sink's buffer.")),
      buffer_discarded(Build<Counter>(*registry_, "tributary_buffer_discarded_events_total",
                                      "Events a buffer dropped, by reason (full, corrupt).")),
      files_watched(Build<Gauge>(*registry_, "tributary_files_watched", "Files a file source watches.")),
      checkpoints(Build<Counter>(*registry_, "tributary_checkpoints_total",
                                 "Checkpoints written by a source.")),
      request_duration(Build<Histogram>(*registry_, "tributary_sink_request_duration_seconds",
                                        "Duration of a sink's requests to its peer.")),
      retries(Build<Counter>(*registry_, "tributary_sink_retries_total", "Requests or items a sink retried.")),
      healthy(Build<Gauge>(*registry_, "tributary_component_healthy",
                           "1 while a sink reports itself healthy, 0 while it does not (e.g. authentication fails).")),
      uptime(Build<Gauge>(*registry_, "tributary_uptime_seconds", "Seconds since the agent started.")),
      build_info(Build<Gauge>(*registry_, "tributary_build_info", "Build information.")),
      reloaded(Build<Counter>(*registry_, "tributary_reloaded_total",
                              "Configuration reloads (SIGHUP) applied.")
                   .Add({})),
      reload_rejected(Build<Counter>(*registry_, "tributary_reload_rejected_total",
                                     "Configuration reloads (SIGHUP) refused: the new configuration did not load "
                                     "or could not be built, and the running one was kept.")
                          .Add({})) {
  build_info.Add({{"version", TRIBUTARY_VERSION}}).Set(1);
  uptime.Add({}).Set(0);
}

void Metrics::Refresh() {
  std::chrono::duration<double> up = std::chrono::steady_clock::now() - start_;
  uptime.Add({}).Set(up.count());
}

std::string Metrics::Serialize() {
  Refresh();
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  return out.str();
}

std::unique_ptr<ComponentMetrics> Metrics::ForComponent(std::string id, ComponentKind kind, std::string type,
                                                        const std::vector<std::string>& outputs) {
  return std::make_unique<ComponentMetrics>(this, std::move(id), kind, std::move(type), outputs);
}

void Metrics::BeginGeneration() {
  std::lock_guard lock(series_mu_);
  ++generation_;
}

size_t Metrics::RemoveUnboundSeries(const std::set<std::string>& keep_ids) {
  auto label = [](const prometheus::Labels& l, const char* key) -> std::string {
    auto it = l.find(key);
    return it == l.end() ? std::string() : it->second;
  };
  auto component = [&](const prometheus::Labels& l) {
    return label(l, "component_id") + '\0' + label(l, "component_kind") + '\0' + label(l, "component_type");
  };
  std::lock_guard lock(series_mu_);
  std::set<std::string> live;  // components that bound a series in this generation
  for (const auto& [metric, s] : series_)
    if (s.generation == generation_) live.insert(component(s.labels));
  size_t removed = 0;
  for (auto it = series_.begin(); it != series_.end();) {
    const BoundSeries& s = it->second;
    // Label sets that only a build binds: one not bound again is gone.
    const bool build_time = s.labels.count("output") > 0 || s.labels.count("buffer_type") > 0;
    if (s.generation == generation_ || keep_ids.count(label(s.labels, "component_id")) > 0 ||
        (live.count(component(s.labels)) > 0 && !build_time)) {
      ++it;
      continue;
    }
    s.remove(s.family, it->first);
    it = series_.erase(it);
    ++removed;
  }
  return removed;
}

BufferMetrics Metrics::ForBuffer(const std::string& sink_id, const std::string& sink_type,
                                 const std::string& buffer_type) {
  prometheus::Labels l{{"component_id", sink_id},
                       {"component_kind", "sink"},
                       {"component_type", sink_type},
                       {"buffer_type", buffer_type}};
  auto with = [&](const char* k, const char* v) {
    auto c = l;
    c[k] = v;
    return c;
  };
  return BufferMetrics{&Bind(buffer_events, l),       &Bind(buffer_bytes, l),
                       &Bind(buffer_received, l),     &Bind(buffer_sent, l),
                       &Bind(buffer_discarded, with("reason", "full")),
                       &Bind(buffer_discarded, with("reason", "corrupt"))};
}

ComponentMetrics::ComponentMetrics(Metrics* metrics, std::string id, ComponentKind kind, std::string type,
                                   const std::vector<std::string>& outputs)
    : metrics_(metrics), id_(std::move(id)), kind_(kind), type_(std::move(type)) {
  auto l = Labels();
  received_events_ = &metrics_->Bind(metrics_->received_events, l);
  received_bytes_ = &metrics_->Bind(metrics_->received_bytes, l);
  sent_events_ = outputs.empty() ? &metrics_->Bind(metrics_->sent_events, l) : nullptr;
  for (const auto& o : outputs) SentEventsForOutput(o);
  sent_bytes_ = &metrics_->Bind(metrics_->sent_bytes, l);
  auto li = l;
  li["intentional"] = "true";
  discarded_intentional_ = &metrics_->Bind(metrics_->discarded, li);
  li["intentional"] = "false";
  discarded_unintentional_ = &metrics_->Bind(metrics_->discarded, li);
}

prometheus::Labels ComponentMetrics::Labels() const {
  return {{"component_id", id_}, {"component_kind", ComponentKindName(kind_)}, {"component_type", type_}};
}

Counter& ComponentMetrics::Errors(std::string_view error_type, std::string_view stage) {
  auto l = Labels();
  l["error_type"] = std::string(error_type);
  l["stage"] = std::string(stage);
  return metrics_->Bind(metrics_->errors, l);
}

Counter& ComponentMetrics::SentEventsForOutput(std::string_view output) {
  auto l = Labels();
  l["output"] = std::string(output);
  return metrics_->Bind(metrics_->sent_events, l);
}

Histogram& ComponentMetrics::RequestDuration() {
  return metrics_->Bind(
      metrics_->request_duration, Labels(), Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                            2.5, 5, 10, 30, 60});
}

Counter& ComponentMetrics::Retries() { return metrics_->Bind(metrics_->retries, Labels()); }
Counter& ComponentMetrics::AlreadyPresent() { return metrics_->Bind(metrics_->already_present, Labels()); }
Gauge& ComponentMetrics::FilesWatched() { return metrics_->Bind(metrics_->files_watched, Labels()); }
Counter& ComponentMetrics::Checkpoints() { return metrics_->Bind(metrics_->checkpoints, Labels()); }
Gauge& ComponentMetrics::Healthy() { return metrics_->Bind(metrics_->healthy, Labels()); }

}  // namespace tributary
