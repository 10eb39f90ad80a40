#pragma once
// Multiline aggregation: joins consecutive lines of one file into one
// message (stack traces, wrapped records), with Vector's four modes.
//
// A message begins with a line matching `start_pattern`; a line that does
// not (and arrives with nothing buffered) passes through alone. While a
// message is buffered, each line is tested against `condition_pattern`:
//   continue_through  matching lines are appended; the first that does not
//                     match ends the message and is handled anew
//   continue_past     matching lines are appended; the first that does not
//                     match is appended too and ends the message
//   halt_before       lines that do not match are appended; a matching
//                     line ends the message and is handled anew
//   halt_with         lines that do not match are appended; a matching
//                     line is appended and ends the message
// A buffered message is also emitted after `timeout` without a new line,
// and when the file ends for good (Flush). Lines are joined with "\n"; a
// message stops growing at max_bytes (the rest is dropped and counted).
//
// Offsets: each message carries the start offset of its first line and
// the end offset of its last; buffered_start() is where a checkpoint must
// stay while a message is buffered. One aggregator per file; not
// thread-safe. The compiled patterns (MultilineRules) are shared.

#include <re2/re2.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tributary::file {

enum class MultilineMode { kContinueThrough, kContinuePast, kHaltBefore, kHaltWith };
bool ParseMultilineMode(std::string_view s, MultilineMode* out);

struct MultilineRules {
  std::unique_ptr<RE2> start;
  std::unique_ptr<RE2> condition;
  MultilineMode mode = MultilineMode::kContinueThrough;
  std::chrono::milliseconds timeout{1000};
  size_t max_bytes = 102400;
};

class MultilineAggregator {
 public:
  using Clock = std::chrono::steady_clock;
  explicit MultilineAggregator(const MultilineRules* rules) : rules_(rules) {}

  // Feeds one line [start, end); calls emit(message, start, end) for each
  // message completed by it (zero, one or two).
  template <typename Emit>
  void Add(std::string_view line, uint64_t start, uint64_t end, Clock::time_point now, Emit&& emit) {
    if (!buffering_) {
      Begin(line, start, end, now, emit);
      return;
    }
    const bool matched = RE2::PartialMatch(line, *rules_->condition);
    switch (rules_->mode) {
      case MultilineMode::kContinueThrough:
        if (matched) return Append(line, end, now);
        Flush(emit);
        return Begin(line, start, end, now, emit);
      case MultilineMode::kContinuePast:
        Append(line, end, now);
        if (!matched) Flush(emit);
        return;
      case MultilineMode::kHaltBefore:
        if (!matched) return Append(line, end, now);
        Flush(emit);
        return Begin(line, start, end, now, emit);
      case MultilineMode::kHaltWith:
        Append(line, end, now);
        if (matched) Flush(emit);
        return;
    }
  }

  // Emits the buffered message if it has waited `timeout`.
  template <typename Emit>
  void Poll(Clock::time_point now, Emit&& emit) {
    if (buffering_ && now - last_ >= rules_->timeout) Flush(emit);
  }
  // When the buffered message times out (Clock::time_point::max() if none).
  Clock::time_point deadline() const { return buffering_ ? last_ + rules_->timeout : Clock::time_point::max(); }

  template <typename Emit>
  void Flush(Emit&& emit) {
    if (!buffering_) return;
    buffering_ = false;
    emit(std::string_view(buf_), start_, end_);
    buf_.clear();
    if (buf_.capacity() > 4 * rules_->max_bytes) buf_.shrink_to_fit();
  }
  // Forgets the buffered message (it will be read again).
  void Drop() {
    buffering_ = false;
    buf_.clear();
  }

  bool buffering() const { return buffering_; }
  uint64_t buffered_start() const { return start_; }
  uint64_t truncated() const { return truncated_; }

 private:
  template <typename Emit>
  void Begin(std::string_view line, uint64_t start, uint64_t end, Clock::time_point now, Emit& emit) {
    if (!RE2::PartialMatch(line, *rules_->start)) {
      emit(line, start, end);
      return;
    }
    buffering_ = true;
    cut_ = false;
    buf_.assign(line.substr(0, rules_->max_bytes));
    start_ = start;
    end_ = end;
    last_ = now;
  }
  void Append(std::string_view line, uint64_t end, Clock::time_point now) {
    end_ = end;
    last_ = now;
    if (buf_.size() + 1 + line.size() > rules_->max_bytes) {
      if (!cut_) ++truncated_;
      cut_ = true;
      return;
    }
    buf_.push_back('\n');
    buf_.append(line);
  }

  const MultilineRules* rules_;
  bool buffering_ = false;
  bool cut_ = false;
  std::string buf_;
  uint64_t start_ = 0, end_ = 0;
  Clock::time_point last_{};
  uint64_t truncated_ = 0;
};

}  // namespace tributary::file
