#pragma once
// `tributary test`: runs the unit tests of a config's `tests:` section.
//
//   tests:
//     - name: <text>
//       inputs:                      # fed in order
//         - insert_at: <transform id>
//           type: raw                # raw: `value` becomes `message` (plus `timestamp`)
//           value: '<line>'
//         - insert_at: <transform id>
//           type: log                # log: `log_fields` is the event
//           log_fields: { status: 500, path: /api/x }
//       outputs:
//         - extract_from: <transform id>[.<output>]
//           conditions: [ <condition>... ]   # docs/conditions.md; all must hold
//       no_outputs_from: [<transform id>[.<output>]...]
//
// Each test builds the config's transforms afresh, pushes its inputs
// through the transform graph (sources and sinks are not run), and
// collects what every transform output emitted. An `outputs` entry passes
// if at least one event extracted from it meets all its conditions;
// `no_outputs_from` passes if nothing came out there.

#include <ostream>

#include "config/config.h"

namespace tributary {

// Runs every test and writes a report to `out`. Returns 0 if all passed,
// 1 if any failed, 78 if the tests section itself is invalid (the problems
// are written with file:line:column).
int RunConfigTests(const config::Config& config, std::ostream& out);

// Checks the `tests:` section without running it (for `validate`): false,
// with the problems in `diag`, if it is invalid.
bool CheckConfigTests(const config::Config& config, config::Diagnostics* diag);

}  // namespace tributary
