#include "agent/event.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "agent/json.h"

namespace tributary {

// ---- Fields ----------------------------------------------------------------

Fields::Fields(const Fields& other) : size_(other.size_) {
  items_.reserve(other.size_);
  items_.insert(items_.end(), other.items_.begin(), other.items_.begin() + static_cast<std::ptrdiff_t>(other.size_));
}

Fields& Fields::operator=(const Fields& other) {
  if (this != &other) *this = Fields(other);
  return *this;
}

Fields::Fields(Fields&& other) noexcept : items_(std::move(other.items_)), size_(other.size_) {
  other.items_.clear();
  other.size_ = 0;
}

Fields& Fields::operator=(Fields&& other) noexcept {
  if (this != &other) {
    items_ = std::move(other.items_);
    size_ = other.size_;
    other.items_.clear();
    other.size_ = 0;
  }
  return *this;
}

Value* Fields::find(std::string_view key) {
  const size_t i = index_of(key);
  return i == npos ? nullptr : &items_[i].value;
}

const Value* Fields::find(std::string_view key) const {
  const size_t i = index_of(key);
  return i == npos ? nullptr : &items_[i].value;
}

Value& Fields::set(std::string_view key, Value v) {
  if (Value* existing = find(key)) {
    *existing = std::move(v);
    return *existing;
  }
  return append(key, std::move(v));
}

bool Fields::erase(std::string_view key) {
  const size_t i = index_of(key);
  if (i == npos) return false;
  erase_at(i);
  return true;
}

// The erased field becomes the first spare: a rotation moves it behind the
// live fields (nothing moves when it is the last one).
void Fields::erase_at(size_t i) {
  const auto first = items_.begin() + static_cast<std::ptrdiff_t>(i);
  std::rotate(first, first + 1, items_.begin() + static_cast<std::ptrdiff_t>(size_));
  --size_;
}

bool Fields::operator==(const Fields& other) const {
  return size_ == other.size_ && std::equal(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(size_),
                                            other.items_.begin());
}

// ---- Value -----------------------------------------------------------------

bool Value::to_double(double* out) const {
  switch (kind()) {
    case Kind::kInt: *out = static_cast<double>(as_int()); return true;
    case Kind::kDouble: *out = as_double(); return true;
    default: return false;
  }
}

void Value::append_text(std::string* out) const {
  switch (kind()) {
    case Kind::kNull: return;
    case Kind::kString: out->append(as_string()); return;
    case Kind::kTimestamp: AppendRfc3339(as_timestamp(), out); return;
    default: AppendJson(*this, out); return;
  }
}

// ---- Event -----------------------------------------------------------------

namespace {

template <typename F, typename V>
V* WalkPath(F& fields, std::string_view path) {
  if (V* v = fields.find(path)) return v;
  size_t dot = path.find('.');
  if (dot == std::string_view::npos) return nullptr;
  V* head = fields.find(path.substr(0, dot));
  if (head == nullptr || !head->is_map()) return nullptr;
  return WalkPath<F, V>(head->as_map(), path.substr(dot + 1));
}

}  // namespace

const Value* Event::get(std::string_view path) const {
  return WalkPath<const Fields, const Value>(fields_, path);
}

Value* Event::get(std::string_view path) { return WalkPath<Fields, Value>(fields_, path); }

Value& Event::set(std::string_view path, Value v) {
  Fields* fields = &fields_;
  while (true) {
    if (Value* exact = fields->find(path)) {
      *exact = std::move(v);
      return *exact;
    }
    size_t dot = path.find('.');
    if (dot == std::string_view::npos) return fields->set(path, std::move(v));
    std::string_view head = path.substr(0, dot);
    Value* child = fields->find(head);
    if (child == nullptr || !child->is_map()) child = &fields->set(head, Value(Fields()));
    fields = &child->as_map();
    path = path.substr(dot + 1);
  }
}

bool Event::remove(std::string_view path) {
  if (fields_.erase(path)) return true;
  size_t dot = path.rfind('.');
  if (dot == std::string_view::npos) return false;
  Value* parent = get(path.substr(0, dot));
  if (parent == nullptr || !parent->is_map()) return false;
  return parent->as_map().erase(path.substr(dot + 1));
}

namespace {

size_t EstimateValue(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString: return v.as_string().size() + 2;
    case Value::Kind::kArray: {
      size_t n = 2;
      for (const Value& e : v.as_array()) n += EstimateValue(e) + 1;
      return n;
    }
    case Value::Kind::kMap: {
      size_t n = 2;
      const Fields& m = v.as_map();
      for (size_t i = 0; i < m.size(); ++i) n += m.key(i).size() + 4 + EstimateValue(m.value(i));
      return n;
    }
    case Value::Kind::kTimestamp: return 32;
    default: return 8;
  }
}

}  // namespace

size_t Event::estimated_bytes() const {
  size_t n = 2;
  for (size_t i = 0; i < fields_.size(); ++i)
    n += fields_.key(i).size() + 4 + EstimateValue(fields_.value(i));
  return n;
}

// ---- Time ------------------------------------------------------------------

namespace {

// Writes v (0 <= v < 10^width) as `width` decimal digits at p.
void PutDigits(char* p, int64_t v, int width) {
  for (int i = width - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
}

}  // namespace

// Every sink encodes a timestamp per event, mostly within the same second
// as the one before: the "YYYY-MM-DDTHH:MM:SS." part is cached per thread
// and only the nanoseconds are written each time.
void AppendRfc3339(Timestamp t, std::string* out) {
  char buf[kRfc3339Size];
  out->append(buf, static_cast<size_t>(WriteRfc3339(t, buf) - buf));
}

char* WriteRfc3339(Timestamp t, char* p) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const int64_t nanos = (t - secs).count();
  thread_local sys_seconds cached_second{seconds::min()};
  thread_local char prefix[20];
  if (secs != cached_second) {
    const auto day = floor<days>(secs);
    const year_month_day ymd{day};
    const int year = static_cast<int>(ymd.year());  // 1677..2262: int64 nanoseconds since 1970
    const hh_mm_ss hms{secs - day};
    PutDigits(prefix, year, 4);
    prefix[4] = '-';
    PutDigits(prefix + 5, static_cast<unsigned>(ymd.month()), 2);
    prefix[7] = '-';
    PutDigits(prefix + 8, static_cast<unsigned>(ymd.day()), 2);
    prefix[10] = 'T';
    PutDigits(prefix + 11, hms.hours().count(), 2);
    prefix[13] = ':';
    PutDigits(prefix + 14, hms.minutes().count(), 2);
    prefix[16] = ':';
    PutDigits(prefix + 17, hms.seconds().count(), 2);
    prefix[19] = '.';
    cached_second = secs;
  }
  std::memcpy(p, prefix, 20);
  PutDigits(p + 20, nanos, 9);
  p[29] = 'Z';
  return p + kRfc3339Size;
}

std::string FormatRfc3339(Timestamp t) {
  std::string s;
  AppendRfc3339(t, &s);
  return s;
}

namespace {

bool ParseDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

bool InTimestampRange(int year) { return year >= 1678 && year <= 2261; }

bool ParseRfc3339(std::string_view s, Timestamp* out) {
  using namespace std::chrono;
  int y, mo, d, h, mi, sec;
  if (!ParseDigits(s, 0, 4, &y) || s.size() < 19 || s[4] != '-' || !ParseDigits(s, 5, 2, &mo) ||
      s[7] != '-' || !ParseDigits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !ParseDigits(s, 11, 2, &h) || s[13] != ':' || !ParseDigits(s, 14, 2, &mi) || s[16] != ':' ||
      !ParseDigits(s, 17, 2, &sec))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (s[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return false;
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset_minutes = 0;
  if (pos >= s.size()) return false;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!ParseDigits(s, pos + 1, 2, &oh)) return false;
    size_t mpos = pos + 3;
    if (mpos < s.size() && s[mpos] == ':') ++mpos;
    if (!ParseDigits(s, mpos, 2, &om)) return false;
    offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos = mpos + 2;
  } else {
    return false;
  }
  if (pos != s.size()) return false;
  const year_month_day ymd(year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d)));
  // No 30 February (year_month_day would roll it over into March), and no
  // year a Timestamp (int64 nanoseconds: 1677-09-21 to 2262-04-11) cannot
  // hold without wrapping around.
  if (!ymd.ok() || !InTimestampRange(y)) return false;
  auto days = sys_days(ymd);
  *out = Timestamp(days.time_since_epoch()) + hours(h) + minutes(mi) + seconds(sec) +
         nanoseconds(nanos) - minutes(offset_minutes);
  return true;
}

Timestamp Now() {
  return time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
}

}  // namespace tributary
