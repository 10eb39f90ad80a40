#pragma once
// The component metric spec (DESIGN.md "Admin API and internal metrics"), as
// a check every component's tests can run against a /metrics scrape:
// every component exports received/sent event counts and discarded counts
// with component_id, component_kind and component_type labels; sources also
// received bytes; sinks also sent bytes.

#include <string>

namespace tributary::testing {

// Adds a GoogleTest failure for each required metric missing from
// `metrics_text` (Prometheus text format) for this component.
void ExpectComponentMetrics(const std::string& metrics_text, const std::string& id, const std::string& kind,
                            const std::string& type);

}  // namespace tributary::testing
