#include "tests/support/test_components.h"

#include <memory>

#include "agent/component.h"
#include "config/registry.h"

namespace tributary::testing {

namespace {

std::mutex g_mu;
std::map<std::string, std::unique_ptr<TestSourceState>> g_sources;
std::map<std::string, std::unique_ptr<TestSinkState>> g_sinks;

class TestSource final : public Source {
 public:
  struct Config {
    uint64_t batches = 1;
    uint64_t batch_size = 10;
    uint64_t event_bytes = 0;
    static const config::Schema<Config>& schema() {
      static const config::Schema<Config> s = [] {
        config::Schema<Config> s;
        s.Field("batches", &Config::batches, "Batches to emit.");
        s.Field("batch_size", &Config::batch_size, "Events per batch.");
        s.Field("event_bytes", &Config::event_bytes, "Source bytes each event stands for (Batch::bytes()).");
        return s;
      }();
      return s;
    }
  };
  static constexpr std::string_view kSummary = "test source";
  static Result<std::unique_ptr<Source>> Build(const Config& c, BuildContext& ctx) {
    return std::unique_ptr<Source>(new TestSource(c, ctx.id));
  }
  Status Run(SourceContext& ctx) override {
    TestSourceState& st = SourceState(id_);
    uint64_t seq = 0;
    for (uint64_t b = 0; b < config_.batches && !ctx.stop_token().stop_requested(); ++b) {
      std::vector<Event> events;
      for (uint64_t i = 0; i < config_.batch_size; ++i) {
        Event e;
        e.set("seq", static_cast<int64_t>(seq++));
        e.set("message", "line " + std::to_string(seq));
        events.push_back(std::move(e));
      }
      Batch batch(std::move(events));
      batch.set_bytes(config_.batch_size * config_.event_bytes);
      batch.add_finalizer(Finalizer::Create([&st](BatchStatus s) {
        std::lock_guard lock(st.mu);
        st.statuses.push_back(s);
        st.cv.notify_all();
      }));
      {
        std::lock_guard lock(st.mu);
        ++st.sent_batches;
      }
      if (!ctx.Send(std::move(batch))) break;
    }
    return Status::Ok();
  }

 private:
  TestSource(const Config& c, std::string id) : config_(c), id_(std::move(id)) {
    std::lock_guard lock(SourceState(id_).mu);
    ++SourceState(id_).alive;
  }
  ~TestSource() override {
    std::lock_guard lock(SourceState(id_).mu);
    --SourceState(id_).alive;
  }
  Config config_;
  std::string id_;
};

class TestRegex final : public SimpleTransform {
 public:
  struct Config {
    config::Regex pattern;
    static const config::Schema<Config>& schema() {
      static const config::Schema<Config> s = [] {
        config::Schema<Config> s;
        s.Field("pattern", &Config::pattern, "A regex.").Required();
        return s;
      }();
      return s;
    }
  };
  static constexpr std::string_view kSummary = "test transform";
  static Result<std::unique_ptr<Transform>> Build(const Config&, BuildContext&) {
    return std::unique_ptr<Transform>(new TestRegex());
  }
  void Apply(std::vector<Event>&) override {}
};

class TestSink final : public SimpleSink {
 public:
  struct Config {
    static const config::Schema<Config>& schema() {
      static const config::Schema<Config> s;
      return s;
    }
  };
  static constexpr std::string_view kSummary = "test sink";
  static Result<std::unique_ptr<Sink>> Build(const Config&, BuildContext& ctx) {
    return std::unique_ptr<Sink>(new TestSink(ctx.id));
  }
  Status Write(const Batch& batch) override {
    TestSinkState& st = SinkState(id_);
    std::unique_lock lock(st.mu);
    st.cv.wait(lock, [&] { return !st.paused; });
    for (const Event& e : batch.events()) {
      const Value* r = e.get("reject");
      if (r && r->is_bool() && r->as_bool()) return Status::InvalidArgument("rejected by test_sink");
    }
    for (const Event& e : batch.events()) st.events.push_back(e);
    st.cv.notify_all();
    return Status::Ok();
  }

 private:
  explicit TestSink(std::string id) : id_(std::move(id)) {}
  std::string id_;
};

// A sink whose Run fails at once, as a sink does that cannot start.
class TestBrokenSink final : public Sink {
 public:
  struct Config {
    static const config::Schema<Config>& schema() {
      static const config::Schema<Config> s;
      return s;
    }
  };
  static constexpr std::string_view kSummary = "test sink that fails";
  static Result<std::unique_ptr<Sink>> Build(const Config&, BuildContext&) {
    return std::unique_ptr<Sink>(new TestBrokenSink());
  }
  Status Run(SinkContext&) override { return Status::Internal("broken on purpose"); }
};

TRIBUTARY_REGISTER_SOURCE("test_source", TestSource);
TRIBUTARY_REGISTER_SINK("test_broken_sink", TestBrokenSink);
TRIBUTARY_REGISTER_TRANSFORM("test_regex", TestRegex);
TRIBUTARY_REGISTER_SINK("test_sink", TestSink);

}  // namespace

void TestSinkState::Pause() {
  std::lock_guard lock(mu);
  paused = true;
}

void TestSinkState::Resume() {
  {
    std::lock_guard lock(mu);
    paused = false;
  }
  cv.notify_all();
}

size_t TestSinkState::count() {
  std::lock_guard lock(mu);
  return events.size();
}

TestSourceState& SourceState(const std::string& id) {
  std::lock_guard lock(g_mu);
  auto& p = g_sources[id];
  if (!p) p = std::make_unique<TestSourceState>();
  return *p;
}

TestSinkState& SinkState(const std::string& id) {
  std::lock_guard lock(g_mu);
  auto& p = g_sinks[id];
  if (!p) p = std::make_unique<TestSinkState>();
  return *p;
}

void ResetTestComponents() {
  std::lock_guard lock(g_mu);
  g_sources.clear();
  g_sinks.clear();
}

}  // namespace tributary::testing
