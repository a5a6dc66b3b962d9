// Jobs: the scheduled work that must happen once per period across every
// worker sharing a store (issue #5): weekly and monthly email reports, traffic
// alerts, retention of raw events and the daily salt rotation, plus the
// management API for report subscriptions and alert rules.
//
// Exactly once: every unit of work is a row (job, site, period) of the job
// ledger (Store::ClaimJobRun). A run claims the row before it delivers
// (claimed -> sending -> done | failed), so a second worker, or a second
// leader after a lease change, finds the row taken and sends nothing. A claim
// whose holder died before "sending" goes stale after the leader lease and is
// taken over; a failed delivery is retried with exponential backoff up to
// max_attempts. What remains is an at-most-once window: a worker that dies
// after the SMTP server accepted the message but before the row says "done"
// leaves it in "sending", which is never retried (see docs/JOBS.md).
//
// Scheduling: Start() runs Tick() every `tick` on a thread; Tick() does
// nothing unless Engine::IsLeader(). Figures come from Engine::Query, so a
// report equals what the Stats API answers.
//
// Thread-safety: every method may be called from any thread.
#ifndef ANALYTICS_JOBS_JOBS_H_
#define ANALYTICS_JOBS_JOBS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/clock.h"
#include "analytics/engine.h"
#include "libanalytics/jobs/delivery.h"

namespace analytics::jobs {

struct JobsOptions {
  SmtpOptions smtp;
  // Base of links in emails (unsubscribe), e.g. https://stats.example.com.
  std::string public_url;
  // How often the leader looks for due work.
  absl::Duration tick = absl::Seconds(30);
  // A claimed row older than this belongs to a worker presumed dead (use the
  // engine's leader lease).
  absl::Duration stale_after = absl::Seconds(15);
  // Failed deliveries are retried after retry_base * 2^(attempts - 1)
  // (capped at one hour), at most max_attempts times in all.
  absl::Duration retry_base = absl::Seconds(60);
  int max_attempts = 5;
  absl::Duration webhook_timeout = absl::Seconds(10);
  // Tests only: sleep between claiming a row and marking it "sending" (to
  // kill a worker in that window).
  absl::Duration pause_after_claim = absl::ZeroDuration();
  Clock* clock = nullptr;  // not owned; RealClock() when null
};

class Jobs {
 public:
  // `engine` must outlive the Jobs.
  static absl::StatusOr<std::unique_ptr<Jobs>> Create(Engine& engine,
                                                      JobsOptions options);
  virtual ~Jobs() = default;

  // Starts / stops the scheduler thread. Stop() waits for a running tick.
  virtual void Start() = 0;
  virtual void Stop() = 0;
  // One scheduler pass: due reports (the most recent complete period, so a
  // period missed during downtime is caught up), alerts, retention, salt
  // rotation, then retries of failed and stale rows. No-op unless leader.
  virtual absl::Status Tick() = 0;

  // Management API: JSON bodies in, JSON out; InvalidArgument names the
  // field. `site` filters lists by domain ("" = all).
  virtual absl::StatusOr<std::string> CreateReport(std::string_view body) = 0;
  virtual absl::StatusOr<std::string> ListReports(std::string_view site) = 0;
  virtual absl::StatusOr<std::string> UpdateReport(int64_t id,
                                                   std::string_view body) = 0;
  virtual absl::Status DeleteReport(int64_t id) = 0;
  virtual absl::StatusOr<std::string> CreateAlert(std::string_view body) = 0;
  virtual absl::StatusOr<std::string> ListAlerts(std::string_view site) = 0;
  virtual absl::StatusOr<std::string> UpdateAlert(int64_t id,
                                                  std::string_view body) = 0;
  virtual absl::Status DeleteAlert(int64_t id) = 0;
  // Ledger rows, newest first: [{"job","site_id","period","state",…}].
  virtual absl::StatusOr<std::string> ListRuns(std::string_view job,
                                               int64_t limit) = 0;
  // Runs a job now, on this worker, through the ledger like the scheduler:
  // "reports", "report:ID", "alerts", "alert:ID", "retention", "salts".
  // Body: "" or {"period": "2026-W47" | "2026-11" | "2026-11-28"}.
  // Returns {"runs":[…]}, each row with "ran": whether this call did it.
  virtual absl::StatusOr<std::string> RunNow(std::string_view name,
                                             std::string_view body) = 0;
  // "Erase all data of this site": flushes pending rollups, then deletes
  // every raw event and rollup of the site (the site, its keys and its
  // configuration stay). Returns {"erased":true,"site":DOMAIN}.
  virtual absl::StatusOr<std::string> EraseSite(std::string_view domain) = 0;
  // Deletes the subscription with this unsubscribe token (NotFound if none).
  virtual absl::Status Unsubscribe(std::string_view token) = 0;

  // Prometheus text: runs, deliveries, retries by job kind and outcome.
  virtual std::string RenderMetrics() = 0;
};

}  // namespace analytics::jobs

#endif  // ANALYTICS_JOBS_JOBS_H_
