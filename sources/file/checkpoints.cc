#include "sources/file/checkpoints.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>

#include "agent/event.h"
#include "agent/json.h"

namespace tributary::file {

uint64_t AckTracker::Add(Progress* p, uint64_t offset, uint64_t check, uint64_t events) {
  std::lock_guard lock(mu_);
  p->pending.push_back({offset, check, 0, events});
  return p->front_seq + p->pending.size() - 1;
}

bool AckTracker::Pop(Progress* p) {
  bool moved = false;
  while (!p->pending.empty() && p->pending.front().state == 1) {
    if (p->pending.front().offset > p->acked) {
      p->acked = p->pending.front().offset;
      p->acked_check = p->pending.front().check;
      moved = true;
    }
    p->pending.pop_front();
    ++p->front_seq;
  }
  if (moved) ++generation_;
  return moved;
}

void AckTracker::Resolve(Progress* p, uint64_t seq, BatchStatus status) {
  std::lock_guard lock(mu_);
  if (seq < p->front_seq) return;
  size_t i = static_cast<size_t>(seq - p->front_seq);
  if (i >= p->pending.size()) return;
  p->pending[i].state = status == BatchStatus::kFailed ? 2 : 1;
  if (!Pop(p)) return;
  ++deliveries_;
  if (on_advance_) on_advance_();
}

void AckTracker::Advance(Progress* p, uint64_t offset, uint64_t check) {
  std::lock_guard lock(mu_);
  if (p->pending.empty()) {
    if (offset > p->acked) {
      p->acked = offset;
      p->acked_check = check;
      ++generation_;
    }
    return;
  }
  p->pending.push_back({offset, check, 1, 0});
  Pop(p);
}

uint64_t AckTracker::Acked(const Progress* p) {
  std::lock_guard lock(mu_);
  return p->acked;
}

std::pair<uint64_t, uint64_t> AckTracker::AckedAt(const Progress* p) {
  std::lock_guard lock(mu_);
  return {p->acked, p->acked_check};
}

void AckTracker::Reset(Progress* p, uint64_t acked, uint64_t check) {
  std::lock_guard lock(mu_);
  p->front_seq += p->pending.size();
  p->pending.clear();
  p->acked = acked;
  p->acked_check = check;
  ++generation_;
}

bool AckTracker::HasPending(const Progress* p) {
  std::lock_guard lock(mu_);
  return !p->pending.empty();
}

uint64_t AckTracker::Undelivered(const Progress* p) {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (const auto& e : p->pending)
    if (e.state != 1) n += e.events;
  return n;
}

void AckTracker::set_on_advance(std::function<void()> f) {
  std::lock_guard lock(mu_);
  on_advance_ = std::move(f);
}

uint64_t AckTracker::deliveries() {
  std::lock_guard lock(mu_);
  return deliveries_;
}

uint64_t AckTracker::generation() {
  std::lock_guard lock(mu_);
  return generation_;
}

FinalizerRef MakeFinalizer(std::shared_ptr<AckTracker> tracker,
                           std::vector<std::pair<std::shared_ptr<Progress>, uint64_t>> entries) {
  return Finalizer::Create([tracker = std::move(tracker), entries = std::move(entries)](BatchStatus s) {
    for (const auto& [p, seq] : entries) tracker->Resolve(p.get(), seq, s);
  });
}

// ---- The file --------------------------------------------------------------

std::string FingerprintHex(uint64_t fp) {
  static const char* kHex = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, fp >>= 4) s[static_cast<size_t>(i)] = kHex[fp & 0xF];
  return s;
}

bool ParseFingerprintHex(std::string_view s, uint64_t* out) {
  if (s.size() != 16) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

namespace {

bool GetUint(const Fields& f, std::string_view key, uint64_t* out) {
  const Value* v = f.find(key);
  if (v == nullptr || !v->is_int() || v->as_int() < 0) return false;
  *out = static_cast<uint64_t>(v->as_int());
  return true;
}

}  // namespace

Result<CheckpointFile> LoadCheckpoints(const std::string& path) {
  CheckpointFile file;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return file;
    return Status::FromErrno("open " + path, errno);
  }
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Status::FromErrno("read " + path, e);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  JsonParser parser;
  Value root;
  Status s = parser.Parse(text, &root);
  if (!s.ok()) return Status::Corruption(path + ": " + s.message());
  if (!root.is_map()) return Status::Corruption(path + ": not a JSON object");
  const Fields& top = root.as_map();
  if (const Value* st = top.find("strategy"); st && st->is_string()) file.strategy = st->as_string();
  GetUint(top, "lines", &file.lines);
  GetUint(top, "ignored_header_bytes", &file.ignored_header_bytes);
  const Value* list = top.find("checkpoints");
  if (list == nullptr || !list->is_array()) return Status::Corruption(path + ": no `checkpoints` list");
  for (const Value& v : list->as_array()) {
    if (!v.is_map()) return Status::Corruption(path + ": a checkpoint is not an object");
    const Fields& f = v.as_map();
    CheckpointEntry e;
    const Value* fp = f.find("fingerprint");
    if (fp == nullptr || !fp->is_string() || !ParseFingerprintHex(fp->as_string(), &e.fingerprint) ||
        !GetUint(f, "offset", &e.offset))
      return Status::Corruption(path + ": a checkpoint lacks a valid fingerprint or offset");
    if (const Value* p = f.find("path"); p && p->is_string()) e.path = p->as_string();
    if (const Value* t = f.find("target"); t && t->is_string()) e.target = t->as_string();
    GetUint(f, "dev", &e.dev);
    GetUint(f, "ino", &e.ino);
    if (const Value* c = f.find("check"); c && c->is_string() && !ParseFingerprintHex(c->as_string(), &e.check))
      e.check = 0;
    if (const Value* l = f.find("lead"); l && l->is_string() && GetUint(f, "lead_bytes", &e.lead_bytes) &&
                                         !ParseFingerprintHex(l->as_string(), &e.lead_hash))
      e.lead_bytes = 0;
    file.entries.push_back(std::move(e));
  }
  return file;
}

Status SaveCheckpoints(const std::string& path, const CheckpointFile& file) {
  std::string out = "{\"version\":1,\"strategy\":";
  AppendJsonString(file.strategy, &out);
  if (file.lines != 0)
    out += ",\"lines\":" + std::to_string(file.lines) + ",\"ignored_header_bytes\":" + std::to_string(file.ignored_header_bytes);
  out += ",\"checkpoints\":[";
  for (size_t i = 0; i < file.entries.size(); ++i) {
    const auto& e = file.entries[i];
    if (i) out += ",";
    out += "\n{\"fingerprint\":\"" + FingerprintHex(e.fingerprint) + "\",\"offset\":" + std::to_string(e.offset) +
           ",\"path\":";
    AppendJsonString(e.path, &out);
    out += ",\"dev\":" + std::to_string(e.dev) + ",\"ino\":" + std::to_string(e.ino);
    if (!e.target.empty()) {
      out += ",\"target\":";
      AppendJsonString(e.target, &out);
    }
    if (e.check != 0) out += ",\"check\":\"" + FingerprintHex(e.check) + "\"";
    if (e.lead_bytes != 0)
      out += ",\"lead_bytes\":" + std::to_string(e.lead_bytes) + ",\"lead\":\"" + FingerprintHex(e.lead_hash) + "\"";
    out += "}";
  }
  out += "]}\n";
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("open " + tmp, errno);
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(fd, out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Status::FromErrno("write " + tmp, e);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return Status::FromErrno("fsync " + tmp, e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("rename " + tmp, errno);
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

std::chrono::milliseconds CheckpointInterval(size_t identities) {
  constexpr auto kStep = std::chrono::milliseconds(250);
  constexpr size_t kPerStep = 256;
  constexpr auto kMax = std::chrono::milliseconds(5000);
  return std::min<std::chrono::milliseconds>(kStep * static_cast<int64_t>(1 + identities / kPerStep), kMax);
}

}  // namespace tributary::file
