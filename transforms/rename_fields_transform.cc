#include "transforms/rename_fields_transform.h"

#include "config/registry.h"

namespace tributary {

const config::Schema<RenameFieldsTransform::Config>& RenameFieldsTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("fields", &Config::fields, "Old name → new name; dotted paths reach into nested maps.")
        .Required()
        .Check<std::map<std::string, std::string>>([](const std::map<std::string, std::string>& m) {
          if (m.empty()) return std::string("must list at least one rename");
          for (const auto& [from, to] : m)
            if (from.empty() || to.empty()) return std::string("field names must not be empty");
          return std::string();
        });
    s.Field("drop_empty", &Config::drop_empty,
            "After moving a nested field out, remove parent maps left empty.");
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Transform>> RenameFieldsTransform::Build(const Config& config, BuildContext&) {
  std::vector<std::pair<std::string, std::string>> renames(config.fields.begin(), config.fields.end());
  return std::unique_ptr<Transform>(new RenameFieldsTransform(std::move(renames), config.drop_empty));
}

// All renames of an event happen at once: every field is taken out first,
// then every one is set under its new name. One after the other, a swap
// (`a: b, b: a`) or a chain (`a: b, b: c`) wrote over a field before it
// was moved, and its value was lost.
void RenameFieldsTransform::Apply(std::vector<Event>& events) {
  std::vector<std::pair<const std::string*, Value>> moved;
  for (Event& e : events) {
    moved.clear();
    for (const auto& [from, to] : renames_) {
      if (from == to) continue;
      Value* v = e.get(from);
      if (v == nullptr) continue;
      moved.emplace_back(&to, std::move(*v));
      e.remove(from);
      if (drop_empty_) {
        // Remove parents emptied by the move, innermost first.
        std::string_view path = from;
        for (size_t dot = path.rfind('.'); dot != std::string_view::npos; dot = path.rfind('.')) {
          path = path.substr(0, dot);
          Value* parent = e.get(path);
          if (parent == nullptr || !parent->is_map() || !parent->as_map().empty()) break;
          e.remove(path);
        }
      }
    }
    for (auto& [to, value] : moved) e.set(*to, std::move(value));
  }
}

TRIBUTARY_REGISTER_TRANSFORM("rename_fields", RenameFieldsTransform);

}  // namespace tributary
