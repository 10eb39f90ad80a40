#include "agent/batch.h"

namespace tributary {

const char* BatchStatusName(BatchStatus s) {
  switch (s) {
    case BatchStatus::kDelivered: return "delivered";
    case BatchStatus::kRejected: return "rejected";
    case BatchStatus::kFailed: return "failed";
  }
  return "unknown";
}

FinalizerRef Finalizer::Create(Callback callback) {
  return FinalizerRef(new Finalizer(std::move(callback)));
}

void Finalizer::Release(BatchStatus s) {
  uint8_t v = static_cast<uint8_t>(s);
  uint8_t cur = status_.load(std::memory_order_relaxed);
  while (v > cur && !status_.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (callback_) callback_(static_cast<BatchStatus>(status_.load(std::memory_order_relaxed)));
    delete this;
  }
}

void Batch::take_finalizers(Batch& other) {
  for (auto& f : other.finalizers_) finalizers_.push_back(std::move(f));
  other.finalizers_.clear();
}

void Batch::Finalize(BatchStatus s) {
  for (auto& f : finalizers_) f.Release(s);
  finalizers_.clear();
}

Batch Batch::EmptyWithFinalizers() const {
  Batch b;
  b.finalizers_ = finalizers_;
  return b;
}

}  // namespace tributary
