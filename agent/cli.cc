#include "agent/cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "agent/admin_api.h"
#include "agent/backoff.h"
#include "agent/buffer.h"
#include "agent/env.h"
#include "agent/healthcheck.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/topology.h"
#include "agent/unit_test_runner.h"
#include "config/config.h"
#include "config/registry.h"

namespace tributary {

namespace fs = std::filesystem;

namespace {

struct Options {
  std::vector<std::string> configs;
  std::string log_level;
  int threads = 0;
  bool no_environment = false;
  // validate --environment-of PID: ${VAR} from that process's environment.
  int environment_of = 0;
  // run --check-environment: validate's machine checks before starting.
  bool check_environment = false;
};

std::vector<std::string> ConfigPaths(const Options& o) {
  if (!o.configs.empty()) return o.configs;
  if (const char* env = std::getenv("TRIBUTARY_CONFIG"); env && *env) return {env};
  return {"/etc/tributary/tributary.yaml"};
}

std::optional<config::Config> Load(const Options& o) {
  config::Diagnostics diag;
  auto cfg = config::LoadConfig(ConfigPaths(o), &diag);
  if (!diag.all().empty()) std::cerr << diag.ToString();
  if (!cfg) std::cerr << "invalid configuration: " << diag.error_count() << " error(s)\n";
  return cfg;
}

// Threads transforming batches (the source threads and threads - 1 workers):
// --threads, or one per core.
int Threads(const Options& o) {
  return o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// Checks that `dir` exists (or can be created) and is writable, as the
// components that keep state there do when they are built, but leaves no
// directory behind that it created. `what` names it in the report.
config::EnvCheck CheckWritableDir(const std::string& what, const std::string& dir) {
  config::EnvCheck c{what + " " + dir + " is writable", true, ""};
  std::error_code ec;
  fs::path first_missing;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) first_missing = p;
  if (Status s = CreateWritableDir(dir); !s.ok()) {
    c.ok = false;
    c.detail = s.message();
  }
  if (!first_missing.empty()) fs::remove_all(first_missing, ec);
  return c;
}

// Checks that `dir` exists as a directory or can be made, as run makes it
// (and nothing more: no component writes there), leaving nothing behind.
config::EnvCheck CheckDirExists(const std::string& what, const std::string& dir) {
  config::EnvCheck c{what + " " + dir + " exists or can be made", true, ""};
  std::error_code ec;
  fs::path first_missing;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) first_missing = p;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    c.ok = false;
    c.detail = ec ? ec.message() : "not a directory";
  }
  if (!first_missing.empty()) fs::remove_all(first_missing, ec);
  return c;
}

// --log-level for the commands that do not run the agent: what components
// log while the config is loaded and checked (the config's log.level is not
// applied by them). `default_level` when not given.
void ApplyCommandLineLogLevel(const Options& o, LogLevel default_level = LogLevel::kInfo) {
  LogLevel level = default_level;
  if (!o.log_level.empty()) ParseLogLevel(o.log_level, &level);
  SetLogLevel(level);
}

// The environment variables of process `pid` (/proc/PID/environ): what
// ${VAR} in its configuration meant when it started, and means at its
// reloads, whatever files such as EnvironmentFile= say now.
Result<std::map<std::string, std::string>> EnvironmentOf(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/environ";
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
  std::map<std::string, std::string> env;
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    const size_t eq = entry.find('=');
    if (eq != std::string::npos && eq > 0) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

// What a sandboxed unit (ProtectSystem=strict, ProtectHome=yes) makes of a
// check that fails with EROFS or EACCES, as it runs under systemd
// ($INVOCATION_ID): the setting to add, in a drop-in. EROFS there does not
// pass by itself, so it fails the check rather than warn.
void ExplainSandbox(config::EnvCheck* c) {
  if (c->ok || std::getenv("INVOCATION_ID") == nullptr) return;
  if (c->detail.find(std::strerror(EROFS)) != std::string::npos) {
    c->warning = false;
    c->detail += " (which it cannot while the service's sandbox, ProtectSystem=strict, lets it write only under "
                 "/var/lib/tributary, /var/log/tributary and its ReadWritePaths=: add the directory with "
                 "`systemctl edit tributary`: [Service] ReadWritePaths=DIR)";
    return;
  }
  if (c->detail.find(std::strerror(EACCES)) == std::string::npos) return;
  for (const char* hidden : {" /home", " /root", " /run/user"}) {
    if (c->what.find(hidden) == std::string::npos) continue;
    c->detail += std::string(" (the service's sandbox, ProtectHome=yes, hides") + hidden +
                 ": allow reading it with `systemctl edit tributary`: [Service] ProtectHome=read-only)";
    return;
  }
}

// validate's checks of the machine (and run --check-environment's).
std::vector<config::EnvCheck> EnvironmentChecks(const config::Config& cfg) {
  std::vector<config::EnvCheck> checks;
  // data_dir must be writable only for the components that keep state there
  // (a type's state_dir, a disk buffer: run fails at start for them, and
  // only for them); otherwise run just makes it and locks it, which an
  // unwritable directory allows.
  const bool keeps_state = std::any_of(cfg.components.begin(), cfg.components.end(), [](const auto& c) {
    return !c.type_info->state_dir.empty() || (c.kind == ComponentKind::kSink && c.buffer.type == "disk");
  });
  if (keeps_state) checks.push_back(CheckWritableDir("data_dir", cfg.global.data_dir));
  else checks.push_back(CheckDirExists("data_dir", cfg.global.data_dir));
  for (const auto& c : cfg.components) {
    // The component's own directory under data_dir (file, journald), as
    // the component prepares it when built (run exits 78 if it cannot):
    // e.g. one left behind by a run as root, which the service's user
    // cannot write to, in a data_dir it can.
    if (!c.type_info->state_dir.empty())
      checks.push_back(CheckWritableDir(c.id + ": checkpoint directory",
                                        StateDir(cfg.global.data_dir, c.type_info->state_dir, c.id)));
    // A disk buffer's own directory, as MakeBuffer prepares it at start (run
    // exits 78 if it cannot): e.g. a regular file in its place.
    if (c.kind == ComponentKind::kSink && c.buffer.type == "disk")
      checks.push_back(
          CheckWritableDir(c.id + ": disk buffer directory", DiskBufferDir(cfg.global.data_dir, c.id)));
    std::vector<config::EnvCheck> mine;
    c.type_info->check_environment(c.options.get(), &mine);
    for (auto& m : mine) {
      m.what = c.id + ": " + m.what;
      checks.push_back(std::move(m));
    }
  }
  if (cfg.global.api.enabled) {
    // Not the port: a running agent holds it while validate checks a new config.
    config::EnvCheck api{"api.address " + cfg.global.api.address + ": the host is an address of this machine"};
    if (Status s = AdminApi::CheckHost(cfg.global.api.address); !s.ok()) {
      api.ok = false;
      api.detail = s.message();
    }
    checks.push_back(std::move(api));
  }
  for (auto& c : checks) ExplainSandbox(&c);
  return checks;
}

int Validate(const Options& o) {
  ApplyCommandLineLogLevel(o);
  std::optional<config::Config> cfg;
  if (o.environment_of > 0) {
    auto env = EnvironmentOf(o.environment_of);
    if (!env.ok()) {
      std::cerr << "validate --environment-of " << o.environment_of << ": " << env.status().message() << "\n";
      return kExitFailure;
    }
    config::LoadOptions options;
    options.env = [vars = std::move(env).value()](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
    config::Diagnostics diag;
    cfg = config::LoadConfig(ConfigPaths(o), &diag, options);
    if (!diag.all().empty()) std::cerr << diag.ToString();
    if (!cfg) {
      std::cerr << "invalid configuration: " << diag.error_count() << " error(s)\n"
                << "(${VAR} was read from the environment of the running agent, process " << o.environment_of
                << ", as its reload would: a variable added or changed in the service's EnvironmentFile= or "
                   "Environment= reaches it only with a restart: systemctl restart tributary)\n";
    }
  } else {
    cfg = Load(o);
  }
  if (!cfg) return kExitConfig;
  // The `tests:` section too: a CI job that only validates must not learn
  // of a broken test from `tributary test` later.
  if (config::Diagnostics tests; !CheckConfigTests(*cfg, &tests)) {
    std::cerr << tests.ToString() << "invalid configuration: " << tests.error_count() << " error(s) in `tests:`\n";
    return kExitConfig;
  }
  std::cout << "✓ configuration is valid (" << cfg->files.size() << " file(s), " << cfg->components.size()
            << " components)\n";
  if (o.no_environment) return kExitOk;
  bool ok = true;
  for (const auto& c : EnvironmentChecks(*cfg)) {
    std::cout << (c.ok ? "✓ " : c.warning ? "! " : "✗ ") << c.what << (c.ok ? "" : ": " + c.detail) << "\n";
    ok = ok && (c.ok || c.warning);
  }
  return ok ? kExitOk : kExitConfig;
}

int Test(const Options& o) {
  ApplyCommandLineLogLevel(o, LogLevel::kError);  // the report is the output; transforms' warnings are noise here
  auto cfg = Load(o);
  if (!cfg) return kExitConfig;
  return RunConfigTests(*cfg, std::cout);
}

int Graph(const Options& o) {
  ApplyCommandLineLogLevel(o);
  auto cfg = Load(o);
  if (!cfg) return kExitConfig;
  std::cout << config::ToDot(*cfg);
  return kExitOk;
}

// `tributary healthcheck`: GETs /health (or --path) from the admin API named
// by --address or by the config's api.address (the rest of the config is
// not checked); exit 0 on HTTP 200, else 1.
// For container HEALTHCHECKs, so that images need no curl.
int Healthcheck(const Options& o, std::string address, const std::string& path, double timeout_secs) {
  ApplyCommandLineLogLevel(o);
  if (address.empty()) {
    // Only `api` is read: the file on disk may hold an error that the
    // running agent refused at a reload while it goes on serving.
    config::Diagnostics diag;
    auto api = config::LoadApiConfig(ConfigPaths(o), &diag);
    if (!api) {
      std::cerr << "healthcheck: cannot read api.address from the configuration:\n" << diag.ToString();
      return kExitFailure;
    }
    if (!api->enabled) {
      std::cerr << "healthcheck: the admin API is disabled (api.enabled: false)\n";
      return kExitFailure;
    }
    address = api->address;
    if (address.ends_with(":0")) {
      std::cerr << "healthcheck: api.address " << address
                << " has port 0, a free port picked at each start, which cannot be known here: set a fixed port, "
                   "or give --address\n";
      return kExitFailure;
    }
  }
  address = ProbeAddress(address);
  int status = 0;
  Status s = HttpProbe(address, path, std::chrono::milliseconds(static_cast<int64_t>(timeout_secs * 1000)), &status);
  if (!s.ok()) {
    std::cerr << "unhealthy: " << s.message() << "\n";
    return kExitFailure;
  }
  std::cout << "http://" << address << path << " answered " << status << "\n";
  return status == 200 ? kExitOk : kExitFailure;
}

// A value for a Markdown table cell in backticks: control characters as
// their escapes (a default of "\n" would end the row) and `|` escaped.
std::string TableCode(std::string_view v) {
  std::string out = "`";
  for (char c : v) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (static_cast<unsigned char>(c) < 0x20) out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    else if (c == '|') out += "\\|";
    else out += c;
  }
  return out + "`";
}

void DocRows(const config::SchemaBase& schema, const std::string& prefix, std::string* out) {
  for (const auto& d : schema.Docs()) {
    std::string type = d.type;
    if (!d.choices.empty()) {
      type.clear();
      for (const auto& c : d.choices) type += (type.empty() ? "" : " \\| ") + ("`" + c + "`");
    }
    // Bounds, as validate states them; a lower bound of 0 says nothing for
    // sizes and durations, which cannot be negative.
    const bool unsigned_type = d.type.rfind("duration", 0) == 0 || d.type == "size";
    const std::string min = unsigned_type && d.min == "0" ? "" : d.min;
    if (!min.empty() && !d.max.empty()) type += ", " + min + " to " + d.max;
    else if (!min.empty()) type += ", at least " + min;
    else if (!d.max.empty()) type += ", at most " + d.max;
    std::string def = d.required ? "required" : d.default_value.empty() ? "" : TableCode(d.default_value);
    std::string doc = d.doc;
    if (d.secret) doc += " Secret: never logged.";
    *out += "| `" + prefix + d.name + "` | " + type + " | " + def + " | " + doc + " |\n";
    if (d.nested) DocRows(*d.nested, prefix + d.name + ".", out);
  }
}

// Prints the option table of a component type (or the global options) as
// Markdown, for the reference pages under docs/reference/.
int GenerateDocs(const std::string& which) {
  const config::SchemaBase* schema = nullptr;
  std::string title;
  if (which == "global") {
    schema = &config::GlobalConfig::schema();
    title = "global options";
  } else if (which == "buffer") {
    schema = &config::BufferConfig::schema();
    title = "sink buffer";
  } else {
    for (const auto* t : config::Registry::Get().All()) {
      if (t->name == which || std::string(ComponentKindName(t->kind)) + "s/" + t->name == which) {
        schema = t->schema;
        title = std::string(ComponentKindName(t->kind)) + " `" + t->name + "`: " + t->summary;
        break;
      }
    }
  }
  if (schema == nullptr) {
    std::cerr << "unknown component type `" << which << "`; known:";
    for (const auto* t : config::Registry::Get().All()) std::cerr << " " << ComponentKindName(t->kind) << "s/" << t->name;
    std::cerr << "\n";
    return kExitFailure;
  }
  std::string out = "<!-- generated by `tributary generate-docs " + which + "` -->\n";
  out += "| option | type | default | description |\n|---|---|---|---|\n";
  DocRows(*schema, which == "buffer" ? "buffer." : "", &out);
  std::cout << "Options of the " << title << "\n\n" << out;
  return kExitOk;
}

// Applies the config's log settings (the command line's level wins).
void ApplyLogSettings(const config::Config& cfg, const Options& o) {
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(o.log_level.empty() ? cfg.global.log.level : o.log_level, &level);
  SetLogLevel(level);
  SetLogJson(cfg.global.log.format == "json");
}

std::string Describe(const config::Config& cfg) {
  return std::to_string(cfg.components.size()) + " components from " + std::to_string(cfg.files.size()) +
         " file(s)";
}

// A file source without checkpoints of its own reads its files from
// `read_from`. Checkpoints are kept per source id, so a file source that was
// renamed reads everything again: when data_dir/file_source/ holds the
// checkpoints of file source ids the config no longer has, each file source
// without checkpoints says so, with the way to rename without re-reading.
void WarnAboutUnusedCheckpoints(const config::Config& cfg) {
  const config::ComponentType* file = config::Registry::Get().Find(ComponentKind::kSource, "file");
  if (file == nullptr) return;
  const fs::path root = fs::path(cfg.global.data_dir) / file->state_dir;
  std::error_code ec;
  std::set<std::string> ids;
  std::vector<std::string> fresh;
  for (const auto& c : cfg.components) {
    if (c.type_info != file) continue;
    ids.insert(c.id);
    if (!fs::exists(StateDir(cfg.global.data_dir, file->state_dir, c.id) + "/checkpoints.json", ec))
      fresh.push_back(c.id);
  }
  if (fresh.empty()) return;
  std::vector<std::string> unused;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (!ids.contains(name) && fs::exists(e.path() / "checkpoints.json", ec)) unused.push_back(name);
  }
  if (unused.empty()) return;
  std::sort(unused.begin(), unused.end());
  std::string names;
  for (size_t i = 0; i < unused.size(); ++i) names += (i == 0 ? "`" : ", `") + unused[i] + "`";
  for (const auto& id : fresh) {
    TLOG_WARN(id, "this file source has no checkpoints, so it reads its files from `read_from`, while " +
                      root.string() + " holds those of file source(s) " + names +
                      " that the configuration no longer has. Checkpoints are kept per source id: if this source "
                      "is one of those renamed, it reads their files again. To rename a file source without that, "
                      "stop the agent, rename " + root.string() + "/<old id> to <new id>, then start it; remove the "
                      "directory of a source that is gone for good");
  }
}

std::set<std::string> SinkIds(const config::Config& cfg) {
  std::set<std::string> ids;
  for (const auto& c : cfg.components)
    if (c.kind == ComponentKind::kSink) ids.insert(c.id);
  return ids;
}

// Disk buffers of sinks the configuration no longer has, removed or renamed
// while their buffer held events (a reload whose drain timed out with the
// sink down): those events were acknowledged to their sources and would be
// sent nowhere, so every start and reload says so while they are there,
// with the way out.
void WarnAboutOrphanedDiskBuffers(const config::Config& cfg) {
  const std::set<std::string> sinks = SinkIds(cfg);
  const fs::path root = fs::path(cfg.global.data_dir) / "buffer";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string id = e.path().filename().string();
    if (sinks.contains(id) || !e.is_directory(ec)) continue;
    auto n = UndeliveredInDiskBuffer(e.path().string());
    if (n.ok() && *n == 0) continue;
    TLOG_ERROR(id, e.path().string() + " holds " +
                       (n.ok() ? std::to_string(*n) + " undelivered events"
                               : "undelivered events (" + n.status().message() + ")") +
                       " of the disk buffer of sink `" + id + "`, which the configuration no longer has: they are "
                       "sent nowhere. To deliver them, give the sink its id `" + id + "` back (a renamed sink: stop "
                       "the agent, rename the directory to the new id, start it); delete the directory if they are "
                       "not wanted");
  }
}

// SIGHUP, first half: loads and validates the new config; if it is
// invalid, logs why and returns nullopt (the running pipeline is kept).
// Otherwise the caller stops the running pipeline (Topology::Stop: it
// drains, sinks deliver what is in flight, checkpoints are written) and
// calls ReplacePipeline. If the drain times out (a sink is down), the old
// pipeline stops hard: what its disk buffers hold stays there for the new
// one, and what was in memory is read again by the sources that checkpoint.
// /ready stays 200 throughout.
// *refused: why, in one line, when it returns nullopt.
std::optional<config::Config> LoadForReload(const Options& o, const config::Config& running, std::string* refused) {
  config::Diagnostics diag;
  auto next = config::LoadConfig(ConfigPaths(o), &diag);
  if (!next) {
    TLOG_ERROR("", "reload: the new configuration is invalid; keeping the running one:\n" + diag.ToString());
    *refused = "the configuration is invalid";
    for (const auto& d : diag.all()) {
      if (d.severity != config::Diagnostic::Severity::kError) continue;
      *refused = d.ToString();
      break;
    }
    return std::nullopt;
  }
  if (!diag.all().empty()) TLOG_WARN("", "reload: " + diag.ToString());
  if (next->global.data_dir != running.global.data_dir || next->global.api.address != running.global.api.address ||
      next->global.api.enabled != running.global.api.enabled) {
    TLOG_WARN("", "reload: data_dir and api changes take effect only after a restart");
    next->global.data_dir = running.global.data_dir;  // the one this process has locked
  }
  return next;
}

// SIGHUP, second half, once the old pipeline has stopped: builds and starts
// the new one, so that nothing is read twice or skipped. If it cannot be
// built (a config that loads but names a directory that cannot be made,
// say), the previous config is built and started again, and *not_built
// says why in one line. False only if that fails too: no pipeline runs
// (*topology is then null). Metrics: the kept components' series keep
// their values; those of removed components leave /metrics.
bool ReplacePipeline(const Options& o, std::optional<config::Config>* cfg, config::Config next,
                     std::unique_ptr<Topology>* topology, Metrics* metrics, std::string* not_built) {
  // A sink thread the old pipeline abandoned may still update its series.
  const auto& abandoned = (*topology)->AbandonedSinks();
  const std::set<std::string> busy_series(abandoned.begin(), abandoned.end());
  // End the old pipeline first: it releases files the new one opens (disk
  // buffers are locked by the process that has them open), even if one of
  // its sink threads is stuck.
  Topology::Dispose(std::move(*topology));
  WarnAboutUnusedCheckpoints(next);  // the old pipeline's final checkpoints are written
  WarnAboutOrphanedDiskBuffers(next);  // and its disk buffers closed
  metrics->BeginGeneration();
  auto built = Topology::Build(next, metrics, Hostname(), Threads(o));
  bool ok = built.ok();
  if (ok) {
    *topology = std::move(built).value();
    *cfg = std::move(next);
  } else {
    TLOG_ERROR("", "reload: cannot build the new pipeline (" + built.status().message() +
                       "); restarting the previous one");
    *not_built = "cannot build the new pipeline: " + built.status().message();
    metrics->BeginGeneration();  // what the failed build bound is not the running pipeline's
    auto again = Topology::Build(**cfg, metrics, Hostname(), Threads(o));
    if (!again.ok()) {
      TLOG_ERROR("", "reload: cannot rebuild the previous pipeline either: " + again.status().message());
      return false;
    }
    *topology = std::move(again).value();
  }
  // The series of components that are gone (or changed type, lost an
  // output, changed buffer type) leave /metrics; the kept ones, bound again
  // by the build, keep their values.
  size_t removed = metrics->RemoveUnboundSeries(busy_series);
  if (removed > 0) TLOG_DEBUG("", "reload: removed " + std::to_string(removed) + " metric series of the old pipeline");
  ApplyLogSettings(**cfg, o);
  (*topology)->Start();
  if (ok) TLOG_INFO("", "reloaded: " + Describe(**cfg));
  else TLOG_WARN("", "reload: the previous configuration runs again: " + Describe(**cfg));
  return true;
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
  }
  return "a signal";
}

// The agent's way to its end, shared by the main loop and a SignalWatch.
struct Shutdown {
  std::atomic<bool> requested{false};  // a SIGTERM or SIGINT came
  std::atomic<bool> forced{false};     // and another one after it
  std::atomic<int>* phase = nullptr;   // what /ready reports: 2 = stopping
  // /ready says 503 and systemd hears STOPPING=1 (once).
  void Begin() {
    if (phase->exchange(2) != 2) sd_notify(0, "STOPPING=1\nSTATUS=draining");
  }
};

// While the main thread is busy stopping a pipeline (a reload's drain, or
// the shutdown), a helper thread takes the signals, so that they are acted
// on and logged when they arrive, not once the stop is over. A SIGTERM or
// SIGINT during a reload's drain turns the reload into the shutdown: the
// drain under way goes on until its deadline (within shutdown_timeout_secs
// of the signal), and no new pipeline starts. The next SIGTERM or SIGINT
// forces the shutdown (Topology::ForceStop), as Vector does with a second
// Ctrl-C. During the shutdown a SIGHUP is ignored; during a reload it waits
// for the main loop (one more reload).
class SignalWatch {
 public:
  // `stopping`: the pipeline the main thread stops; it must outlive this.
  SignalWatch(const sigset_t& signals, Topology* stopping, Shutdown* shutdown, bool reloading,
              std::chrono::milliseconds timeout)
      : stopping_(stopping), shutdown_(shutdown), deadline_(std::chrono::steady_clock::now() + timeout) {
    set_ = signals;
    if (reloading) sigdelset(&set_, SIGHUP);
    thread_ = std::jthread([this](std::stop_token stop) { Watch(stop); });
  }

 private:
  void Watch(std::stop_token stop) {
    const timespec tick{0, 50'000'000};
    while (!stop.stop_requested()) {
      int sig = sigtimedwait(&set_, nullptr, &tick);
      if (sig == SIGHUP) {
        TLOG_WARN("", "received SIGHUP while shutting down; ignored");
      } else if ((sig == SIGTERM || sig == SIGINT) && !shutdown_->requested.exchange(true)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::max(deadline_ - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero()));
        TLOG_INFO("", std::string("received ") + SignalName(sig) + " during a reload, shutting down: the old "
                      "pipeline's stop under way ends within " + FormatSeconds(left) + " and no new pipeline "
                      "starts");
        shutdown_->Begin();
      } else if ((sig == SIGTERM || sig == SIGINT) && !shutdown_->forced.exchange(true)) {
        TLOG_WARN("", std::string("received a second shutdown signal (") + SignalName(sig) +
                          "): forcing the shutdown, stopping hard now");
        stopping_->ForceStop();
      } else if (sig == SIGTERM || sig == SIGINT) {
        TLOG_INFO("", std::string("received ") + SignalName(sig) + "; already forcing the shutdown");
      }
    }
  }
  static std::string FormatSeconds(std::chrono::milliseconds ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms.count()) / 1000);
    return buf;
  }

  Topology* stopping_;
  Shutdown* shutdown_;
  const std::chrono::steady_clock::time_point deadline_;
  sigset_t set_;
  std::jthread thread_;  // last: joined first
};

// Lifts the soft limit on open files to the hard one, as a daemon that
// tails many files should: systemd and most shells start services with a
// soft limit of 1024 under a hard limit hundreds of times larger. Nothing
// here uses select(), so descriptors above 1024 are fine. The file source
// reads at most half of what remains (file_source.cc).
void RaiseOpenFilesLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0)
    TLOG_DEBUG("", "open files limit raised from " + std::to_string(before) + " to " + std::to_string(limit.rlim_cur));
}

int Run(const Options& o) {
  // Signals are taken synchronously by the main thread only: block them
  // before any thread starts so every thread inherits the mask, and before
  // the config is read, so that a SIGTERM in the first milliseconds waits
  // for the main loop and stops the agent cleanly (exit 0) rather than
  // killing it by the default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::optional<config::Config> cfg = Load(o);
  if (!cfg) return kExitConfig;
  ApplyLogSettings(*cfg, o);
  if (o.check_environment) {
    // What `validate` would report, in the agent's log: a check that fails
    // (✗) stops the start with 78, which systemd does not retry
    // (RestartPreventExitStatus=78); a warning (!) does not.
    size_t failed = 0;
    for (const auto& c : EnvironmentChecks(*cfg)) {
      if (c.ok) continue;
      if (c.warning) {
        TLOG_WARN("", "! " + c.what + ": " + c.detail);
      } else {
        TLOG_ERROR("", "✗ " + c.what + ": " + c.detail);
        ++failed;
      }
    }
    if (failed > 0) {
      TLOG_ERROR("", std::to_string(failed) + " environment check(s) failed (--check-environment); not starting");
      return kExitConfig;
    }
  }
  RaiseOpenFilesLimit();

  std::error_code ec;
  fs::create_directories(cfg->global.data_dir, ec);
  if (ec) {
    TLOG_ERROR("", "cannot create data_dir " + cfg->global.data_dir + ": " + ec.message() +
                       "; set `data_dir` to a directory that tributary can create and write (checkpoints and "
                       "disk buffers are kept there)");
    return kExitConfig;
  }
  // Checkpoints and disk buffers in data_dir belong to one agent: a second
  // one would overwrite the first one's read positions. Held until exit,
  // across reloads (which keep the data_dir).
  auto data_dir_lock = LockDir(cfg->global.data_dir);
  if (!data_dir_lock.ok()) {
    TLOG_ERROR("", "cannot use data_dir " + cfg->global.data_dir + ": " + data_dir_lock.status().message() +
                       "; two agents must not share a data_dir (each keeps its checkpoints and disk buffers "
                       "there): stop the other agent or give this one its own `data_dir`");
    return kExitConfig;
  }

  signal(SIGPIPE, SIG_IGN);
  // A file size limit (ulimit -f) makes a write fail with EFBIG, which a
  // sink retries, instead of killing the agent.
  signal(SIGXFSZ, SIG_IGN);

  Metrics metrics;
  std::unique_ptr<Topology> topology;
  WarnAboutUnusedCheckpoints(*cfg);
  WarnAboutOrphanedDiskBuffers(*cfg);
  {
    auto built = Topology::Build(*cfg, &metrics, Hostname(), Threads(o));
    if (!built.ok()) {
      TLOG_ERROR("", "cannot build the topology: " + built.status().message());
      return kExitConfig;
    }
    topology = std::move(built).value();
  }
  // What /ready reports; the topology pointer changes on reload.
  std::atomic<int> phase{0};  // 0 starting, 1 running, 2 stopping
  std::unique_ptr<AdminApi> api;
  if (cfg->global.api.enabled) {
    api = std::make_unique<AdminApi>(&metrics, [&phase](std::string* reason) {
      int p = phase.load();
      if (p == 1) return true;
      *reason = p == 0 ? "starting" : "shutting down";
      return false;
    });
    Status s = api->Start(cfg->global.api.address);
    if (!s.ok()) {
      TLOG_ERROR("", s.message());
      return kExitFailure;
    }
  }
  topology->Start();
  phase = 1;
  TLOG_INFO("", "tributary " TRIBUTARY_VERSION " started with " + Describe(*cfg));
  sd_notify(0, "READY=1\nSTATUS=running");
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;

  const timespec tick{0, 100'000'000};
  const auto timeout = [&cfg] { return cfg->global.shutdown_timeout_secs.get(); };
  Shutdown shutdown;
  shutdown.phase = &phase;
  int exit_code = kExitOk;
  bool stopped = false;  // the pipeline was stopped by a shutdown during a reload
  bool clean = true;
  bool finished = false;  // the sources have finished by themselves: the sinks deliver everything
  while (true) {
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      TLOG_INFO("", std::string("received ") + SignalName(sig) + ", shutting down");
      shutdown.requested = true;
      break;
    }
    if (sig == SIGHUP) {
      TLOG_INFO("", "received SIGHUP, reloading the configuration");
      sd_notify(0, "RELOADING=1\nSTATUS=reloading");
      std::string refused;
      std::optional<config::Config> next = LoadForReload(o, *cfg, &refused);
      if (next) {
        bool drained;
        {
          // The drain is bounded by shutdown_timeout_secs, which may be
          // longer than WatchdogSec: keep the watchdog fed until it is done.
          std::jthread feeder;
          if (watchdog) {
            const auto interval = std::chrono::milliseconds(watchdog_usec / 3000);
            feeder = std::jthread([interval](std::stop_token stop) {
              while (SleepFor(interval, stop)) sd_notify(0, "WATCHDOG=1");
            });
          }
          SignalWatch watch(signals, topology.get(), &shutdown, /*reloading=*/true, timeout());
          // The sinks the new pipeline keeps read their disk buffers on:
          // not emptied first.
          const std::set<std::string> kept = SinkIds(*next);
          drained = topology->Stop(timeout(), &kept, /*reload=*/true);
        }
        if (shutdown.requested) {
          // A SIGTERM during the drain: that stop was the shutdown.
          clean = drained;
          stopped = true;
          break;
        }
        if (!drained) {
          TLOG_WARN("", "reload: the old pipeline did not drain in time; the new one goes on from its disk buffers "
                        "and checkpoints");
        }
        if (!ReplacePipeline(o, &cfg, std::move(*next), &topology, &metrics, &refused)) {
          TLOG_ERROR("", "no pipeline is running after the failed reload; exiting");
          if (api) api->Stop();
          return kExitFailure;
        }
      }
      if (refused.empty()) metrics.reloaded.Increment();
      else metrics.reload_rejected.Increment();
      // `systemctl status` shows a refused reload until the next one.
      const std::string status = refused.empty() ? "running" : "running; the last reload was refused: " + refused;
      sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
      continue;
    }
    if (topology->WaitSourcesFinished(std::chrono::milliseconds(0))) {
      if (std::string failed = topology->FailedSource(); !failed.empty()) {
        TLOG_ERROR("", "all sources finished, source " + failed + "; shutting down");
        exit_code = kExitFailure;
      } else {
        TLOG_INFO("", "all sources finished, shutting down");
      }
      finished = true;
      break;
    }
    if (std::string why = topology->AbandonedSink(); !why.empty()) {
      TLOG_ERROR("", "sink " + why + "; shutting down");
      exit_code = kExitFailure;
      break;
    }
  }
  shutdown.Begin();
  if (!stopped) {
    SignalWatch watch(signals, topology.get(), &shutdown, /*reloading=*/false, timeout());
    // A stop signal: the next start reads the disk buffers on, so they are
    // not emptied first. Sources that have finished by themselves (stdin at
    // its end, demo_logs with a count) see everything delivered.
    const std::set<std::string> kept = SinkIds(*cfg);
    clean = topology->Stop(timeout(), finished ? nullptr : &kept);
  }
  if (api) api->Stop();
  if (shutdown.forced && !clean) exit_code = kExitForced;
  else if (exit_code == kExitOk && topology->EventsLost() > 0) exit_code = kExitFailure;  // logged per sink
  TLOG_INFO("", clean ? "stopped" : shutdown.forced ? "stopped (forced)" : "stopped after the shutdown timeout");
  if (!clean) {
    std::fflush(nullptr);
    std::_Exit(exit_code);  // a sink thread may still be stuck in I/O
  }
  return exit_code;
}

// `tributary valdate -c x.yaml`: CLI11 says only that `valdate` was not
// expected. The message for a first word that is not a command, naming the
// closest one or else them all; empty if the first extra is not a word.
std::string UnknownCommand(const CLI::App& app) {
  const std::vector<std::string> extras = app.remaining();
  if (extras.empty() || extras[0].empty() || extras[0][0] == '-') return {};
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* s) { return !s->get_group().empty(); }))
    names.push_back(sub->get_name());
  std::string message = "unknown command \"" + extras[0] + "\"";
  if (std::string near = config::ClosestMatch(extras[0], names); !near.empty())
    return message + "; did you mean \"" + near + "\"?";
  message += "; the commands are";
  for (size_t i = 0; i < names.size(); ++i) message += (i == 0 ? " " : ", ") + names[i];
  return message;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"tributary: a log shipper and observability agent"};
  app.set_version_flag("--version,-V", "tributary " TRIBUTARY_VERSION);
  app.require_subcommand(0, 1);
  Options o;
  // -c and --log-level on the top level and on every command that reads a
  // config; --threads on the top level and on `run`, the commands that run
  // the agent. A value that is not one of these is an error, not quietly
  // the default.
  auto add_common = [&o](CLI::App* cmd) {
    cmd->add_option("-c,--config", o.configs,
                    "Config file or directory (repeatable); default $TRIBUTARY_CONFIG or /etc/tributary/tributary.yaml");
    cmd->add_option("--log-level", o.log_level, "The agent's own log level: trace, debug, info, warn, error or off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  };
  add_common(&app);
  auto add_run_options = [&o](CLI::App* cmd) {
    cmd->add_option("--threads", o.threads,
                    "`run` only: threads transforming batches: each source's own, helped by N - 1 workers "
                    "(default: number of cores; 1: the source threads alone)")
        ->check(CLI::Range(1, 1024));
  };
  add_run_options(&app);

  auto* run = app.add_subcommand("run", "Run the agent (the default)");
  add_common(run);
  add_run_options(run);
  run->add_flag("--check-environment", o.check_environment,
                "Before starting, check the machine as `validate` does; exit 78 if a check fails");
  auto* validate = app.add_subcommand("validate", "Check configuration files and the environment");
  add_common(validate);
  validate->add_flag("--no-environment", o.no_environment, "Check only the files, not the machine");
  validate->add_option("--environment-of", o.environment_of,
                       "Read ${VAR} from the environment of process PID (the running agent: what its reload sees)")
      ->check(CLI::PositiveNumber);
  // `tributary validate FILE...` as well as -c FILE; so `test` and `graph`.
  std::vector<std::string> paths;
  validate->add_option("paths", paths, "Config files or directories (same as -c)");
  auto* test = app.add_subcommand("test", "Run the unit tests in the config's `tests:` section");
  add_common(test);
  test->add_option("paths", paths, "Config files or directories (same as -c)");
  auto* graph = app.add_subcommand("graph", "Print the topology as Graphviz DOT");
  add_common(graph);
  graph->add_option("paths", paths, "Config files or directories (same as -c)");
  std::string docs_for;
  auto* gen_docs = app.add_subcommand("generate-docs", "Print a component's option table as Markdown");
  gen_docs->add_option("type", docs_for, "Component type, `global` or `buffer`")->required();
  gen_docs->group("");  // hidden: for maintainers of docs/reference
  std::string probe_address;
  std::string probe_path = "/health";
  double probe_timeout = 3;
  auto* health = app.add_subcommand("healthcheck", "GET the admin API's /health; exit 0 on 200 (for containers)");
  add_common(health);
  health->add_option("--address", probe_address, "host:port of the admin API (default: the config's api.address)");
  health->add_option("--path", probe_path, "Path to GET (/health or /ready)")->capture_default_str();
  health->add_option("--timeout-secs", probe_timeout, "Give up after this long")
      ->capture_default_str()
      ->check(CLI::Range(0.001, config::kMaxDurationMs / 1000));  // as the config's durations

  // `validate --threads 2`: taken, to be refused below with the reason
  // (CLI11 would say only that it was not expected).
  std::string threads_after_command;
  for (CLI::App* cmd : {validate, test, graph, health})
    cmd->add_option("--threads", threads_after_command)->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && app.get_subcommands().empty()) {
      if (std::string unknown = UnknownCommand(app); !unknown.empty()) {
        std::cerr << unknown << "\nRun with --help for more information.\n";
        return kExitUsage;
      }
    }
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if ((o.threads != 0 && (*validate || *test || *graph || *gen_docs || *health)) || !threads_after_command.empty()) {
    // Given before or after the command's name: it would be ignored. 0
    // cannot be given (to run), so 0 means not given.
    std::cerr << "--threads: only `run` takes it (it sets the agent's transform threads)\n"
                 "Run with --help for more information.\n";
    return kExitUsage;
  }
  o.configs.insert(o.configs.end(), paths.begin(), paths.end());
  if (*validate) return Validate(o);
  if (*test) return Test(o);
  if (*graph) return Graph(o);
  if (*gen_docs) return GenerateDocs(docs_for);
  if (*health) return Healthcheck(o, probe_address, probe_path, probe_timeout);
  return Run(o);
}

}  // namespace tributary
