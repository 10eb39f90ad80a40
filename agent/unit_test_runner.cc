#include "agent/unit_test_runner.h"

#include <algorithm>
#include <map>
#include <memory>

#include "agent/cli.h"
#include "agent/json.h"
#include "config/registry.h"
#include "transforms/add_fields_transform.h"
#include "transforms/condition.h"

namespace tributary {

namespace {

struct TestInput {
  std::string insert_at;
  Event event;
};

struct TestOutput {
  std::string extract_from;
  std::vector<Condition> conditions;
  std::string description;  // the conditions as text
};

struct UnitTest {
  std::string name;
  std::vector<TestInput> inputs;
  std::vector<TestOutput> outputs;
  std::vector<std::string> no_outputs_from;
};

// Every name a transform output can be consumed by: "id" and "id.name".
// Where a test may read events: a transform's id, or for one with named
// outputs (route), which sends nothing on its own id, those outputs.
std::vector<std::string> TransformOutputNames(const config::Config& config) {
  std::vector<std::string> names;
  for (const auto& c : config.components) {
    if (c.kind != ComponentKind::kTransform) continue;
    for (auto& name : c.OutputNames()) names.push_back(std::move(name));
  }
  return names;
}

bool CheckKeys(const YAML::Node& node, const std::vector<std::string>& valid, const config::ParseContext& ctx) {
  bool ok = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = it->first.Scalar();
    if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
    std::string near = config::ClosestMatch(key, valid);
    std::string list;
    for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
    ctx.Error(it->first, "unknown key `" + ctx.Child(key).path + "`",
              near.empty() ? "valid keys: " + list : "did you mean `" + near + "`?");
    ok = false;
  }
  return ok;
}

// Checks that `name` names a transform (output); reports otherwise.
// YAML::Node's const operator[] gives an invalid node for a missing key,
// and asking an invalid node what it is throws: ask these instead.
bool IsScalarNode(const YAML::Node& n) { return n.IsDefined() && n.IsScalar(); }
bool IsMapNode(const YAML::Node& n) { return n.IsDefined() && n.IsMap(); }

// A number JSON cannot carry (.inf, .nan) among a log input's fields: it
// would go through the transforms as a number and out as null. Reports
// each one; false if there was one.
bool CheckFinite(const YAML::Node& n, const config::ParseContext& ctx) {
  bool ok = true;
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) ok = CheckFinite(it->second, ctx.Child(it->first.Scalar())) && ok;
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) ok = CheckFinite(n[i], ctx.Child("[" + std::to_string(i) + "]")) && ok;
  } else if (NonFiniteNumber(n)) {
    ctx.Error(n, "`" + ctx.path + "` is " + n.Scalar() + ", a number JSON cannot carry (it would be written as null)",
              "quote it ('" + n.Scalar() + "') for the text, or give a finite number");
    ok = false;
  }
  return ok;
}

// `valid`: the transform ids (insert_at) or TransformOutputNames
// (extract_from, no_outputs_from).
bool CheckTarget(const YAML::Node& at, const std::string& name, const std::vector<std::string>& valid,
                 const config::ParseContext& ctx, const config::Config& config) {
  if (std::find(valid.begin(), valid.end(), name) != valid.end()) return true;
  const std::string owner = name.substr(0, name.find('.'));
  const config::ComponentConfig* c = config.Find(owner);
  const bool is_transform = c != nullptr && c->kind == ComponentKind::kTransform;
  // insert_at takes transform ids only: a route's output is where events
  // leave a transform, not where they go in.
  if (owner != name && is_transform && std::find(valid.begin(), valid.end(), owner) != valid.end()) {
    ctx.Error(at, "`" + ctx.path + "`: `" + name + "` is an output of `" + owner + "`; tests insert events into a transform",
              "insert_at: " + owner);
    return false;
  }
  // A route's own id carries nothing: read one of its outputs.
  if (owner == name && is_transform && !c->outputs.empty()) {
    ctx.Error(at, "`" + ctx.path + "`: `" + name + "` is a " + c->type +
                      ", which sends every event to one of its named outputs and none on its own id",
              "name an output: " + config::BacktickList(c->OutputNames()));
    return false;
  }
  std::string near = config::ClosestMatch(name, valid);
  ctx.Error(at, "`" + ctx.path + "`: `" + name + "` is not a transform (or transform output) of this config",
            near.empty() ? "tests feed and read transforms only" : "did you mean `" + near + "`?");
  return false;
}

std::optional<std::vector<UnitTest>> ParseTests(const config::Config& config, config::Diagnostics* diag) {
  std::vector<UnitTest> tests;
  const auto outputs = TransformOutputNames(config);
  std::vector<std::string> transforms;
  for (const auto& c : config.components)
    if (c.kind == ComponentKind::kTransform) transforms.push_back(c.id);
  std::map<std::string, size_t> names;  // test name -> index of the first test of that name
  for (size_t i = 0; i < config.tests.size(); ++i) {
    const YAML::Node& t = config.tests[i];
    const std::string& file = config.test_files[i];
    config::ParseContext ctx{diag, file, "tests[" + std::to_string(i) + "]"};
    if (!t.IsMap()) {
      ctx.Error(t, "`" + ctx.path + "` must be a map with `name`, `inputs` and `outputs`");
      continue;
    }
    CheckKeys(t, {"name", "inputs", "outputs", "no_outputs_from"}, ctx);
    UnitTest test;
    if (!IsScalarNode(t["name"])) {
      ctx.Error(t, "`" + ctx.path + ".name` is required");
    } else {
      test.name = t["name"].Scalar();
      if (test.name.find_first_not_of(" \t") == std::string::npos)
        ctx.Error(t["name"], "`" + ctx.path + ".name` is empty", "name the test: the report lists tests by name");
      // Two tests of one name could not be told apart in the report.
      auto [first, fresh] = names.emplace(test.name, i);
      if (!fresh) {
        const YAML::Node& other = config.tests[first->second]["name"];
        ctx.Error(t["name"],
                  "`" + ctx.path + ".name`: `" + test.name + "` is also the name of `tests[" +
                      std::to_string(first->second) + "]` at " +
                      config::LocationOf(other, config.test_files[first->second]).ToString(),
                  "give each test a name of its own");
      }
    }
    const YAML::Node inputs = t["inputs"];
    if (!inputs.IsDefined() || !inputs.IsSequence() || inputs.size() == 0) {
      ctx.Error(inputs.IsDefined() ? inputs : t, "`" + ctx.path + ".inputs` must be a non-empty list");
    } else {
      for (size_t k = 0; k < inputs.size(); ++k) {
        const YAML::Node& in = inputs[k];
        config::ParseContext ic = ctx.Child("inputs[" + std::to_string(k) + "]");
        if (!in.IsMap()) {
          ic.Error(in, "`" + ic.path + "` must be a map with `insert_at` and `value` or `log_fields`");
          continue;
        }
        CheckKeys(in, {"insert_at", "type", "value", "log_fields"}, ic);
        TestInput input;
        if (!IsScalarNode(in["insert_at"])) {
          ic.Error(in, "`" + ic.path + ".insert_at` is required (a transform id)");
          continue;
        }
        input.insert_at = in["insert_at"].Scalar();
        if (!CheckTarget(in["insert_at"], input.insert_at, transforms, ic.Child("insert_at"), config)) continue;
        std::string type = IsScalarNode(in["type"]) ? in["type"].Scalar() : "raw";
        if (type == "raw") {
          if (!IsScalarNode(in["value"])) {
            ic.Error(in, "`" + ic.path + ".value` is required for a raw input (the line)");
            continue;
          }
          input.event.fields().set(kMessageField, Value(in["value"].Scalar()));
          input.event.fields().set(kTimestampField, Value(Now()));
        } else if (type == "log") {
          if (!IsMapNode(in["log_fields"])) {
            ic.Error(in, "`" + ic.path + ".log_fields` is required for a log input (a map of fields)");
            continue;
          }
          if (!CheckFinite(in["log_fields"], ic.Child("log_fields"))) continue;
          Value v = YamlToValue(in["log_fields"]);
          input.event = Event(std::move(v.as_map()));
        } else {
          ic.Error(in["type"], "`" + ic.path + ".type` must be `raw` or `log`");
          continue;
        }
        test.inputs.push_back(std::move(input));
      }
    }
    const YAML::Node outs = t["outputs"];
    if (outs.IsDefined() && !outs.IsSequence()) {
      ctx.Error(outs, "`" + ctx.path + ".outputs` must be a list");
    } else if (outs.IsDefined()) {
      for (size_t k = 0; k < outs.size(); ++k) {
        const YAML::Node& o = outs[k];
        config::ParseContext oc = ctx.Child("outputs[" + std::to_string(k) + "]");
        if (!o.IsMap()) {
          oc.Error(o, "`" + oc.path + "` must be a map with `extract_from` and `conditions`");
          continue;
        }
        CheckKeys(o, {"extract_from", "conditions"}, oc);
        TestOutput out;
        if (!IsScalarNode(o["extract_from"])) {
          oc.Error(o, "`" + oc.path + ".extract_from` is required (a transform id)");
          continue;
        }
        out.extract_from = o["extract_from"].Scalar();
        if (!CheckTarget(o["extract_from"], out.extract_from, outputs, oc.Child("extract_from"), config)) continue;
        const YAML::Node conds = o["conditions"];
        if (conds.IsDefined() && !conds.IsNull()) {
          // (No YAML::Node assignment here: it writes through to the config.)
          std::vector<YAML::Node> list;
          if (conds.IsSequence()) {
            for (const auto& c : conds) list.push_back(c);
          } else {
            list.push_back(conds);
          }
          for (size_t c = 0; c < list.size(); ++c) {
            auto cond = Condition::Parse(list[c], oc.Child("conditions[" + std::to_string(c) + "]"));
            if (!cond) continue;
            out.description += (out.description.empty() ? "" : " and ") + cond->ToString();
            out.conditions.push_back(std::move(*cond));
          }
        }
        test.outputs.push_back(std::move(out));
      }
    }
    const YAML::Node none = t["no_outputs_from"];
    if (none.IsDefined()) {
      if (!none.IsSequence() && !none.IsScalar()) {
        ctx.Error(none, "`" + ctx.path + ".no_outputs_from` must be a list of transform ids");
      } else {
        // One id may be written alone, as everywhere a list is taken.
        std::vector<YAML::Node> ids;
        if (none.IsScalar()) ids.push_back(none);
        else
          for (const auto& n : none) ids.push_back(n);
        for (const auto& n : ids) {
          if (n.IsScalar() && CheckTarget(n, n.Scalar(), outputs, ctx.Child("no_outputs_from"), config))
            test.no_outputs_from.push_back(n.Scalar());
        }
      }
    }
    // Only when none is written: entries with errors of their own were reported.
    if (!t["outputs"].IsDefined() && !t["no_outputs_from"].IsDefined())
      ctx.Error(t, "`" + ctx.path + "` checks nothing", "add `outputs` with `extract_from` or `no_outputs_from`");
    tests.push_back(std::move(test));
  }
  if (diag->has_errors()) return std::nullopt;
  return tests;
}

// The config's transforms, built afresh for one test, and the graph between them.
class TransformGraph {
 public:
  static Result<std::unique_ptr<TransformGraph>> Build(const config::Config& config) {
    auto g = std::unique_ptr<TransformGraph>(new TransformGraph());
    for (const auto& c : config.components) {
      if (c.kind != ComponentKind::kTransform) continue;
      Node n;
      n.id = c.id;
      n.output_names.push_back(c.id);
      for (const auto& o : c.outputs) n.output_names.push_back(c.id + "." + o);
      n.metrics = g->metrics_.ForComponent(c.id, c.kind, c.type);
      BuildContext ctx{c.id, config.global.data_dir, "localhost", n.metrics.get()};
      auto t = c.type_info->build_transform(c.options.get(), ctx);
      if (!t.ok()) return Status(t.status().code(), "transform `" + c.id + "`: " + t.status().message());
      n.transform = std::move(t).value();
      g->nodes_[c.id] = std::move(n);
    }
    for (const auto& c : config.components) {
      if (c.kind != ComponentKind::kTransform) continue;
      for (const auto& in : c.inputs) g->consumers_[in].push_back(c.id);
    }
    return g;
  }

  // Runs `events` through transform `id` and everything downstream of it.
  void Feed(const std::string& id, std::vector<Event> events) {
    Node& n = nodes_.at(id);
    Batch in(std::move(events));
    std::vector<Batch> outs(n.output_names.size());
    n.transform->Process(in, outs);
    for (size_t i = 0; i < outs.size(); ++i) {
      const std::string& name = n.output_names[i];
      auto& sink = collected_[name];
      for (const Event& e : outs[i].events()) sink.push_back(e);
      auto it = consumers_.find(name);
      if (it == consumers_.end() || outs[i].empty()) continue;
      for (const auto& consumer : it->second) Feed(consumer, outs[i].events());
    }
  }

  const std::vector<Event>& Collected(const std::string& output) { return collected_[output]; }

 private:
  struct Node {
    std::string id;
    std::vector<std::string> output_names;  // "id", then "id.name"
    std::unique_ptr<ComponentMetrics> metrics;
    std::unique_ptr<Transform> transform;
  };
  Metrics metrics_;
  std::map<std::string, Node> nodes_;
  std::map<std::string, std::vector<std::string>> consumers_;
  std::map<std::string, std::vector<Event>> collected_;
};

void AppendEvents(const std::vector<Event>& events, std::string* out) {
  const size_t shown = std::min<size_t>(events.size(), 5);
  for (size_t i = 0; i < shown; ++i) {
    *out += "        ";
    AppendJson(events[i], out);
    *out += "\n";
  }
  if (events.size() > shown) *out += "        ... and " + std::to_string(events.size() - shown) + " more\n";
}

}  // namespace

bool CheckConfigTests(const config::Config& config, config::Diagnostics* diag) {
  if (!config.tests.IsDefined() || config.tests.IsNull() || config.tests.size() == 0) return true;
  return ParseTests(config, diag).has_value();
}

int RunConfigTests(const config::Config& config, std::ostream& out) {
  if (!config.tests.IsDefined() || config.tests.IsNull() || config.tests.size() == 0) {
    out << (config.tests.IsDefined() && !config.tests.IsNull() ? "no tests: the configuration's `tests:` section is empty\n"
                                                                : "no tests: the configuration has no `tests:` section\n");
    return kExitFailure;
  }
  config::Diagnostics diag;
  auto tests = ParseTests(config, &diag);
  if (!tests) {
    out << diag.ToString();
    out << "invalid tests: " << diag.error_count() << " error(s)\n";
    return kExitConfig;
  }
  size_t passed = 0;
  std::vector<std::string> files;  // where the tests come from, each file once, in order
  for (const std::string& f : config.test_files)
    if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
  std::string from;
  for (const std::string& f : files) from += (from.empty() ? "" : ", ") + f;
  out << "Running " << tests->size() << " test(s) from " << from << "\n";
  for (const UnitTest& test : *tests) {
    std::string failures;
    auto graph = TransformGraph::Build(config);
    if (!graph.ok()) {
      failures += "    cannot build the transforms: " + graph.status().message() + "\n";
    } else {
      for (const auto& in : test.inputs) (*graph)->Feed(in.insert_at, {in.event});
      for (const auto& o : test.outputs) {
        const auto& events = (*graph)->Collected(o.extract_from);
        if (events.empty()) {
          failures += "    output `" + o.extract_from + "`: no events were emitted\n";
          continue;
        }
        bool any = false;
        for (const Event& e : events) {
          bool all = true;
          for (const auto& c : o.conditions) all = all && c.Matches(e);
          if (all) {
            any = true;
            break;
          }
        }
        if (any) continue;
        failures += "    output `" + o.extract_from + "`: no event met: " + o.description + "\n";
        for (const auto& c : o.conditions) {
          size_t met = 0;
          for (const Event& e : events) met += c.Matches(e) ? 1 : 0;
          if (met == 0) failures += "      failed for every event: " + c.ToString() + "\n";
        }
        failures += "      got " + std::to_string(events.size()) + " event(s):\n";
        AppendEvents(events, &failures);
      }
      for (const auto& name : test.no_outputs_from) {
        const auto& events = (*graph)->Collected(name);
        if (events.empty()) continue;
        failures += "    `" + name + "` emitted " + std::to_string(events.size()) + " event(s), expected none:\n";
        AppendEvents(events, &failures);
      }
    }
    if (failures.empty()) {
      ++passed;
      out << "  ✓ " << test.name << "\n";
    } else {
      out << "  ✗ " << test.name << "\n" << failures;
    }
  }
  const size_t failed = tests->size() - passed;
  out << (failed == 0 ? "PASSED" : "FAILED") << ": " << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace tributary
