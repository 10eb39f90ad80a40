#pragma once
// `route` transform: sends each event to every named output whose
// condition it meets (a copy per extra output), and events that meet none
// to `_unmatched`. Outputs are consumed as `inputs: [<route id>.<name>]`;
// the route's own id carries nothing. Counted per output in
// component_sent_events_total{output=...}. Thread-safe.

#include "agent/component.h"
#include "config/schema.h"
#include "transforms/condition.h"

namespace tributary {

class RouteTransform final : public Transform {
 public:
  struct Config {
    std::map<std::string, YAML::Node> route;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Splits events into named outputs by conditions.";
  static constexpr std::string_view kUnmatched = "_unmatched";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);
  // The route names in order, then `_unmatched`.
  static std::vector<std::string> Outputs(const Config& config);
  void Process(Batch& in, std::span<Batch> outputs) override;

 private:
  explicit RouteTransform(std::vector<Condition> conditions) : conditions_(std::move(conditions)) {}
  std::vector<Condition> conditions_;  // output i + 1
};

}  // namespace tributary
