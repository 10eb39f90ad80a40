#pragma once
// The agent's own logs: leveled, text or JSON lines on stderr.
//
// Repeating messages go through a RateLimiter held at the call site (a
// static or a member): at most `burst` lines per interval, then one line
// saying how many were suppressed. Thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace tributary {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

bool ParseLogLevel(std::string_view s, LogLevel* out);
void SetLogLevel(LogLevel level);
void SetLogJson(bool json);
LogLevel GetLogLevel();
inline bool LogEnabled(LogLevel l) { return l >= GetLogLevel(); }

// Names the calling thread (what `top -H`, `ps -T` and /proc/PID/task show),
// cut to the kernel's 15 bytes: "src:" or "sink:" and a component id, "api",
// "checkpoints", "worker".
void NameThread(std::string_view name);

// Writes one line: `component` may be empty (agent-wide messages). In the
// text format the component and message are escaped (AppendLogText), so
// that one record is one line whatever it quotes; the JSON format escapes
// them as JSON strings.
void Log(LogLevel level, std::string_view component, std::string_view message);

// Appends `s` for a text log line: newline, carriage return and tab as
// \n, \r, \t, other control bytes and bytes that are not UTF-8 as \xNN;
// a message's trailing newlines are dropped. Everything else (backslashes
// too) as it is.
void AppendLogText(std::string_view s, std::string* out);

class RateLimiter {
 public:
  explicit RateLimiter(int burst = 5, std::chrono::seconds interval = std::chrono::seconds(10))
      : burst_(burst), interval_(interval) {}
  // True if this occurrence should be logged; *suppressed is set to how many
  // were dropped since the last logged one.
  bool Allow(uint64_t* suppressed);

 private:
  std::mutex mu_;
  int burst_;
  std::chrono::seconds interval_;
  std::chrono::steady_clock::time_point window_start_{};
  int in_window_ = 0;
  uint64_t suppressed_ = 0;
};

// A sink's health changes as log lines. A destination that flaps (say 5 %
// of requests answered 503) would give two lines per unhealthy spell, so
// spells are logged through a limiter (5 a minute), and a recovery only
// when the start of its spell was logged: the last line logged is always
// the state the sink is in.
class HealthLog {
 public:
  struct Line {
    LogLevel level;
    std::string text;
  };
  // The line for a change to `healthy` (call it on changes only); nullopt
  // if none is due.
  std::optional<Line> Change(bool healthy, std::string_view reason);

 private:
  RateLimiter limiter_{5, std::chrono::seconds(60)};
  bool unhealthy_logged_ = false;
};

// Logs through a limiter, appending "(N similar messages suppressed)".
void LogLimited(RateLimiter& limiter, LogLevel level, std::string_view component,
                std::string_view message);

}  // namespace tributary

#define TLOG_ERROR(component, msg) ::tributary::Log(::tributary::LogLevel::kError, component, msg)
#define TLOG_WARN(component, msg)                                                       \
  do {                                                                                  \
    if (::tributary::LogEnabled(::tributary::LogLevel::kWarn))                          \
      ::tributary::Log(::tributary::LogLevel::kWarn, component, msg);                   \
  } while (0)
#define TLOG_INFO(component, msg)                                                       \
  do {                                                                                  \
    if (::tributary::LogEnabled(::tributary::LogLevel::kInfo))                          \
      ::tributary::Log(::tributary::LogLevel::kInfo, component, msg);                   \
  } while (0)
#define TLOG_DEBUG(component, msg)                                                      \
  do {                                                                                  \
    if (::tributary::LogEnabled(::tributary::LogLevel::kDebug))                         \
      ::tributary::Log(::tributary::LogLevel::kDebug, component, msg);                  \
  } while (0)
