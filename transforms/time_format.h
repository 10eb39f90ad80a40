#pragma once
// Time formats shared by `regex_parser` (`timestamp|<format>` types) and
// `timestamp_parser`.
//
// A format is one of:
//   rfc3339            2024-05-01T12:00:00.123Z, any fraction, Z or ±hh:mm
//   unix | unix_ms | unix_us | unix_ns
//                      seconds (a fraction allowed) or integer milli/micro/
//                      nanoseconds since the epoch
//   anything else      a strptime(3) format; `%f` additionally reads a
//                      fraction of a second (1-9 digits; a tenth fails); `%z` reads an
//                      offset that overrides the time zone. A format without
//                      a year (%Y %y %C %G %s), like syslog's `%b %d
//                      %H:%M:%S`, takes the latest of next year, this year
//                      and last year (UTC) that is at most kYearlessFuture
//                      ahead of now: `Dec 31 23:59:59` read on 1 January is
//                      last year's.
// A time zone is `UTC`, `local` (the host's zone), a fixed offset `±hh:mm`,
// or an IANA name (`Europe/Paris`) from the system's time zone database
// (/usr/share/zoneinfo, Debian's tzdata), read through Howard Hinnant's
// date library (GCC 12's <chrono> has no tzdb): summer time applies. A
// local time that a change to summer time skips is taken as the moment of
// the change; one that the change back repeats, as its first occurrence.
//
// Immutable after Parse; Apply is thread-safe and allocates nothing.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/event.h"
#include "agent/status.h"

namespace date {
class time_zone;
}

namespace tributary {

struct TimeZone {
  enum class Kind { kUtc, kLocal, kFixed, kNamed };
  Kind kind = Kind::kUtc;
  int offset_secs = 0;                    // kFixed: east of UTC
  const date::time_zone* zone = nullptr;  // kNamed: the database's, alive for the whole process
  // "UTC", "Z", "local", "+02:00", "-0530", "Europe/Paris"; false if not
  // understood.
  static bool Parse(std::string_view text, TimeZone* out);
  // "" if `text` is a time zone, else why not, with the nearest IANA name
  // if one is close: the config check of a `timezone` option.
  static std::string Check(const std::string& text);
};

class TimeFormat {
 public:
  static Result<TimeFormat> Parse(std::string_view spec);
  // A check for config schemas: "" if fine, else the problem.
  static std::string Check(const std::string& spec);

  // How far ahead of now a time read without a year may be (clocks that
  // differ, a zone ahead of the one configured) before it is taken as
  // last year's.
  static constexpr std::chrono::hours kYearlessFuture{24};

  // `now` is the clock a format without a year is read against (tests set
  // it); the system clock if not given.
  bool Apply(std::string_view text, const TimeZone& tz, Timestamp* out,
             std::optional<Timestamp> now = std::nullopt) const;
  const std::string& spec() const { return spec_; }

 private:
  enum class Kind { kRfc3339, kUnix, kUnixMs, kUnixUs, kUnixNs, kStrptime };
  Kind kind_ = Kind::kRfc3339;
  std::string spec_;
  std::vector<std::string> segments_;  // the strptime format split at each %f
  bool has_zone_ = false;
  bool has_year_ = false;
};

}  // namespace tributary
