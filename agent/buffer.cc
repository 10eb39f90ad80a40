#include "agent/buffer.h"

#include "agent/disk_buffer.h"

namespace tributary {

MemoryBuffer::MemoryBuffer(std::string name, uint64_t max_events, bool drop_when_full, BufferMetrics metrics)
    : name_(std::move(name)), max_events_(max_events), drop_when_full_(drop_when_full), metrics_(metrics) {}

MemoryBuffer::~MemoryBuffer() { Abort(); }

bool MemoryBuffer::Push(Batch batch) {
  const uint64_t n = batch.size();
  const uint64_t bytes = batch.bytes();
  std::unique_lock lock(mu_);
  // A batch larger than the whole buffer still passes once the buffer is empty.
  auto has_room = [&] { return aborted_ || closed_ || events_ == 0 || events_ + n <= max_events_; };
  if (!has_room()) {
    if (drop_when_full_) {
      lock.unlock();
      metrics_.discarded_full->Increment(static_cast<double>(n));
      LogLimited(full_limiter_, LogLevel::kWarn, name_,
                 "memory buffer is full (max_events " + std::to_string(max_events_) + "): dropped " +
                     std::to_string(n) + " events (when_full: drop_newest)");
      batch.Finalize(BatchStatus::kRejected);
      return true;
    }
    not_full_.wait(lock, has_room);
  }
  if (aborted_ || closed_) {
    lock.unlock();
    batch.Finalize(BatchStatus::kFailed);
    return false;
  }
  events_ += n;
  bytes_ += bytes;
  queue_.push_back(std::move(batch));
  metrics_.received_events->Increment(static_cast<double>(n));
  metrics_.events->Set(static_cast<double>(events_));
  metrics_.bytes->Set(static_cast<double>(bytes_));
  lock.unlock();
  not_empty_.notify_one();
  return true;
}

SinkInput::Result MemoryBuffer::Next(Batch* out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!not_empty_.wait_for(lock, timeout, [&] { return aborted_ || closed_ || !queue_.empty(); }))
    return Result::kTimeout;
  if (aborted_ || queue_.empty()) return Result::kClosed;
  *out = std::move(queue_.front());
  queue_.pop_front();
  events_ -= out->size();
  bytes_ -= out->bytes();
  metrics_.sent_events->Increment(static_cast<double>(out->size()));
  metrics_.events->Set(static_cast<double>(events_));
  metrics_.bytes->Set(static_cast<double>(bytes_));
  lock.unlock();
  not_full_.notify_all();
  return Result::kBatch;
}

void MemoryBuffer::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
}

void MemoryBuffer::Abort() {
  std::deque<Batch> left;
  {
    std::lock_guard lock(mu_);
    aborted_ = true;
    left.swap(queue_);
    events_ = 0;
    bytes_ = 0;
    metrics_.events->Set(0);
    metrics_.bytes->Set(0);
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  for (auto& b : left) b.Finalize(BatchStatus::kFailed);
}

}  // namespace tributary

namespace tributary {

Result<std::unique_ptr<Buffer>> MakeBuffer(const config::BufferConfig& config, const std::string& sink_id,
                                           const std::string& sink_type, const std::string& data_dir,
                                           Metrics* metrics) {
  const bool drop = config.when_full == "drop_newest";
  if (config.type == "memory") {
    return std::unique_ptr<Buffer>(
        new MemoryBuffer(sink_id, config.max_events, drop, metrics->ForBuffer(sink_id, sink_type, "memory")));
  }
  if (config.type == "disk") {
    DiskBufferOptions o;
    o.dir = data_dir + "/buffer/" + sink_id;
    if (Status st = PrepareStateDir(o.dir, "the buffered events"); !st.ok()) return st;
    o.name = sink_id;
    o.max_size = config.max_size.bytes;
    o.drop_when_full = drop;
    o.flush_interval = config.flush_interval_ms.get();
    auto b = DiskBuffer::Open(o, metrics->ForBuffer(sink_id, sink_type, "disk"));
    if (!b.ok()) return b.status();
    return std::unique_ptr<Buffer>(std::move(b).value());
  }
  return Status::InvalidArgument("buffer type `" + config.type + "` is not available in this build");
}

}  // namespace tributary
