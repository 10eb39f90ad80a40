#pragma once

// Byte-level helpers for the Elasticsearch test server: zlib (gzip/deflate)
// bodies, base64 for the Authorization header, and URL decoding.
// All functions are pure and thread-safe.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace es_test {

enum class InflateResult { kOk, kCorrupt, kTooLarge };

// Decodes a `Content-Encoding: gzip` (gzip=true, concatenated members
// allowed) or `deflate` (zlib stream) body into `out`. Stops with kTooLarge
// once the output would exceed `max_size`. `out` gets `padding` spare bytes of
// capacity after its contents (for simdjson).
InflateResult inflate_body(std::string_view in, bool gzip, size_t max_size, size_t padding, std::string* out,
                           std::string* error);

// gzip-compresses `in` (one member, default level).
std::string gzip_compress(std::string_view in);
// zlib format: HTTP's `deflate` content coding.
std::string zlib_compress(std::string_view in);

// Standard base64 (RFC 4648, with padding). decode returns false on bad input.
std::string base64_encode(std::string_view in);
bool base64_decode(std::string_view in, std::string* out);

// Percent-decoding; `plus_is_space` for query strings. Returns false on a
// malformed escape.
bool url_decode(std::string_view in, bool plus_is_space, std::string* out);

// Splits a request target into its decoded path and decoded query
// parameters (in order). Returns false on a malformed escape.
bool split_target(std::string_view target, std::string* path, std::vector<std::pair<std::string, std::string>>* params);

}  // namespace es_test
