// Email reports: the figures of one site for one period, computed through
// the engine's public Stats API v2 (Engine::Query) so that a report always
// equals what the API answers, and their rendering as text and HTML.
#ifndef ANALYTICS_JOBS_REPORT_H_
#define ANALYTICS_JOBS_REPORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "analytics/engine.h"
#include "libanalytics/jobs/periods.h"

namespace analytics::jobs {

struct Figures {
  int64_t visitors = 0;
  int64_t visits = 0;
  int64_t pageviews = 0;
  int64_t bounce_rate = 0;     // percent
  int64_t visit_duration = 0;  // seconds
};

// Change like the Stats API's comparison: percent for counts (100 when the
// previous value was 0 and this one is not), percentage points for
// bounce_rate.
struct Changes {
  int64_t visitors = 0;
  int64_t visits = 0;
  int64_t pageviews = 0;
  int64_t bounce_rate = 0;
  int64_t visit_duration = 0;
};

struct ReportData {
  std::string site;  // domain
  Frequency frequency = Frequency::kWeekly;
  Period period;
  Period previous;
  Figures now;
  Figures before;
  Changes change;
  // (value, visitors), most visitors first, at most kTopN each.
  std::vector<std::pair<std::string, int64_t>> top_pages;
  std::vector<std::pair<std::string, int64_t>> top_sources;
  std::vector<std::pair<std::string, int64_t>> top_countries;
};

inline constexpr int kTopN = 5;

// Runs the report's queries for `site` over `period` (and the period before).
absl::StatusOr<ReportData> ComputeReport(Engine& engine, const Site& site,
                                         Frequency frequency,
                                         const Period& period);

// "Weekly report for example.com: 2026-11-16 to 2026-11-22".
std::string ReportSubject(const ReportData& r);
std::string RenderReportText(const ReportData& r,
                             const std::string& unsubscribe_url);
std::string RenderReportHtml(const ReportData& r,
                             const std::string& unsubscribe_url);

// "1m 05s", "42s", "1h 02m".
std::string FormatDuration(int64_t seconds);
// "+12%", "-3%", "0%"; for bounce rate "+2 pts".
std::string FormatChange(int64_t change, bool points);
std::string HtmlEscape(std::string_view s);

}  // namespace analytics::jobs

#endif  // ANALYTICS_JOBS_REPORT_H_
