// Periods of the scheduled jobs: ISO weeks and calendar months in a site's
// time zone (email reports), UTC minutes (alerts) and UTC days (retention,
// salt rotation), with the labels the job ledger keys them by.
#ifndef ANALYTICS_JOBS_PERIODS_H_
#define ANALYTICS_JOBS_PERIODS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace analytics::jobs {

enum class Frequency { kWeekly, kMonthly };

std::string_view FrequencyName(Frequency f);  // "weekly" / "monthly"
absl::StatusOr<Frequency> ParseFrequency(std::string_view name);

// A half-open interval [from, to) with its ledger label: "2026-W47" (ISO
// week, Monday to Sunday) or "2026-11" (calendar month).
struct Period {
  std::string label;
  absl::Time from;
  absl::Time to;
  // Local calendar dates of the first and last day ("2026-11-16").
  std::string first_day;
  std::string last_day;
};

// The period that contains `t` in `tz`.
Period PeriodContaining(Frequency f, absl::Time t, const absl::TimeZone& tz);
// The most recent period that has ended at `now`.
Period LastCompletePeriod(Frequency f, absl::Time now,
                          const absl::TimeZone& tz);
// The period just before `p`.
Period PreviousPeriod(Frequency f, const Period& p, const absl::TimeZone& tz);
// Parses a label of frequency `f`; InvalidArgument naming "period".
absl::StatusOr<Period> ParsePeriod(Frequency f, std::string_view label,
                                   const absl::TimeZone& tz);

// "2026-11-28T14:05" (UTC minute) and "2026-11-28" (UTC day).
std::string MinuteLabel(absl::Time t);
std::string DayLabel(absl::Time t);
// Days since the epoch of the UTC day of `t` (the salt day number).
int64_t UtcDayNumber(absl::Time t);

}  // namespace analytics::jobs

#endif  // ANALYTICS_JOBS_PERIODS_H_
