#pragma once
// Env: the file-system operations the disk buffer needs, behind an
// interface so tests can wrap it (EnvWrapper) and inject short writes,
// ENOSPC, fsync failures and crashes between two steps.
//
// Env::Default() is the POSIX implementation; it is stateless and
// thread-safe. A WritableFile or RandomAccessFile is used by one thread at
// a time, except that Sync() may run concurrently with Append() (the disk
// buffer fsyncs outside its lock).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/status.h"

namespace tributary {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of `data` or returns an error; on error a prefix may have
  // been written (a short write): the caller truncates it away.
  virtual Status Append(std::string_view data) = 0;
  // fdatasync: what was appended is durable when this returns OK.
  virtual Status Sync() = 0;
  // Cuts the file to `size` bytes; later appends go to the new end.
  virtual Status Truncate(uint64_t size) = 0;
};

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset into *out (fewer at end of file).
  virtual Status Read(uint64_t offset, size_t n, std::string* out) const = 0;
};

// Held while a directory is in use; released on destruction (and by the
// kernel if the process dies).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;
  static Env* Default();

  // Opens for appending, creating the file if missing (or emptying it if
  // `truncate`).
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, bool truncate) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) = 0;
  virtual Status ReadFile(const std::string& path, std::string* out) = 0;
  // Names (not paths) of the entries of `dir`.
  virtual Status GetChildren(const std::string& dir, std::vector<std::string>* names) = 0;
  virtual Result<uint64_t> GetFileSize(const std::string& path) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status TruncateFile(const std::string& path, uint64_t size) = 0;
  virtual Status CreateDirs(const std::string& dir) = 0;
  // fsyncs a directory so that created, renamed and removed names are durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // An exclusive advisory lock (flock) on `path`, created if missing;
  // an error if another process holds it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// Forwards everything to another Env; tests override what they break.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p, bool t) override {
    return target_->NewWritableFile(p, t);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& p) override {
    return target_->NewRandomAccessFile(p);
  }
  Status ReadFile(const std::string& p, std::string* out) override { return target_->ReadFile(p, out); }
  Status GetChildren(const std::string& d, std::vector<std::string>* n) override {
    return target_->GetChildren(d, n);
  }
  Result<uint64_t> GetFileSize(const std::string& p) override { return target_->GetFileSize(p); }
  Status RemoveFile(const std::string& p) override { return target_->RemoveFile(p); }
  Status RenameFile(const std::string& f, const std::string& t) override { return target_->RenameFile(f, t); }
  Status TruncateFile(const std::string& p, uint64_t s) override { return target_->TruncateFile(p, s); }
  Status CreateDirs(const std::string& d) override { return target_->CreateDirs(d); }
  Status SyncDir(const std::string& d) override { return target_->SyncDir(d); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& p) override { return target_->LockFile(p); }

 private:
  Env* target_;
};

// An exclusive advisory lock (flock) on the directory `dir` itself, held
// until the returned object is destroyed: the agent's claim on data_dir.
// Needs no file in it, so a read-only data_dir can still be locked (and its
// components report that it is read-only). An error if another process (or
// another open of it in this one) holds it.
Result<std::unique_ptr<FileLock>> LockDir(const std::string& dir);

// Writes `data` to `path` so that a crash at any point leaves either the
// old or the new content: path.tmp → fsync → rename → fsync(dir).
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);

// Creates `dir` (and its parents) if need be and checks that files can be
// made in it, by creating and removing a probe file.
Status CreateWritableDir(const std::string& dir);
// Opens `path` for appending (created with `mode` if need be, and its
// directory too), as the file sink and the dead-letter file do.
Result<int> OpenForAppend(const std::string& path, mode_t mode = 0644);
// Checks that `path` can be appended to, by OpenForAppend (a file or
// directories the check created are removed again).
Status ProbeAppendable(const std::string& path);
// Where a component keeps its state under data_dir: data_dir/<type_dir>/<id>,
// `type_dir` being its type's state directory (a class's kStateDir,
// config::ComponentType::state_dir: "file_source", "journald"). The one
// place that spells the path: the component prepares it when built
// (PrepareStateDir), `tributary validate` checks it, the unused-checkpoints
// warning looks beside it.
std::string StateDir(std::string_view data_dir, std::string_view type_dir, std::string_view id);
// What a component that keeps `what` (its read positions, its buffered
// events) under data_dir asks when it is built: a read-only or foreign
// data_dir is an error that stops the agent at start and says how to fix
// it, instead of every checkpoint failing once it runs. A full disk or a
// lack of descriptors is not: the component retries those as it runs.
Status PrepareStateDir(const std::string& dir, std::string_view what);

}  // namespace tributary
