#pragma once
// Batches and end-to-end acknowledgements.
//
// A source emits events in batches. Each source batch gets one Finalizer: a
// reference-counted record of the batch's fate that every copy of the batch
// (fan-out to several sinks, named outputs of a route) holds a FinalizerRef
// to. When the last reference is released the finalizer fires its callback
// once, on whichever thread released it, with the worst status any holder
// reported: Delivered < Rejected < Failed. Sources commit their position
// only for batches finalized Delivered or Rejected, in order.
//
// Events are held copy-on-write: fanning a batch out to several sinks shares
// one event vector; mutable_events() copies only if it is shared.
//
// Thread-safety: a Batch is owned by one thread at a time; Finalizer
// reference counting is atomic.

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "agent/event.h"

namespace tributary {

enum class BatchStatus : uint8_t {
  kDelivered = 0,  // written durably or accepted by the peer
  kRejected = 1,   // refused permanently by the peer (counted, not retried)
  kFailed = 2,     // not delivered (e.g. dropped at shutdown): do not commit
};

const char* BatchStatusName(BatchStatus s);

class Finalizer {
 public:
  using Callback = std::function<void(BatchStatus)>;

  // Creates a finalizer with one reference owned by the returned ref.
  static class FinalizerRef Create(Callback callback);

 private:
  friend class FinalizerRef;
  explicit Finalizer(Callback cb) : callback_(std::move(cb)) {}
  void AddRef() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Release(BatchStatus s);

  std::atomic<int> refs_{1};
  std::atomic<uint8_t> status_{0};
  Callback callback_;
};

// An owning reference to a Finalizer. Destroying it without Release()
// releases with kFailed: a batch dropped on a path nobody thought about is
// read again after a restart (a duplicate) rather than checkpointed as
// delivered (a loss). Every intended end of a batch says its status.
class FinalizerRef {
 public:
  FinalizerRef() = default;
  FinalizerRef(const FinalizerRef& o) : f_(o.f_) {
    if (f_) f_->AddRef();
  }
  FinalizerRef(FinalizerRef&& o) noexcept : f_(o.f_) { o.f_ = nullptr; }
  FinalizerRef& operator=(FinalizerRef o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  ~FinalizerRef() { Release(BatchStatus::kFailed); }

  // Records a status (the worst wins) and drops this reference.
  void Release(BatchStatus s) {
    if (f_) {
      Finalizer* f = f_;
      f_ = nullptr;
      f->Release(s);
    }
  }
  explicit operator bool() const { return f_ != nullptr; }

 private:
  friend class Finalizer;
  explicit FinalizerRef(Finalizer* f) : f_(f) {}
  Finalizer* f_ = nullptr;
};

class Batch {
 public:
  Batch() : events_(std::make_shared<std::vector<Event>>()) {}
  explicit Batch(std::vector<Event> events)
      : events_(std::make_shared<std::vector<Event>>(std::move(events))) {}

  const std::vector<Event>& events() const { return *events_; }
  std::vector<Event>& mutable_events() {
    if (events_.use_count() > 1) events_ = std::make_shared<std::vector<Event>>(*events_);
    return *events_;
  }
  size_t size() const { return events_->size(); }
  bool empty() const { return events_->empty(); }

  // Raw bytes this batch stands for at its source (for byte metrics).
  size_t bytes() const { return bytes_; }
  void set_bytes(size_t b) { bytes_ = b; }

  std::vector<FinalizerRef>& finalizers() { return finalizers_; }
  void add_finalizer(FinalizerRef f) { finalizers_.push_back(std::move(f)); }
  // Moves other's finalizers into this batch (when merging batches).
  void take_finalizers(Batch& other);
  // Releases every finalizer with status s (the batch's fate is known).
  void Finalize(BatchStatus s);

  // A batch sharing this one's events and finalizers (cheap fan-out).
  Batch ShareCopy() const { return Batch(*this); }
  // A batch with the same finalizers and no events, to fill with a subset.
  Batch EmptyWithFinalizers() const;

  Batch(Batch&&) noexcept = default;
  Batch& operator=(Batch&&) noexcept = default;

 private:
  Batch(const Batch&) = default;
  std::shared_ptr<std::vector<Event>> events_;
  std::vector<FinalizerRef> finalizers_;
  size_t bytes_ = 0;
};

}  // namespace tributary
