#pragma once
// `add_fields` transform: sets fields on every event. String values may use
// `{{ field }}` templates (rendered per event, against the event as it came
// in, before any field of this transform is set) and `${ENV}` (interpolated
// when the config is loaded); plain YAML scalars keep their type (integers,
// floats, booleans, null). Dotted names create nested maps; with overwrite
// off, a value on the path that is not a map is kept (the field is not
// added, counted as `parent_not_a_map`).

#include <memory>

#include "agent/component.h"
#include "agent/template.h"
#include "config/schema.h"

namespace tributary {

class AddFieldsTransform final : public SimpleTransform {
 public:
  struct Config {
    std::map<std::string, YAML::Node> fields;
    bool overwrite = true;
    std::string hostname_field;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Adds fields (constants, templates, host name) to every event.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);

  void Apply(std::vector<Event>& events) override;

 private:
  struct Field {
    std::string name;
    Value constant;
    std::optional<Template> tmpl;
  };
  AddFieldsTransform(std::vector<Field> fields, bool overwrite, ComponentMetrics* metrics);
  std::vector<Field> fields_;
  bool overwrite_;
  bool has_templates_;
  Counter* template_errors_;
  Counter* parent_errors_;  // overwrite: false, and a value on the path is not a map
};

// The typed value of a YAML scalar as written: a plain scalar gets the type
// YAML 1.2's core schema gives it (config::ResolveCoreScalar: null, bool,
// int also in 0x hex and 0o octal, float also .inf, -.inf and .nan); a
// quoted one is a string. JSON has no infinity or NaN (they would go out
// as null): where a value goes into events, refuse those at parse time
// (NonFiniteNumber).
Value ScalarValue(const YAML::Node& node);
// Whether a plain scalar is a float that is not finite (.inf, -.inf, .nan,
// or a literal beyond a double's range such as 1e400).
bool NonFiniteNumber(const YAML::Node& node);

}  // namespace tributary
