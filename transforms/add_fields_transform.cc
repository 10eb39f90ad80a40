#include "transforms/add_fields_transform.h"

#include <algorithm>
#include <cmath>

#include "config/registry.h"

namespace tributary {

const config::Schema<AddFieldsTransform::Config>& AddFieldsTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("fields", &Config::fields, "Field name → value. Strings may contain `{{ field }}` templates.")
        .Required();
    s.Field("overwrite", &Config::overwrite,
            "Replace fields that already exist; false keeps the existing value, and a non-map value on a "
            "dotted name's path (the field is then not added: `parent_not_a_map`).");
    s.Field("hostname_field", &Config::hostname_field, "If set, also add this host's name under this field name.");
    s.Validate([](const Config& c, const YAML::Node& node, const config::ParseContext& ctx) {
      for (const auto& [name, value] : c.fields) {
        YAML::Node at = node["fields"][name];
        if (name.empty()) {
          ctx.Error(node["fields"], "`" + ctx.path + ".fields` has an empty field name", "name the field to add");
          continue;
        }
        if (!value.IsScalar() && !value.IsNull()) {
          // `svc: {{ service }}` unquoted: YAML reads a map holding a map.
          const bool template_slip =
              value.IsMap() && value.size() == 1 && value.begin()->first.IsMap() && value.begin()->second.IsNull();
          ctx.Error(at, "`" + ctx.path + ".fields." + name + "` must be a scalar (string, number, bool or null)",
                    template_slip ? "a `{{ field }}` template must be quoted: write \"{{ ... }}\" in double or single quotes"
                                  : "");
          continue;
        }
        if (NonFiniteNumber(value)) {
          ctx.Error(at, "`" + ctx.path + ".fields." + name + "` is " + value.Scalar() +
                            ", a number JSON cannot carry (it would be written as null)",
                    "quote it ('" + value.Scalar() + "') for the text, or give a finite number");
          continue;
        }
        if (value.IsScalar()) {
          std::string problem = Template::Check(value.Scalar());
          if (!problem.empty()) ctx.Error(at, "`" + ctx.path + ".fields." + name + "`: " + problem);
        }
      }
    });
    return s;
  }();
  return s;
}

Value ScalarValue(const YAML::Node& node) {
  if (node.IsNull()) return Value();
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return Value(s);  // quoted: always a string
  const config::CoreScalar c = config::ResolveCoreScalar(s);
  switch (c.kind) {
    case config::CoreScalar::Kind::kNull: return Value();
    case config::CoreScalar::Kind::kBool: return Value(c.b);
    case config::CoreScalar::Kind::kInt: return Value(c.i);
    case config::CoreScalar::Kind::kFloat: return Value(c.d);
    case config::CoreScalar::Kind::kString: break;
  }
  return Value(s);
}

bool NonFiniteNumber(const YAML::Node& node) {
  if (!node.IsScalar() || node.Tag() == "!") return false;
  const config::CoreScalar c = config::ResolveCoreScalar(node.Scalar());
  return c.kind == config::CoreScalar::Kind::kFloat && !std::isfinite(c.d);
}

Result<std::unique_ptr<Transform>> AddFieldsTransform::Build(const Config& config, BuildContext& ctx) {
  std::vector<Field> fields;
  for (const auto& [name, node] : config.fields) {
    Field f{name, ScalarValue(node), std::nullopt};
    if (f.constant.is_string() && f.constant.as_string().find("{{") != std::string::npos) {
      auto t = Template::Parse(f.constant.as_string());
      if (!t.ok()) return t.status();
      f.tmpl = std::move(t).value();
    }
    fields.push_back(std::move(f));
  }
  if (!config.hostname_field.empty()) fields.push_back({config.hostname_field, Value(ctx.hostname), std::nullopt});
  return std::unique_ptr<Transform>(new AddFieldsTransform(std::move(fields), config.overwrite, ctx.metrics));
}

AddFieldsTransform::AddFieldsTransform(std::vector<Field> fields, bool overwrite, ComponentMetrics* metrics)
    : fields_(std::move(fields)),
      overwrite_(overwrite),
      has_templates_(std::any_of(fields_.begin(), fields_.end(), [](const Field& f) { return f.tmpl.has_value(); })),
      template_errors_(&metrics->Errors("template_failed", "processing")),
      parent_errors_(&metrics->Errors("parent_not_a_map", "processing")) {}

namespace {

enum class Slot { kFree, kTaken, kBlocked };

// What Event::set(path) would find, walking the path the same way: the
// field itself (taken), a value on the way that is not a map and that set
// would replace with one (blocked), or neither (free).
Slot FindSlot(const Event& e, std::string_view path) {
  const Fields* fields = &e.fields();
  while (true) {
    if (fields->find(path) != nullptr) return Slot::kTaken;
    const size_t dot = path.find('.');
    if (dot == std::string_view::npos) return Slot::kFree;
    const Value* child = fields->find(path.substr(0, dot));
    if (child == nullptr) return Slot::kFree;
    if (!child->is_map()) return Slot::kBlocked;
    fields = &child->as_map();
    path = path.substr(dot + 1);
  }
}

}  // namespace

// Every template renders against the event as it came in, before this
// transform sets anything: `who: "{{ status }}"` next to `status: 999`
// sees the event's own status. Set one after the other, in the names'
// order, a template saw the fields set before it and not those after.
void AddFieldsTransform::Apply(std::vector<Event>& events) {
  uint64_t errors = 0, blocked = 0;
  std::vector<std::string> rendered(has_templates_ ? fields_.size() : 0);
  std::vector<char> rendered_ok(rendered.size());
  for (Event& e : events) {
    for (size_t i = 0; i < rendered.size(); ++i) {
      const Field& f = fields_[i];
      rendered_ok[i] = false;
      if (!f.tmpl) continue;
      if (!overwrite_ && FindSlot(e, f.name) != Slot::kFree) continue;  // not set, so not rendered
      rendered[i].clear();
      if (f.tmpl->Render(e, &rendered[i]).ok()) rendered_ok[i] = true;
      else ++errors;  // the field is left unset; the event goes on
    }
    for (size_t i = 0; i < fields_.size(); ++i) {
      const Field& f = fields_[i];
      if (!overwrite_) {
        // Keep what the event has: the field itself, and a value on its
        // path that is not a map (`x: 5` for `x.y`), which set() would
        // replace with a map. The latter is counted: the field is not added.
        const Slot slot = FindSlot(e, f.name);
        if (slot == Slot::kBlocked) ++blocked;
        if (slot != Slot::kFree) continue;
      }
      if (!f.tmpl) e.set(f.name, f.constant);
      else if (rendered_ok[i]) e.set(f.name, Value(std::move(rendered[i])));
    }
  }
  if (errors) template_errors_->Increment(static_cast<double>(errors));
  if (blocked) parent_errors_->Increment(static_cast<double>(blocked));
}

TRIBUTARY_REGISTER_TRANSFORM("add_fields", AddFieldsTransform);

}  // namespace tributary
