#include "agent/batch_builder.h"

namespace tributary {

// Vectors given back by released batches. Enough are kept for the events
// in flight between a source and its slowest sink to be reused (small
// batches gathered for the sinks: SourceContext::SendMore), few enough
// that an idle source holds little memory.
struct BatchBuilder::Pool {
  static constexpr size_t kKeptEvents = 4096;
  std::mutex mu;
  std::vector<std::unique_ptr<std::vector<Event>>> free;
  size_t kept_events = 0;

  void Give(std::vector<Event>* v) {
    std::unique_ptr<std::vector<Event>> owned(v);
    std::lock_guard lock(mu);
    if (kept_events + v->size() > kKeptEvents) return;  // destroyed here, after the unlock
    kept_events += v->size();
    free.push_back(std::move(owned));
  }
  std::unique_ptr<std::vector<Event>> Get() {
    std::lock_guard lock(mu);
    if (free.empty()) return nullptr;
    auto v = std::move(free.back());
    free.pop_back();
    kept_events -= v->size();
    return v;
  }
};

BatchBuilder::BatchBuilder(size_t capacity) : pool_(std::make_shared<Pool>()), capacity_(capacity) {
  events_.reserve(capacity_);
}

Batch BatchBuilder::Take() {
  events_.resize(size_);  // stale recycled events past the last one filled
  auto* full = new std::vector<Event>(std::move(events_));
  Batch batch(std::shared_ptr<std::vector<Event>>(full, [pool = pool_](std::vector<Event>* v) { pool->Give(v); }));
  size_ = 0;
  if (auto recycled = pool_->Get()) {
    events_ = std::move(*recycled);
  } else {
    events_ = {};
    events_.reserve(capacity_);
  }
  return batch;
}

}  // namespace tributary
