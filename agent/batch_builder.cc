#include "agent/batch_builder.h"

namespace tributary {

// Vectors given back by released batches. Enough are kept for the events
// in flight between a source and its slowest sink to be reused (small
// batches gathered for the sinks: SourceContext::SendMore), few enough
// that an idle source holds little memory. The byte bound keeps the
// 4,096 events for lines of up to 1 KiB; longer ones are not worth
// keeping (allocating a line's string costs little next to copying it),
// and an event's strings keep their capacity, which for lines of 100 KiB
// made an idle source hold all of an outage's lines (R3 of the resource
// probe: 300 MB after 3,000 of them).
struct BatchBuilder::Pool {
  static constexpr size_t kKeptEvents = 4096;
  static constexpr size_t kKeptBytes = 4 << 20;
  struct Kept {
    std::unique_ptr<std::vector<Event>> events;
    size_t bytes;
  };
  std::mutex mu;
  std::vector<Kept> free;
  size_t kept_events = 0;
  size_t kept_bytes = 0;

  void Give(std::vector<Event>* v, size_t bytes) {
    std::unique_ptr<std::vector<Event>> owned(v);
    std::lock_guard lock(mu);
    // Otherwise destroyed here, after the unlock.
    if (kept_events + v->size() > kKeptEvents || kept_bytes + bytes > kKeptBytes) return;
    kept_events += v->size();
    kept_bytes += bytes;
    free.push_back({std::move(owned), bytes});
  }
  std::unique_ptr<std::vector<Event>> Get() {
    std::lock_guard lock(mu);
    if (free.empty()) return nullptr;
    Kept k = std::move(free.back());
    free.pop_back();
    kept_events -= k.events->size();
    kept_bytes -= k.bytes;
    return std::move(k.events);
  }
};

BatchBuilder::BatchBuilder(size_t capacity) : pool_(std::make_shared<Pool>()), capacity_(capacity) {
  events_.reserve(capacity_);
}

Batch BatchBuilder::Take(size_t bytes) {
  events_.resize(size_);  // stale recycled events past the last one filled
  auto* full = new std::vector<Event>(std::move(events_));
  Batch batch(std::shared_ptr<std::vector<Event>>(
      full, [pool = pool_, bytes](std::vector<Event>* v) { pool->Give(v, bytes); }));
  batch.set_bytes(bytes);
  size_ = 0;
  if (auto recycled = pool_->Get()) {
    events_ = std::move(*recycled);
  } else {
    events_ = {};
    events_.reserve(capacity_);
  }
  return batch;
}

size_t BatchBuilder::kept_events() const {
  std::lock_guard lock(pool_->mu);
  return pool_->kept_events;
}

}  // namespace tributary
