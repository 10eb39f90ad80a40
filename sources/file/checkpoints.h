#pragma once
// Positions and acknowledgements of the file source.
//
// Progress is the state of one file identity (fingerprint): the reader
// thread's view (path, where it has emitted up to) and the acknowledged
// offset, which only ever moves to the end of the highest contiguous run of
// batches finalized Delivered or Rejected. AckTracker does that
// bookkeeping: the reader Add()s one entry per file per batch (the offset
// the batch covers that file up to) and the batch's finalizer Resolve()s
// them, on whatever sink thread releases the batch last. A Failed batch
// blocks its file's position until the agent restarts (then the data is
// read again).
//
// The checkpoint file (data_dir/file_source/<id>/checkpoints.json):
//   {"version":1,"strategy":"checksum"|"device_and_inode",
//    ["lines":N,"ignored_header_bytes":N,]   (checksum: what the fingerprints were taken over)
//    "checkpoints":[{"fingerprint":"<16 hex>","offset":N,"path":"...",
//                    "dev":N,"ino":N
//                    [,"target":"..."]
//                    [,"check":"<16 hex>"]
//                    [,"lead_bytes":N,"lead":"<16 hex>"]}, ...]}
// `target` is where `path` led when it is a symbolic link (Kubernetes'
// /var/log/containers/*.log): the file's own path, whose directory is
// where a rotation renames it. Absent for a path that is no link, and in
// checkpoints written before it existed (then only `path`'s directory is
// searched for a renamed file, as before).
// `check` is PositionCheck of the bytes just before `offset`, `lead` the
// Hash64 of the `lead_bytes` bytes after the fingerprinted head
// (fingerprint.h): what tells this file from another that starts with the
// same lines. Both are optional (files written before they existed load,
// and adopt their offsets as before). Several entries may share a
// fingerprint: files that start alike but are not copies of each other.
// written to checkpoints.json.tmp, fsynced, renamed over the old one, and
// the directory fsynced: a crash leaves the old file or the new one.
//
// Thread-safety: Progress fields marked "reader" belong to the source
// thread; the others are guarded by AckTracker's mutex.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/batch.h"
#include "agent/status.h"

namespace tributary::file {

struct Progress {
  explicit Progress(uint64_t fp) : fingerprint(fp) {}
  const uint64_t fingerprint;
  // reader:
  std::string path;
  std::string target;  // where `path` led, if a symlink: the file's own path ("" otherwise)
  uint64_t dev = 0, ino = 0;
  uint64_t emit_pos = 0;     // every line before this was emitted (or skipped)
  uint64_t emit_check = 0;   // PositionCheck at emit_pos; 0: not known
  // Up to kLeadBytes bytes after the fingerprinted head (lead_bytes of
  // them, hashing to lead_hash; `lead` holds them unless loaded from a
  // checkpoint): a file with the same first lines but another lead is
  // another file.
  std::string lead;
  uint64_t lead_bytes = 0, lead_hash = 0;
  bool touched = false;      // emit_pos moved since the last batch was cut
  uint64_t batch_events = 0; // events emitted since the last batch was cut
  bool active = false;       // a reader is attached
  bool known = false;        // among the file source's known identities (what is checkpointed)
  bool publish_queued = false;  // changed since the file source last handed its identities to the checkpoint writer
  bool gone = false;         // the file was deleted: drop once acknowledged
  std::chrono::steady_clock::time_point last_seen = std::chrono::steady_clock::now();
  // AckTracker's mutex:
  uint64_t acked = 0;
  uint64_t acked_check = 0;  // PositionCheck at acked
  uint64_t front_seq = 0;
  struct Pending {
    uint64_t offset, check;
    uint8_t state;  // 0 waiting | 1 done | 2 failed
    uint64_t events = 0;  // this file's events in the batch
  };
  std::deque<Pending> pending;
};

class AckTracker {
 public:
  // A pending entry: `p` is covered up to `offset` (whose PositionCheck is
  // `check`) once `seq` resolves.
  // `events`: how many of the batch's events are this file's.
  uint64_t Add(Progress* p, uint64_t offset, uint64_t check = 0, uint64_t events = 0);
  void Resolve(Progress* p, uint64_t seq, BatchStatus status);
  // `p` advanced to `offset` with nothing to deliver (skipped lines, a
  // start at the end): acknowledged at once after what is pending.
  void Advance(Progress* p, uint64_t offset, uint64_t check = 0);
  uint64_t Acked(const Progress* p);
  // The acknowledged offset and its PositionCheck.
  std::pair<uint64_t, uint64_t> AckedAt(const Progress* p);
  // Sets `p`'s acknowledged position outright (loading, truncation).
  void Reset(Progress* p, uint64_t acked, uint64_t check = 0);
  bool HasPending(const Progress* p);
  // The events of `p`'s batches not delivered (failed, or never
  // finalized): what the next start reads again, if the file still holds it.
  uint64_t Undelivered(const Progress* p);
  // Bumped whenever an acknowledged offset moves.
  uint64_t generation();
  // Bumped whenever a delivered batch (Resolve) moves one.
  uint64_t deliveries();
  // Called, under the tracker's lock, when a delivered batch moves an
  // acknowledged offset: the file source wakes to write its checkpoints
  // rather than sleep through the news. nullptr stops the calls.
  void set_on_advance(std::function<void()> f);

 private:
  bool Pop(Progress* p);  // true if the acknowledged offset moved
  std::mutex mu_;
  uint64_t generation_ = 0;
  uint64_t deliveries_ = 0;
  std::function<void()> on_advance_;
};

// A finalizer that resolves `entries` in `tracker` when the batch's fate is known.
FinalizerRef MakeFinalizer(std::shared_ptr<AckTracker> tracker,
                           std::vector<std::pair<std::shared_ptr<Progress>, uint64_t>> entries);

struct CheckpointEntry {
  uint64_t fingerprint = 0;
  uint64_t offset = 0;
  std::string path;
  uint64_t dev = 0, ino = 0;
  uint64_t check = 0;                     // 0: none
  uint64_t lead_bytes = 0, lead_hash = 0;  // lead_bytes 0: none
  std::string target;                      // "": `path` is no symlink (or not known)
};

struct CheckpointFile {
  std::string strategy;
  // With `checksum`: fingerprint.lines and ignored_header_bytes when they
  // were written (lines 0: not recorded, a file of an older version).
  uint64_t lines = 0, ignored_header_bytes = 0;
  std::vector<CheckpointEntry> entries;
};

// Reads `path`; a missing file is an empty result, a corrupt one an error.
Result<CheckpointFile> LoadCheckpoints(const std::string& path);
// Writes tmp → fsync → rename → fsync(dir).
Status SaveCheckpoints(const std::string& path, const CheckpointFile& file);

// How long after a write that recorded deliveries the next one may come.
// The whole file is rewritten (and fsynced) each time: 250 ms, plus 250 ms
// per 256 identities it holds, up to 5 s, so that 5,000 files with a line
// a second between them write ~0.15 MB/s of checkpoints, not 3 MB/s.
std::chrono::milliseconds CheckpointInterval(size_t identities);

std::string FingerprintHex(uint64_t fp);
bool ParseFingerprintHex(std::string_view s, uint64_t* out);

}  // namespace tributary::file
