// LineSplitter: every way a stream can be cut into chunks must give the
// same lines and offsets.

#include "sources/line_splitter.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace tributary {
namespace {

struct Line {
  std::string text;
  uint64_t start;
  uint64_t end;
  bool operator==(const Line&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Line& l) {
  return os << "{\"" << l.text << "\", " << l.start << ", " << l.end << "}";
}

struct SplitResult {
  std::vector<Line> lines;
  uint64_t truncated = 0, discarded = 0;
  uint64_t line_end = 0;
};

SplitResult Split(const std::string& data, const std::vector<size_t>& cuts, const std::string& delim, size_t max,
          bool discard, bool take_partial = false) {
  LineSplitter s(delim, max, discard);
  SplitResult r;
  auto emit = [&](std::string_view line, uint64_t end) {
    r.lines.push_back({std::string(line), s.line_start(), end});
    EXPECT_EQ(s.line_end_offset(), end);
  };
  size_t pos = 0;
  for (size_t c : cuts) {
    s.Feed(std::string_view(data).substr(pos, c - pos), emit);
    pos = c;
  }
  s.Feed(std::string_view(data).substr(pos), emit);
  r.line_end = s.line_end_offset();
  if (take_partial) s.TakePartial(emit);
  r.truncated = s.truncated();
  r.discarded = s.discarded();
  return r;
}

SplitResult Whole(const std::string& data, const std::string& delim, size_t max, bool discard, bool take = false) {
  return Split(data, {}, delim, max, discard, take);
}

// A long line that arrives in parts is held until its end; then its buffer
// goes, and a short partial line after it does not keep the long one's size.
TEST(LineSplitterTest, TheBufferOfALongPartialLineIsFreedOnceTheLineIsComplete) {
  LineSplitter s("\n", 1 << 20, false);
  std::vector<std::string> lines;
  auto emit = [&](std::string_view line, uint64_t) { lines.emplace_back(line); };
  const std::string half(45000, 'x');
  s.Feed(half, emit);
  EXPECT_GE(s.held_capacity(), half.size());
  s.Feed(half + "\nshort", emit);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), 90000u);
  EXPECT_LE(s.held_capacity(), LineSplitter::kKeptCapacity) << "the long line's buffer is kept";
  s.Feed(" one\n", emit);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "short one");
}

TEST(LineSplitterTest, SplitsLinesWithOffsets) {
  SplitResult r = Whole("ab\ncd\n\nef", "\n", 100, false);
  ASSERT_EQ(r.lines.size(), 3u);
  EXPECT_EQ(r.lines[0], (Line{"ab", 0, 3}));
  EXPECT_EQ(r.lines[1], (Line{"cd", 3, 6}));
  EXPECT_EQ(r.lines[2], (Line{"", 6, 7}));
  EXPECT_EQ(r.line_end, 7u);  // "ef" waits for its newline
}

TEST(LineSplitterTest, PartialLineWaitsThenTakePartialEmitsIt) {
  SplitResult r = Whole("ab\nef", "\n", 100, false, true);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[1], (Line{"ef", 3, 5}));
}

TEST(LineSplitterTest, StripsCrBeforeLf) {
  SplitResult r = Whole("ab\r\ncd\r\n\r\nx\ry\n", "\n", 100, false);
  ASSERT_EQ(r.lines.size(), 4u);
  EXPECT_EQ(r.lines[0].text, "ab");
  EXPECT_EQ(r.lines[1].text, "cd");
  EXPECT_EQ(r.lines[2].text, "");
  EXPECT_EQ(r.lines[3].text, "x\ry");  // a lone CR inside a line stays
  EXPECT_EQ(r.lines[3].end, 14u);
}

TEST(LineSplitterTest, CrlfSplitAcrossChunks) {
  // "ab\r" | "\ncd\r" | "\n"
  SplitResult r = Split("ab\r\ncd\r\n", {3, 7}, "\n", 100, false);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0], (Line{"ab", 0, 4}));
  EXPECT_EQ(r.lines[1], (Line{"cd", 4, 8}));
}

TEST(LineSplitterTest, LineOfExactlyMaxWithCrlfIsNotTruncated) {
  SplitResult r = Whole("abcde\r\n", "\n", 5, true);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0].text, "abcde");
  EXPECT_EQ(r.discarded, 0u);
  // Same when the line arrives in pieces (held path).
  r = Split("abcde\r\n", {2, 5, 6}, "\n", 5, true);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0].text, "abcde");
  EXPECT_EQ(r.discarded, 0u);
}

TEST(LineSplitterTest, TruncatesOversizeLines) {
  SplitResult r = Whole("0123456789\nab\n", "\n", 4, false);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0], (Line{"0123", 0, 11}));
  EXPECT_EQ(r.lines[1], (Line{"ab", 11, 14}));
  EXPECT_EQ(r.truncated, 1u);
  EXPECT_EQ(r.discarded, 0u);
}

TEST(LineSplitterTest, DiscardsOversizeLinesButKeepsOffsets) {
  SplitResult r = Split("0123456789\nab\n", {3, 7}, "\n", 4, true);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0], (Line{"ab", 11, 14}));
  EXPECT_EQ(r.discarded, 1u);
  EXPECT_EQ(r.line_end, 14u);
}

TEST(LineSplitterTest, HugeLineHoldsBoundedMemory) {
  LineSplitter s("\n", 1000, false);
  std::string chunk(1 << 20, 'x');
  std::vector<std::string> out;
  auto emit = [&](std::string_view l, uint64_t) { out.emplace_back(l); };
  for (int i = 0; i < 10; ++i) s.Feed(chunk, emit);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(s.partial_bytes(), 10u << 20);
  s.Feed("\nok\n", emit);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].size(), 1000u);
  EXPECT_EQ(out[1], "ok");
  EXPECT_EQ(s.truncated(), 1u);
  EXPECT_EQ(s.offset(), (10u << 20) + 4);
}

TEST(LineSplitterTest, MultiByteDelimiter) {
  SplitResult r = Whole("a||b||||c", "||", 100, false, true);
  ASSERT_EQ(r.lines.size(), 4u);
  EXPECT_EQ(r.lines[0], (Line{"a", 0, 3}));
  EXPECT_EQ(r.lines[1], (Line{"b", 3, 6}));
  EXPECT_EQ(r.lines[2], (Line{"", 6, 8}));
  EXPECT_EQ(r.lines[3], (Line{"c", 8, 9}));
}

TEST(LineSplitterTest, MultiByteDelimiterStraddlingChunks) {
  // "ab|" | "|cd|" | "|"
  SplitResult r = Split("ab||cd||", {3, 7}, "||", 100, false);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0], (Line{"ab", 0, 4}));
  EXPECT_EQ(r.lines[1], (Line{"cd", 4, 8}));
}

TEST(LineSplitterTest, ConsumedDelimiterBytesDoNotMatchAgain) {
  // "x||" then "|y||": the third '|' starts the next line, it is not a delimiter.
  SplitResult r = Split("x|||y||", {3}, "||", 100, false);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0], (Line{"x", 0, 3}));
  EXPECT_EQ(r.lines[1], (Line{"|y", 3, 7}));
}

TEST(LineSplitterTest, ThreeByteDelimiterAcrossThreeChunks) {
  SplitResult r = Split("xa" "b" "cyabc", {2, 3}, "abc", 100, false);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0], (Line{"x", 0, 4}));
  EXPECT_EQ(r.lines[1], (Line{"y", 4, 8}));
}

TEST(LineSplitterTest, OversizeWithStraddlingDelimiterDiscardsOnlyTooLongLines) {
  // Exactly max bytes, then a straddling delimiter: kept whole.
  SplitResult r = Split("abcde|" "|z||", {6}, "||", 5, true);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[0].text, "abcde");
  EXPECT_EQ(r.lines[1].text, "z");
  EXPECT_EQ(r.discarded, 0u);
}

TEST(LineSplitterTest, DropPartialAndReset) {
  LineSplitter s("\n", 100, false);
  std::vector<std::string> out;
  auto emit = [&](std::string_view l, uint64_t) { out.emplace_back(l); };
  s.Feed("ab\ncd", emit);
  EXPECT_EQ(s.line_end_offset(), 3u);
  EXPECT_TRUE(s.has_partial());
  s.DropPartial();
  EXPECT_FALSE(s.TakePartial(emit));
  s.Reset(3);
  s.Feed("cdef\n", emit);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], "cdef");
  EXPECT_EQ(s.line_end_offset(), 8u);
}

// Any chunking of random data gives the same result as one Feed.
TEST(LineSplitterTest, RandomChunkingIsInvariant) {
  std::mt19937 rng(12345);
  const std::vector<std::string> delims = {"\n", "||", "\r\n", "abc"};
  for (int iter = 0; iter < 400; ++iter) {
    const std::string& delim = delims[iter % delims.size()];
    std::string data;
    size_t len = rng() % 300;
    const char alphabet[] = "ab|c\r\nx";
    for (size_t i = 0; i < len; ++i) data.push_back(alphabet[rng() % 7]);
    size_t max = 1 + rng() % 20;
    bool discard = rng() % 2;
    SplitResult whole = Whole(data, delim, max, discard, true);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < data.size(); ++i)
      if (rng() % 4 == 0) cuts.push_back(i);
    SplitResult pieces = Split(data, cuts, delim, max, discard, true);
    ASSERT_EQ(whole.lines, pieces.lines) << "delim=" << delim << " data=" << data;
    ASSERT_EQ(whole.truncated, pieces.truncated);
    ASSERT_EQ(whole.discarded, pieces.discarded);
    // Lines cover the stream without gaps.
    uint64_t expect_start = 0;
    for (const auto& l : whole.lines) {
      if (l.start != expect_start) {
        // Discarded lines leave gaps; they must be oversize.
        ASSERT_GT(l.start, expect_start);
      }
      expect_start = l.end;
    }
  }
}

// Reference model for "\n": split by hand and compare.
TEST(LineSplitterTest, MatchesReferenceModel) {
  std::mt19937 rng(777);
  for (int iter = 0; iter < 300; ++iter) {
    std::string data;
    size_t len = rng() % 200;
    for (size_t i = 0; i < len; ++i) data.push_back("ab\r\n"[rng() % 4]);
    size_t max = 1 + rng() % 10;
    bool discard = rng() % 2;
    std::vector<std::string> expect;
    uint64_t over = 0;
    size_t pos = 0;
    while (true) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string line = data.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      pos = nl + 1;
      if (line.size() > max) {
        ++over;
        if (discard) continue;
        line.resize(max);
      }
      expect.push_back(line);
    }
    std::vector<size_t> cuts;
    for (size_t i = 1; i < data.size(); ++i)
      if (rng() % 3 == 0) cuts.push_back(i);
    SplitResult r = Split(data, cuts, "\n", max, discard);
    std::vector<std::string> got;
    for (auto& l : r.lines) got.push_back(l.text);
    ASSERT_EQ(got, expect) << data;
    ASSERT_EQ(r.truncated + r.discarded, over);
    ASSERT_EQ(r.line_end, pos);
  }
}

}  // namespace
}  // namespace tributary
