#include "sources/stdin_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/metrics.h"

namespace tributary {
namespace {

// A source's downstream for one test: owns the metrics; Send is the test's.
class TestContext : public SourceContext {
 public:
  TestContext() : metrics_(registry_.ForComponent("in", ComponentKind::kSource, "stdin")) {}
  std::stop_token stop_token() const override { return stop_.get_token(); }
  ComponentMetrics& metrics() override { return *metrics_; }

 private:
  Metrics registry_;
  std::unique_ptr<ComponentMetrics> metrics_;
  std::stop_source stop_;
};

// Records the size of every batch the source sends.
class BatchSizes final : public TestContext {
 public:
  bool Send(Batch batch) override {
    sizes.push_back(batch.size());
    for (const Event& e : batch.events()) messages.push_back(e.get("message")->as_string());
    batch.Finalize(BatchStatus::kDelivered);
    return true;
  }
  std::vector<size_t> sizes;
  std::vector<std::string> messages;
};

// Standard input replaced by a pipe holding `text`, for one test.
class StdinFrom {
 public:
  explicit StdinFrom(const std::string& text) : saved_(::dup(STDIN_FILENO)) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    writer_ = std::thread([fd = fds[1], text] {
      for (size_t off = 0; off < text.size();) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(fd);
    });
    ::dup2(fds[0], STDIN_FILENO);
    ::close(fds[0]);
  }
  ~StdinFrom() {
    writer_.join();
    ::dup2(saved_, STDIN_FILENO);
    ::close(saved_);
  }

 private:
  int saved_;
  std::thread writer_;
};

// Runs a stdin source over "line 0" ... "line N-1" into `ctx`, to EOF.
void RunOverLines(int lines, size_t max_batch_events, TestContext& ctx) {
  std::string text;
  for (int i = 0; i < lines; ++i) text += "line " + std::to_string(i) + "\n";
  StdinSource::Config config;
  config.max_batch_events = max_batch_events;
  BuildContext build{"in", "/tmp", "testhost", &ctx.metrics()};
  auto source = StdinSource::Build(config, build);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  StdinFrom in(text);
  ASSERT_TRUE((*source)->Run(ctx).ok());  // returns at EOF
}

// One read of standard input can hold thousands of lines; a batch still
// never holds more than max_batch_events.
TEST(StdinSourceTest, BatchesNeverExceedMaxBatchEvents) {
  BatchSizes ctx;
  ASSERT_NO_FATAL_FAILURE(RunOverLines(5000, 64, ctx));
  ASSERT_EQ(ctx.messages.size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(ctx.messages[i], "line " + std::to_string(i));
  size_t largest = 0;
  for (size_t s : ctx.sizes) largest = std::max(largest, s);
  EXPECT_EQ(largest, 64u);
  EXPECT_GE(ctx.sizes.size(), 5000u / 64);
}

// Records each event's keys and message, then changes the events the way
// transforms do (appends fields, replaces a value) before releasing the
// batch, whose events come back to the source to be overwritten.
class ChangingSink final : public TestContext {
 public:
  bool Send(Batch batch) override {
    for (Event& e : batch.mutable_events()) {
      std::string keys;
      for (size_t k = 0; k < e.fields().size(); ++k) keys += e.fields().key(k) + ",";
      layouts.push_back(keys);
      messages.push_back(e.get("message")->as_string());
      const size_t n = messages.size();
      if (n % 2 == 0) e.fields().set("parsed", Value("from line " + std::to_string(n)));
      if (n % 3 == 0) e.fields().set("extra", Value(int64_t{7}));
      if (n % 5 == 0) e.fields().set("host", Value(int64_t{5}));  // a source field of another kind
    }
    batch.Finalize(BatchStatus::kDelivered);
    return true;
  }
  std::vector<std::string> layouts;
  std::vector<std::string> messages;
};

// Recycled events that a transform extended or changed come back with
// exactly the source's four fields and this line's message: nothing of an
// earlier line is left.
TEST(StdinSourceTest, RecycledEventsKeepNoFieldOfAnEarlierLine) {
  ChangingSink ctx;
  ASSERT_NO_FATAL_FAILURE(RunOverLines(3000, 50, ctx));
  ASSERT_EQ(ctx.messages.size(), 3000u);
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(ctx.messages[i], "line " + std::to_string(i));
    ASSERT_EQ(ctx.layouts[i], "timestamp,host,source_type,message,") << "event " << i;
  }
}

// Lines over max_line_bytes under `oversize_policy: discard` are dropped
// because the user asked for it: counted as errors (line_too_long) and as
// intentional discards, never as unintentional ones.
TEST(StdinSourceTest, OversizeLinesDiscardedByPolicyAreIntentionalDiscards) {
  BatchSizes ctx;
  StdinSource::Config config;
  config.max_line_bytes.bytes = 8;
  config.oversize_policy = "discard";
  BuildContext build{"in", "/tmp", "testhost", &ctx.metrics()};
  auto source = StdinSource::Build(config, build);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  {
    StdinFrom in("short\nthis one is too long\nok\nand this one too\n");
    ASSERT_TRUE((*source)->Run(ctx).ok());
  }
  EXPECT_EQ(ctx.messages, (std::vector<std::string>{"short", "ok"}));
  EXPECT_EQ(ctx.metrics().discarded_intentional().Value(), 2);
  EXPECT_EQ(ctx.metrics().discarded_unintentional().Value(), 0);
  EXPECT_EQ(ctx.metrics().Errors("line_too_long", "receiving").Value(), 2);
}

}  // namespace
}  // namespace tributary
