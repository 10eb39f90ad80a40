#include "transforms/route_transform.h"

#include "config/registry.h"

namespace tributary {

const config::Schema<RouteTransform::Config>& RouteTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("route", &Config::route,
            "Output name → condition (docs/conditions.md). Consume an output as `<id>.<name>`; events matching no "
            "route go to `<id>._unmatched`.")
        .Required();
    s.Validate([](const Config& c, const YAML::Node& node, const config::ParseContext& ctx) {
      if (c.route.empty()) ctx.Error(node["route"], "`" + ctx.path + ".route` must name at least one output");
      for (const auto& [name, cond] : c.route) {
        config::ParseContext at = ctx.Child("route").Child(name);
        if (name.empty() || name.find_first_of(". \t") != std::string::npos || name == kUnmatched) {
          ctx.Error(node["route"], "invalid output name `" + name + "` in `" + ctx.path + ".route`",
                    "names may not be empty, contain dots or spaces, or be `_unmatched`");
          continue;
        }
        Condition::Parse(cond, at);
      }
    });
    return s;
  }();
  return s;
}

std::vector<std::string> RouteTransform::Outputs(const Config& config) {
  std::vector<std::string> names;
  for (const auto& [name, cond] : config.route) names.push_back(name);
  names.emplace_back(kUnmatched);
  return names;
}

Result<std::unique_ptr<Transform>> RouteTransform::Build(const Config& config, BuildContext&) {
  std::vector<Condition> conditions;
  for (const auto& [name, cond] : config.route) conditions.push_back(Condition::ParseValidated(cond));
  return std::unique_ptr<Transform>(new RouteTransform(std::move(conditions)));
}

void RouteTransform::Process(Batch& in, std::span<Batch> outputs) {
  const size_t n = conditions_.size();
  Batch& unmatched = outputs[n + 1];
  // Each event goes to the outputs it matches: copies for all but the last.
  std::vector<Event>& events = in.mutable_events();
  for (Event& e : events) {
    size_t last = SIZE_MAX;
    for (size_t r = 0; r < n; ++r) {
      if (!conditions_[r].Matches(e)) continue;
      if (last != SIZE_MAX) outputs[last + 1].mutable_events().push_back(e);
      last = r;
    }
    if (last == SIZE_MAX) unmatched.mutable_events().push_back(std::move(e));
    else outputs[last + 1].mutable_events().push_back(std::move(e));
  }
}

TRIBUTARY_REGISTER_TRANSFORM("route", RouteTransform);

}  // namespace tributary
