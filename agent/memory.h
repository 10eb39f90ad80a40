#pragma once
// Giving memory back to the operating system after a peak (R3 of the
// resource probe: after a sink outage of 100 KiB lines the idle agent kept
// its 323 MB peak for ever).
//
// The binary's allocator, mimalloc 2.0 (CMakeLists.txt), keeps what a
// thread allocated in that thread's heap. A block freed by another thread
// (events are built on a source's or a worker's thread and freed on a
// sink's) goes back to its page only when the owning thread next looks at
// that page; and a page left empty is decommitted after `decommit_delay`
// (25 ms), a delay that mimalloc 2.0 checks only on later allocations in
// the same segment, so a thread idle after an outage never gets there.
// Two things bring the memory back:
// - The threads that allocate events call ReturnFreeMemory... when they
//   wait with nothing to do: it collects the calling thread's heap,
//   taking back what other threads freed, with decommit_delay 0 for the
//   time of the call, so that the pages it empties go back at once.
// - A memory buffer that holds much (MemoryBuffer, kReleaseBytes) calls
//   ReleaseMemorySoon as it hands batches out: decommit_delay is 0 for
//   every thread until kReleaseWindow after the last such call, so that
//   what the sinks free as an outage drains (events, request bodies)
//   goes back when it is freed. The next idle collect after the window
//   restores the delay. Outside such times the delay stays mimalloc's:
//   0 for good cost 4-5 % more CPU with json_parser on two threads
//   (bench/RESULTS.md).
// Without mimalloc (the tests, the sanitizer builds) these do nothing.
//
// Thread-safety: any thread; a collect acts on the calling thread's heap.

#include <chrono>
#include <cstdint>

namespace tributary {

// A memory buffer holding at least this much releases memory as it drains.
inline constexpr uint64_t kReleaseBytes = 16ull << 20;
inline constexpr std::chrono::seconds kReleaseWindow{10};

// Frees go back to the system at once from now until kReleaseWindow after
// the last call (cheap when called again within the window).
void ReleaseMemorySoon();

// Collects this thread's heap: a pass over its pages, some microseconds
// for an agent's usual heap.
void ReturnFreeMemory();

// ReturnFreeMemory at most once a second: for loops that wake up often
// while idle (a file source's poll, a sink's wait for input).
void ReturnFreeMemoryWhenIdle();

}  // namespace tributary
