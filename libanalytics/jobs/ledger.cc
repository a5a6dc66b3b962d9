// The job ledger protocol and the jobs' counters; see ledger.h.
#include "libanalytics/jobs/ledger.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace analytics::jobs {
namespace {

std::string JobKind(std::string_view job) {
  return std::string(job.substr(0, job.find(':')));
}

}  // namespace

void JobMetrics::Run(const std::string& kind, const char* outcome) {
  absl::MutexLock l(&mu_);
  ++runs_[{kind, outcome}];
}

absl::Status JobMetrics::Delivery(const char* channel, absl::Status s) {
  absl::MutexLock l(&mu_);
  ++deliveries_[{channel, s.ok() ? "ok" : "error"}];
  return s;
}

void JobMetrics::Retry(const std::string& kind) {
  absl::MutexLock l(&mu_);
  ++retries_[kind];
}

void JobMetrics::RetentionDeleted(int64_t n) {
  absl::MutexLock l(&mu_);
  retention_deleted_ += n;
}

void JobMetrics::SetLeader(bool leader) {
  absl::MutexLock l(&mu_);
  leader_ = leader;
}

std::string JobMetrics::Render() {
  std::string out;
  absl::MutexLock l(&mu_);
  absl::StrAppend(
      &out,
      "# HELP analytics_job_runs_total Job ledger runs by job kind and "
      "outcome (skipped: another worker held the claim).\n"
      "# TYPE analytics_job_runs_total counter\n");
  for (const auto& [k, n] : runs_) {
    absl::StrAppend(&out, "analytics_job_runs_total{job=\"", k.first,
                    "\",outcome=\"", k.second, "\"} ", n, "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP analytics_job_deliveries_total Deliveries by channel and "
      "outcome.\n# TYPE analytics_job_deliveries_total counter\n");
  for (const auto& [k, n] : deliveries_) {
    absl::StrAppend(&out, "analytics_job_deliveries_total{channel=\"", k.first,
                    "\",outcome=\"", k.second, "\"} ", n, "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP analytics_job_retries_total Runs that took over a failed or "
      "stale ledger row.\n# TYPE analytics_job_retries_total counter\n");
  for (const auto& [k, n] : retries_) {
    absl::StrAppend(&out, "analytics_job_retries_total{job=\"", k, "\"} ", n,
                    "\n");
  }
  absl::StrAppend(
      &out,
      "# HELP analytics_retention_deleted_events_total Raw events deleted "
      "by retention.\n# TYPE analytics_retention_deleted_events_total "
      "counter\nanalytics_retention_deleted_events_total ",
      retention_deleted_,
      "\n# HELP analytics_jobs_leader Whether this worker ran the scheduled "
      "jobs at its last tick.\n# TYPE analytics_jobs_leader gauge\n"
      "analytics_jobs_leader ",
      leader_ ? 1 : 0, "\n");
  return out;
}

absl::StatusOr<RunOutcome> Ledger::Execute(
    const std::string& job, int64_t site_id, const std::string& period,
    const std::function<absl::Status(std::string* note)>& work,
    const std::function<absl::Status()>& prepare) {
  const std::string kind = JobKind(job);
  const std::string holder = holder_();
  const auto key = std::make_tuple(job, site_id, period);
  {
    // Two threads of this worker (the scheduler and a manual run) share one
    // holder name: only one may try the row at a time.
    absl::MutexLock l(&inflight_mu_);
    if (!inflight_.insert(key).second) {
      RunOutcome o;
      o.row = JobRun{job, site_id, period, "running", holder};
      o.note = "already running on this worker";
      metrics_->Run(kind, "skipped");
      return o;
    }
  }
  struct Release {
    Ledger* self;
    std::tuple<std::string, int64_t, std::string> key;
    ~Release() {
      absl::MutexLock l(&self->inflight_mu_);
      self->inflight_.erase(key);
    }
  } release{this, key};

  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  absl::StatusOr<std::optional<JobRun>> existing = Find(job, site_id, period);
  if (!existing.ok()) return existing.status();
  int64_t stale_before =
      now_ms - absl::ToInt64Milliseconds(options_.stale_after);
  if (existing->has_value()) {
    const JobRun& r = **existing;
    const bool finished =
        r.state == kDone || r.state == kSending ||
        (r.state == kFailed && r.attempts >= options_.max_attempts);
    if (finished) return RunOutcome{r, false, ""};
    if (r.state == kFailed) stale_before = now_ms - BackoffMs(r.attempts);
  }
  JobRun want;
  want.job = job;
  want.site_id = site_id;
  want.period = period;
  want.state = kClaimed;
  want.holder = holder;
  want.updated_ms = now_ms;
  absl::StatusOr<JobRun> row = store_.ClaimJobRun(want, stale_before);
  if (!row.ok()) return row.status();
  const bool held = row->holder == want.holder && row->state == kClaimed &&
                    row->updated_ms == want.updated_ms;
  if (!held) {
    metrics_->Run(kind, "skipped");
    return RunOutcome{*row, false, ""};
  }
  if (row->attempts > 1) metrics_->Retry(kind);
  // Work that sends nothing (computing a report) happens while the row is
  // "claimed": a crash here leaves a claim that is taken over, not lost.
  if (prepare) {
    if (absl::Status s = prepare(); !s.ok()) {
      JobRun failed = *row;
      failed.state = kFailed;
      failed.error = std::string(s.message());
      failed.updated_ms = absl::ToUnixMillis(clock_->Now());
      metrics_->Run(kind, "failed");
      absl::Status recorded = store_.UpdateJobRun(failed);
      if (!recorded.ok()) return recorded;
      return RunOutcome{failed, true, ""};
    }
  }
  if (options_.pause_after_claim > absl::ZeroDuration()) {
    absl::SleepFor(options_.pause_after_claim);
  }
  // Fence: "sending" is written only while we still hold the row; a worker
  // that lost it to a takeover (paused past the lease) stops here.
  JobRun run = *row;
  run.state = kSending;
  run.updated_ms = absl::ToUnixMillis(clock_->Now());
  if (absl::Status s = store_.UpdateJobRun(run); !s.ok()) {
    metrics_->Run(kind, "skipped");
    absl::StatusOr<std::optional<JobRun>> now_row = Find(job, site_id, period);
    RunOutcome o{run, false, std::string(s.message())};
    if (now_row.ok() && now_row->has_value()) o.row = **now_row;
    return o;
  }
  std::string note;
  absl::Status result = work(&note);
  run.state = result.ok() ? kDone : kFailed;
  run.error = result.ok() ? "" : std::string(result.message());
  run.updated_ms = absl::ToUnixMillis(clock_->Now());
  absl::Status recorded = store_.UpdateJobRun(run);
  metrics_->Run(kind, result.ok() ? "done" : "failed");
  if (!recorded.ok()) return recorded;
  return RunOutcome{run, true, note};
}

bool Ledger::DueForRetry(const JobRun& r, int64_t now_ms) const {
  if (r.state == kClaimed) {
    return r.updated_ms <
           now_ms - absl::ToInt64Milliseconds(options_.stale_after);
  }
  return r.state == kFailed && r.attempts < options_.max_attempts &&
         r.updated_ms < now_ms - BackoffMs(r.attempts);
}

absl::StatusOr<std::optional<JobRun>> Ledger::Find(const std::string& job,
                                                   int64_t site_id,
                                                   const std::string& period) {
  absl::StatusOr<std::vector<JobRun>> rows = store_.ListJobRuns(job, 0);
  if (!rows.ok()) return rows.status();
  for (const JobRun& r : *rows) {
    if (r.site_id == site_id && r.period == period) return r;
  }
  return std::nullopt;
}

int64_t Ledger::BackoffMs(int32_t attempts) const {
  int64_t ms = absl::ToInt64Milliseconds(options_.retry_base);
  for (int i = 1; i < attempts && ms < 3600000; ++i) ms *= 2;
  return std::min<int64_t>(ms, 3600000);
}

}  // namespace analytics::jobs
