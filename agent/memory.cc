#include "agent/memory.h"

#include <atomic>
#include <chrono>
#include <mutex>

// Weak: resolved when the binary is linked with mimalloc (TRIBUTARY_MIMALLOC),
// null in the tests and the sanitizer builds, which use the C library's
// allocator.
#if __has_include(<mimalloc.h>)
#include <mimalloc.h>
#pragma weak mi_collect
#pragma weak mi_option_get
#pragma weak mi_option_set
#define TRIBUTARY_HAVE_MIMALLOC_H 1
#endif

namespace tributary {

namespace {

using Clock = std::chrono::steady_clock;

#ifdef TRIBUTARY_HAVE_MIMALLOC_H
bool HaveMimalloc() { return &mi_collect != nullptr && &mi_option_get != nullptr && &mi_option_set != nullptr; }

std::mutex g_mu;
long g_saved_delay = -1;  // the decommit_delay to restore; -1 while not releasing
Clock::time_point g_release_until;
std::atomic<int64_t> g_release_until_ns{0};  // for the lock-free check in ReleasingMemory
#endif

}  // namespace

void ReleaseMemorySoon() {
#ifdef TRIBUTARY_HAVE_MIMALLOC_H
  if (!HaveMimalloc()) return;
  const auto until = Clock::now() + kReleaseWindow;
  // Called per batch while a big buffer drains: the common case is
  // already releasing, with a deadline that needs no exact update.
  if (g_release_until_ns.load(std::memory_order_relaxed) > (until - std::chrono::seconds(1)).time_since_epoch().count())
    return;
  std::lock_guard lock(g_mu);
  if (g_saved_delay < 0) {
    g_saved_delay = mi_option_get(mi_option_decommit_delay);
    mi_option_set(mi_option_decommit_delay, 0);
  }
  g_release_until = until;
  g_release_until_ns.store(until.time_since_epoch().count(), std::memory_order_relaxed);
#endif
}

void ReturnFreeMemory() {
#ifdef TRIBUTARY_HAVE_MIMALLOC_H
  if (!HaveMimalloc()) return;
  std::lock_guard lock(g_mu);
  if (g_saved_delay < 0) {
    // Pages this collect empties go back at once; those emptied earlier
    // wait for their segment's next use (memory.h).
    const long delay = mi_option_get(mi_option_decommit_delay);
    mi_option_set(mi_option_decommit_delay, 0);
    mi_collect(false);
    mi_option_set(mi_option_decommit_delay, delay);
    return;
  }
  mi_collect(false);
  if (Clock::now() >= g_release_until) {
    mi_option_set(mi_option_decommit_delay, g_saved_delay);
    g_saved_delay = -1;
    g_release_until_ns.store(0, std::memory_order_relaxed);
  }
#endif
}

void ReturnFreeMemoryWhenIdle() {
  thread_local Clock::time_point next;
  const auto now = Clock::now();
  if (now < next) return;
  next = now + std::chrono::seconds(1);
  ReturnFreeMemory();
}

}  // namespace tributary
