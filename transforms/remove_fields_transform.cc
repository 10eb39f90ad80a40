#include "transforms/remove_fields_transform.h"

#include "config/registry.h"

namespace tributary {

const config::Schema<RemoveFieldsTransform::Config>& RemoveFieldsTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("fields", &Config::fields, "Fields to remove; dotted paths (`http.headers`) reach into nested maps.")
        .Required()
        .Check<std::vector<std::string>>([](const std::vector<std::string>& v) {
          if (v.empty()) return std::string("must list at least one field");
          for (const auto& f : v)
            if (f.empty()) return std::string("field names must not be empty");
          return std::string();
        });
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Transform>> RemoveFieldsTransform::Build(const Config& config, BuildContext&) {
  return std::unique_ptr<Transform>(new RemoveFieldsTransform(config.fields));
}

void RemoveFieldsTransform::Apply(std::vector<Event>& events) {
  for (Event& e : events)
    for (const auto& f : fields_) e.remove(f);
}

TRIBUTARY_REGISTER_TRANSFORM("remove_fields", RemoveFieldsTransform);

}  // namespace tributary
