// Micro-benchmarks of every transform: one batch of 1000 events per
// iteration (the copy of the input batch is not timed). items/s = events/s.
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include "agent/component.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "config/registry.h"

namespace tributary {
namespace {

const char* kApachePattern =
    R"re(^(?P<host>[\w\.]+) - (?P<user>[\w]+) (?P<bytes_in>[\d]+) \[(?P<timestamp>.*)\] "(?P<method>[\w]+) (?P<path>.*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$)re";

struct Built {
  Metrics metrics;
  std::unique_ptr<ComponentMetrics> cm;
  std::unique_ptr<Transform> t;
  size_t outputs = 1;
};

std::unique_ptr<Built> Build(const std::string& type, const std::string& yaml) {
  auto b = std::make_unique<Built>();
  const auto* ct = config::Registry::Get().Find(ComponentKind::kTransform, type);
  config::Diagnostics diag;
  auto opts = ct->parse(YAML::Load(yaml), config::ParseContext{&diag, "bench", "t"});
  if (!opts) {
    std::fprintf(stderr, "%s", diag.ToString().c_str());
    std::abort();
  }
  b->outputs = 1 + ct->outputs(opts.get()).size();
  b->cm = b->metrics.ForComponent("t", ComponentKind::kTransform, type);
  BuildContext ctx{"t", "/tmp", "h", b->cm.get()};
  b->t = std::move(ct->build_transform(opts.get(), ctx)).value();
  return b;
}

std::string ApacheLine(int i) {
  const char* paths[] = {"/api/v1/users", "/index.html", "/api/v2/orders/12345?expand=items", "/static/app.js"};
  const int statuses[] = {200, 201, 304, 404, 500, 503};
  char buf[256];
  std::snprintf(buf, sizeof buf, "10.%d.%d.%d - user%d %d [10/Oct/2000:13:%02d:%02d -0700] \"GET %s\" %d %d", i % 256,
                (i / 7) % 256, (i / 13) % 256, i % 50, i % 4096, (i / 60) % 60, i % 60, paths[i % 4], statuses[i % 6],
                i * 37 % 100000);
  return buf;
}

std::vector<Event> Events(int n, const std::function<Event(int)>& make) {
  std::vector<Event> v;
  for (int i = 0; i < n; ++i) v.push_back(make(i));
  return v;
}

Event Message(std::string m) {
  Event e;
  e.fields().reserve(4);
  e.fields().set("message", Value(std::move(m)));
  e.fields().set("timestamp", Value(Timestamp{}));
  e.fields().set("host", Value("host-1"));
  e.fields().set("source_type", Value("file"));
  return e;
}

Event Parsed(int i) {
  Event e = Message("x");
  e.fields().set("status", Value(int64_t{i % 7 == 0 ? 503 : 200}));
  e.fields().set("path", Value(i % 3 == 0 ? "/api/users" : "/index.html"));
  e.fields().set("user", Value("user" + std::to_string(i % 50)));
  e.fields().set("time", Value("2024-05-01T12:00:00.123Z"));
  return e;
}

void Run(benchmark::State& state, const std::string& type, const std::string& yaml,
         const std::vector<Event>& input) {
  auto b = Build(type, yaml);
  std::vector<Batch> outs(b->outputs);
  for (auto _ : state) {
    state.PauseTiming();
    Batch in{std::vector<Event>(input)};
    for (auto& o : outs) o = Batch();
    state.ResumeTiming();
    b->t->Process(in, outs);
    benchmark::DoNotOptimize(outs[0].size());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(input.size()));
}

void BM_RegexParserApache(benchmark::State& state) {
  static const auto input = Events(1000, [](int i) { return Message(ApacheLine(i)); });
  Run(state, "regex_parser",
      std::string("patterns: ['") + kApachePattern +
          "']\ntypes: { status: int, bytes_in: int, bytes_out: int, timestamp: \"timestamp|%d/%b/%Y:%H:%M:%S %z\" }\n",
      input);
}
void BM_RegexParserApacheStrings(benchmark::State& state) {
  static const auto input = Events(1000, [](int i) { return Message(ApacheLine(i)); });
  Run(state, "regex_parser", std::string("patterns: ['") + kApachePattern + "']\n", input);
}
void BM_RegexParserMismatch(benchmark::State& state) {
  static const auto input = Events(1000, [](int i) { return Message("not an access line " + std::to_string(i)); });
  Run(state, "regex_parser", std::string("patterns: ['") + kApachePattern + "']\n", input);
}
void BM_JsonParserRoot(benchmark::State& state) {
  static const auto input = Events(1000, [](int i) {
    return Message("{\"level\":\"info\",\"status\":" + std::to_string(200 + i % 5) +
                   ",\"latency_ms\":12.5,\"user\":{\"name\":\"bob\",\"id\":" + std::to_string(i) +
                   "},\"tags\":[\"web\",\"edge\"],\"msg\":\"request served in good time\"}");
  });
  Run(state, "json_parser", "{}", input);
}
void BM_JsonParserInvalid(benchmark::State& state) {
  static const auto input = Events(1000, [](int i) { return Message("{\"level\":\"info\",\"status\":" + std::to_string(i)); });
  Run(state, "json_parser", "{}", input);
}
void BM_AddFields(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "add_fields", "fields: { env: prod, service: '{{ user }}', version: 3 }\n", input);
}
void BM_RemoveFields(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "remove_fields", "fields: [host, source_type]\n", input);
}
void BM_RenameFields(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "rename_fields", "fields: { user: http.user, path: url }\n", input);
}
void BM_TimestampParser(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "timestamp_parser", "field: time\nformats: [rfc3339]\n", input);
}
void BM_TimestampParserStrptime(benchmark::State& state) {
  static const auto input = Events(1000, [](int i) {
    Event e = Parsed(i);
    e.fields().set("time", Value("10/Oct/2000:13:55:36 -0700"));
    return e;
  });
  Run(state, "timestamp_parser", "field: time\nformats: ['%d/%b/%Y:%H:%M:%S %z']\n", input);
}
void BM_Filter(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "filter", "condition: { all: [ { field: status, gte: 500 }, { field: path, matches: '^/api/' } ] }\n",
      input);
}
void BM_Route(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "route", "route: { errors: { field: status, gte: 500 }, api: { field: path, matches: '^/api/' } }\n",
      input);
}
void BM_Sample(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "sample", "rate: 10\n", input);
}
void BM_SampleByKey(benchmark::State& state) {
  static const auto input = Events(1000, Parsed);
  Run(state, "sample", "rate: 10\nkey_field: user\n", input);
}

BENCHMARK(BM_RegexParserApache);
BENCHMARK(BM_RegexParserApacheStrings);
BENCHMARK(BM_RegexParserMismatch);
BENCHMARK(BM_JsonParserRoot);
BENCHMARK(BM_JsonParserInvalid);
BENCHMARK(BM_AddFields);
BENCHMARK(BM_RemoveFields);
BENCHMARK(BM_RenameFields);
BENCHMARK(BM_TimestampParser);
BENCHMARK(BM_TimestampParserStrptime);
BENCHMARK(BM_Filter);
BENCHMARK(BM_Route);
BENCHMARK(BM_Sample);
BENCHMARK(BM_SampleByKey);

}  // namespace
}  // namespace tributary

int main(int argc, char** argv) {
  tributary::SetLogLevel(tributary::LogLevel::kOff);  // failure benchmarks would log
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
