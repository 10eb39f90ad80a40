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

void RenameFieldsTransform::Apply(std::vector<Event>& events) {
  for (Event& e : events) {
    for (const auto& [from, to] : renames_) {
      if (from == to) continue;
      Value* v = e.get(from);
      if (v == nullptr) continue;
      Value moved = std::move(*v);
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
      e.set(to, std::move(moved));
    }
  }
}

TRIBUTARY_REGISTER_TRANSFORM("rename_fields", RenameFieldsTransform);

}  // namespace tributary
