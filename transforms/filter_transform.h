#pragma once
// `filter` transform: keeps the events for which `condition` holds
// (condition.h) and drops the rest, counted in
// component_discarded_events_total{intentional="true"}. Thread-safe.

#include "agent/component.h"
#include "config/schema.h"
#include "transforms/condition.h"

namespace tributary {

class FilterTransform final : public Transform {
 public:
  struct Config {
    YAML::Node condition;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Keeps only the events that match a condition.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);
  void Process(Batch& in, std::span<Batch> outputs) override;

 private:
  FilterTransform(Condition condition, ComponentMetrics* m)
      : condition_(std::move(condition)), discarded_(&m->discarded_intentional()) {}
  Condition condition_;
  Counter* discarded_;
};

}  // namespace tributary
