// The transforms through the real binary: `tributary test` on passing,
// failing and broken test files, and a stdin → regex_parser / json_parser →
// file pipeline fed bad input (it keeps going and counts).

#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "tests/support/compliance.h"
#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

const char* kPipeline = R"yaml(
sources:
  in: { type: stdin }
transforms:
  parse:
    type: regex_parser
    inputs: [in]
    patterns: ['^(?P<host>[\w\.]+) - (?P<user>[\w]+) (?P<bytes_in>[\d]+) \[(?P<timestamp>.*)\] "(?P<method>[\w]+) (?P<path>.*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$']
    types: { status: int, bytes_in: int, bytes_out: int, timestamp: "timestamp|%d/%b/%Y:%H:%M:%S %z" }
  errors:
    type: filter
    inputs: [parse]
    condition: { all: [ { field: status, gte: 500 }, { field: path, matches: '^/api/' } ] }
  split:
    type: route
    inputs: [parse]
    route:
      server_errors: { field: status, gte: 500 }
      ok: { field: status, lt: 400 }
sinks:
  out: { type: blackhole, inputs: [errors, split.server_errors, split.ok, split._unmatched] }
)yaml";

std::string Config(const TempDir& dir, const std::string& tests) {
  return "data_dir: " + dir.path() + "/data\napi: { enabled: false }\n" + kPipeline + tests;
}

std::pair<int, std::string> RunTest(const TempDir& dir, const std::string& yaml) {
  WriteFile(dir / "t.yaml", yaml);
  Process p({{TributaryBinary(), "test", "-c", dir / "t.yaml"}, {}, false});
  auto code = p.Wait(std::chrono::seconds(30));
  return {code.value_or(-1), p.Stdout() + p.Stderr()};
}

TEST(TributaryTestCommand, PassingFile) {
  TempDir dir;
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: parses an access line
    inputs:
      - { insert_at: parse, type: raw, value: '1.2.3.4 - bob 12 [10/Oct/2000:13:55:36 -0700] "GET /api/x" 503 5' }
    outputs:
      - extract_from: parse
        conditions: [ { field: status, eq: 503 }, { field: user, eq: bob }, { field: timestamp, eq: '2000-10-10T20:55:36Z' } ]
      - extract_from: errors
      - extract_from: split.server_errors
        conditions: { field: path, eq: /api/x }
    no_outputs_from: [split.ok, split._unmatched]
  - name: events as fields
    inputs:
      - insert_at: errors
        type: log
        log_fields: { status: 200, path: /api/x }
    no_outputs_from: [errors]
)yaml"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("✓ parses an access line"), std::string::npos) << out;
  EXPECT_NE(out.find("✓ events as fields"), std::string::npos) << out;
  EXPECT_NE(out.find("PASSED: 2 passed, 0 failed"), std::string::npos) << out;
}

// A log input's numbers are what YAML 1.2's core schema makes of them:
// `0x1F7` is the integer 503 (it stayed the string "0x1F7", which the
// filter's `gte: 500` did not take for a number). `.inf`, a number JSON
// cannot carry, is an error at its place rather than a null in the event.
TEST(TributaryTestCommand, LogFieldsReadHexAndOctalAsNumbersAndRefuseInfinity) {
  TempDir dir;
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: hex status
    inputs:
      - insert_at: errors
        type: log
        log_fields: { status: 0x1F7, bytes_out: 0o17, path: /api/x }
    outputs:
      - extract_from: errors
        conditions: [ { field: status, eq: 503 }, { field: bytes_out, eq: 15 } ]
)yaml"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("✓ hex status"), std::string::npos) << out;

  const std::string infinite = Config(dir, R"yaml(
tests:
  - name: infinite
    inputs:
      - insert_at: errors
        type: log
        log_fields: { status: 503, latency: -.inf, path: /api/x }
    outputs:
      - extract_from: errors
)yaml");
  std::tie(code, out) = RunTest(dir, infinite);
  EXPECT_EQ(code, 78) << out;
  const size_t at = infinite.find("-.inf");
  const std::string where = "t.yaml:" + std::to_string(std::count(infinite.begin(), infinite.begin() + at, '\n') + 1) +
                            ":" + std::to_string(at - infinite.rfind('\n', at));
  EXPECT_NE(out.find(where), std::string::npos) << where << "\n" << out;
  EXPECT_NE(out.find("`tests[0].inputs[0].log_fields.latency` is -.inf, a number JSON cannot carry"),
            std::string::npos)
      << out;
}

TEST(TributaryTestCommand, FailingFileSaysWhy) {
  TempDir dir;
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: expects the wrong status
    inputs:
      - { insert_at: parse, type: raw, value: '1.2.3.4 - bob 12 [10/Oct/2000:13:55:36 -0700] "GET /api/x" 503 5' }
    outputs:
      - extract_from: parse
        conditions: [ { field: status, eq: 200 } ]
  - name: expects an unparsable line to be parsed
    inputs:
      - { insert_at: parse, type: raw, value: 'garbage' }
    outputs:
      - extract_from: split.ok
  - name: still passes
    inputs:
      - { insert_at: parse, type: raw, value: 'garbage' }
    outputs:
      - extract_from: split._unmatched
        conditions: [ { field: message, eq: garbage } ]
)yaml"));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("✗ expects the wrong status"), std::string::npos) << out;
  EXPECT_NE(out.find("failed for every event: status == 200"), std::string::npos) << out;
  EXPECT_NE(out.find("\"status\":503"), std::string::npos) << out;  // shows what came out
  EXPECT_NE(out.find("✗ expects an unparsable line to be parsed"), std::string::npos) << out;
  EXPECT_NE(out.find("output `split.ok`: no events were emitted"), std::string::npos) << out;
  EXPECT_NE(out.find("✓ still passes"), std::string::npos) << out;
  EXPECT_NE(out.find("FAILED: 1 passed, 2 failed"), std::string::npos) << out;
}

TEST(TributaryTestCommand, BrokenTestsAreConfigErrorsWithLocations) {
  TempDir dir;
  std::string yaml = Config(dir, R"yaml(
tests:
  - name: bad
    inputs:
      - { insert_at: parze, value: 'x' }
    outputs:
      - extract_from: parse
        conditions: [ { field: status, eqq: 1 } ]
)yaml");
  auto [code, out] = RunTest(dir, yaml);
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find("did you mean `parse`?"), std::string::npos) << out;
  EXPECT_NE(out.find("did you mean `eq`?"), std::string::npos) << out;
  EXPECT_NE(out.find("t.yaml:28:22"), std::string::npos) << out;  // the line of `insert_at: parze`
}

// `validate` checks the tests too, so a CI job that only validates learns
// of a broken test; inserting at a route's output says where to insert.
TEST(TributaryTestCommand, ValidateReportsBrokenTestsToo) {
  TempDir dir;
  WriteFile(dir / "t.yaml", Config(dir, R"yaml(
tests:
  - name: at a route output
    inputs:
      - { insert_at: split.ok, value: 'x' }
    outputs: [ { extract_from: parse } ]
)yaml"));
  Process p({{TributaryBinary(), "validate", "--no-environment", "-c", dir / "t.yaml"}, {}, false});
  EXPECT_EQ(p.Wait(std::chrono::seconds(30)), 78);
  const std::string out = p.Stdout() + p.Stderr();
  EXPECT_NE(out.find("t.yaml:28:22: error: `tests[0].inputs[0].insert_at`: `split.ok` is an output of `split`"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("(insert_at: split)"), std::string::npos) << out;
}

// Reading from a route: a mistyped output got "is an output of `split`;
// tests insert events into a transform (insert_at: split)", both wrong for
// extract_from; the route's own id was accepted, and `no_outputs_from:
// [split]` passed having checked nothing.
TEST(TributaryTestCommand, ARouteIsReadByItsOutputsOnly) {
  TempDir dir;
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: reads a route
    inputs:
      - { insert_at: parse, value: 'x' }
    outputs:
      - { extract_from: split.server_errros, conditions: [ { field: status, eq: 503 } ] }
      - { extract_from: split, conditions: [ { field: status, eq: 503 } ] }
    no_outputs_from: [split]
)yaml"));
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find("`split.server_errros` is not a transform (or transform output) of this config"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("did you mean `split.server_errors`?"), std::string::npos) << out;
  EXPECT_EQ(out.find("is an output of `split`"), std::string::npos) << out;
  EXPECT_NE(out.find("outputs[1].extract_from`: `split` is a route, which sends every event to one of its named "
                     "outputs and none on its own id"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("(name an output: `split.ok`, `split.server_errors`, `split._unmatched`)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("no_outputs_from`: `split` is a route"), std::string::npos) << out;
}

// Two tests of one name were accepted silently, and the report could not
// tell them apart: a config error at the second, naming the first.
TEST(TributaryTestCommand, TwoTestsOfOneNameAreAnError) {
  TempDir dir;
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: same name
    inputs: [ { insert_at: parse, value: 'x' } ]
    no_outputs_from: [errors]
  - name: other
    inputs: [ { insert_at: parse, value: 'x' } ]
    no_outputs_from: [errors]
  - name: same name
    inputs: [ { insert_at: parse, value: 'y' } ]
    no_outputs_from: [errors]
)yaml"));
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find("t.yaml:32:11: error: `tests[2].name`: `same name` is also the name of `tests[0]` at "),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("t.yaml:26:11 (give each test a name of its own)"), std::string::npos) << out;
  EXPECT_EQ(out.find("tests[1]"), std::string::npos) << out;
}

// Tests may be spread over several config files: each is run and located
// in its own file (they used to be located in the last file that had tests).
TEST(TributaryTestCommand, TestsInSeveralFilesAreLocatedInTheirOwnFile) {
  TempDir dir;
  WriteFile(dir / "t.yaml", Config(dir, R"yaml(
tests:
  - name: first file
    inputs: [ { insert_at: parse, value: 'x' } ]
    no_outputs_from: [errros]
)yaml"));
  WriteFile(dir / "more.yaml", R"yaml(tests:
  - name: second file
    inputs: [ { insert_at: parse, value: 'x' } ]
    no_outputs_from: [parse]
  - name: first file
    inputs: [ { insert_at: parse, value: 'y' } ]
    no_outputs_from: [parse]
)yaml");
  Process p({{TributaryBinary(), "test", "-c", dir / "t.yaml", "-c", dir / "more.yaml"}, {}, false});
  const int code = p.Wait(std::chrono::seconds(30)).value_or(-1);
  const std::string out = p.Stdout() + p.Stderr();
  EXPECT_EQ(code, 78) << out;
  // The first file's mistyped output, in the first file.
  EXPECT_NE(out.find("t.yaml:28:23: error: `tests[0].no_outputs_from`: `errros`"), std::string::npos) << out;
  // The repeated name, in the second file, naming the first where it is.
  EXPECT_NE(out.find("more.yaml:5:11: error: `tests[2].name`: `first file` is also the name of `tests[0]` at " +
                     (dir / "t.yaml") + ":26:11"),
            std::string::npos)
      << out;

  WriteFile(dir / "t.yaml", Config(dir, R"yaml(
tests:
  - name: first file
    inputs: [ { insert_at: parse, value: 'x' } ]
    no_outputs_from: [split.ok]
)yaml"));
  WriteFile(dir / "more.yaml", R"yaml(tests:
  - name: second file
    inputs: [ { insert_at: parse, value: 'x' } ]
    no_outputs_from: [split.ok]
)yaml");
  Process ok({{TributaryBinary(), "test", "-c", dir / "t.yaml", "-c", dir / "more.yaml"}, {}, false});
  const int ok_code = ok.Wait(std::chrono::seconds(30)).value_or(-1);
  const std::string ok_out = ok.Stdout() + ok.Stderr();
  EXPECT_EQ(ok_code, 0) << ok_out;
  EXPECT_NE(ok_out.find("Running 2 test(s) from " + (dir / "t.yaml") + ", " + (dir / "more.yaml")), std::string::npos)
      << ok_out;
}

TEST(TributaryTestCommand, AnInputWithoutTypeIsARawLine) {
  TempDir dir;
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: raw by default
    inputs:
      - { insert_at: parse, value: '1.2.3.4 - bob 12 [10/Oct/2000:13:55:36 -0700] "GET /api/x" 503 5' }
    outputs:
      - extract_from: parse
        conditions: [ { field: status, eq: 503 } ]
)yaml"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("✓ raw by default"), std::string::npos) << out;
}

TEST(TributaryTestCommand, MissingKeysAreErrorsNotCrashes) {
  TempDir dir;
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - outputs: [ { extract_from: parse } ]
  - name: no targets
    inputs: [ { value: x } ]
    outputs: [ { conditions: [] } ]
  - name: log without fields
    inputs: [ { insert_at: parse, type: log } ]
    outputs: [ { extract_from: parse } ]
)yaml"));
  EXPECT_EQ(code, 78) << out;
  for (const char* e : {"`tests[0].name` is required", "`tests[0].inputs` must be a non-empty list",
                        "`tests[1].inputs[0].insert_at` is required", "`tests[1].outputs[0].extract_from` is required",
                        "`tests[2].inputs[0].log_fields` is required"})
    EXPECT_NE(out.find(e), std::string::npos) << e << "\n" << out;
}

// `tests: []` said "no tests section" (exit 1) and `tests:` alone was an
// invalid config located past the end of the file (exit 78); a test named
// "" passed as `✓ ` with nothing after it; `no_outputs_from: id` alone was
// refused although one item may be written alone everywhere else.
TEST(TributaryTestCommand, EmptyTestSectionsAndNamesAndOneIdAlone) {
  TempDir dir;
  for (const char* empty : {"tests: []\n", "tests:\n"}) {
    auto [code, out] = RunTest(dir, Config(dir, empty));
    EXPECT_EQ(code, 1) << empty << out;
    EXPECT_NE(out.find("no tests: the configuration's `tests:` section is empty"), std::string::npos) << out;
  }
  auto [code, out] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: " "
    inputs: [ { insert_at: parse, value: 'x' } ]
    no_outputs_from: errors
)yaml"));
  EXPECT_EQ(code, 78) << out;
  EXPECT_NE(out.find("t.yaml:26:11: error: `tests[0].name` is empty"), std::string::npos) << out;
  auto [alone_code, alone] = RunTest(dir, Config(dir, R"yaml(
tests:
  - name: one id alone
    inputs: [ { insert_at: parse, value: 'not an access log line' } ]
    no_outputs_from: errors
)yaml"));
  EXPECT_EQ(alone_code, 0) << alone;
  EXPECT_NE(alone.find("✓ one id alone"), std::string::npos) << alone;
}

// A typo in the command line exited 1, which for `test` is also "a test
// failed": CI could not tell its own script's mistake from a failure.
TEST(TributaryTestCommand, AUsageErrorIsNotATestFailure) {
  TempDir dir;
  WriteFile(dir / "t.yaml", Config(dir, ""));
  Process p({{TributaryBinary(), "test", "--verbose", "-c", dir / "t.yaml"}, {}, false});
  EXPECT_EQ(p.Wait(std::chrono::seconds(30)), 64) << p.Stderr();
  EXPECT_NE(p.Stderr().find("--verbose"), std::string::npos) << p.Stderr();
  // The config named without -c, as `validate FILE` takes it (it was a
  // usage error for `test` and `graph`).
  Process positional({{TributaryBinary(), "test", dir / "t.yaml"}, {}, false});
  EXPECT_EQ(positional.Wait(std::chrono::seconds(30)), 1) << positional.Stderr();
  EXPECT_NE(positional.Stdout().find("no tests: the configuration has no `tests:` section"), std::string::npos)
      << positional.Stdout() << positional.Stderr();
  Process graph({{TributaryBinary(), "graph", dir / "t.yaml"}, {}, false});
  EXPECT_EQ(graph.Wait(std::chrono::seconds(30)), 0) << graph.Stderr();
  EXPECT_NE(graph.Stdout().find("digraph"), std::string::npos) << graph.Stdout();
}

TEST(TransformsPipeline, BadInputIsCountedAndThePipelineKeepsGoing) {
  TempDir dir;
  std::string yaml = "data_dir: " + dir.path() + "/data\napi: { address: 127.0.0.1:0 }\n" + R"yaml(
sources:
  in: { type: stdin }
transforms:
  parse:
    type: regex_parser
    inputs: [in]
    patterns: ['^(?P<a>\w+) (?P<n>\d+)$']
    types: { n: int }
  json:
    type: json_parser
    inputs: [in]
    target: doc
    max_depth: 16
sinks:
  out: { type: file, inputs: [parse], path: )yaml" + dir.path() + R"yaml(/out.log }
  out2: { type: file, inputs: [json], path: )yaml" + dir.path() + R"yaml(/json.log }
)yaml";
  Agent agent(dir, yaml, {"--threads", "2"}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  std::string input;
  input += "good 1\n";
  input += "bad \xff\xfe line\n";
  input += "good 99999999999999999999\n";  // conversion overflow
  input += std::string(90000, 'x') + " 5\n";  // a huge field (under max_line_bytes): still parses
  input += std::string(5000, '[') + std::string(5000, ']') + "\n";  // deep JSON
  input += "{\"ok\":\"\xc3\x28\"}\n";             // invalid UTF-8 inside JSON
  input += "{\"ok\":1}\n";
  input += "good 2\n";
  agent.process().WriteStdin(input);
  ASSERT_TRUE(WaitFor([&] { return ReadLines(dir / "out.log").size() == 8 && ReadLines(dir / "json.log").size() == 8; }))
      << agent.process().Stderr();
  auto m = [&](const std::string& id, const std::string& type) {
    return agent.Metric("tributary_component_errors_total", {{"component_id", id}, {"error_type", type}}).value_or(-1);
  };
  EXPECT_EQ(m("parse", "pattern_mismatch"), 4);  // bad line, deep JSON, two JSON lines
  EXPECT_EQ(m("parse", "conversion_failed"), 1);
  EXPECT_EQ(m("parse", "invalid_utf8"), 2);
  EXPECT_EQ(m("json", "depth_exceeded"), 1);
  EXPECT_EQ(m("json", "invalid_json"), 6);
  auto lines = ReadLines(dir / "out.log");
  EXPECT_NE(lines[0].find("\"n\":1"), std::string::npos);
  EXPECT_NE(lines[7].find("\"n\":2"), std::string::npos);  // order kept through the pool
  EXPECT_NE(ReadLines(dir / "json.log")[6].find("\"doc\":{\"ok\":1}"), std::string::npos);
  agent.process().CloseStdin();
  EXPECT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0);
}

TEST(TransformsPipeline, RouteOutputsAreWiredAndCountedPerOutput) {
  TempDir dir;
  std::string yaml = "data_dir: " + dir.path() + "/data\napi: { address: 127.0.0.1:0 }\n" + R"yaml(
sources:
  in: { type: stdin }
transforms:
  parse: { type: json_parser, inputs: [in] }
  split:
    type: route
    inputs: [parse]
    route:
      errors: { field: status, gte: 500 }
      api: { field: path, matches: '^/api/' }
  sampled: { type: sample, inputs: [split._unmatched], rate: 2 }
sinks:
  errors: { type: file, inputs: [split.errors], path: )yaml" + dir.path() + R"yaml(/errors.log }
  api: { type: file, inputs: [split.api], path: )yaml" + dir.path() + R"yaml(/api.log }
  rest: { type: file, inputs: [sampled], path: )yaml" + dir.path() + R"yaml(/rest.log }
)yaml";
  Agent agent(dir, yaml, {"--threads", "2"}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  std::string input;
  for (int i = 0; i < 100; ++i) {
    int status = i % 4 == 0 ? 503 : 200;
    std::string path = i % 2 == 0 ? "/api/x" : "/web";
    input += "{\"i\":" + std::to_string(i) + ",\"status\":" + std::to_string(status) + ",\"path\":\"" + path + "\"}\n";
  }
  agent.process().WriteStdin(input);
  // 25 errors (all on /api/), 50 on /api/ (the errors included: copies), 50 unmatched, half sampled.
  ASSERT_TRUE(WaitFor([&] {
    return ReadLines(dir / "errors.log").size() == 25 && ReadLines(dir / "api.log").size() == 50 &&
           ReadLines(dir / "rest.log").size() == 25;
  })) << agent.process().Stderr();
  auto sent = [&](const std::string& output) {
    return agent.Metric("tributary_component_sent_events_total", {{"component_id", "split"}, {"output", output}})
        .value_or(-1);
  };
  EXPECT_EQ(sent("errors"), 25);
  EXPECT_EQ(sent("api"), 50);
  EXPECT_EQ(sent("_unmatched"), 50);
  EXPECT_EQ(agent.Metric("tributary_component_discarded_events_total",
                         {{"component_id", "sampled"}, {"intentional", "true"}}),
            25);
  std::string metrics = agent.Metrics();
  for (const char* id : {"parse", "split", "sampled"}) {
    ExpectComponentMetrics(metrics, id, "transform", id == std::string("parse") ? "json_parser"
                                                     : id == std::string("split") ? "route" : "sample");
  }
  // Order within an output follows the input, through the worker pool.
  auto errors = ReadLines(dir / "errors.log");
  for (size_t k = 0; k < errors.size(); ++k)
    EXPECT_NE(errors[k].find("\"i\":" + std::to_string(k * 4) + ","), std::string::npos) << errors[k];
  agent.process().CloseStdin();
  EXPECT_EQ(agent.process().Wait(std::chrono::seconds(20)), 0);
}

}  // namespace
}  // namespace tributary::testing
