#pragma once
// DiskBuffer: a sink buffer on disk that survives restarts, kill -9 and
// corruption (`buffer: { type: disk }`).
//
// Write side (Push, any thread): each batch becomes one record appended to
// the active segment file. The batch's upstream finalizers are released
// (Delivered) only once the record is fsynced: by the background flusher
// at most `flush_interval` after the write, or before Push returns when the
// interval is 0 (group commit: concurrent writers share one fsync).
// Read side (Next, the sink's thread only): records are read back from disk
// (only what has been fsynced) and handed to the sink as new batches whose
// finalizers advance the ack position. Acks may arrive out of order; the
// ack position moves to the end of the longest acknowledged prefix. It is
// persisted in the ledger by the flusher, and whole segments behind it are
// then deleted. After a restart reading resumes at the persisted ack
// position, so unacknowledged records (and those acknowledged after the
// last ledger write: the in-flight window) are delivered again.
//
// On-disk layout, in data_dir/buffer/<sink_id>/:
//   lock                         flock'ed while an agent uses the directory
//   ledger                       positions (below); replaced atomically
//   ledger.tmp                   a ledger being written (removed at open)
//   segment-<id:016x>.log        segments, ids increasing, append-only
//
// Segment format (LevelDB's log format, with zlib's crc32):
//   segment  := block* partial_block?
//   block    := fragment* trailer?              ; 32 KiB
//   trailer  := 0x00{0..6}                      ; when < 7 bytes are left
//   fragment := crc:fixed32 len:fixed16 type:u8 data:byte{len}
//               ; crc = crc32(type, data); a fragment never crosses a block
//   type     := FULL=1 | FIRST=2 | MIDDLE=3 | LAST=4
//   record   := FULL | FIRST MIDDLE* LAST       ; data concatenated
//   payload  := first_event:fixed64 source_bytes:varint batch
//               ; batch as in event_codec.h; first_event numbers events
//               ; consecutively over the buffer's life, so a gap between
//               ; two intact records counts the events lost in between.
//
// Ledger format (all fixed-width little-endian):
//   ledger := "TRBLEDG1" version:fixed32(=1)
//             ack_segment:fixed64 ack_offset:fixed64 ack_event:fixed64
//             write_segment:fixed64 write_offset:fixed64 write_event:fixed64
//             crc:fixed32                       ; crc32 of everything before
//   ack_*   = the first record not yet acknowledged by the sink
//   write_* = the end of what was fsynced when the ledger was written
//
// Crash safety (every step ordering, and what recovery does):
//   - append: a crash mid-write leaves a torn tail in the last segment;
//     recovery truncates the last segment after its last intact record.
//   - rollover: fsync old segment → create new → fsync dir. A crash
//     leaves at worst an empty newest segment; empty segments are removed.
//   - ack persistence: ledger.tmp → fsync → rename → fsync dir, and only
//     then delete the segments wholly behind the ack position. A crash
//     between leaves acked segments behind; recovery deletes them. If the
//     ledger cannot be written (disk full) the acked segments are deleted
//     anyway, to free space: a ledger whose ack segment is gone makes
//     recovery start at the oldest segment left, which holds nothing acked.
//   - a missing or garbled ledger is rebuilt by scanning segments: reading
//     restarts at the oldest segment (duplicates, never loss).
//   - a fragment with a bad CRC is skipped by its length; one whose
//     header is impossible (type, or a length crossing its block) loses
//     the rest of its block. The fragments left of a record whose start
//     was skipped are skipped one by one, and reading resynchronises at
//     the next FIRST or FULL fragment, so damage costs only the records
//     it touches. The events they held (a gap in the event numbering) are
//     counted in discarded_events_total{reason="corrupt"} and logged with
//     the skipped bytes and the damaged segment (or the one missing).
//     Reading always moves forward, so recovery never loops and open never
//     refuses to start (only an unusable directory is an error).
//   - events lost from the end of the last run (the ledger saw them
//     fsynced; no intact record holds them) are counted once at recovery
//     and are not part of the unacknowledged count.
//
// Full: when the segments on disk would exceed max_size (or a write fails
// with ENOSPC or another I/O error), `block` waits for the sink to free
// space (backpressure, nothing lost) and `drop_newest` drops the batch,
// counts it (reason="full"), logs it (rate-limited) and finalizes it
// Rejected.
//
// Thread-safety: Push from any threads, Next from one thread, Close and
// Abort from any thread. Finalizers handed to the sink may outlive the
// DiskBuffer (their acks are then ignored).

#include <chrono>
#include <memory>
#include <string>

#include "agent/buffer.h"
#include "agent/env.h"

namespace tributary {

struct DiskBufferOptions {
  std::string dir;                  // data_dir/buffer/<sink_id>
  std::string name;                 // for log lines (the sink id)
  uint64_t max_size = 256 << 20;    // bytes of segments on disk
  bool drop_when_full = false;
  std::chrono::milliseconds flush_interval{500};  // 0 = fsync each batch before Push returns
  uint64_t segment_size = 0;        // 0 = max_size / 8, within [256 KiB, 64 MiB]
  Env* env = nullptr;               // nullptr = Env::Default()
};

class DiskBuffer final : public Buffer {
 public:
  // Opens (recovering) or creates the buffer directory. Fails only if the
  // directory cannot be used (not writable, locked by another process).
  static tributary::Result<std::unique_ptr<DiskBuffer>> Open(const DiskBufferOptions& options, BufferMetrics metrics);
  ~DiskBuffer() override;

  bool Push(Batch batch, WhileBlocked* while_blocked = nullptr) override;
  Result Next(Batch* out, std::chrono::milliseconds timeout) override;
  void Close() override;
  void CloseKeeping() override;
  void Abort() override;
  // Writes the ledger, closes the segment being written and unlocks the
  // directory; acks that arrive later are ignored, so their records are
  // delivered again by the next buffer opened on the directory.
  void Release() override;

  // For tests and diagnostics.
  struct Stats {
    uint64_t events = 0;          // written and not yet acknowledged
    uint64_t bytes = 0;           // segment bytes on disk
    uint64_t segments = 0;
    uint64_t corrupt_events = 0;  // counted as discarded (corrupt) so far
    uint64_t corrupt_bytes = 0;   // skipped or truncated so far
    uint64_t full_events = 0;     // dropped because full
  };
  Stats stats() const;

  class Impl;

 private:
  explicit DiskBuffer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace tributary
