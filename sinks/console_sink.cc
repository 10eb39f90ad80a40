#include "sinks/console_sink.h"

#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "config/registry.h"

namespace tributary {

const config::Schema<ConsoleSink::Config>& ConsoleSink::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("target", &Config::target, "Where to write.").OneOf({"stdout", "stderr"});
    s.Field("encoding", &Config::encoding, "How events are written.");
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Sink>> ConsoleSink::Build(const Config& config, BuildContext& ctx) {
  return std::unique_ptr<Sink>(new ConsoleSink(config, ctx.metrics));
}

ConsoleSink::ConsoleSink(const Config& config, ComponentMetrics* metrics)
    : fd_(config.target == "stderr" ? STDERR_FILENO : STDOUT_FILENO), encoder_(config.encoding), metrics_(metrics) {}

// Writes all of buf to fd, resuming after short writes and EINTR. A pipe
// whose reader has exited (`tributary ... | head`) is gone for good.
static Status WriteAll(int fd, const std::string& buf) {
  size_t off = 0;
  while (off < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + off, buf.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE)
        return Status::Cancelled(std::string(fd == STDOUT_FILENO ? "stdout" : "stderr") +
                                 " was closed by its reader (broken pipe)");
      return Status::FromErrno("write", errno);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// One lock per stream, for every console sink of the process: a batch is
// written whole before another console sink writes to the same stream. A
// write(2) of more than PIPE_BUF bytes to a pipe is not atomic: when the
// pipe is full, it is copied in as the reader makes room, and other
// writers' bytes get in between. So a reload whose drain timed out while
// the old console sink was blocked in such a write (its reader slow or
// paused) left that thread writing the rest of its batch while the new
// pipeline's console sink wrote its own: stdout had torn lines. So had two
// console sinks of one configuration writing to a slow reader.
static std::mutex& StreamLock(int fd) {
  static std::mutex out, err;
  return fd == STDERR_FILENO ? err : out;
}

Status ConsoleSink::Write(const Batch& batch) {
  buf_.clear();
  for (const Event& e : batch.events()) {
    encoder_.Encode(e, &buf_);
    buf_.push_back('\n');
  }
  std::lock_guard lock(StreamLock(fd_));
  Status s = WriteAll(fd_, buf_);
  if (s.ok()) metrics_->sent_bytes().Increment(static_cast<double>(buf_.size()));
  return s;
}

TRIBUTARY_REGISTER_SINK("console", ConsoleSink);

}  // namespace tributary
