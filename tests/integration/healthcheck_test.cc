// `tributary healthcheck` (the container image's HEALTHCHECK, no curl) and
// `tributary validate FILE` (the package's ExecStartPre/ExecReload form).

#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <tuple>

#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

std::string IdleConfig(const TempDir& dir, const std::string& address) {
  return "data_dir: " + dir.path() + "/data\napi: { address: \"" + address + "\" }\n" + R"(
shutdown_timeout_secs: 5
sources:
  idle: { type: demo_logs, interval: 3600, count: 1 }
sinks:
  drain: { type: blackhole, inputs: [idle] }
)";
}

TEST(HealthcheckTest, ExitsZeroOnlyWhileTheAgentServes) {
  TempDir dir;
  Agent agent(dir, IdleConfig(dir, "127.0.0.1:0"));
  const int port = agent.api_port();
  ASSERT_NE(port, 0) << agent.process().Stderr();
  const std::string address = "127.0.0.1:" + std::to_string(port);

  CliRun r = Tributary({"healthcheck", "--address", address});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "http://" + address + "/health answered 200\n");
  ASSERT_TRUE(WaitFor([&] { return Tributary({"healthcheck", "--address", address, "--path", "/ready"}).code == 0; }));
  // Any answer but 200 is unhealthy.
  r = Tributary({"healthcheck", "--address", address, "--path", "/nonexistent"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;

  agent.process().Signal(SIGTERM);
  ASSERT_EQ(agent.process().Wait(seconds(20)), 0) << agent.process().Stderr();
  r = Tributary({"healthcheck", "--address", address, "--timeout-secs", "2"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("unhealthy: connect to " + address), std::string::npos) << r.err;
}

TEST(HealthcheckTest, FindsTheAddressInTheConfigAndProbesWildcardsOnLoopback) {
  TempDir dir;
  // Find a free port: run once on port 0, read it, stop. Then listen on the
  // wildcard address with that port, as in a container.
  int port = 0;
  {
    TempDir probe;
    Agent first(probe, IdleConfig(probe, "127.0.0.1:0"));
    port = first.api_port();
    ASSERT_NE(port, 0);
    first.process().Signal(SIGTERM);
    ASSERT_EQ(first.process().Wait(seconds(20)), 0);
  }
  Agent agent(dir, IdleConfig(dir, "0.0.0.0:" + std::to_string(port)));
  ASSERT_EQ(agent.api_port(), port) << agent.process().Stderr();
  CliRun r = Tributary({"healthcheck", "-c", dir / "tributary.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "http://127.0.0.1:" + std::to_string(port) + "/health answered 200\n");
  // The default config comes from $TRIBUTARY_CONFIG, as in the image.
  r = Tributary({"healthcheck"}, {{"TRIBUTARY_CONFIG", dir / "tributary.yaml"}});
  EXPECT_EQ(r.code, 0) << r.out << r.err;

  // A config it cannot read is unhealthy, with the reason.
  WriteFile(dir / "broken.yaml", "api: { adress: x }\n");
  r = Tributary({"healthcheck", "-c", dir / "broken.yaml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot read api.address"), std::string::npos) << r.err;
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(20)), 0);
}

// The image's HEALTHCHECK reads the config on disk: an error in it that the
// running agent refused at a reload (or that is being edited) must not make
// the healthy agent unhealthy, and the orchestrator restart it into exit 78.
// Only `api` is read; its own errors still count.
TEST(HealthcheckTest, OnlyTheApiSectionOfTheConfigIsRead) {
  TempDir dir;
  Agent agent(dir, IdleConfig(dir, "127.0.0.1:0"));
  const int port = agent.api_port();
  ASSERT_NE(port, 0) << agent.process().Stderr();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string config = IdleConfig(dir, address);
  WriteFile(dir / "edited.yaml", config + "bogus_key: 1\ntransforms:\n  t: { type: add_fields, inputs: [idle], "
                                          "fields: { site: \"${TRIBUTARY_TEST_UNSET_VARIABLE}\" } }\n");
  CliRun r = Tributary({"healthcheck", "-c", dir / "edited.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "http://" + address + "/health answered 200\n");
  // A config split over files (a directory): `api` is found in its file.
  fs::create_directories(dir / "conf.d");
  WriteFile(dir / "conf.d/a.yaml", "api: { address: \"" + address + "\" }\n");
  WriteFile(dir / "conf.d/b.yaml", "sources: { x: { type: nosuch } }\n");
  r = Tributary({"healthcheck", "-c", dir / "conf.d"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;

  // Errors in `api` itself: an unset variable there, an unknown key.
  WriteFile(dir / "api.yaml", "api: { address: \"${TRIBUTARY_TEST_UNSET_VARIABLE}:" + std::to_string(port) + "\" }\n");
  r = Tributary({"healthcheck", "-c", dir / "api.yaml"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("environment variable TRIBUTARY_TEST_UNSET_VARIABLE is not set"), std::string::npos) << r.err;
  WriteFile(dir / "api.yaml", "api: { address: \"" + address + "\", adress: x }\n");
  r = Tributary({"healthcheck", "-c", dir / "api.yaml"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("adress"), std::string::npos) << r.err;
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(20)), 0) << agent.process().Stderr();
}

TEST(ValidateTest, TakesConfigFilesAsArgumentsToo) {
  TempDir dir;
  WriteFile(dir / "a.yaml", "data_dir: " + dir.path() + "/state\nsources: { d: { type: demo_logs } }\n");
  WriteFile(dir / "b.yaml", "sinks: { c: { type: console, inputs: [d] } }\n");
  CliRun r = Tributary({"validate", dir / "a.yaml", dir / "b.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 file(s)"), std::string::npos) << r.out;
  r = Tributary({"validate", "-c", dir / "a.yaml", dir / "b.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  WriteFile(dir / "bad.yaml", "sinks: { c: { type: console, inputs: [nosuch] } }\n");
  r = Tributary({"validate", "--no-environment", dir / "bad.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  EXPECT_NE(r.err.find(dir / "bad.yaml" + ":1:39: error: unknown input `nosuch`"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tributary::testing
