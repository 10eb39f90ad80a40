#pragma once
// `file` source: tails files matched by globs, following rotation, and
// checkpoints what every destination has acknowledged.
//
// One thread (Run) does everything: discovery (globs, every
// glob_minimum_cooldown_ms and at once on inotify create/move/delete
// events), reading (round-robin over files with data, at most
// max_read_bytes per file per turn, so one busy file cannot starve the
// others), line splitting and multiline joining, batching and checkpoint
// writes. Acknowledgements arrive on sink threads through each batch's
// finalizer and only touch the AckTracker (file/checkpoints.h). The
// checkpoint file is written by a thread of its own (CheckpointLoop), from
// the identities the reading thread publishes and the offsets the tracker
// holds: a source blocked in Send by a full `when_full: block` buffer
// still records, within the checkpoint interval, what that buffer has
// acknowledged.
//
// Files are known by fingerprint (file/fingerprint.h). A reader follows
// its open descriptor, not its path: a renamed file is read to its end
// and closed once its path leads elsewhere and it has been idle for
// rotate_wait_secs (or at once at its end when deleted). A file that
// shrinks or whose first lines change was truncated: its old identity
// keeps its position (a copy made by copytruncate resumes there) and the
// file is read again from 0 under its new identity.
//
// Files too short to fingerprint yet are held open under a reader with no
// identity, and identified (Identify) once they have their lines. Files
// with the same fingerprint are told apart by content (MatchKnown): a
// file adopts a remembered position only if it has the same bytes before
// it, and is skipped as a copy of a file being read only if both hold the
// same bytes; one that only starts alike is read as a file of its own.
//
// At most max_open_files descriptors are open: idle files beyond that are
// closed ("parked") and reopened, with their identity checked, when they
// have data. Layout: helpers live in sources/file/.
//
// While Send waits for room in a full buffer, the same thread keeps
// discovering (WhileBlocked, called from inside Send): it drains inotify
// and runs DiscoverNamed and Discover, so files created meanwhile are
// opened and identified, and held open until they can be read, wherever
// they are renamed or deleted to. It reads no line and sends nothing, and
// never closes, parks or frees the reader whose turn was interrupted.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/batch_builder.h"
#include "agent/component.h"
#include "agent/log.h"
#include "config/registry.h"
#include "config/schema.h"
#include "sources/file/checkpoints.h"
#include "sources/file/fingerprint.h"
#include "sources/file/multiline.h"
#include "sources/line_splitter.h"

namespace tributary {

class FileSource final : public Source, private WhileBlocked {
 public:
  // Directories' file names, sorted (listed once for many copy searches).
  using DirListings = std::map<std::string, std::vector<std::string>>;

  struct FingerprintConfig {
    std::string strategy = "checksum";
    uint64_t lines = 1;
    config::ByteSize ignored_header_bytes{0};
    static const config::Schema<FingerprintConfig>& schema();
  };
  struct MultilineConfig {
    config::Regex start_pattern;
    config::Regex condition_pattern;
    std::string mode = "continue_through";
    config::Millis timeout_ms{1000};
    static const config::Schema<MultilineConfig>& schema();
  };
  struct Config {
    std::vector<std::string> include;
    std::vector<std::string> exclude;
    std::string read_from = "beginning";
    FingerprintConfig fingerprint;
    config::ByteSize max_line_bytes{102400};
    std::string oversize_policy = "truncate";
    std::string line_delimiter = "\n";
    config::Millis glob_minimum_cooldown_ms{1000};
    config::Seconds ignore_older_secs{0};
    MultilineConfig multiline;
    uint64_t max_open_files = 1024;
    config::ByteSize max_read_bytes{262144};
    config::Seconds rotate_wait_secs{5};
    bool read_to_end_on_stop = false;
    static const config::Schema<Config>& schema();
  };
  // Checkpoints: data_dir/file_source/<id>/checkpoints.json.
  static constexpr std::string_view kStateDir = "file_source";
  static constexpr std::string_view kSummary =
      "Tails files matched by globs, follows rotation and truncation, checkpoints acknowledged positions.";
  static Result<std::unique_ptr<Source>> Build(const Config& config, BuildContext& ctx);
  static void CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out);

  ~FileSource() override;
  Status Run(SourceContext& ctx) override;
  void Finish() override;
  bool ReadsUndeliveredAgain() const override { return true; }
  uint64_t UndeliveredGone(std::string* where) override;

  // How many entries the searches on the new-file path have looked at so
  // far (any thread): the identities ClaimInode went through, the open
  // files ParkIdlest considered, and the identities PublishCheckpoints
  // handed to the checkpoint writer. Tests check that they grow with the
  // number of files, or of changes, not with its square.
  struct ScanCounts {
    uint64_t claim_visits = 0;
    uint64_t park_visits = 0;
    uint64_t published_entries = 0;
  };
  ScanCounts ScanCountsForTesting() const {
    return {claim_visits_.load(std::memory_order_relaxed), park_visits_.load(std::memory_order_relaxed),
            published_entries_.load(std::memory_order_relaxed)};
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Reader;
  // What a file just identified is, among the known identities with its
  // fingerprint (MatchKnown).
  struct Match {
    enum Kind {
      kNew,        // a file of its own: read from the start
      kAdopt,      // `progress` is this file's (renamed, or a copy of a file no longer read): resume there
      kStartOver,  // this file, remembered, but rewritten since: `progress` is replaced, read from 0
      kCopy,       // a copy of `other` (being read, or read past this copy's end): not read
      kUndecided,  // `other`, being read, changed under its reader: ask again once that reader has seen it
    } kind = kNew;
    std::shared_ptr<file::Progress> progress;
    std::string other;  // kCopy: the original; kNew: a file it only starts like
    const Reader* original = nullptr;  // kCopy of a file being read: its reader
  };

  FileSource(const Config& config, BuildContext& ctx);

  // WhileBlocked: discovery while Send waits for room in a full buffer.
  void Work() override;
  // A file just added, over the cap on open files: parked, unless, while
  // blocked, a file with nothing left to read can give up its descriptor.
  void KeepWithinCap(Reader* r);

  // Discovery and identity.
  void Discover(bool first);
  // `copy_only`: found while blocked outside the globs (Reader::copy_only).
  void DiscoverPath(const std::string& path, bool first, Clock::time_point now, bool copy_only = false);
  void Watch(const std::string& dir);
  void DrainInotify();
  // Paths inotify named as created or moved in that match `include`:
  // opened at once.
  void DiscoverNamed(Clock::time_point now);
  bool Included(const std::string& path) const;
  bool FollowRenamed(Reader* r);
  void ResumeRenamedAtStart(Clock::time_point now);
  // After the first discovery, the start's passes over copies beside the
  // files (one listing per directory): checkpointed contents whose inode
  // holds other content now are resumed from a copy, and those that gave
  // up their inode before the stop (ClaimInode) likewise; rotations the
  // agent never saw are read (ReadUnseenRotationsAtStart). An inode none
  // of whose contents goes on in a copy or a file the globs match is
  // warned about and counted (truncated_while_stopped).
  void WarnRewrittenWhileStopped();
  // Looks beside `p`'s file (and the file its path led to), among the
  // files named like its rotations (RotationNamesOf), for a copy of its
  // old content that the globs do not match (logrotate's copytruncate with
  // include: [app.log], copy app.log.1) holding lines past `p`'s position,
  // and reads them from there (kAdopt). `why`: for the log. True if one
  // was found.
  bool ResumeFromCopy(const std::shared_ptr<file::Progress>& p, const std::string& why, Clock::time_point now,
                      DirListings* listings = nullptr);
  // At start: files named like rotations of the files the globs found
  // (beside them, or beside where their symlinks lead), that the globs do
  // not match, written since the checkpoints were, and holding a content
  // no identity knows: what the file held between rotations while the
  // agent was down (two copytruncates, or two renames). Read from the start.
  void ReadUnseenRotationsAtStart(Clock::time_point now, DirListings* listings);
  // The identities truncated under their reader (checksum) since the last
  // call: ResumeFromCopy for each, outside ReadTurn.
  void ResumeTruncatedFromCopies(Clock::time_point now);
  bool Excluded(const std::string& path) const;
  void MarkDirty(Reader* r);
  void MarkAllDirty();
  void Sweep();

  // Reading.
  // ReadTurnOnce, then r is filed among the idle files if it is one.
  bool ReadTurn(Reader* r);
  bool ReadTurnOnce(Reader* r);
  bool EnsureOpen(Reader* r);
  Reader* AddReader(const std::string& path, int fd, std::pair<uint64_t, uint64_t> key, uint64_t pos);
  void Park(Reader* r);
  bool ParkIdlest(Reader* except);
  // Open and idle (read to its end, not queued for a turn): may give up
  // its descriptor. A file rotated away too, once identified: it is found
  // again by its inode beside its old path (FollowRenamed).
  static bool Parkable(const Reader& r);
  bool HasParkable();
  // Files it is known in idle_ (Parkable, by last_read): after each turn,
  // and when a file found rotated is back at a matched path.
  void IndexIdle(Reader* r);
  void UnindexIdle(Reader* r);
  void UpdateOpenCap();
  int OpenForReading(const std::string& path);
  void Truncated(Reader* r, const char* why);
  bool Identify(Reader* r);
  Match MatchKnown(int fd, const struct stat& st, const file::Identity& id, const Reader* self);
  Reader* ActiveReader(const file::Progress* p);
  // r reads r->progress from now on / no longer (active_readers_).
  void SetActiveReader(Reader* r);
  void UnsetActiveReader(Reader* r);
  // True if the file `fd` of `size` bytes holds the same bytes as the file
  // `a` reads so far (a copy); nullopt if `a` changed under its reader.
  std::optional<bool> CopyOfActive(int fd, uint64_t size, uint64_t head_end, Reader* a);
  // True if `fd` (the file `r` reads) still holds what `r` read: at least
  // as many bytes, the same head and the same bytes before its last line
  // end (the reader's PositionCheck, from the bytes it read). One fstat
  // and two preads.
  bool StillAsRead(int fd, const Reader* r);
  void NoteCopy(const std::pair<uint64_t, uint64_t>& key, int64_t size, const std::string& path,
                const std::string& original);
  // True if the file `fd` (inode `key`, at `path`) is compressed (gzip,
  // xz, zstd, bzip2: logrotate's `compress`): it is not read, and is
  // remembered (compressed_) and logged once. One pread. *unchecked, if
  // given, stays true while the file has no byte to tell.
  bool SkipIfCompressed(int fd, const std::pair<uint64_t, uint64_t>& key, const std::string& path,
                        bool* unchecked = nullptr);
  // Drops `p` from the known identities (a file identified, then found
  // compressed).
  void ForgetKnown(const std::shared_ptr<file::Progress>& p);
  void ReplaceKnown(const std::shared_ptr<file::Progress>& old, const std::shared_ptr<file::Progress>& np);
  // A file rewritten with the same first lines (kStartOver) gets the new
  // identity `np`; `old` stays known without an inode: a copy of the old
  // content (copytruncate, then the program writes its header again) still
  // resumes where that content was left instead of being read again.
  void KeepRewritten(const std::shared_ptr<file::Progress>& old, const std::shared_ptr<file::Progress>& np);
  // `p` now holds its inode: the identities that held it before (the
  // contents a copytruncate took away) no longer do, and keep no inode.
  // Else one of them, found by that inode at the next start, could pass
  // for the content the file held last.
  void ClaimInode(const std::shared_ptr<file::Progress>& p);
  // known_ and known_by_inode_ kept together: every identity in known_ is
  // in known_by_inode_ under its current device and inode (unless both are
  // 0), and its change is queued for PublishCheckpoints.
  void AddKnown(const std::shared_ptr<file::Progress>& p);
  using KnownMap = std::unordered_multimap<uint64_t, std::shared_ptr<file::Progress>>;
  KnownMap::iterator EraseKnown(KnownMap::iterator it);
  void SetInode(const std::shared_ptr<file::Progress>& p, uint64_t dev, uint64_t ino);
  // What PublishCheckpoints hands over changed for `p` (its path, inode,
  // lead, or whether it is known at all).
  void KnownChanged(const std::shared_ptr<file::Progress>& p);
  // Whether `path` is named like a rotation of a file the globs match
  // (app.log.1 beside an included app.log): a copy read for it.
  bool RotationOfIncluded(const std::string& path) const;
  void TopUpLead(const std::shared_ptr<file::Progress>& p, int fd, uint64_t head_end);
  uint64_t HeadEnd(const file::Identity& id) const { return fp_options_.ignored_header_bytes + id.head_bytes; }
  void NoteChunk(Reader* r, const char* data, size_t n, uint64_t off);
  void CloseReader(Reader* r, bool deleted);
  // A closed (parked) file gone from its path and not found beside it.
  void DropParkedGone(Reader* r);
  void RemoveReader(Reader* r);
  void EmitLine(Reader* r, std::string_view line, uint64_t start, uint64_t end);
  void NoteProgress(Reader* r);
  void PollMultiline(Clock::time_point now);
  // read_to_end_on_stop: after the main loop, until stop_read_deadline.
  void ReadToEndOnStop();

  // Batches and checkpoints.
  // more: mid-read, with more to come (SourceContext::SendMore).
  bool SendBatch(bool more = false);
  // Reading thread: hands the checkpoint writer the identities (when they
  // changed) and wakes it if an offset may have moved.
  void PublishCheckpoints();
  // Wakes the checkpoint writer (any thread; takes ckpt_mu_ only).
  void KickCheckpoints();
  void CheckpointLoop();
  // Writes the published identities with their acknowledged offsets;
  // checkpoint thread, or Finish once that thread has stopped.
  void WriteCheckpoints(bool force);
  void StopCheckpointThread();
  void LoadState(std::stop_token stop);
  void OpenInotify();
  void UpdateCounters(Reader* r);

  Config config_;
  std::string id_;
  std::string host_;
  std::string data_dir_;
  std::string checkpoint_path_;
  file::FingerprintOptions fp_options_;
  file::MultilineRules ml_rules_;
  bool multiline_ = false;
  bool discard_oversize_ = false;

  // Metrics, bound at build.
  ComponentMetrics* metrics_;
  Gauge* files_watched_;
  Counter* checkpoints_;
  Counter* err_open_;
  Counter* err_read_;
  Counter* err_oversize_;
  Counter* err_utf8_;
  Counter* err_not_file_;
  Counter* err_glob_;
  Counter* err_checkpoint_;
  Counter* err_compressed_;  // once per compressed file found (SkipIfCompressed)
  Counter* err_truncated_stopped_;  // WarnRewrittenWhileStopped
  Counter* err_truncated_unread_;   // ResumeTruncatedFromCopies
  Counter* err_watch_;              // once per directory inotify cannot watch (Watch)
  RateLimiter log_limiter_;
  RateLimiter copy_log_limiter_;

  // Run-thread state.
  SourceContext* ctx_ = nullptr;
  std::shared_ptr<file::AckTracker> tracker_;
  std::list<Reader> readers_;
  std::map<std::pair<uint64_t, uint64_t>, Reader*> by_inode_;
  std::unordered_map<std::string, Reader*> by_path_;
  // By fingerprint; files that start alike but are not copies of each
  // other share one (MatchKnown tells them apart).
  KnownMap known_;
  // The same identities by device and inode (ClaimInode), but for those
  // that hold none (0, 0).
  std::multimap<std::pair<uint64_t, uint64_t>, std::shared_ptr<file::Progress>> known_by_inode_;
  // The reader of each active identity (ActiveReader); entries may be
  // stale (the reader moved on to another identity), never dangling.
  std::unordered_map<const file::Progress*, Reader*> active_readers_;
  // Open files that may be parked (Parkable when filed), files rotated
  // away first (they are done but for late writes), then the idlest:
  // ParkIdlest takes the first that still is. Entries go stale when a file
  // is queued, parked or rotated, and are dropped when met; a file is
  // filed again when it can be parked again (IndexIdle). A removed reader
  // is never in it.
  std::map<std::pair<Clock::time_point, uint64_t>, Reader*> idle_;
  uint64_t idle_seq_ = 0;
  std::atomic<uint64_t> claim_visits_{0};
  std::atomic<uint64_t> park_visits_{0};
  std::atomic<uint64_t> published_entries_{0};
  // Identities of files truncated under their reader (device_and_inode)
  // with batches not yet settled: UndeliveredGone counts what they lose.
  std::vector<std::shared_ptr<file::Progress>> truncated_pending_;
  // The first discovery: the checkpointed identities by inode, and those
  // whose inode was found holding other content, with its path. An inode
  // holds one identity (ClaimInode), but checkpoints written before that
  // rule may hold several.
  std::multimap<std::pair<uint64_t, uint64_t>, std::shared_ptr<file::Progress>> checkpointed_inodes_;
  struct RewrittenAtStart {
    std::shared_ptr<file::Progress> progress;
    std::string path;
    uint64_t ino;
  };
  std::vector<RewrittenAtStart> rewritten_at_start_;
  struct TruncatedUnderReader {
    std::shared_ptr<file::Progress> progress;
    std::string path;
    uint64_t unread;  // bytes its reader knew were there past its position
  };
  std::vector<TruncatedUnderReader> truncated_under_reader_;  // ResumeTruncatedFromCopies
  std::deque<Reader*> ready_;
  std::set<std::string> bad_paths_;      // reported once: unreadable, not a file
  std::map<std::pair<uint64_t, uint64_t>, int64_t> skipped_;  // copies already read: inode -> size
  std::map<std::pair<uint64_t, uint64_t>, int64_t> skipped_prev_;
  // Compressed files the globs match (SkipIfCompressed), by inode, with
  // the size and mtime they had when looked at: found again unchanged, they
  // are not opened again; gone from the globs at a discovery, forgotten.
  struct CompressedSeen {
    int64_t size = 0;
    int64_t mtime_ns = 0;
    bool seen = true;  // found by the current discovery
  };
  std::map<std::pair<uint64_t, uint64_t>, CompressedSeen> compressed_;
  RateLimiter compressed_log_limiter_;
  std::vector<Reader*> starved_;  // waiting for a free descriptor
  size_t open_count_ = 0;
  // Most files open at once: max_open_files, or this source's share of
  // the process's descriptors if that is less (UpdateOpenCap, at each
  // discovery); halved when an open() finds the process out of them.
  size_t max_open_ = 0;
  bool cap_logged_ = false;
  // Inside Send, waiting for room (Work): discovery only, no reading.
  bool blocked_ = false;
  // The reader whose turn (ReadTurn) is under way: Work leaves it alone.
  Reader* reading_ = nullptr;
  RateLimiter blocked_cap_limiter_;
  size_t removed_count_ = 0;
  int inotify_fd_ = -1;
  bool inotify_failed_ = false;    // inotify_init1 failed: polling
  bool inotify_given_up_ = false;  // ... for a reason that will not pass
  int wake_fd_ = -1;
  std::unordered_map<int, std::string> wd_dirs_;
  std::set<std::string> watched_dirs_;
  std::set<std::string> unwatched_dirs_;  // inotify refused them: polled, and said once each
  // Matched paths that are symlinks (Kubernetes' /var/log/containers/*.log),
  // by the file they lead to: the target's directory is watched too, so a
  // write to the target or its rotation wakes the source as for a plain file.
  std::unordered_map<std::string, std::string> link_targets_;
  bool discovery_requested_ = false;
  Clock::time_point last_discovery_{};
  std::vector<std::string> named_;        // for DiscoverNamed
  std::vector<std::string> include_abs_;  // `include`, made absolute as ExpandGlob does

  static constexpr size_t kBatchEvents = 256;
  BatchBuilder events_{kBatchEvents};  // events of the batch being filled
  size_t batch_bytes_ = 0;
  Clock::time_point batch_started_{};
  std::vector<std::shared_ptr<file::Progress>> touched_;
  Timestamp read_time_{};

  // Reading thread: the identities changed since PublishCheckpoints last
  // handed them over (Progress::publish_queued).
  std::vector<std::shared_ptr<file::Progress>> changed_;
  bool new_identity_ = false;            // an identity added since the last publication
  int64_t checkpoints_mtime_ns_ = 0;  // when the loaded checkpoints were written; 0: none loaded
  bool checkpoints_unreadable_ = false;  // checkpoints.json could not be read: read_from: end is not applied
  uint64_t kicked_generation_ = ~uint64_t{0};
  // Shared with the checkpoint thread, under ckpt_mu_.
  struct Published {
    std::shared_ptr<file::Progress> progress;
    file::CheckpointEntry entry;  // fingerprint, path, dev, ino as the reading thread saw them
  };
  std::mutex ckpt_mu_;
  std::condition_variable ckpt_cv_;
  // The known identities, as last handed over; PublishCheckpoints changes
  // only the entries of the identities that changed.
  std::unordered_map<const file::Progress*, Published> published_;
  uint64_t published_version_ = 0;
  bool published_new_identity_ = false;  // an identity added since the last write
  bool ckpt_kick_ = false;
  // The checkpoint thread waits with nothing to write: only then does a
  // kick wake it (an acknowledgement per batch would otherwise wake it
  // thousands of times a second; with something to write it wakes when
  // the write is due anyway).
  bool ckpt_idle_ = false;
  bool ckpt_stop_ = false;
  std::thread ckpt_thread_;
  // Checkpoint thread only (and Finish, after it stopped).
  uint64_t saved_generation_ = ~uint64_t{0};
  uint64_t saved_version_ = ~uint64_t{0};
  Clock::time_point next_identity_checkpoint_{};  // a write for a new identity waits until then
  Clock::time_point next_checkpoint_{};  // a write for deliveries waits until then
  uint64_t saved_deliveries_ = 0;       // AckTracker::deliveries() at the last write
  bool loaded_ = false;
  std::vector<char> buf_;
  const char* ascii_chunk_ = nullptr;  // the chunk being split, if all ASCII
  size_t ascii_chunk_len_ = 0;
};

}  // namespace tributary
