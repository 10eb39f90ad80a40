#include "agent/log.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "agent/event.h"
#include "agent/json.h"

namespace tributary {

namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kTrace: return "TRACE";
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
    case LogLevel::kOff: return "OFF";
  }
  return "?";
}

}  // namespace

void NameThread(std::string_view name) {
  char buf[16];  // the kernel keeps 15 bytes and the terminating NUL
  const size_t n = std::min(name.size(), sizeof buf - 1);
  name.copy(buf, n);
  buf[n] = '\0';
  pthread_setname_np(pthread_self(), buf);
}

bool ParseLogLevel(std::string_view s, LogLevel* out) {
  if (s == "trace") *out = LogLevel::kTrace;
  else if (s == "debug") *out = LogLevel::kDebug;
  else if (s == "info") *out = LogLevel::kInfo;
  else if (s == "warn" || s == "warning") *out = LogLevel::kWarn;
  else if (s == "error") *out = LogLevel::kError;
  else if (s == "off") *out = LogLevel::kOff;
  else return false;
  return true;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
void SetLogJson(bool json) { g_json.store(json); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

void Log(LogLevel level, std::string_view component, std::string_view message) {
  if (!LogEnabled(level)) return;
  std::string line;
  line.reserve(message.size() + 80);
  if (g_json.load(std::memory_order_relaxed)) {
    line += "{\"timestamp\":\"";
    AppendRfc3339(Now(), &line);
    line += "\",\"level\":\"";
    line += LevelName(level);
    line += "\"";
    if (!component.empty()) {
      line += ",\"component_id\":";
      AppendJsonString(component, &line);
    }
    line += ",\"message\":";
    AppendJsonString(message, &line);
    line += "}\n";
  } else {
    AppendRfc3339(Now(), &line);
    line += ' ';
    line += LevelName(level);
    line += ' ';
    if (!component.empty()) {
      line += '[';
      AppendLogText(component, &line);
      line += "] ";
    }
    while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
    AppendLogText(message, &line);
    line += '\n';
  }
  // One write() per line keeps lines whole across threads.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

void AppendLogText(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the bytes not yet appended, to copy verbatim
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (size_t n = Utf8SequenceLength(s, i); n != 0) {
        i += n;
        continue;
      }
    }
    out->append(s.data() + run, i - run);
    switch (c) {
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xF]};
        out->append(esc, 4);
      }
    }
    run = ++i;
  }
  out->append(s.data() + run, s.size() - run);
}

bool RateLimiter::Allow(uint64_t* suppressed) {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= interval_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ < burst_) {
    ++in_window_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }
  ++suppressed_;
  return false;
}

std::optional<HealthLog::Line> HealthLog::Change(bool healthy, std::string_view reason) {
  if (healthy) {
    if (!unhealthy_logged_) return std::nullopt;
    unhealthy_logged_ = false;
    return Line{LogLevel::kInfo, "sink is healthy again"};
  }
  uint64_t suppressed = 0;
  if (!limiter_.Allow(&suppressed)) return std::nullopt;
  unhealthy_logged_ = true;
  std::string text = "sink is unhealthy: " + std::string(reason);
  if (suppressed) text += " (" + std::to_string(suppressed) + " unhealthy spells since the last one logged)";
  return Line{LogLevel::kWarn, std::move(text)};
}

void LogLimited(RateLimiter& limiter, LogLevel level, std::string_view component,
                std::string_view message) {
  if (!LogEnabled(level)) return;
  uint64_t suppressed = 0;
  if (!limiter.Allow(&suppressed)) return;
  if (suppressed == 0) {
    Log(level, component, message);
  } else {
    Log(level, component,
        std::string(message) + " (" + std::to_string(suppressed) + " similar messages suppressed)");
  }
}

}  // namespace tributary
