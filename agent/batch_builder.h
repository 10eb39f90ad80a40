#pragma once
// BatchBuilder: how a source fills batches without allocating every event
// anew. A batch's event vector comes back to the builder that made it once
// every holder (sinks, buffers, fan-out copies) has released it; the
// source then overwrites those events in place, so a line's message is
// copied into a string that already has the capacity, and the event's
// field vector, its strings and its memory stay where they were. Reading
// a file this way costs no allocation per line in the steady state, and
// sinks no longer free three blocks per event on another core.
//
// A recycled event holds whatever its last holder left in it (transforms
// may have added, renamed or moved fields): the source clears it and
// appends its fields again, which write over the cleared ones in place
// (event.h), so nothing of the earlier line is left and, once the shapes
// repeat, nothing is allocated either.
//
// What is kept is bounded twice: in events, and in the bytes the batches
// stood for at their source (Batch::bytes()), since an event keeps its
// strings' capacity: a source that read an outage's worth of 100 KiB lines
// must not hold that much memory, idle, once they are delivered. Those are
// freed when released; the next long lines are allocated anew.
//
// Thread-safety: one thread uses a builder; the vectors come back from any
// thread (a mutex guards the few kept).

#include <memory>
#include <mutex>
#include <vector>

#include "agent/batch.h"
#include "agent/event.h"

namespace tributary {

class BatchBuilder {
 public:
  // `capacity`: the usual number of events per batch.
  explicit BatchBuilder(size_t capacity);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The next event to fill: one from an earlier batch, to overwrite, or a
  // new empty one.
  Event& Next() {
    if (size_ < events_.size()) return events_[size_++];
    ++size_;
    return events_.emplace_back();
  }

  // The events so far as a batch of `bytes` (Batch::bytes(): what they
  // were read as); the builder starts the next one.
  Batch Take(size_t bytes);

  // Released events held for reuse (for tests).
  size_t kept_events() const;

 private:
  struct Pool;
  std::shared_ptr<Pool> pool_;
  std::vector<Event> events_;
  size_t size_ = 0;
  size_t capacity_;
};

}  // namespace tributary
