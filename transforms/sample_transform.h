#pragma once
// `sample` transform: keeps one event in `rate`. With `key_field`, the
// choice is a hash of that field's value, so every event with the same
// key gets the same fate (all lines of one request, on every host and
// after restarts); otherwise every rate-th event is kept. Events matching
// `exclude` are always kept. Dropped events are counted as intentional
// discards. Thread-safe (the counter is atomic).

#include <atomic>

#include "agent/component.h"
#include "config/schema.h"
#include "transforms/condition.h"

namespace tributary {

class SampleTransform final : public Transform {
 public:
  struct Config {
    uint64_t rate = 0;
    std::string key_field;
    YAML::Node exclude;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Keeps one event in `rate`, optionally by a key field's hash.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);
  void Process(Batch& in, std::span<Batch> outputs) override;

  // The stable 64-bit hash used for key_field (FNV-1a, then a mix).
  static uint64_t KeyHash(std::string_view key);

 private:
  SampleTransform(const Config& config, std::optional<Condition> exclude, ComponentMetrics* m)
      : rate_(config.rate), key_field_(config.key_field), exclude_(std::move(exclude)),
        discarded_(&m->discarded_intentional()) {}
  bool Keep(const Event& e);
  uint64_t rate_;
  std::string key_field_;
  std::optional<Condition> exclude_;
  std::atomic<uint64_t> counter_{0};
  Counter* discarded_;
};

}  // namespace tributary
