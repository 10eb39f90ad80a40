#pragma once
// A fixed set of threads running submitted jobs in FIFO order.
//
// The topology uses one pool to run transforms over different batches at
// once (--threads); each source bounds how many of its batches are in
// flight, so the queue stays small. Submit is thread-safe. Stop runs what
// is queued, then joins; Submit after Stop runs the job on the caller.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tributary {

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> job);
  void Stop();
  size_t size() const { return threads_.size(); }

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tributary
