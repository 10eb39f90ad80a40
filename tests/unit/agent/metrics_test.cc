#include "agent/metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace tributary {
namespace {

using testing::MetricValue;

// The sample lines of `text` that carry every one of `needles`.
std::vector<std::string> Samples(const std::string& text, const std::vector<std::string>& needles) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// What a reload does to the series: BeginGeneration, the new topology binds
// its components' series again, RemoveUnboundSeries.
TEST(MetricsTest, AReloadRemovesTheSeriesOfWhatIsGoneAndKeepsTheValuesOfWhatStays) {
  Metrics m;
  auto kept = m.ForComponent("kept", ComponentKind::kSource, "file");
  kept->received_events().Increment(5);
  kept->Errors("read_failed", "receiving").Increment(2);
  // A label set first seen at run time (an error type a server answered).
  kept->Errors("from_the_server", "sending").Increment(3);
  auto gone = m.ForComponent("gone", ComponentKind::kSink, "blackhole");
  m.ForBuffer("gone", "blackhole", "memory").events->Set(7);
  auto route = m.ForComponent("split", ComponentKind::kTransform, "route", {"a", "b", "_unmatched"});
  route->SentEventsForOutput("a").Increment(4);
  auto retyped = m.ForComponent("retyped", ComponentKind::kSink, "blackhole");
  retyped->sent_events().Increment(9);
  m.ForBuffer("retyped", "blackhole", "memory");
  auto rebuffered = m.ForComponent("rebuffered", ComponentKind::kSink, "file");
  m.ForBuffer("rebuffered", "file", "memory");
  std::string before = m.Serialize();
  ASSERT_FALSE(Samples(before, {"component_id=\"gone\""}).empty());
  ASSERT_FALSE(Samples(before, {"output=\"b\""}).empty());

  // The old topology is destroyed, the new one built.
  kept.reset();
  gone.reset();
  route.reset();
  retyped.reset();
  rebuffered.reset();
  m.BeginGeneration();
  auto kept2 = m.ForComponent("kept", ComponentKind::kSource, "file");
  kept2->Errors("read_failed", "receiving");
  auto route2 = m.ForComponent("split", ComponentKind::kTransform, "route", {"a", "_unmatched"});
  auto retyped2 = m.ForComponent("retyped", ComponentKind::kSink, "file");
  m.ForBuffer("retyped", "file", "memory");
  auto rebuffered2 = m.ForComponent("rebuffered", ComponentKind::kSink, "file");
  m.ForBuffer("rebuffered", "file", "disk");
  EXPECT_GT(m.RemoveUnboundSeries(), 0u);

  std::string after = m.Serialize();
  EXPECT_EQ(Joined(Samples(after, {"component_id=\"gone\""})), "") << "a removed component's series stay";
  EXPECT_EQ(Joined(Samples(after, {"output=\"b\""})), "") << "a removed route output's series stays";
  EXPECT_EQ(Joined(Samples(after, {"component_id=\"retyped\"", "component_type=\"blackhole\""})), "")
      << "the series of a component's old type stay";
  EXPECT_EQ(Joined(Samples(after, {"component_id=\"rebuffered\"", "buffer_type=\"memory\""})), "")
      << "the series of a sink's old buffer stay";
  EXPECT_EQ(Samples(after, {"component_id=\"rebuffered\"", "buffer_type=\"disk\""}).size(), 6u);
  // What is still there keeps its value.
  EXPECT_EQ(MetricValue(after, "tributary_component_received_events_total", {{"component_id", "kept"}}), 5);
  EXPECT_EQ(MetricValue(after, "tributary_component_errors_total",
                        {{"component_id", "kept"}, {"error_type", "read_failed"}}),
            2);
  EXPECT_EQ(MetricValue(after, "tributary_component_errors_total",
                        {{"component_id", "kept"}, {"error_type", "from_the_server"}}),
            3)
      << "a series bound at run time by a component still there was removed";
  EXPECT_EQ(MetricValue(after, "tributary_component_sent_events_total",
                        {{"component_id", "split"}, {"output", "a"}}),
            4);
  EXPECT_EQ(MetricValue(after, "tributary_component_sent_events_total",
                        {{"component_id", "retyped"}, {"component_type", "file"}}),
            0);
  // Bound again later (e.g. the component comes back): a new series from 0.
  m.BeginGeneration();
  auto back = m.ForComponent("gone", ComponentKind::kSink, "blackhole");
  EXPECT_EQ(MetricValue(m.Serialize(), "tributary_component_sent_events_total", {{"component_id", "gone"}}), 0);
}

// A sink thread abandoned by the old topology may still update its series:
// they are not removed under it.
TEST(MetricsTest, TheSeriesOfAnAbandonedSinkAreKept) {
  Metrics m;
  auto stuck = m.ForComponent("stuck", ComponentKind::kSink, "elasticsearch");
  BufferMetrics buffer = m.ForBuffer("stuck", "elasticsearch", "memory");
  m.BeginGeneration();
  auto other = m.ForComponent("other", ComponentKind::kSink, "blackhole");
  EXPECT_EQ(m.RemoveUnboundSeries({"stuck"}), 0u);
  stuck->sent_events().Increment(1);  // still valid
  buffer.events->Set(3);
  std::string text = m.Serialize();
  EXPECT_EQ(MetricValue(text, "tributary_component_sent_events_total", {{"component_id", "stuck"}}), 1);
  EXPECT_EQ(MetricValue(text, "tributary_buffer_events", {{"component_id", "stuck"}}), 3);
}

// As in Vector, a component with named outputs (route) reports what it sent
// per output only: no series without `output`, which would stay 0.
TEST(MetricsTest, AComponentWithNamedOutputsHasNoUnlabelledSentEvents) {
  Metrics m;
  auto route = m.ForComponent("split", ComponentKind::kTransform, "route", {"a", "_unmatched"});
  auto plain = m.ForComponent("tag", ComponentKind::kTransform, "add_fields");
  EXPECT_FALSE(route->has_default_output());
  EXPECT_TRUE(plain->has_default_output());
  std::string text = m.Serialize();
  auto sent = Samples(text, {"tributary_component_sent_events_total{", "component_id=\"split\""});
  ASSERT_EQ(sent.size(), 2u) << Joined(sent);
  for (const auto& l : sent) EXPECT_NE(l.find("output=\""), std::string::npos) << l;
  EXPECT_EQ(Samples(text, {"tributary_component_sent_events_total{", "component_id=\"tag\""}).size(), 1u);
}

}  // namespace
}  // namespace tributary
