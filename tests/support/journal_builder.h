#pragma once
// Real journal files for tests, written by systemd-journal-remote from the
// Journal Export Format (https://systemd.io/JOURNAL_EXPORT_FORMATS/):
//
//   entry  = *field "\n"
//   field  = NAME "=" text "\n"                         ; printable value
//          | NAME "\n" le64(length) bytes "\n"          ; binary-safe value
//
// Each Append() runs `systemd-journal-remote --output=FILE -` once; a second
// run on the same file appends to it. Entries get __REALTIME_TIMESTAMP,
// __MONOTONIC_TIMESTAMP and _BOOT_ID filled in when they do not set them
// (from the system and monotonic clocks, one microsecond apart, never
// going back).
// Not thread-safe.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tributary::testing {

struct JournalEntry {
  std::vector<std::pair<std::string, std::string>> fields;  // values may hold any bytes

  JournalEntry() = default;
  JournalEntry(std::initializer_list<std::pair<std::string, std::string>> f) : fields(f) {}
  JournalEntry& Add(std::string name, std::string value) {
    fields.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// Serializes entries in the export format (binary-safe encoding for
// values that are not single-line printable text).
std::string ToExportFormat(const std::vector<JournalEntry>& entries);

class JournalBuilder {
 public:
  // `file` must end in ".journal"; its directory must exist.
  explicit JournalBuilder(std::string file);

  // Appends the entries; returns "" on success, else the error.
  std::string Append(std::vector<JournalEntry> entries);
  // Appends `n` entries MESSAGE="<prefix><i>" (i counting from `first`)
  // with the given extra fields.
  std::string AppendMessages(const std::string& prefix, int first, int n,
                             const std::vector<std::pair<std::string, std::string>>& extra = {});

  const std::string& file() const { return file_; }
  static std::string BootId() { return "0123456789abcdef0123456789abcdef"; }

 private:
  std::string file_;
  uint64_t next_realtime_usec_ = 0;
  uint64_t next_monotonic_usec_ = 0;
};

// The path of systemd-journal-remote, or "" if it is not installed.
std::string JournalRemoteBinary();

}  // namespace tributary::testing
