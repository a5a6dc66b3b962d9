// The job ledger protocol: how one unit of work (job, site, period) is run at
// most once and, barring the window documented in docs/JOBS.md, exactly once
// across workers: claim -> (prepare) -> "sending" (fenced) -> deliver ->
// "done" | "failed", with takeover of stale claims and backoff for failed
// rows. Plus the counters the jobs export to /metrics.
//
// Thread-safety: every method may be called from any thread.
#ifndef ANALYTICS_JOBS_LEDGER_H_
#define ANALYTICS_JOBS_LEDGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "analytics/clock.h"
#include "analytics/store.h"

namespace analytics::jobs {

inline constexpr char kClaimed[] = "claimed";
inline constexpr char kSending[] = "sending";
inline constexpr char kDone[] = "done";
inline constexpr char kFailed[] = "failed";

// Prometheus counters of the jobs.
class JobMetrics {
 public:
  // outcome: "done", "failed", "skipped" (another worker held the claim).
  void Run(const std::string& kind, const char* outcome);
  // channel: "email", "webhook". Returns s.
  absl::Status Delivery(const char* channel, absl::Status s);
  void Retry(const std::string& kind);
  void RetentionDeleted(int64_t n);
  void SetLeader(bool leader);
  std::string Render();

 private:
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, int64_t> runs_
      ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, int64_t> deliveries_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> retries_ ABSL_GUARDED_BY(mu_);
  int64_t retention_deleted_ ABSL_GUARDED_BY(mu_) = 0;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
};

// What one Execute did.
struct RunOutcome {
  JobRun row;        // the ledger row after the call
  bool ran = false;  // this call held the claim and did the work
  std::string note;  // e.g. "sent to …", "deleted 3 raw events"
};

struct LedgerOptions {
  absl::Duration stale_after = absl::Seconds(15);
  absl::Duration retry_base = absl::Seconds(60);
  int max_attempts = 5;
  absl::Duration pause_after_claim = absl::ZeroDuration();  // tests only
};

class Ledger {
 public:
  // `holder` is this worker's name (Engine::WorkerName()), asked per run.
  Ledger(Store& store, Clock* clock, std::function<std::string()> holder,
         LedgerOptions options, JobMetrics* metrics)
      : store_(store),
        clock_(clock),
        holder_(std::move(holder)),
        options_(options),
        metrics_(metrics) {}

  // Claims (job, site_id, period) unless it is done, sending, held by a
  // live worker, failed within its backoff, or out of attempts; then runs
  // `prepare` (nothing sent yet; its failure fails the row), marks the row
  // "sending" (only while still held), runs `work` (the delivery, which
  // returns its error) and records done/failed.
  absl::StatusOr<RunOutcome> Execute(
      const std::string& job, int64_t site_id, const std::string& period,
      const std::function<absl::Status(std::string* note)>& work,
      const std::function<absl::Status()>& prepare = nullptr);

  // Whether a row should be retried now (claimed and stale, or failed past
  // its backoff with attempts left).
  bool DueForRetry(const JobRun& row, int64_t now_ms) const;

  absl::StatusOr<std::optional<JobRun>> Find(const std::string& job,
                                             int64_t site_id,
                                             const std::string& period);

  // retry_base * 2^(attempts - 1), capped at one hour.
  int64_t BackoffMs(int32_t attempts) const;

 private:
  Store& store_;
  Clock* clock_;
  std::function<std::string()> holder_;
  const LedgerOptions options_;
  JobMetrics* metrics_;
  absl::Mutex inflight_mu_;
  std::set<std::tuple<std::string, int64_t, std::string>> inflight_
      ABSL_GUARDED_BY(inflight_mu_);
};

}  // namespace analytics::jobs

#endif  // ANALYTICS_JOBS_LEDGER_H_
