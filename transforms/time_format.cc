#include "transforms/time_format.h"

#include <date/tz.h>

#include <cstring>
#include <ctime>

#include "config/diagnostics.h"

namespace tributary {

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Seconds since the epoch with an optional fraction, or an integer count
// of 10^-scale seconds.
bool ParseUnix(std::string_view s, int scale_digits, Timestamp* out) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i >= s.size()) return false;
  __int128 whole = 0;
  size_t start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    whole = whole * 10 + (s[i] - '0');
    if (whole > (__int128)1 << 80) return false;
    ++i;
  }
  if (i == start) return false;
  int64_t frac_ns = 0;
  if (i < s.size() && s[i] == '.' && scale_digits == 0) {
    ++i;
    int digits = 0;
    size_t fstart = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 9) {
        frac_ns = frac_ns * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (i == fstart) return false;
    for (; digits < 9; ++digits) frac_ns *= 10;
  }
  if (i != s.size()) return false;
  __int128 ns = whole;
  for (int k = scale_digits; k < 9; ++k) ns *= 10;
  ns += frac_ns;
  if (neg) ns = -ns;
  if (ns > INT64_MAX || ns < INT64_MIN) return false;
  *out = Timestamp(std::chrono::nanoseconds(static_cast<int64_t>(ns)));
  return true;
}

// True if strptime reads back all of what strftime writes for `format` at a
// fixed time: a conversion strptime does not know (a typo such as %Q, or
// strftime-only ones) fails here, at load, instead of on every event.
bool RoundTrips(const std::string& format) {
  std::tm t{};
  t.tm_year = 124;  // 2024-10-01T13:55:36, a Tuesday
  t.tm_mon = 9;
  t.tm_mday = 1;
  t.tm_hour = 13;
  t.tm_min = 55;
  t.tm_sec = 36;
  t.tm_wday = 2;
  t.tm_yday = 274;
  char buf[512];
  const size_t n = std::strftime(buf, sizeof buf, format.c_str(), &t);
  if (n == 0) return true;  // writes nothing (or too much): nothing to read back
  std::tm back{};
  const char* end = strptime(buf, format.c_str(), &back);
  return end != nullptr && *end == '\0';
}

}  // namespace

bool TimeZone::Parse(std::string_view t, TimeZone* out) {
  if (t == "UTC" || t == "utc" || t == "Z" || t == "Etc/UTC" || t == "GMT") {
    *out = {Kind::kUtc, 0};
    return true;
  }
  if (t == "local" || t == "Local") {
    *out = {Kind::kLocal, 0};
    return true;
  }
  if (t.size() >= 5 && (t[0] == '+' || t[0] == '-')) {
    int h, m;
    size_t mpos = t[3] == ':' ? 4 : 3;
    if (!Digits(t, 1, 2, &h) || !Digits(t, mpos, 2, &m) || mpos + 2 != t.size() || h > 23 || m > 59) return false;
    *out = {Kind::kFixed, (h * 3600 + m * 60) * (t[0] == '-' ? -1 : 1)};
    return true;
  }
  if (t.empty()) return false;
  try {
    const date::time_zone* zone = date::locate_zone(t);
    *out = {Kind::kNamed, 0, zone};
    return true;
  } catch (const std::exception&) {  // not in the database, or no database (tzdata not installed)
    return false;
  }
}

std::string TimeZone::Check(const std::string& t) {
  TimeZone tz;
  if (Parse(t, &tz)) return "";
  std::string problem = "unknown time zone \"" + t +
                        "\" (UTC, local, an offset like +02:00 or an IANA name like Europe/Paris)";
  try {
    std::vector<std::string> names;
    for (const auto& z : date::get_tzdb().zones) names.push_back(std::string(z.name()));
    if (names.empty()) return problem + "; no time zone database found: install tzdata";
    const std::string near = config::ClosestMatch(t, names);
    if (!near.empty()) problem += "; did you mean " + near + "?";
  } catch (const std::exception&) {
    problem += "; no time zone database found: install tzdata";
  }
  return problem;
}

Result<TimeFormat> TimeFormat::Parse(std::string_view spec) {
  TimeFormat f;
  f.spec_ = std::string(spec);
  if (spec.empty()) return Status::InvalidArgument("empty time format");
  if (spec == "rfc3339" || spec == "iso8601") {
    f.kind_ = Kind::kRfc3339;
    return f;
  }
  if (spec == "unix") f.kind_ = Kind::kUnix;
  else if (spec == "unix_ms") f.kind_ = Kind::kUnixMs;
  else if (spec == "unix_us") f.kind_ = Kind::kUnixUs;
  else if (spec == "unix_ns") f.kind_ = Kind::kUnixNs;
  else f.kind_ = Kind::kStrptime;
  if (f.kind_ != Kind::kStrptime) return f;
  if (spec.find('%') == std::string_view::npos)
    return Status::InvalidArgument("time format `" + f.spec_ +
                                   "` has no % conversion (use rfc3339, unix, unix_ms, unix_us, unix_ns or a strptime format)");
  std::string seg;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == '%' && i + 1 < spec.size()) {
      char c = spec[i + 1];
      if (c == 'f') {
        f.segments_.push_back(seg);
        seg.clear();
        ++i;
        continue;
      }
      if (c == 'z') f.has_zone_ = true;
      if (c == 'Y' || c == 'y' || c == 'C' || c == 'G' || c == 's' || c == 'D' || c == 'F' || c == 'c' || c == 'x')
        f.has_year_ = true;
      seg += spec[i];
      seg += c;
      ++i;
      continue;
    }
    seg += spec[i];
  }
  f.segments_.push_back(seg);
  for (const std::string& segment : f.segments_) {
    if (RoundTrips(segment)) continue;
    // Name the conversion: the first one that does not round-trip alone.
    std::string bad = segment;
    for (size_t i = 0; i + 1 < segment.size(); ++i) {
      if (segment[i] != '%') continue;
      size_t len = (segment[i + 1] == 'E' || segment[i + 1] == 'O') && i + 2 < segment.size() ? 3 : 2;
      std::string one = segment.substr(i, len);
      if (!RoundTrips(one)) {
        bad = one;
        break;
      }
      i += len - 1;
    }
    return Status::InvalidArgument("time format `" + f.spec_ + "`: strptime cannot read `" + bad +
                                   "` (conversions it reads: %Y %m %d %H %M %S %b %a %j %p %z %Z %s and the "
                                   "others of strptime(3); %f for a fraction of a second)");
  }
  return f;
}

std::string TimeFormat::Check(const std::string& spec) {
  auto r = Parse(spec);
  return r.ok() ? "" : r.status().message();
}

bool TimeFormat::Apply(std::string_view text, const TimeZone& tz, Timestamp* out, std::optional<Timestamp> now) const {
  switch (kind_) {
    case Kind::kRfc3339: return ParseRfc3339(text, out);
    case Kind::kUnix: return ParseUnix(text, 0, out);
    case Kind::kUnixMs: return ParseUnix(text, 3, out);
    case Kind::kUnixUs: return ParseUnix(text, 6, out);
    case Kind::kUnixNs: return ParseUnix(text, 9, out);
    case Kind::kStrptime: break;
  }
  // strptime needs a NUL-terminated string.
  char stack_buf[256];
  std::string heap_buf;
  const char* p;
  if (text.size() < sizeof stack_buf) {
    std::memcpy(stack_buf, text.data(), text.size());
    stack_buf[text.size()] = '\0';
    p = stack_buf;
  } else {
    heap_buf.assign(text);
    p = heap_buf.c_str();
  }
  const char* end = p + text.size();
  std::tm tm{};
  tm.tm_mday = 1;
  tm.tm_isdst = -1;
  int64_t frac_ns = 0;
  for (size_t s = 0; s < segments_.size(); ++s) {
    if (!segments_[s].empty()) {
      p = strptime(p, segments_[s].c_str(), &tm);
      if (p == nullptr) return false;
    }
    if (s + 1 < segments_.size()) {  // a %f follows: 1 to 9 digits
      int digits = 0;
      while (p < end && *p >= '0' && *p <= '9') {
        // A tenth digit is not read (as chrono's %f, which Vector uses,
        // refuses it), rather than dropped silently.
        if (digits == 9) return false;
        frac_ns = frac_ns * 10 + (*p - '0');
        ++digits;
        ++p;
      }
      if (digits == 0) return false;
      for (; digits < 9; ++digits) frac_ns *= 10;
    }
  }
  if (p != end) return false;
  // The seconds since the epoch of `t` read in its time zone, or false if
  // its date does not exist (strptime takes 30 February, and timegm would
  // roll it over into March) or a Timestamp cannot hold its year (it would
  // wrap around).
  auto to_secs = [&](std::tm t, int64_t* secs) {
    using namespace std::chrono;
    const year_month_day ymd(year(t.tm_year + 1900), month(static_cast<unsigned>(t.tm_mon + 1)),
                             day(static_cast<unsigned>(t.tm_mday)));
    if (!ymd.ok() || !InTimestampRange(t.tm_year + 1900)) return false;
    const long gmtoff = t.tm_gmtoff;
    if (has_zone_) {
      *secs = static_cast<int64_t>(timegm(&t)) - gmtoff;
    } else if (tz.kind == TimeZone::Kind::kLocal) {
      *secs = static_cast<int64_t>(mktime(&t));
    } else if (tz.kind == TimeZone::Kind::kNamed) {
      const date::local_seconds local{seconds(static_cast<int64_t>(timegm(&t)))};
      *secs = tz.zone->to_sys(local, date::choose::earliest).time_since_epoch().count();
    } else {
      *secs = static_cast<int64_t>(timegm(&t)) - (tz.kind == TimeZone::Kind::kFixed ? tz.offset_secs : 0);
    }
    return true;
  };
  int64_t secs;
  if (has_year_) {
    if (!to_secs(tm, &secs)) return false;
  } else {
    // No year in the text (syslog's `Dec 31 23:59:59`): the latest of next
    // year, this year and last year (UTC) that does not put the time more
    // than kYearlessFuture ahead of now. Read just after New Year, a line
    // of 31 December is last year's, not one almost a year ahead; read
    // just before, one of 1 January (a zone ahead of UTC) is next year's.
    const Timestamp clock =
        now ? *now : std::chrono::time_point_cast<Timestamp::duration>(std::chrono::system_clock::now());
    const std::time_t now_secs = std::chrono::floor<std::chrono::seconds>(clock).time_since_epoch().count();
    std::tm now_tm{};
    gmtime_r(&now_secs, &now_tm);
    const int64_t latest = static_cast<int64_t>(now_secs) + std::chrono::seconds(kYearlessFuture).count();
    // Next year is tried only in the last days of a year (one conversion,
    // not two, the rest of the time): when `latest`, plus a day for a
    // local time's zone ahead of UTC, is in it.
    using namespace std::chrono;
    const int64_t next_year =
        sys_seconds(sys_days(year(now_tm.tm_year + 1901) / January / 1)).time_since_epoch().count();
    const bool near_next_year = latest + 86400 >= next_year;
    bool found = false;
    for (int y = now_tm.tm_year + (near_next_year ? 1 : 0); y >= now_tm.tm_year - 1 && !found; --y) {
      tm.tm_year = y;
      found = to_secs(tm, &secs) && secs <= latest;
    }
    if (!found) return false;
  }
  *out = Timestamp(std::chrono::seconds(secs)) + std::chrono::nanoseconds(frac_ns);
  return true;
}

}  // namespace tributary
