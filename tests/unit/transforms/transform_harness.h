#pragma once
// Builds one transform from YAML options the way the loader does (schema
// parse + validation, registry build) and runs batches through it.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "agent/component.h"
#include "agent/metrics.h"
#include "config/registry.h"

namespace tributary::testing {

class TransformHarness {
 public:
  // Parses and builds; on a config error, error() holds the diagnostics.
  TransformHarness(const std::string& type, const std::string& yaml) {
    const auto* t = config::Registry::Get().Find(ComponentKind::kTransform, type);
    if (t == nullptr) {
      error_ = "unknown type " + type;
      return;
    }
    YAML::Node node = YAML::Load(yaml);
    auto opts = t->parse(node, config::ParseContext{&diag_, "test.yaml", "transforms.t"});
    if (!opts) {
      error_ = diag_.ToString();
      return;
    }
    outputs_ = t->outputs(opts.get());
    metrics_ = registry_.ForComponent("t", ComponentKind::kTransform, type);
    BuildContext ctx{"t", "/tmp", "testhost", metrics_.get()};
    auto built = t->build_transform(opts.get(), ctx);
    if (!built.ok()) {
      error_ = built.status().message();
      return;
    }
    transform_ = std::move(built).value();
  }

  bool ok() const { return transform_ != nullptr; }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& named_outputs() const { return outputs_; }

  // Runs one batch; returns one batch per output (0 = default).
  std::vector<Batch> Run(std::vector<Event> events) {
    Batch in(std::move(events));
    std::vector<Batch> outs(1 + outputs_.size());
    transform_->Process(in, outs);
    return outs;
  }
  std::vector<Event> RunDefault(std::vector<Event> events) { return Run(std::move(events))[0].events(); }

  double Errors(const std::string& type) { return metrics_->Errors(type, "processing").Value(); }
  double Discarded(bool intentional) {
    return intentional ? metrics_->discarded_intentional().Value() : metrics_->discarded_unintentional().Value();
  }
  Transform& transform() { return *transform_; }

 private:
  config::Diagnostics diag_;
  Metrics registry_;
  std::unique_ptr<ComponentMetrics> metrics_;
  std::unique_ptr<Transform> transform_;
  std::vector<std::string> outputs_;
  std::string error_;
};

inline Event MessageEvent(std::string message) {
  Event e;
  e.fields().set("message", Value(std::move(message)));
  return e;
}

}  // namespace tributary::testing
