#include "sources/file/fingerprint.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace tributary::file {

uint64_t Hash64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

Result<std::optional<Identity>> Fingerprint(int fd, const struct stat& st, const FingerprintOptions& o) {
  if (!o.checksum) {
    uint64_t v[2] = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    return std::optional<Identity>(Identity{Hash64(v, sizeof v, 0x9e3779b97f4a7c15ULL), 0});
  }
  const uint64_t start = o.ignored_header_bytes;
  const size_t d = o.delimiter.size();
  // Enough for `lines` lines of max_line_bytes each.
  const uint64_t limit = o.lines * (o.max_line_bytes + d);
  std::string buf;
  uint64_t found = 0;
  size_t search_from = 0;
  while (buf.size() < limit) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(limit - buf.size(), buf.empty() ? 4096 : buf.size()));
    size_t old = buf.size();
    buf.resize(old + want);
    ssize_t n;
    do {
      n = ::pread(fd, buf.data() + old, want, static_cast<off_t>(start + old));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Status::FromErrno("read", errno);
    buf.resize(old + static_cast<size_t>(n));
    // Count complete lines in what we have.
    while (found < o.lines) {
      const void* p = ::memmem(buf.data() + search_from, buf.size() - search_from, o.delimiter.data(), d);
      if (p == nullptr) {
        search_from = buf.size() >= d ? buf.size() - d + 1 : 0;
        break;
      }
      search_from = static_cast<size_t>(static_cast<const char*>(p) - buf.data()) + d;
      ++found;
    }
    if (found == o.lines) {
      return std::optional<Identity>(Identity{Hash64(buf.data(), search_from), search_from});
    }
    if (n == 0) return std::optional<Identity>();  // not enough lines yet
  }
  // `limit` bytes without `lines` delimiters: the head is full enough.
  return std::optional<Identity>(Identity{Hash64(buf.data(), buf.size()), buf.size()});
}

Result<bool> SameHead(int fd, const Identity& id, const FingerprintOptions& o) {
  if (!o.checksum) return true;
  std::string buf(id.head_bytes, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(o.ignored_header_bytes + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read", errno);
    if (n == 0) return false;
    got += static_cast<size_t>(n);
  }
  return Hash64(buf.data(), buf.size()) == id.fingerprint;
}

uint64_t PositionCheck(const void* window, size_t n) {
  const uint64_t h = Hash64(window, n, 0x84222325cbf29ce4ULL);
  return h == 0 ? 1 : h;
}

std::string ReadAt(int fd, uint64_t offset, size_t n) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

std::optional<uint64_t> PositionCheckAt(int fd, uint64_t pos) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(pos, kPositionCheckBytes));
  std::string w = ReadAt(fd, pos - n, n);
  if (w.size() != n) return std::nullopt;
  return PositionCheck(w.data(), n);
}

}  // namespace tributary::file
