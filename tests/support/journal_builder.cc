#include "tests/support/journal_builder.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "tests/support/test_util.h"

namespace tributary::testing {

namespace {

bool NeedsBinaryForm(const std::string& v) {
  for (unsigned char c : v)
    if (c == '\n' || c < 0x20 || c == 0x7f) return true;
  return false;
}

bool Has(const JournalEntry& e, const char* name) {
  for (const auto& [k, v] : e.fields)
    if (k == name) return true;
  return false;
}

}  // namespace

std::string ToExportFormat(const std::vector<JournalEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    for (const auto& [name, value] : e.fields) {
      out += name;
      if (NeedsBinaryForm(value)) {
        out += '\n';
        uint64_t n = value.size();
        for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
        out += value;
      } else {
        out += '=';
        out += value;
      }
      out += '\n';
    }
    out += '\n';
  }
  return out;
}

std::string JournalRemoteBinary() {
  for (const char* p : {"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

namespace {

template <typename Clock>
uint64_t NowUsec() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count());
}

}  // namespace

JournalBuilder::JournalBuilder(std::string file) : file_(std::move(file)) {}

std::string JournalBuilder::Append(std::vector<JournalEntry> entries) {
  std::string binary = JournalRemoteBinary();
  if (binary.empty()) return "systemd-journal-remote is not installed";
  // Timestamps follow the clocks (and never go back), as journald's do:
  // sd-journal orders entries of one boot across files by the monotonic
  // clock, so two builders in one directory must not overlap.
  next_realtime_usec_ = std::max(next_realtime_usec_, NowUsec<std::chrono::system_clock>());
  next_monotonic_usec_ = std::max(next_monotonic_usec_, NowUsec<std::chrono::steady_clock>());
  for (auto& e : entries) {
    // The export format puts the address fields first.
    std::vector<std::pair<std::string, std::string>> head;
    if (!Has(e, "__REALTIME_TIMESTAMP"))
      head.emplace_back("__REALTIME_TIMESTAMP", std::to_string(next_realtime_usec_++));
    if (!Has(e, "__MONOTONIC_TIMESTAMP"))
      head.emplace_back("__MONOTONIC_TIMESTAMP", std::to_string(next_monotonic_usec_++));
    if (!Has(e, "_BOOT_ID")) head.emplace_back("_BOOT_ID", BootId());
    e.fields.insert(e.fields.begin(), head.begin(), head.end());
  }
  Process::Options o;
  o.argv = {binary, "--output=" + file_, "-"};
  o.pipe_stdin = true;
  Process p(o);
  p.WriteStdin(ToExportFormat(entries));
  p.CloseStdin();
  auto rc = p.Wait(std::chrono::seconds(120));
  if (!rc) return "systemd-journal-remote did not finish: " + p.Stderr();
  if (*rc != 0) return "systemd-journal-remote exited with " + std::to_string(*rc) + ": " + p.Stderr();
  return "";
}

std::string JournalBuilder::AppendMessages(const std::string& prefix, int first, int n,
                                           const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<JournalEntry> entries;
  entries.reserve(static_cast<size_t>(n));
  for (int i = first; i < first + n; ++i) {
    JournalEntry e;
    e.Add("MESSAGE", prefix + std::to_string(i));
    for (const auto& [k, v] : extra) e.Add(k, v);
    entries.push_back(std::move(e));
  }
  return Append(std::move(entries));
}

}  // namespace tributary::testing
