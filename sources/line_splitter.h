#pragma once
// Splits a byte stream into lines.
//
// Feed() takes the next chunk of the stream and calls emit(line, end) for
// each complete line, where `end` is the stream offset just past the line's
// delimiter (what a checkpoint may record once the line is delivered);
// line_start() is the offset of that line's first byte while emit runs. A
// partial last line is held until its delimiter arrives, or until
// TakePartial() (end of input, rotation) or DropPartial().
//
// The delimiter may be several bytes and may straddle two chunks. With the
// delimiter "\n", a "\r" just before it is removed (CRLF) before the length
// is checked. Lines longer than max_line_bytes are truncated to
// max_line_bytes (the rest up to the delimiter skipped) or discarded whole;
// both are counted. A held partial line never takes more than
// max_line_bytes + 1 bytes of memory, however long the line is.
//
// The fast path (no partial line held) finds delimiters with memchr (or
// memmem for a multi-byte delimiter) straight in the caller's chunk and
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
      : delim_(std::move(delimiter)),
        max_(max_line_bytes),
        discard_(discard_oversize),
        strip_cr_(delim_ == "\n") {
    if (delim_.empty()) delim_ = "\n";
  }

  template <typename Emit>
  void Feed(std::string_view data, Emit&& emit) {
    const size_t d = delim_.size();
    // A delimiter straddling the held partial line and this chunk.
    if (d > 1 && partial_len_ > 0 && !data.empty()) {
      for (size_t k = std::min<uint64_t>(tail_.size(), d - 1); k >= 1; --k) {
        if (tail_.compare(tail_.size() - k, k, delim_, 0, k) == 0 && data.size() >= d - k &&
            data.compare(0, d - k, delim_, k, d - k) == 0) {
          partial_len_ -= k;
          if (held_.size() > partial_len_) held_.resize(partial_len_);
          offset_ += d - k;
          data.remove_prefix(d - k);
          FinishPartial(emit);
          break;
        }
      }
    }
    while (!data.empty()) {
      size_t pos = Find(data);
      if (pos == std::string_view::npos) {
        Hold(data);
        return;
      }
      if (partial_len_ > 0 || !held_.empty()) {
        Hold(data.substr(0, pos));
        offset_ += d;
        data.remove_prefix(pos + d);
        FinishPartial(emit);
        continue;
      }
      line_start_ = offset_;
      offset_ += pos + d;
      EmitLine(data.substr(0, pos), pos, emit);
      data.remove_prefix(pos + d);
    }
  }

  // Emits the partial line held, if any, as a complete line ending at the
  // current offset (end of input, rotation, deletion). False if nothing was
  // held (or the held line was discarded as oversize).
  template <typename Emit>
  bool TakePartial(Emit&& emit) {
    if (partial_len_ == 0) return false;
    uint64_t before = emitted_;
    FinishPartial(emit);
    return emitted_ != before;
  }

  // Forgets the partial line held (it will be read again from
  // line_end_offset() if the caller seeks there). The buffer of a long one
  // is freed: a splitter lives as long as its file is known, and 5,000
  // files that each once had a 90 KB line written in two parts kept 500 MB.
  void DropPartial() {
    if (held_.capacity() > kKeptCapacity) std::string().swap(held_);
    else held_.clear();
    tail_.clear();
    partial_len_ = 0;
  }

  // Offset just past the last complete line: everything before it has been
  // emitted, so a checkpoint may point here.
  uint64_t line_end_offset() const { return offset_ - partial_len_; }
  // Offset of everything fed so far.
  uint64_t offset() const { return offset_; }
  // The first byte of the line being emitted (valid inside emit).
  uint64_t line_start() const { return line_start_; }
  // Starts over at `offset` (after a seek), dropping any partial line.
  void Reset(uint64_t offset) {
    DropPartial();
    offset_ = offset;
  }
  bool has_partial() const { return partial_len_ > 0; }
  // Bytes allocated for partial lines (for tests).
  size_t held_capacity() const { return held_.capacity(); }
  // A partial line's buffer up to this size is kept for the next one.
  static constexpr size_t kKeptCapacity = 4096;
  uint64_t partial_bytes() const { return partial_len_; }
  uint64_t truncated() const { return truncated_; }
  uint64_t discarded() const { return discarded_; }
  const std::string& delimiter() const { return delim_; }

 private:
  size_t Find(std::string_view data) const {
    if (delim_.size() == 1) {
      const void* p = std::memchr(data.data(), delim_[0], data.size());
      return p == nullptr ? std::string_view::npos
                          : static_cast<size_t>(static_cast<const char*>(p) - data.data());
    }
    const void* p = ::memmem(data.data(), data.size(), delim_.data(), delim_.size());
    return p == nullptr ? std::string_view::npos
                        : static_cast<size_t>(static_cast<const char*>(p) - data.data());
  }

  // Appends to the partial line: keeps at most max_+1 bytes (enough to
  // decide about a trailing '\r'), its last byte, and for multi-byte
  // delimiters its last delimiter-1 bytes.
  void Hold(std::string_view data) {
    if (data.empty()) return;
    if (partial_len_ == 0) line_start_ = offset_;
    offset_ += data.size();
    partial_len_ += data.size();
    const size_t cap = max_ + 1;
    if (held_.size() < cap) held_.append(data.substr(0, cap - held_.size()));
    last_ = data.back();
    if (delim_.size() > 1) {
      const size_t keep = delim_.size() - 1;
      if (data.size() >= keep) {
        tail_.assign(data.substr(data.size() - keep));
      } else {
        tail_.append(data);
        if (tail_.size() > keep) tail_.erase(0, tail_.size() - keep);
      }
    }
  }

  template <typename Emit>
  void FinishPartial(Emit& emit) {
    uint64_t len = partial_len_;
    if (len > 0 && len > held_.size()) {
      // Longer than kept: certainly oversize unless only the '\r' was cut.
      if (strip_cr_ && last_ == '\r') --len;
    } else if (strip_cr_ && len > 0 && held_.back() == '\r') {
      --len;
    }
    std::string_view line(held_.data(), std::min<uint64_t>(held_.size(), len));
    partial_len_ = 0;  // line_end_offset() is past this line while it is emitted
    Deliver(line, len, emit);
    DropPartial();
  }

  template <typename Emit>
  void EmitLine(std::string_view line, uint64_t len, Emit& emit) {
    if (strip_cr_ && !line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
      --len;
    }
    Deliver(line, len, emit);
  }

  // `len` is the line's full length; `line` its kept bytes (a prefix).
  template <typename Emit>
  void Deliver(std::string_view line, uint64_t len, Emit& emit) {
    if (len > max_) {
      if (discard_) {
        ++discarded_;
        return;
      }
      ++truncated_;
      line = line.substr(0, max_);
    }
    ++emitted_;
    emit(line, offset_);
  }

  std::string delim_;
  size_t max_;
  bool discard_;
  bool strip_cr_;
  std::string held_;         // first max_+1 bytes of the partial line
  std::string tail_;         // last delimiter-1 bytes of the partial line
  char last_ = 0;            // last byte of the partial line
  uint64_t partial_len_ = 0; // full length of the partial line
  uint64_t offset_ = 0;
  uint64_t line_start_ = 0;
  uint64_t truncated_ = 0;
  uint64_t discarded_ = 0;
  uint64_t emitted_ = 0;
};

}  // namespace tributary
