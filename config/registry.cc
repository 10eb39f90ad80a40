#include "config/registry.h"

#include <algorithm>

namespace tributary::config {

Registry& Registry::Get() {
  static Registry* registry = new Registry();  // never destroyed: used by static initializers
  return *registry;
}

void Registry::Add(ComponentType type) { types_.push_back(std::make_unique<ComponentType>(std::move(type))); }

const ComponentType* Registry::Find(ComponentKind kind, std::string_view name) const {
  for (const auto& t : types_)
    if (t->kind == kind && t->name == name) return t.get();
  return nullptr;
}

std::vector<std::string> Registry::Names(ComponentKind kind) const {
  std::vector<std::string> names;
  for (const auto& t : types_)
    if (t->kind == kind) names.push_back(t->name);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<const ComponentType*> Registry::All() const {
  std::vector<const ComponentType*> all;
  for (const auto& t : types_) all.push_back(t.get());
  std::sort(all.begin(), all.end(), [](auto* a, auto* b) {
    return a->kind != b->kind ? a->kind < b->kind : a->name < b->name;
  });
  return all;
}

const std::vector<std::string>& CommonKeys(ComponentKind kind) {
  static const std::vector<std::string> kSource = {"type"};
  static const std::vector<std::string> kTransform = {"type", "inputs"};
  static const std::vector<std::string> kSink = {"type", "inputs", "buffer"};
  switch (kind) {
    case ComponentKind::kSource: return kSource;
    case ComponentKind::kTransform: return kTransform;
    case ComponentKind::kSink: return kSink;
  }
  return kSource;
}

}  // namespace tributary::config
