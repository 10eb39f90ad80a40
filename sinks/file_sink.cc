#include "sinks/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "agent/env.h"
#include "config/registry.h"

namespace tributary {

const config::Schema<FileSink::Config>& FileSink::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("path", &Config::path,
            "File to append to; strftime conversions (%Y, %m, %d, ...) use the event timestamp (UTC) and `{{ field }}` inserts a field. "
            "A `%` that is not a conversion is an error; `%%` is a literal `%`.")
        .Required()
        .Check<std::string>(Template::CheckTarget);
    s.Field("encoding", &Config::encoding, "How events are written.");
    s.Field("idle_timeout_secs", &Config::idle_timeout_secs, "Close a file after this long without writes.").Min(0);
    s.Field("max_open_files", &Config::max_open_files,
            "Most files kept open at once (a `path` template with many values); past it, and when the process runs "
            "out of descriptors, the least recently written file is closed.")
        .Min(1);
    s.Field("fsync", &Config::fsync, "fsync each batch before acknowledging it (slower; survives power loss).");
    s.Validate([](const Config& c, const YAML::Node& node, const config::ParseContext& ctx) {
      config::WarnIfRelative(node["path"], c.path, ctx.Child("path"));
    });
    return s;
  }();
  return s;
}

namespace {

// A path with no strftime conversion and no template: the same file for
// every event, which can be checked before the first one.
bool IsFixedPath(const std::string& path) {
  return path.find('%') == std::string::npos && path.find("{{") == std::string::npos;
}

// "" unless fixed `path` is a directory, which would fail every batch
// (EISDIR): then the problem and its fix.
std::string DirectoryInsteadOfFile(const std::string& path) {
  if (!IsFixedPath(path)) return "";
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return "";
  return "it is a directory: name a file in it, such as " + (std::filesystem::path(path) / "tributary.log").string();
}

}  // namespace

Result<std::unique_ptr<Sink>> FileSink::Build(const Config& config, BuildContext& ctx) {
  auto t = Template::Parse(config.path);
  if (!t.ok()) return t.status();
  if (std::string problem = DirectoryInsteadOfFile(config.path); !problem.empty())
    return Status::InvalidArgument("path `" + config.path + "`: " + problem);
  return std::unique_ptr<Sink>(new FileSink(config, std::move(t).value(), ctx));
}

void FileSink::CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out) {
  if (!IsFixedPath(config.path)) return;
  std::string problem = DirectoryInsteadOfFile(config.path);
  out->push_back({"path " + config.path + " names a file", problem.empty(), problem});
  if (!problem.empty()) return;
  // Reported, not refused by `run`: the destination may be a mount that is
  // not there yet, and the sink retries (its buffer fills meanwhile).
  Status s = ProbeAppendable(config.path);
  out->push_back({"path " + config.path + " can be written", s.ok(),
                  s.ok() ? "" : s.message() + ": the sink retries each batch until it can", true});
}

FileSink::FileSink(const Config& config, Template path, BuildContext& ctx)
    : path_(std::move(path)),
      encoder_(config.encoding),
      idle_timeout_(config.idle_timeout_secs.get()),
      max_open_(config.max_open_files),
      fsync_(config.fsync),
      metrics_(ctx.metrics),
      render_errors_(&ctx.metrics->Errors("template_failed", "processing")) {}

FileSink::~FileSink() {
  for (auto& [p, f] : files_) ::close(f.fd);
}

Result<int> FileSink::Open(const std::string& path, off_t* size) {
  struct stat st;
  auto it = files_.find(path);
  if (it != files_.end()) {
    // Still the file at that path? One that logrotate renamed or that was
    // deleted is let go, and the path opened (created) again: writing on
    // into a deleted file would lose the lines.
    if (::stat(path.c_str(), &st) == 0 && st.st_dev == it->second.dev && st.st_ino == it->second.ino) {
      *size = st.st_size;
      return it->second.fd;
    }
    ::close(it->second.fd);
    files_.erase(it);
  }
  auto opened = OpenWithin(path);
  if (!opened.ok()) return opened.status();
  const int fd = *opened;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno("fstat " + path, err);
  }
  files_[path] = OpenFile{fd, std::chrono::steady_clock::now(), st.st_dev, st.st_ino};
  *size = st.st_size;
  return fd;
}

Result<int> FileSink::OpenWithin(const std::string& path) {
  while (files_.size() >= max_open_) CloseLeastRecent();
  auto fd = OpenForAppend(path);
  // Out of descriptors (the process's limit is lower than max_open_files,
  // or others hold them): give back half of ours and try once more.
  if (!fd.ok() && fd.status().code() == StatusCode::kResourceExhausted && !files_.empty()) {
    for (size_t n = (files_.size() + 1) / 2; n > 0; --n) CloseLeastRecent();
    fd = OpenForAppend(path);
  }
  return fd;
}

void FileSink::CloseLeastRecent() {
  auto oldest = files_.begin();
  for (auto it = files_.begin(); it != files_.end(); ++it)
    if (it->second.last_write < oldest->second.last_write) oldest = it;
  if (oldest == files_.end()) return;
  ::close(oldest->second.fd);
  files_.erase(oldest);
}

Status FileSink::Write(const Batch& batch) {
  for (auto& [p, buf] : pending_) buf.clear();
  std::string path;
  discarded_ = 0;
  std::string first_problem;
  for (const Event& e : batch.events()) {
    path.clear();
    Status s = path_.Render(e, &path);
    if (!s.ok()) {
      if (discarded_++ == 0) first_problem = s.message();
      continue;
    }
    std::string& buf = pending_[path];
    encoder_.Encode(e, &buf);
    buf.push_back('\n');
  }
  // A batch is appended whole or not at all: after a failure (a full
  // disk takes part of a write), every file this batch has grown is cut
  // back to where it ended, so that the retry of the batch neither repeats
  // its first lines nor glues a line to the torn end of another.
  written_.clear();
  for (auto& [p, buf] : pending_) {
    if (buf.empty()) continue;
    off_t size = 0;
    auto fd = Open(p, &size);
    if (!fd.ok()) return Undo(fd.status());
    const OpenFile& of = files_[p];
    written_.push_back({p, size, of.dev, of.ino});
    size_t off = 0;
    while (off < buf.size()) {
      ssize_t n = ::write(*fd, buf.data() + off, buf.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Undo(Status::FromErrno("write " + p, errno));
      }
      off += static_cast<size_t>(n);
    }
    if (fsync_ && ::fdatasync(*fd) != 0) return Undo(Status::FromErrno("fdatasync " + p, errno));
    files_[p].last_write = std::chrono::steady_clock::now();
  }
  for (auto& [p, buf] : pending_) metrics_->sent_bytes().Increment(static_cast<double>(buf.size()));
  // Discards are counted and logged once, when the batch is written: a
  // batch retried after a failed write is rendered again.
  if (discarded_) {
    render_errors_->Increment(static_cast<double>(discarded_));
    metrics_->discarded_unintentional().Increment(static_cast<double>(discarded_));
    LogLimited(limiter_, LogLevel::kWarn, metrics_->id(),
               std::to_string(discarded_) + " event(s) discarded: cannot render path: " + first_problem);
  }
  if (pending_.size() > 64) pending_.clear();
  CloseIdle();
  return Status::Ok();
}

Status FileSink::Undo(Status failure) {
  for (const Written& w : written_) {
    // The file may have been closed since (more files than max_open_files
    // in one batch): then it is cut by path, if the path still leads to it.
    auto it = files_.find(w.path);
    int rc;
    if (it != files_.end() && it->second.dev == w.dev && it->second.ino == w.ino) {
      rc = ::ftruncate(it->second.fd, w.size);
    } else {
      struct stat st;
      rc = ::stat(w.path.c_str(), &st) == 0 && st.st_dev == w.dev && st.st_ino == w.ino
               ? ::truncate(w.path.c_str(), w.size)
               : 0;  // gone or replaced: nothing of this batch to cut
    }
    if (rc != 0) {
      LogLimited(limiter_, LogLevel::kError, metrics_->id(),
                 "cannot cut " + w.path + " back to " + std::to_string(w.size) + " bytes after a failed write (" +
                     std::strerror(errno) + "): the retry may repeat part of the batch");
    }
  }
  written_.clear();
  return failure;
}

Status FileSink::Flush() {
  CloseIdle();
  return Status::Ok();
}

void FileSink::CloseIdle() {
  auto now = std::chrono::steady_clock::now();
  for (auto it = files_.begin(); it != files_.end();) {
    if (now - it->second.last_write >= idle_timeout_) {
      ::close(it->second.fd);
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
}

TRIBUTARY_REGISTER_SINK("file", FileSink);

}  // namespace tributary
