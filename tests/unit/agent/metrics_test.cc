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
