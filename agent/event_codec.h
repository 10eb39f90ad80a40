#pragma once
// A compact binary encoding of events and batches, used by the disk buffer.
//
// It round-trips every Value kind exactly: int64 as zigzag varints, doubles
// as their IEEE-754 bits, timestamps as signed nanoseconds since the epoch,
// strings as raw bytes (any bytes, not only UTF-8), nested arrays and maps
// in order. Grammar (all integers little-endian; varint = LEB128):
//
//   batch  := varint(count) event{count}
//   event  := fields
//   fields := varint(n) (string value){n}           ; key, value pairs in order
//   string := varint(len) byte{len}
//   value  := 0x00                                  ; null
//           | 0x01 | 0x02                           ; false | true
//           | 0x03 varint(zigzag(int64))            ; int
//           | 0x04 byte{8}                          ; double, bit pattern
//           | 0x05 string                           ; string
//           | 0x06 varint(zigzag(ns since epoch))   ; timestamp
//           | 0x07 varint(n) value{n}               ; array
//           | 0x08 fields                           ; map
//
// Decoding checks every length against the input and nests at most
// kMaxDepth levels, so garbage input yields an error, never a crash.
// Stateless and thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "agent/event.h"
#include "agent/status.h"

namespace tributary {

inline constexpr int kEventCodecMaxDepth = 128;

// Appends the encoding of `events` to *out.
void EncodeEvents(const std::vector<Event>& events, std::string* out);
// Appends one event's encoding (a `fields` production).
void EncodeEvent(const Event& event, std::string* out);

// Decodes a whole `batch` production; the input must be consumed exactly.
Status DecodeEvents(std::string_view in, std::vector<Event>* out);

// Varint helpers shared with the disk buffer's record headers.
void PutVarint64(std::string* out, uint64_t v);
// Reads a varint from *in and advances it; false if truncated or too long.
bool GetVarint64(std::string_view* in, uint64_t* v);
void PutFixed64(std::string* out, uint64_t v);
void PutFixed32(std::string* out, uint32_t v);
uint64_t DecodeFixed64(const char* p);
uint32_t DecodeFixed32(const char* p);

}  // namespace tributary
