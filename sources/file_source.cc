#include "sources/file_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "agent/backoff.h"
#include "agent/env.h"
#include "agent/json.h"
#include "agent/log.h"
#include "agent/memory.h"
#include "sources/file/glob.h"

namespace tributary {

namespace {

constexpr std::string_view kFileField = "file";
constexpr std::string_view kOffsetField = "offset";
constexpr std::string_view kSourceType = "file";
// Small batches: the source's events are still in the CPU's cache when the
// transforms run over them on this thread; SendMore (component.h) gathers
// them again for the sinks.
constexpr size_t kBatchBytes = 256 * 1024;
constexpr size_t kReadChunk = 64 * 1024;
// File sources alive: they share the process's descriptors (UpdateOpenCap).
std::atomic<size_t> g_file_sources{0};
// open() failed for want of a descriptor: the process's (EMFILE) or the
// system's (ENFILE).
bool OutOfDescriptors(int err) { return err == EMFILE || err == ENFILE; }
constexpr auto kBatchLinger = std::chrono::milliseconds(100);

constexpr auto kCheckpointRetry = std::chrono::milliseconds(1000);
constexpr auto kNewIdentityCheckpoint = std::chrono::milliseconds(100);
constexpr auto kForgetAfter = std::chrono::hours(24);

// Wakes the source's poll through its eventfd.
void Wake(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

// Where a symlink leads: one readlink for an absolute link straight to a
// file (Kubernetes' /var/log/containers/*.log, resolved at every
// discovery), a full resolution otherwise; "" if it leads nowhere.
std::string SymlinkTarget(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n > 1 && static_cast<size_t>(n) < sizeof buf && buf[0] == '/') {
    std::string target(buf, static_cast<size_t>(n));
    struct stat st;
    if (::lstat(target.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) return target;
  }
  std::error_code ec;
  std::string target = std::filesystem::canonical(path, ec).string();
  return ec ? std::string() : target;
}

// If `path` is a symbolic link to the regular file (dev, ino): that
// file's own path, in the directory where it is rotated; "" otherwise.
std::string LinkTargetOf(const std::string& path, uint64_t dev, uint64_t ino) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return "";
  std::string target = SymlinkTarget(path);
  if (target.empty() || ::stat(target.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_dev) != dev ||
      static_cast<uint64_t>(st.st_ino) != ino)
    return "";
  return target;
}

// True if every byte is ASCII: one pass over a whole read chunk, which the
// compiler vectorizes, instead of a check per line.
bool AllAscii(const char* p, size_t n) {
  // A byte loop with no early exit: GCC turns it into 16-byte ORs.
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  unsigned char acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= u[i];
  return acc < 0x80;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (w & 0x8080808080808080ULL) break;
  }
  for (; i < n; ++i)
    if (static_cast<unsigned char>(s[i]) & 0x80) break;
  return i == n || IsValidUtf8(s.substr(i));
}

std::string ErrnoText(int e) { return std::strerror(e); }

// The compressed formats logrotate's `compresscmd` writes, by the magic
// bytes they start with (gzip, xz and zstd cannot start UTF-8 text; a
// text starting with bzip2's ten bytes, "BZh91AY&SY" or so, is not a
// log); nullptr for anything else. *got: how many bytes there were
// to look at (0: empty, nothing known yet). One pread.
const char* CompressedFormat(int fd, ssize_t* got) {
  unsigned char b[10];
  ssize_t n;
  do {
    n = ::pread(fd, b, sizeof b, 0);
  } while (n < 0 && errno == EINTR);
  *got = n < 0 ? 0 : n;
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return "gzip";
  if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return "zstd";
  if (n >= 6 && std::memcmp(b, "\xfd" "7zXZ\0", 6) == 0) return "xz";
  if (n >= 10 && std::memcmp(b, "BZh", 3) == 0 && b[3] >= '1' && b[3] <= '9' &&
      std::memcmp(b + 4, "1AY&SY", 6) == 0)
    return "bzip2";
  return nullptr;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

// One open (or parked) file.
struct FileSource::Reader {
  Reader(const std::string& delim, size_t max, bool discard) : splitter(delim, max, discard) {}
  std::string path;
  std::string target;  // where `path` led when opened, if it is a symlink (Progress::target)
  int fd = -1;  // -1: parked
  uint64_t dev = 0, ino = 0;
  std::optional<file::Identity> id;  // nullopt: truncated, waiting for enough lines
  std::shared_ptr<file::Progress> progress;
  LineSplitter splitter;
  std::unique_ptr<file::MultilineAggregator> ml;
  bool dirty = true;
  bool queued = false;
  bool rotated = false;  // its path leads elsewhere now
  bool seen = false;     // found by the current discovery
  bool removed = false;
  bool starved = false;  // waits for a descriptor
  // Found while blocked and not told apart yet from a file being read
  // (Match::kUndecided): held even once deleted, until Identify decides.
  bool undecided = false;
  // Found while blocked, named like a rotation of a file the globs match
  // but not matched by them (copytruncate's app.log.1 with include:
  // [app.log]): held even once deleted, until Identify tells what it is.
  bool copy_only = false;
  // The file's size when its reader last looked: what it knew was there,
  // read or not (Truncated).
  uint64_t size_seen = 0;
  // Empty when found (or truncated since): whether it is compressed is
  // looked at once it has bytes (SkipIfCompressed).
  bool unchecked = false;
  Clock::time_point last_read = Clock::now();
  // Its key in idle_ (idle_seq 0: not in it), and last_read when filed.
  Clock::time_point idle_since{};
  uint64_t idle_seq = 0;
  Clock::time_point idle_read{};
  uint64_t truncated_seen = 0, discarded_seen = 0, ml_truncated_seen = 0;
  // The last bytes fed to the splitter (tail_len of them, ending at offset
  // tail_end), and the PositionCheck at check_pos (NoteChunk): a position
  // is checked from the bytes read, not read again from a file that may
  // have been truncated since.
  char tail[file::kPositionCheckBytes];
  size_t tail_len = 0;
  uint64_t tail_end = 0;
  uint64_t check_pos = 0, check = 0;
  uint64_t waiting_size = 0;  // not identified yet: its size when it last changed
};

// ---- Config ------------------------------------------------------------------

const config::Schema<FileSource::FingerprintConfig>& FileSource::FingerprintConfig::schema() {
  static const config::Schema<FingerprintConfig> s = [] {
    config::Schema<FingerprintConfig> s;
    s.Field("strategy", &FingerprintConfig::strategy,
            "How a file is recognised across renames and restarts: `checksum` of its first lines, or "
            "`device_and_inode`.")
        .OneOf({"checksum", "device_and_inode"});
    s.Field("lines", &FingerprintConfig::lines,
            "checksum: how many lines the checksum covers; a file with fewer lines waits until it has them.")
        .Min(1)
        .Max(1000);
    s.Field("ignored_header_bytes", &FingerprintConfig::ignored_header_bytes,
            "checksum: bytes at the start of each file left out of the checksum (a fixed header).");
    return s;
  }();
  return s;
}

const config::Schema<FileSource::MultilineConfig>& FileSource::MultilineConfig::schema() {
  static const config::Schema<MultilineConfig> s = [] {
    config::Schema<MultilineConfig> s;
    s.Field("start_pattern", &MultilineConfig::start_pattern, "RE2: a line that begins a multiline message.");
    s.Field("condition_pattern", &MultilineConfig::condition_pattern,
            "RE2: tested on each following line; what a match means depends on `mode`.");
    s.Field("mode", &MultilineConfig::mode, "How `condition_pattern` continues or ends a message.")
        .OneOf({"continue_through", "continue_past", "halt_before", "halt_with"});
    s.Field("timeout_ms", &MultilineConfig::timeout_ms,
            "Emit a buffered message after this long without a new line.")
        .Min(1);
    return s;
  }();
  return s;
}

const config::Schema<FileSource::Config>& FileSource::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("include", &Config::include,
            "Globs of the files to read (`*`, `?`, `[...]` within a name, `**` for any number of directories).")
        .Required()
        .Check<std::vector<std::string>>([](const std::vector<std::string>& v) {
          if (v.empty()) return std::string("must list at least one glob");
          for (const auto& p : v)
            if (p.empty()) return std::string("a glob is empty");
          return std::string();
        });
    s.Field("exclude", &Config::exclude,
            "Globs of files to skip; a glob without `/` is matched against the file name only.");
    s.Field("read_from", &Config::read_from,
            "Where to start in a file found at startup that has no checkpoint; files that appear later are "
            "always read from the beginning.")
        .OneOf({"beginning", "end"});
    s.Field("fingerprint", &Config::fingerprint, "File identity.");
    s.Field("max_line_bytes", &Config::max_line_bytes,
            "Longest line kept; longer ones follow `oversize_policy` and are counted.")
        .Min(1);
    s.Field("oversize_policy", &Config::oversize_policy, "What to do with a line over `max_line_bytes`.")
        .OneOf({"truncate", "discard"});
    s.Field("line_delimiter", &Config::line_delimiter, "The byte sequence that ends a line.")
        .Check<std::string>([](const std::string& d) { return d.empty() ? std::string("must not be empty") : ""; });
    s.Field("glob_minimum_cooldown_ms", &Config::glob_minimum_cooldown_ms,
            "How often the globs are expanded again and every file is checked for new data (inotify wakes the "
            "source sooner).")
        .Min(10);
    s.Field("ignore_older_secs", &Config::ignore_older_secs,
            "Skip files not modified for this long (when found); 0 = read every file.")
        .Min(0);
    s.Field("multiline", &Config::multiline,
            "Join lines into one event (set `start_pattern` and `condition_pattern` to enable).");
    s.Field("max_open_files", &Config::max_open_files,
            "Most file descriptors held open; idle files beyond it are closed and reopened when they grow. "
            "Lowered under a low process limit on descriptors.")
        .Min(1);
    s.Field("max_read_bytes", &Config::max_read_bytes,
            "Most bytes read from one file before the next file with data gets its turn.")
        .Min(4096);
    s.Field("rotate_wait_secs", &Config::rotate_wait_secs,
            "How long a file renamed out of the globs is kept after its last read, for late writes (open, unless a file "
            "with lines to read needs its descriptor at `max_open_files`).")
        .Min(0);
    s.Field("read_to_end_on_stop", &Config::read_to_end_on_stop,
            "On a stop (SIGTERM, and the old pipeline's stop in a reload), read every file up to the size it has "
            "when the stop begins before the source stops, instead of stopping at once: within the first half of "
            "the drain (shutdown_timeout_secs), the sinks delivering it meanwhile. What is not read by then is "
            "logged and read at the next start. For a sidecar whose log files and checkpoints go away with the "
            "pod; on a host the next start reads those lines anyway.");
    s.Validate([](const Config& c, const YAML::Node& node, const config::ParseContext& ctx) {
      const YAML::Node include = node["include"];
      for (size_t i = 0; i < c.include.size(); ++i)
        config::WarnIfRelative(include.IsSequence() && i < include.size() ? include[i] : include, c.include[i],
                               ctx.Child("include[" + std::to_string(i) + "]"));
      const bool start = !c.multiline.start_pattern.pattern.empty();
      const bool cond = !c.multiline.condition_pattern.pattern.empty();
      if (start != cond) {
        ctx.Error(node["multiline"].IsDefined() ? node["multiline"] : node,
                  "`" + ctx.Child("multiline").path + "` needs both `start_pattern` and `condition_pattern`");
      }
    });
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Source>> FileSource::Build(const Config& config, BuildContext& ctx) {
  std::unique_ptr<FileSource> s(new FileSource(config, ctx));
  if (Status st = PrepareStateDir(std::filesystem::path(s->checkpoint_path_).parent_path().string(),
                                  "the files' read positions");
      !st.ok())
    return st;
  if (s->multiline_) {
    if (!s->ml_rules_.start->ok()) return Status::InvalidArgument("multiline.start_pattern: " + s->ml_rules_.start->error());
    if (!s->ml_rules_.condition->ok())
      return Status::InvalidArgument("multiline.condition_pattern: " + s->ml_rules_.condition->error());
  }
  return std::unique_ptr<Source>(std::move(s));
}

void FileSource::CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out) {
  for (const auto& pattern : config.include) {
    std::string base = file::GlobBaseDir(pattern);
    config::EnvCheck c{"include " + pattern + ": directory " + base + " is readable", true, ""};
    if (::access(base.c_str(), R_OK | X_OK) != 0) {
      c.ok = false;
      c.detail = ErrnoText(errno);
      // Not there yet (the application is deployed later): the source
      // watches for it, so this does not stop a start (run --check-environment).
      if (errno == ENOENT) {
        c.warning = true;
        c.detail += ": its files are read once it is created";
      }
    }
    out->push_back(std::move(c));
  }
}

FileSource::FileSource(const Config& config, BuildContext& ctx)
    : config_(config),
      id_(ctx.id),
      host_(ctx.hostname),
      data_dir_(ctx.data_dir),
      metrics_(ctx.metrics),
      files_watched_(&ctx.metrics->FilesWatched()),
      checkpoints_(&ctx.metrics->Checkpoints()),
      err_open_(&ctx.metrics->Errors("open_failed", "receiving")),
      err_read_(&ctx.metrics->Errors("read_failed", "receiving")),
      err_oversize_(&ctx.metrics->Errors("line_too_long", "receiving")),
      err_utf8_(&ctx.metrics->Errors("invalid_utf8", "receiving")),
      err_not_file_(&ctx.metrics->Errors("not_a_file", "receiving")),
      err_glob_(&ctx.metrics->Errors("glob_failed", "receiving")),
      err_checkpoint_(&ctx.metrics->Errors("checkpoint_failed", "receiving")),
      err_compressed_(&ctx.metrics->Errors("compressed_file", "receiving")),
      err_truncated_stopped_(&ctx.metrics->Errors("truncated_while_stopped", "receiving")),
      err_truncated_unread_(&ctx.metrics->Errors("truncated_unread", "receiving")),
      err_watch_(&ctx.metrics->Errors("watch_failed", "receiving")) {
  fp_options_.checksum = config.fingerprint.strategy == "checksum";
  fp_options_.lines = config.fingerprint.lines;
  fp_options_.ignored_header_bytes = config.fingerprint.ignored_header_bytes.bytes;
  fp_options_.max_line_bytes = config.max_line_bytes.bytes;
  fp_options_.delimiter = config.line_delimiter;
  discard_oversize_ = config.oversize_policy == "discard";
  multiline_ = !config.multiline.start_pattern.pattern.empty();
  if (multiline_) {
    ml_rules_.start = std::make_unique<RE2>(config.multiline.start_pattern.pattern, RE2::Quiet);
    ml_rules_.condition = std::make_unique<RE2>(config.multiline.condition_pattern.pattern, RE2::Quiet);
    file::ParseMultilineMode(config.multiline.mode, &ml_rules_.mode);
    ml_rules_.timeout = config.multiline.timeout_ms.get();
    ml_rules_.max_bytes = config.max_line_bytes.bytes;
  }
  ++g_file_sources;
  max_open_ = config.max_open_files;
  checkpoint_path_ = StateDir(data_dir_, kStateDir, id_) + "/checkpoints.json";
  tracker_ = std::make_shared<file::AckTracker>();
}

FileSource::~FileSource() {
  tracker_->set_on_advance(nullptr);  // batches still in flight may outlive this source
  StopCheckpointThread();
  --g_file_sources;
  for (auto& r : readers_)
    if (r.fd >= 0) ::close(r.fd);
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

// ---- State -------------------------------------------------------------------

void FileSource::LoadState(std::stop_token stop) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(checkpoint_path_).parent_path(), ec);
  if (ec) {
    err_checkpoint_->Increment();
    TLOG_ERROR(id_, "cannot create " + std::filesystem::path(checkpoint_path_).parent_path().string() + ": " +
                        ec.message() + "; positions will not survive a restart");
  }
  auto loaded = file::LoadCheckpoints(checkpoint_path_);
  // Out of descriptors or memory for a moment (other components starting
  // too): wait. Going on without the positions would read every file again.
  while (!loaded.ok() && loaded.status().code() == StatusCode::kResourceExhausted && !stop.stop_requested()) {
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               "cannot read checkpoints yet: " + loaded.status().message() + "; retrying before reading any file");
    if (!SleepFor(std::chrono::milliseconds(200), stop)) return;
    loaded = file::LoadCheckpoints(checkpoint_path_);
  }
  if (stop.stop_requested()) return;
  if (!loaded.ok()) {
    // Where each file was left is unknown: read_from: end would skip what
    // was written while the agent was stopped. The files found now are read
    // from their start instead: lines sent again rather than lost.
    err_checkpoint_->Increment();
    checkpoints_unreadable_ = true;
    TLOG_ERROR(id_, "ignoring unreadable checkpoints: " + loaded.status().message() +
                        (config_.read_from == "end"
                             ? "; the files found now are read from their start, not their end (read_from: end), "
                               "since where they were left is unknown: lines are sent again rather than skipped"
                             : ""));
    return;
  }
  const std::string strategy = config_.fingerprint.strategy;
  if (!loaded->entries.empty() && loaded->strategy != strategy) {
    TLOG_WARN(id_, "checkpoints were written with fingerprint strategy `" + loaded->strategy + "`, now `" + strategy +
                       "`: they are ignored and files are read per read_from");
    return;
  }
  // The fingerprints were taken over other bytes: no file would match its
  // checkpoint, and each would pass for one rewritten while the agent was
  // stopped.
  if (!loaded->entries.empty() && fp_options_.checksum && loaded->lines != 0 &&
      (loaded->lines != config_.fingerprint.lines ||
       loaded->ignored_header_bytes != config_.fingerprint.ignored_header_bytes.bytes)) {
    TLOG_WARN(id_, "checkpoints were written with fingerprint.lines " + std::to_string(loaded->lines) +
                       " and ignored_header_bytes " + std::to_string(loaded->ignored_header_bytes) + ", now " +
                       std::to_string(config_.fingerprint.lines) + " and " +
                       std::to_string(config_.fingerprint.ignored_header_bytes.bytes) +
                       ": files are identified by other bytes, so the checkpoints are ignored and files are read "
                       "per read_from");
    return;
  }
  for (const auto& e : loaded->entries) {
    auto p = std::make_shared<file::Progress>(e.fingerprint);
    p->path = e.path;
    p->target = e.target;
    p->dev = e.dev;
    p->ino = e.ino;
    p->emit_pos = e.offset;
    p->emit_check = e.check;
    p->lead_bytes = e.lead_bytes;
    p->lead_hash = e.lead_hash;
    tracker_->Reset(p.get(), e.offset, e.check);
    AddKnown(p);
  }
  struct stat st;
  if (!loaded->entries.empty() && ::stat(checkpoint_path_.c_str(), &st) == 0) checkpoints_mtime_ns_ = MtimeNs(st);
  TLOG_INFO(id_, "loaded " + std::to_string(loaded->entries.size()) + " checkpoint(s) from " + checkpoint_path_);
}

// At most every file::CheckpointInterval (250 ms, longer with many files)
// while deliveries keep coming. A write
// that carries no delivered lines (the files found at start, skipped
// lines) does not hold back the next one, so the first deliveries of a
// run, and the first after a quiet interval, are written at once: an agent
// killed again and again within a second of starting still moves its
// checkpoints on instead of reading everything again each time.
void FileSource::WriteCheckpoints(bool force) {
  auto now = Clock::now();
  const uint64_t gen = tracker_->generation();  // before ckpt_mu_: see CheckpointLoop
  const uint64_t deliveries = tracker_->deliveries();
  std::vector<Published> published;
  uint64_t version;
  bool new_identity;
  {
    std::lock_guard lock(ckpt_mu_);
    // A file first seen since the last write is written within 100 ms,
    // not a checkpoint interval: were it renamed out of the globs while
    // the agent is down, only its checkpointed identity (path, inode)
    // leads to it again.
    const bool soon = published_new_identity_ && now >= next_identity_checkpoint_;
    if (!force && now < next_checkpoint_ && !soon) return;
    version = published_version_;
    new_identity = published_new_identity_;
    if (version == saved_version_ && gen == saved_generation_) return;
    published.reserve(published_.size());
    for (const auto& [key, pub] : published_) published.push_back(pub);
    published_new_identity_ = false;
  }
  file::CheckpointFile f;
  f.strategy = config_.fingerprint.strategy;
  if (fp_options_.checksum) {
    f.lines = config_.fingerprint.lines;
    f.ignored_header_bytes = config_.fingerprint.ignored_header_bytes.bytes;
  }
  f.entries.reserve(published.size());
  for (const auto& pub : published) {
    f.entries.push_back(pub.entry);
    std::tie(f.entries.back().offset, f.entries.back().check) = tracker_->AckedAt(pub.progress.get());
  }
  Status s = file::SaveCheckpoints(checkpoint_path_, f);
  if (!s.ok()) {
    err_checkpoint_->Increment();
    LogLimited(log_limiter_, LogLevel::kError, id_, "cannot write checkpoints: " + s.ToString());
    std::lock_guard lock(ckpt_mu_);
    published_new_identity_ |= new_identity;
    next_checkpoint_ = now + kCheckpointRetry;  // a full disk is tried again once a second
    next_identity_checkpoint_ = next_checkpoint_;
    return;
  }
  std::lock_guard lock(ckpt_mu_);
  saved_generation_ = gen;
  saved_version_ = version;
  next_identity_checkpoint_ = now + kNewIdentityCheckpoint;
  if (deliveries != saved_deliveries_) next_checkpoint_ = now + file::CheckpointInterval(f.entries.size());
  saved_deliveries_ = deliveries;
  checkpoints_->Increment();
}

// Only the identities that changed are handed over (a file's lead grows
// with each read until it has kLeadBytes; with thousands of files, copying
// them all at each change was most of the source's work).
void FileSource::PublishCheckpoints() {
  const uint64_t gen = tracker_->generation();
  if (changed_.empty() && gen == kicked_generation_) return;
  std::vector<Published> changed;  // progress == nullptr: `p` is forgotten
  std::vector<const file::Progress*> keys;
  changed.reserve(changed_.size());
  keys.reserve(changed_.size());
  for (auto& p : changed_) {
    p->publish_queued = false;
    keys.push_back(p.get());
    if (!p->known) {
      changed.emplace_back();
      continue;
    }
    changed.push_back(Published{p, file::CheckpointEntry{p->fingerprint, 0, p->path, p->dev, p->ino, 0,
                                                         p->lead_bytes, p->lead_hash, p->target}});
  }
  const bool identities_changed = !changed_.empty();
  published_entries_.fetch_add(changed_.size(), std::memory_order_relaxed);
  changed_.clear();
  bool wake;
  {
    std::lock_guard lock(ckpt_mu_);
    if (identities_changed) {
      for (size_t i = 0; i < keys.size(); ++i) {
        if (changed[i].progress) published_.insert_or_assign(keys[i], std::move(changed[i]));
        else published_.erase(keys[i]);
      }
      ++published_version_;
      published_new_identity_ |= new_identity_;
    }
    ckpt_kick_ = true;
    wake = ckpt_idle_ || new_identity_;  // a new identity is due sooner than offsets
  }
  if (wake) ckpt_cv_.notify_one();
  new_identity_ = false;
  kicked_generation_ = gen;
}

void FileSource::KickCheckpoints() {
  bool wake;
  {
    std::lock_guard lock(ckpt_mu_);
    ckpt_kick_ = true;
    wake = ckpt_idle_;
  }
  if (wake) ckpt_cv_.notify_one();
}

// The checkpoint thread: sleeps until an offset or an identity changed
// and the write is due, then writes. Never touches the reading thread's
// state: the identities come from PublishCheckpoints, the offsets from
// the tracker. Lock order: the tracker's mutex, then ckpt_mu_ (the
// tracker's on_advance kicks this thread under its lock), so the tracker
// is never asked while ckpt_mu_ is held.
void FileSource::CheckpointLoop() {
  while (true) {
    WriteCheckpoints(false);
    const uint64_t gen = tracker_->generation();
    std::unique_lock lock(ckpt_mu_);
    if (ckpt_stop_) return;
    const bool dirty = gen != saved_generation_ || published_version_ != saved_version_;
    auto due = Clock::time_point::max();
    if (dirty) due = published_new_identity_ ? std::min(next_checkpoint_, next_identity_checkpoint_) : next_checkpoint_;
    if (dirty && Clock::now() >= due) continue;
    // A kick that came after `gen` was read is still set: no lost wakeup.
    ckpt_idle_ = due == Clock::time_point::max();
    if (ckpt_idle_) ckpt_cv_.wait(lock, [&] { return ckpt_stop_ || ckpt_kick_; });
    else ckpt_cv_.wait_until(lock, due, [&] { return ckpt_stop_ || ckpt_kick_; });
    ckpt_idle_ = false;
    ckpt_kick_ = false;
    if (ckpt_stop_) return;
  }
}

void FileSource::StopCheckpointThread() {
  if (!ckpt_thread_.joinable()) return;
  {
    std::lock_guard lock(ckpt_mu_);
    ckpt_stop_ = true;
  }
  ckpt_cv_.notify_one();
  ckpt_thread_.join();
}

// ---- Discovery ---------------------------------------------------------------

// inotify, or polling alone without it. Out of descriptors (EMFILE,
// ENFILE) or of inotify instances (EMFILE for fs.inotify.max_user_instances)
// it is tried again at each discovery.
void FileSource::OpenInotify() {
  if (inotify_fd_ >= 0 || inotify_given_up_) return;
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ >= 0) {
    if (inotify_failed_) TLOG_INFO(id_, "inotify available again");
    inotify_failed_ = false;
    return;
  }
  const int err = errno;
  inotify_given_up_ = !OutOfDescriptors(err) && err != ENOMEM;
  if (!inotify_failed_)
    TLOG_WARN(id_, "inotify unavailable (" + ErrnoText(err) + "): polling every glob_minimum_cooldown_ms" +
                       (inotify_given_up_ ? "" : ", and trying inotify again"));
  inotify_failed_ = true;
}

void FileSource::Watch(const std::string& dir) {
  if (inotify_fd_ < 0 || watched_dirs_.count(dir)) return;
  int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(),
                               IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |
                                   IN_ATTRIB | IN_ONLYDIR);
  if (wd < 0) {
    // Tried again at each discovery; said and counted once per directory.
    if (errno == ENOENT || errno == ENOTDIR || !unwatched_dirs_.insert(dir).second) return;
    err_watch_->Increment();
    // ENOSPC from inotify_add_watch is the watch limit, not a full disk.
    const std::string why = errno == ENOSPC ? "the user's inotify watches are used up: raise the sysctl "
                                              "fs.inotify.max_user_watches"
                                            : ErrnoText(errno);
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               "cannot watch " + dir + " (" + why + "); polling it every glob_minimum_cooldown_ms, so its new lines "
               "arrive that much later (" + std::to_string(unwatched_dirs_.size()) + " director" +
               (unwatched_dirs_.size() == 1 ? "y" : "ies") + " polled so far)");
    return;
  }
  unwatched_dirs_.erase(dir);
  watched_dirs_.insert(dir);
  wd_dirs_[wd] = dir;
}

void FileSource::DrainInotify() {
  if (inotify_fd_ < 0) return;
  alignas(inotify_event) char buf[16384];
  while (true) {
    ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) return;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        TLOG_DEBUG(id_, "inotify queue overflowed: rescanning");
        discovery_requested_ = true;
        MarkAllDirty();
        continue;
      }
      auto it = wd_dirs_.find(ev->wd);
      if (it == wd_dirs_.end()) continue;
      if (ev->mask & IN_IGNORED) {
        watched_dirs_.erase(it->second);
        wd_dirs_.erase(it);
        continue;
      }
      if (ev->len == 0) continue;
      std::string path = it->second == "/" ? "/" + std::string(ev->name) : it->second + "/" + ev->name;
      if (!by_path_.count(path)) {  // maybe the file a matched symlink leads to
        if (auto link = link_targets_.find(path); link != link_targets_.end()) path = link->second;
      }
      auto r = by_path_.find(path);
      if (r != by_path_.end()) MarkDirty(r->second);
      if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)) discovery_requested_ = true;
      // A file that appears is opened now, not at the next discovery (at
      // most every 100 ms): under fast rotation it may be renamed out of
      // the glob, or deleted, before then. Once open, it is read to its end
      // wherever it goes.
      if (ev->mask & (IN_CREATE | IN_MOVED_TO)) named_.push_back(std::move(path));
    }
  }
}

namespace {

// Fills in, for each inode of *names, a path in `dir` whose entry has that
// inode number (one readdir; the device is for the caller to check).
void NameInodes(const std::string& dir, std::map<uint64_t, std::string>* names) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d))
    if (auto it = names->find(static_cast<uint64_t>(e->d_ino)); it != names->end())
      it->second = (dir == "/" ? "" : dir) + "/" + e->d_name;
  ::closedir(d);
}

// True if `path` is the regular file (dev, ino); *st is its stat.
bool IsFile(const std::string& path, uint64_t dev, uint64_t ino, struct stat* st) {
  return !path.empty() && ::stat(path.c_str(), st) == 0 && S_ISREG(st->st_mode) &&
         static_cast<uint64_t>(st->st_dev) == dev && static_cast<uint64_t>(st->st_ino) == ino;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Named like a compressed rotation (app.log.1.gz): not held while blocked.
bool CompressedName(std::string_view path) {
  for (std::string_view ext : {".gz", ".xz", ".zst", ".bz2", ".zip", ".lz4"})
    if (path.size() > ext.size() && path.substr(path.size() - ext.size()) == ext) return true;
  return false;
}

// The names of the regular files (or of unknown type) in `dir`, sorted.
std::vector<std::string> FileNamesIn(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d))
    if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// The paths in the directory of `path` whose names extend its name, as
// rotations are named (app.log.1, app.log-20260101, 0.log.20260101-120000):
// where a copy of it (copytruncate) is looked for. Not other files beside
// it: one that only holds the same lines (a file sink's output) is no copy.
// `listings`, if given, keeps each directory's names for the next call.
std::vector<std::string> RotationNamesOf(const std::string& path, FileSource::DirListings* listings) {
  std::vector<std::string> out;
  const std::string dir = DirectoryOf(path);
  const std::string base = path.substr(path.rfind('/') + 1);
  std::vector<std::string> once;
  const std::vector<std::string>* names = &once;
  if (listings == nullptr) {
    once = FileNamesIn(dir);
  } else {
    auto it = listings->find(dir);
    if (it == listings->end()) it = listings->emplace(dir, FileNamesIn(dir)).first;
    names = &it->second;
  }
  for (auto it = std::upper_bound(names->begin(), names->end(), base);
       it != names->end() && it->compare(0, base.size(), base) == 0; ++it)
    out.push_back((dir == "/" ? "" : dir) + "/" + *it);
  return out;
}

}  // namespace

// A file renamed out of the globs while nobody held it open (the agent
// was down, or the file was parked for want of descriptors) is looked for
// beside its old name, where logrotate puts it (app.log -> app.log.1), and,
// if that name was a symlink, beside the file it led to, where the kubelet
// puts it (/var/log/pods/<pod>/<container>/0.log -> 0.log.<time>, the
// link being /var/log/containers/<name>.log): if it is there with lines
// past its position, it is read to its end like any file rotated away
// while open. True if it was found.
bool FileSource::FollowRenamed(Reader* r) {
  std::map<uint64_t, std::string> names{{r->ino, ""}};
  NameInodes(DirectoryOf(r->path), &names);
  if (names[r->ino].empty() && !r->target.empty()) NameInodes(DirectoryOf(r->target), &names);
  const std::string now_at = names[r->ino];
  struct stat st;
  if (now_at == r->path || !IsFile(now_at, r->dev, r->ino, &st)) return false;
  if (auto bp = by_path_.find(r->path); bp != by_path_.end() && bp->second == r) by_path_.erase(bp);
  TLOG_DEBUG(id_, r->path + " was renamed to " + now_at + " while not open; reading it to its end");
  r->path = now_at;
  r->target.clear();
  by_path_[now_at] = r;
  r->rotated = true;
  if (r->progress) {
    r->progress->path = now_at;
    r->progress->target.clear();
    KnownChanged(r->progress);
  }
  MarkDirty(r);
  return true;
}

// The same at start, for every identity the globs did not find again: in
// the directory of its checkpointed path, and in that of the file the path
// led to if it was a symlink (`target`).
void FileSource::ResumeRenamedAtStart(Clock::time_point now) {
  std::map<std::string, std::vector<std::shared_ptr<file::Progress>>> by_dir;
  for (auto& [fp, p] : known_) {
    if (p->active || p->gone || p->ino == 0 || p->path.empty()) continue;
    const std::string dir = DirectoryOf(p->path);
    by_dir[dir].push_back(p);
    if (!p->target.empty() && DirectoryOf(p->target) != dir) by_dir[DirectoryOf(p->target)].push_back(p);
  }
  for (auto& [dir, list] : by_dir) {
    std::map<uint64_t, std::string> names;  // inode -> a name in dir, for the identities looked for
    for (auto& p : list) names[p->ino];
    NameInodes(dir, &names);
    for (auto& p : list) {
      const std::string& now_at = names[p->ino];
      struct stat st;
      // Still where it was checkpointed: found by the globs, unless it was
      // a copy read for a file they match (ResumeFromCopy), which the
      // agent was reading when it stopped.
      const bool copy_left = now_at == p->path && !by_path_.count(now_at) && !Included(now_at) &&
                             RotationOfIncluded(now_at);
      if (p->active || (now_at == p->path && !copy_left) || Excluded(now_at) ||
          !IsFile(now_at, p->dev, p->ino, &st) || static_cast<uint64_t>(st.st_size) <= p->emit_pos)
        continue;
      const std::string was = p->target.empty() ? p->path : p->target + " (where " + p->path + " led)";
      const std::string left = std::to_string(static_cast<uint64_t>(st.st_size) - p->emit_pos) + " bytes not read yet";
      if (copy_left)
        TLOG_INFO(id_, now_at + ", a copy that `include` does not match, was being read when the agent stopped, with " +
                           left + ": reading it to its end");
      else
        TLOG_INFO(id_, was + " was renamed to " + now_at + " with " + left + ": reading it to its end");
      DiscoverPath(now_at, false, now);
    }
  }
}

// Lines a program wrote after the stop and before logrotate's copytruncate
// (or any truncation) are only in the copy: read if the globs match it
// (then it adopts the checkpoint, and is active here) or it is beside the
// file (ResumeFromCopy), lost if it is gone. The source cannot tell
// whether there were any; it says what it knows.
void FileSource::WarnRewrittenWhileStopped() {
  checkpointed_inodes_.clear();
  const auto now = Clock::now();
  // Checkpoints written before ClaimInode may hold several identities of
  // one inode: if any of them goes on in a copy, that was the last.
  DirListings listings;
  std::set<uint64_t> resumed;
  for (const auto& [p, path, ino] : rewritten_at_start_)
    if (p->active || ResumeFromCopy(p, "was truncated or rewritten while the agent was stopped", now, &listings))
      resumed.insert(ino);
  // Contents truncated or rewritten before the stop (their inode went to
  // the file's next content, ClaimInode), read or not, maybe not all
  // delivered: a copy beside the file with more than their checkpoint
  // holds the rest.
  std::vector<std::shared_ptr<file::Progress>> superseded;
  for (const auto& [fp, p] : known_)
    if (!p->active && !p->gone && p->ino == 0 && !p->path.empty()) superseded.push_back(p);
  for (const auto& p : superseded)
    ResumeFromCopy(p, "was truncated or rewritten before the agent stopped", now, &listings);
  ReadUnseenRotationsAtStart(now, &listings);
  for (const auto& [p, path, ino] : rewritten_at_start_) {
    if (!resumed.insert(ino).second) continue;  // resumed, or warned about
    err_truncated_stopped_->Increment();
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               path + " holds other content than at its checkpoint (offset " +
                   std::to_string(tracker_->Acked(p.get())) + " of inode " + std::to_string(ino) +
                   "): it was truncated or rewritten (logrotate's copytruncate), or deleted and its inode reused, "
                   "while the agent was stopped; lines written to it after that offset before then were not read, "
                   "and no copy holding them is beside it or among the files `include` matches (compressed, "
                   "deleted or moved away): with copytruncate use delaycompress, or include the rotated copies' "
                   "names if they go elsewhere");
  }
  rewritten_at_start_.clear();
}

void FileSource::ReadUnseenRotationsAtStart(Clock::time_point now, DirListings* listings) {
  if (!fp_options_.checksum || checkpoints_mtime_ns_ == 0) return;
  // The files the globs found, and where their symlinks lead; also those
  // with no identity yet: logrotate's `create` leaves an empty file whose
  // rotations may hold what was written while the agent was stopped.
  std::set<std::string> files;
  for (const auto& r : readers_) {
    if (r.removed) continue;
    files.insert(r.path);
    if (!r.target.empty()) files.insert(r.target);
  }
  std::set<std::string> looked;
  for (const auto& file : files) {
    for (auto& path : RotationNamesOf(file, listings)) {
      if (!looked.insert(path).second || Included(path) || Excluded(path) || by_path_.count(path)) continue;
      struct stat st;
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
          MtimeNs(st) < checkpoints_mtime_ns_ ||
          by_inode_.count({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}))
        continue;
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) continue;
      bool unseen = false;
      ssize_t got = 0;
      if (::fstat(fd, &st) == 0 && CompressedFormat(fd, &got) == nullptr) {  // a .gz rotation holds read lines
        auto id = file::Fingerprint(fd, st, fp_options_);
        unseen = id.ok() && id->has_value() && MatchKnown(fd, st, **id, nullptr).kind == Match::kNew;
      }
      ::close(fd);
      if (!unseen) continue;
      TLOG_INFO(id_, path + ", named like a rotation of " + file +
                         " and written since the agent last ran, holds lines it has not read: reading it");
      DiscoverPath(path, false, now);
    }
  }
}

bool FileSource::ResumeFromCopy(const std::shared_ptr<file::Progress>& p, const std::string& why,
                                Clock::time_point now, DirListings* listings) {
  if (!fp_options_.checksum || p->active || p->path.empty()) return false;
  for (const std::string& of : {p->path, p->target}) {
    if (of.empty()) continue;
    std::vector<std::string> candidates;
    for (auto& path : RotationNamesOf(of, listings)) {
      // A copy the globs match is found by the discovery, and adopts `p` there.
      if (Included(path) || Excluded(path) || by_path_.count(path)) continue;
      struct stat st;
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) <= p->emit_pos ||
          by_inode_.count({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}))
        continue;
      candidates.push_back(std::move(path));
    }
    for (const auto& path : candidates) {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) continue;
      struct stat st;
      bool adopt = false;
      if (::fstat(fd, &st) == 0) {
        auto id = file::Fingerprint(fd, st, fp_options_);
        if (id.ok() && id->has_value() && (*id)->fingerprint == p->fingerprint) {
          const Match m = MatchKnown(fd, st, **id, nullptr);
          adopt = m.kind == Match::kAdopt && m.progress == p;
        }
      }
      ::close(fd);
      if (!adopt) continue;
      TLOG_INFO(id_, p->path + " " + why + " with lines not read yet: reading them from " + path +
                         ", a copy of it that `include` does not match, from offset " + std::to_string(p->emit_pos));
      DiscoverPath(path, false, now);
      if (p->active) return true;
    }
  }
  return false;
}

void FileSource::ResumeTruncatedFromCopies(Clock::time_point now) {
  if (truncated_under_reader_.empty()) return;
  auto list = std::move(truncated_under_reader_);
  truncated_under_reader_.clear();
  // Copies held open while blocked, not told apart yet from the file
  // being read: they can be now.
  for (auto& r : readers_) {
    if (r.removed || r.id || !r.undecided || r.fd < 0) continue;
    if (Identify(&r)) MarkDirty(&r);
  }
  for (const auto& t : list) {
    if (t.progress->active || ResumeFromCopy(t.progress, "was truncated", now) || t.unread == 0) continue;
    // Bytes its reader knew were there and had not read (it was behind:
    // a sink down, or a backlog), with no copy left to read them from.
    err_truncated_unread_->Increment();
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               t.path + " was truncated with at least " + std::to_string(t.unread) +
                   " bytes not read yet (from offset " + std::to_string(t.progress->emit_pos) +
                   "), and no copy holding them is beside it or among the files `include` matches (compressed, "
                   "deleted or moved away before the source got to them): those lines are lost; with "
                   "copytruncate use delaycompress, and keep more rotations than a sink outage may last");
  }
}

bool FileSource::Included(const std::string& path) const {
  return std::any_of(include_abs_.begin(), include_abs_.end(),
                     [&](const std::string& pattern) { return file::GlobMatch(pattern, path); });
}

bool FileSource::RotationOfIncluded(const std::string& path) const {
  const size_t name = path.rfind('/') + 1;  // 0 without a slash
  for (size_t n = path.size(); n-- > name + 1;)
    if (Included(path.substr(0, n))) return true;
  return false;
}

bool FileSource::Excluded(const std::string& path) const {
  return std::any_of(config_.exclude.begin(), config_.exclude.end(),
                     [&](const std::string& pattern) { return file::GlobMatch(pattern, path); });
}

void FileSource::DiscoverNamed(Clock::time_point now) {
  if (named_.empty()) return;
  std::sort(named_.begin(), named_.end());
  named_.erase(std::unique(named_.begin(), named_.end()), named_.end());
  for (const auto& path : named_) {
    if (Excluded(path)) continue;
    if (Included(path)) DiscoverPath(path, false, now);
    // While blocked, a copy the globs do not match may hold the only lines
    // left of a file being read, once that file is truncated (copytruncate),
    // and be deleted before the sink is back (logrotate's `rotate N`):
    // held open until that is decided, as a copy the globs match is. One
    // whose content no identity knows was written during the outage and
    // copied away before the reader got to it (a second copytruncate): it
    // is read from its start, like a file created while blocked.
    else if (blocked_ && fp_options_.checksum && RotationOfIncluded(path) && !CompressedName(path))
      DiscoverPath(path, false, now, true);
  }
  named_.clear();
}

void FileSource::MarkDirty(Reader* r) {
  r->dirty = true;
  if (!r->queued && !r->removed) {
    r->queued = true;
    ready_.push_back(r);
  }
}

// Deletes removed readers once nothing points at them.
void FileSource::Sweep() {
  if (removed_count_ == 0) return;
  std::erase_if(starved_, [](Reader* r) { return r->removed; });
  size_t before = readers_.size();
  readers_.remove_if([](const Reader& r) { return r.removed && !r.queued; });
  removed_count_ -= before - readers_.size();
  files_watched_->Set(static_cast<double>(readers_.size()));
}

void FileSource::MarkAllDirty() {
  for (auto& r : readers_) MarkDirty(&r);
}

void FileSource::Discover(bool first) {
  const auto now = Clock::now();
  last_discovery_ = now;
  discovery_requested_ = false;
  UpdateOpenCap();  // and after running short of descriptors, try again
  OpenInotify();
  for (auto& r : readers_) r.seen = false;
  for (auto& [key, c] : compressed_) c.seen = false;
  skipped_prev_.swap(skipped_);
  skipped_.clear();
  std::set<std::string> found;
  std::vector<std::string> links;     // matched paths that are symlinks
  std::vector<std::string> unlisted;  // directories that could not be read this time
  for (const auto& pattern : config_.include) {
    file::GlobWalk walk;
    file::ExpandGlob(pattern, &walk);
    for (const auto& d : walk.directories) Watch(d);
    for (const auto& [dir, err] : walk.errors) {
      unlisted.push_back(dir + "/");
      if (bad_paths_.insert(dir).second) {
        err_glob_->Increment();
        LogLimited(log_limiter_, LogLevel::kWarn, id_, "cannot list " + dir + ": " + ErrnoText(err));
      }
    }
    for (const auto& [link, err] : walk.unreachable_links) {
      if (Excluded(link) || !bad_paths_.insert(link).second) continue;
      err_open_->Increment();
      LogLimited(log_limiter_, LogLevel::kWarn, id_, "cannot follow the symbolic link " + link + ": " + ErrnoText(err));
    }
    for (const auto& m : walk.matches) {
      if (Excluded(m.path)) continue;
      if (m.is_directory || m.is_other) {
        if (bad_paths_.insert(m.path).second) {
          err_not_file_->Increment();
          LogLimited(log_limiter_, LogLevel::kWarn, id_,
                     m.path + " matches `include` but is " + (m.is_directory ? "a directory" : "not a regular file") +
                         ": skipped");
        }
        continue;
      }
      found.insert(m.path);
      if (m.is_symlink) links.push_back(m.path);
    }
  }
  link_targets_.clear();
  for (const auto& path : links) {
    const std::string target = inotify_fd_ >= 0 ? SymlinkTarget(path) : std::string();
    if (const size_t slash = target.rfind('/'); slash != std::string::npos) {
      Watch(slash == 0 ? "/" : target.substr(0, slash));
      link_targets_[target] = path;
    }
  }
  for (const auto& path : found) DiscoverPath(path, first, now);
  if (first) ResumeRenamedAtStart(now);
  // Files whose path no longer leads to them were rotated (renamed or deleted).
  for (auto& r : readers_) {
    if (r.seen || r.removed) continue;
    struct stat st;
    bool same = ::stat(r.path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_dev) == r.dev &&
                static_cast<uint64_t>(st.st_ino) == r.ino;
    if (same && found.count(r.path)) continue;
    // Not listed because its directory could not be read (out of
    // descriptors, permissions changing): still where it was, so not rotated.
    if (same && std::any_of(unlisted.begin(), unlisted.end(),
                            [&](const std::string& d) { return r.path.compare(0, d.size(), d) == 0; })) {
      r.seen = true;
      continue;
    }
    if (r.fd < 0) {
      // Followed out of the globs already (FollowRenamed below, at an
      // earlier discovery), and waiting for a descriptor or, parked once
      // read to its end, for late lines: read once it gets one. Dropping
      // it lost its last lines.
      if (same && r.rotated) {
        r.seen = true;
        continue;
      }
      // Parked and gone from its path: reopened where it went, if beside
      // it; else deleted, or moved where the globs do not reach.
      if (!FollowRenamed(&r)) DropParkedGone(&r);
      continue;
    }
    if (!r.rotated) {
      r.rotated = true;
      TLOG_DEBUG(id_, r.path + " was rotated away; reading it to its end");
    }
    MarkDirty(&r);
  }
  std::erase_if(compressed_, [](const auto& c) { return !c.second.seen; });
  for (auto it = bad_paths_.begin(); it != bad_paths_.end();) {
    std::error_code ec;  // a path we may not stat (EACCES) is still there: the throwing exists() would throw
    const bool there = found.count(*it) || std::filesystem::exists(*it, ec) || ec;
    it = there ? std::next(it) : bad_paths_.erase(it);
  }
  // Forget identities that are gone and settled.
  for (auto it = known_.begin(); it != known_.end();) {
    auto& p = it->second;
    bool forget = !p->active && ((p->gone && !tracker_->HasPending(p.get())) || now - p->last_seen > kForgetAfter);
    if (forget) {
      it = EraseKnown(it);
    } else {
      ++it;
    }
  }
  if (!blocked_) Sweep();  // blocked: the reader whose turn was interrupted may be referenced still
  files_watched_->Set(static_cast<double>(readers_.size()));
  MarkAllDirty();  // the poll that catches what inotify cannot see
}

void FileSource::DiscoverPath(const std::string& path, bool first, Clock::time_point now, bool copy_only) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return;
  auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
  if (auto it = by_inode_.find(key); it != by_inode_.end()) {
    if (copy_only) return;  // a file being read, renamed: followed by its reader
    Reader* r = it->second;
    r->seen = true;
    if (r->rotated) {
      r->rotated = false;
      IndexIdle(r);  // may be parked again
    }
    if (r->path != path) {
      if (auto bp = by_path_.find(r->path); bp != by_path_.end() && bp->second == r) by_path_.erase(bp);
      TLOG_DEBUG(id_, r->path + " is now " + path);
      r->path = path;
      r->target = LinkTargetOf(path, r->dev, r->ino);
      if (r->progress) {
        r->progress->path = path;
        r->progress->target = r->target;
        KnownChanged(r->progress);
      }
    }
    by_path_[path] = r;
    if (r->progress) r->progress->last_seen = now;
    return;
  }
  if (auto sk = skipped_prev_.find(key); sk != skipped_prev_.end() && sk->second == st.st_size) {
    skipped_[key] = st.st_size;
    return;
  }
  if (auto c = compressed_.find(key);
      c != compressed_.end() && c->second.size == st.st_size && c->second.mtime_ns == MtimeNs(st)) {
    c->second.seen = true;  // the same compressed file, unchanged: not opened again
    return;
  }
  if (config_.ignore_older_secs.secs > 0) {
    auto age = std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_mtime);
    if (age > config_.ignore_older_secs.get()) return;
  }
  int fd = OpenForReading(path);
  if (fd < 0 && OutOfDescriptors(errno)) return;  // the next discovery finds it again
  if (fd < 0) {
    if (bad_paths_.insert(path).second) {
      err_open_->Increment();
      LogLimited(log_limiter_, LogLevel::kWarn, id_, "cannot open " + path + ": " + ErrnoText(errno));
    }
    return;
  }
  bad_paths_.erase(path);
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return;
  }
  key = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  if (by_inode_.count(key)) {
    ::close(fd);
    return;
  }
  if (st.st_size > 0 && SkipIfCompressed(fd, key, path)) {
    ::close(fd);
    return;
  }
  auto id = file::Fingerprint(fd, st, fp_options_);
  if (!id.ok()) {
    ::close(fd);
    if (bad_paths_.insert(path).second) {
      err_read_->Increment();
      LogLimited(log_limiter_, LogLevel::kWarn, id_, "cannot read " + path + ": " + id.status().message());
    }
    return;
  }
  if (!id->has_value()) {
    // Too short to identify yet (empty, or a partial first line): held
    // open, so that it is read once it has its lines, wherever it has
    // moved by then (renamed out of the globs before the program wrote
    // its first line). Identify does the rest.
    if (first) {  // emptied (copytruncate, no new line yet) while stopped
      auto [begin, end] = checkpointed_inodes_.equal_range(key);
      for (auto it = begin; it != end; ++it)
        if (!it->second->active && static_cast<uint64_t>(st.st_size) < tracker_->Acked(it->second.get()))
          rewritten_at_start_.push_back({it->second, path, key.second});
    }
    Reader* r = AddReader(path, fd, key, 0);
    r->unchecked = st.st_size == 0;
    r->copy_only = copy_only;
    TLOG_DEBUG(id_, "watching " + path + ": waiting for its first line(s) to identify it");
    KeepWithinCap(r);
    MarkDirty(r);
    return;
  }
  const uint64_t fp = (*id)->fingerprint;
  const Match m = MatchKnown(fd, st, **id, nullptr);
  std::shared_ptr<file::Progress> progress;
  uint64_t pos = 0;
  switch (m.kind) {
    case Match::kUndecided:
    case Match::kCopy:
      // Blocked, a copy (or maybe one) of a file being read, with bytes its
      // reader has not read, or that changed under it (copytruncate): the
      // copy may hold the only lines left of them once the original is
      // truncated, and be deleted (logrotate's `rotate N`) before the reader
      // can go on. Held open, unidentified: Identify decides when it can.
      if (blocked_ && (m.kind == Match::kUndecided ||
                       (m.original != nullptr && m.original->splitter.offset() < static_cast<uint64_t>(st.st_size)))) {
        Reader* r = AddReader(path, fd, key, 0);
        r->undecided = true;
        r->copy_only = copy_only;
        TLOG_DEBUG(id_, "holding " + path + " open: maybe a copy of " + m.other + ", decided once it is read again");
        KeepWithinCap(r);
        MarkDirty(r);
        return;
      }
      if (m.kind == Match::kCopy) NoteCopy(key, st.st_size, path, m.other);
      else discovery_requested_ = true;
      ::close(fd);
      return;
    case Match::kAdopt:
      progress = m.progress;
      pos = progress->emit_pos;
      break;
    case Match::kStartOver:
      // Truncated or rewritten while nobody was reading it: it starts over.
      TLOG_INFO(id_, path + " changed while it was not being read: reading it again from the start");
      if (first) rewritten_at_start_.push_back({m.progress, path, key.second});
      progress = std::make_shared<file::Progress>(fp);
      KeepRewritten(m.progress, progress);
      new_identity_ = true;
      break;
    case Match::kNew:
      if (first) {
        // Another file than the one checkpointed with this inode: that
        // one was rewritten (copytruncate, then new lines) while stopped.
        auto [begin, end] = checkpointed_inodes_.equal_range(key);
        for (auto it = begin; it != end; ++it)
          if (!it->second->active) rewritten_at_start_.push_back({it->second, path, key.second});
      }
      progress = std::make_shared<file::Progress>(fp);
      AddKnown(progress);
      new_identity_ = true;
      pos = first && config_.read_from == "end" && !checkpoints_unreadable_ ? static_cast<uint64_t>(st.st_size) : 0;
      if (!m.other.empty())
        TLOG_INFO(id_, path + " starts with the same line(s) as " + m.other +
                           " but is another file (its content differs): reading it " +
                           (pos > 0 ? "from its end (read_from: end)" : "from the start"));
      progress->emit_pos = pos;
      if (pos > 0) {
        progress->emit_check = file::PositionCheckAt(fd, pos).value_or(0);
        tracker_->Advance(progress.get(), pos, progress->emit_check);
      }
      break;
  }
  progress->last_seen = now;
  KnownChanged(progress);
  progress->active = true;
  progress->path = path;
  if (progress->dev != key.first || progress->ino != key.second) {
    SetInode(progress, key.first, key.second);
    ClaimInode(progress);
  }
  progress->gone = false;
  if (::lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0) {
    ::close(fd);
    progress->active = false;
    return;
  }
  Reader* r = AddReader(path, fd, key, pos);
  r->id = **id;
  r->progress = progress;
  SetActiveReader(r);
  progress->target = r->target;
  r->unchecked = st.st_size == 0;
  r->check_pos = pos;
  r->check = progress->emit_check;
  TopUpLead(progress, fd, HeadEnd(**id));
  TLOG_DEBUG(id_, "watching " + path + " from offset " + std::to_string(pos));
  KeepWithinCap(r);
  MarkDirty(r);
}

// A reader of `fd` (open at `pos`), registered by inode and path and
// counted among the open files; the caller parks it if that is too many.
FileSource::Reader* FileSource::AddReader(const std::string& path, int fd, std::pair<uint64_t, uint64_t> key,
                                          uint64_t pos) {
  readers_.emplace_back(config_.line_delimiter, config_.max_line_bytes.bytes, discard_oversize_);
  Reader* r = &readers_.back();
  r->path = path;
  r->target = LinkTargetOf(path, key.first, key.second);
  r->fd = fd;
  r->dev = key.first;
  r->ino = key.second;
  r->seen = true;
  r->splitter.Reset(pos);
  if (multiline_) r->ml = std::make_unique<file::MultilineAggregator>(&ml_rules_);
  by_inode_[key] = r;
  by_path_[path] = r;
  ++open_count_;
  return r;
}

// ---- Reading -----------------------------------------------------------------

void FileSource::Park(Reader* r) {
  if (r->fd < 0) return;
  // Resume at the start of the partial line (it is read again).
  uint64_t resume = r->splitter.line_end_offset();
  r->splitter.Reset(resume);
  ::close(r->fd);
  r->fd = -1;
  --open_count_;
}

void FileSource::KeepWithinCap(Reader* r) {
  if (open_count_ <= max_open_) return;
  if (blocked_) {
    // Its turn is far off (after Send returns): parked, it would be lost if
    // deleted or renamed out of the globs meanwhile. An identified file
    // read to its end and still at its path gives up its descriptor
    // instead: it loses nothing unless it is written to and then deleted.
    Reader* victim = nullptr;
    for (auto& o : readers_) {
      if (&o == r || &o == reading_ || o.fd < 0 || o.rotated || o.removed || !o.id) continue;
      struct stat st;
      if (::fstat(o.fd, &st) != 0 || st.st_nlink == 0 || static_cast<uint64_t>(st.st_size) != o.splitter.offset())
        continue;
      if (victim == nullptr || o.last_read < victim->last_read) victim = &o;
    }
    struct stat st;
    if (victim != nullptr && ::stat(victim->path.c_str(), &st) == 0 &&
        static_cast<uint64_t>(st.st_dev) == victim->dev && static_cast<uint64_t>(st.st_ino) == victim->ino) {
      Park(victim);
      return;
    }
    LogLimited(blocked_cap_limiter_, LogLevel::kWarn, id_,
               "max_open_files reached (" + std::to_string(max_open_) + " files open) while the sinks' buffers " +
                   "are full: " + r->path + " is not held open, and if it is deleted or renamed out of the " +
                   "globs before the source can read again, its lines are lost (raise max_open_files, or " +
                   "`ulimit -n` / LimitNOFILE=)");
  }
  Park(r);
}

// Files held open by every file source together stay under half of what
// the process may open beyond the 32 descriptors the agent itself holds
// (logs, the API, eventfds, inotify), shared equally: sinks, buffers,
// checkpoints, connections and the journal need theirs too. The agent has
// raised its soft limit to the hard one already (cli.cc), so this binds
// only under a low hard limit.
void FileSource::UpdateOpenCap() {
  size_t cap = config_.max_open_files;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const size_t spare = limit.rlim_cur > 32 ? static_cast<size_t>(limit.rlim_cur) - 32 : 0;
    const size_t share = spare / 2 / std::max<size_t>(1, g_file_sources.load());
    cap = std::min(cap, std::max<size_t>(1, share));
  }
  if (cap < config_.max_open_files && !cap_logged_) {
    cap_logged_ = true;
    TLOG_INFO(id_, "max_open_files is " + std::to_string(config_.max_open_files) + " but the process may open only " +
                       std::to_string(limit.rlim_cur) + " descriptors (ulimit -n, LimitNOFILE=): at most " +
                       std::to_string(cap) + " files are kept open at a time");
  }
  max_open_ = cap;
  while (open_count_ > max_open_ && ParkIdlest(nullptr)) {
  }
}

// A file rotated away holds its descriptor for rotate_wait_secs after its
// last read, for the lines written to it late. Rotations of many files
// then held every descriptor (200 files, max_open_files 20, a rename every
// 0.1-0.3 s: all 20 held by renamed files read to their end), and the
// files still written waited for one for 30 s, long enough to be rotated
// away twice and lose lines. Parked, it is looked for by its inode beside
// its old path when it is due a turn, and read from where it was; not
// once unidentified, nor while it may be a copy still to be told apart.
bool FileSource::Parkable(const Reader& r) {
  return r.fd >= 0 && !r.dirty && !r.removed &&
         (!r.rotated || (r.id && r.progress && !r.undecided && !r.copy_only));
}

bool FileSource::HasParkable() {
  for (auto it = idle_.begin(); it != idle_.end(); it = idle_.erase(it)) {
    if (Parkable(*it->second)) return true;
    it->second->idle_seq = 0;  // filed again once it may be parked again
  }
  return false;
}

void FileSource::IndexIdle(Reader* r) {
  UnindexIdle(r);
  if (!Parkable(*r)) return;
  r->idle_read = r->last_read;
  r->idle_since = r->rotated ? Clock::time_point{} : r->last_read;  // rotated first
  r->idle_seq = ++idle_seq_;
  idle_.emplace(std::make_pair(r->idle_since, r->idle_seq), r);
}

void FileSource::UnindexIdle(Reader* r) {
  if (r->idle_seq == 0) return;
  idle_.erase({r->idle_since, r->idle_seq});
  r->idle_seq = 0;
}

// Closes the open file idle the longest (not one rotated away: it could
// not be found again). False if every open file is busy. The first of
// idle_ that may still be parked: each file is filed when its turn ends
// (ReadTurn), so a file that is not parkable now is dropped, to be filed
// again when it is; every parkable file is in idle_.
bool FileSource::ParkIdlest(Reader* except) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    park_visits_.fetch_add(1, std::memory_order_relaxed);
    Reader* o = it->second;
    if (!Parkable(*o)) {
      o->idle_seq = 0;
      it = idle_.erase(it);
      continue;
    }
    if (o == except || o == reading_) {
      ++it;
      continue;
    }
    if (o->last_read != o->idle_read) {  // read since it was filed: filed again, in its place
      IndexIdle(o);
      it = idle_.begin();
      continue;
    }
    o->idle_seq = 0;
    idle_.erase(it);
    Park(o);
    return true;
  }
  return false;
}

// open(2) for reading. Out of descriptors (other components hold the rest
// of the process's), it closes the idle half of this source's files, keeps
// no more open than that until the next discovery (which tries the full
// share again), makes room for this one and tries once more. -1 with errno
// set on failure.
int FileSource::OpenForReading(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0 || !OutOfDescriptors(errno)) return fd;
  err_open_->Increment();
  LogLimited(log_limiter_, LogLevel::kWarn, id_,
             "the process is out of file descriptors with " + std::to_string(open_count_) +
                 " files open here: closing the idle half of them until the next discovery (raise `ulimit -n` / "
                 "LimitNOFILE=, or lower max_open_files)");
  max_open_ = std::min(max_open_, open_count_ / 2);
  while (open_count_ > max_open_ && ParkIdlest(nullptr)) {
  }
  if (open_count_ >= max_open_ && !ParkIdlest(nullptr)) {
    errno = EMFILE;
    return -1;
  }
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
}

bool FileSource::EnsureOpen(Reader* r) {
  if (r->fd >= 0) return true;
  // Every open file busy: wait for a turn (starved_).
  if (open_count_ >= max_open_ && !ParkIdlest(r)) return false;
  int fd = OpenForReading(r->path);
  if (fd < 0 && OutOfDescriptors(errno)) return false;  // starved: tried again later
  struct stat st;
  if (fd >= 0 && ::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_dev) == r->dev &&
      static_cast<uint64_t>(st.st_ino) == r->ino &&
      ::lseek(fd, static_cast<off_t>(r->splitter.offset()), SEEK_SET) >= 0) {
    r->fd = fd;
    ++open_count_;
    return true;
  }
  if (fd >= 0) ::close(fd);
  // Its path leads elsewhere now; rediscovery finds it by identity if it still exists.
  RemoveReader(r);
  discovery_requested_ = true;
  return false;
}

void FileSource::RemoveReader(Reader* r) {
  if (r->removed) return;
  r->removed = true;
  ++removed_count_;
  UnindexIdle(r);
  UnsetActiveReader(r);
  if (r->fd >= 0) {
    ::close(r->fd);
    r->fd = -1;
    --open_count_;
  }
  if (r->progress) {
    NoteProgress(r);
    r->progress->active = false;
    skipped_.clear();
  }
  if (auto it = by_inode_.find({r->dev, r->ino}); it != by_inode_.end() && it->second == r) by_inode_.erase(it);
  if (auto it = by_path_.find(r->path); it != by_path_.end() && it->second == r) by_path_.erase(it);
}

// Called when a reader is done for good (rotated and idle, or deleted):
// the partial last line and any buffered multiline message are emitted.
void FileSource::CloseReader(Reader* r, bool deleted) {
  if (r->progress) {
    r->splitter.TakePartial([&](std::string_view line, uint64_t end) {
      uint64_t start = r->splitter.line_start();
      if (r->ml) r->ml->Add(line, start, end, Clock::now(), [&](std::string_view m, uint64_t s, uint64_t e) {
        EmitLine(r, m, s, e);
      });
      else EmitLine(r, line, start, end);
    });
    if (r->ml) r->ml->Flush([&](std::string_view m, uint64_t s, uint64_t e) { EmitLine(r, m, s, e); });
    UpdateCounters(r);
    NoteProgress(r);
    r->progress->gone = deleted;
  }
  TLOG_DEBUG(id_, std::string(deleted ? "deleted " : "rotated ") + r->path + " read to its end: closed");
  RemoveReader(r);
}

// Deleted, or moved out of its directory, while closed for want of
// descriptors: its identity is forgotten once what was read of it is
// acknowledged, as a deleted open file's is (kept, it stayed in the
// checkpoints for kForgetAfter, and a churn of files under max_open_files
// grew them by every file deleted). A discovery that finds it under the
// globs before then takes the identity up again where it was. What the
// file held past the read position went with it: said, since a descriptor
// would have kept it readable.
void FileSource::DropParkedGone(Reader* r) {
  if (r->progress) {
    r->progress->gone = true;
    if (r->size_seen > r->splitter.offset())
      LogLimited(log_limiter_, LogLevel::kWarn, id_,
                 r->path + " was deleted or moved out of its directory while closed for want of descriptors " +
                     "(max_open_files " + std::to_string(max_open_) + "), with at least " +
                     std::to_string(r->size_seen - r->splitter.offset()) +
                     " bytes not read: they are lost (raise max_open_files)");
  }
  TLOG_DEBUG(id_, r->path + " is gone from its path while closed: forgotten once acknowledged");
  RemoveReader(r);
}

void FileSource::NoteProgress(Reader* r) {
  auto& p = r->progress;
  if (!p) return;
  uint64_t safe = r->ml && r->ml->buffering() ? r->ml->buffered_start() : r->splitter.line_end_offset();
  if (safe != p->emit_pos) {
    if (safe != r->check_pos) {
      r->check = safe > 0 && r->fd >= 0 ? file::PositionCheckAt(r->fd, safe).value_or(0) : 0;
      r->check_pos = safe;
    }
    p->emit_pos = safe;
    p->emit_check = r->check;
    if (!p->touched) {
      p->touched = true;
      touched_.push_back(p);
    }
  }
}

void FileSource::UpdateCounters(Reader* r) {
  uint64_t t = r->splitter.truncated(), d = r->splitter.discarded();
  uint64_t m = r->ml ? r->ml->truncated() : 0;
  uint64_t delta = (t - r->truncated_seen) + (d - r->discarded_seen) + (m - r->ml_truncated_seen);
  if (delta) {
    err_oversize_->Increment(static_cast<double>(delta));
    // Discarded because the user chose `oversize_policy: discard`: on purpose.
    if (d > r->discarded_seen) metrics_->discarded_intentional().Increment(static_cast<double>(d - r->discarded_seen));
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               "line(s) over max_line_bytes in " + r->path + ": " + (discard_oversize_ ? "discarded" : "truncated"));
  }
  r->truncated_seen = t;
  r->discarded_seen = d;
  r->ml_truncated_seen = m;
}

namespace {
// f.append(key, text) for a text that the recycled event most likely holds
// at this position already (the host, the source type and the path stay
// the same from line to line): compared, and only written if it differs.
[[gnu::always_inline]] inline void AppendUnchanged(Fields& f, std::string_view key, std::string_view text) {
  Value& v = f.append_slot(key);
  if (v.is_string() && detail::SameKey(v.as_string(), text)) return;
  f.assign_at(f.size() - 1, text);
}
}  // namespace

// Flattened: the string and vector code it calls is inlined, which matters
// at ten million lines a second.
[[gnu::flatten]] void FileSource::EmitLine(Reader* r, std::string_view line, uint64_t start, uint64_t end) {
  // Lines straight from an all-ASCII read chunk need no check; held partial
  // lines and multiline messages live elsewhere and are checked.
  const bool in_ascii_chunk = ascii_chunk_ != nullptr && line.data() >= ascii_chunk_ &&
                              line.data() + line.size() <= ascii_chunk_ + ascii_chunk_len_;
  if (!in_ascii_chunk && !ValidUtf8(line)) {
    err_utf8_->Increment();
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               "invalid UTF-8 in " + r->path + " at offset " + std::to_string(start) +
                   ": kept as is (JSON output replaces the bad bytes with U+FFFD)");
  }
  if (events_.empty()) batch_started_ = Clock::now();
  if (r->progress) ++r->progress->batch_events;
  // A recycled event (batch_builder.h) is cleared and written again: its
  // old fields, with whatever transforms added, become spares whose
  // buffers these appends and the transforms after them reuse (event.h).
  // The message comes last so that a parser dropping it moves nothing.
  Fields& f = events_.Next().fields();
  f.clear();
  f.reserve(6);
  f.append(kTimestampField, read_time_);
  AppendUnchanged(f, kHostField, host_);
  AppendUnchanged(f, kSourceTypeField, kSourceType);
  AppendUnchanged(f, kFileField, r->path);
  f.append(kOffsetField, start);
  f.append(kMessageField, line);
  batch_bytes_ += end - start;
}

void FileSource::Truncated(Reader* r, const char* why) {
  TLOG_INFO(id_, r->path + " " + why + ": reading it again from the start");
  if (r->progress) {
    // Complete lines buffered for multiline are old data: emit them. The
    // partial line is dropped: a copy (copytruncate) resumes before it.
    if (r->ml) r->ml->Flush([&](std::string_view m, uint64_t s, uint64_t e) { EmitLine(r, m, s, e); });
    NoteProgress(r);  // up to the start of the partial line
    r->splitter.DropPartial();
    r->progress->active = false;
    skipped_.clear();  // a copy of the old content may now be read
    discovery_requested_ = true;
    if (fp_options_.checksum) {
      // Its copy may hold what was not read (copytruncate): looked for
      // beside it once this turn is over, unless the globs match the copy.
      if (r->progress->emit_pos > 0 || r->size_seen > 0)
        truncated_under_reader_.push_back(
            {r->progress, r->path, r->size_seen > r->progress->emit_pos ? r->size_seen - r->progress->emit_pos : 0});
      UnsetActiveReader(r);
      r->progress.reset();
      r->id.reset();
    } else {
      auto np = std::make_shared<file::Progress>(r->progress->fingerprint);
      np->path = r->path;
      np->target = r->target;
      np->dev = r->dev;
      np->ino = r->ino;
      np->active = true;
      ReplaceKnown(r->progress, np);
      new_identity_ = true;
      UnsetActiveReader(r);
      r->progress = np;
      SetActiveReader(r);
    }
  }
  if (r->ml) r->ml->Drop();
  r->splitter.Reset(0);
  r->check_pos = 0;
  r->check = 0;
  r->size_seen = 0;
  r->unchecked = true;
  ::lseek(r->fd, 0, SEEK_SET);
}

// A truncated checksum file: identify its new content once it has enough
// lines. It may be a copy of a file being read (`cp app.log app.log.1`
// over an existing app.log.1, then `: > app.log`): then it is not read
// again, or the rest of a file no longer read: then it resumes there.
bool FileSource::Identify(Reader* r) {
  struct stat st;
  if (::fstat(r->fd, &st) != 0) return false;
  auto id = file::Fingerprint(r->fd, st, fp_options_);
  if (!id.ok() || !id->has_value()) return false;
  const uint64_t fp = (*id)->fingerprint;
  const Match m = MatchKnown(r->fd, st, **id, r);
  std::shared_ptr<file::Progress> progress;
  uint64_t pos = 0;
  r->undecided = m.kind == Match::kUndecided && (r->undecided || r->copy_only);
  switch (m.kind) {
    case Match::kUndecided:
      discovery_requested_ = true;  // which queues every reader again
      return false;
    case Match::kCopy:
      NoteCopy({r->dev, r->ino}, st.st_size, r->path, m.other);
      RemoveReader(r);
      return false;
    case Match::kAdopt:
      progress = m.progress;
      pos = progress->emit_pos;
      TLOG_INFO(id_, r->path + " now holds what " + progress->path + " held: resuming at offset " +
                         std::to_string(pos));
      break;
    case Match::kStartOver:
    case Match::kNew:
      progress = std::make_shared<file::Progress>(fp);
      if (m.kind == Match::kStartOver) KeepRewritten(m.progress, progress);
      else AddKnown(progress);
      new_identity_ = true;
      if (!m.other.empty())
        TLOG_INFO(id_, r->path + " starts with the same line(s) as " + m.other +
                           " but is another file (its content differs): reading it from the start");
      break;
  }
  if (pos != r->splitter.offset()) {
    if (::lseek(r->fd, static_cast<off_t>(pos), SEEK_SET) < 0) return false;
    if (r->ml) r->ml->Drop();
    r->splitter.Reset(pos);
  }
  r->check_pos = pos;
  r->check = progress->emit_check;
  r->id = **id;
  progress->path = r->path;
  progress->target = r->target;
  if (progress->dev != r->dev || progress->ino != r->ino) {
    SetInode(progress, r->dev, r->ino);
    ClaimInode(progress);
  }
  progress->active = true;
  progress->gone = false;
  progress->last_seen = Clock::now();
  TopUpLead(progress, r->fd, HeadEnd(**id));
  KnownChanged(progress);
  r->copy_only = false;
  r->progress = progress;
  SetActiveReader(r);
  return true;
}

// The known identities with this file's fingerprint, in order: this very
// file (same device and inode); a file being read that this one copies
// (the same bytes where both have them, compared directly); a file no
// longer read whose lead and position check this one has. A file that
// only shares the first lines (a banner, a CSV header) is none of them.
FileSource::Match FileSource::MatchKnown(int fd, const struct stat& st, const file::Identity& id,
                                         const Reader* self) {
  Match m;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t dev = static_cast<uint64_t>(st.st_dev), ino = static_cast<uint64_t>(st.st_ino);
  const uint64_t head_end = HeadEnd(id);
  enum Likeness { kSame, kDifferent, kUnknown };
  auto lead = [&](const file::Progress& p) {
    if (p.lead_bytes == 0) return kUnknown;
    const std::string c = file::ReadAt(fd, head_end, static_cast<size_t>(p.lead_bytes));
    if (p.lead.size() == p.lead_bytes) {
      if (p.lead.compare(0, c.size(), c) != 0) return kDifferent;
      return c.size() == p.lead_bytes ? kSame : kUnknown;
    }
    if (c.size() < p.lead_bytes) return kUnknown;
    return file::Hash64(c.data(), c.size()) == p.lead_hash ? kSame : kDifferent;
  };
  auto position = [&](const file::Progress& p) {
    if (p.emit_pos == 0 || p.emit_check == 0 || size < p.emit_pos) return kUnknown;
    auto c = file::PositionCheckAt(fd, p.emit_pos);
    if (!c) return kUnknown;
    return *c == p.emit_check ? kSame : kDifferent;
  };
  auto [begin, end] = known_.equal_range(id.fingerprint);
  for (auto it = begin; it != end; ++it) {
    const auto& p = it->second;
    if (p->active || p->dev != dev || p->ino != ino) continue;
    m.progress = p;
    m.kind = size < p->emit_pos || lead(*p) == kDifferent || position(*p) == kDifferent ? Match::kStartOver
                                                                                     : Match::kAdopt;
    return m;
  }
  for (auto it = begin; it != end; ++it) {
    const auto& p = it->second;
    if (!p->active) continue;
    Reader* a = ActiveReader(p.get());
    if (a == nullptr || a == self) continue;
    auto copy = CopyOfActive(fd, size, head_end, a);
    m.other = a->path;
    if (!copy) {
      m.kind = Match::kUndecided;
      return m;
    }
    if (*copy) {
      m.kind = Match::kCopy;
      m.original = a;
      return m;
    }
  }
  std::shared_ptr<file::Progress> best;
  bool best_sure = false;
  for (auto it = begin; it != end; ++it) {
    const auto& p = it->second;
    if (p->active) continue;
    const Likeness l = lead(*p), pos = l == kDifferent ? kUnknown : position(*p);
    if (l == kDifferent || pos == kDifferent) {
      m.other = p->path;
      continue;
    }
    const bool sure = l == kSame || pos == kSame;
    if (!best || (sure && !best_sure)) {
      best = p;
      best_sure = sure;
    }
  }
  if (best) {
    m.progress = best;
    m.other = best->path;
    // A copy taken before the original was read this far: nothing new in it.
    m.kind = size < best->emit_pos ? Match::kCopy : Match::kAdopt;
  }
  return m;
}

FileSource::Reader* FileSource::ActiveReader(const file::Progress* p) {
  auto it = active_readers_.find(p);
  if (it == active_readers_.end() || it->second->removed || it->second->progress.get() != p) return nullptr;
  return it->second;
}

void FileSource::SetActiveReader(Reader* r) {
  if (r->progress) active_readers_[r->progress.get()] = r;
}

void FileSource::UnsetActiveReader(Reader* r) {
  if (!r->progress) return;
  if (auto it = active_readers_.find(r->progress.get()); it != active_readers_.end() && it->second == r)
    active_readers_.erase(it);
}

std::optional<bool> FileSource::CopyOfActive(int fd, uint64_t size, uint64_t head_end, Reader* a) {
  int afd = a->fd;
  if (afd < 0) {  // parked: looked at through its path
    afd = ::open(a->path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (afd < 0) return std::nullopt;
  }
  std::optional<bool> result;
  struct stat ast;
  if (::fstat(afd, &ast) == 0 && static_cast<uint64_t>(ast.st_dev) == a->dev &&
      static_cast<uint64_t>(ast.st_ino) == a->ino && static_cast<uint64_t>(ast.st_size) >= a->splitter.offset()) {
    auto same_head = a->id ? file::SameHead(afd, *a->id, fp_options_) : Result<bool>(false);
    if (same_head.ok() && *same_head) {
      // The bytes after the head and the last ones both files have.
      const uint64_t m = std::min<uint64_t>(size, static_cast<uint64_t>(ast.st_size));
      const uint64_t lead_end = std::min<uint64_t>(m, head_end + file::kLeadBytes);
      const uint64_t tail_from = std::max<uint64_t>(head_end, m >= file::kPositionCheckBytes ? m - file::kPositionCheckBytes : 0);
      result = m <= head_end ||
               (file::ReadAt(fd, head_end, lead_end - head_end) == file::ReadAt(afd, head_end, lead_end - head_end) &&
                file::ReadAt(fd, tail_from, m - tail_from) == file::ReadAt(afd, tail_from, m - tail_from));
      // Bytes that differ prove nothing unless the original still holds
      // what its reader read: copytruncate truncates it right after the
      // copy (which is found as it is made), so its bytes may read short,
      // or be those of new content, maybe with the same first lines.
      // Nor if this file shrank meanwhile (it is the original, identified
      // again as it is truncated, and `a` reads its copy). Undecided: asked
      // again once the readers have seen the change.
      struct stat now;
      if (!*result && (!StillAsRead(afd, a) || ::fstat(fd, &now) != 0 || static_cast<uint64_t>(now.st_size) < m))
        result.reset();
    }
  }
  if (afd != a->fd) ::close(afd);
  return result;
}

bool FileSource::StillAsRead(int fd, const Reader* r) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < r->splitter.offset()) return false;
  if (r->id) {
    auto same = file::SameHead(fd, *r->id, fp_options_);
    if (!same.ok() || !*same) return false;
  }
  if (r->check == 0 || r->check_pos == 0) return true;
  auto c = file::PositionCheckAt(fd, r->check_pos);
  return c && *c == r->check;
}

void FileSource::NoteCopy(const std::pair<uint64_t, uint64_t>& key, int64_t size, const std::string& path,
                          const std::string& original) {
  const bool known = skipped_prev_.count(key) || skipped_.count(key);
  skipped_[key] = size;
  if (!known)
    LogLimited(copy_log_limiter_, LogLevel::kInfo, id_,
               path + " holds the same lines as " + original +
                   " (a copy, or a hard link): not read again; looked at again when it changes");
}

bool FileSource::SkipIfCompressed(int fd, const std::pair<uint64_t, uint64_t>& key, const std::string& path,
                                  bool* unchecked) {
  ssize_t got = 0;
  const char* format = CompressedFormat(fd, &got);
  if (unchecked != nullptr) *unchecked = got == 0;
  auto it = compressed_.find(key);
  if (format == nullptr) {
    if (it != compressed_.end()) compressed_.erase(it);  // the inode was reused
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) st = {};
  if (it == compressed_.end()) {
    err_compressed_->Increment();
    LogLimited(compressed_log_limiter_, LogLevel::kInfo, id_,
               path + " is " + format + "-compressed: not read (a compressed rotation holds lines already read " +
                   "from the file it was rotated from); add its name to `exclude` (e.g. exclude: [\"*.gz\"])");
  }
  compressed_[key] = CompressedSeen{st.st_size, MtimeNs(st), true};
  return true;
}

void FileSource::ForgetKnown(const std::shared_ptr<file::Progress>& p) {
  auto [begin, end] = known_.equal_range(p->fingerprint);
  for (auto it = begin; it != end; ++it) {
    if (it->second == p) {
      EraseKnown(it);
      return;
    }
  }
}

void FileSource::ReplaceKnown(const std::shared_ptr<file::Progress>& old, const std::shared_ptr<file::Progress>& np) {
  std::erase_if(truncated_pending_, [&](const auto& p) { return !tracker_->HasPending(p.get()); });
  if (tracker_->HasPending(old.get())) truncated_pending_.push_back(old);
  auto [begin, end] = known_.equal_range(old->fingerprint);
  for (auto it = begin; it != end; ++it) {
    if (it->second == old) {
      EraseKnown(it);
      break;
    }
  }
  AddKnown(np);
}

void FileSource::KeepRewritten(const std::shared_ptr<file::Progress>& old, const std::shared_ptr<file::Progress>& np) {
  SetInode(old, 0, 0);
  KnownChanged(old);
  AddKnown(np);
}

void FileSource::ClaimInode(const std::shared_ptr<file::Progress>& p) {
  std::vector<std::shared_ptr<file::Progress>> before;
  auto [begin, end] = known_by_inode_.equal_range({p->dev, p->ino});
  for (auto it = begin; it != end; ++it) {
    claim_visits_.fetch_add(1, std::memory_order_relaxed);
    if (it->second != p && !it->second->active) before.push_back(it->second);
  }
  for (const auto& q : before) {
    SetInode(q, 0, 0);
    KnownChanged(q);
  }
}

void FileSource::AddKnown(const std::shared_ptr<file::Progress>& p) {
  known_.emplace(p->fingerprint, p);
  p->known = true;
  if (p->dev != 0 || p->ino != 0) known_by_inode_.emplace(std::make_pair(p->dev, p->ino), p);
  KnownChanged(p);
}

FileSource::KnownMap::iterator FileSource::EraseKnown(KnownMap::iterator it) {
  const std::shared_ptr<file::Progress>& p = it->second;
  auto [begin, end] = known_by_inode_.equal_range({p->dev, p->ino});
  for (auto i = begin; i != end; ++i) {
    if (i->second == p) {
      known_by_inode_.erase(i);
      break;
    }
  }
  p->known = false;
  KnownChanged(p);
  return known_.erase(it);
}

void FileSource::SetInode(const std::shared_ptr<file::Progress>& p, uint64_t dev, uint64_t ino) {
  if (p->dev == dev && p->ino == ino) return;
  if (p->known) {
    auto [begin, end] = known_by_inode_.equal_range({p->dev, p->ino});
    for (auto i = begin; i != end; ++i) {
      if (i->second == p) {
        known_by_inode_.erase(i);
        break;
      }
    }
    if (dev != 0 || ino != 0) known_by_inode_.emplace(std::make_pair(dev, ino), p);
  }
  p->dev = dev;
  p->ino = ino;
}

void FileSource::KnownChanged(const std::shared_ptr<file::Progress>& p) {
  if (p->publish_queued) return;
  p->publish_queued = true;
  changed_.push_back(p);
}

// Records (or extends, as the file grows) the lead of `p` from `fd`, if
// `fd` holds the bytes recorded so far.
void FileSource::TopUpLead(const std::shared_ptr<file::Progress>& p, int fd, uint64_t head_end) {
  if (p->lead_bytes >= file::kLeadBytes) return;
  std::string c = file::ReadAt(fd, head_end, file::kLeadBytes);
  if (c.size() <= p->lead_bytes) return;
  if (p->lead_bytes > 0 && file::Hash64(c.data(), static_cast<size_t>(p->lead_bytes)) != p->lead_hash) return;
  p->lead_hash = file::Hash64(c.data(), c.size());
  p->lead_bytes = c.size();
  p->lead = std::move(c);
  KnownChanged(p);
}

// After the splitter took `n` bytes at `off`: the PositionCheck of the
// last line end, from the bytes in hand, and the last bytes kept for the
// next chunk.
void FileSource::NoteChunk(Reader* r, const char* data, size_t n, uint64_t off) {
  constexpr size_t kK = file::kPositionCheckBytes;
  if (r->tail_end != off) r->tail_len = 0;
  const uint64_t le = r->splitter.line_end_offset();
  if (le != r->check_pos && le > 0) {
    const size_t w = static_cast<size_t>(std::min<uint64_t>(kK, le));
    const uint64_t from = le - w;
    if (from >= off - r->tail_len && le <= off + n) {
      char window[kK];
      for (uint64_t o = from; o < le; ++o)
        window[o - from] = o < off ? r->tail[r->tail_len - static_cast<size_t>(off - o)] : data[o - off];
      r->check = file::PositionCheck(window, w);
    } else {
      r->check = r->fd >= 0 ? file::PositionCheckAt(r->fd, le).value_or(0) : 0;
    }
    r->check_pos = le;
  }
  if (n >= kK) {
    std::memcpy(r->tail, data + n - kK, kK);
    r->tail_len = kK;
  } else {
    const size_t keep = std::min(r->tail_len, kK - n);
    std::memmove(r->tail, r->tail + r->tail_len - keep, keep);
    std::memcpy(r->tail + keep, data, n);
    r->tail_len = keep + n;
  }
  r->tail_end = off + n;
}

bool FileSource::ReadTurn(Reader* r) {
  const bool any = ReadTurnOnce(r);
  if (!r->removed) IndexIdle(r);
  return any;
}

// One turn: reads up to max_read_bytes. True if any bytes were read.
bool FileSource::ReadTurnOnce(Reader* r) {
  r->dirty = false;
  if (r->removed) return false;
  struct stat st;
  if (r->fd < 0) {
    // Parked: reopen only if it grew (or changed).
    if (::stat(r->path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_dev) != r->dev ||
        static_cast<uint64_t>(st.st_ino) != r->ino) {
      if (FollowRenamed(r)) return false;  // its next turn opens it there
      DropParkedGone(r);
      discovery_requested_ = true;  // found again at once if the globs match where it went
      return false;
    }
    // Empty at offset 0 but identified: truncated since (see below).
    if (static_cast<uint64_t>(st.st_size) == r->splitter.offset() && (st.st_size > 0 || !r->id)) {
      // Rotated away and parked, with no late lines for rotate_wait_secs:
      // done, as it would be if it had kept its descriptor.
      if (r->rotated && Clock::now() - r->last_read >= config_.rotate_wait_secs.get()) CloseReader(r, false);
      return false;
    }
  }
  if (!EnsureOpen(r)) {
    if (!r->removed) {
      r->dirty = true;
      r->starved = true;
      starved_.push_back(r);  // retried once a descriptor frees up
    }
    return false;
  }
  if (::fstat(r->fd, &st) != 0) return false;
  if (static_cast<uint64_t>(st.st_size) < r->splitter.offset()) {
    Truncated(r, "shrank");
  } else if (r->id && fp_options_.checksum) {
    // At offset 0 too: a file truncated before its first read (found, then
    // copytruncated at once) has lost the content its identity names; kept,
    // that identity stays "being read", and the copy of the content waits
    // for it (MatchKnown: kUndecided) until the file is written again.
    auto same = file::SameHead(r->fd, *r->id, fp_options_);
    if (same.ok() && !*same) {
      Truncated(r, static_cast<uint64_t>(st.st_size) < HeadEnd(*r->id) ? "shrank"
                                                                         : "was rewritten (its first lines changed)");
    } else if (same.ok() && r->check != 0 && r->check_pos > 0 &&
               file::PositionCheckAt(r->fd, r->check_pos).value_or(r->check) != r->check) {
      // Rewritten with the same first lines (a CSV header, a banner) and
      // grown past the read position: the bytes before it changed.
      Truncated(r, "was rewritten (its first lines are the same, the lines before the read position changed)");
    }
  }
  r->size_seen = static_cast<uint64_t>(st.st_size);
  if (r->unchecked && st.st_size > 0 && SkipIfCompressed(r->fd, {r->dev, r->ino}, r->path, &r->unchecked)) {
    std::shared_ptr<file::Progress> p = r->progress;  // device_and_inode: identified while empty
    RemoveReader(r);
    if (p) ForgetKnown(p);
    return false;
  }
  if (!r->id && !Identify(r)) {  // waits for enough lines
    if (r->removed) return false;
    // Gone before it had them: deleted, or renamed out of the globs and
    // idle for rotate_wait_secs. (Not a copy still to be told apart from
    // its original, found while the source was blocked: it has its lines.)
    if (!r->undecided && (st.st_nlink == 0 ||
                          (r->rotated && Clock::now() - r->last_read >= config_.rotate_wait_secs.get()))) {
      TLOG_DEBUG(id_, r->path + " went away before it had a line to identify it by: closed");
      RemoveReader(r);
    } else if (static_cast<uint64_t>(st.st_size) != r->waiting_size) {
      r->waiting_size = static_cast<uint64_t>(st.st_size);
      r->last_read = Clock::now();
    }
    return false;
  }

  auto on_line = [&](std::string_view line, uint64_t end) {
    uint64_t start = r->splitter.line_start();
    if (r->ml)
      r->ml->Add(line, start, end, Clock::now(),
                 [&](std::string_view m, uint64_t s, uint64_t e) { EmitLine(r, m, s, e); });
    else
      EmitLine(r, line, start, end);
  };
  size_t budget = config_.max_read_bytes.bytes;
  bool any = false;
  while (budget > 0) {
    size_t want = std::min(budget, buf_.size());
    ssize_t n = ::read(r->fd, buf_.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      err_read_->Increment();
      LogLimited(log_limiter_, LogLevel::kWarn, id_, "cannot read " + r->path + ": " + ErrnoText(errno));
      break;
    }
    if (n == 0) {
      // At the end: a file deleted or rotated away (and idle) is done.
      if (::fstat(r->fd, &st) == 0 && st.st_nlink == 0) {
        CloseReader(r, true);
        return any;
      }
      if (r->rotated && Clock::now() - r->last_read >= config_.rotate_wait_secs.get()) {
        CloseReader(r, false);
        return any;
      }
      break;
    }
    // Checksum identity: the file may have been truncated and written
    // again since it was identified or checked above (copytruncate under a
    // steady writer). This chunk may then be the new content; fed, it
    // would be counted as the old file's position: the copy of the old
    // content would later resume past lines never read, and the new
    // content be read a second time. Checked after the read, so that a
    // rewrite before it is caught; the chunk is left unread, for the copy
    // (found by the old identity) or the new content (read from its start).
    if (r->id && fp_options_.checksum) {
      auto same = file::SameHead(r->fd, *r->id, fp_options_);
      if (same.ok() && !*same) {
        Truncated(r, "was rewritten while it was being read");
        r->dirty = true;
        return any;
      }
    }
    any = true;
    r->last_read = Clock::now();
    read_time_ = Now();
    if (AllAscii(buf_.data(), static_cast<size_t>(n))) {
      ascii_chunk_ = buf_.data();
      ascii_chunk_len_ = static_cast<size_t>(n);
    }
    const uint64_t chunk_offset = r->splitter.offset();
    r->splitter.Feed(std::string_view(buf_.data(), static_cast<size_t>(n)), on_line);
    NoteChunk(r, buf_.data(), static_cast<size_t>(n), chunk_offset);
    ascii_chunk_ = nullptr;
    budget -= static_cast<size_t>(n);
    if (static_cast<size_t>(n) < want) break;  // caught up; inotify or the poll wakes it again
    if (events_.size() >= kBatchEvents || batch_bytes_ >= kBatchBytes) {
      NoteProgress(r);
      if (!SendBatch(true)) break;
    }
  }
  if (budget == 0) r->dirty = true;
  UpdateCounters(r);
  NoteProgress(r);
  if (r->progress && r->id && r->progress->lead_bytes < file::kLeadBytes &&
      r->splitter.offset() > HeadEnd(*r->id) + r->progress->lead_bytes)
    TopUpLead(r->progress, r->fd, HeadEnd(*r->id));
  return any;
}

void FileSource::PollMultiline(Clock::time_point now) {
  if (!multiline_) return;
  for (auto& r : readers_) {
    if (r.removed || !r.ml || !r.ml->buffering() || now < r.ml->deadline()) continue;
    r.ml->Poll(now, [&](std::string_view m, uint64_t s, uint64_t e) { EmitLine(&r, m, s, e); });
    NoteProgress(&r);
  }
}

// ---- Batches -----------------------------------------------------------------

bool FileSource::SendBatch(bool more) {
  std::vector<std::pair<std::shared_ptr<file::Progress>, uint64_t>> entries;
  entries.reserve(touched_.size());
  for (auto& p : touched_) {
    p->touched = false;
    if (events_.empty()) tracker_->Advance(p.get(), p->emit_pos, p->emit_check);
    else entries.emplace_back(p, tracker_->Add(p.get(), p->emit_pos, p->emit_check, p->batch_events));
    p->batch_events = 0;
  }
  touched_.clear();
  if (events_.empty()) {
    if (!more) ctx_->Flush();
    return true;
  }
  Batch batch = events_.Take(batch_bytes_);
  batch_bytes_ = 0;
  batch.add_finalizer(file::MakeFinalizer(tracker_, std::move(entries)));
  // Send may block (a full buffer): the checkpoint thread goes on writing
  // what gets acknowledged meanwhile, for the identities known now.
  PublishCheckpoints();
  return more ? ctx_->SendMore(std::move(batch)) : ctx_->Send(std::move(batch));
}

// ---- Run ---------------------------------------------------------------------

Status FileSource::Run(SourceContext& ctx) {
  ctx_ = &ctx;
  buf_.resize(std::min<size_t>(kReadChunk, config_.max_read_bytes.bytes));
  LoadState(ctx.stop_token());
  if (ctx.stop_token().stop_requested()) return Status::Ok();
  loaded_ = true;
  for (const auto& pattern : config_.include) include_abs_.push_back(file::AbsolutePattern(pattern));
  OpenInotify();
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  // Delivered lines are checkpointed as they are acknowledged, whatever
  // the reading thread is doing (waiting for input, or blocked in Send).
  tracker_->set_on_advance([this] { KickCheckpoints(); });
  ckpt_thread_ = std::thread([this] {
    NameThread("checkpoints");
    CheckpointLoop();
  });
  // A full buffer blocks Send: discovery goes on meanwhile (Work).
  ctx.SetWhileBlocked(this);
  auto stop = ctx.stop_token();
  std::stop_callback on_stop(stop, [this] {
    if (wake_fd_ >= 0) Wake(wake_fd_);
  });
  const auto cooldown = config_.glob_minimum_cooldown_ms.get();
  const auto triggered_cooldown = std::min<std::chrono::milliseconds>(cooldown, std::chrono::milliseconds(100));
  for (const auto& [fp, p] : known_)
    if (p->ino != 0) checkpointed_inodes_.emplace(std::make_pair(p->dev, p->ino), p);
  Discover(true);
  WarnRewrittenWhileStopped();
  while (!stop.stop_requested()) {
    DrainInotify();
    auto now = Clock::now();
    DiscoverNamed(now);
    ResumeTruncatedFromCopies(now);
    if (now - last_discovery_ >= cooldown || (discovery_requested_ && now - last_discovery_ >= triggered_cooldown))
      Discover(false);
    // One round: every file with data gets one turn.
    bool progressed = false;
    size_t round = ready_.size();
    for (size_t i = 0; i < round && !ready_.empty() && !stop.stop_requested(); ++i) {
      Reader* r = ready_.front();
      ready_.pop_front();
      r->queued = false;
      if (r->removed) continue;
      reading_ = r;
      progressed |= ReadTurn(r);
      reading_ = nullptr;
      if (r->dirty && !r->removed && !r->starved) MarkDirty(r);
    }
    // A file that found every open file queued (a discovery queues them
    // all, for the poll) waits for no more than this round: once it is
    // over, the idle ones can give up their descriptors.
    if (!starved_.empty() && (progressed || open_count_ < max_open_ || HasParkable())) {
      for (Reader* r : starved_) {
        r->starved = false;
        MarkDirty(r);
      }
      starved_.clear();
    }
    PollMultiline(Clock::now());
    if (!events_.empty() || !touched_.empty()) {
      if (!progressed || events_.size() >= kBatchEvents || batch_bytes_ >= kBatchBytes ||
          Clock::now() - batch_started_ >= kBatchLinger) {
        if (!SendBatch()) break;
      }
    }
    Sweep();
    PublishCheckpoints();
    if (progressed || !ready_.empty()) continue;
    // Idle: sleep until inotify, the next discovery, a multiline timeout
    // or stop.
    now = Clock::now();
    auto wake = last_discovery_ + cooldown;
    // A discovery asked for (by inotify) too soon after the last one runs
    // when the triggered cooldown is over, not at the next event or poll:
    // a file created right after a rotation's rename has to be found
    // before it is rotated in turn.
    if (discovery_requested_) wake = std::min(wake, last_discovery_ + triggered_cooldown);
    if (multiline_)
      for (auto& r : readers_)
        if (r.ml) wake = std::min(wake, r.ml->deadline());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
    int timeout = static_cast<int>(std::clamp<int64_t>(ms, 0, 1000));
    ctx_->Flush();  // nothing held back while this waits
    ReturnFreeMemoryWhenIdle();
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    ::poll(fds, 2, timeout);
    if (fds[1].revents & POLLIN) {
      uint64_t n;
      (void)!::read(wake_fd_, &n, sizeof n);  // a stop is seen by the loop's condition
    }
  }
  if (config_.read_to_end_on_stop) ReadToEndOnStop();
  SendBatch();
  PublishCheckpoints();
  return Status::Ok();
}

// read_to_end_on_stop: once the stop is requested, every file is read up to
// the size it has now (inotify may not have told of the last writes yet,
// and the next poll is up to glob_minimum_cooldown_ms away), until
// stop_read_deadline; the multiline messages buffered in files read to that
// size are emitted. What is left is read at the next start, from the
// checkpoints; a partial last line (no delimiter yet) too.
void FileSource::ReadToEndOnStop() {
  DrainInotify();
  DiscoverNamed(Clock::now());
  Discover(false);  // files created since the last discovery
  struct Goal {
    Reader* reader;
    uint64_t size;
  };
  std::vector<Goal> goals;
  for (auto& r : readers_) {
    if (r.removed) continue;
    struct stat st;
    // Parked once rotated away (Parkable): found beside its old path first.
    if (r.fd < 0 && r.rotated && !IsFile(r.path, r.dev, r.ino, &st)) FollowRenamed(&r);
    const bool known = r.fd >= 0 ? ::fstat(r.fd, &st) == 0 : IsFile(r.path, r.dev, r.ino, &st);
    if (known && static_cast<uint64_t>(st.st_size) > r.splitter.offset())
      goals.push_back({&r, static_cast<uint64_t>(st.st_size)});
  }
  const size_t files = goals.size();
  uint64_t read = 0;
  bool out_of_time = false;
  // More files to read than max_open_files: those with nothing left to read
  // give up their descriptors to those waiting for one (the loop gave up
  // at once, leaving them for the next start: lost in a sidecar).
  auto give_up_descriptor = [&](Reader* r) {
    if (r->fd < 0 || r->rotated || !r->id || r == reading_) return false;
    Park(r);
    return true;
  };
  if (std::any_of(goals.begin(), goals.end(), [](const Goal& g) { return g.reader->fd < 0; })) {
    std::set<const Reader*> in_goals;
    for (const auto& g : goals) in_goals.insert(g.reader);
    for (auto& r : readers_)
      if (!r.removed && !in_goals.count(&r)) give_up_descriptor(&r);
  }
  while (!goals.empty() && !out_of_time) {
    bool more = false;     // a file has more to read than its turn took
    bool waiting = false;  // a file found no descriptor
    bool freed = false;    // a file that is done gave its descriptor up
    for (auto it = goals.begin(); it != goals.end();) {
      // Read again each time: a forced or hard stop brings it forward.
      if (Clock::now() >= ctx_->stop_read_deadline()) {
        out_of_time = true;
        break;
      }
      Reader* r = it->reader;
      const uint64_t before = r->splitter.offset();
      reading_ = r;
      ReadTurn(r);
      reading_ = nullptr;
      if (r->removed) {  // rotated or deleted, and read to its end (CloseReader)
        it = goals.erase(it);
        continue;
      }
      if (r->splitter.offset() > before) read += r->splitter.offset() - before;
      if (r->splitter.offset() < it->size) {
        // Its turn ended at max_read_bytes, or it found no descriptor.
        more |= r->dirty && r->splitter.offset() > before;
        waiting |= r->fd < 0;
        ++it;
      } else {
        it = goals.erase(it);
        freed |= give_up_descriptor(r);
      }
    }
    if ((events_.size() >= kBatchEvents || batch_bytes_ >= kBatchBytes) && !SendBatch(true)) break;  // stopping hard
    // The files left cannot be read on now (not identified yet, a read
    // error, truncated, no descriptor freed): the next start reads them.
    if (!more && !(waiting && freed)) break;
  }
  // The writer is done: a multiline message waiting for its next line or
  // its timeout is complete (a stack trace logged on the way out).
  for (auto& r : readers_) {
    if (r.removed || !r.ml || !r.ml->buffering() ||
        std::any_of(goals.begin(), goals.end(), [&](const Goal& g) { return g.reader == &r; }))
      continue;
    r.ml->Flush([&](std::string_view m, uint64_t s, uint64_t e) { EmitLine(&r, m, s, e); });
    NoteProgress(&r);
  }
  uint64_t left = 0;
  for (const auto& g : goals)
    if (g.size > g.reader->splitter.offset()) left += g.size - g.reader->splitter.offset();
  if (left > 0) {
    TLOG_WARN(id_, "read_to_end_on_stop: " + std::to_string(left) + " bytes of " + std::to_string(goals.size()) +
                       " file(s) (" + goals.front().reader->path + (goals.size() > 1 ? ", ..." : "") +
                       ") were not read at the stop" +
                       (out_of_time ? " (the time for reading ran out: the first half of the drain)" : "") +
                       "; they are read at the next start");
  } else if (read > 0) {
    TLOG_DEBUG(id_, "read_to_end_on_stop: read " + std::to_string(read) + " bytes of " + std::to_string(files) +
                        " file(s) at the stop");
  }
}

// Called from inside Send, SendMore or Flush while they wait for room in a
// full buffer, on this thread: files that appear are opened and identified
// (a file created during a sink outage may be deleted by logrotate, or
// renamed out of the globs, before the sink is back), and new identities
// are handed to the checkpoint thread. Nothing is read: the lines would
// have nowhere to go, and the batch being sent holds the read positions.
void FileSource::Work() {
  if (blocked_ || ctx_ == nullptr || ctx_->stop_token().stop_requested()) return;
  blocked_ = true;
  DrainInotify();
  const auto now = Clock::now();
  DiscoverNamed(now);
  const auto cooldown = config_.glob_minimum_cooldown_ms.get();
  const auto triggered_cooldown = std::min<std::chrono::milliseconds>(cooldown, std::chrono::milliseconds(100));
  if (now - last_discovery_ >= cooldown || (discovery_requested_ && now - last_discovery_ >= triggered_cooldown)) {
    Discover(false);
    // What the readers do not get to read while blocked is at least known,
    // should a file be truncated before they do (ResumeTruncatedFromCopies).
    for (auto& r : readers_) {
      struct stat st;
      if (!r.removed && r.fd >= 0 && ::fstat(r.fd, &st) == 0 && static_cast<uint64_t>(st.st_size) > r.size_seen)
        r.size_seen = static_cast<uint64_t>(st.st_size);
    }
  }
  PublishCheckpoints();
  blocked_ = false;
}

// What a stop gave up is read again at the next start from the checkpoint,
// if the file still holds it there. Not if it was deleted, nor if its
// inode now holds other content (truncated: `: > app.log`, copytruncate
// with the copy outside the globs) and no file the globs match starts
// with what it held.
uint64_t FileSource::UndeliveredGone(std::string* where) {
  if (!loaded_) return 0;
  std::vector<std::pair<std::shared_ptr<file::Progress>, const char*>> lost;
  std::vector<std::shared_ptr<file::Progress>> rewritten;
  for (const auto& [fp, p] : known_) {
    if (tracker_->Undelivered(p.get()) == 0) continue;
    if (p->active) {
      // Changed since its reader last looked (the source stopped first).
      Reader* r = ActiveReader(p.get());
      struct stat st;
      if (r == nullptr || r->fd < 0 || ::fstat(r->fd, &st) != 0) continue;
      if (st.st_nlink == 0) lost.emplace_back(p, "deleted");
      else if (!StillAsRead(r->fd, r)) rewritten.push_back(p);
      continue;
    }
    if (p->gone) {
      lost.emplace_back(p, "deleted");
      continue;
    }
    bool replaced = p->dev == 0 && p->ino == 0;  // KeepRewritten
    for (const auto& r : readers_)
      if (!r.removed && r.dev == p->dev && r.ino == p->ino && r.progress != p) replaced = true;
    if (replaced) rewritten.push_back(p);
  }
  for (const auto& p : truncated_pending_)
    if (tracker_->Undelivered(p.get()) > 0) rewritten.push_back(p);
  if (!rewritten.empty()) {
    // A copy (copytruncate's `app.log.1`) that the globs match, or beside
    // the file (ResumeFromCopy), is found at the next start by its first
    // lines, and resumed.
    std::set<std::string> paths;
    for (const auto& pattern : config_.include) {
      file::GlobWalk walk;
      file::ExpandGlob(pattern, &walk);
      for (const auto& m : walk.matches)
        if (!m.is_directory && !m.is_other && !Excluded(m.path)) paths.insert(m.path);
    }
    if (fp_options_.checksum)
      for (const auto& p : rewritten)
        for (const std::string& of : {p->path, p->target})
          if (!of.empty())
            for (auto& path : RotationNamesOf(of, nullptr)) paths.insert(std::move(path));
    std::set<uint64_t> copies;
    for (const auto& path : paths) {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) continue;
      struct stat st;
      if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        auto id = file::Fingerprint(fd, st, fp_options_);
        if (id.ok() && id->has_value()) copies.insert((*id)->fingerprint);
      }
      ::close(fd);
    }
    for (const auto& p : rewritten)
      if (!copies.count(p->fingerprint)) lost.emplace_back(p, "truncated or rewritten");
  }
  uint64_t n = 0;
  std::set<std::string> named;
  bool more = false;
  for (const auto& [p, how] : lost) {
    n += tracker_->Undelivered(p.get());
    if (named.count(p->path)) continue;
    if (named.size() == 5) {
      more = true;
      continue;
    }
    named.insert(p->path);
    *where += (where->empty() ? "" : ", ") + p->path + " (" + how + ")";
  }
  if (more) *where += ", ...";
  return n;
}

void FileSource::Finish() {
  if (!loaded_) return;
  tracker_->set_on_advance(nullptr);
  StopCheckpointThread();
  PublishCheckpoints();  // Run has returned: its state is this thread's now
  WriteCheckpoints(true);
}

TRIBUTARY_REGISTER_SOURCE("file", FileSource);

}  // namespace tributary
