#pragma once
// `file` sink: appends events, one per line, to files named by a template
// (strftime on the event timestamp and `{{ field }}`). Files are opened on
// demand (parents created), kept open while in use, closed after
// `idle_timeout_secs` without writes; past `max_open_files` (a template
// with many values) the least recently written is closed first. Each batch is written with write(2)
// before it is acknowledged, so a crash of the agent loses nothing the
// kernel has; `fsync: true` also syncs before acknowledging.
//
// Events whose path cannot be rendered (missing field) are discarded,
// counted and logged.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/component.h"
#include "agent/log.h"
#include "agent/template.h"
#include "config/registry.h"
#include "config/schema.h"
#include "sinks/encoding.h"

namespace tributary {

class FileSink final : public SimpleSink {
 public:
  struct Config {
    std::string path;
    EncodingConfig encoding;
    config::Seconds idle_timeout_secs{30};
    size_t max_open_files = 256;
    bool fsync = false;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Appends events to files named by a template, one per line.";
  static Result<std::unique_ptr<Sink>> Build(const Config& config, BuildContext& ctx);
  static void CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out);
  ~FileSink() override;

  Status Write(const Batch& batch) override;
  size_t DiscardedByLastWrite() const override { return discarded_; }
  Status Flush() override;

 private:
  FileSink(const Config& config, Template path, BuildContext& ctx);
  struct OpenFile {
    int fd = -1;
    std::chrono::steady_clock::time_point last_write;
    dev_t dev = 0;  // what the path led to when opened
    ino_t ino = 0;
  };
  // The descriptor for `path`, opened again if the path now leads to
  // another file; *size is the file's size.
  Result<int> Open(const std::string& path, off_t* size);
  Result<int> OpenWithin(const std::string& path);  // OpenForAppend, closing files to stay under the limits
  void CloseLeastRecent();
  // Cuts the files this batch has grown back to their size before it.
  Status Undo(Status failure);
  void CloseIdle();

  Template path_;
  Encoder encoder_;
  std::chrono::milliseconds idle_timeout_;
  size_t max_open_;
  bool fsync_;
  ComponentMetrics* metrics_;
  Counter* render_errors_;
  std::map<std::string, OpenFile> files_;
  std::map<std::string, std::string> pending_;  // path -> encoded bytes of this batch
  struct Written {
    std::string path;
    off_t size;  // before this batch
    dev_t dev;
    ino_t ino;
  };
  std::vector<Written> written_;  // the files this batch has been written to so far
  size_t discarded_ = 0;          // events of this batch whose path cannot be rendered
  RateLimiter limiter_;
};

}  // namespace tributary
