#include "agent/json.h"

#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tributary {

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { n = 2; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { n = 3; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { n = 4; min = 0x10000; }
  else return 0;
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

namespace {

// FirstSpecial below: the index of the first byte at or after i that
// cannot be copied verbatim (a control character, '"', '\\' or a
// non-ASCII byte), or s.size(). Sixteen bytes per step with SSE2 (every
// x86-64), else eight.
//
// Eight bytes per step (SWAR): a flag bit is set in each byte that is
// < 0x20, == '"', == '\\' or >= 0x80. Borrows can only set spurious flags
// above a real one, so the lowest flag is exact.
inline uint64_t SpecialBytes(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  return ((((w - kOnes * 0x20) | (quote - kOnes) | (backslash - kOnes)) & ~w) | w) & kHigh;
}

inline bool IsSpecial(uint8_t c) { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80; }

// Offset (0..7) of the lowest special byte in a word with special != 0.
inline size_t FirstFlagged(const char* p, uint64_t special) {
  if constexpr (std::endian::native == std::endian::little) return static_cast<size_t>(std::countr_zero(special) / 8);
  for (size_t k = 0;; ++k)  // big-endian: find it byte by byte
    if (IsSpecial(static_cast<uint8_t>(p[k]))) return k;
}

#if defined(__SSE2__)
// Bit k set when byte k of the 16 at p is special: one signed compare
// finds both the control bytes (< 0x20) and the non-ASCII ones (>= 0x80,
// negative as signed bytes), two more the quote and the backslash.
inline uint32_t SpecialMask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
  const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  const __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  return static_cast<uint32_t>(_mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(quote, backslash))));
}
#endif

[[gnu::always_inline]] inline size_t FirstSpecial(std::string_view s, size_t i) {
  const char* p = s.data();
  const size_t n = s.size();
  if (n - i < 8) {  // short (most keys)
    if (n - i >= 4) {  // two overlapping 4-byte loads cover it
      uint32_t lo, hi;
      std::memcpy(&lo, p + i, 4);
      std::memcpy(&hi, p + n - 4, 4);
      if (SpecialBytes(lo | (uint64_t{hi} << 32)) == 0) return n;
    }
    for (; i < n; ++i)  // 3 bytes or fewer, or one needs escaping: find it
      if (IsSpecial(static_cast<uint8_t>(p[i]))) return i;
    return n;
  }
#if defined(__SSE2__)
  if (n - i >= 16) {  // sixteen bytes per step
    for (; i + 16 <= n; i += 16) {
      if (const uint32_t special = SpecialMask16(p + i); special != 0) return i + static_cast<size_t>(std::countr_zero(special));
    }
    if (i < n) {  // the last 16 bytes, overlapping bytes already known to be plain
      i = n - 16;
      if (const uint32_t special = SpecialMask16(p + i); special != 0) return i + static_cast<size_t>(std::countr_zero(special));
    }
    return n;
  }
#endif
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (const uint64_t special = SpecialBytes(w); special != 0) return i + FirstFlagged(p + i, special);
  }
  if (i < n) {  // the last 8 bytes, overlapping bytes already known to be plain
    i = n - 8;
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (const uint64_t special = SpecialBytes(w); special != 0) return i + FirstFlagged(p + i, special);
  }
  return n;
}

}  // namespace

namespace {

// Writes JSON into a std::string through a raw cursor. The string's size is
// grown ahead of the cursor (a little at a time, so that the zero fill of
// resize() stays small) and cut back to what was written when the writer
// goes away: each piece is then a bounds check and a copy, not a
// std::string append with its own checks and length updates.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out), p_(out->data() + out->size()), end_(p_) {}
  ~Writer() { out_->resize(static_cast<size_t>(p_ - out_->data())); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // The cursor, with at least n bytes writable from it.
  char* Reserve(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) [[unlikely]] Grow(n);
    return p_;
  }
  void Advance(char* to) { p_ = to; }
  void Put(char c) {
    *Reserve(1) = c;
    ++p_;
  }
  void Put(const char* s, size_t n) {
    std::memcpy(Reserve(n), s, n);
    p_ += n;
  }

 private:
  [[gnu::noinline]] void Grow(size_t n) {
    const size_t used = static_cast<size_t>(p_ - out_->data());
    out_->resize(used + std::max<size_t>(n, 512));
    p_ = out_->data() + used;
    end_ = out_->data() + out_->size();
  }

  std::string* out_;
  char* p_;
  char* end_;
};

// From the first byte that needs escaping (i) on.
[[gnu::noinline]] void WriteStringFrom(Writer& w, std::string_view s, size_t i) {
  w.Put('"');
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n != 0) {
        i = FirstSpecial(s, i + n);
        continue;
      }
      w.Put(s.data() + run, i - run);
      w.Put("\xEF\xBF\xBD", 3);  // U+FFFD
      run = ++i;
      i = FirstSpecial(s, i);
      continue;
    }
    char* p = w.Reserve(i - run + 6);
    std::memcpy(p, s.data() + run, i - run);
    p += i - run;
    *p++ = '\\';
    switch (c) {
      case '"': *p++ = '"'; break;
      case '\\': *p++ = '\\'; break;
      case '\n': *p++ = 'n'; break;
      case '\r': *p++ = 'r'; break;
      case '\t': *p++ = 't'; break;
      case '\b': *p++ = 'b'; break;
      case '\f': *p++ = 'f'; break;
      default: {
        const char esc[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        std::memcpy(p, esc, 5);
        p += 5;
      }
    }
    w.Advance(p);
    run = ++i;
    i = FirstSpecial(s, i);
  }
  w.Put(s.data() + run, s.size() - run);
  w.Put('"');
}

void WriteString(Writer& w, std::string_view s) {
  const size_t first = FirstSpecial(s, 0);
  if (first != s.size()) return WriteStringFrom(w, s, first);
  // Nothing to escape (most keys and values): one copy.
  char* p = w.Reserve(s.size() + 2);
  p[0] = '"';
  std::memcpy(p + 1, s.data(), s.size());
  p[s.size() + 1] = '"';
  w.Advance(p + s.size() + 2);
}

void WriteValue(Writer& w, const Value& v);

void WriteFields(Writer& w, const Fields& f) {
  w.Put('{');
  for (size_t i = 0; i < f.size(); ++i) {
    if (i) w.Put(',');
    WriteString(w, f.key(i));
    w.Put(':');
    WriteValue(w, f.value(i));
  }
  w.Put('}');
}

void WriteValue(Writer& w, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull: w.Put("null", 4); return;
    case Value::Kind::kBool:
      if (v.as_bool()) w.Put("true", 4);
      else w.Put("false", 5);
      return;
    case Value::Kind::kInt: {
      char* p = w.Reserve(24);
      w.Advance(std::to_chars(p, p + 24, v.as_int()).ptr);
      return;
    }
    case Value::Kind::kDouble: {
      double d = v.as_double();
      if (!std::isfinite(d)) {
        w.Put("null", 4);
        return;
      }
      char* p = w.Reserve(40);
      char* end = std::to_chars(p, p + 38, d).ptr;
      // A whole number keeps its ".0", as Vector writes it: `123456789`
      // would be read back as an integer (Elasticsearch's dynamic mapping
      // makes the field a long, and truncates or rejects later fractions;
      // the next hop of agent -> Kafka -> aggregator parses an int).
      if (std::string_view(p, static_cast<size_t>(end - p)).find_first_of(".e") == std::string_view::npos) {
        *end++ = '.';
        *end++ = '0';
      }
      w.Advance(end);
      return;
    }
    case Value::Kind::kString: WriteString(w, v.as_string()); return;
    case Value::Kind::kTimestamp: {
      char* p = w.Reserve(kRfc3339Size + 2);
      *p++ = '"';
      p = WriteRfc3339(v.as_timestamp(), p);
      *p++ = '"';
      w.Advance(p);
      return;
    }
    case Value::Kind::kArray: {
      w.Put('[');
      bool first = true;
      for (const Value& e : v.as_array()) {
        if (!first) w.Put(',');
        first = false;
        WriteValue(w, e);
      }
      w.Put(']');
      return;
    }
    case Value::Kind::kMap: WriteFields(w, v.as_map()); return;
  }
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  Writer w(out);
  WriteString(w, s);
}

void AppendJson(const Fields& f, std::string* out) {
  Writer w(out);
  WriteFields(w, f);
}

void AppendJson(const Value& v, std::string* out) {
  Writer w(out);
  WriteValue(w, v);
}

// ---- Decoding --------------------------------------------------------------

struct JsonParser::Impl {
  simdjson::dom::parser parser;
  size_t max_depth;
  // Only for documents the DOM refused over a number (BigNumbers below).
  std::unique_ptr<simdjson::ondemand::parser> ondemand;
  std::string padded_copy;

  // Once simdjson has parsed a document, converting it cannot fail: the
  // syntax is checked and the depth bounded (see the constructor). The
  // conversion writes over what the event already holds, reusing string
  // buffers, arrays and nested maps of the same kind (Value::assign_reusing).

  // Sets the members of `obj` into *f: a key *f has is overwritten in
  // place, the others are appended.
  static void Merge(simdjson::dom::object obj, Fields* f) {
    uint64_t seen = 0;
    for (size_t i = 0; i < f->size(); ++i) seen |= KeyBit(f->key(i));
    f->reserve(f->size() + obj.size());
    for (auto field : obj) {
      const uint64_t bit = KeyBit(field.key);
      if ((seen & bit) != 0) {
        if (const size_t k = f->index_of(field.key); k != Fields::npos) {
          std::string_view sv;
          if (field.value.get_string().get(sv) == simdjson::SUCCESS) f->assign_at(k, sv);  // may trade (event.h)
          else Assign(field.value, &f->value(k));
          continue;
        }
      }
      seen |= bit;
      Assign(field.value, &f->append_slot(field.key));
    }
  }

  // *out becomes the value of `el`.
  static void Assign(simdjson::dom::element el, Value* out) {
    using simdjson::dom::element_type;
    switch (el.type()) {
      case element_type::STRING: out->assign_reusing(el.get_string().value_unsafe()); return;
      case element_type::INT64: out->assign_reusing(el.get_int64().value_unsafe()); return;
      case element_type::UINT64:  // beyond int64: kept as a double, as most JSON readers do
        out->assign_reusing(static_cast<double>(el.get_uint64().value_unsafe()));
        return;
      case element_type::DOUBLE: out->assign_reusing(el.get_double().value_unsafe()); return;
      case element_type::BOOL: out->assign_reusing(el.get_bool().value_unsafe()); return;
      case element_type::NULL_VALUE: *out = Value(); return;
      case element_type::OBJECT: {
        out->assign_reusing(Fields());  // an existing map is cleared, keeping its spares
        Merge(el.get_object().value_unsafe(), &out->as_map());
        return;
      }
      case element_type::ARRAY: {
        simdjson::dom::array arr = el.get_array().value_unsafe();
        if (!out->is_array()) *out = Value(Array());
        Array& a = out->as_array();
        a.resize(arr.size());
        size_t i = 0;
        for (auto child : arr) Assign(child, &a[i++]);
        return;
      }
    }
  }
};

static_assert(JsonParser::kPadding >= simdjson::SIMDJSON_PADDING);

// An integer beyond 64 bits (more than 20 digits, or above 2^64 - 1, or
// below -2^63) has no place on simdjson's DOM tape: the DOM refuses the
// whole document (NUMBER_ERROR). Vector, and most JSON readers, read such a
// number as a float. simdjson's On Demand API reads any number as a double
// (get_double), so a document the DOM refused for a number is read again
// with it, into a value of its own: nothing of the event changes unless the
// whole document reads. A number that is malformed (`01`, `1.`, `-`) fails
// here too. Off the hot path: only after the DOM refused a document.
namespace {

namespace od = simdjson::ondemand;

class BigNumbers {
 public:
  explicit BigNumbers(size_t max_depth) : max_depth_(max_depth) {}

  // The document `doc` into *out, all of it: trailing bytes are an error.
  simdjson::error_code Document(od::document& doc, Value* out) {
    od::json_type type;
    if (auto e = doc.type().get(type)) return e;
    simdjson::error_code e;
    if (type == od::json_type::object || type == od::json_type::array) {
      od::value v;
      if ((e = doc.get_value().get(v))) return e;
      e = Read(v, out, 1);
    } else {
      e = Scalar(doc, type, out);
    }
    if (e) return e;
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) return simdjson::TRAILING_CONTENT;
    return simdjson::SUCCESS;
  }

 private:
  simdjson::error_code Read(od::value& v, Value* out, size_t depth) {
    od::json_type type;
    if (auto e = v.type().get(type)) return e;
    switch (type) {
      case od::json_type::object: {
        if (depth > max_depth_) return simdjson::DEPTH_ERROR;
        od::object obj;
        if (auto e = v.get_object().get(obj)) return e;
        Fields f;
        for (auto member : obj) {
          od::field field;
          std::string_view key;
          if (auto e = std::move(member).get(field)) return e;
          if (auto e = field.unescaped_key().get(key)) return e;
          Value value;
          if (auto e = Read(field.value(), &value, depth + 1)) return e;
          f.set(key, std::move(value));  // a repeated key: the last one, as the DOM path does
        }
        *out = Value(std::move(f));
        return simdjson::SUCCESS;
      }
      case od::json_type::array: {
        if (depth > max_depth_) return simdjson::DEPTH_ERROR;
        od::array arr;
        if (auto e = v.get_array().get(arr)) return e;
        Array a;
        for (auto element : arr) {
          od::value child;
          if (auto e = std::move(element).get(child)) return e;
          if (auto e = Read(child, &a.emplace_back(), depth + 1)) return e;
        }
        *out = Value(std::move(a));
        return simdjson::SUCCESS;
      }
      default: return Scalar(v, type, out);
    }
  }

  // A scalar of a value or of a document that is one.
  template <typename V>
  static simdjson::error_code Scalar(V& v, od::json_type type, Value* out) {
    switch (type) {
      case od::json_type::number: {
        od::number_type nt;
        if (auto e = v.get_number_type().get(nt)) return e;
        // As the DOM path: an int64 as an integer, anything else (above
        // 2^63 - 1, or beyond 64 bits) as a double. A failed get_int64
        // does not move past the number: get_double reads it again.
        if (nt == od::number_type::signed_integer) {
          int64_t i;
          if (v.get_int64().get(i) == simdjson::SUCCESS) {
            *out = Value(i);
            return simdjson::SUCCESS;
          }
        }
        double d;
        if (auto e = v.get_double().get(d)) return e;
        *out = Value(d);
        return simdjson::SUCCESS;
      }
      case od::json_type::string: {
        std::string_view sv;
        if (auto e = v.get_string().get(sv)) return e;
        *out = Value(sv);
        return simdjson::SUCCESS;
      }
      case od::json_type::boolean: {
        bool b;
        if (auto e = v.get_bool().get(b)) return e;
        *out = Value(b);
        return simdjson::SUCCESS;
      }
      case od::json_type::null: {
        bool is_null;
        if (auto e = v.is_null().get(is_null)) return e;
        if (!is_null) return simdjson::N_ATOM_ERROR;
        *out = Value();
        return simdjson::SUCCESS;
      }
      default: return simdjson::TAPE_ERROR;
    }
  }

  size_t max_depth_;
};

}  // namespace

JsonParser::JsonParser(size_t max_depth) : impl_(std::make_unique<Impl>()) {
  impl_->max_depth = max_depth;
  // simdjson enforces the depth bound while parsing, before any value is
  // built: a document that is too deep never half-fills an event.
  auto err = impl_->parser.allocate(4096, max_depth + 1);  // simdjson counts the document itself as a level
  (void)err;  // a failed allocation shows again (and is reported) at the first parse
}

JsonParser::~JsonParser() = default;

namespace {

Status ParseError(simdjson::error_code err, size_t max_depth) {
  if (err == simdjson::DEPTH_ERROR)
    return Status::ResourceExhausted("JSON nesting deeper than " + std::to_string(max_depth));
  return Status::InvalidArgument(simdjson::error_message(err));
}

// simdjson's bound counts the non-empty objects and arrays only: it steps
// over `{}` and `[]` without a level, so {"a":{}} passed max_depth 1 while
// {"a":{"b":1}} did not. After a parse that held the non-empty ones to
// max_depth (only an empty one can be deeper), this counts every object
// and array on the document's tape (simdjson's doc/tape.md): a word per
// value with its type in the top byte, two for a number; the root word and
// an object's or array's opening word hold the index just past their
// closing word. An object or array can hold one at max_depth + 1 only if
// it has two words for each level between, so most are skipped whole, and
// a document too short for max_depth + 1 levels is not read at all.
bool TooDeep(const simdjson::dom::document& doc, size_t max_depth) {
  const uint64_t* tape = doc.tape.get();
  const size_t end = static_cast<size_t>(tape[0] & 0xFFFFFFFFFFFFFFu) - 1;  // the closing root word
  const size_t limit = max_depth + 1;  // the level that is too deep
  if (end - 1 < 2 * limit) return false;
  size_t depth = 0;
  for (size_t i = 1; i < end;) {
    const uint64_t word = tape[i];
    switch (static_cast<char>(word >> 56)) {
      case '{':
      case '[': {
        const size_t next = static_cast<size_t>(word & 0xFFFFFFFFu);
        if (depth + 1 == limit) return true;
        if (next - i < 2 * (limit - depth)) {
          i = next;  // too short to hold one at `limit`
        } else {
          ++depth;
          ++i;
        }
        break;
      }
      case '}':
      case ']':
        --depth;
        ++i;
        break;
      case 'l':
      case 'u':
      case 'd': i += 2; break;
      default: ++i; break;
    }
  }
  return false;
}

}  // namespace

// The document the DOM refused with NUMBER_ERROR, read with BigNumbers;
// the DOM's error if that fails too (unless it finds the document too
// deep).
Status JsonParser::ParseBigNumbers(std::string_view text, Value* out) {
  if (!impl_->ondemand) {
    impl_->ondemand = std::make_unique<simdjson::ondemand::parser>();
    auto err = impl_->ondemand->allocate(4096, impl_->max_depth + 1);
    (void)err;  // a failed allocation shows again (and is reported) at iterate
  }
  std::string& copy = impl_->padded_copy;
  copy.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  copy.assign(text);
  simdjson::ondemand::document doc;
  simdjson::error_code err = impl_->ondemand->iterate(copy.data(), copy.size(), copy.capacity()).get(doc);
  if (!err) err = BigNumbers(impl_->max_depth).Document(doc, out);
  if (err == simdjson::DEPTH_ERROR) return ParseError(err, impl_->max_depth);
  if (err) return ParseError(simdjson::NUMBER_ERROR, impl_->max_depth);
  return Status::Ok();
}

Status JsonParser::Parse(std::string_view text, Value* out, bool padded) {
  simdjson::dom::element root;
  auto err = impl_->parser.parse(text.data(), text.size(), !padded).get(root);
  if (err == simdjson::NUMBER_ERROR) {
    Value v;
    Status s = ParseBigNumbers(text, &v);
    if (s.ok()) *out = std::move(v);
    return s;
  }
  if (err) return ParseError(err, impl_->max_depth);
  if (TooDeep(impl_->parser.doc, impl_->max_depth)) return ParseError(simdjson::DEPTH_ERROR, impl_->max_depth);
  Impl::Assign(root, out);
  return Status::Ok();
}

Status JsonParser::ParseObjectInto(std::string_view text, Fields* into, bool padded, size_t drop_index) {
  simdjson::dom::element root;
  auto err = impl_->parser.parse(text.data(), text.size(), !padded).get(root);
  if (err == simdjson::NUMBER_ERROR) {
    Value v;
    Status s = ParseBigNumbers(text, &v);
    if (!s.ok()) return s;
    if (!v.is_map()) return Status::InvalidArgument("not a JSON object");
    if (drop_index != Fields::npos) into->erase_at(drop_index);
    Fields& members = v.as_map();
    for (size_t i = 0; i < members.size(); ++i) into->set(members.key(i), std::move(members.value(i)));
    return Status::Ok();
  }
  if (err) return ParseError(err, impl_->max_depth);
  if (TooDeep(impl_->parser.doc, impl_->max_depth)) return ParseError(simdjson::DEPTH_ERROR, impl_->max_depth);
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return Status::InvalidArgument("not a JSON object");
  // The document holds its own copies of keys and strings: `text` is not
  // needed any more. The dropped field is erased in place: it becomes a
  // spare (event.h) that the members appended next write over. A document
  // that sets the field itself appends it again, after the fields that
  // stay, as it would any other new key.
  if (drop_index != Fields::npos) into->erase_at(drop_index);
  Impl::Merge(obj, into);
  return Status::Ok();
}

}  // namespace tributary
