#pragma once
// `remove_fields` transform: removes fields (dotted paths reach into
// nested maps). Absent fields are ignored. Stateless; thread-safe.

#include "agent/component.h"
#include "config/schema.h"

namespace tributary {

class RemoveFieldsTransform final : public SimpleTransform {
 public:
  struct Config {
    std::vector<std::string> fields;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Removes fields from every event.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);
  void Apply(std::vector<Event>& events) override;

 private:
  explicit RemoveFieldsTransform(std::vector<std::string> fields) : fields_(std::move(fields)) {}
  std::vector<std::string> fields_;
};

}  // namespace tributary
