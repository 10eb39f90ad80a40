#pragma once
// The configuration model and its loader.
//
// LoadConfig reads one or more YAML files (a directory stands for its
// *.yaml/*.yml files in name order), interpolates the environment into the
// text, merges the files, parses every component's options through its
// schema, and checks the graph. Every problem is collected in Diagnostics
// with file:line:column; the Config is returned only if there were no
// errors (warnings are fine).
//
// Interpolation grammar (applied to the raw text, comment lines skipped):
//   $$              a literal '$'
//   ${NAME}         the variable's value; unset is an error
//   ${NAME:-text}   the value if set and non-empty, else `text`
//   ${NAME-text}    the value if set (even empty), else `text`
//   ${NAME:?text}   the value if set and non-empty, else an error saying `text`
//   ${NAME?text}    the value if set (even empty), else an error saying `text`
// Values may not contain a newline (it could inject YAML).

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/metrics.h"
#include "config/diagnostics.h"
#include "config/schema.h"

namespace tributary::config {

struct ComponentType;

struct BufferConfig {
  std::string type = "memory";
  uint64_t max_events = 10000;               // memory only
  ByteSize max_bytes{64ull << 20};           // memory only: see docs/reference/global.md
  ByteSize max_size{268435456};              // disk only
  std::string when_full = "block";
  Millis flush_interval_ms{500};  // disk only: fsync at most this long after a write; 0 = per batch
  static const Schema<BufferConfig>& schema();
};

struct ApiConfig {
  bool enabled = true;
  std::string address = "127.0.0.1:8686";
  static const Schema<ApiConfig>& schema();
};

struct LogConfig {
  std::string level = "info";
  std::string format = "text";
  static const Schema<LogConfig>& schema();
};

struct GlobalConfig {
  std::string data_dir = "/var/lib/tributary";
  ApiConfig api;
  Seconds shutdown_timeout_secs{30};
  LogConfig log;
  static const Schema<GlobalConfig>& schema();
};

struct ComponentConfig {
  std::string id;
  ComponentKind kind = ComponentKind::kSource;
  std::string type;
  const ComponentType* type_info = nullptr;
  Location location;  // of the component's id
  std::vector<std::string> inputs;
  std::vector<Location> input_locations;
  std::shared_ptr<const void> options;  // the type's parsed Config
  BufferConfig buffer;                  // sinks only
  std::vector<std::string> outputs;     // named outputs (route)
  std::string fingerprint;              // canonical YAML: equal = unchanged on reload

  // The names its events are read by: its id, or, for a component with
  // named outputs (route), which sends nothing on its own id, "id.output"
  // for each output.
  std::vector<std::string> OutputNames() const;

  template <typename C>
  const C& As() const {
    return *static_cast<const C*>(options.get());
  }
};

struct Config {
  GlobalConfig global;
  std::vector<ComponentConfig> components;  // sources, then transforms, then sinks
  YAML::Node tests;                         // the merged `tests:` list (may be undefined)
  std::vector<std::string> test_files;     // the file each test of `tests` comes from
  std::vector<std::string> files;

  const ComponentConfig* Find(std::string_view id) const;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
// The process environment.
EnvLookup ProcessEnv();

struct LoadOptions {
  EnvLookup env;  // empty = the process environment
  // Only parse and check the config itself, without the graph rules that
  // need whole files (used for fragments in tests); normally true.
  bool check_graph = true;
};

// Expands -c arguments: files as given, directories to their *.yaml/*.yml.
std::vector<std::string> ExpandConfigPaths(const std::vector<std::string>& paths, Diagnostics* diag);

std::optional<Config> LoadConfig(const std::vector<std::string>& paths, Diagnostics* diag,
                                 const LoadOptions& options = {});
// The same for in-memory texts: {name, text} pairs (names stand in for files).
std::optional<Config> LoadConfigFromStrings(
    const std::vector<std::pair<std::string, std::string>>& files, Diagnostics* diag,
    const LoadOptions& options = {});

// Only the `api` section of the files (defaults where they have none), for
// `tributary healthcheck`: each file is interpolated and parsed as YAML, and
// `api` alone is checked, with the errors of interpolation on its lines;
// the rest of the configuration is not, so that an error elsewhere in a
// file (being edited, or refused by the running agent at a reload) does not
// make a healthy agent look unhealthy.
std::optional<ApiConfig> LoadApiConfig(const std::vector<std::string>& paths, Diagnostics* diag,
                                       const LoadOptions& options = {});

// Applies the interpolation grammar above; reports into diag and, if
// `subs` is given, records where each value went.
std::string Interpolate(std::string_view text, std::string_view file, const EnvLookup& env,
                        Diagnostics* diag, std::vector<Substitution>* subs = nullptr);

// The topology as Graphviz DOT.
std::string ToDot(const Config& config);

}  // namespace tributary::config
