#include "transforms/filter_transform.h"

#include "config/registry.h"

namespace tributary {

const config::Schema<FilterTransform::Config>& FilterTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("condition", &Config::condition,
            "The condition events must meet to be kept (see docs/conditions.md), e.g. "
            "`{ all: [ { field: status, gte: 500 }, { field: path, matches: '^/api/' } ] }`.")
        .Required();
    s.Validate([](const Config& c, const YAML::Node&, const config::ParseContext& ctx) {
      Condition::Parse(c.condition, ctx.Child("condition"));
    });
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Transform>> FilterTransform::Build(const Config& config, BuildContext& ctx) {
  return std::unique_ptr<Transform>(new FilterTransform(Condition::ParseValidated(config.condition), ctx.metrics));
}

void FilterTransform::Process(Batch& in, std::span<Batch> outputs) {
  std::vector<Event>& events = in.mutable_events();
  size_t out = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!condition_.Matches(events[i])) continue;
    if (out != i) events[out] = std::move(events[i]);
    ++out;
  }
  if (out != events.size()) discarded_->Increment(static_cast<double>(events.size() - out));
  events.resize(out);
  outputs[0] = std::move(in);
}

TRIBUTARY_REGISTER_TRANSFORM("filter", FilterTransform);

}  // namespace tributary
