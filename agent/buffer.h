#pragma once
// Sink buffers: where batches wait between the topology and a sink.
//
// The write side (Push) is called from source threads, the read side
// (SinkInput::Next) from the sink's thread. A memory buffer holds batches as
// they are, with their finalizers: they are acknowledged when the sink
// delivers them. A disk buffer (disk_buffer.h) acknowledges upstream as soon
// as a batch is durable on disk and hands the sink new batches whose
// finalizers advance its own read position.
//
// Lifecycle: Push* → Close() (no more pushes; the reader drains, then sees
// kClosed) or CloseKeeping() → destroyed. Abort() makes a blocked Push and Next return at
// once and fails what is left in memory (shutdown timeout). Release()
// stands for destruction when a stuck sink thread still holds the buffer.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "agent/component.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "config/config.h"

namespace tributary {

class Buffer : public SinkInput {
 public:
  // Hands a batch to the buffer. With when_full=block this waits for room
  // (backpressure); with drop_newest it drops the batch when full, counts
  // it and finalizes it Rejected. Returns false if the buffer was aborted
  // or closed (the batch is finalized Failed). While it waits for room,
  // `while_blocked` (if given) is run about every WhileBlocked::kInterval
  // on the calling thread, with no lock held.
  virtual bool Push(Batch batch, WhileBlocked* while_blocked = nullptr) = 0;
  virtual void Close() = 0;
  // Close() for a stop after which the same sink reads this buffer again
  // (a restart, or a reload that keeps the sink): a buffer that keeps its
  // events across it (on disk) hands out nothing more, and the reader sees
  // kClosed once the batches it has taken are done; what it did not take
  // waits there. Waiting for a slow sink to empty a disk backlog would hold
  // the sources back for the whole stop and then stop hard, sending again
  // what was in flight. A memory buffer drains, as with Close().
  virtual void CloseKeeping() { Close(); }
  virtual void Abort() = 0;
  // After Abort, when the sink thread reading the buffer is stuck and the
  // object must outlive it: gives back the files and locks the buffer
  // holds (a disk buffer's directory, for the next pipeline to open) and
  // never touches them again. Push and Next keep returning at once.
  virtual void Release() {}

  // What the buffer gave up for good, for the stop's report (read it once
  // the sink has stopped): `held`, the events it held when aborted;
  // `taken`, the events of batches the sink took from it and then failed
  // (gave up at a hard stop, or when it could never deliver again). A
  // memory buffer counts both; a disk buffer keeps what it holds and hands
  // failed batches out again, so it gives up nothing.
  struct GivenUp {
    uint64_t held = 0;
    uint64_t taken = 0;
  };
  virtual GivenUp given_up() const { return {}; }
};

// Holds batches in memory up to two bounds, whichever is reached first:
// `max_events` events and `max_bytes` bytes, counted as Batch::bytes()
// (what the events were read as at their source, the same figure as the
// tributary_buffer_bytes gauge: computing each event's size here would
// cost the hot path more than the rest of a push). A batch that is over
// either bound on its own still passes when the buffer is empty, so that
// it cannot wait for ever.
class MemoryBuffer final : public Buffer {
 public:
  // `name` (the sink id) is for log lines.
  MemoryBuffer(std::string name, uint64_t max_events, uint64_t max_bytes, bool drop_when_full,
               BufferMetrics metrics);
  ~MemoryBuffer() override;

  bool Push(Batch batch, WhileBlocked* while_blocked = nullptr) override;
  Result Next(Batch* out, std::chrono::milliseconds timeout) override;
  void Close() override;
  void Abort() override;
  GivenUp given_up() const override { return {held_given_up_.load(), taken_failed_.load()}; }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Batch> queue_;
  const std::string name_;
  uint64_t events_ = 0;
  uint64_t bytes_ = 0;
  const uint64_t max_events_;
  const uint64_t max_bytes_;
  const bool drop_when_full_;
  bool closed_ = false;
  bool aborted_ = false;
  BufferMetrics metrics_;
  RateLimiter full_limiter_;  // "dropped N events" under drop_newest
  std::atomic<uint64_t> held_given_up_{0};  // given_up().held
  // given_up().taken: each batch Next hands out carries a finalizer that
  // adds its size here if the batch is failed.
  std::atomic<uint64_t> taken_failed_{0};
};

// Where a sink's disk buffer lives: data_dir/buffer/<sink_id>.
std::string DiskBufferDir(const std::string& data_dir, const std::string& sink_id);

// How many events the disk buffer in `dir` holds undelivered, for a
// directory no sink of the configuration uses (a sink removed or renamed
// while its disk buffer held events). Opens it, recovering it as a start
// would, and closes it; an error if it cannot (locked, unreadable).
Result<uint64_t> UndeliveredInDiskBuffer(const std::string& dir);

// Builds the buffer a sink's config asks for. Disk buffers live in
// DiskBufferDir.
Result<std::unique_ptr<Buffer>> MakeBuffer(const config::BufferConfig& config, const std::string& sink_id,
                                           const std::string& sink_type, const std::string& data_dir,
                                           Metrics* metrics);

}  // namespace tributary
