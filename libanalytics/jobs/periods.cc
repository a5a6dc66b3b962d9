// Period arithmetic for the jobs; see periods.h.
#include "libanalytics/jobs/periods.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "libanalytics/core/strings.h"

namespace analytics::jobs {
namespace {

absl::CivilDay MondayOf(absl::CivilDay d) {
  int back = (static_cast<int>(absl::GetWeekday(d)) -
              static_cast<int>(absl::Weekday::monday) + 7) %
             7;
  return d - back;
}

// ISO 8601: week 1 is the week with the year's first Thursday.
std::string IsoWeekLabel(absl::CivilDay monday) {
  absl::CivilDay thursday = monday + 3;
  int week = (absl::GetYearDay(thursday) - 1) / 7 + 1;
  return absl::StrFormat("%04d-W%02d", thursday.year(), week);
}

std::string DayString(absl::CivilDay d) {
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}

Period Make(std::string label, absl::CivilDay first, absl::CivilDay end,
            const absl::TimeZone& tz) {
  Period p;
  p.label = std::move(label);
  p.from = absl::FromCivil(first, tz);
  p.to = absl::FromCivil(end, tz);
  p.first_day = DayString(first);
  p.last_day = DayString(end - 1);
  return p;
}

Period WeekFrom(absl::CivilDay monday, const absl::TimeZone& tz) {
  return Make(IsoWeekLabel(monday), monday, monday + 7, tz);
}

Period MonthFrom(absl::CivilMonth m, const absl::TimeZone& tz) {
  return Make(absl::StrFormat("%04d-%02d", m.year(), m.month()),
              absl::CivilDay(m), absl::CivilDay(m + 1), tz);
}

absl::Status BadPeriod(Frequency f, std::string_view label) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "period: '%s' is not a %s period (want %s)", AV(label.substr(0, 40)),
      AV(FrequencyName(f)), f == Frequency::kWeekly ? "YYYY-Www" : "YYYY-MM"));
}

}  // namespace

std::string_view FrequencyName(Frequency f) {
  return f == Frequency::kWeekly ? "weekly" : "monthly";
}

absl::StatusOr<Frequency> ParseFrequency(std::string_view name) {
  if (name == "weekly") return Frequency::kWeekly;
  if (name == "monthly") return Frequency::kMonthly;
  return absl::InvalidArgumentError(
      "frequency: want \"weekly\" or \"monthly\"");
}

Period PeriodContaining(Frequency f, absl::Time t, const absl::TimeZone& tz) {
  absl::CivilDay day = absl::ToCivilDay(t, tz);
  if (f == Frequency::kWeekly) return WeekFrom(MondayOf(day), tz);
  return MonthFrom(absl::CivilMonth(day), tz);
}

Period LastCompletePeriod(Frequency f, absl::Time now,
                          const absl::TimeZone& tz) {
  return PreviousPeriod(f, PeriodContaining(f, now, tz), tz);
}

Period PreviousPeriod(Frequency f, const Period& p, const absl::TimeZone& tz) {
  absl::CivilDay first = absl::ToCivilDay(p.from, tz);
  if (f == Frequency::kWeekly) return WeekFrom(MondayOf(first) - 7, tz);
  return MonthFrom(absl::CivilMonth(first) - 1, tz);
}

absl::StatusOr<Period> ParsePeriod(Frequency f, std::string_view label,
                                   const absl::TimeZone& tz) {
  int year = 0, n = 0;
  if (f == Frequency::kWeekly) {
    if (label.size() != 8 || label[4] != '-' || label[5] != 'W' ||
        !absl::SimpleAtoi(AV(label.substr(0, 4)), &year) ||
        !absl::SimpleAtoi(AV(label.substr(6, 2)), &n) || n < 1 || n > 53) {
      return BadPeriod(f, label);
    }
    // Week 1 holds January 4th.
    absl::CivilDay week1 = MondayOf(absl::CivilDay(year, 1, 4));
    Period p = WeekFrom(week1 + 7 * (n - 1), tz);
    if (p.label != label) return BadPeriod(f, label);  // e.g. W53 of a 52
    return p;
  }
  if (label.size() != 7 || label[4] != '-' ||
      !absl::SimpleAtoi(AV(label.substr(0, 4)), &year) ||
      !absl::SimpleAtoi(AV(label.substr(5, 2)), &n) || n < 1 || n > 12) {
    return BadPeriod(f, label);
  }
  return MonthFrom(absl::CivilMonth(year, n), tz);
}

std::string MinuteLabel(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M", t, absl::UTCTimeZone());
}

std::string DayLabel(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone());
}

int64_t UtcDayNumber(absl::Time t) {
  int64_t s = absl::ToUnixSeconds(t);
  return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}

}  // namespace analytics::jobs
