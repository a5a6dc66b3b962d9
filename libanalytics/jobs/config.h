// Report subscriptions and alert rules: their JSON as the management API
// takes it, as stored in configuration documents (Store::AddConfigDoc, kinds
// "report" and "alert"), and validation that names the bad field.
#ifndef ANALYTICS_JOBS_CONFIG_H_
#define ANALYTICS_JOBS_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "analytics/store.h"
#include "libanalytics/jobs/periods.h"

namespace analytics::jobs {

inline constexpr char kReportKind[] = "report";
inline constexpr char kAlertKind[] = "alert";

// One recipient's email report for one site.
struct ReportSub {
  int64_t id = 0;
  int64_t site_id = 0;
  std::string email;
  Frequency frequency = Frequency::kWeekly;
  std::string token;       // unsubscribe token (32 random bytes, hex)
  int64_t created_ms = 0;  // periods that ended before this are not sent
  bool enabled = true;
};

// What an alert rule watches over the last hour.
enum class AlertMetric { kVisitors, kEvents, kErrors };
// above/below: the value against `threshold`; spike/drop: the value against
// the mean of the same hour on the previous `baseline_days` days, by
// `threshold` percent.
enum class AlertCondition { kAbove, kBelow, kSpike, kDrop };

struct AlertRule {
  int64_t id = 0;
  int64_t site_id = 0;
  std::string name;
  AlertMetric metric = AlertMetric::kVisitors;
  std::string event;  // the custom event name, for kEvents
  AlertCondition condition = AlertCondition::kAbove;
  double threshold = 0;
  std::string webhook_url;  // Slack/Discord-compatible; "" for none
  std::string email;        // "" for none
  int64_t cooldown_minutes = 60;
  int64_t baseline_days = 7;
  int64_t created_ms = 0;
  bool enabled = true;
};

std::string_view AlertMetricName(AlertMetric m);
std::string_view AlertConditionName(AlertCondition c);

// Parses a management API body into a subscription/rule. `base` supplies
// the values of fields the body leaves out (an update); site_id, id, token
// and created_ms are the caller's. InvalidArgument names the field.
absl::StatusOr<ReportSub> ReportFromApi(std::string_view body,
                                        const ReportSub& base);
absl::StatusOr<AlertRule> AlertFromApi(std::string_view body,
                                       const AlertRule& base);

// Stored form <-> struct.
std::string ReportToDocJson(const ReportSub& r);
absl::StatusOr<ReportSub> ReportFromDoc(const ConfigDoc& doc);
std::string AlertToDocJson(const AlertRule& a);
absl::StatusOr<AlertRule> AlertFromDoc(const ConfigDoc& doc);

// The management API's view (no token).
std::string ReportToApiJson(const ReportSub& r, std::string_view site_domain);
std::string AlertToApiJson(const AlertRule& a, std::string_view site_domain);

// Whether s looks like one email address (no display name, no spaces).
bool ValidEmail(std::string_view s);

}  // namespace analytics::jobs

#endif  // ANALYTICS_JOBS_CONFIG_H_
