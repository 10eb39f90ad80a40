#pragma once
// File identity for the file source.
//
//   checksum          a 64-bit hash of the first `lines` lines after
//                     `ignored_header_bytes` (a file with fewer lines is
//                     "not ready" and waits; a first line longer than
//                     max_line_bytes counts as complete at that length).
//                     Survives renames and copies: a copy has the same
//                     identity as its original.
//   device_and_inode  the file's (st_dev, st_ino). Ready at once, but a
//                     copy is a new file and a reused inode looks old.
//
// Stateless; thread-safe.

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

#include "agent/status.h"

namespace tributary::file {

struct FingerprintOptions {
  bool checksum = true;  // false: device_and_inode
  uint64_t lines = 1;
  uint64_t ignored_header_bytes = 0;
  uint64_t max_line_bytes = 102400;
  std::string delimiter = "\n";
};

struct Identity {
  uint64_t fingerprint = 0;
  uint64_t head_bytes = 0;  // checksum: how many bytes (after the header) it covers
};

// The identity of the open file `fd` (whose fstat is `st`); nullopt when
// the checksum strategy needs more lines than the file has. IoError when
// it cannot be read.
Result<std::optional<Identity>> Fingerprint(int fd, const struct stat& st, const FingerprintOptions& options);

// Checksum only: whether the file still starts with the bytes `id` was
// computed from (false once truncated and rewritten). One pread.
Result<bool> SameHead(int fd, const Identity& id, const FingerprintOptions& options);

// What tells apart files that start with the same lines (a banner, a CSV
// header) but are not copies of each other:
//   position check  PositionCheck of the kPositionCheckBytes bytes (fewer
//                   near the start) just before a remembered offset: a
//                   file adopts another's offset only if it has the same
//                   bytes there.
//   lead            the first kLeadBytes bytes after the fingerprinted head.
constexpr size_t kPositionCheckBytes = 64;
constexpr size_t kLeadBytes = 128;

// Never 0 (0 means "not known").
uint64_t PositionCheck(const void* window, size_t n);
// PositionCheck of the bytes of `fd` before `pos`; nullopt if it cannot
// read them all (the file is shorter). 0 for pos 0 is never asked for.
std::optional<uint64_t> PositionCheckAt(int fd, uint64_t pos);
// Up to `n` bytes of `fd` from `offset` (fewer at its end; "" on error).
std::string ReadAt(int fd, uint64_t offset, size_t n);

// 64-bit FNV-1a, then a final mix: stable across runs and builds.
uint64_t Hash64(const void* data, size_t n, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace tributary::file
