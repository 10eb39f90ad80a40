#include "agent/worker_pool.h"

#include <chrono>

#include "agent/log.h"
#include "agent/memory.h"

namespace tributary {

WorkerPool::WorkerPool(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] {
      NameThread("worker");
      Loop();
    });
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Submit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  job();
}

void WorkerPool::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void WorkerPool::Loop() {
  std::unique_lock lock(mu_);
  auto has_work = [&] { return stopping_ || !queue_.empty(); };
  bool collected = true;  // nothing allocated since this thread's heap was collected
  while (true) {
    // Once idle for a second after a job, the heap is collected (memory.h):
    // the events this thread made are freed by the sinks meanwhile.
    if (!collected && !cv_.wait_for(lock, std::chrono::seconds(1), has_work)) {
      lock.unlock();
      ReturnFreeMemory();
      collected = true;
      lock.lock();
      continue;
    }
    cv_.wait(lock, has_work);
    collected = false;
    if (queue_.empty()) return;  // stopping and drained
    auto job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job();
    job = nullptr;
    lock.lock();
  }
}

}  // namespace tributary
