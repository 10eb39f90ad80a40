// Whole-binary scenarios for the foundation: a finite pipeline into a file,
// /metrics, /health and /ready, SIGTERM, stdin, and `validate`/`graph`.

#include <signal.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <sstream>
#include <vector>

#include "agent/json.h"
#include "tests/support/compliance.h"
#include "tests/support/journal_builder.h"
#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

TEST(AgentTest, DemoLogsThroughAddFieldsIntoAFileThenMetricsAndSigterm) {
  TempDir dir;
  const int kCount = 2500;
  // A finite source would end the run by itself; an idle second source keeps
  // the agent up so that /metrics can be read before SIGTERM.
  Agent agent(dir, "data_dir: " + dir.path() + "/data\n" + R"(
api: { address: "127.0.0.1:0" }
shutdown_timeout_secs: 10
sources:
  demo: { type: demo_logs, format: json, interval: 0, count: )" + std::to_string(kCount) + R"(, batch_size: 100 }
  idle: { type: demo_logs, interval: 3600, count: 1 }
transforms:
  tag:
    type: add_fields
    inputs: [demo]
    fields: { env: test, service: "svc-{{ source_type }}", answer: 42 }
sinks:
  out:
    type: file
    inputs: [tag]
    path: ")" + dir.path() + R"(/out/events-%Y.log"
  drain: { type: blackhole, inputs: [idle] }
)");
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  const std::string year = FormatRfc3339(Now()).substr(0, 4);
  const std::string out = dir.path() + "/out/events-" + year + ".log";
  ASSERT_TRUE(WaitFor([&] { return ReadLines(out).size() >= kCount; })) << agent.process().Stderr();

  EXPECT_EQ(HttpGet("127.0.0.1", agent.api_port(), "/health").status, 200);
  EXPECT_EQ(HttpGet("127.0.0.1", agent.api_port(), "/ready").status, 200);
  ASSERT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_component_sent_events_total", {{"component_id", "out"}}) == kCount;
  }));
  std::string metrics = agent.Metrics();
  for (const char* id : {"demo", "tag", "out"}) {
    EXPECT_EQ(MetricValue(metrics, "tributary_component_received_events_total", {{"component_id", id}}), kCount) << id;
    EXPECT_EQ(MetricValue(metrics, "tributary_component_sent_events_total", {{"component_id", id}}), kCount) << id;
  }
  ExpectComponentMetrics(metrics, "demo", "source", "demo_logs");
  ExpectComponentMetrics(metrics, "tag", "transform", "add_fields");
  ExpectComponentMetrics(metrics, "out", "sink", "file");
  ExpectComponentMetrics(metrics, "drain", "sink", "blackhole");
  EXPECT_EQ(MetricValue(metrics, "tributary_build_info"), 1);
  EXPECT_GT(MetricValue(metrics, "tributary_component_sent_bytes_total", {{"component_id", "out"}}).value_or(0), 0);

  auto start = std::chrono::steady_clock::now();
  agent.process().Signal(SIGTERM);
  auto code = agent.process().Wait(seconds(10));
  ASSERT_TRUE(code.has_value()) << "did not exit within the shutdown timeout";
  EXPECT_EQ(*code, 0) << agent.process().Stderr();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));

  // Exactly N events, each with the added fields, in order, none twice.
  auto lines = ReadLines(out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kCount));
  JsonParser parser;
  for (int i = 0; i < kCount; ++i) {
    Value v;
    ASSERT_TRUE(parser.Parse(lines[i], &v).ok()) << lines[i];
    Event e(v.as_map());
    EXPECT_EQ(e.get("env")->as_string(), "test");
    EXPECT_EQ(e.get("service")->as_string(), "svc-demo_logs");
    EXPECT_EQ(e.get("answer")->as_int(), 42);
    ASSERT_NE(e.get("message"), nullptr);
    EXPECT_NE(e.get("message")->as_string().find("\"seq\":" + std::to_string(i) + "}"), std::string::npos)
        << "line " << i << ": " << lines[i];
  }
}

TEST(AgentTest, StdinToConsoleExitsAtEndOfInput) {
  TempDir dir;
  Agent agent(dir, "data_dir: " + dir.path() + "\napi: { enabled: false }\n" + R"(
sources: { in: { type: stdin, max_line_bytes: 16 } }
sinks: { out: { type: console, inputs: [in], encoding: { codec: text } } }
)",
              {}, {}, /*pipe_stdin=*/true);
  agent.process().WriteStdin("one\r\ntwo\nthis line is much longer than sixteen bytes\nlast without newline");
  agent.process().CloseStdin();
  auto code = agent.process().Wait(seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << agent.process().Stderr();
  EXPECT_EQ(agent.process().Stdout(), "one\ntwo\nthis line is muc\nlast without new\n") << agent.process().Stderr();
  // Logged, as the file source logs them: before, only a counter said so.
  EXPECT_NE(agent.process().Stderr().find("WARN [in] "), std::string::npos) << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find(" line(s) over max_line_bytes (16) on stdin: truncated"), std::string::npos)
      << agent.process().Stderr();
}

// With `oversize_policy: discard` a long line is gone: the log says so.
TEST(AgentTest, StdinLogsTheLinesItDiscards) {
  TempDir dir;
  Agent agent(dir, "data_dir: " + dir.path() + "\napi: { enabled: false }\n" + R"(
sources: { in: { type: stdin, max_line_bytes: 10, oversize_policy: discard } }
sinks: { out: { type: console, inputs: [in], encoding: { codec: text } } }
)",
              {}, {}, /*pipe_stdin=*/true);
  agent.process().WriteStdin("0123456789ABCDEF\nok\n");
  agent.process().CloseStdin();
  auto code = agent.process().Wait(seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << agent.process().Stderr();
  EXPECT_EQ(agent.process().Stdout(), "ok\n") << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find("WARN [in] 1 line(s) over max_line_bytes (10) on stdin: discarded"),
            std::string::npos)
      << agent.process().Stderr();
}

TEST(AgentTest, ASourceThatStopsWithAnErrorEndsTheRunWithExit1) {
  // stdin is a directory: the read fails (EISDIR) and the only source
  // stops. The agent shuts down as when its sources end, but must say so
  // in its exit status (it exited 0), or a supervisor takes it for done.
  TempDir dir;
  const std::string cfg = dir.path() + "/c.yaml";
  WriteFile(cfg, "data_dir: " + dir.path() + "/data\napi: { enabled: false }\n"
                 "sources: { in: { type: stdin } }\nsinks: { out: { type: console, inputs: [in] } }\n");
  Process p(Process::Options{{"bash", "-c", "\"$0\" -c \"$1\" < /", TributaryBinary(), cfg}, {}, false});
  auto code = p.Wait(seconds(20));
  ASSERT_TRUE(code.has_value()) << p.Stderr();
  EXPECT_EQ(*code, 1) << p.Stderr();
  EXPECT_NE(p.Stderr().find("all sources finished, source in: I/O error: read stdin: Is a directory"),
            std::string::npos)
      << p.Stderr();
}

TEST(AgentTest, ConsoleWhoseReaderExitsStopsTheAgentWithAnError) {
  // `tributary ... | head -n 3`: once head has exited, stdout is gone for
  // good; the agent stops (exit 1) instead of retrying the write forever.
  TempDir dir;
  const std::string cfg = dir.path() + "/c.yaml";
  WriteFile(cfg, "data_dir: " + dir.path() + "/data\napi: { enabled: false }\n" + R"(
sources: { in: { type: demo_logs, interval: 0 } }
sinks: { out: { type: console, inputs: [in], encoding: { codec: text } } }
)");
  Process p(Process::Options{{"bash", "-c", "set -o pipefail; \"$0\" -c \"$1\" | head -n 3 > \"$2\"", TributaryBinary(),
                              cfg, dir.path() + "/head.out"},
                             {},
                             false});
  auto code = p.Wait(seconds(20));
  ASSERT_TRUE(code.has_value()) << "the agent kept running after its stdout was closed";
  EXPECT_EQ(*code, 1) << p.Stderr();
  EXPECT_EQ(ReadLines(dir.path() + "/head.out").size(), 3u);
  EXPECT_NE(p.Stderr().find("stdout was closed by its reader (broken pipe); shutting down"), std::string::npos)
      << p.Stderr();
}

// A reload while the console sink writes to a slow reader (a pipe that is
// full): the old pipeline's drain times out, its console sink is abandoned
// in the middle of a batch's write(2), and the new pipeline's console sink
// starts writing to the same pipe. Both wrote as the reader made room, so
// stdout had torn lines (half a line, then the new sink's). Every line must
// be a whole JSON document. The batches are larger than the pipe, and the
// reader takes a page at a time, so that both writers get their turns.
TEST(AgentTest, AReloadUnderSteadyConsoleOutputTearsNoLine) {
  TempDir dir;
  const std::string fifo = dir / "stdout.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // the agent's open does not wait
  ASSERT_GE(rd, 0);
  const std::string cfg = dir / "c.yaml";
  WriteFile(cfg, "data_dir: " + dir.path() + "/data\napi: { enabled: false }\nshutdown_timeout_secs: 1\n" + R"(
sources: { demo: { type: demo_logs, format: json, interval: 0, batch_size: 1000 } }
sinks: { out: { type: console, inputs: [demo] } }
)");
  Process p(Process::Options{{"bash", "-c", "exec \"$0\" run -c \"$1\" > \"$2\"", TributaryBinary(), cfg, fifo}, {}, false});
  const int capacity = ::fcntl(rd, F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  auto buffered = [&] {
    int n = 0;
    return ::ioctl(rd, FIONREAD, &n) == 0 ? n : -1;
  };
  ASSERT_TRUE(WaitFor([&] { return buffered() >= capacity; })) << "stdout never filled\n" << p.Stderr();
  p.Signal(SIGHUP);  // the console sink is blocked in a write: the drain cannot end
  ASSERT_TRUE(WaitFor([&] { return p.Stderr().find("reloaded:") != std::string::npos; })) << p.Stderr();
  ASSERT_NE(p.Stderr().find("[out] sink did not stop; abandoning it"), std::string::npos) << p.Stderr();

  std::string out;
  char page[4096];
  auto read_some = [&] {
    ssize_t n = ::read(rd, page, sizeof page);
    if (n > 0) out.append(page, static_cast<size_t>(n));
    return n;
  };
  // A few megabytes after the reload: the rest of the abandoned sink's batch
  // and many of the new sink's.
  ASSERT_TRUE(WaitFor([&] {
    while (read_some() > 0 && out.size() < (4u << 20)) {
    }
    return out.size() >= (4u << 20);
  })) << out.size() << " bytes\n" << p.Stderr();
  p.Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] {
    ssize_t n;
    while ((n = read_some()) > 0) {
    }
    return n == 0;  // end of file: the agent has closed its stdout
  }, seconds(30))) << p.Stderr();
  ::close(rd);

  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n') << "the last line is cut";
  JsonParser parser;
  size_t lines = 0, torn = 0;
  std::string first_torn;
  for (size_t at = 0; at < out.size();) {
    size_t end = out.find('\n', at);
    if (end == std::string::npos) end = out.size();
    const std::string_view line(out.data() + at, end - at);
    Value v;
    ++lines;
    if (!parser.Parse(line, &v).ok() || !v.is_map()) {
      if (torn++ == 0) first_torn = std::string(line.substr(0, 300));
    }
    at = end + 1;
  }
  EXPECT_EQ(torn, 0u) << "of " << lines << " lines; the first: " << first_torn;
  EXPECT_GT(lines, 1000u);
}

TEST(ValidateTest, ValidConfigExitsZeroAndChecksTheEnvironment) {
  TempDir dir;
  WriteFile(dir / "ok.yaml", "data_dir: " + dir.path() + "/state\n" +
                                 "sources: { d: { type: demo_logs } }\nsinks: { c: { type: console, inputs: [d] } }\n");
  CliRun r = Tributary({"validate", "-c", dir / "ok.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("data_dir " + dir.path() + "/state exists or can be made"), std::string::npos) << r.out;
  WriteFile(dir / "bad-dir.yaml", "data_dir: /proc/nope\nsources: { d: { type: demo_logs } }\n"
                                  "sinks: { c: { type: console, inputs: [d] } }\n");
  r = Tributary({"validate", "-c", dir / "bad-dir.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  r = Tributary({"validate", "--no-environment", "-c", dir / "bad-dir.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
}

// validate checks a disk buffer's own directory as run prepares it: a
// regular file in its place made run exit 78 while validate passed (it
// checked data_dir only). It creates nothing that stays.
TEST(ValidateTest, ADiskBufferDirectoryThatRunCannotUseFailsValidate) {
  TempDir dir;
  const std::string data = dir / "data";
  const std::string buffer_dir = data + "/buffer/out";
  WriteFile(dir / "c.yaml", "data_dir: " + data + "\napi: { enabled: false }\n" +
                               "sources: { d: { type: demo_logs, interval: 3600 } }\n"
                               "sinks: { out: { type: blackhole, inputs: [d], buffer: { type: disk, max_size: "
                               "300000000 } } }\n");
  // Nothing there yet: passes, and leaves nothing behind.
  CliRun r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("✓ out: disk buffer directory " + buffer_dir + " is writable"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(data)) << "validate left " << data << " behind";

  fs::create_directories(data + "/buffer");
  WriteFile(buffer_dir, "not a directory\n");
  r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  EXPECT_NE(r.out.find("✓ data_dir " + data + " is writable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("✗ out: disk buffer directory " + buffer_dir + " is writable: create " + buffer_dir),
            std::string::npos)
      << r.out;
  CliRun run = Tributary({"run", "-c", dir / "c.yaml"});
  EXPECT_EQ(run.code, 78) << run.err;
  EXPECT_NE(run.err.find("create " + buffer_dir), std::string::npos) << run.err;
  EXPECT_EQ(ReadFile(buffer_dir), "not a directory\n");
  // --no-environment checks the files only.
  r = Tributary({"validate", "--no-environment", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
}

// Runs the agent so that file permissions apply: as root, as `nobody`
// from a copy of the binary in `dir` (which everyone may then enter).
struct AsNobody {
  explicit AsNobody(const TempDir& dir) {
    if (geteuid() != 0) return;
    fs::permissions(dir.path(), fs::perms::all);
    binary = dir / "tributary";
    fs::copy_file(TributaryBinary(), binary);
    launcher = {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
  }
  std::string binary = TributaryBinary();
  std::vector<std::string> launcher;
};

TEST(AgentTest, AStateDirThatCannotBeWrittenStopsTheStartWithTheFix) {
  // A read-only or foreign data_dir: the file source, the journald source
  // and a disk buffer each keep state there. The agent must not start and
  // fail every checkpoint later (the file source ran without positions,
  // journald stopped and the agent exited 0): exit 78 at once, saying how
  // to fix it. As root, the agent runs as `nobody` from a copy of its
  // binary, so that the permissions apply.
  TempDir dir;
  const AsNobody as_nobody(dir);
  const std::vector<std::string>& launcher = as_nobody.launcher;
  const std::string& binary = as_nobody.binary;
  const std::string data = dir / "data";
  fs::create_directories(data + "/file_source/files");  // present, but no file can be made in it
  fs::create_directories(dir / "logs");
  const auto read_only = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                         fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec;
  fs::permissions(data + "/file_source/files", read_only);
  fs::permissions(data, read_only);
  const std::string head = "data_dir: " + data + "\napi: { enabled: false }\n";
  const struct {
    std::string what, config, dir;
  } cases[] = {
      {"file source", "sources: { files: { type: file, include: [\"" + dir / "logs" + "/*.log\"] } }\n"
                      "sinks: { out: { type: blackhole, inputs: [files] } }\n",
       data + "/file_source/files"},
      {"journald source", "sources: { journal: { type: journald, journal_directory: \"" + dir / "logs" + "\" } }\n"
                          "sinks: { out: { type: blackhole, inputs: [journal] } }\n",
       data + "/journald/journal"},
      {"disk buffer", "sources: { d: { type: demo_logs, interval: 3600 } }\n"
                      "sinks: { out: { type: blackhole, inputs: [d], buffer: { type: disk, max_size: 300000000 } } }\n",
       data + "/buffer/out"},
  };
  for (const auto& c : cases) {
    const std::string cfg = dir / "c.yaml";
    WriteFile(cfg, head + c.config);
    fs::permissions(cfg, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    std::vector<std::string> argv = launcher;
    argv.insert(argv.end(), {binary, "run", "-c", cfg});
    Process p(Process::Options{argv, {}, false});
    auto code = p.Wait(seconds(20));
    ASSERT_TRUE(code.has_value()) << c.what << ": the agent started\n" << p.Stderr();
    EXPECT_EQ(*code, 78) << c.what << "\n" << p.Stderr();
    EXPECT_NE(p.Stderr().find(c.dir + ": Permission denied"), std::string::npos) << c.what << "\n" << p.Stderr();
    EXPECT_NE(p.Stderr().find("make data_dir writable by the user tributary runs as, or set `data_dir` to a "
                              "directory that is"),
              std::string::npos)
        << c.what << "\n" << p.Stderr();
  }
}

// data_dir needs to be writable only for the components that keep state
// there. A read-only one refused a demo_logs -> console config in
// validate (the service unit's ExecStartPre) which run accepts; with a file
// source it is still refused, naming data_dir. Run as `nobody` as above.
TEST(ValidateTest, AReadOnlyDataDirFailsOnlyAConfigThatKeepsStateThere) {
  TempDir dir;
  const AsNobody as_nobody(dir);
  const std::vector<std::string>& launcher = as_nobody.launcher;
  const std::string& binary = as_nobody.binary;
  const std::string data = dir / "data";
  fs::create_directories(data);
  fs::create_directories(dir / "logs");
  fs::permissions(data, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                            fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  const std::string head = "data_dir: " + data + "\napi: { enabled: false }\n";
  auto validate = [&](const std::string& body) {
    const std::string cfg = dir / "c.yaml";
    WriteFile(cfg, head + body);
    fs::permissions(cfg, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    std::vector<std::string> argv = launcher;
    argv.insert(argv.end(), {binary, "validate", "-c", cfg});
    Process p(Process::Options{argv, {}, false});
    auto code = p.Wait(seconds(20));
    return std::make_pair(code.value_or(-1), p.Stdout() + p.Stderr());
  };
  auto [stateless, out] = validate(
      "sources: { d: { type: demo_logs, interval: 3600 } }\nsinks: { out: { type: console, inputs: [d] } }\n");
  EXPECT_EQ(stateless, 0) << out;
  EXPECT_NE(out.find("✓ data_dir " + data + " exists or can be made"), std::string::npos) << out;
  auto [stateful, out2] = validate("sources: { files: { type: file, include: [\"" + dir / "logs" +
                                   "/*.log\"] } }\nsinks: { out: { type: console, inputs: [files] } }\n");
  EXPECT_EQ(stateful, 78) << out2;
  EXPECT_NE(out2.find("✗ data_dir " + data + " is writable"), std::string::npos) << out2;
}

// validate checks the file and journald sources' own checkpoint
// directories (data_dir/<type's state dir>/<id>) as they prepare them at
// start. One left behind by a run as root, which the service's user cannot
// write to, passed validate (data_dir itself is writable) and made run
// exit 78. A directory that is not there yet passes if it can be made, and
// validate leaves nothing behind. Run as `nobody` as above.
TEST(ValidateTest, ACheckpointDirectoryThatRunCannotUseFailsValidate) {
  TempDir dir;
  const AsNobody as_nobody(dir);
  const std::string data = dir / "data";
  fs::create_directories(dir / "logs");
  fs::create_directories(data);
  fs::permissions(data, fs::perms::all);  // data_dir is writable by the service's user
  const std::string head = "data_dir: " + data + "\napi: { enabled: false }\n";
  auto run = [&](const std::string& command, const std::string& body) {
    const std::string cfg = dir / "c.yaml";
    WriteFile(cfg, head + body);
    fs::permissions(cfg, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    std::vector<std::string> argv = as_nobody.launcher;
    argv.insert(argv.end(), {as_nobody.binary, command, "-c", cfg});
    Process p(Process::Options{argv, {}, false});
    auto code = p.Wait(seconds(20));
    return std::make_pair(code.value_or(-1), p.Stdout() + p.Stderr());
  };
  const auto read_only = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                         fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec;
  const struct {
    std::string what, config, dir;
  } cases[] = {
      {"file source", "sources: { files: { type: file, include: [\"" + dir / "logs" + "/*.log\"] } }\n"
                      "sinks: { out: { type: blackhole, inputs: [files] } }\n",
       data + "/file_source/files"},
      {"journald source", "sources: { journal: { type: journald, journal_directory: \"" + dir / "logs" + "\" } }\n"
                          "sinks: { out: { type: blackhole, inputs: [journal] } }\n",
       data + "/journald/journal"},
  };
  // The journald source's own check wants a journal file to read.
  const bool journal = !JournalRemoteBinary().empty();
  if (journal) {
    ASSERT_EQ(JournalBuilder(dir / "logs/x.journal").AppendMessages("m", 0, 1), "");
    fs::permissions(dir / "logs/x.journal", fs::perms::others_read, fs::perm_options::add);
  }
  for (const auto& c : cases) {
    if (c.what == "journald source" && !journal) continue;  // systemd-journal-remote is not installed
    const std::string id = fs::path(c.dir).filename().string();
    const std::string type_dir = fs::path(c.dir).parent_path().string();
    // Not there yet, and can be made: passes, and is not left behind.
    auto [fresh, out] = run("validate", c.config);
    EXPECT_EQ(fresh, 0) << c.what << "\n" << out;
    EXPECT_NE(out.find("✓ " + id + ": checkpoint directory " + c.dir + " is writable"), std::string::npos)
        << c.what << "\n" << out;
    EXPECT_FALSE(fs::exists(type_dir)) << c.what << ": validate left " << type_dir << " behind";

    // There, but the service's user cannot make files in it (made by root
    // with its umask): validate fails as run does.
    fs::create_directories(c.dir);
    fs::permissions(type_dir, fs::perms::all);
    fs::permissions(c.dir, read_only);
    auto [stale, out2] = run("validate", c.config);
    EXPECT_EQ(stale, 78) << c.what << "\n" << out2;
    EXPECT_NE(out2.find("✓ data_dir " + data + " is writable"), std::string::npos) << c.what << "\n" << out2;
    EXPECT_NE(out2.find("✗ " + id + ": checkpoint directory " + c.dir + " is writable: create files in " + c.dir +
                        ": Permission denied"),
              std::string::npos)
        << c.what << "\n" << out2;
    auto [started, err] = run("run", c.config);
    EXPECT_EQ(started, 78) << c.what << ": run and validate disagree\n" << err;
    EXPECT_NE(err.find(c.dir + ": Permission denied"), std::string::npos) << c.what << "\n" << err;

    // Not there, and cannot be made: its parent is read-only.
    fs::permissions(c.dir, fs::perms::all);
    fs::remove(c.dir);
    fs::permissions(type_dir, read_only);
    auto [cannot, out3] = run("validate", c.config);
    EXPECT_EQ(cannot, 78) << c.what << "\n" << out3;
    EXPECT_NE(out3.find("✗ " + id + ": checkpoint directory " + c.dir + " is writable: create " + c.dir),
              std::string::npos)
        << c.what << "\n" << out3;
    fs::permissions(type_dir, fs::perms::all);
    fs::remove_all(type_dir);
  }
}

// Two agents on one data_dir overwrite each other's checkpoints (the
// second one's file positions replaced the first one's, whose sink then
// never got those lines). The second refuses to start, naming the
// directory, with 78; validate (ExecStartPre, ExecReload) and a reload of
// the running agent are not affected; once the first is gone it starts.
TEST(AgentTest, ASecondAgentOnTheSameDataDirRefusesToStart) {
  TempDir dir;
  WriteFile(dir / "in.log", "a\nb\n");
  const std::string data = dir / "data";
  const std::string config = "data_dir: " + data + "\napi: { address: \"127.0.0.1:0\" }\n" +
                             "sources: { in: { type: file, include: [\"" + dir / "in.log" + "\"] } }\n" +
                             "sinks: { out: { type: blackhole, inputs: [in] } }\n";
  Agent first(dir, config);
  ASSERT_NE(first.api_port(), 0) << first.process().Stderr();
  const std::string path = dir / "tributary.yaml";

  Process second(Process::Options{{TributaryBinary(), "run", "-c", path}, {}, false});
  auto code = second.Wait(seconds(20));
  ASSERT_TRUE(code.has_value()) << "the second agent started\n" << second.Stderr();
  EXPECT_EQ(*code, 78) << second.Stderr();
  EXPECT_NE(second.Stderr().find("cannot use data_dir " + data + ": " + data +
                                 " is in use by another tributary process"),
            std::string::npos)
      << second.Stderr();

  Process validate(Process::Options{{TributaryBinary(), "validate", "-c", path}, {}, false});
  EXPECT_EQ(validate.Wait(seconds(20)), 0) << validate.Stdout() << validate.Stderr();

  first.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return first.process().Stderr().find("reloaded:") != std::string::npos; }))
      << first.process().Stderr();
  ASSERT_TRUE(first.process().Running());
  first.process().Signal(SIGTERM);
  EXPECT_EQ(first.process().Wait(seconds(10)), 0);

  Agent third(dir, config);
  EXPECT_NE(third.api_port(), 0) << third.process().Stderr();
  third.process().Signal(SIGTERM);
  EXPECT_EQ(third.process().Wait(seconds(10)), 0) << third.process().Stderr();
}

TEST(ValidateTest, ADeadLetterFileThatCannotBeWrittenIsCaughtAtStart) {
  // Before, validate passed it (root may write anywhere by access(2)), and
  // the sink ran without it, rejected documents kept nowhere.
  TempDir dir;
  WriteFile(dir / "not-a-dir", "x");
  auto config = [&](const std::string& dead_letter) {
    return "data_dir: " + dir.path() + "/data\napi: { enabled: false }\n" +
           "sources: { d: { type: demo_logs } }\nsinks:\n"
           "  es: { type: elasticsearch, inputs: [d], endpoints: [\"http://127.0.0.1:9\"], "
           "dead_letter: { path: \"" + dead_letter + "\" } }\n";
  };
  const std::string bad = dir / "not-a-dir/dead.json";
  WriteFile(dir / "c.yaml", config(bad));
  CliRun r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  EXPECT_NE(r.out.find("✗ es: dead_letter.path " + bad + " can be written: create " + dir / "not-a-dir"),
            std::string::npos)
      << r.out;
  r = Tributary({"run", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 78) << r.err;
  EXPECT_NE(r.err.find("sink `es`: dead_letter.path: create " + dir / "not-a-dir"), std::string::npos) << r.err;

  // A path that can be written passes, and the check leaves nothing behind:
  // not the file, nor the directories it made for it (they stayed, and
  // validating the reference example as root made /var/lib/tributary).
  const std::string good = dir / "dl/a/b/dead.json";
  WriteFile(dir / "c.yaml", config(good));
  r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("✓ es: dead_letter.path " + good + " can be written"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "dl")) << "validate left " << dir / "dl" << " behind";
  // Directories that were there stay.
  fs::create_directories(dir / "dl/a");
  r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(fs::is_directory(dir / "dl/a"));
  EXPECT_FALSE(fs::exists(dir / "dl/a/b"));
}

TEST(ValidateTest, AFileSinkPathThatCannotBeWrittenIsReported) {
  // `run` starts anyway and retries (a mount may come later): a warning,
  // which does not make validate (the service's ExecStartPre) fail.
  TempDir dir;
  WriteFile(dir / "not-a-dir", "x");
  const std::string bad = dir / "not-a-dir/out.log";
  WriteFile(dir / "c.yaml", "data_dir: " + dir.path() + "/data\napi: { enabled: false }\n" +
                                "sources: { d: { type: demo_logs } }\nsinks:\n"
                                "  f: { type: file, inputs: [d], path: \"" + bad + "\" }\n");
  CliRun r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("! f: path " + bad + " can be written: create " + dir / "not-a-dir"), std::string::npos)
      << r.out;

  // One that can be written passes, and nothing the check made stays.
  const std::string good = dir / "out/a/b/out.log";
  WriteFile(dir / "c.yaml", "data_dir: " + dir.path() + "/data\napi: { enabled: false }\n" +
                                "sources: { d: { type: demo_logs } }\nsinks:\n"
                                "  f: { type: file, inputs: [d], path: \"" + good + "\" }\n");
  r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("✓ f: path " + good + " can be written"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "out")) << "validate left " << dir / "out" << " behind";
}

TEST(ValidateTest, AFileSinkPathThatIsADirectoryIsCaughtBeforeTheFirstBatch) {
  // Every batch would fail with EISDIR and be retried for ever.
  TempDir dir;
  fs::create_directories(dir / "out");
  WriteFile(dir / "c.yaml", "data_dir: " + dir.path() + "/data\napi: { enabled: false }\n" +
                                "sources: { d: { type: demo_logs } }\nsinks:\n"
                                "  f: { type: file, inputs: [d], path: \"" + dir / "out" + "\" }\n"
                                "  dated: { type: file, inputs: [d], path: \"" + dir / "out" + "/%Y.log\" }\n");
  CliRun r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  EXPECT_NE(r.out.find("f: path " + dir / "out" + " names a file: it is a directory: name a file in it, such as " +
                       dir / "out" + "/tributary.log"),
            std::string::npos)
      << r.out;
  r = Tributary({"run", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 78) << r.err;
  EXPECT_NE(r.err.find("sink `f`: path `" + dir / "out" + "`: it is a directory"), std::string::npos) << r.err;
}

TEST(ValidateTest, BrokenConfigsExit78WithFileLineColumn) {
  TempDir dir;
  WriteFile(dir / "a.yaml", R"(sources:
  gen: { type: demo_logs, formt: json }
  num: { type: demo_logs, count: many }
transforms:
  t1: { type: add_fields, inputs: [gen], fields: { a: 1 } }
  t2: { type: add_fields, inputs: [t3], fields: { b: 2 } }
  t3: { type: add_fields, inputs: [t2], fields: { c: 3 } }
sinks:
  out: { type: file, inputs: [t1, nosuch] }
  pw: { type: console, inputs: [num], target: "${NEEDED:?set NEEDED to the console target}" }
)");
  WriteFile(dir / "b.yaml", R"(sinks:
  out: { type: blackhole, inputs: [gen] }
)");
  CliRun r = Tributary({"validate", "--no-environment", "-c", dir / "a.yaml", "-c", dir / "b.yaml"});
  EXPECT_EQ(r.code, 78);
  const std::string a = dir / "a.yaml", b = dir / "b.yaml";
  for (const std::string& expected : {
           a + ":2:27: error: unknown option `sources.gen.formt` (did you mean `format`?)",
           a + ":3:34: error: `sources.num.count` must be a non-negative integer",
           a + ":9:8: error: missing required option `sinks.out.path`",
           a + ":9:35: error: unknown input `nosuch`",
           a + ":7:36: error: cycle in the topology",
           a + ":10:48: error: environment variable NEEDED is required: set NEEDED to the console target",
           b + ":2:3: error: duplicate component id `out` (first defined at " + a + ":9:3)",
       }) {
    EXPECT_NE(r.err.find(expected), std::string::npos) << "missing: " << expected << "\n--- got:\n" << r.err;
  }
}

// The option tables in docs/reference are what `generate-docs` prints, and
// each row is one line: a default of "\n" (line_delimiter) was printed as a
// raw newline that cut its row in two, and no table said an option's
// bounds (`max_read_bytes` at least 4KiB), which only validate told.
TEST(DocsTest, TheReferenceTablesAreWhatGenerateDocsPrints) {
  CliRun list = Tributary({"generate-docs", "no-such-type"});
  ASSERT_NE(list.code, 0);
  std::vector<std::pair<std::string, std::string>> tables = {{"global", "docs/reference/global.md"},
                                                             {"buffer", "docs/reference/global.md"}};
  static const std::regex known(" (sources|transforms|sinks)/([a-z_]+)");
  for (std::sregex_iterator it(list.err.begin(), list.err.end(), known), end; it != end; ++it)
    if ((*it)[2].str().rfind("test_", 0) != 0)  // "sources/file": `file` alone is the source or the sink
      tables.push_back({(*it)[1].str() + "/" + (*it)[2].str(),
                        "docs/reference/" + (*it)[1].str() + "/" + (*it)[2].str() + ".md"});
  ASSERT_GT(tables.size(), 15u) << list.err;
  for (const auto& [type, page] : tables) {
    CliRun gen = Tributary({"generate-docs", type});
    ASSERT_EQ(gen.code, 0) << type << gen.err;
    const size_t marker = gen.out.find("<!-- generated");
    ASSERT_NE(marker, std::string::npos) << gen.out;
    const std::string table = gen.out.substr(gen.out.find('\n', marker) + 1);  // the page's marker may name the type alone
    const std::string text = ReadFile(SourceDir() + "/" + page);
    EXPECT_NE(text.find(table), std::string::npos) << page << " lacks the table of `generate-docs " << type
                                                   << "` (run it and paste its output):\n" << table;
    std::istringstream rows(table);
    std::string row;
    while (std::getline(rows, row))
      EXPECT_TRUE(row.size() > 2 && row.front() == '|' && row.back() == '|') << type << ": a broken row: " << row;
  }
  const std::string file = ReadFile(SourceDir() + "/docs/reference/sources/file.md");
  EXPECT_NE(file.find("| `line_delimiter` | string | `\"\\n\"` |"), std::string::npos);
  EXPECT_NE(file.find("| `max_read_bytes` | size, at least 4KiB | `256KiB` |"), std::string::npos);
  EXPECT_NE(file.find("| `fingerprint.lines` | integer, 1 to 1000 | `1` |"), std::string::npos);
}

// docs/kafka-aggregator.md showed blocks that were not the files it named
// (the aggregator's needed ES_PASSWORD, which the page never said), and
// both files used one data_dir and port, so its one-machine trial could
// not run them side by side. The page now shows the files as they are,
// and they validate, each with its own data_dir and port from the
// environment.
TEST(DocsTest, TheKafkaExamplesAreShownAsTheyAreAndValidate) {
  const std::string page = ReadFile(SourceDir() + "/docs/kafka-aggregator.md");
  TempDir dir;
  for (const std::string name : {"kafka-agent.yaml", "kafka-aggregator.yaml"}) {
    const std::string path = SourceDir() + "/config/examples/" + name;
    EXPECT_NE(page.find("[`config/examples/" + name + "`](../config/examples/" + name + "), as it is:\n\n```yaml\n" +
                        ReadFile(path) + "```\n"),
              std::string::npos)
        << "docs/kafka-aggregator.md does not show " << name << " as it is";
    CliRun r = Tributary({"validate", path}, {{"ES_PASSWORD", "secret"},
                                              {"DATA_DIR", dir / name},
                                              {"API_ADDRESS", "127.0.0.1:0"},
                                              {"APP_LOGS", dir / "logs/*.log"},
                                              {"ARCHIVE_DIR", dir / "archive"}});
    EXPECT_EQ(r.code, 0) << name << "\n" << r.out << r.err;
    EXPECT_NE(r.out.find("data_dir " + dir / name), std::string::npos) << r.out;
  }
  CliRun r = Tributary({"validate", "--no-environment", SourceDir() + "/config/examples/kafka-aggregator.yaml"});
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("ES_PASSWORD is required: set ES_PASSWORD to the password of the elastic user"),
            std::string::npos)
      << r.err;
  EXPECT_NE(page.find("| `ES_PASSWORD` | aggregator |"), std::string::npos);
}

TEST(ValidateTest, GraphPrintsDotAndVersionWorks) {
  TempDir dir;
  WriteFile(dir / "g.yaml", "sources: { d: { type: demo_logs } }\nsinks: { c: { type: console, inputs: [d] } }\n");
  CliRun r = Tributary({"graph", "-c", dir / "g.yaml"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"d\" -> \"c\""), std::string::npos) << r.out;
  r = Tributary({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("tributary "), std::string::npos);
  r = Tributary({"run", "-c", dir / "missing.yaml"});
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("missing.yaml"), std::string::npos);
  r = Tributary({"--no-such-flag"});
  EXPECT_NE(r.code, 0);
}

TEST(ValidateTest, AFlagValueThatMeansNothingIsAnErrorNotTheDefault) {
  TempDir dir;
  WriteFile(dir / "g.yaml", "sources: { d: { type: demo_logs } }\nsinks: { c: { type: console, inputs: [d] } }\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--log-level", "bogus"}, {"run", "--log-level", "DEBUG"}, {"--threads", "-1"},
        {"run", "--threads", "0"}, {"validate", "--log-level", "bogus"},
        // Past what a deadline holds: it wrapped around and timed out at once.
        {"healthcheck", "--address", "127.0.0.1:1", "--timeout-secs", "1e300"},
        {"healthcheck", "--address", "127.0.0.1:1", "--timeout-secs", "-5"}}) {
    std::vector<std::string> argv = args;
    argv.insert(argv.end(), {"-c", dir / "g.yaml"});
    CliRun r = Tributary(argv);
    EXPECT_EQ(r.code, 64) << args[args.size() - 2] << " " << args.back();
    EXPECT_NE(r.err.find(args[args.size() - 2] + ": "), std::string::npos) << r.err;
  }
}

TEST(ValidateTest, AMistypedCommandNamesTheClosestOne) {
  TempDir dir;
  WriteFile(dir / "g.yaml", "sources: { d: { type: demo_logs } }\nsinks: { c: { type: console, inputs: [d] } }\n");
  CliRun r = Tributary({"valdate", "-c", dir / "g.yaml"});
  EXPECT_EQ(r.code, 64);
  EXPECT_NE(r.err.find("unknown command \"valdate\"; did you mean \"validate\"?"), std::string::npos) << r.err;
  r = Tributary({"frobnicate"});
  EXPECT_EQ(r.code, 64);
  EXPECT_NE(r.err.find("unknown command \"frobnicate\"; the commands are run, validate, test, graph, healthcheck"),
            std::string::npos)
      << r.err;
}

// --log-level goes with every command that reads a config, before or after
// the command's name; --threads only with the commands that run the agent.
TEST(ValidateTest, LogLevelIsAcceptedByEveryCommandThatReadsAConfig) {
  TempDir dir;
  WriteFile(dir / "g.yaml", "sources: { d: { type: demo_logs } }\nsinks: { c: { type: console, inputs: [d] } }\n");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"validate", "--no-environment", "--log-level", "debug"},
        {"--log-level", "debug", "validate", "--no-environment"}, {"graph", "--log-level", "warn"},
        {"test", "--log-level", "debug"}}) {
    std::vector<std::string> argv = args;
    argv.insert(argv.end(), {"-c", dir / "g.yaml"});
    CliRun r = Tributary(argv);
    // `test` exits 1 for a config without tests, and says so.
    if (args[0] == "test") {
      EXPECT_NE(r.out.find("no tests"), std::string::npos) << r.out << r.err;
    } else {
      EXPECT_EQ(r.code, 0) << args[0] << ": " << r.err;
    }
    EXPECT_EQ(r.err.find("not expected"), std::string::npos) << r.err;
  }
  CliRun r = Tributary({"healthcheck", "--log-level", "debug", "--address", "127.0.0.1:1", "--timeout-secs", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("unhealthy"), std::string::npos) << r.err;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"validate", "--threads", "2"},
                                               {"--threads", "2", "graph"}, {"test", "--threads", "2"},
                                               {"healthcheck", "--threads", "2"}}) {
    std::vector<std::string> argv = args;
    argv.insert(argv.end(), {"-c", dir / "g.yaml"});
    r = Tributary(argv);
    EXPECT_EQ(r.code, 64) << args[0];
    // The reason, in either order (after the command, CLI11 said only that
    // the argument "was not expected").
    EXPECT_NE(r.err.find("--threads: only `run` takes it"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << args[0];
  }
}

TEST(ValidateTest, BusyApiPortFailsWithAClearError) {
  TempDir dir;
  Agent first(dir, "data_dir: " + dir.path() + "\napi: { address: \"127.0.0.1:0\" }\n"
                   "sources: { d: { type: demo_logs, interval: 3600 } }\nsinks: { c: { type: blackhole, inputs: [d] } }\n");
  int port = first.api_port();
  ASSERT_NE(port, 0);
  TempDir dir2;
  WriteFile(dir2 / "c.yaml", "data_dir: " + dir2.path() + "\napi: { address: \"127.0.0.1:" + std::to_string(port) +
                                 "\" }\nsources: { d: { type: demo_logs } }\nsinks: { c: { type: blackhole, inputs: [d] } }\n");
  CliRun r = Tributary({"run", "-c", dir2 / "c.yaml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
  // validate checks the host, not the port: the running agent holds it
  // while a new config is checked.
  r = Tributary({"validate", "-c", dir2 / "c.yaml"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("✓ api.address 127.0.0.1:" + std::to_string(port) + ": the host is an address of this machine"),
            std::string::npos)
      << r.out;
}

// An api.address of another machine passed validate, and run exited 1
// ("Cannot assign requested address"), restarted by systemd for ever.
TEST(ValidateTest, AnApiAddressOfAnotherMachineFailsTheCheck) {
  TempDir dir;
  WriteFile(dir / "c.yaml", "data_dir: " + dir.path() + "\napi: { address: \"192.0.2.1:8686\" }\n"
                            "sources: { d: { type: demo_logs } }\nsinks: { c: { type: blackhole, inputs: [d] } }\n");
  CliRun r = Tributary({"validate", "-c", dir / "c.yaml"});
  EXPECT_EQ(r.code, 78) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("✗ api.address 192.0.2.1:8686: the host is an address of this machine: 192.0.2.1 is not an address of this machine"),
            std::string::npos)
      << r.out << r.err;
}

}  // namespace
}  // namespace tributary::testing

namespace tributary::testing {
namespace {

std::string ReloadConfig(const TempDir& dir, const std::string& sink_path) {
  return "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\n" +
         "sources: { demo: { type: demo_logs, format: json, interval: 0.01 } }\n" +
         "sinks: { out: { type: file, inputs: [demo], path: \"" + sink_path + "\" } }\n";
}

TEST(ReloadTest, SighupSwitchesSinksAndAnInvalidEditKeepsTheOldPipeline) {
  TempDir dir;
  const std::string a = dir / "a.log", b = dir / "b.log";
  Agent agent(dir, ReloadConfig(dir, a));
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return ReadLines(a).size() >= 5; })) << agent.process().Stderr();

  // An invalid edit: logged, and the running pipeline keeps writing to a.
  WriteFile(dir / "tributary.yaml", "sources: { demo: { type: demo_logs, formt: json } }\n");
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return agent.process().Stderr().find("keeping the running one") != std::string::npos; }));
  EXPECT_NE(agent.process().Stderr().find("did you mean `format`?"), std::string::npos);
  // Counted once the reload is over (the log line comes first).
  EXPECT_TRUE(WaitFor([&] { return agent.Metric("tributary_reload_rejected_total") == 1; }));
  EXPECT_EQ(agent.Metric("tributary_reloaded_total"), 0);
  size_t before = ReadLines(a).size();
  ASSERT_TRUE(WaitFor([&] { return ReadLines(a).size() >= before + 5; })) << "old pipeline stopped";
  EXPECT_EQ(HttpGet("127.0.0.1", agent.api_port(), "/ready").status, 200);

  // A valid edit: new events go to b only.
  WriteFile(dir / "tributary.yaml", ReloadConfig(dir, b));
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return agent.process().Stderr().find("reloaded:") != std::string::npos; }))
      << agent.process().Stderr();
  size_t a_after_reload = ReadLines(a).size();
  ASSERT_TRUE(WaitFor([&] { return ReadLines(b).size() >= 5; }));
  EXPECT_EQ(ReadLines(a).size(), a_after_reload) << "the old sink still receives events";
  EXPECT_EQ(HttpGet("127.0.0.1", agent.api_port(), "/ready").status, 200);
  EXPECT_TRUE(WaitFor([&] { return agent.Metric("tributary_reloaded_total") == 1; }));
  EXPECT_EQ(agent.Metric("tributary_reload_rejected_total"), 1);
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(10)), 0);
}

// The sample lines of a /metrics scrape that belong to component `id`.
std::vector<std::string> SeriesOf(const std::string& metrics, const std::string& id) {
  std::vector<std::string> out;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#' && line.find("component_id=\"" + id + "\"") != std::string::npos)
      out.push_back(line);
  return out;
}

// A reload that removes a source, a transform and a sink (and a route's
// output, and changes a sink's type) takes their series off /metrics; the
// components kept go on counting from where they were.
TEST(ReloadTest, SeriesOfRemovedComponentsLeaveMetricsAndKeptOnesKeepCounting) {
  TempDir dir;
  const std::string head = "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\n";
  const std::string before = head + R"(
sources:
  demo: { type: demo_logs, format: json, interval: 0.005 }
  old_src: { type: demo_logs, interval: 0.01 }
transforms:
  tag: { type: add_fields, inputs: [demo], fields: { a: 1 } }
  old_tf: { type: add_fields, inputs: [old_src], fields: { b: 2 } }
  split: { type: route, inputs: [tag], route: { all: { field: a, eq: 1 }, gone: { field: a, eq: 2 } } }
sinks:
  out: { type: blackhole, inputs: [split.all] }
  old: { type: blackhole, inputs: [old_tf, split.gone] }
  retyped: { type: blackhole, inputs: [split._unmatched] }
)";
  const std::string after = head + R"(
sources:
  demo: { type: demo_logs, format: json, interval: 0.005 }
transforms:
  tag: { type: add_fields, inputs: [demo], fields: { a: 1 } }
  split: { type: route, inputs: [tag], route: { all: { field: a, eq: 1 } } }
sinks:
  out: { type: blackhole, inputs: [split.all] }
  retyped: { type: file, inputs: [split._unmatched], path: ")" + (dir / "unmatched.log") + R"(" }
)";
  Agent agent(dir, before);
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  auto sent = [&](const std::string& metrics, const std::string& id) {
    return MetricValue(metrics, "tributary_component_sent_events_total", {{"component_id", id}}).value_or(-1);
  };
  ASSERT_TRUE(WaitFor([&] { return sent(agent.Metrics(), "out") >= 100; })) << agent.Metrics();
  std::string m = agent.Metrics();
  for (const char* id : {"old_src", "old_tf", "old"}) ASSERT_FALSE(SeriesOf(m, id).empty()) << id;
  ASSERT_TRUE(MetricValue(m, "tributary_buffer_events", {{"component_id", "old"}}).has_value());
  ASSERT_TRUE(MetricValue(m, "tributary_component_sent_events_total", {{"output", "gone"}}).has_value());

  WriteFile(dir / "tributary.yaml", after);
  m = agent.Metrics();
  const double demo_before = sent(m, "demo"), out_before = sent(m, "out");
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return agent.process().Stderr().find("reloaded:") != std::string::npos; }))
      << agent.process().Stderr();
  m = agent.Metrics();
  for (const char* id : {"old_src", "old_tf", "old"}) {
    std::string left;
    for (const auto& l : SeriesOf(m, id)) left += "\n  " + l;
    EXPECT_TRUE(left.empty()) << "series of the removed `" << id << "` still exported:" << left;
  }
  EXPECT_FALSE(MetricValue(m, "tributary_component_sent_events_total", {{"output", "gone"}}).has_value())
      << "the removed route output is still exported";
  EXPECT_FALSE(MetricValue(m, "tributary_component_received_events_total",
                           {{"component_id", "retyped"}, {"component_type", "blackhole"}})
                   .has_value())
      << "the series of `retyped` as a blackhole sink are still exported";
  EXPECT_TRUE(MetricValue(m, "tributary_component_received_events_total",
                          {{"component_id", "retyped"}, {"component_type", "file"}})
                  .has_value());
  // Kept components: their counters did not start again from 0.
  EXPECT_GE(sent(m, "demo"), demo_before);
  EXPECT_GE(sent(m, "out"), out_before);
  ExpectComponentMetrics(m, "demo", "source", "demo_logs");
  ExpectComponentMetrics(m, "split", "transform", "route");
  ExpectComponentMetrics(m, "out", "sink", "blackhole");
  ASSERT_TRUE(WaitFor([&] { return sent(agent.Metrics(), "out") > out_before; })) << "no longer counting";
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(10)), 0) << agent.process().Stderr();
}

// systemd's side of sd_notify: a datagram socket collecting what the agent
// says, with the time each message arrived.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  // Reads what has arrived; returns every message so far.
  const std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>>& Poll() {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0)
      messages_.emplace_back(std::chrono::steady_clock::now(), std::string(buf, static_cast<size_t>(n)));
    return messages_;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> messages_;
};

// A reload whose drain takes longer than WatchdogSec (a sink that cannot
// deliver, held for shutdown_timeout_secs) keeps the watchdog fed, so
// systemd does not kill the agent in the middle of `systemctl reload`.
TEST(ReloadTest, TheWatchdogIsFedWhileAReloadDrains) {
  TempDir dir;
  NotifySocket notify(dir / "notify.sock");
  ASSERT_TRUE(notify.ok());
  const std::string config = "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\n" +
                             "shutdown_timeout_secs: 4\n"
                             "sources: { demo: { type: demo_logs, format: json, interval: 0.01 } }\n"
                             "sinks: { es: { type: elasticsearch, inputs: [demo], endpoints: [\"http://127.0.0.1:9\"], "
                             "bulk: { index: logs } } }\n";
  const auto period = std::chrono::milliseconds(600);  // WatchdogSec
  Agent agent(dir, config, {},
              {{"NOTIFY_SOCKET", dir / "notify.sock"}, {"WATCHDOG_USEC", "600000"}});
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  auto said = [&](const std::string& what, size_t from = 0) {
    const auto& m = notify.Poll();
    for (size_t i = from; i < m.size(); ++i)
      if (m[i].second.find(what) != std::string::npos) return i;
    return m.size() + 1;
  };
  ASSERT_TRUE(WaitFor([&] { return said("READY=1") <= notify.Poll().size(); }));
  // Something for the drain to wait for: without it a SIGHUP that came
  // before the first demo event reached the sink reloaded in ~10 ms.
  ASSERT_TRUE(WaitFor([&] {
    return agent.Metric("tributary_buffer_received_events_total", {{"component_id", "es"}}).value_or(0) > 0;
  })) << agent.Metrics();
  agent.process().Signal(SIGHUP);
  size_t reloading = 0, ready = 0;
  ASSERT_TRUE(WaitFor([&] {
    reloading = said("RELOADING=1");
    if (reloading > notify.Poll().size()) return false;
    ready = said("READY=1", reloading);
    return ready <= notify.Poll().size();
  }, seconds(20))) << agent.process().Stderr();
  const auto& m = notify.Poll();
  EXPECT_GE(m[ready].first - m[reloading].first, seconds(2)) << "the drain should have waited for the sink";
  auto last = m[reloading].first;
  for (size_t i = reloading + 1; i <= ready; ++i) {
    EXPECT_LT(m[i].first - last, period) << "no WATCHDOG=1 for too long during the reload (message " << i << ")";
    last = m[i].first;
  }
  agent.process().Signal(SIGTERM);
  EXPECT_TRUE(agent.process().Wait(seconds(10)).has_value());
}

// A refused reload was one ERROR line in the journal while `systemctl
// status` said "running": the agent's STATUS= now says so, with the first
// error, until a reload succeeds.
TEST(ReloadTest, ARefusedReloadShowsInTheServiceStatus) {
  TempDir dir;
  NotifySocket notify(dir / "notify.sock");
  ASSERT_TRUE(notify.ok());
  const std::string config = "data_dir: " + (dir / "data") +
                             "\napi: { address: 127.0.0.1:0 }\n"
                             "sources: { d: { type: demo_logs, interval: 3600 } }\n"
                             "sinks: { b: { type: blackhole, inputs: [d] } }\n";
  Agent agent(dir, config, {}, {{"NOTIFY_SOCKET", dir / "notify.sock"}});
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  auto last_status = [&] {
    std::string status;
    for (const auto& [at, m] : notify.Poll())
      if (size_t p = m.find("STATUS="); p != std::string::npos) status = m.substr(p + 7, m.find('\n', p) - p - 7);
    return status;
  };
  ASSERT_TRUE(WaitFor([&] { return last_status() == "running"; })) << last_status();
  WriteFile(dir / "tributary.yaml", config + "bogus_key: 1\n");
  agent.process().Signal(SIGHUP);
  const std::string refused = "running; the last reload was refused: " + (dir / "tributary.yaml") +
                              ":5:1: error: unknown top-level key `bogus_key`";
  EXPECT_TRUE(WaitFor([&] { return last_status().rfind(refused, 0) == 0; })) << last_status();
  WriteFile(dir / "tributary.yaml", config);
  agent.process().Signal(SIGHUP);
  EXPECT_TRUE(WaitFor([&] { return last_status() == "running" && agent.process().Stderr().find("reloaded:") != std::string::npos; }))
      << last_status();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(10)), 0) << agent.process().Stderr();
}

// A config that loads but cannot be built (here a disk buffer whose
// directory is taken by a regular file) is a refused reload like an
// invalid one: the previous pipeline is built and started again, and the
// service status says why. Before, the agent exited 1 after rebuilding it,
// and the restart then failed with 78 on the same config.
TEST(ReloadTest, AConfigThatLoadsButCannotBeBuiltKeepsThePreviousPipelineRunning) {
  TempDir dir;
  NotifySocket notify(dir / "notify.sock");
  ASSERT_TRUE(notify.ok());
  const std::string a = dir / "a.log";
  Agent agent(dir, ReloadConfig(dir, a), {}, {{"NOTIFY_SOCKET", dir / "notify.sock"}});
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return ReadLines(a).size() >= 5; })) << agent.process().Stderr();

  std::filesystem::create_directories(dir.path() + "/data/buffer");
  WriteFile(dir.path() + "/data/buffer/archive", "not a directory\n");
  WriteFile(dir / "tributary.yaml", "data_dir: " + dir.path() + "/data\napi: { address: \"127.0.0.1:0\" }\n" +
                                       "sources: { demo: { type: demo_logs, format: json, interval: 0.01 } }\n"
                                       "sinks:\n  out: { type: file, inputs: [demo], path: \"" + a + "\" }\n"
                                       "  archive: { type: blackhole, inputs: [demo], buffer: { type: disk } }\n");
  // It loads: what fails is the build.
  ASSERT_EQ(Tributary({"validate", "--no-environment", "-c", dir / "tributary.yaml"}).code, 0);
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return agent.process().Stderr().find("the previous configuration runs again") != std::string::npos;
  })) << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find("cannot build the new pipeline"), std::string::npos);
  // Counted once the reload is over (the log line comes first).
  EXPECT_TRUE(WaitFor([&] { return agent.Metric("tributary_reload_rejected_total") == 1; }));
  EXPECT_EQ(agent.Metric("tributary_reloaded_total"), 0);
  const size_t before = ReadLines(a).size();
  EXPECT_TRUE(WaitFor([&] { return ReadLines(a).size() >= before + 5; })) << agent.process().Stderr();
  EXPECT_EQ(HttpGet("127.0.0.1", agent.api_port(), "/ready").status, 200);
  std::string status;
  EXPECT_TRUE(WaitFor([&] {
    for (const auto& [at, m] : notify.Poll())
      if (size_t p = m.find("STATUS="); p != std::string::npos) status = m.substr(p + 7, m.find('\n', p) - p - 7);
    return status.rfind("running; the last reload was refused: cannot build the new pipeline: ", 0) == 0;
  })) << status;
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(10)), 0) << agent.process().Stderr();
}

// In the text log format a record is one line: a reload's config errors
// (several lines of file:line:col and a blank line) were written as they
// were, and each line but the first became a record of its own, without a
// time or level, under journald or a container runtime.
TEST(ReloadTest, TheErrorsOfAnInvalidConfigAreOneTextLogLine) {
  TempDir dir;
  const std::string config = "data_dir: " + (dir / "data") +
                             "\napi: { address: 127.0.0.1:0 }\n"
                             "sources: { d: { type: demo_logs, interval: 3600 } }\n"
                             "sinks: { b: { type: blackhole, inputs: [d] } }\n";
  Agent agent(dir, config);
  ASSERT_NE(agent.api_port(), 0) << agent.process().Stderr();
  WriteFile(dir / "tributary.yaml", config + "  x: { type: nosuch }\nbad: [\n");
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return agent.process().Stderr().find("reload: the new configuration is invalid") != std::string::npos;
  })) << agent.process().Stderr();
  agent.process().Signal(SIGTERM);
  ASSERT_EQ(agent.process().Wait(seconds(10)), 0) << agent.process().Stderr();
  const std::string err = agent.process().Stderr();
  std::istringstream lines(err);
  std::string line;
  int records = 0;
  while (std::getline(lines, line)) {
    ++records;
    const bool leveled = line.find(" INFO ") != std::string::npos || line.find(" WARN ") != std::string::npos ||
                         line.find(" ERROR ") != std::string::npos;
    EXPECT_TRUE(line.size() > 30 && line[4] == '-' && line[10] == 'T' && leveled) << "not a log record: " << line;
  }
  EXPECT_GE(records, 3);
  const size_t at = err.find("ERROR reload: the new configuration is invalid; keeping the running one:\\n");
  EXPECT_NE(at, std::string::npos) << err;
}

// Checkpoints are kept per source id: a file source renamed in the config
// reads every file again from the beginning. It did so without a word; now
// it says that the checkpoints of a source the config no longer has are
// there, and how to rename without re-reading.
TEST(AgentTest, ARenamedFileSourceWarnsThatItsOldCheckpointsAreUnused) {
  TempDir dir;
  WriteFile(dir / "app.log", "one\ntwo\nthree\n");
  auto config = [&](const std::string& id) {
    return "data_dir: " + (dir / "data") + "\napi: { address: 127.0.0.1:0 }\n" +
           "sources: { " + id + ": { type: file, include: [\"" + (dir / "app.log") + "\"] } }\n" +
           "sinks: { out: { type: file, inputs: [" + id + "], path: \"" + (dir / "out.log") + "\" } }\n";
  };
  {
    Agent agent(dir, config("app"));
    ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out.log").size() == 3; })) << agent.process().Stderr();
    agent.process().Signal(SIGTERM);
    ASSERT_EQ(agent.process().Wait(seconds(10)), 0) << agent.process().Stderr();
    EXPECT_EQ(agent.process().Stderr().find("has no checkpoints"), std::string::npos) << agent.process().Stderr();
  }
  Agent agent(dir, config("app_renamed"));
  ASSERT_TRUE(WaitFor([&] {
    return agent.process().Stderr().find("WARN [app_renamed] this file source has no checkpoints") != std::string::npos;
  })) << agent.process().Stderr();
  const std::string err = agent.process().Stderr();
  EXPECT_NE(err.find("holds those of file source(s) `app` that the configuration no longer has"), std::string::npos)
      << err;
  EXPECT_NE(err.find("rename " + (dir / "data") + "/file_source/<old id> to <new id>"), std::string::npos) << err;
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(seconds(10)), 0) << agent.process().Stderr();
}

TEST(AgentTest, ASigtermWhileTheConfigIsStillBeingReadStopsTheAgentCleanly) {
  // A SIGTERM in the agent's first milliseconds (a restart loop, a
  // supervisor stopping it at once) used to meet the default action and
  // kill it (exit 143) because the signals were blocked only after the
  // config was loaded. A FIFO as the config holds `run` inside its read
  // for as long as the test likes.
  TempDir dir;
  const std::string fifo = dir / "tributary.yaml";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Process agent(Process::Options{{TributaryBinary(), "-c", fifo}, {}, false});
  // Blocked opening the FIFO: openat(2) is syscall 257 on x86-64, 56 on arm64.
  const std::string openat_nr = std::to_string(SYS_openat) + " ";
  ASSERT_TRUE(WaitFor([&] {
    return ReadFile("/proc/" + std::to_string(agent.pid()) + "/syscall").rfind(openat_nr, 0) == 0;
  })) << agent.Stderr();
  agent.Signal(SIGTERM);
  // The signal is held until the main loop takes it: the agent lives on.
  int fd = -1;
  ASSERT_TRUE(WaitFor([&] {
    fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // ENXIO once nobody reads it
    return fd >= 0 || !agent.Running();
  }));
  ASSERT_GE(fd, 0) << "the agent died of the signal: " << agent.Stderr();
  const std::string config = "data_dir: " + (dir / "data") +
                             "\napi: { address: 127.0.0.1:0 }\n"
                             "sources: { d: { type: demo_logs, interval: 1s } }\n"
                             "sinks: { b: { type: blackhole, inputs: [d] } }\n";
  ASSERT_EQ(write(fd, config.data(), config.size()), static_cast<ssize_t>(config.size()));
  close(fd);
  EXPECT_EQ(agent.Wait(std::chrono::seconds(10)), 0) << agent.Stderr();
  EXPECT_NE(agent.Stderr().find("received SIGTERM"), std::string::npos) << agent.Stderr();
}

}  // namespace
}  // namespace tributary::testing
