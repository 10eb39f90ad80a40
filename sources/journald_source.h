#pragma once
// `journald` source: reads the systemd journal natively through libsystemd's
// sd-journal (no `journalctl` child process), follows new entries, and
// checkpoints the journal cursor of acknowledged entries in data_dir.
//
// Reading: one sd_journal handle, owned by the source thread. Entries are
// read in batches of up to `batch_size`; when the journal is caught up the
// thread waits on sd_journal_get_fd() with a short poll timeout (so a stop
// request is seen promptly) and calls sd_journal_process(). If
// sd_journal_next() fails (a file rotated or vacuumed under us, a corrupt
// region), the partly read batch is dropped unsent, the journal is reopened
// and reading resumes after the cursor of the last batch sent: nothing is
// skipped and nothing is sent twice. Repeated failures back off (50 ms up
// to 10 s), and the batch after a failure stops before the entry where it
// failed, so a persistent error at one entry still lets everything before
// it through. Entries excluded by exclude_units/exclude_matches still move the
// cursor (an all-excluded batch is acknowledged at once).
//
// Start: with a checkpoint, reading resumes after its cursor, whatever boot
// the entries after it belong to. Without one it starts at the end
// (since_now), at the first entry of the running boot (current_boot_only),
// or at the beginning. The boot filter only finds that first entry; it is
// not kept as a match, so a reopen or a restart reads everything after the
// cursor.
//
// Checkpoints: every batch carries a Finalizer. JournalCursorTracker keeps
// the batches in the order they were sent; acknowledgements arrive on sink
// threads in any order, and the committable cursor is the one of the highest
// batch such that it and every batch before it were delivered or rejected.
// The source thread writes that cursor to data_dir/journald/<id>/cursor
// (tmp, fsync, rename, fsync dir) at most once per `checkpoint_interval_ms`
// and once more in Finish(). The position a start found (since_now, the
// boot's start) is checkpointed too, before any entry is read. On start it seeks to the saved cursor and skips
// the entry itself if the seek landed on it (sd_journal_test_cursor).
//
// Event fields: `message` <- MESSAGE, `timestamp` <- _SOURCE_REALTIME_TIMESTAMP
// if the entry has a valid one, else __REALTIME_TIMESTAMP,
// `host` <- _HOSTNAME, `source_type` = "journald", every other data field
// under its journal name (a field repeated in one entry becomes an array).
// Values that are not printable UTF-8 (invalid UTF-8, or control bytes other
// than tab and newline) are base64-encoded (RFC 4648, with padding) and
// their names listed in the array field `binary_fields`.

#include <sys/types.h>
#include <systemd/sd-journal.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/component.h"
#include "agent/log.h"
#include "config/registry.h"
#include "config/schema.h"

namespace tributary {

// Orders acknowledgements of batches sent in sequence and tells which
// cursor may be committed. Thread-safe: Add() on the source thread, Ack()
// from any sink thread.
class JournalCursorTracker {
 public:
  // Registers the next batch in send order; `cursor` is the journal
  // position after its last entry. Returns its sequence number.
  uint64_t Add(std::string cursor);
  // Records a batch's fate. Delivered and Rejected let the commit point
  // pass it; Failed holds the commit point before it for good.
  void Ack(uint64_t seq, BatchStatus status);
  // The cursor of the highest batch that, with every batch before it, was
  // delivered or rejected; "" while there is none.
  std::string committed() const;
  // Sets the commit point to where reading started (before any batch), so
  // that position is checkpointed even if nothing is read.
  void Start(std::string cursor);
  // Batches sent and not yet passed by the commit point.
  size_t pending() const;

 private:
  struct Entry {
    uint64_t seq;
    std::string cursor;
    enum class State : uint8_t { kPending, kDone, kFailed } state = State::kPending;
  };
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // front = oldest not yet committed
  uint64_t next_seq_ = 0;
  std::string committed_;      // last cursor the commit point passed
};

// True if `s` is valid UTF-8 without control characters other than tab and
// newline (C0, DEL and C1 controls make it binary), as journalctl decides.
bool IsPrintableJournalValue(std::string_view s);
// RFC 4648 base64 with padding, appended to *out.
void AppendBase64(std::string_view data, std::string* out);

class JournaldSource final : public Source {
 public:
  struct Config {
    std::optional<std::string> journal_directory;
    std::vector<std::string> include_units;
    std::vector<std::string> exclude_units;
    std::map<std::string, std::vector<std::string>> include_matches;
    std::map<std::string, std::vector<std::string>> exclude_matches;
    // Unset: true for the system journal, false with journal_directory.
    std::optional<bool> current_boot_only;
    bool since_now = false;
    bool stop_at_end = false;
    uint64_t batch_size = 1000;
    config::Millis checkpoint_interval_ms{1000};
    static const config::Schema<Config>& schema();
  };
  // The cursor checkpoint: data_dir/journald/<id>/.
  static constexpr std::string_view kStateDir = "journald";
  static constexpr std::string_view kSummary =
      "Reads the systemd journal through sd-journal, with cursor checkpoints.";
  static Result<std::unique_ptr<Source>> Build(const Config& config, BuildContext& ctx);
  static void CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out);

  ~JournaldSource() override;
  Status Run(SourceContext& ctx) override;
  void Finish() override;
  bool ReadsUndeliveredAgain() const override { return true; }

  // "nginx" -> "nginx.service"; names with a unit type suffix are kept.
  static std::string NormalizeUnitName(std::string_view name);

  // Tests replace sd_journal_next to inject read errors. Call before Run().
  using NextFunction = int (*)(sd_journal*);
  void SetNextFunctionForTesting(NextFunction f) { next_ = f; }

 private:
  JournaldSource(const Config& config, BuildContext& ctx);

  Status Open();                                  // opens j_, adds matches
  // Adds the unit and field matches, and with `boot` the running boot's.
  Status AddMatches(bool boot);
  Status SeekStart();                             // checkpoint, since_now, boot or head
  // Positions before the first entry of the running boot (or at the end
  // of the journal if it has none yet).
  Status SeekBootStart();
  // Positions after the journal's last entry (whatever the matches), so
  // next() returns only newer ones.
  Status SeekTail();
  bool current_boot_only() const { return config_.current_boot_only.value_or(!config_.journal_directory); }
  Status SeekAfter(const std::string& cursor);
  // After SeekAfter landed past a checkpointed entry that is gone: warns
  // and counts when the journal's oldest entry is newer than it (files
  // vacuumed while the agent was behind or stopped).
  void ReportVacuumedCheckpoint(const std::string& cursor);
  // A journal file of journal_directory that sd-journal does not read
  // (its directory was replaced under it), or "".
  std::string FileNotRead() const;    // positions so next() is past `cursor`
  void Close();
  Status Reopen(const std::string& cursor);
  // Reads one entry into *event; false if it is excluded. Adds its data
  // size to *bytes unless it is excluded.
  bool ReadEntry(Event* event, size_t* bytes);
  bool Excluded(const Event& event) const;
  void WaitForChanges(std::chrono::milliseconds max_wait);
  // Opens each journal file sd-journal would read that was not checked
  // yet, on its own: a file that does not open (corrupt, truncated, empty,
  // unsupported, unreadable) is skipped by sd-journal without a word, so
  // it is logged and counted here, once. A failing file written in the
  // last seconds may be one being created: it is checked again later
  // (`final`: now is the last chance, report it anyway). Runs at each
  // open, when sd-journal reports files added or removed, and every 10 s.
  void CheckJournalFiles(bool final);
  // The journal files sd-journal opens (journal_directory's, or this
  // machine's in /var/log/journal and /run/log/journal).
  std::vector<std::string> ListJournalFiles() const;
  // An error naming the open files limit when sd-journal, opening
  // `journal_files`, would leave the agent none to spare.
  Status CheckDescriptors(size_t journal_files) const;
  void MaybeCheckpoint(bool force);
  Status WriteCheckpoint(const std::string& cursor);
  // The whole file into *out; kNotFound if there is none.
  static Status ReadFileText(const std::string& path, std::string* out);

  Config config_;
  std::string id_;
  std::string checkpoint_dir_;
  std::string checkpoint_path_;
  std::vector<std::string> include_units_;  // normalized
  std::vector<std::string> exclude_units_;  // normalized
  bool exclude_slices_ = false;             // a .slice among them: match _SYSTEMD_SLICE too

  sd_journal* j_ = nullptr;
  NextFunction next_ = sd_journal_next;
  int fd_ = -1;
  bool have_current_ = false;  // the current entry is unread: use it before next()
  uint64_t sigbus_seen_ = 0;   // JournalSigbusCount() when the batch being read began
  // journal_directory's device and inode when it was opened: sd-journal
  // watches that directory, and one put in its place is never seen.
  bool dir_known_ = false;
  dev_t dir_dev_ = 0;
  ino_t dir_ino_ = 0;
  std::string read_cursor_;    // position after the last batch sent (or skipped)
  std::string written_cursor_;  // last cursor written to the checkpoint file
  std::vector<std::string> binary_names_;  // scratch for ReadEntry
  size_t field_count_hint_ = 24;            // fields of the last entry read
  std::shared_ptr<JournalCursorTracker> tracker_;
  std::chrono::steady_clock::time_point last_checkpoint_{};
  std::mutex checkpoint_mu_;  // Finish() vs. the source thread

  std::set<std::string> files_ok_;        // journal files that opened on their own
  std::set<std::string> files_reported_;  // ... that did not, already logged and counted
  bool files_pending_ = false;            // a fresh file failed: check again
  std::chrono::steady_clock::time_point last_files_check_{};
  RateLimiter file_log_limiter_;

  Counter* read_errors_;
  Counter* vacuumed_;
  Counter* field_errors_;
  Counter* checkpoint_errors_;
  Counter* checkpoints_;
  RateLimiter log_limiter_;
};

}  // namespace tributary
