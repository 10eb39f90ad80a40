#pragma once
// The command line: `tributary [run|validate|test|graph] ...`.
// Returns the process exit code: 0 ok, 78 (EX_CONFIG) invalid configuration,
// 64 (EX_USAGE) a command line that cannot be parsed, 130 a shutdown forced
// by a second SIGTERM/SIGINT, 1 any other failure.

namespace tributary {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitConfig = 78;
// Apart from 1: `test` exits 1 when a test fails, and CI must tell a typo in
// its own script from that.
inline constexpr int kExitUsage = 64;
inline constexpr int kExitForced = 130;

int Main(int argc, char** argv);

}  // namespace tributary
