#include "tests/support/compliance.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "tests/support/test_util.h"

namespace tributary::testing {

void ExpectComponentMetrics(const std::string& text, const std::string& id, const std::string& kind,
                            const std::string& type) {
  std::map<std::string, std::string> labels{{"component_id", id}, {"component_kind", kind}, {"component_type", type}};
  std::vector<std::string> required = {"tributary_component_received_events_total",
                                       "tributary_component_sent_events_total"};
  if (kind == "source") required.push_back("tributary_component_received_bytes_total");
  if (kind == "sink") required.push_back("tributary_component_sent_bytes_total");
  for (const auto& name : required) {
    EXPECT_TRUE(MetricValue(text, name, labels).has_value())
        << kind << " `" << id << "` (" << type << ") does not export " << name;
  }
  for (const char* intentional : {"true", "false"}) {
    auto l = labels;
    l["intentional"] = intentional;
    EXPECT_TRUE(MetricValue(text, "tributary_component_discarded_events_total", l).has_value())
        << kind << " `" << id << "` does not export tributary_component_discarded_events_total{intentional=\""
        << intentional << "\"}";
  }
}

}  // namespace tributary::testing
