#include "agent/disk_buffer.h"

#include <libdeflate.h>

#include <algorithm>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "agent/event_codec.h"
#include "agent/log.h"

namespace tributary {

namespace {

constexpr uint64_t kBlockSize = 32 * 1024;
constexpr uint64_t kHeaderSize = 7;  // crc:4 len:2 type:1
enum FragmentType : uint8_t { kZero = 0, kFull = 1, kFirst = 2, kMiddle = 3, kLast = 4 };

constexpr char kLedgerMagic[] = "TRBLEDG1";
constexpr uint32_t kLedgerVersion = 1;
constexpr size_t kLedgerSize = 8 + 4 + 6 * 8 + 4;

// CRC-32 as zlib's crc32() computes it (the on-disk format), by libdeflate,
// which uses the CPU's carry-less multiply where it has one.
uint32_t Crc32(const void* data, size_t n, uint32_t crc = 0) { return libdeflate_crc32(crc, data, n); }

uint32_t Crc(uint8_t type, const char* data, size_t n) { return Crc32(data, n, Crc32(&type, 1)); }

std::string SegmentName(uint64_t id) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "segment-%016" PRIx64 ".log", id);
  return buf;
}

bool ParseSegmentName(const std::string& name, uint64_t* id) {
  if (name.size() != 8 + 16 + 4 || name.compare(0, 8, "segment-") != 0 || name.compare(24, 4, ".log") != 0)
    return false;
  uint64_t v = 0;
  for (size_t i = 8; i < 24; ++i) {
    char c = name[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *id = v;
  return true;
}

// Appends the fragments of one record to *out, for a segment currently
// `offset` bytes long.
void FrameRecord(uint64_t offset, std::string_view payload, std::string* out) {
  bool begin = true;
  while (true) {
    uint64_t left = kBlockSize - offset % kBlockSize;
    if (left < kHeaderSize) {
      out->append(static_cast<size_t>(left), '\0');
      offset += left;
      left = kBlockSize;
    }
    size_t frag = static_cast<size_t>(std::min<uint64_t>(payload.size(), left - kHeaderSize));
    bool end = frag == payload.size();
    uint8_t type = begin && end ? kFull : begin ? kFirst : end ? kLast : kMiddle;
    PutFixed32(out, Crc(type, payload.data(), frag));
    out->push_back(static_cast<char>(frag & 0xff));
    out->push_back(static_cast<char>(frag >> 8));
    out->push_back(static_cast<char>(type));
    out->append(payload.data(), frag);
    offset += kHeaderSize + frag;
    payload.remove_prefix(frag);
    begin = false;
    if (end) return;
  }
}

// Reads records from one segment file, LevelDB-style. A fragment whose
// header is impossible (type, or a length that crosses its block) drops the
// rest of its block: nothing in it can be trusted to find the next
// fragment. A fragment with a plausible header but a wrong CRC is skipped
// by its length; if that length was the damaged part, the next header is
// garbage and the rule above applies. An orphan MIDDLE or LAST fragment
// (its record's start was skipped) is skipped on its own, and reading
// resynchronises at the next FIRST or FULL fragment in the same block, so
// one damaged fragment costs only the record(s) it belongs to.
class SegmentReader {
 public:
  enum class Outcome { kRecord, kEnd };

  void Reset(std::unique_ptr<RandomAccessFile> file) {
    file_ = std::move(file);
    cache_.clear();
    cache_off_ = 0;
  }
  bool open() const { return file_ != nullptr; }

  // Reads the record at *off, looking at bytes below `limit` only. On
  // kRecord, *off is past it. On kEnd no whole record lies below limit:
  // *off is where the next record would start (bytes in [*off, limit) are
  // a partial record or a trailer). Bytes skipped as corrupt are added to
  // *dropped; *off moves past them.
  Outcome Read(uint64_t* off, uint64_t limit, std::string* record, uint64_t* dropped) {
    record->clear();
    uint64_t p = *off;
    bool in_record = false;
    uint64_t record_start = p;
    // Drops the record being assembled, if any, and skips to `to`.
    auto skip = [&](uint64_t to) {
      *dropped += to - (in_record ? record_start : p);
      record->clear();
      in_record = false;
      p = to;
      *off = p;
    };
    while (true) {
      uint64_t left = kBlockSize - p % kBlockSize;
      if (left < kHeaderSize) {
        if (p + left > limit) return Outcome::kEnd;  // the trailer is not all there yet
        p += left;
        if (!in_record) *off = p;
        continue;
      }
      if (p + kHeaderSize > limit) return Outcome::kEnd;
      const char* h = Get(p, kHeaderSize, limit);
      if (!h) return Outcome::kEnd;
      uint32_t crc = DecodeFixed32(h);
      uint64_t len = static_cast<uint8_t>(h[4]) | static_cast<uint64_t>(static_cast<uint8_t>(h[5])) << 8;
      uint8_t type = static_cast<uint8_t>(h[6]);
      const bool plausible = type != kZero && type <= kLast && kHeaderSize + len <= left;
      if (plausible && p + kHeaderSize + len > limit) return Outcome::kEnd;  // torn, or not synced yet
      const char* data = plausible ? Get(p + kHeaderSize, static_cast<size_t>(len), limit) : nullptr;
      if (!data) {
        // No usable length (or unreadable): the rest of the block is lost.
        const uint64_t next_block = p + left;
        skip(std::min(next_block, limit));
        if (p < next_block) return Outcome::kEnd;
        continue;
      }
      const uint64_t fragment_end = p + kHeaderSize + len;
      if (Crc(type, data, static_cast<size_t>(len)) != crc) {
        skip(fragment_end);
        continue;
      }
      if (in_record && (type == kFull || type == kFirst)) {
        // The record being assembled lost its end.
        *dropped += p - record_start;
        record->clear();
        in_record = false;
      }
      if (!in_record && (type == kMiddle || type == kLast)) {
        skip(fragment_end);  // an orphan: its record lost its start
        continue;
      }
      if (type == kFull || type == kFirst) {
        record_start = p;
        record->assign(data, static_cast<size_t>(len));
      } else {
        record->append(data, static_cast<size_t>(len));
      }
      p = fragment_end;
      if (type == kFull || type == kLast) {
        *off = p;
        return Outcome::kRecord;
      }
      in_record = true;
    }
  }

 private:
  // Bytes [p, p+n) of the file, read in large chunks but never at or beyond
  // `limit` (so cached bytes are only ever synced, immutable ones).
  const char* Get(uint64_t p, size_t n, uint64_t limit) {
    if (p >= cache_off_ && p + n <= cache_off_ + cache_.size()) return cache_.data() + (p - cache_off_);
    size_t want = static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(n, 256 * 1024), limit - p));
    if (!file_->Read(p, want, &cache_).ok()) {
      cache_.clear();
      return nullptr;
    }
    cache_off_ = p;
    if (cache_.size() < n) return nullptr;
    return cache_.data();
  }

  std::unique_ptr<RandomAccessFile> file_;
  std::string cache_;
  uint64_t cache_off_ = 0;
};

struct RecordHeader {
  uint64_t first_event = 0;
  uint64_t source_bytes = 0;
  uint64_t count = 0;
  std::string_view batch;  // the `batch` production
};

bool ParseRecordHeader(std::string_view rec, RecordHeader* h) {
  if (rec.size() < 8) return false;
  h->first_event = DecodeFixed64(rec.data());
  rec.remove_prefix(8);
  if (!GetVarint64(&rec, &h->source_bytes)) return false;
  h->batch = rec;
  return GetVarint64(&rec, &h->count);
}

// Corruption met since the last intact record, reported with the events
// it cost once reading resynchronises.
struct Damage {
  uint64_t bytes = 0;
  uint64_t first_seg = 0, last_seg = 0;  // where the bytes were (if any)
  std::vector<std::string> notes;        // "segment-X.log is missing", ...

  void Add(uint64_t seg, uint64_t n) {
    if (n == 0) return;
    if (bytes == 0) first_seg = seg;
    last_seg = seg;
    bytes += n;
  }
  bool empty() const { return bytes == 0 && notes.empty(); }

  // "dropped N events in B corrupt bytes in segment-X.log; notes".
  std::string Describe(uint64_t events) const {
    std::string out = "disk buffer: dropped " + std::to_string(events) + " events";
    if (bytes > 0) {
      out += " in " + std::to_string(bytes) + " corrupt bytes in " + SegmentName(first_seg);
      if (last_seg != first_seg) out += " to " + SegmentName(last_seg);
    }
    for (size_t i = 0; i < notes.size(); ++i) out += (i == 0 && bytes == 0 ? ": " : "; ") + notes[i];
    return out;
  }
};

struct Pos {
  uint64_t seg = 0;
  uint64_t off = 0;
  bool operator==(const Pos&) const = default;
};

}  // namespace

// ---------------------------------------------------------------------------

class DiskBuffer::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(const DiskBufferOptions& o, BufferMetrics m)
      : opt_(o), env_(o.env ? o.env : Env::Default()), m_(m) {
    if (opt_.segment_size == 0)
      opt_.segment_size = std::clamp<uint64_t>(opt_.max_size / 8, 256 << 10, 64 << 20);
  }

  Status Recover();
  void StartFlusher() { flusher_ = std::thread([this] {
    NameThread("disk-buffer");
    FlusherLoop();
  }); }
  void Shutdown();
  void Release();

  bool Push(Batch batch, WhileBlocked* while_blocked);
  SinkInput::Result Next(Batch* out, std::chrono::milliseconds timeout);
  // `keeping`: CloseKeeping (buffer.h).
  void Close(bool keeping);
  void Abort();
  void Ack(uint64_t id, BatchStatus s);
  DiskBuffer::Stats stats() const {
    std::lock_guard lock(mu_);
    Stats s = stats_;
    s.events = Unacked();
    s.bytes = bytes_on_disk_;
    s.segments = segments_.size();
    return s;
  }

 private:
  using Releases = std::vector<std::pair<std::vector<FinalizerRef>, BatchStatus>>;
  struct Pending {
    uint64_t lsn;
    std::vector<FinalizerRef> finalizers;
  };
  struct InFlight {
    Pos end;
    uint64_t event_end;
    uint8_t state;  // 0 = out, 1 = acked, 2 = failed
  };

  std::string Path(const std::string& name) const { return opt_.dir + "/" + name; }
  std::string SegPath(uint64_t id) const { return Path(SegmentName(id)); }
  // Events written and not yet acknowledged, less those lost to a torn
  // tail and already counted at recovery (they will never be read).
  uint64_t Unacked() const {
    const uint64_t lo = std::max(ack_event_, precounted_lo_), hi = std::min(next_event_, precounted_hi_);
    return next_event_ - ack_event_ - (hi > lo ? hi - lo : 0);
  }
  void UpdateGauges() {
    if (released_) return;  // the series belong to the buffer that took over the directory
    m_.events->Set(static_cast<double>(Unacked()));
    m_.bytes->Set(static_cast<double>(bytes_on_disk_));
  }

  Status OpenNewSegment(uint64_t id);
  // Rolls to a new segment (fsyncs the old one first). Lock held.
  void Roll(Releases* rel);
  // fsyncs until `target` lsn is durable; lock held (released while syncing).
  void SyncTo(std::unique_lock<std::mutex>& lock, uint64_t target, Releases* rel);
  void CompleteSync(uint64_t lsn, Pos pos, uint64_t events, const Status& s, Releases* rel);
  bool HasData() const;
  uint64_t Limit(uint64_t seg) const;
  void FlusherLoop();
  // Persists the ack position and deletes the segments behind it.
  void Housekeeping(std::unique_lock<std::mutex>& lock);
  std::string EncodeLedger(Pos ack, uint64_t ack_event, Pos write, uint64_t write_event) const;
  // Moves the ack position over the acknowledged prefix. Lock held.
  void AdvanceAcks();
  void CountCorrupt(uint64_t events, const Damage& damage);
  // "segment-X.log is missing" for the segments [a, b] that are not there.
  std::string Gone(uint64_t a, uint64_t b) const {
    if (a == b) return SegmentName(a) + (emptied_.count(a) ? " is empty" : " is missing");
    return SegmentName(a) + " to " + SegmentName(b) + " are missing or empty";
  }
  static void RunFinalizers(Releases& rel) {
    for (auto& [fins, s] : rel)
      for (auto& f : fins) f.Release(s);
    rel.clear();
  }
  // Runs what CompleteSync took out of pending_ (without the lock held).
  void Release(Releases& rel) {
    const size_t n = rel.size();
    RunFinalizers(rel);
    if (n == 0) return;
    std::lock_guard lock(mu_);
    releasing_ -= n;
    data_cv_.notify_all();
  }

  DiskBufferOptions opt_;
  Env* env_;
  BufferMetrics m_;
  std::unique_ptr<FileLock> lock_file_;

  mutable std::mutex mu_;
  std::condition_variable not_full_;   // writers waiting for room
  std::condition_variable data_cv_;    // the reader waiting for synced data
  std::condition_variable flush_cv_;   // the flusher
  std::condition_variable sync_cv_;    // writers waiting for a group fsync

  std::map<uint64_t, uint64_t> segments_;  // id → bytes (the last is the active one)
  uint64_t bytes_on_disk_ = 0;
  std::shared_ptr<WritableFile> active_;
  uint64_t active_id_ = 0;
  uint64_t next_event_ = 0;
  uint64_t lsn_ = 0;  // bytes appended in this run
  uint64_t synced_lsn_ = 0;
  Pos synced_pos_;
  uint64_t synced_event_ = 0;  // next_event_ as of the last fsync
  bool syncing_ = false;
  std::deque<Pending> pending_;
  int blocked_writers_ = 0;
  RateLimiter write_limiter_;
  RateLimiter corrupt_limiter_;
  RateLimiter full_limiter_;

  // Acks.
  std::deque<InFlight> inflight_;
  uint64_t inflight_base_ = 0;
  Pos ack_pos_;
  uint64_t ack_event_ = 0;
  bool ack_stuck_ = false;
  Pos ledger_ack_pos_{~0ull, ~0ull};
  uint64_t ledger_write_event_ = ~0ull;
  bool housekeeping_wanted_ = false;

  // Reader (the sink thread only, except read_pos_.seg which Housekeeping
  // never needs: the reader is always at or past the ack position).
  Pos read_pos_;
  SegmentReader reader_;
  uint64_t reader_seg_ = ~0ull;
  std::optional<uint64_t> expected_event_;
  Damage damage_;  // met since the last intact record
  // Events lost in a torn tail, counted at recovery: the reader must not
  // count this range again when it sees the numbering jump over it, and
  // steps over it when it reaches the first segment of this run.
  uint64_t precounted_lo_ = 0, precounted_hi_ = 0;
  uint64_t first_run_seg_ = 0;  // the first segment written by this run
  std::set<uint64_t> emptied_;  // segments removed at recovery as empty
  std::string record_;

  bool closed_ = false;
  bool keeping_ = false;  // closed by CloseKeeping: Next hands out nothing more
  // Entries CompleteSync took out of pending_ whose finalizers have not run
  // yet (Release runs them without the lock): a closed buffer is over only
  // once they have, for its sources' last checkpoints follow their acks.
  size_t releasing_ = 0;
  bool aborted_ = false;
  bool released_ = false;  // Release(): the directory is no longer ours
  bool stop_ = false;
  bool sync_now_ = false;
  std::thread flusher_;
  Stats stats_;
};

// ---- Recovery --------------------------------------------------------------

Status DiskBuffer::Impl::Recover() {
  Status s = env_->CreateDirs(opt_.dir);
  if (!s.ok()) return s;
  auto lock = env_->LockFile(Path("lock"));
  if (!lock.ok()) return lock.status();
  lock_file_ = std::move(lock).value();

  std::vector<std::string> names;
  s = env_->GetChildren(opt_.dir, &names);
  if (!s.ok()) return s;
  for (const auto& n : names) {
    uint64_t id;
    if (n == "ledger.tmp") (void)env_->RemoveFile(Path(n));
    if (!ParseSegmentName(n, &id)) continue;
    auto size = env_->GetFileSize(Path(n));
    if (!size.ok()) return size.status();
    if (*size == 0) {
      (void)env_->RemoveFile(Path(n));  // an empty segment carries nothing
      emptied_.insert(id);
      continue;
    }
    segments_[id] = *size;
  }

  // The ledger: where the sink had got to.
  std::optional<uint64_t> ack_event;
  uint64_t write_event_hint = 0, write_seg_hint = 0, write_off_hint = 0;
  bool have_ledger = false;
  std::string ledger;
  Status ls = env_->ReadFile(Path("ledger"), &ledger);
  if (ls.ok() && ledger.size() == kLedgerSize && ledger.compare(0, 8, kLedgerMagic) == 0 &&
      DecodeFixed32(ledger.data() + 8) == kLedgerVersion &&
      DecodeFixed32(ledger.data() + kLedgerSize - 4) ==
          Crc32(ledger.data(), kLedgerSize - 4)) {
    const char* p = ledger.data() + 12;
    ack_pos_ = {DecodeFixed64(p), DecodeFixed64(p + 8)};
    ack_event = DecodeFixed64(p + 16);
    write_seg_hint = DecodeFixed64(p + 24);
    write_off_hint = DecodeFixed64(p + 32);
    write_event_hint = DecodeFixed64(p + 40);
    have_ledger = true;
  } else if (!segments_.empty()) {
    TLOG_WARN(opt_.name, std::string("disk buffer ledger ") + (ls.ok() ? "is damaged" : "is missing") +
                             ": rebuilding it from " + std::to_string(segments_.size()) +
                             " segment(s); records acknowledged before may be delivered again");
  }
  if (!have_ledger) ack_pos_ = {segments_.empty() ? 0 : segments_.begin()->first, 0};

  // Segments wholly behind the ack position were acknowledged; a crash
  // came between the ledger write and their deletion.
  for (auto it = segments_.begin(); it != segments_.end() && it->first < ack_pos_.seg;) {
    (void)env_->RemoveFile(SegPath(it->first));
    it = segments_.erase(it);
  }
  if (!segments_.empty() && segments_.find(ack_pos_.seg) == segments_.end()) {
    // The ack segment is gone: deleted once acknowledged while the ledger
    // could not be written (disk full), or emptied. Start at the oldest
    // segment, numbering from its first record.
    ack_pos_ = {segments_.begin()->first, 0};
    ack_event.reset();
  }

  // The last segment may end in a torn record: truncate after its last
  // intact record. Find the next event number from the newest record.
  uint64_t last_event_end = 0, torn_bytes = 0, torn_seg = 0;
  bool found_last = false;
  for (auto it = segments_.rbegin(); it != segments_.rend() && !found_last; ++it) {
    auto f = env_->NewRandomAccessFile(SegPath(it->first));
    if (!f.ok()) continue;
    SegmentReader r;
    r.Reset(std::move(f).value());
    uint64_t off = 0, dropped = 0, valid_end = 0;
    std::string rec;
    while (r.Read(&off, it->second, &rec, &dropped) == SegmentReader::Outcome::kRecord) {
      valid_end = off;
      RecordHeader h;
      if (ParseRecordHeader(rec, &h)) {
        last_event_end = h.first_event + h.count;
        found_last = true;
      }
    }
    if (it == segments_.rbegin() && valid_end < it->second) {
      uint64_t torn = it->second - valid_end;
      Status ts = env_->TruncateFile(SegPath(it->first), valid_end);
      if (ts.ok()) {
        TLOG_WARN(opt_.name, "disk buffer: truncated a torn tail of " + std::to_string(torn) + " bytes from " +
                                 SegmentName(it->first) + " (a write cut short by a crash)");
        torn_bytes = torn;
        torn_seg = it->first;
        it->second = valid_end;
      }
    }
  }
  for (auto it = segments_.begin(); it != segments_.end();) {
    if (it->second == 0) {
      (void)env_->RemoveFile(SegPath(it->first));
      it = segments_.erase(it);
    } else {
      ++it;
    }
  }
  if (!segments_.empty() && segments_.find(ack_pos_.seg) == segments_.end()) {
    ack_pos_ = {segments_.begin()->first, 0};
    ack_event.reset();
  }

  if (!ack_event) {
    // Rebuilt: the first intact record at the ack position numbers it.
    for (auto& [id, size] : segments_) {
      auto f = env_->NewRandomAccessFile(SegPath(id));
      if (!f.ok()) continue;
      SegmentReader r;
      r.Reset(std::move(f).value());
      uint64_t off = 0, dropped = 0;
      std::string rec;
      RecordHeader h;
      if (r.Read(&off, size, &rec, &dropped) == SegmentReader::Outcome::kRecord && ParseRecordHeader(rec, &h)) {
        ack_event = h.first_event;
        break;
      }
    }
  } else {
    expected_event_ = ack_event;
  }
  next_event_ = std::max({write_event_hint, last_event_end, ack_event.value_or(last_event_end)});
  if (write_event_hint > last_event_end && have_ledger) {
    // The ledger saw events fsynced that no intact record holds any more.
    precounted_lo_ = std::max(last_event_end, ack_event.value_or(0));
    precounted_hi_ = write_event_hint;
    if (precounted_hi_ > precounted_lo_) {
      // Name where they were: the torn segment, and any after it up to
      // the last one the ledger saw data in that is now gone.
      Damage d;
      d.Add(torn_seg, torn_bytes);
      uint64_t last = segments_.empty() ? 0 : segments_.rbegin()->first;
      if (torn_bytes > 0) {
        d.notes.push_back("its tail was torn by a crash or cut short");
        last = std::max(last, torn_seg);
      }
      const uint64_t last_written = write_off_hint == 0 && write_seg_hint > 0 ? write_seg_hint - 1 : write_seg_hint;
      if (last_written > last) {
        d.notes.push_back(Gone(last + 1, last_written));
      } else if (torn_bytes == 0 && last > 0) {
        d.notes.push_back(SegmentName(last) + " ends early (cut short)");
      }
      CountCorrupt(precounted_hi_ - precounted_lo_, d);
      torn_bytes = 0;
    }
  }
  stats_.corrupt_bytes += torn_bytes;
  ack_event_ = std::min(ack_event.value_or(next_event_), next_event_);

  for (auto& [id, size] : segments_) bytes_on_disk_ += size;
  uint64_t new_id = segments_.empty() ? std::max<uint64_t>(ack_pos_.seg, 1) : segments_.rbegin()->first + 1;
  s = OpenNewSegment(new_id);
  if (!s.ok()) return s;
  first_run_seg_ = new_id;
  if (segments_.size() == 1) {
    // Nothing from the last run is left to read.
    ack_pos_ = {new_id, 0};
    ack_event_ = next_event_;
    expected_event_ = next_event_;
  }
  read_pos_ = ack_pos_;
  synced_pos_ = {new_id, 0};
  UpdateGauges();
  if (Unacked() > 0)
    TLOG_INFO(opt_.name, "disk buffer: " + std::to_string(Unacked()) + " events in " +
                             std::to_string(segments_.size() - 1) + " segment(s) to deliver from the last run");
  return Status::Ok();
}

Status DiskBuffer::Impl::OpenNewSegment(uint64_t id) {
  auto f = env_->NewWritableFile(SegPath(id), /*truncate=*/true);
  if (!f.ok()) return f.status();
  Status s = env_->SyncDir(opt_.dir);
  if (!s.ok()) {
    (void)env_->RemoveFile(SegPath(id));
    return s;
  }
  active_ = std::shared_ptr<WritableFile>(std::move(f).value());
  active_id_ = id;
  segments_[id] = 0;
  return Status::Ok();
}

// ---- Write path ------------------------------------------------------------

bool DiskBuffer::Impl::Push(Batch batch, WhileBlocked* while_blocked) {
  if (batch.empty()) return true;
  const uint64_t n = batch.size();
  thread_local std::string payload;
  thread_local std::string frame;
  payload.clear();
  PutFixed64(&payload, 0);  // first_event, filled in under the lock
  PutVarint64(&payload, batch.bytes());
  EncodeEvents(batch.events(), &payload);

  Releases rel;
  std::unique_lock lock(mu_);
  auto backoff = std::chrono::milliseconds(50);
  auto next_work = std::chrono::steady_clock::now() + WhileBlocked::kInterval;  // while_blocked
  bool counted_blocked = false;
  auto unblock = [&] {
    if (counted_blocked) --blocked_writers_;
    counted_blocked = false;
  };
  while (true) {
    if (aborted_ || closed_) {
      unblock();
      lock.unlock();
      batch.Finalize(BatchStatus::kFailed);
      return false;
    }
    const uint64_t room_needed = payload.size() + payload.size() / 4096 * kHeaderSize + kBlockSize;
    const bool full = Unacked() > 0 && bytes_on_disk_ + room_needed > opt_.max_size;
    Status ws;
    if (!full) {
      std::string fe;
      PutFixed64(&fe, next_event_);
      payload.replace(0, 8, fe);
      frame.clear();
      const uint64_t before = segments_[active_id_];
      FrameRecord(before, payload, &frame);
      ws = active_->Append(frame);
      if (ws.ok()) {
        segments_[active_id_] = before + frame.size();
        bytes_on_disk_ += frame.size();
        lsn_ += frame.size();
        next_event_ += n;
        break;
      }
      // A short write leaves a partial record: cut it off. If that fails
      // too, continue in a fresh segment (the reader skips the stump).
      if (!active_->Truncate(before).ok()) {
        auto size = env_->GetFileSize(SegPath(active_id_));
        if (size.ok() && *size > before) {
          bytes_on_disk_ += *size - before;
          segments_[active_id_] = *size;
        }
        Roll(&rel);
      } else if (before > 0) {
        // Seal the active segment: only sealed segments are deleted once
        // acknowledged, and on a full disk that is how space comes back.
        Roll(&rel);
      }
      LogLimited(write_limiter_, LogLevel::kWarn, opt_.name,
                 "disk buffer write failed (" + ws.ToString() + "): " +
                     (opt_.drop_when_full ? "dropping the batch" : "waiting for space"));
    }
    if (opt_.drop_when_full) {
      unblock();
      stats_.full_events += n;
      lock.unlock();
      if (ws.ok()) {  // a failed write was logged above
        LogLimited(full_limiter_, LogLevel::kWarn, opt_.name,
                   "disk buffer is full (max_size " + std::to_string(opt_.max_size) + " bytes): dropped " +
                       std::to_string(n) + " events (when_full: drop_newest)");
      }
      m_.discarded_full->Increment(static_cast<double>(n));
      Release(rel);
      batch.Finalize(BatchStatus::kRejected);
      return true;
    }
    if (!counted_blocked) ++blocked_writers_;
    counted_blocked = true;
    housekeeping_wanted_ = true;
    flush_cv_.notify_one();
    // Woken when acknowledged segments are deleted; a failed write is
    // retried with backoff (the disk may get space back by other means).
    auto wait = ws.ok() ? std::chrono::milliseconds(1000) : backoff;
    if (while_blocked != nullptr) {
      // The caller's work runs every interval, without the lock.
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_work) {
        lock.unlock();
        while_blocked->Work();
        lock.lock();
        next_work = std::chrono::steady_clock::now() + WhileBlocked::kInterval;
        continue;  // aborted, closed or room meanwhile?
      }
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(next_work - now) +
                                std::chrono::milliseconds(1));
    }
    not_full_.wait_for(lock, wait);
    if (!ws.ok()) backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  unblock();
  const uint64_t my_lsn = lsn_;
  pending_.push_back(Pending{my_lsn, std::move(batch.finalizers())});
  batch.finalizers().clear();
  m_.received_events->Increment(static_cast<double>(n));
  UpdateGauges();
  if (segments_[active_id_] >= opt_.segment_size) Roll(&rel);
  if (opt_.flush_interval.count() == 0) {
    SyncTo(lock, my_lsn, &rel);
  } else if (pending_.size() == 1) {
    flush_cv_.notify_one();
  }
  lock.unlock();
  Release(rel);
  return true;
}

void DiskBuffer::Impl::Roll(Releases* rel) {
  Status s = active_->Sync();
  CompleteSync(lsn_, {active_id_, segments_[active_id_]}, next_event_, s, rel);
  Status os = OpenNewSegment(active_id_ + 1);
  if (!os.ok()) {
    LogLimited(write_limiter_, LogLevel::kWarn, opt_.name,
               "disk buffer: cannot start a new segment, continuing in the current one: " + os.ToString());
    return;
  }
  synced_pos_ = {active_id_, 0};
  data_cv_.notify_all();
}

void DiskBuffer::Impl::CompleteSync(uint64_t lsn, Pos pos, uint64_t events, const Status& s, Releases* rel) {
  if (lsn < synced_lsn_ || (lsn == synced_lsn_ && pos.seg <= synced_pos_.seg)) return;
  if (!s.ok()) {
    LogLimited(write_limiter_, LogLevel::kError, opt_.name,
               "disk buffer fsync failed; the affected events are not acknowledged upstream: " + s.ToString());
  }
  while (!pending_.empty() && pending_.front().lsn <= lsn) {
    rel->emplace_back(std::move(pending_.front().finalizers), s.ok() ? BatchStatus::kDelivered : BatchStatus::kFailed);
    pending_.pop_front();
    ++releasing_;
  }
  synced_lsn_ = lsn;
  synced_pos_ = pos;
  synced_event_ = events;
  data_cv_.notify_all();
}

void DiskBuffer::Impl::SyncTo(std::unique_lock<std::mutex>& lock, uint64_t target, Releases* rel) {
  while (synced_lsn_ < target) {
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    syncing_ = true;
    const uint64_t lsn = lsn_;
    const Pos pos{active_id_, segments_[active_id_]};
    const uint64_t events = next_event_;
    std::shared_ptr<WritableFile> file = active_;
    lock.unlock();
    Status s = file->Sync();
    lock.lock();
    syncing_ = false;
    CompleteSync(lsn, pos, events, s, rel);
    sync_cv_.notify_all();
  }
}

// ---- Flusher: periodic fsync, ledger, segment deletion ---------------------

void DiskBuffer::Impl::FlusherLoop() {
  const auto tick = opt_.flush_interval.count() > 0 ? opt_.flush_interval : std::chrono::milliseconds(100);
  std::unique_lock lock(mu_);
  while (true) {
    flush_cv_.wait_for(lock, tick, [&] { return stop_ || sync_now_ || housekeeping_wanted_; });
    const bool stopping = stop_;
    sync_now_ = false;
    housekeeping_wanted_ = false;
    Releases rel;
    if (synced_lsn_ < lsn_) SyncTo(lock, lsn_, &rel);
    if (!rel.empty()) {
      lock.unlock();
      Release(rel);
      lock.lock();
    }
    Housekeeping(lock);
    if (stopping) return;
  }
}

std::string DiskBuffer::Impl::EncodeLedger(Pos ack, uint64_t ack_event, Pos write, uint64_t write_event) const {
  std::string out(kLedgerMagic, 8);
  PutFixed32(&out, kLedgerVersion);
  for (uint64_t v : {ack.seg, ack.off, ack_event, write.seg, write.off, write_event}) PutFixed64(&out, v);
  PutFixed32(&out, Crc32(out.data(), out.size()));
  return out;
}

void DiskBuffer::Impl::Housekeeping(std::unique_lock<std::mutex>& lock) {
  // Normalize: an ack at the end of a sealed segment is the next one's start.
  Pos ack = ack_pos_;
  while (ack.seg != active_id_) {
    auto it = segments_.find(ack.seg);
    if (it == segments_.end() || ack.off < it->second) break;
    auto next = std::next(it);
    if (next == segments_.end()) break;
    ack = {next->first, 0};
  }
  if (ack == ledger_ack_pos_ && synced_event_ == ledger_write_event_) return;
  const uint64_t write_event = synced_event_;
  std::string ledger = EncodeLedger(ack, ack_event_, synced_pos_, write_event);
  lock.unlock();
  Status s = WriteFileAtomically(env_, Path("ledger"), ledger);
  lock.lock();
  if (s.ok()) {
    ledger_ack_pos_ = ack;
    ledger_write_event_ = write_event;
  } else {
    // Typically a full disk. Deleting acknowledged segments anyway is safe
    // (recovery starts at the oldest segment left when the ledger's ack
    // segment is gone) and is what frees the space.
    LogLimited(write_limiter_, LogLevel::kWarn, opt_.name, "disk buffer: cannot write the ledger: " + s.ToString());
  }
  // Normally only now: delete what lies wholly behind the ack position.
  std::vector<uint64_t> doomed;
  for (auto& [id, size] : segments_) {
    if (id >= ack.seg || id == active_id_) break;
    doomed.push_back(id);
  }
  if (doomed.empty()) return;
  lock.unlock();
  std::vector<uint64_t> removed;
  for (uint64_t id : doomed) {
    Status rs = env_->RemoveFile(SegPath(id));
    if (rs.ok() || rs.message().find("No such file") != std::string::npos) removed.push_back(id);
    else LogLimited(write_limiter_, LogLevel::kWarn, opt_.name, "disk buffer: " + rs.ToString());
  }
  lock.lock();
  for (uint64_t id : removed) {
    auto it = segments_.find(id);
    if (it == segments_.end()) continue;
    bytes_on_disk_ -= it->second;
    segments_.erase(it);
  }
  UpdateGauges();
  not_full_.notify_all();
}

// ---- Read path -------------------------------------------------------------

uint64_t DiskBuffer::Impl::Limit(uint64_t seg) const {
  if (seg == synced_pos_.seg) return synced_pos_.off;
  if (seg == active_id_) return 0;
  auto it = segments_.find(seg);
  return it == segments_.end() ? 0 : it->second;
}

bool DiskBuffer::Impl::HasData() const {
  return read_pos_.seg < synced_pos_.seg || read_pos_.off < Limit(read_pos_.seg);
}

SinkInput::Result DiskBuffer::Impl::Next(Batch* out, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  while (true) {
    // Closed: once what was written is durable, and so acknowledged to its
    // sources (whose last checkpoints follow); kept: with nothing more
    // handed out meanwhile.
    if (!data_cv_.wait_until(lock, deadline, [&] {
          return aborted_ || (HasData() && !keeping_) ||
                 (closed_ && synced_lsn_ == lsn_ && blocked_writers_ == 0 && releasing_ == 0);
        }))
      return SinkInput::Result::kTimeout;
    if (aborted_ || keeping_ || !HasData()) return SinkInput::Result::kClosed;
    const uint64_t seg = read_pos_.seg;
    const uint64_t limit = Limit(seg);
    const bool sealed = seg < synced_pos_.seg;
    auto next_seg = segments_.upper_bound(seg);
    const uint64_t following = next_seg == segments_.end() ? synced_pos_.seg : next_seg->first;
    lock.unlock();

    if (reader_seg_ != seg) {
      auto f = env_->NewRandomAccessFile(SegPath(seg));
      reader_.Reset(f.ok() ? std::move(f).value() : nullptr);
      reader_seg_ = seg;
    }
    uint64_t off = read_pos_.off, dropped = 0;
    SegmentReader::Outcome o = SegmentReader::Outcome::kEnd;
    if (reader_.open()) {
      o = reader_.Read(&off, limit, &record_, &dropped);
    } else {
      dropped = limit - off;  // unreadable segment: skip it whole
      damage_.notes.push_back(SegmentName(seg) + " cannot be read");
    }
    const bool cut_short = o == SegmentReader::Outcome::kEnd && sealed && off < limit;
    if (o == SegmentReader::Outcome::kEnd && sealed) {
      dropped += limit - std::min(off, limit);  // a partial record at a sealed end
      off = limit;
    }
    damage_.Add(seg, dropped);
    if (cut_short) {
      damage_.notes.push_back((damage_.first_seg == seg ? "it" : SegmentName(seg)) +
                              std::string(" ends inside a record (cut short)"));
    }

    if (o == SegmentReader::Outcome::kRecord) {
      RecordHeader h;
      std::vector<Event> events;
      bool ok = ParseRecordHeader(record_, &h) && DecodeEvents(h.batch, &events).ok();
      // An intact fragment chain whose content does not decode: its events
      // show up as a gap in the numbering at the next good record.
      if (!ok) damage_.Add(seg, record_.size());
      lock.lock();
      read_pos_.off = off;
      if (ok) {
        uint64_t lost = 0;
        if (expected_event_ && h.first_event > *expected_event_) {
          lost = h.first_event - *expected_event_;
          const uint64_t lo = std::max(*expected_event_, precounted_lo_), hi = std::min(h.first_event, precounted_hi_);
          if (hi > lo) lost -= hi - lo;
        }
        if (lost > 0 || !damage_.empty()) CountCorrupt(lost, damage_);
        damage_ = Damage();
        expected_event_ = h.first_event + events.size();
      }
      const uint64_t id = inflight_base_ + inflight_.size();
      inflight_.push_back(InFlight{read_pos_, ok ? h.first_event + events.size() : ack_event_, uint8_t(ok ? 0 : 1)});
      if (!ok) {
        AdvanceAcks();
        continue;
      }
      Batch b(std::move(events));
      b.set_bytes(h.source_bytes);
      std::weak_ptr<Impl> self = weak_from_this();
      b.add_finalizer(Finalizer::Create([self, id](BatchStatus s) {
        if (auto p = self.lock()) p->Ack(id, s);
      }));
      m_.sent_events->Increment(static_cast<double>(b.size()));
      *out = std::move(b);
      return SinkInput::Result::kBatch;
    }
    lock.lock();
    if (off != read_pos_.off || sealed) {
      // Moved over skipped bytes or to the next segment: that stretch is
      // "acknowledged" as soon as everything before it is.
      read_pos_ = sealed ? Pos{following, 0} : Pos{seg, off};
      if (sealed) {
        // Close it now: a deleted segment's space is only freed once no
        // descriptor is open on it (it matters on a full disk).
        reader_seg_ = ~0ull;
        reader_.Reset(nullptr);
        if (following > seg + 1) damage_.notes.push_back(Gone(seg + 1, following - 1));
        if (precounted_hi_ > precounted_lo_ && seg < first_run_seg_ && following >= first_run_seg_) {
          // Past what the last run left. The events recovery counted as
          // lost in its torn tail lie before this run's first record: step
          // over them, so that they are acknowledged and not counted again.
          const uint64_t lost =
              expected_event_ && *expected_event_ < precounted_lo_ ? precounted_lo_ - *expected_event_ : 0;
          if (lost > 0 || !damage_.empty()) CountCorrupt(lost, damage_);
          damage_ = Damage();
          expected_event_ = std::max(expected_event_.value_or(0), precounted_hi_);
        }
      }
      inflight_.push_back(InFlight{read_pos_, expected_event_.value_or(ack_event_), 1});
      AdvanceAcks();
    } else if (!sealed) {
      // Nothing whole below the synced limit: wait for more.
      if (!data_cv_.wait_until(lock, deadline, [&] { return aborted_ || Limit(seg) > limit || seg < synced_pos_.seg; }))
        return SinkInput::Result::kTimeout;
    }
  }
}

void DiskBuffer::Impl::CountCorrupt(uint64_t events, const Damage& damage) {
  stats_.corrupt_events += events;
  stats_.corrupt_bytes += damage.bytes;
  if (events) m_.discarded_corrupt->Increment(static_cast<double>(events));
  LogLimited(corrupt_limiter_, LogLevel::kError, opt_.name, damage.Describe(events));
}

void DiskBuffer::Impl::Ack(uint64_t id, BatchStatus s) {
  std::lock_guard lock(mu_);
  if (released_) return;  // the next buffer on this directory delivers it again
  if (id < inflight_base_ || id - inflight_base_ >= inflight_.size()) return;
  inflight_[id - inflight_base_].state = s == BatchStatus::kFailed ? 2 : 1;
  AdvanceAcks();
}

void DiskBuffer::Impl::AdvanceAcks() {
  const uint64_t seg_before = ack_pos_.seg;
  while (!inflight_.empty() && !ack_stuck_) {
    const InFlight& f = inflight_.front();
    if (f.state == 0) break;
    if (f.state == 2) {
      ack_stuck_ = true;  // redelivered after a restart; nothing after it may be acked in this run
      break;
    }
    ack_pos_ = f.end;
    ack_event_ = std::max(ack_event_, std::min(f.event_end, next_event_));
    inflight_.pop_front();
    ++inflight_base_;
  }
  UpdateGauges();
  if (ack_pos_.seg != seg_before && blocked_writers_ > 0) {
    housekeeping_wanted_ = true;
    flush_cv_.notify_one();
  }
}

// ---- Lifecycle -------------------------------------------------------------

void DiskBuffer::Impl::Close(bool keeping) {
  std::lock_guard lock(mu_);
  closed_ = true;
  keeping_ |= keeping;
  sync_now_ = true;
  flush_cv_.notify_one();
  not_full_.notify_all();
  data_cv_.notify_all();
}

void DiskBuffer::Impl::Abort() {
  Releases rel;
  {
    std::unique_lock lock(mu_);
    aborted_ = true;
    not_full_.notify_all();
    data_cv_.notify_all();
    // What was written is durable once synced: acknowledge it.
    SyncTo(lock, lsn_, &rel);
  }
  Release(rel);
}

void DiskBuffer::Impl::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    closed_ = true;
    not_full_.notify_all();
    data_cv_.notify_all();
    flush_cv_.notify_one();
  }
  if (flusher_.joinable()) flusher_.join();
  Releases rel;
  {
    std::lock_guard lock(mu_);
    for (auto& p : pending_) rel.emplace_back(std::move(p.finalizers), BatchStatus::kFailed);
    pending_.clear();
  }
  RunFinalizers(rel);
}

void DiskBuffer::Impl::Release() {
  Shutdown();  // the flusher's last round writes the ledger
  std::lock_guard lock(mu_);
  released_ = true;
  aborted_ = true;  // Next returns kClosed before it reads anything
  active_.reset();
  lock_file_.reset();
}

// ---- DiskBuffer ------------------------------------------------------------

Result<std::unique_ptr<DiskBuffer>> DiskBuffer::Open(const DiskBufferOptions& options, BufferMetrics metrics) {
  auto impl = std::make_shared<Impl>(options, metrics);
  Status s = impl->Recover();
  if (!s.ok()) return Status(s.code(), "disk buffer in " + options.dir + ": " + s.message());
  impl->StartFlusher();
  return std::unique_ptr<DiskBuffer>(new DiskBuffer(std::move(impl)));
}

DiskBuffer::~DiskBuffer() { impl_->Shutdown(); }
bool DiskBuffer::Push(Batch batch, WhileBlocked* while_blocked) {
  return impl_->Push(std::move(batch), while_blocked);
}
SinkInput::Result DiskBuffer::Next(Batch* out, std::chrono::milliseconds timeout) {
  return impl_->Next(out, timeout);
}
void DiskBuffer::Close() { impl_->Close(false); }
void DiskBuffer::CloseKeeping() { impl_->Close(true); }
void DiskBuffer::Abort() { impl_->Abort(); }
void DiskBuffer::Release() { impl_->Release(); }
DiskBuffer::Stats DiskBuffer::stats() const { return impl_->stats(); }

}  // namespace tributary
