#pragma once
// JSON encoding of values and events, and decoding into values.
//
// Encoding writes straight into a caller's buffer (no temporaries). Strings
// are escaped per RFC 8259; invalid UTF-8 bytes become U+FFFD so that the
// output is always valid JSON. Timestamps encode as RFC 3339 strings.
// Decoding uses simdjson; a JsonParser reuses its buffers and is not
// thread-safe (one per thread).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/event.h"
#include "agent/status.h"

namespace tributary {

// A cheap filter over field names: one of 64 bits picked by a name's length
// and first and last bytes. A key whose bit is not in a set's filter is not
// in the set (json_parser merging, regex_parser's group names).
inline uint64_t KeyBit(std::string_view k) {
  if (k.empty()) return 1;
  const unsigned h = static_cast<unsigned>(k.size()) * 31u + static_cast<unsigned char>(k.front()) * 7u +
                     static_cast<unsigned char>(k.back());
  return uint64_t{1} << (h & 63u);
}

void AppendJsonString(std::string_view s, std::string* out);
void AppendJson(const Value& v, std::string* out);
void AppendJson(const Fields& f, std::string* out);
inline void AppendJson(const Event& e, std::string* out) { AppendJson(e.fields(), out); }

// True if s is valid UTF-8.
bool IsValidUtf8(std::string_view s);
// Length of the valid UTF-8 sequence starting at s[i] (1 for ASCII), or 0
// if the bytes there are not one.
size_t Utf8SequenceLength(std::string_view s, size_t i);

class JsonParser {
 public:
  // max_depth: the most objects/arrays nested in one another, empty ones
  // included ({"a":{}} is 2).
  explicit JsonParser(size_t max_depth = 64);
  ~JsonParser();
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  // Bytes simdjson may read past the end of a document. A caller whose
  // text is followed by this many readable bytes (e.g. a std::string with
  // spare capacity) passes padded=true and saves a copy.
  static constexpr size_t kPadding = 64;

  // Parses one JSON document into *out. Numbers: an integer that fits in
  // int64 is an integer, any other number a double (also an integer
  // beyond 64 bits, which simdjson's DOM refuses: such a document is read
  // again with its On Demand API). Errors: kInvalidArgument with
  // simdjson's reason; kResourceExhausted if nested deeper than max_depth.
  Status Parse(std::string_view text, Value* out, bool padded = false);
  // Parses a JSON object and sets its members into *into (overwriting
  // keys that exist). Errors as Parse, and kInvalidArgument if the
  // document is not an object; *into is untouched on any error. Given a
  // drop_index, first removes that field of *into (a member of its name is
  // then appended like any new key); `text` may be that very field's
  // string: it is not read once *into starts to change.
  Status ParseObjectInto(std::string_view text, Fields* into, bool padded = false,
                         size_t drop_index = Fields::npos);

 private:
  Status ParseBigNumbers(std::string_view text, Value* out);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tributary
