#include "agent/cli.h"

#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "agent/admin_api.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/topology.h"
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

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// Checks that `dir` exists (or can be created) and is writable.
config::EnvCheck CheckWritableDir(const std::string& dir) {
  config::EnvCheck c{"data_dir " + dir + " is writable", true, ""};
  std::error_code ec;
  fs::path probe = dir;
  while (!probe.empty() && !fs::exists(probe, ec)) probe = probe.parent_path();
  if (probe.empty()) probe = ".";
  if (::access(probe.c_str(), W_OK | X_OK) != 0) {
    c.ok = false;
    c.detail = (probe == fs::path(dir) ? "not writable: " : "cannot be created under " + probe.string() + ": ") +
               std::string(std::strerror(errno));
  }
  return c;
}

int Validate(const Options& o) {
  auto cfg = Load(o);
  if (!cfg) return kExitConfig;
  std::cout << "✓ configuration is valid (" << cfg->files.size() << " file(s), " << cfg->components.size()
            << " components)\n";
  if (o.no_environment) return kExitOk;
  std::vector<config::EnvCheck> checks;
  checks.push_back(CheckWritableDir(cfg->global.data_dir));
  for (const auto& c : cfg->components) {
    std::vector<config::EnvCheck> mine;
    c.type_info->check_environment(c.options.get(), &mine);
    for (auto& m : mine) {
      m.what = c.id + ": " + m.what;
      checks.push_back(std::move(m));
    }
  }
  bool ok = true;
  for (const auto& c : checks) {
    std::cout << (c.ok ? "✓ " : "✗ ") << c.what << (c.ok ? "" : ": " + c.detail) << "\n";
    ok = ok && c.ok;
  }
  return ok ? kExitOk : kExitConfig;
}

int Graph(const Options& o) {
  auto cfg = Load(o);
  if (!cfg) return kExitConfig;
  std::cout << config::ToDot(*cfg);
  return kExitOk;
}

int Run(const Options& o) {
  auto cfg = Load(o);
  if (!cfg) return kExitConfig;
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(o.log_level.empty() ? cfg->global.log.level : o.log_level, &level);
  SetLogLevel(level);
  SetLogJson(cfg->global.log.format == "json");

  std::error_code ec;
  fs::create_directories(cfg->global.data_dir, ec);
  if (ec) {
    TLOG_ERROR("", "cannot create data_dir " + cfg->global.data_dir + ": " + ec.message());
    return kExitConfig;
  }

  // Signals are taken synchronously by the main thread only: block them
  // before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Metrics metrics;
  auto topology = Topology::Build(*cfg, &metrics, Hostname());
  if (!topology.ok()) {
    TLOG_ERROR("", "cannot build the topology: " + topology.status().message());
    return kExitConfig;
  }
  Topology* t = topology->get();
  std::unique_ptr<AdminApi> api;
  if (cfg->global.api.enabled) {
    api = std::make_unique<AdminApi>(&metrics, [t](std::string* reason) {
      if (t->state() == Topology::State::kRunning) return true;
      *reason = t->state() == Topology::State::kBuilt ? "starting" : "shutting down";
      return false;
    });
    Status s = api->Start(cfg->global.api.address);
    if (!s.ok()) {
      TLOG_ERROR("", s.message());
      return kExitFailure;
    }
  }
  t->Start();
  TLOG_INFO("", "tributary " TRIBUTARY_VERSION " started with " + std::to_string(cfg->components.size()) +
                    " components from " + std::to_string(cfg->files.size()) + " file(s)");
  sd_notify(0, "READY=1\nSTATUS=running");

  const timespec tick{0, 100'000'000};
  while (true) {
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      TLOG_INFO("", std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", shutting down");
      break;
    }
    if (sig == SIGHUP) {
      TLOG_WARN("", "received SIGHUP: configuration reload is not supported yet; keeping the running configuration");
      continue;
    }
    if (t->WaitSourcesFinished(std::chrono::milliseconds(0))) {
      TLOG_INFO("", "all sources finished, shutting down");
      break;
    }
  }
  sd_notify(0, "STOPPING=1");
  bool clean = t->Stop(cfg->global.shutdown_timeout_secs.get());
  if (api) api->Stop();
  TLOG_INFO("", clean ? "stopped" : "stopped after the shutdown timeout");
  if (!clean) {
    std::fflush(nullptr);
    std::_Exit(kExitOk);  // a sink thread may still be stuck in I/O
  }
  return kExitOk;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"tributary: a log shipper and observability agent"};
  app.set_version_flag("--version,-V", "tributary " TRIBUTARY_VERSION);
  app.require_subcommand(0, 1);
  Options o;
  auto add_common = [&o](CLI::App* cmd) {
    cmd->add_option("-c,--config", o.configs,
                    "Config file or directory (repeatable); default $TRIBUTARY_CONFIG or /etc/tributary/tributary.yaml");
  };
  add_common(&app);
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off");
  app.add_option("--threads", o.threads, "Worker threads for transforms (default: number of cores)");

  auto* run = app.add_subcommand("run", "Run the agent (the default)");
  add_common(run);
  run->add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off");
  run->add_option("--threads", o.threads, "Worker threads for transforms (default: number of cores)");
  auto* validate = app.add_subcommand("validate", "Check configuration files and the environment");
  add_common(validate);
  validate->add_flag("--no-environment", o.no_environment, "Check only the files, not the machine");
  auto* graph = app.add_subcommand("graph", "Print the topology as Graphviz DOT");
  add_common(graph);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitFailure;
  }
  if (*validate) return Validate(o);
  if (*graph) return Graph(o);
  return Run(o);
}

}  // namespace tributary
