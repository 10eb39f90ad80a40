#include "sources/journald_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <filesystem>

#include "agent/backoff.h"
#include "agent/env.h"
#include "agent/json.h"

namespace tributary {

namespace fs = std::filesystem;

// ---- JournalCursorTracker --------------------------------------------------

uint64_t JournalCursorTracker::Add(std::string cursor) {
  std::lock_guard lock(mu_);
  uint64_t seq = next_seq_++;
  entries_.push_back(Entry{seq, std::move(cursor)});
  return seq;
}

void JournalCursorTracker::Ack(uint64_t seq, BatchStatus status) {
  std::lock_guard lock(mu_);
  if (entries_.empty() || seq < entries_.front().seq) return;
  size_t idx = static_cast<size_t>(seq - entries_.front().seq);
  if (idx >= entries_.size()) return;
  entries_[idx].state = status == BatchStatus::kFailed ? Entry::State::kFailed : Entry::State::kDone;
  while (!entries_.empty() && entries_.front().state == Entry::State::kDone) {
    committed_ = std::move(entries_.front().cursor);
    entries_.pop_front();
  }
}

std::string JournalCursorTracker::committed() const {
  std::lock_guard lock(mu_);
  return committed_;
}

void JournalCursorTracker::Start(std::string cursor) {
  std::lock_guard lock(mu_);
  if (entries_.empty() && next_seq_ == 0) committed_ = std::move(cursor);
}

size_t JournalCursorTracker::pending() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// ---- Value encoding --------------------------------------------------------

bool IsPrintableJournalValue(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  bool high = false;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = p[i];
    if (c < 0x20) {
      if (c != '\t' && c != '\n') return false;
    } else if (c == 0x7f) {
      return false;
    } else if (c >= 0x80) {
      // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
      if (c == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) return false;
      high = true;
    }
  }
  return !high || IsValidUtf8(s);
}

void AppendBase64(std::string_view data, std::string* out) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  out->reserve(out->size() + (n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out->push_back(kAlphabet[(v >> 18) & 63]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(kAlphabet[(v >> 6) & 63]);
    out->push_back(kAlphabet[v & 63]);
  }
  if (i < n) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= uint32_t{p[i + 1]} << 8;
    out->push_back(kAlphabet[(v >> 18) & 63]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out->push_back('=');
  }
}

// ---- Config ----------------------------------------------------------------

namespace {

constexpr std::string_view kCoredumpMessageId = "fc2e22bc6ee647b6b90729ab34a250b1";
constexpr std::string_view kBinaryFieldsField = "binary_fields";
constexpr std::chrono::seconds kFileCheckInterval{10};
constexpr std::string_view kSourceRealtimeField = "_SOURCE_REALTIME_TIMESTAMP";

// A journal realtime value: decimal microseconds since the epoch, after
// 1970 and before the year 10000 (journalctl's VALID_REALTIME, bounded to
// what a timestamp holds).
std::optional<uint64_t> ParseRealtimeUsec(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  constexpr uint64_t kYear10000Usec = 253402300800ull * 1000000ull;
  if (v == 0 || v >= kYear10000Usec) return std::nullopt;
  return v;
}

std::string CheckMatches(const std::map<std::string, std::vector<std::string>>& m) {
  for (const auto& [field, values] : m) {
    if (field.empty()) return "field names must not be empty";
    for (char c : field) {
      if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
        return "journal field names are upper-case letters, digits and '_' (got \"" + field + "\")";
    }
    if (values.empty()) return "field " + field + " needs at least one value";
  }
  return "";
}

std::string CheckUnits(const std::vector<std::string>& units) {
  for (const auto& u : units)
    if (u.empty()) return "unit names must not be empty";
  return "";
}

std::string ErrnoText(int r) { return std::strerror(r < 0 ? -r : r); }

}  // namespace

const config::Schema<JournaldSource::Config>& JournaldSource::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("journal_directory", &Config::journal_directory,
            "Read the journal files in this directory (and its machine-id subdirectories) instead of "
            "the system journal, e.g. a host's /var/log/journal mounted into a container.")
        .DefaultText("the system journal");
    s.Field("include_units", &Config::include_units,
            "Only entries of these systemd units, matched as `journalctl -u` does (the unit's own "
            "messages, its coredumps, PID 1's and root daemons' messages about it, and for a `.slice` "
            "its processes' messages). A name without a unit suffix gets `.service`. Empty: all units.")
        .Check<std::vector<std::string>>(CheckUnits);
    s.Field("exclude_units", &Config::exclude_units,
            "Drop entries of these units (same matching as `include_units`).")
        .Check<std::vector<std::string>>(CheckUnits);
    s.Field("include_matches", &Config::include_matches,
            "Only entries where one of these fields has one of the listed values (field: [values]); "
            "an entry matching any pair is included. Combined with `include_units` by AND.")
        .Check<std::map<std::string, std::vector<std::string>>>(CheckMatches);
    s.Field("exclude_matches", &Config::exclude_matches,
            "Drop entries where one of these fields has one of the listed values.")
        .Check<std::map<std::string, std::vector<std::string>>>(CheckMatches);
    s.Field("current_boot_only", &Config::current_boot_only,
            "With no checkpoint yet, start at the first entry of the running boot (`_BOOT_ID` of "
            "this kernel) instead of the beginning of the journal. It decides only where a first "
            "start begins: with a checkpoint, everything after the cursor is read, also what an "
            "earlier boot left unread. Default `false` with `journal_directory` (journals of other "
            "boots or machines), `true` for the system journal.")
        .DefaultText("true; false with journal_directory");
    s.Field("since_now", &Config::since_now,
            "With no checkpoint yet, start at the end of the journal instead of its beginning "
            "(overrides `current_boot_only`).");
    s.Field("stop_at_end", &Config::stop_at_end,
            "Finish when the end of the journal is reached instead of following it (one-shot "
            "backfills; the agent exits once every source has finished).");
    s.Field("batch_size", &Config::batch_size, "Most entries per batch.").Min(1).Max(1000000);
    s.Field("checkpoint_interval_ms", &Config::checkpoint_interval_ms,
            "Write the acknowledged cursor at most this often (and always at shutdown). After a "
            "crash, at most this much acknowledged data is read again.")
        .Min(0);
    return s;
  }();
  return s;
}

// ---- Environment checks ----------------------------------------------------

namespace {

// Journal files directly in `dir` and in its immediate subdirectories.
void FindJournalFiles(const std::string& dir, int depth, std::vector<std::string>* out) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    std::error_code ec2;
    if (it->is_directory(ec2)) {
      if (depth > 0) FindJournalFiles(p.string(), depth - 1, out);
    } else {
      std::string name = p.filename().string();
      if (name.ends_with(".journal") || name.ends_with(".journal~")) out->push_back(p.string());
    }
  }
}

bool IsId128Name(std::string_view name) {
  auto hex = [](std::string_view v) {
    for (char c : v)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
  };
  if (name.size() == 32) return hex(name);
  if (name.size() != 36 || name[8] != '-' || name[13] != '-' || name[18] != '-' || name[23] != '-') return false;
  std::string compact;
  for (char c : name)
    if (c != '-') compact += c;
  return hex(compact);
}

bool IsJournalFileName(std::string_view name) { return name.ends_with(".journal") || name.ends_with(".journal~"); }

// The journal files sd-journal reads in `dir`: those directly in it and in
// its machine-id subdirectories (only `machine`'s, if given), as
// sd_journal_open_directory() and sd_journal_open() pick them.
void FindReadJournalFiles(const std::string& dir, const std::string& machine, std::vector<std::string>* out) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::error_code ec2;
    if (it->is_directory(ec2)) {
      if (!IsId128Name(name) || (!machine.empty() && name != machine)) continue;
      std::error_code ec3;
      for (fs::directory_iterator sub(it->path(), ec3), send; !ec3 && sub != send; sub.increment(ec3)) {
        std::error_code ec4;
        if (!sub->is_directory(ec4) && IsJournalFileName(sub->path().filename().string()))
          out->push_back(sub->path().string());
      }
    } else if (IsJournalFileName(name)) {
      out->push_back(it->path().string());
    }
  }
}

std::string JournalFileErrorText(int r) {
  switch (r < 0 ? -r : r) {
    case EBADMSG:
      return ErrnoText(r) + ": corrupt, or not a journal file";
    case ENODATA:
      return ErrnoText(r) + ": empty or truncated";
    case EPROTONOSUPPORT:
      return ErrnoText(r) + ": a journal format or compression this libsystemd cannot read";
    case EACCES:
    case EPERM:
      return ErrnoText(r) + ": add the user to the systemd-journal group";
    default:
      return ErrnoText(r);
  }
}

config::EnvCheck CheckJournalDir(const std::string& dir, bool required) {
  config::EnvCheck c{"journal directory " + dir + " is readable", true, ""};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    c.ok = !required;
    c.detail = "does not exist or is not a directory";
    return c;
  }
  if (::access(dir.c_str(), R_OK | X_OK) != 0) {
    c.ok = false;
    c.detail = std::string(std::strerror(errno)) + " (add the user to the systemd-journal group)";
    return c;
  }
  std::vector<std::string> files;
  FindJournalFiles(dir, 1, &files);
  size_t readable = 0;
  for (const auto& f : files)
    if (::access(f.c_str(), R_OK) == 0) ++readable;
  if (files.empty()) {
    c.ok = !required;
    c.detail = "holds no journal files";
  } else if (readable == 0) {
    c.ok = false;
    c.detail = "none of its " + std::to_string(files.size()) +
               " journal files is readable by this user (add the user to the systemd-journal group)";
  }
  return c;
}

}  // namespace

void JournaldSource::CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out) {
  if (config.journal_directory) {
    out->push_back(CheckJournalDir(*config.journal_directory, true));
    return;
  }
  // The system journal: persistent (/var/log/journal) or volatile
  // (/run/log/journal); at least one must be readable.
  config::EnvCheck persistent = CheckJournalDir("/var/log/journal", false);
  config::EnvCheck runtime = CheckJournalDir("/run/log/journal", false);
  std::vector<std::string> files;
  FindJournalFiles("/var/log/journal", 1, &files);
  FindJournalFiles("/run/log/journal", 1, &files);
  size_t readable = 0;
  for (const auto& f : files)
    if (::access(f.c_str(), R_OK) == 0) ++readable;
  config::EnvCheck c{"the system journal is readable", true, ""};
  if (files.empty()) {
    c.ok = false;
    c.detail = "no journal files in /var/log/journal or /run/log/journal (is systemd-journald running?)";
  } else if (readable == 0) {
    c.ok = false;
    c.detail = "none of " + std::to_string(files.size()) +
               " journal files is readable by this user (add the user to the systemd-journal group)";
  } else if (!persistent.ok || !runtime.ok) {
    c.detail = !persistent.ok ? persistent.detail : runtime.detail;
  }
  out->push_back(std::move(c));
}

// ---- Source ----------------------------------------------------------------

std::string JournaldSource::NormalizeUnitName(std::string_view name) {
  static constexpr std::string_view kSuffixes[] = {".service", ".socket",  ".target", ".device",
                                                   ".mount",   ".automount", ".swap", ".timer",
                                                   ".path",    ".slice",   ".scope"};
  for (auto s : kSuffixes)
    if (name.ends_with(s)) return std::string(name);
  return std::string(name) + ".service";
}

Result<std::unique_ptr<Source>> JournaldSource::Build(const Config& config, BuildContext& ctx) {
  std::unique_ptr<JournaldSource> s(new JournaldSource(config, ctx));
  if (Status st = PrepareStateDir(s->checkpoint_dir_, "the journal cursor's checkpoints"); !st.ok()) return st;
  return std::unique_ptr<Source>(std::move(s));
}

JournaldSource::JournaldSource(const Config& config, BuildContext& ctx)
    : config_(config),
      id_(ctx.id),
      checkpoint_dir_(StateDir(ctx.data_dir, kStateDir, ctx.id)),
      checkpoint_path_(checkpoint_dir_ + "/cursor"),
      tracker_(std::make_shared<JournalCursorTracker>()),
      read_errors_(&ctx.metrics->Errors("read_failed", "receiving")),
      vacuumed_(&ctx.metrics->Errors("entries_vacuumed", "receiving")),
      field_errors_(&ctx.metrics->Errors("invalid_field", "receiving")),
      checkpoint_errors_(&ctx.metrics->Errors("checkpoint_failed", "receiving")),
      checkpoints_(&ctx.metrics->Checkpoints()) {
  for (const auto& u : config_.include_units) include_units_.push_back(NormalizeUnitName(u));
  for (const auto& u : config_.exclude_units) exclude_units_.push_back(NormalizeUnitName(u));
  for (const auto& u : exclude_units_) exclude_slices_ = exclude_slices_ || u.ends_with(".slice");
}

JournaldSource::~JournaldSource() { Close(); }

// ---- A journal file cut short under its mmap ------------------------------

// sd-journal reads journal files through mmap. A file truncated or
// overwritten in place while it is read (`: > x.journal`, a copy over it, a
// full disk) makes the next read of a page past its new end raise SIGBUS,
// which killed the whole agent. journald and journalctl survive it with a
// handler of their own, which the public API leaves to its users: this one
// maps a page of zeros over the faulting page and counts it. sd-journal then
// reads zeros, which it refuses as a corrupt object, and the source drops
// the batch it was reading and reopens at its last cursor (Run).
namespace {

std::atomic<uint64_t> g_sigbus_pages{0};

void OnSigbus(int sig, siginfo_t* info, void*) {
  const long page = sysconf(_SC_PAGESIZE);
  void* at = info != nullptr ? info->si_addr : nullptr;
  if (at == nullptr || page <= 0 ||
      mmap(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(at) & ~(static_cast<uintptr_t>(page) - 1)),
           static_cast<size_t>(page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
           0) == MAP_FAILED) {
    signal(sig, SIG_DFL);  // not a page we can replace: the fault happens again, and ends the process as before
    return;
  }
  g_sigbus_pages.fetch_add(1, std::memory_order_relaxed);
}

void InstallSigbusHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa = {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, nullptr);
  });
}

uint64_t JournalSigbusCount() { return g_sigbus_pages.load(std::memory_order_relaxed); }

}  // namespace

void JournaldSource::Close() {
  if (j_ != nullptr) sd_journal_close(j_);
  j_ = nullptr;
  fd_ = -1;
  have_current_ = false;
}

Status JournaldSource::Open() {
  Close();
  InstallSigbusHandler();
  // sd-journal opens every journal file and keeps it open; past the open
  // files limit it skips the rest without a word and leaves no descriptor
  // for the checkpoint, whose error then blamed the checkpoint file.
  if (Status s = CheckDescriptors(ListJournalFiles().size()); !s.ok()) return s;
  int r = config_.journal_directory
              ? sd_journal_open_directory(&j_, config_.journal_directory->c_str(), 0)
              : sd_journal_open(&j_, SD_JOURNAL_LOCAL_ONLY);
  if (r < 0) {
    j_ = nullptr;
    return Status::IoError("cannot open the journal" +
                           (config_.journal_directory ? " in " + *config_.journal_directory : std::string()) +
                           ": " + ErrnoText(r));
  }
  struct stat dir{};
  dir_known_ = config_.journal_directory && ::stat(config_.journal_directory->c_str(), &dir) == 0;
  dir_dev_ = dir.st_dev;
  dir_ino_ = dir.st_ino;
  // Whole field values, never truncated at the default 64 KiB.
  sd_journal_set_data_threshold(j_, 0);
  // The fd sets up inotify watches; without it (inotify limits) we still
  // see appends to open files by polling, but not new files.
  fd_ = sd_journal_get_fd(j_);
  if (fd_ < 0) {
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               "cannot watch the journal for changes (" + ErrnoText(fd_) +
                   "); polling instead, new journal files are seen only after a reopen");
  }
  CheckJournalFiles(/*final=*/false);

  return AddMatches(/*boot=*/false);
}

Status JournaldSource::CheckDescriptors(size_t journal_files) const {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return Status::Ok();
  size_t open = 0;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++open;
  // What the checkpoint, its directory, inotify and the other components need.
  constexpr size_t kSpare = 32;
  if (ec || open + journal_files + kSpare <= limit.rlim_cur) return Status::Ok();
  return Status::IoError(
      "the journal" + (config_.journal_directory ? " in " + *config_.journal_directory : std::string()) + " has " +
      std::to_string(journal_files) + " files, and sd-journal keeps each open, but the agent may open only " +
      std::to_string(limit.rlim_cur > open ? limit.rlim_cur - open : 0) + " more files (open files limit " +
      std::to_string(limit.rlim_cur) + ", " + std::to_string(open) +
      " open): raise the limit (LimitNOFILE= in the service, ulimit -n), or remove archived journal files "
      "(journalctl --vacuum-files=N)");
}

Status JournaldSource::AddMatches(bool boot) {
  // The filter is an AND of OR-groups of alternatives, each alternative an
  // AND of field=value terms (sd-journal's three match levels).
  using Alternative = std::vector<std::string>;
  std::vector<std::vector<Alternative>> groups;
  if (!include_units_.empty()) {
    std::vector<Alternative> g;
    for (const auto& u : include_units_) {
      g.push_back({"_SYSTEMD_UNIT=" + u});
      g.push_back({"MESSAGE_ID=" + std::string(kCoredumpMessageId), "_UID=0", "COREDUMP_UNIT=" + u});
      g.push_back({"_PID=1", "UNIT=" + u});
      g.push_back({"_UID=0", "OBJECT_SYSTEMD_UNIT=" + u});
      // journalctl -u X.slice: also every process in the slice.
      if (u.ends_with(".slice")) g.push_back({"_SYSTEMD_SLICE=" + u});
    }
    groups.push_back(std::move(g));
  }
  if (!config_.include_matches.empty()) {
    std::vector<Alternative> g;
    for (const auto& [field, values] : config_.include_matches)
      for (const auto& v : values) g.push_back({field + "=" + v});
    groups.push_back(std::move(g));
  }
  int r = 0;
  if (boot) {
    sd_id128_t id;
    r = sd_id128_get_boot(&id);
    if (r < 0) return Status::IoError("cannot read the boot id: " + ErrnoText(r));
    char text[SD_ID128_STRING_MAX];
    groups.push_back({{"_BOOT_ID=" + std::string(sd_id128_to_string(id, text))}});
  }
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    if (gi > 0 && (r = sd_journal_add_conjunction(j_)) < 0) break;
    for (size_t ai = 0; ai < groups[gi].size() && r >= 0; ++ai) {
      if (ai > 0 && (r = sd_journal_add_disjunction(j_)) < 0) break;
      for (const auto& term : groups[gi][ai])
        if ((r = sd_journal_add_match(j_, term.data(), term.size())) < 0) break;
    }
    if (r < 0) break;
  }
  if (r < 0) return Status::InvalidArgument("cannot add journal match: " + ErrnoText(r));
  return Status::Ok();
}

Status JournaldSource::SeekAfter(const std::string& cursor) {
  int r = sd_journal_seek_cursor(j_, cursor.c_str());
  if (r < 0) return Status::InvalidArgument("cannot seek to cursor: " + ErrnoText(r));
  r = sd_journal_next(j_);
  if (r < 0) return Status::IoError("cannot read after seeking to the cursor: " + ErrnoText(r));
  // Landed on the saved entry itself: it was sent already, skip it. Landed
  // on a later one (the saved entry was vacuumed, or no longer matches):
  // that one is unread, so keep it for the next read.
  if (r > 0 && sd_journal_test_cursor(j_, cursor.c_str()) <= 0) {
    have_current_ = true;
    ReportVacuumedCheckpoint(cursor);
  }
  return Status::Ok();
}

void JournaldSource::ReportVacuumedCheckpoint(const std::string& cursor) {
  // The cursor's realtime: its field "t=<hex usec>".
  uint64_t at = 0;
  const size_t t = cursor.find(";t=");
  if (t == std::string::npos) return;
  const char* p = cursor.c_str() + t + 3;
  char* end = nullptr;
  at = std::strtoull(p, &end, 16);
  if (end == p) return;
  uint64_t oldest = 0, newest = 0, next = 0;
  if (sd_journal_get_cutoff_realtime_usec(j_, &oldest, &newest) <= 0 || at >= oldest) return;  // still covered:
  // the entry no longer matches the filters, or its file alone was deleted
  (void)sd_journal_get_realtime_usec(j_, &next);
  auto when = [](uint64_t usec) {
    return FormatRfc3339(Timestamp(std::chrono::microseconds(static_cast<int64_t>(usec))));
  };
  vacuumed_->Increment();
  LogLimited(log_limiter_, LogLevel::kWarn, id_,
             "the checkpointed journal entry (of " + when(at) +
                 ") is no longer in the journal, whose oldest entry is of " + when(oldest) +
                 ": journal files were vacuumed (or deleted) while the agent was behind or stopped; entries "
                 "written between those times are lost, unless that file had been read to its end; reading on "
                 "from the entry of " + when(next));
}

Status JournaldSource::SeekStart() {
  std::string saved;
  Status read = ReadFileText(checkpoint_path_, &saved);
  if (read.ok() && saved.find_first_not_of(" \t\r\n") == std::string::npos) {
    // Written by rename, so never empty by itself: say what happens next.
    checkpoint_errors_->Increment();
    TLOG_WARN(id_, "checkpoint " + checkpoint_path_ + " is empty; starting as if there were none");
  }
  if (!read.ok() && read.code() != StatusCode::kNotFound) {
    // Out of descriptors or memory for a moment: Run tries again. Going on
    // without the cursor would read the journal again, or skip it.
    if (read.code() == StatusCode::kResourceExhausted) return read;
    checkpoint_errors_->Increment();
    TLOG_ERROR(id_, "ignoring unreadable checkpoint: " + read.message());
    saved.clear();
  }
  // One line; surrounding whitespace is not part of a cursor (and a file
  // of only whitespace was reported as empty above, once).
  const size_t first = saved.find_first_not_of(" \t\r\n");
  saved = first == std::string::npos ? std::string()
                                     : saved.substr(first, saved.find_last_not_of(" \t\r\n") - first + 1);
  if (!saved.empty()) {
    Status s = SeekAfter(saved);
    if (s.ok()) {
      read_cursor_ = saved;
      written_cursor_ = saved;
      TLOG_INFO(id_, "resuming after the checkpointed journal cursor");
      return s;
    }
    checkpoint_errors_->Increment();
    TLOG_WARN(id_, "checkpoint " + checkpoint_path_ + " is unusable (" + s.message() +
                       "); reading from the beginning of the journal");
    have_current_ = false;
    int r = sd_journal_seek_head(j_);
    return r < 0 ? Status::IoError("cannot seek to the journal head: " + ErrnoText(r)) : Status::Ok();
  }
  if (config_.since_now) return SeekTail();
  if (current_boot_only()) return SeekBootStart();
  int r = sd_journal_seek_head(j_);
  return r < 0 ? Status::IoError("cannot seek to the journal head: " + ErrnoText(r)) : Status::Ok();
}

Status JournaldSource::SeekTail() {
  // The journal's last entry whatever the filters, so that a source for a
  // quiet unit also has a position to checkpoint and resume from.
  sd_journal_flush_matches(j_);
  int r = sd_journal_seek_tail(j_);
  if (r >= 0) r = sd_journal_previous(j_);
  if (r < 0) return Status::IoError("cannot seek to the journal tail: " + ErrnoText(r));
  std::string last;
  if (r > 0) {
    char* c = nullptr;
    if ((r = sd_journal_get_cursor(j_, &c)) < 0)
      return Status::IoError("cannot get the journal cursor: " + ErrnoText(r));
    last = c;
    free(c);
  }
  if (Status m = AddMatches(/*boot=*/false); !m.ok()) return m;
  if (last.empty()) {
    // An empty journal: everything in it will be new.
    r = sd_journal_seek_head(j_);
    return r < 0 ? Status::IoError("cannot seek to the journal head: " + ErrnoText(r)) : Status::Ok();
  }
  read_cursor_ = last;
  return SeekAfter(last);
}

Status JournaldSource::SeekBootStart() {
  // The boot's first entry through sd-journal's index, then the matches
  // without the boot: from here on every entry counts, whatever its boot.
  sd_journal_flush_matches(j_);
  Status s = AddMatches(/*boot=*/true);
  if (!s.ok()) return s;
  int r = sd_journal_seek_head(j_);
  if (r >= 0) r = sd_journal_next(j_);
  if (r < 0) return Status::IoError("cannot find the running boot's first entry: " + ErrnoText(r));
  std::string first;
  if (r > 0) {
    char* c = nullptr;
    if ((r = sd_journal_get_cursor(j_, &c)) < 0)
      return Status::IoError("cannot get the running boot's first cursor: " + ErrnoText(r));
    first = c;
    free(c);
  }
  sd_journal_flush_matches(j_);
  if (Status m = AddMatches(/*boot=*/false); !m.ok()) return m;
  if (first.empty()) {
    // Nothing of this boot yet (or journals of other machines): what is
    // there belongs to earlier boots, what comes next to this one.
    std::string what = "the journal holds no entry of the running boot; reading only what is written from now on";
    if (config_.journal_directory) {
      TLOG_WARN(id_, what + " (set current_boot_only: false to read the journals in " +
                         *config_.journal_directory + ")");
    } else {
      TLOG_INFO(id_, what);
    }
    return SeekTail();
  }
  // Stand on the entry before the boot's first, so that a reopen or the
  // checkpoint resumes from here; none: the boot starts the journal.
  if ((r = sd_journal_seek_cursor(j_, first.c_str())) >= 0 && (r = sd_journal_next(j_)) >= 0)
    r = sd_journal_previous(j_);
  if (r < 0) return Status::IoError("cannot seek to the running boot's first entry: " + ErrnoText(r));
  if (r > 0) {
    char* c = nullptr;
    if ((r = sd_journal_get_cursor(j_, &c)) < 0)
      return Status::IoError("cannot get the journal cursor: " + ErrnoText(r));
    read_cursor_ = c;
    free(c);
    return Status::Ok();
  }
  r = sd_journal_seek_head(j_);
  return r < 0 ? Status::IoError("cannot seek to the journal head: " + ErrnoText(r)) : Status::Ok();
}

Status JournaldSource::Reopen(const std::string& cursor) {
  Status s = Open();
  if (!s.ok()) return s;
  if (cursor.empty()) {
    int r = sd_journal_seek_head(j_);
    return r < 0 ? Status::IoError("cannot seek to the journal head: " + ErrnoText(r)) : Status::Ok();
  }
  s = SeekAfter(cursor);
  if (!s.ok()) {
    // The cursor came from this journal moments ago; failing to seek to it
    // means the journal is in trouble: let the caller retry.
    Close();
  }
  return s;
}

bool JournaldSource::ReadEntry(Event* event, size_t* bytes) {
  Fields& f = event->fields();
  // Entries of one journal have similar field counts: size for the last
  // one (plus the fields added here) so the vectors are allocated once.
  f.reserve(field_count_hint_ + 4);
  f.append(kMessageField, Value());
  // Index 1; _SOURCE_REALTIME_TIMESTAMP replaces it below.
  uint64_t usec = 0;
  if (sd_journal_get_realtime_usec(j_, &usec) >= 0)
    f.append(kTimestampField, Timestamp(std::chrono::microseconds(usec)));
  else
    f.append(kTimestampField, Now());
  f.append(kSourceTypeField, "journald");
  binary_names_.clear();
  const void* data;
  size_t len;
  sd_journal_restart_data(j_);
  size_t entry_bytes = 0;
  int r;
  while ((r = sd_journal_enumerate_available_data(j_, &data, &len)) > 0) {
    entry_bytes += len;
    std::string_view d(static_cast<const char*>(data), len);
    size_t eq = d.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      field_errors_->Increment();
      continue;
    }
    std::string_view name = d.substr(0, eq);
    std::string_view raw = d.substr(eq + 1);
    // The time the client says the entry was logged, if it says one (kept
    // as a field too), as journalctl and Vector take it.
    if (name == kSourceRealtimeField) {
      if (auto t = ParseRealtimeUsec(raw)) f.value(1) = Value(Timestamp(std::chrono::microseconds(*t)));
    }
    if (name == "MESSAGE") name = kMessageField;
    else if (name == "_HOSTNAME") name = kHostField;
    Value v;
    if (IsPrintableJournalValue(raw)) {
      v = Value(raw);
    } else {
      std::string enc;
      AppendBase64(raw, &enc);
      v = Value(std::move(enc));
      bool listed = false;
      for (const auto& b : binary_names_) listed = listed || b == name;
      if (!listed) binary_names_.emplace_back(name);
    }
    Value* existing = f.find(name);
    if (existing == nullptr) {
      f.append(name, std::move(v));
    } else if (existing->is_null() && name == kMessageField) {
      *existing = std::move(v);
    } else {
      // A field repeated within one entry: keep every value, in order.
      if (!existing->is_array()) {
        Array a;
        a.push_back(std::move(*existing));
        *existing = Value(std::move(a));
      }
      existing->as_array().push_back(std::move(v));
    }
  }
  if (r < 0) {
    field_errors_->Increment();
    LogLimited(log_limiter_, LogLevel::kWarn, id_, "cannot read a journal entry's fields: " + ErrnoText(r));
  }
  if (!binary_names_.empty()) {
    Array names;
    names.reserve(binary_names_.size());
    for (const auto& n : binary_names_) names.emplace_back(n);
    f.append(kBinaryFieldsField, Value(std::move(names)));
  }
  if (f.value(0).is_null()) f.erase(kMessageField);
  field_count_hint_ = f.size();
  // An excluded entry is not received: neither its event nor its bytes.
  if (Excluded(*event)) return false;
  *bytes += entry_bytes;
  return true;
}

bool JournaldSource::Excluded(const Event& event) const {
  if (exclude_units_.empty() && config_.exclude_matches.empty()) return false;
  const Fields& f = event.fields();
  auto has = [&](std::string_view field, std::string_view value) {
    const Value* v = f.find(field);
    if (v == nullptr) return false;
    if (v->is_string()) return v->as_string() == value;
    if (v->is_array())
      for (const Value& e : v->as_array())
        if (e.is_string() && e.as_string() == value) return true;
    return false;
  };
  auto unit_in = [&](std::string_view field) {
    for (const auto& u : exclude_units_)
      if (has(field, u)) return true;
    return false;
  };
  if (!exclude_units_.empty()) {
    if (unit_in("_SYSTEMD_UNIT")) return true;
    if (has("_PID", "1") && unit_in("UNIT")) return true;
    if (has("_UID", "0") && unit_in("OBJECT_SYSTEMD_UNIT")) return true;
    if (has("_UID", "0") && has("MESSAGE_ID", kCoredumpMessageId) && unit_in("COREDUMP_UNIT")) return true;
    if (exclude_slices_ && unit_in("_SYSTEMD_SLICE")) return true;
  }
  for (const auto& [field, values] : config_.exclude_matches) {
    std::string_view name = field == "MESSAGE" ? kMessageField : field == "_HOSTNAME" ? kHostField : field;
    for (const auto& v : values)
      if (has(name, v)) return true;
  }
  return false;
}

void JournaldSource::WaitForChanges(std::chrono::milliseconds max_wait) {
  // journal_directory removed and made again, renamed away and replaced,
  // or mounted over (a late volume over an empty mount point): sd-journal
  // watches the directory it opened and would never see a file of the new
  // one. Reopened at the last cursor, as after a read error.
  struct stat dir{};
  if (dir_known_ && ::stat(config_.journal_directory->c_str(), &dir) == 0 &&
      (dir.st_dev != dir_dev_ || dir.st_ino != dir_ino_)) {
    TLOG_INFO(id_, "journal directory " + *config_.journal_directory +
                       " was replaced (made again, renamed or mounted over): reopening it at the last cursor");
    Close();
    return;
  }
  int timeout_ms = static_cast<int>(max_wait.count());
  uint64_t t = 0;
  if (sd_journal_get_timeout(j_, &t) >= 0 && t != UINT64_MAX) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
    int64_t ms = t > now ? static_cast<int64_t>((t - now + 999) / 1000) : 0;
    if (ms < timeout_ms) timeout_ms = static_cast<int>(ms);
  }
  if (fd_ >= 0) {
    pollfd pfd{fd_, static_cast<short>(sd_journal_get_events(j_)), 0};
    if (pfd.events <= 0) pfd.events = POLLIN;
    ::poll(&pfd, 1, timeout_ms);
  } else if (timeout_ms > 0) {
    ::poll(nullptr, 0, timeout_ms);
  }
  int r = sd_journal_process(j_);
  if (r < 0) {
    read_errors_->Increment();
    LogLimited(log_limiter_, LogLevel::kWarn, id_, "cannot process journal changes: " + ErrnoText(r));
  }
  // Files were added or removed; and every 10 s, since a file that
  // sd-journal fails to open changes nothing it reports (a directory
  // listing; only files not seen before are opened).
  if (r == SD_JOURNAL_INVALIDATE || std::chrono::steady_clock::now() - last_files_check_ > kFileCheckInterval) {
    CheckJournalFiles(/*final=*/false);
    if (std::string missed = FileNotRead(); !missed.empty()) {
      TLOG_INFO(id_, "journal file " + missed +
                         " is not among those sd-journal reads (its directory was made again, renamed or mounted "
                         "over?): reopening the journal at the last cursor");
      Close();
    }
  }
}

namespace {

// The device and inode of every journal file the process has open (the
// files sd-journal reads, found through /proc/self/fd).
std::set<std::pair<dev_t, ino_t>> OpenJournalFiles() {
  std::set<std::pair<dev_t, ino_t>> out;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string fd_path = std::string("/proc/self/fd/") + e->d_name;
    char target[4096];
    const ssize_t n = ::readlink(fd_path.c_str(), target, sizeof target);
    if (n <= 0) continue;
    const std::string_view t(target, static_cast<size_t>(n));
    if (t.find(".journal") == std::string_view::npos) continue;
    struct stat st{};
    if (::stat(fd_path.c_str(), &st) == 0) out.emplace(st.st_dev, st.st_ino);
  }
  ::closedir(d);
  return out;
}

}  // namespace

std::string JournaldSource::FileNotRead() const {
  // Only with journal_directory (the machine's journal directories are not
  // replaced under a running system), and only files that open on their
  // own and were last written over 3 s ago (not one being created).
  if (!config_.journal_directory || j_ == nullptr) return "";
  std::set<std::pair<dev_t, ino_t>> open;
  for (const auto& f : files_ok_) {
    struct stat st{};
    if (::stat(f.c_str(), &st) != 0 || ::time(nullptr) - st.st_mtime < 3) continue;
    if (open.empty()) open = OpenJournalFiles();
    if (!open.count({st.st_dev, st.st_ino})) return f;
  }
  return "";
}

std::vector<std::string> JournaldSource::ListJournalFiles() const {
  std::vector<std::string> files;
  if (config_.journal_directory) {
    FindReadJournalFiles(*config_.journal_directory, "", &files);
  } else {
    // sd_journal_open(SD_JOURNAL_LOCAL_ONLY): this machine's journals.
    sd_id128_t machine;
    char text[SD_ID128_STRING_MAX];
    std::string id = sd_id128_get_machine(&machine) >= 0 ? sd_id128_to_string(machine, text) : "-";
    FindReadJournalFiles("/var/log/journal", id, &files);
    FindReadJournalFiles("/run/log/journal", id, &files);
  }
  return files;
}

void JournaldSource::CheckJournalFiles(bool final) {
  last_files_check_ = std::chrono::steady_clock::now();
  files_pending_ = false;
  std::vector<std::string> files = ListJournalFiles();
  // Forget what is gone (vacuumed, renamed) so the sets stay small.
  std::set<std::string> present(files.begin(), files.end());
  std::erase_if(files_ok_, [&](const std::string& f) { return !present.count(f); });
  std::erase_if(files_reported_, [&](const std::string& f) { return !present.count(f); });
  for (const auto& f : files) {
    if (files_ok_.count(f) || files_reported_.count(f)) continue;
    sd_journal* probe = nullptr;
    const char* paths[] = {f.c_str(), nullptr};
    int r = sd_journal_open_files(&probe, paths, 0);
    if (r >= 0) {
      sd_journal_close(probe);
      files_ok_.insert(f);
      continue;
    }
    if (r == -ENOENT) continue;  // gone since the listing
    struct stat st{};
    if (!final && ::stat(f.c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime < 3) {
      files_pending_ = true;  // perhaps still being created
      continue;
    }
    files_reported_.insert(f);
    read_errors_->Increment();
    LogLimited(file_log_limiter_, LogLevel::kWarn, id_,
               "journal file " + f + " cannot be opened (" + JournalFileErrorText(r) +
                   "); sd-journal skips it, its entries are not read");
  }
}

Status JournaldSource::ReadFileText(const std::string& path, std::string* out) {
  out->clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out->append(buf, static_cast<size_t>(n));
  const int err = n < 0 ? errno : 0;
  ::close(fd);
  return err == 0 ? Status::Ok() : Status::FromErrno("read " + path, err);
}

Status JournaldSource::WriteCheckpoint(const std::string& cursor) {
  std::string tmp = checkpoint_path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("open " + tmp, errno);
  std::string text = cursor + "\n";
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Status::FromErrno("write " + tmp, e);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return Status::FromErrno("fsync " + tmp, e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), checkpoint_path_.c_str()) != 0) return Status::FromErrno("rename " + tmp, errno);
  int dfd = ::open(checkpoint_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

void JournaldSource::MaybeCheckpoint(bool force) {
  std::lock_guard lock(checkpoint_mu_);
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_checkpoint_ < config_.checkpoint_interval_ms.get()) return;
  std::string cursor = tracker_->committed();
  if (cursor.empty() || cursor == written_cursor_) return;
  last_checkpoint_ = now;
  Status s = WriteCheckpoint(cursor);
  if (!s.ok()) {
    checkpoint_errors_->Increment();
    LogLimited(log_limiter_, LogLevel::kError, id_, "cannot write checkpoint: " + s.ToString());
    return;
  }
  written_cursor_ = cursor;
  checkpoints_->Increment();
}

Status JournaldSource::Run(SourceContext& ctx) {
  std::error_code ec;
  fs::create_directories(checkpoint_dir_, ec);
  if (ec) return Status::IoError("cannot create checkpoint directory " + checkpoint_dir_ + ": " + ec.message());
  auto stop = ctx.stop_token();
  Backoff backoff(std::chrono::milliseconds(50), std::chrono::seconds(10));

  // Opening can fail while the journal directory does not exist yet (a
  // volume not mounted yet): keep trying until stopped, logging the first
  // failure and then at most once a minute. A one-shot read (stop_at_end)
  // has nothing to wait for: it ends with the error, and the agent with it.
  // Out of descriptors or memory is a moment's trouble: always retried.
  RateLimiter open_log_limiter(1, std::chrono::seconds(60));
  while (true) {
    Status s = Open();
    if (s.ok()) s = SeekStart();
    if (s.ok()) break;
    read_errors_->Increment();
    Close();
    if (config_.stop_at_end && s.code() != StatusCode::kResourceExhausted)
      return Status(s.code(), s.message() + "; with stop_at_end the source ends instead of waiting for it");
    LogLimited(open_log_limiter, LogLevel::kError, id_,
               s.message() + "; retrying until it opens (this is logged at most once a minute)");
    if (!SleepFor(backoff.Next(), stop)) return Status::Ok();
  }
  backoff.Reset();
  // Where this start positioned itself is a position to resume from, even
  // before anything is read (since_now, a boot's start): checkpointed at
  // the first MaybeCheckpoint and at shutdown.
  tracker_->Start(read_cursor_);
  TLOG_INFO(id_, "reading the journal" +
                     (config_.journal_directory ? " in " + *config_.journal_directory : std::string()));

  const size_t batch_size = static_cast<size_t>(config_.batch_size);
  // After a read error the next batch stops short of where the failed one
  // failed, so a batch that keeps failing at the same entry still makes
  // progress up to it; the limit grows back after each good batch.
  size_t limit = batch_size;
  while (!stop.stop_requested()) {
    if (j_ == nullptr) {
      Status s = Reopen(read_cursor_);
      if (!s.ok()) {
        read_errors_->Increment();
        // As at the start: a one-shot read ends with the error (the
        // agent exits 1 once its sources have ended, and says why) rather
        // than retrying for ever; what was sent is still checkpointed by
        // Finish. Out of descriptors or memory is still retried.
        if (config_.stop_at_end && s.code() != StatusCode::kResourceExhausted) {
          Close();
          return Status(s.code(), "cannot reopen the journal after a read error: " + s.message() +
                                      "; with stop_at_end the source ends instead of waiting for it");
        }
        LogLimited(log_limiter_, LogLevel::kError, id_, "cannot reopen the journal: " + s.message());
        if (!SleepFor(backoff.Next(), stop)) break;
        continue;
      }
    }
    std::vector<Event> events;
    events.reserve(std::min<size_t>(batch_size, 1024));
    size_t bytes = 0;
    size_t read = 0;
    int r = 1;
    sigbus_seen_ = JournalSigbusCount();
    while (read < limit) {
      if (have_current_) {
        have_current_ = false;
        r = 1;
      } else {
        r = next_(j_);
      }
      if (r <= 0) break;
      ++read;
      Event e;
      if (ReadEntry(&e, &bytes)) events.push_back(std::move(e));
    }
    const bool cut_short = JournalSigbusCount() != sigbus_seen_;
    if (r < 0 || cut_short) {
      // Typically a file rotated or vacuumed under us. Drop the partial
      // batch (its entries have no cursor yet) and resume after the last
      // batch sent: nothing lost, nothing twice. A file cut short under
      // its mapping (above) may have given zeros for what was read: its
      // batch is dropped too, and what the cut took is lost.
      read_errors_->Increment();
      LogLimited(log_limiter_, LogLevel::kWarn, id_,
                 cut_short ? std::string("a journal file was truncated or overwritten while it was read (SIGBUS): "
                                         "its entries past the cut are lost; reopening at the last cursor")
                           : "journal read failed (" + ErrnoText(r) + "); reopening at the last cursor");
      limit = std::max<size_t>(1, read);
      Close();
      // Back off so an error that persists does not spin the CPU.
      if (!SleepFor(backoff.Next(), stop)) break;
      continue;
    }
    if (read > 0) {
      char* c = nullptr;
      int cr = sd_journal_get_cursor(j_, &c);
      if (cr < 0) {
        read_errors_->Increment();
        LogLimited(log_limiter_, LogLevel::kWarn, id_,
                   "cannot get the journal cursor (" + ErrnoText(cr) + "); reopening at the last cursor");
        Close();
        if (!SleepFor(backoff.Next(), stop)) break;
        continue;
      }
      read_cursor_ = c;
      free(c);
      backoff.Reset();
      limit = std::min(batch_size, limit * 2);
      uint64_t seq = tracker_->Add(read_cursor_);
      if (events.empty()) {
        tracker_->Ack(seq, BatchStatus::kDelivered);  // every entry was excluded
      } else {
        Batch batch(std::move(events));
        batch.set_bytes(bytes);
        batch.add_finalizer(Finalizer::Create(
            [tracker = tracker_, seq](BatchStatus status) { tracker->Ack(seq, status); }));
        if (!ctx.Send(std::move(batch))) break;
      }
    }
    // Catching up (the batch ended full): sd-journal hears of files added
    // meanwhile only when asked. Asked only once caught up, it added a file
    // begun during a catch-up too late, and the file's first entries, which
    // sort before where reading then was, were never read.
    if (r > 0 && fd_ >= 0 && j_ != nullptr && sd_journal_process(j_) == SD_JOURNAL_INVALIDATE)
      CheckJournalFiles(/*final=*/false);
    MaybeCheckpoint(false);
    if (r == 0 && config_.stop_at_end) {
      if (files_pending_) CheckJournalFiles(/*final=*/true);
      break;
    }
    if (r == 0 && !stop.stop_requested()) WaitForChanges(std::chrono::milliseconds(250));
  }
  Close();
  return Status::Ok();
}

void JournaldSource::Finish() { MaybeCheckpoint(true); }

TRIBUTARY_REGISTER_SOURCE("journald", JournaldSource);

}  // namespace tributary
