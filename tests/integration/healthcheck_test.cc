// `tributary healthcheck` (the container image's HEALTHCHECK, no curl),
// `tributary validate FILE` (the package's ExecReload form), and
// `tributary run --check-environment` (its ExecStart).

#include <signal.h>
#include <unistd.h>

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
  // Port 0 is picked at each start: it cannot be probed ("Connection refused" before).
  WriteFile(dir / "zero.yaml", "api: { address: \"127.0.0.1:0\" }\n");
  r = Tributary({"healthcheck", "-c", dir / "zero.yaml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("api.address 127.0.0.1:0 has port 0"), std::string::npos) << r.err;
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

// The package's ExecReload runs `validate --environment-of $MAINPID`: ${VAR}
// as the running agent will see it at the SIGHUP. A variable added to
// /etc/default/tributary after the start passed the check (systemd reads
// that file again for ExecReload), `systemctl reload` said OK, and the agent
// refused the config: the check now fails, saying that it needs a restart.
TEST(ValidateTest, EnvironmentOfChecksWithTheRunningAgentsVariables) {
  TempDir dir;
  const std::string base = IdleConfig(dir, "127.0.0.1:0") +
                           "transforms:\n  t: { type: add_fields, inputs: [idle], fields: { site: "
                           "\"${TRIBUTARY_TEST_SITE}\" } }\n";
  Agent agent(dir, base, {}, {{"TRIBUTARY_TEST_SITE", "paris"}});
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  const std::string pid = std::to_string(agent.process().pid());

  // This process lacks the agent's variable: the agent's environment counts.
  CliRun r = Tributary({"validate", "--no-environment", "--environment-of", pid, dir / "tributary.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  r = Tributary({"validate", "--no-environment", dir / "tributary.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;

  // A variable the agent did not start with, set for the check only (as
  // EnvironmentFile= is for ExecReload): refused, with the way out.
  WriteFile(dir / "next.yaml", base + "  u: { type: add_fields, inputs: [t], fields: { rack: \"${TRIBUTARY_TEST_RACK}\" } }\n");
  r = Tributary({"validate", "--no-environment", dir / "next.yaml"},
                {{"TRIBUTARY_TEST_SITE", "paris"}, {"TRIBUTARY_TEST_RACK", "r1"}});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  r = Tributary({"validate", "--no-environment", "--environment-of", pid, dir / "next.yaml"},
                {{"TRIBUTARY_TEST_SITE", "paris"}, {"TRIBUTARY_TEST_RACK", "r1"}});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  EXPECT_NE(r.err.find("environment variable TRIBUTARY_TEST_RACK is not set"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reaches it only with a restart: systemctl restart tributary"), std::string::npos) << r.err;

  // What the agent itself does with that file at a SIGHUP: the same.
  WriteFile(dir / "tributary.yaml", ReadFile(dir / "next.yaml"));
  agent.process().Signal(SIGHUP);
  EXPECT_TRUE(WaitFor([&] {
    return agent.process().Stderr().find("environment variable TRIBUTARY_TEST_RACK is not set") != std::string::npos;
  })) << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(20)), 0) << agent.process().Stderr();

  r = Tributary({"validate", "--no-environment", "--environment-of", "999999999", dir / "next.yaml"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot read /proc/999999999/environ"), std::string::npos) << r.err;
}

// The package's unit runs `run --check-environment` (no ExecStartPre: a
// failing ExecStartPre= is retried by Restart=on-failure forever, as
// RestartPreventExitStatus=78 looks only at the main process): what
// `validate` reports as failed stops the start with 78, in the log; what it
// only warns about does not.
TEST(RunTest, CheckEnvironmentStopsTheStartOnAFailedCheck) {
  TempDir dir;
  WriteFile(dir / "not-a-dir", "x\n");
  const std::string config = "data_dir: " + (dir / "data") + "\napi: { address: 127.0.0.1:0 }\n" +
                             "sources: { f: { type: file, include: [\"" + (dir / "not-a-dir") + "/sub/*.log\"] },\n" +
                             "           later: { type: file, include: [\"" + (dir / "later") + "/*.log\"] } }\n" +
                             "sinks: { b: { type: blackhole, inputs: [f, later] } }\n";
  WriteFile(dir / "tributary.yaml", config);
  CliRun r = Tributary({"validate", dir / "tributary.yaml"});
  ASSERT_EQ(r.code, 78) << r.out << r.err;

  Process run({{TributaryBinary(), "run", "--check-environment", "-c", dir / "tributary.yaml"}});
  ASSERT_EQ(run.Wait(seconds(20)), std::optional<int>(78)) << run.Stderr();
  const std::string err = run.Stderr();
  EXPECT_NE(err.find("ERROR ✗ f: include " + (dir / "not-a-dir") + "/sub/*.log: directory " +
                     (dir / "not-a-dir") + "/sub is readable: Not a directory"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("WARN ! later: include"), std::string::npos) << err;
  EXPECT_NE(err.find("1 environment check(s) failed (--check-environment); not starting"), std::string::npos) << err;

  // Without the flag the agent starts (the source warns and watches).
  Agent agent(dir, config);
  EXPECT_NE(agent.api_port(), 0) << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(20)), 0) << agent.process().Stderr();
}

// Under the unit's sandbox (ProtectSystem=strict) a file sink outside
// ReadWritePaths= can never write; it was a warning (`!`, "the sink
// retries"), the unit went active and delivered nothing. Under systemd
// ($INVOCATION_ID) a read-only destination fails the check, naming the
// setting to add. The sandbox is stood in for by a read-only bind mount in
// a mount namespace of the check's own (root only).
// Readable is not usable: a TLS file that is no PEM certificate (or a key
// of another certificate, or one with a passphrase) passed validate and
// stopped `run` with 78. Validate loads them as the sink does.
TEST(ValidateTest, TlsFilesThatDoNotLoadFailTheEnvironmentCheck) {
  TempDir dir;
  WriteFile(dir / "ca.pem", "not a certificate\n");
  WriteFile(dir / "tributary.yaml", "data_dir: " + (dir / "data") + "\n" +
                                        "sources: { d: { type: demo_logs } }\n"
                                        "sinks:\n  es:\n    type: elasticsearch\n    inputs: [d]\n"
                                        "    endpoints: [\"https://127.0.0.1:1\"]\n"
                                        "    tls: { ca_file: \"" + (dir / "ca.pem") + "\" }\n");
  CliRun r = Tributary({"validate", "-c", dir / "tributary.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("✗ es: the TLS files load (as PEM certificates and an unencrypted key that matches): "
                                 "tls.ca_file " + (dir / "ca.pem")),
            std::string::npos)
      << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("(a PEM file of CA certificates)"), std::string::npos) << r.out << r.err;
}

TEST(ValidateTest, UnderSystemdAReadOnlyDestinationFailsWithTheSettingToAdd) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a read-only bind mount in a mount namespace)";
  TempDir dir;
  fs::create_directories(dir / "archive");
  WriteFile(dir / "tributary.yaml", "data_dir: " + (dir / "data") +
                                        "\nsources: { d: { type: demo_logs } }\n"
                                        "sinks: { archive: { type: file, inputs: [d], path: \"" +
                                        (dir / "archive/x.log") + "\" } }\n");
  auto validate = [&](bool under_systemd) {
    std::map<std::string, std::string> env;
    if (under_systemd) env["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef";
    Process p({{"unshare", "-m", "sh", "-c",
                "mount --bind -o ro \"$0\" \"$0\" && exec \"$1\" validate \"$2\"", dir / "archive",
                TributaryBinary(), dir / "tributary.yaml"},
               env});
    const auto code = p.Wait(seconds(20));
    return std::make_pair(code.value_or(-1), p.Stdout() + p.Stderr());
  };
  auto [code, out] = validate(false);
  if (out.find("mount") != std::string::npos && code != 0 && out.find("configuration is valid") == std::string::npos)
    GTEST_SKIP() << "cannot make a read-only bind mount here: " << out;
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("! archive: path " + (dir / "archive/x.log") + " can be written"), std::string::npos) << out;
  std::tie(code, out) = validate(true);
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find("✗ archive: path " + (dir / "archive/x.log") + " can be written"), std::string::npos) << out;
  EXPECT_NE(out.find("Read-only file system"), std::string::npos) << out;
  EXPECT_NE(out.find("[Service] ReadWritePaths=DIR"), std::string::npos) << out;
}

}  // namespace
}  // namespace tributary::testing
