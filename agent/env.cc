#include "agent/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace tributary {

namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override { ::close(fd_); }

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("write " + path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  Status Sync() override {
    if (::fdatasync(fd_) != 0) return Status::FromErrno("fdatasync " + path_, errno);
    return Status::Ok();
  }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Status::FromErrno("ftruncate " + path_, errno);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Status Read(uint64_t offset, size_t n, std::string* out) const override {
    out->resize(n);
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd_, out->data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        out->clear();
        return Status::FromErrno("pread " + path_, errno);
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    out->resize(got);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }

 private:
  int fd_;
};

// Takes an exclusive lock on `fd`, open on `name`, without waiting; the
// lock holds the descriptor (closed on failure).
Result<std::unique_ptr<FileLock>> Flock(int fd, const std::string& name, std::string_view held_message) {
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return Status::Unavailable(name + " " + std::string(held_message));
    return Status::FromErrno("flock " + name, err);
  }
  return std::unique_ptr<FileLock>(new PosixFileLock(fd));
}

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, bool truncate) override {
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }
  Status ReadFile(const std::string& path, std::string* out) override {
    auto f = NewRandomAccessFile(path);
    if (!f.ok()) return f.status();
    auto size = GetFileSize(path);
    if (!size.ok()) return size.status();
    return (*f)->Read(0, static_cast<size_t>(*size), out);
  }
  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override {
    names->clear();
    DIR* d = ::opendir(dir.c_str());
    if (!d) return Status::FromErrno("opendir " + dir, errno);
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names->push_back(std::move(n));
    }
    ::closedir(d);
    return Status::Ok();
  }
  Result<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
    return static_cast<uint64_t>(st.st_size);
  }
  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno("unlink " + path, errno);
    return Status::Ok();
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Status::FromErrno("rename " + from, errno);
    return Status::Ok();
  }
  Status TruncateFile(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) return Status::FromErrno("truncate " + path, errno);
    return Status::Ok();
  }
  Status CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IoError("create " + dir + ": " + ec.message());
    return Status::Ok();
  }
  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + dir, errno);
    int r = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (r != 0) return Status::FromErrno("fsync " + dir, err);
    return Status::Ok();
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    return Flock(fd, path, "is locked by another tributary process");
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

Result<std::unique_ptr<FileLock>> LockDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + dir, errno);
  return Flock(fd, dir, "is in use by another tributary process");
}

Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  {
    auto f = env->NewWritableFile(tmp, /*truncate=*/true);
    if (!f.ok()) return f.status();
    Status s = (*f)->Append(data);
    if (s.ok()) s = (*f)->Sync();
    if (!s.ok()) {
      (void)env->RemoveFile(tmp);
      return s;
    }
  }
  Status s = env->RenameFile(tmp, path);
  if (!s.ok()) return s;
  return env->SyncDir(std::filesystem::path(path).parent_path().string());
}

Status CreateWritableDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::FromErrno("create " + dir, ec.value());
  const std::string probe = dir + "/.tributary-write-probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create files in " + dir, errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::Ok();
}

Result<int> OpenForAppend(const std::string& path, mode_t mode) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return Status::FromErrno("create " + parent.string(), ec.value());
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  return fd;
}

Status ProbeAppendable(const std::string& path) {
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  // The directories OpenForAppend will create, innermost first: removed
  // again (each only if still empty), as the file is.
  std::vector<std::filesystem::path> missing_dirs;
  std::error_code ec;
  for (auto p = std::filesystem::path(path).parent_path(); !p.empty() && !std::filesystem::exists(p, ec);
       p = p.parent_path())
    missing_dirs.push_back(p);
  auto fd = OpenForAppend(path);
  if (fd.ok()) {
    ::close(*fd);
    if (!existed) ::unlink(path.c_str());
  }
  for (const auto& dir : missing_dirs)
    if (!std::filesystem::remove(dir, ec)) break;
  return fd.ok() ? Status::Ok() : fd.status();
}

std::string StateDir(std::string_view data_dir, std::string_view type_dir, std::string_view id) {
  std::string dir;
  dir.reserve(data_dir.size() + type_dir.size() + id.size() + 2);
  dir.append(data_dir).append("/").append(type_dir).append("/").append(id);
  return dir;
}

Status PrepareStateDir(const std::string& dir, std::string_view what) {
  Status s = CreateWritableDir(dir);
  if (s.ok() || s.code() == StatusCode::kResourceExhausted) return Status::Ok();
  return Status::InvalidArgument(s.message() + "; " + std::string(what) +
                                 " are kept there: make data_dir writable by the user tributary runs as, "
                                 "or set `data_dir` to a directory that is");
}

}  // namespace tributary
