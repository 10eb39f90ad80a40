#pragma once
// The event model: a log record is an ordered map of field names to values.
//
// Value holds null, bool, int64, double, string, timestamp, array or map.
// Fields is the ordered map used for events and nested maps: one vector of
// (key, value) scanned linearly, which beats hashing for the ~10 fields a
// log record has and keeps insertion order for output. Event wraps the
// top-level Fields and resolves dotted paths ("http.status") into nested
// maps.
//
// Fields removed by erase, truncate or clear are not destroyed: they stay
// behind the live ones as spares, and the next append writes over the
// spare at its position, reusing its key and its string's buffer. A source
// that refills a recycled event (batch_builder.h) and a transform that
// appends fields to it thereby allocate nothing once the shapes repeat,
// and clearing an event costs nothing. Spares are invisible: size(),
// find(), ==, copies and every accessor see only live fields. A spare's
// old value is freed when it is written over, and a string buffer over
// kSpareStringCapacity is not reused for a value under a quarter of it.
//
// A field that append or assign_at turns from a string into a scalar, or
// back, trades values with the last spare first, so that the string's
// buffer waits there instead of being freed and allocated again. This is
// the event timestamp on every line: the source writes a Timestamp, a
// parser overwrites it with the "timestamp" text of the record, and the
// recycled event gets a Timestamp again.
//
// Not thread-safe; an event belongs to one batch at a time (see batch.h).

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace tributary {

using Timestamp = std::chrono::sys_time<std::chrono::nanoseconds>;

class Value;
struct Field;

class Fields {
 public:
  Fields() = default;
  Fields(const Fields& other);  // copies the live fields only
  Fields& operator=(const Fields& other);
  Fields(Fields&& other) noexcept;
  Fields& operator=(Fields&& other) noexcept;

  static constexpr size_t kSpareStringCapacity = 4096;

  size_t size() const;
  bool empty() const;
  const std::string& key(size_t i) const;
  Value& value(size_t i);
  const Value& value(size_t i) const;

  Value* find(std::string_view key);
  const Value* find(std::string_view key) const;
  // Inserts at the end or overwrites in place; returns the stored value.
  Value& set(std::string_view key, Value v);
  // The index of a key, or npos.
  static constexpr size_t npos = static_cast<size_t>(-1);
  size_t index_of(std::string_view key) const;

  // Appends without looking for an existing key: only for keys known to be
  // absent (a source filling a fresh event). Cheaper than set(): the value
  // is written over the spare at this position (a string into its buffer)
  // or constructed in place from `v` (a string_view, a Timestamp, ...).
  template <typename V>
  Value& append(std::string_view key, V&& v);
  // Appends `key` (likewise only a key known to be absent) and returns its
  // value as the spare left it (null for a new field), for the caller to
  // write over with Value::assign_reusing: a string, array or map of the
  // same kind keeps its buffers.
  Value& append_slot(std::string_view key);
  // Writes over live field i as append writes over a spare.
  template <typename V>
  Value& assign_at(size_t i, V&& v);
  // Removes a field; the later ones move down, keeping their order.
  bool erase(std::string_view key);
  void erase_at(size_t i);
  void clear() { size_ = 0; }
  // Keeps the first n fields (n <= size()); the rest become spares.
  void truncate(size_t n) { size_ = n; }
  void reserve(size_t n);

  bool operator==(const Fields& other) const;

 private:
  std::vector<Field> items_;  // [0, size_) live, then spares; one allocation per map
  size_t size_ = 0;
};

using Array = std::vector<Value>;

class Value {
 public:
  enum class Kind : uint8_t { kNull, kBool, kInt, kDouble, kString, kTimestamp, kArray, kMap };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int v) : v_(int64_t{v}) {}
  Value(int64_t v) : v_(v) {}
  Value(uint64_t v) : v_(static_cast<int64_t>(v)) {}
  Value(double v) : v_(v) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::in_place_type<std::string>, s) {}
  Value(Timestamp t) : v_(t) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Fields m) : v_(std::move(m)) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_double() const { return kind() == Kind::kDouble; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_timestamp() const { return kind() == Kind::kTimestamp; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_map() const { return kind() == Kind::kMap; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  std::string& as_string() { return std::get<std::string>(v_); }
  Timestamp as_timestamp() const { return std::get<Timestamp>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Fields& as_map() const { return std::get<Fields>(v_); }
  Fields& as_map() { return std::get<Fields>(v_); }

  // Numeric view of int or double (for comparisons); false if not numeric.
  bool to_double(double* out) const;
  // Appends a plain-text rendering: strings raw, timestamps RFC 3339,
  // numbers and bools as JSON would, null as empty, arrays/maps as JSON.
  void append_text(std::string* out) const;
  std::string to_text() const {
    std::string s;
    append_text(&s);
    return s;
  }

  bool operator==(const Value& other) const { return v_ == other.v_; }

  // Becomes the string `from` holds, with its buffer; `from` is left an
  // empty string.
  void take_string(Value& from) { v_.template emplace<std::string>(std::move(std::get<std::string>(from.v_))); }

  // Becomes `v`, reusing this value's string buffer when both are strings.
  // Given an empty Fields, a map is cleared instead (keeping its spares).
  template <typename V>
  void assign_reusing(V&& v);

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, Timestamp, Array, Fields> v_;
};

struct Field {
  template <typename V>
  Field(std::string_view k, V&& v) : key(k), value(std::forward<V>(v)) {}
  std::string key;
  Value value;
  bool operator==(const Field& other) const = default;
};

namespace detail {
// s.assign(v) for a v that does not overlap s. Inline when v is no longer
// than what s holds, which is about every other time a field is written
// again with the same field of the next log line: a short copy and a new
// length instead of a call into std::string's general replace (about 70
// instructions with its checks); otherwise that call.
[[gnu::always_inline]] inline void AssignText(std::string& s, std::string_view v) {
  const size_t n = v.size();
  if (n > s.size()) {
    s.assign(v);
    return;
  }
  char* d = s.data();
  const char* p = v.data();
  if (n >= 8 && n <= 16) {
    uint64_t a, b;  // both loaded before either store: correct for any n in 8..16
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
    std::memcpy(d, &a, 8);
    std::memcpy(d + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    std::memcpy(d, &a, 4);
    std::memcpy(d + n - 4, &b, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; ++i) d[i] = p[i];
  } else {
    std::memmove(d, p, n);
  }
  s.resize(n);  // not longer: only sets the length
}

// True if assigning a V makes a string value (a null pointer does not).
template <typename V>
inline constexpr bool kIsText =
    std::is_convertible_v<V, std::string_view> && !std::is_same_v<std::decay_t<V>, std::nullptr_t>;
}  // namespace detail

template <typename V>
inline void Value::assign_reusing(V&& v) {
  using D = std::decay_t<V>;
  if constexpr (detail::kIsText<V>) {
    const std::string_view s(v);
    std::string* str = std::get_if<std::string>(&v_);
    if (str == nullptr) {
      v_.template emplace<std::string>(std::forward<V>(v));
    } else if (str->capacity() > Fields::kSpareStringCapacity && str->capacity() / 4 > s.size()) {
      std::string(std::forward<V>(v)).swap(*str);  // the large buffer goes with the temporary
    } else if constexpr (std::is_same_v<D, std::string> && !std::is_lvalue_reference_v<V>) {
      *str = std::move(v);
    } else {
      detail::AssignText(*str, s);
    }
  } else if constexpr (std::is_same_v<D, Timestamp> || std::is_same_v<D, int64_t> || std::is_same_v<D, uint64_t> ||
                       std::is_same_v<D, double> || std::is_same_v<D, bool>) {
    using Stored = std::conditional_t<std::is_same_v<D, uint64_t>, int64_t, D>;
    if (Stored* p = std::get_if<Stored>(&v_)) *p = static_cast<Stored>(v);
    else v_.template emplace<Stored>(static_cast<Stored>(v));
  } else if constexpr (std::is_same_v<D, Fields>) {
    Fields* map = std::get_if<Fields>(&v_);
    if (map != nullptr && v.empty()) map->clear();
    else *this = Value(std::forward<V>(v));
  } else if constexpr (std::is_same_v<D, Value>) {
    *this = std::forward<V>(v);
  } else {
    *this = Value(std::forward<V>(v));
  }
}

inline size_t Fields::size() const { return size_; }
inline bool Fields::empty() const { return size_ == 0; }
inline const std::string& Fields::key(size_t i) const { return items_[i].key; }
inline Value& Fields::value(size_t i) { return items_[i].value; }
inline void Fields::reserve(size_t n) { items_.reserve(n); }
inline const Value& Fields::value(size_t i) const { return items_[i].value; }
namespace detail {
// Key equality without a call for the short keys events have: two
// overlapping loads of 8 (or 4) bytes from each side cover 4 to 16 bytes.
[[gnu::always_inline]] inline bool SameKey(const std::string& a, std::string_view b) {
  const size_t n = b.size();
  if (a.size() != n) return false;
  const char *x = a.data(), *y = b.data();
  auto load8 = [](const char* p) { uint64_t v; std::memcpy(&v, p, 8); return v; };
  auto load4 = [](const char* p) { uint32_t v; std::memcpy(&v, p, 4); return v; };
  if (n >= 8 && n <= 16) return load8(x) == load8(y) && load8(x + n - 8) == load8(y + n - 8);
  if (n >= 4 && n < 8) return load4(x) == load4(y) && load4(x + n - 4) == load4(y + n - 4);
  if (n < 4) {
    for (size_t i = 0; i < n; ++i)
      if (x[i] != y[i]) return false;
    return true;
  }
  return std::memcmp(x, y, n) == 0;
}
}  // namespace detail

inline size_t Fields::index_of(std::string_view key) const {
  for (size_t i = 0; i < size_; ++i)
    if (detail::SameKey(items_[i].key, key)) return i;
  return npos;
}

[[gnu::always_inline]] inline Value& Fields::append_slot(std::string_view key) {
  if (size_ < items_.size()) {
    Field& f = items_[size_++];
    if (!detail::SameKey(f.key, key)) detail::AssignText(f.key, key);
    return f.value;
  }
  ++size_;
  return items_.emplace_back(key, nullptr).value;
}

template <typename V>
inline Value& Fields::assign_at(size_t i, V&& v) {
  constexpr bool kString = detail::kIsText<V>;
  Value& value = items_[i].value;
  if (value.is_string() != kString && i + 1 < items_.size() && items_.size() > size_) {
    Value& last = items_.back().value;  // a spare: its own value does not matter
    if constexpr (kString) {
      if (last.is_string() && value.kind() < Value::Kind::kArray) value.take_string(last);
    } else {
      if (last.kind() < Value::Kind::kArray) last.take_string(value);
    }
  }
  value.assign_reusing(std::forward<V>(v));
  return value;
}

template <typename V>
inline Value& Fields::append(std::string_view key, V&& v) {
  if (size_ < items_.size()) {
    append_slot(key);
    return assign_at(size_ - 1, std::forward<V>(v));
  }
  ++size_;
  return items_.emplace_back(key, std::forward<V>(v)).value;
}

// Well-known field names.
inline constexpr std::string_view kMessageField = "message";
inline constexpr std::string_view kTimestampField = "timestamp";
inline constexpr std::string_view kHostField = "host";
inline constexpr std::string_view kSourceTypeField = "source_type";

class Event {
 public:
  Event() = default;
  explicit Event(Fields f) : fields_(std::move(f)) {}

  Fields& fields() { return fields_; }
  const Fields& fields() const { return fields_; }

  // Looks up a field: an exact top-level key first, then a dotted path
  // through nested maps ("a.b.c"). nullptr if absent.
  const Value* get(std::string_view path) const;
  Value* get(std::string_view path);
  // Sets a field; a dotted path creates intermediate maps when the
  // top-level key does not exist as written.
  Value& set(std::string_view path, Value v);
  bool remove(std::string_view path);

  // Approximate in-memory/wire size, used for byte accounting.
  size_t estimated_bytes() const;

  bool operator==(const Event& other) const { return fields_ == other.fields_; }

 private:
  Fields fields_;
};

// RFC 3339 with nanoseconds and a 'Z' suffix, e.g. 2024-05-01T12:00:00.123456789Z.
void AppendRfc3339(Timestamp t, std::string* out);
// The same into p, which has room for kRfc3339Size bytes; returns p + kRfc3339Size.
inline constexpr size_t kRfc3339Size = 30;
char* WriteRfc3339(Timestamp t, char* p);
std::string FormatRfc3339(Timestamp t);
// Parses RFC 3339 (any fraction length, 'Z' or ±hh:mm). False if malformed.
bool ParseRfc3339(std::string_view s, Timestamp* out);
// Whether every instant of `year` fits in a Timestamp (1678 to 2261); the
// parsers refuse other years rather than let them wrap around.
bool InTimestampRange(int year);

Timestamp Now();

}  // namespace tributary
