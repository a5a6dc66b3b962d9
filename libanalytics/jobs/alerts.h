// Alert evaluation: the value of a rule's metric over the last hour (and its
// baseline) through Engine::Query, whether the rule fires, and the message
// and the Slack/Discord-compatible webhook body.
#ifndef ANALYTICS_JOBS_ALERTS_H_
#define ANALYTICS_JOBS_ALERTS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "libanalytics/jobs/config.h"

namespace analytics::jobs {

struct AlertEval {
  bool fire = false;
  int64_t value = 0;    // over [now - 1h, now)
  double baseline = 0;  // spike/drop: mean of the same hour on past days
  std::string message;  // one line, for humans
};

absl::StatusOr<AlertEval> EvaluateAlert(Engine& engine, const Site& site,
                                        const AlertRule& rule, absl::Time now);

// {"text": message, "content": message}: Slack reads "text", Discord
// "content".
std::string WebhookBody(const std::string& message);

}  // namespace analytics::jobs

#endif  // ANALYTICS_JOBS_ALERTS_H_
