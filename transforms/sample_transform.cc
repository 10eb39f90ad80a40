#include "transforms/sample_transform.h"

#include "config/registry.h"

namespace tributary {

const config::Schema<SampleTransform::Config>& SampleTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("rate", &Config::rate, "Keep one event in this many (1 keeps all).").Required().Min(1);
    s.Field("key_field", &Config::key_field,
            "If set, decide by a hash of this field's value: equal values share one fate. Events without it are "
            "sampled by count.")
        .Check<std::string>([](const std::string& f) {
          return f.empty() ? std::string("must not be empty (leave it out to sample by count)") : "";
        });
    s.Field("exclude", &Config::exclude, "A condition (docs/conditions.md); matching events are never sampled out.");
    s.Validate([](const Config& c, const YAML::Node&, const config::ParseContext& ctx) {
      if (c.exclude.IsDefined() && !c.exclude.IsNull()) Condition::Parse(c.exclude, ctx.Child("exclude"));
    });
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Transform>> SampleTransform::Build(const Config& config, BuildContext& ctx) {
  std::optional<Condition> exclude;
  if (config.exclude.IsDefined() && !config.exclude.IsNull()) exclude = Condition::ParseValidated(config.exclude);
  return std::unique_ptr<Transform>(new SampleTransform(config, std::move(exclude), ctx.metrics));
}

uint64_t SampleTransform::KeyHash(std::string_view key) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // splitmix64 finalizer: spreads FNV's low bits before the modulo.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

bool SampleTransform::Keep(const Event& e) {
  if (rate_ <= 1) return true;
  if (exclude_ && exclude_->Matches(e)) return true;
  if (!key_field_.empty()) {
    if (const Value* v = e.get(key_field_)) {
      if (v->is_string()) return KeyHash(v->as_string()) % rate_ == 0;
      if (!v->is_null()) return KeyHash(v->to_text()) % rate_ == 0;
    }
  }
  return counter_.fetch_add(1, std::memory_order_relaxed) % rate_ == 0;
}

void SampleTransform::Process(Batch& in, std::span<Batch> outputs) {
  std::vector<Event>& events = in.mutable_events();
  size_t out = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!Keep(events[i])) continue;
    if (out != i) events[out] = std::move(events[i]);
    ++out;
  }
  if (out != events.size()) discarded_->Increment(static_cast<double>(events.size() - out));
  events.resize(out);
  outputs[0] = std::move(in);
}

TRIBUTARY_REGISTER_TRANSFORM("sample", SampleTransform);

}  // namespace tributary
