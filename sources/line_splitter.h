#pragma once
// Splits a byte stream into lines.
//
// Feed() takes the next chunk of the stream and calls emit(line, end) for
// each complete line, where `end` is the stream offset just past the line's
// delimiter (what a checkpoint may record once the line is delivered). A
// partial last line is held until its delimiter arrives, or until
// TakePartial() (end of input, rotation).
//
// Lines longer than max_line_bytes are truncated to max_line_bytes (the rest
// up to the delimiter skipped) or discarded whole; both are counted. A "\r"
// before a "\n" delimiter is removed (CRLF). The fast path (no partial line
// held) finds delimiters with memchr/find straight in the caller's chunk and
// copies nothing. Not thread-safe.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tributary {

class LineSplitter {
 public:
  LineSplitter(std::string delimiter, size_t max_line_bytes, bool discard_oversize)
      : delim_(std::move(delimiter)), max_(max_line_bytes), discard_(discard_oversize) {}

  template <typename Emit>
  void Feed(std::string_view data, Emit&& emit) {
    while (!data.empty()) {
      size_t line_len, consumed;
      if (!FindDelimiter(data, &line_len, &consumed)) {
        Hold(data);
        offset_ += data.size();
        RememberTail(data);
        return;
      }
      std::string_view piece = data.substr(0, line_len);
      offset_ += consumed;
      RememberTail(data.substr(0, consumed));
      data.remove_prefix(consumed);
      if (skipping_) {
        skipping_ = false;
        pending_ = 0;
        if (!discard_) EmitLine(held_, emit);
        held_.clear();
        continue;
      }
      if (held_.empty()) {
        EmitLine(piece, emit);
        continue;
      }
      Hold(piece);
      if (skipping_) {
        skipping_ = false;
        pending_ = 0;
        if (!discard_) EmitLine(held_, emit);
        held_.clear();
        continue;
      }
      EmitLine(held_, emit);
      held_.clear();
    }
  }

  // Emits the partial line held, if any, as a complete line ending at the
  // current offset (end of input, rotation). False if nothing was held.
  template <typename Emit>
  bool TakePartial(Emit&& emit) {
    if (held_.empty() && !skipping_) return false;
    bool emit_it = !skipping_ || !discard_;
    skipping_ = false;
    pending_ = 0;
    if (emit_it && !held_.empty()) EmitLine(held_, emit);
    held_.clear();
    return emit_it;
  }

  // Offset just past the last complete line: everything before it has been
  // emitted, so a checkpoint may point here.
  uint64_t line_end_offset() const { return offset_ - pending_; }
  // Offset of everything fed so far.
  uint64_t offset() const { return offset_; }
  // Starts over at `offset` (after a seek), dropping any partial line.
  void Reset(uint64_t offset) {
    offset_ = offset;
    held_.clear();
    tail_.clear();
    skipping_ = false;
    pending_ = 0;
  }
  bool has_partial() const { return pending_ > 0; }
  uint64_t truncated() const { return truncated_; }
  uint64_t discarded() const { return discarded_; }

 private:
  bool FindDelimiter(std::string_view data, size_t* line_len, size_t* consumed) {
    const size_t d = delim_.size();
    if (d == 1) {
      const void* p = std::memchr(data.data(), delim_[0], data.size());
      if (p == nullptr) return false;
      *line_len = static_cast<size_t>(static_cast<const char*>(p) - data.data());
      *consumed = *line_len + 1;
      return true;
    }
    // A multi-byte delimiter may straddle the previous chunk and this one.
    for (size_t k = std::min(tail_.size(), d - 1); k >= 1; --k) {
      if (tail_.compare(tail_.size() - k, k, delim_, 0, k) == 0 && data.size() >= d - k &&
          data.compare(0, d - k, delim_, k, d - k) == 0) {
        if (!skipping_ && held_.size() >= k) held_.resize(held_.size() - k);
        *line_len = 0;
        *consumed = d - k;
        return true;
      }
    }
    size_t pos = data.find(delim_);
    if (pos == std::string_view::npos) return false;
    *line_len = pos;
    *consumed = pos + d;
    return true;
  }

  void RememberTail(std::string_view data) {
    if (delim_.size() < 2) return;
    const size_t keep = delim_.size() - 1;
    if (data.size() >= keep) {
      tail_.assign(data.substr(data.size() - keep));
    } else {
      tail_.append(data);
      if (tail_.size() > keep) tail_.erase(0, tail_.size() - keep);
    }
  }

  // Holds part of an unfinished line, switching to skipping once it is
  // longer than max_line_bytes.
  void Hold(std::string_view data) {
    if (skipping_) {
      pending_ += data.size();
      return;
    }
    if (held_.size() + data.size() > max_) {
      skipping_ = true;
      if (discard_) {
        ++discarded_;
        held_.clear();
      } else {
        ++truncated_;
        held_.append(data.substr(0, max_ - held_.size()));
      }
      pending_ += data.size();
      return;
    }
    held_.append(data);
    pending_ += data.size();
  }

  template <typename Emit>
  void EmitLine(std::string_view line, Emit& emit) {
    pending_ = 0;
    if (line.size() > max_) {
      if (discard_) {
        ++discarded_;
        return;
      }
      ++truncated_;
      line = line.substr(0, max_);
    }
    if (delim_.size() == 1 && delim_[0] == '\n' && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    emit(line, offset_);
  }

  std::string delim_;
  size_t max_;
  bool discard_;
  std::string held_;  // the unfinished line (capped at max_ when truncating)
  std::string tail_;  // last delimiter-size-1 bytes seen (multi-byte delimiters)
  bool skipping_ = false;
  uint64_t pending_ = 0;  // bytes fed since the last emitted line's end
  uint64_t offset_ = 0;
  uint64_t truncated_ = 0;
  uint64_t discarded_ = 0;
};

}  // namespace tributary
