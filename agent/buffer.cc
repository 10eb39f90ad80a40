#include "agent/buffer.h"

#include <filesystem>

#include "agent/disk_buffer.h"
#include "agent/log.h"
#include "agent/memory.h"

namespace tributary {

MemoryBuffer::MemoryBuffer(std::string name, uint64_t max_events, uint64_t max_bytes, bool drop_when_full,
                           BufferMetrics metrics)
    : name_(std::move(name)),
      max_events_(max_events),
      max_bytes_(max_bytes),
      drop_when_full_(drop_when_full),
      metrics_(metrics) {}

MemoryBuffer::~MemoryBuffer() { Abort(); }

bool MemoryBuffer::Push(Batch batch, WhileBlocked* while_blocked) {
  const uint64_t n = batch.size();
  const uint64_t bytes = batch.bytes();
  std::unique_lock lock(mu_);
  // A batch larger than the whole buffer still passes once the buffer is empty.
  auto has_room = [&] {
    return aborted_ || closed_ || events_ == 0 || (events_ + n <= max_events_ && bytes_ + bytes <= max_bytes_);
  };
  if (!has_room()) {
    if (drop_when_full_) {
      const std::string bound = events_ + n > max_events_ ? "max_events " + std::to_string(max_events_)
                                                          : "max_bytes " + config::FormatByteSize(max_bytes_);
      lock.unlock();
      metrics_.discarded_full->Increment(static_cast<double>(n));
      LogLimited(full_limiter_, LogLevel::kWarn, name_,
                 "memory buffer is full (" + bound + "): dropped " + std::to_string(n) +
                     " events (when_full: drop_newest)");
      batch.Finalize(BatchStatus::kRejected);
      return true;
    }
    if (while_blocked == nullptr) {
      not_full_.wait(lock, has_room);
    } else {
      while (!not_full_.wait_for(lock, WhileBlocked::kInterval, has_room)) {
        lock.unlock();
        while_blocked->Work();
        lock.lock();
      }
    }
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
  // An outage's worth of events is about to be freed (memory.h).
  if (bytes_ >= kReleaseBytes) ReleaseMemorySoon();
  *out = std::move(queue_.front());
  queue_.pop_front();
  // Counts the batch in given_up().taken if the sink fails it: the worst
  // status of the batch's holders (a sink that splits or merges batches
  // carries the finalizers along), so a batch partly delivered and then
  // failed counts whole, as its source reads it again whole.
  out->add_finalizer(Finalizer::Create([counter = &taken_failed_, n = out->size()](BatchStatus s) {
    if (s == BatchStatus::kFailed) counter->fetch_add(n, std::memory_order_relaxed);
  }));
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
    held_given_up_ += events_;
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

namespace {

// A memory buffer behind what a disk buffer left in the sink's directory
// when its config changed from `type: disk` to `type: memory`: the sink
// reads the disk buffer's events first, acknowledging them there, then the
// memory buffer's. The events in the directory were acknowledged upstream
// when they were written (their sources have moved past them), so nothing
// else would ever deliver them. Once they are all delivered the directory
// is removed, when the buffer is destroyed.
class DrainingBuffer final : public Buffer {
 public:
  DrainingBuffer(std::unique_ptr<DiskBuffer> leftover, std::unique_ptr<Buffer> main, std::string dir)
      : leftover_(std::move(leftover)), main_(std::move(main)), dir_(std::move(dir)) {
    leftover_->Close();  // nothing more is written there: Next says kClosed once it is drained
  }
  ~DrainingBuffer() override {
    if (released_) return;
    const bool drained = leftover_->stats().events == 0;
    leftover_.reset();  // writes the ledger, unlocks the directory
    if (drained) RemoveBufferDir(dir_);
  }

  bool Push(Batch batch, WhileBlocked* while_blocked = nullptr) override {
    return main_->Push(std::move(batch), while_blocked);
  }
  Result Next(Batch* out, std::chrono::milliseconds timeout) override {
    if (!leftover_read_) {
      Result r = leftover_->Next(out, timeout);
      if (r != Result::kClosed) return r;
      leftover_read_ = true;
    }
    return main_->Next(out, timeout);
  }
  void Close() override { main_->Close(); }
  void CloseKeeping() override {
    leftover_->CloseKeeping();  // the rest is delivered first by the next one
    main_->Close();
  }
  void Abort() override {
    leftover_->Abort();
    main_->Abort();
  }
  void Release() override {
    released_ = true;
    leftover_->Release();
    main_->Release();
  }
  GivenUp given_up() const override { return main_->given_up(); }

  static void RemoveBufferDir(const std::string& dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) TLOG_WARN("", "cannot remove the drained disk buffer directory " + dir + ": " + ec.message());
  }

 private:
  std::unique_ptr<DiskBuffer> leftover_;
  std::unique_ptr<Buffer> main_;
  const std::string dir_;
  bool leftover_read_ = false;  // the sink's thread only
  bool released_ = false;
};

// Whether a disk buffer's directory holds a segment with anything in it
// (what a drained buffer leaves is empty segments, a ledger and a lock).
bool HoldsSegments(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("segment-") && name.ends_with(".log") && e.is_regular_file(ec) && e.file_size(ec) > 0 && !ec)
      return true;
  }
  return false;
}

}  // namespace

std::string DiskBufferDir(const std::string& data_dir, const std::string& sink_id) {
  return data_dir + "/buffer/" + sink_id;
}

Result<uint64_t> UndeliveredInDiskBuffer(const std::string& dir) {
  if (!HoldsSegments(dir)) return uint64_t{0};
  DiskBufferOptions o;
  o.dir = dir;
  o.name = std::filesystem::path(dir).filename().string();
  o.max_size = ~0ull;  // nothing is written to it
  Metrics unserved;    // series of no sink: not on /metrics
  auto b = DiskBuffer::Open(o, unserved.ForBuffer(o.name, "", "disk"));
  if (!b.ok()) return b.status();
  return (*b)->stats().events;
}

Result<std::unique_ptr<Buffer>> MakeBuffer(const config::BufferConfig& config, const std::string& sink_id,
                                           const std::string& sink_type, const std::string& data_dir,
                                           Metrics* metrics) {
  const bool drop = config.when_full == "drop_newest";
  DiskBufferOptions o;
  o.dir = DiskBufferDir(data_dir, sink_id);
  o.name = sink_id;
  o.flush_interval = config.flush_interval_ms.get();
  if (config.type == "memory") {
    std::unique_ptr<Buffer> memory(
        new MemoryBuffer(sink_id, config.max_events, config.max_bytes.bytes, drop,
                         metrics->ForBuffer(sink_id, sink_type, "memory")));
    if (!HoldsSegments(o.dir)) return memory;
    // The sink had a disk buffer before (a reload or restart changed its
    // type): deliver what it still holds first. Looked at first without
    // the sink's disk series, which an empty one would leave on /metrics.
    if (auto n = UndeliveredInDiskBuffer(o.dir); n.ok() && *n == 0) {
      DrainingBuffer::RemoveBufferDir(o.dir);
      return memory;
    }
    o.max_size = ~0ull;  // nothing is written to it
    auto b = DiskBuffer::Open(o, metrics->ForBuffer(sink_id, sink_type, "disk"));
    if (!b.ok()) {
      TLOG_WARN(sink_id, "the disk buffer in " + o.dir + " still holds events from when this sink had "
                         "`buffer: { type: disk }`, but cannot be read (" + b.status().message() +
                         "); they are not delivered until the sink's buffer is `type: disk` again");
      return memory;
    }
    std::unique_ptr<DiskBuffer> leftover = std::move(b).value();
    const uint64_t events = leftover->stats().events;
    if (events == 0) {
      leftover.reset();
      DrainingBuffer::RemoveBufferDir(o.dir);
      return memory;
    }
    TLOG_WARN(sink_id, "the disk buffer in " + o.dir + " holds " + std::to_string(events) +
                           " undelivered events from when this sink had `buffer: { type: disk }`: delivering "
                           "them before the events of its memory buffer");
    return std::unique_ptr<Buffer>(new DrainingBuffer(std::move(leftover), std::move(memory), o.dir));
  }
  if (config.type == "disk") {
    if (Status st = PrepareStateDir(o.dir, "the buffered events"); !st.ok()) return st;
    o.max_size = config.max_size.bytes;
    o.drop_when_full = drop;
    auto b = DiskBuffer::Open(o, metrics->ForBuffer(sink_id, sink_type, "disk"));
    if (!b.ok()) return b.status();
    return std::unique_ptr<Buffer>(std::move(b).value());
  }
  return Status::InvalidArgument("buffer type `" + config.type + "` is not available in this build");
}

}  // namespace tributary
