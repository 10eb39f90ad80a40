#pragma once
// `rename_fields` transform: moves values from one field name to another
// (dotted paths on both sides). A missing source is ignored; an existing
// destination is replaced. Renames apply in the order the names sort.
// Stateless; thread-safe.

#include "agent/component.h"
#include "config/schema.h"

namespace tributary {

class RenameFieldsTransform final : public SimpleTransform {
 public:
  struct Config {
    std::map<std::string, std::string> fields;
    bool drop_empty = false;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Renames fields of every event.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);
  void Apply(std::vector<Event>& events) override;

 private:
  RenameFieldsTransform(std::vector<std::pair<std::string, std::string>> renames, bool drop_empty)
      : renames_(std::move(renames)), drop_empty_(drop_empty) {}
  std::vector<std::pair<std::string, std::string>> renames_;
  bool drop_empty_;
};

}  // namespace tributary
