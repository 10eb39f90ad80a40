#pragma once
// The component registry: every source, transform and sink type registers
// itself from its own .cc file with one line,
//
//   TRIBUTARY_REGISTER_SOURCE("demo_logs", DemoLogsSource);
//
// where the class provides
//   struct Config { ...; static const config::Schema<Config>& schema(); };
//   static constexpr std::string_view kSummary = "one line for the docs";
//   static Result<std::unique_ptr<Source>> Build(const Config&, BuildContext&);
// and, for a transform with named outputs (route),
//   static std::vector<std::string> Outputs(const Config&);
//
// Registration happens during static initialization (the core is an
// OBJECT library, so no registration is dropped by the linker). After main()
// starts, the registry is read-only and safe to share.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/component.h"
#include "config/schema.h"

namespace tributary::config {

// One line of `tributary validate`'s environment checks.
struct EnvCheck {
  std::string what;    // e.g. "include /var/log/app/*.log: parent directory readable"
  bool ok = true;
  std::string detail;    // why not, when !ok
  bool warning = false;  // !ok but not an error: `run` copes (waits, retries); validate still exits 0
};

struct ComponentType {
  ComponentKind kind;
  std::string name;
  std::string summary;
  const SchemaBase* schema;
  // Parses the component's own options (common keys ignored); nullptr on error.
  std::function<std::shared_ptr<const void>(const YAML::Node&, const ParseContext&)> parse;
  // Named outputs besides the default (transforms only; usually empty).
  std::function<std::vector<std::string>(const void*)> outputs;
  // Checks of the machine this config will run on (files readable, ...);
  // optional, from `static void CheckEnvironment(const Config&, std::vector<EnvCheck>*)`.
  std::function<void(const void*, std::vector<EnvCheck>*)> check_environment;
  // The directory under data_dir in which components of this type keep
  // their state, one subdirectory per component id ("file_source" for
  // data_dir/file_source/<id>); empty for types that keep none. From
  // `static constexpr std::string_view kStateDir`.
  std::string state_dir;
  std::function<Result<std::unique_ptr<Source>>(const void*, BuildContext&)> build_source;
  std::function<Result<std::unique_ptr<Transform>>(const void*, BuildContext&)> build_transform;
  std::function<Result<std::unique_ptr<Sink>>(const void*, BuildContext&)> build_sink;
};

class Registry {
 public:
  static Registry& Get();
  void Add(ComponentType type);
  const ComponentType* Find(ComponentKind kind, std::string_view name) const;
  std::vector<std::string> Names(ComponentKind kind) const;
  std::vector<const ComponentType*> All() const;

 private:
  std::vector<std::unique_ptr<ComponentType>> types_;
};

// Keys every component has, handled by the loader, not by its schema.
const std::vector<std::string>& CommonKeys(ComponentKind kind);

namespace detail {

template <typename T, typename = void>
struct HasOutputs : std::false_type {};
template <typename T>
struct HasOutputs<T, std::void_t<decltype(T::Outputs(std::declval<const typename T::Config&>()))>>
    : std::true_type {};

template <typename T, typename = void>
struct HasEnvCheck : std::false_type {};
template <typename T>
struct HasEnvCheck<T, std::void_t<decltype(T::CheckEnvironment(std::declval<const typename T::Config&>(),
                                                                 std::declval<std::vector<EnvCheck>*>()))>>
    : std::true_type {};

template <typename T, typename = void>
struct HasStateDir : std::false_type {};
template <typename T>
struct HasStateDir<T, std::void_t<decltype(T::kStateDir)>> : std::true_type {};

template <typename T>
ComponentType MakeType(ComponentKind kind, std::string_view name) {
  using C = typename T::Config;
  ComponentType t;
  t.kind = kind;
  t.name = std::string(name);
  t.summary = std::string(T::kSummary);
  t.schema = &C::schema();
  if constexpr (HasStateDir<T>::value) t.state_dir = std::string(T::kStateDir);
  t.parse = [kind](const YAML::Node& node, const ParseContext& ctx) -> std::shared_ptr<const void> {
    auto cfg = std::make_shared<C>();
    if (!C::schema().Parse(node, cfg.get(), ctx, CommonKeys(kind))) return nullptr;
    return cfg;
  };
  t.outputs = [](const void* cfg) -> std::vector<std::string> {
    if constexpr (HasOutputs<T>::value) return T::Outputs(*static_cast<const C*>(cfg));
    return {};
  };
  t.check_environment = [](const void* cfg, std::vector<EnvCheck>* out) {
    if constexpr (HasEnvCheck<T>::value) T::CheckEnvironment(*static_cast<const C*>(cfg), out);
  };
  return t;
}

}  // namespace detail

template <typename T>
struct SourceRegistration {
  explicit SourceRegistration(std::string_view name) {
    auto t = detail::MakeType<T>(ComponentKind::kSource, name);
    t.build_source = [](const void* cfg, BuildContext& ctx) {
      return T::Build(*static_cast<const typename T::Config*>(cfg), ctx);
    };
    Registry::Get().Add(std::move(t));
  }
};

template <typename T>
struct TransformRegistration {
  explicit TransformRegistration(std::string_view name) {
    auto t = detail::MakeType<T>(ComponentKind::kTransform, name);
    t.build_transform = [](const void* cfg, BuildContext& ctx) {
      return T::Build(*static_cast<const typename T::Config*>(cfg), ctx);
    };
    Registry::Get().Add(std::move(t));
  }
};

template <typename T>
struct SinkRegistration {
  explicit SinkRegistration(std::string_view name) {
    auto t = detail::MakeType<T>(ComponentKind::kSink, name);
    t.build_sink = [](const void* cfg, BuildContext& ctx) {
      return T::Build(*static_cast<const typename T::Config*>(cfg), ctx);
    };
    Registry::Get().Add(std::move(t));
  }
};

}  // namespace tributary::config

#define TRIBUTARY_CONCAT_INNER(a, b) a##b
#define TRIBUTARY_CONCAT(a, b) TRIBUTARY_CONCAT_INNER(a, b)
#define TRIBUTARY_REGISTER_SOURCE(name, Class) \
  static const ::tributary::config::SourceRegistration<Class> TRIBUTARY_CONCAT(kRegistration, __LINE__)(name)
#define TRIBUTARY_REGISTER_TRANSFORM(name, Class) \
  static const ::tributary::config::TransformRegistration<Class> TRIBUTARY_CONCAT(kRegistration, __LINE__)(name)
#define TRIBUTARY_REGISTER_SINK(name, Class) \
  static const ::tributary::config::SinkRegistration<Class> TRIBUTARY_CONCAT(kRegistration, __LINE__)(name)
