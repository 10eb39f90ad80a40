#pragma once
// Retry pacing: exponential backoff with full jitter, and a sleep that a
// stop request cuts short. Not thread-safe (one per retry loop).

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <stop_token>

namespace tributary {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max), next_(initial), rng_(std::random_device{}()) {}

  // The delay before the next attempt: uniformly random in [cap/2, cap],
  // where cap doubles on each call up to the maximum.
  std::chrono::milliseconds Next() {
    auto cap = next_;
    next_ = std::min(max_, next_ * 2);
    std::uniform_int_distribution<long long> d(cap.count() / 2, cap.count());
    return std::chrono::milliseconds(d(rng_));
  }
  void Reset() { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, next_;
  std::mt19937_64 rng_;
};

// Sleeps for `d` unless `stop` is requested first. False if it was.
inline bool SleepFor(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

}  // namespace tributary
