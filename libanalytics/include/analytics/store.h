// Store: the seam for durable analytics data.
//
// A Store keeps sites, API keys, daily salts, raw events, rollups and their
// per-worker checkpoints, configuration documents and the job ledger.
// Implementations: SQLite (default, WAL), in-memory (tests and embedding),
// PostgreSQL and Redis. The engine chooses one by URL through OpenStore() and
// never includes a backend's header. Several workers (processes) may share
// one SQLite file, PostgreSQL database or Redis database.
//
// Thread-safety: every method may be called from any thread; implementations
// serialize internally as they need. AppendEvents() is called from the
// engine's single committer thread, so it need not be fast under contention,
// only fast per batch (one transaction per call).
//
// Durability: when AppendEvents() or ApplyRollups() returns OK, what it wrote
// survives a crash of the process (kill -9).
#ifndef ANALYTICS_STORE_H_
#define ANALYTICS_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "analytics/event.h"

namespace analytics {

struct Site {
  int64_t id = 0;
  std::string domain;            // "example.com"
  std::string short_id;          // 12 chars of [a-zA-Z0-9-], used by trackers
  std::string timezone = "UTC";  // IANA zone for day buckets
  int64_t created_ms = 0;
  // Origins allowed to send events from browsers, comma-separated
  // ("https://example.com,https://www.example.com"); "" allows any.
  std::string allowed_origins;
  // Raw events older than this many days are deleted by the retention job
  // (rollups stay); 0 keeps them forever.
  int32_t retention_days = 0;
};

// An API key as stored: only a hash of the secret is kept.
struct ApiKeyRecord {
  int64_t id = 0;
  int64_t site_id = 0;      // the one site this key may read
  std::string name;         // label given by the admin
  std::string prefix;       // first characters of the secret, for display
  std::string secret_hash;  // SHA-256 of the secret, hex
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;  // 0 = active
};

// Rollup granularity. Hour buckets start on UTC hours; day buckets start at
// local midnight in the site's time zone.
enum class RollupLevel : int { kHour = 0, kDay = 1 };

struct RollupMetrics {
  int64_t pageviews = 0;
  int64_t events = 0;
  int64_t visits = 0;
  int64_t bounces = 0;
  int64_t duration_ms = 0;
  int64_t session_pageviews = 0;
  bool operator==(const RollupMetrics&) const = default;
  // Adds every metric of `d` (merging cells, applying deltas).
  RollupMetrics& operator+=(const RollupMetrics& d) {
    pageviews += d.pageviews;
    events += d.events;
    visits += d.visits;
    bounces += d.bounces;
    duration_ms += d.duration_ms;
    session_pageviews += d.session_pageviews;
    return *this;
  }
};

// One cell of a rollup: (site, level, bucket, dimension, value) -> metrics and
// a serialized unique-visitor sketch (sketch/hll.h format).
struct RollupRow {
  int64_t site_id = 0;
  RollupLevel level = RollupLevel::kHour;
  int64_t bucket = 0;  // unix seconds of the bucket's start
  std::string dim;     // "" for totals, else e.g. "event:page", "visit:source"
  std::string value;
  RollupMetrics m;
  std::string visitors;  // serialized HyperLogLog
};

// A configuration document (see Store::AddConfigDoc).
struct ConfigDoc {
  int64_t id = 0;
  std::string kind;     // "goal", "funnel", "report", "alert", "share", …
  int64_t site_id = 0;  // 0: not tied to one site
  std::string json;     // the document, a JSON object
  int64_t updated_ms = 0;
};

// A row of the job ledger (see Store::ClaimJobRun).
struct JobRun {
  std::string job;  // e.g. "report:weekly", "alert:42", "retention"
  int64_t site_id = 0;
  std::string period;  // e.g. "2026-W48", "2026-11-28T14"
  std::string state;   // "claimed", "sending", "done", "failed"
  std::string holder;  // the worker that claimed it
  int32_t attempts = 0;
  int64_t updated_ms = 0;
  std::string error;  // last delivery error, "" when none
};

struct EventScan {
  int64_t site_id = 0;
  int64_t from_ms = 0;  // inclusive
  int64_t to_ms = 0;    // exclusive
  // Also return events whose session_start_ms is in [from_ms, to_ms), even
  // when their ts_ms is outside (needed for session metrics).
  bool include_session_starts = false;
};

class Store {
 public:
  virtual ~Store() = default;

  // Sites. AddSite assigns id (and created_ms when 0); AlreadyExists when the
  // domain or short_id is taken. RemoveSite deletes the site and all its data.
  virtual absl::StatusOr<Site> AddSite(const Site& site) = 0;
  virtual absl::StatusOr<std::vector<Site>> ListSites() = 0;
  virtual absl::Status RemoveSite(int64_t site_id) = 0;
  // Replaces timezone, allowed_origins and retention_days of the site with
  // site.id (NotFound if absent).
  virtual absl::Status UpdateSite(const Site& site) = 0;

  // API keys. AddApiKey assigns id. RevokeApiKey sets revoked_ms (NotFound
  // if absent). FindApiKeyByHash returns NotFound for an unknown hash.
  // RemoveSite also removes the site's keys.
  virtual absl::StatusOr<ApiKeyRecord> AddApiKey(const ApiKeyRecord& key) = 0;
  virtual absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() = 0;
  virtual absl::Status RevokeApiKey(int64_t id, int64_t revoked_ms) = 0;
  virtual absl::StatusOr<ApiKeyRecord> FindApiKeyByHash(
      std::string_view secret_hash) = 0;

  // Small named settings (e.g. the admin token's hash). PutMetaIfAbsent
  // returns the value stored after the call.
  virtual absl::StatusOr<std::optional<std::string>> GetMeta(
      std::string_view key) = 0;
  virtual absl::StatusOr<std::string> PutMetaIfAbsent(std::string_view key,
                                                      std::string value) = 0;
  virtual absl::Status PutMeta(std::string_view key, std::string value) = 0;

  // Salts by UTC day number (days since epoch). PutSaltIfAbsent returns the
  // salt that is stored after the call (another worker's may win).
  virtual absl::StatusOr<std::optional<std::string>> GetSalt(int64_t day) = 0;
  virtual absl::StatusOr<std::string> PutSaltIfAbsent(int64_t day,
                                                      std::string salt) = 0;
  virtual absl::Status DeleteSaltsBefore(int64_t day) = 0;

  // Appends events in one durable transaction and sets each event's seq.
  virtual absl::Status AppendEvents(absl::Span<Event> events) = 0;
  // Calls fn for matching events in (ts_ms, seq) order; fn returns false to
  // stop early.
  virtual absl::Status ScanEvents(
      const EventScan& scan, const std::function<bool(const Event&)>& fn) = 0;
  // Calls fn for every event ingested by `worker` (Event::worker) with
  // seq > after_seq, in seq order; fn returns false to stop early.
  virtual absl::Status ScanEventsAfter(
      int64_t after_seq, int32_t worker,
      const std::function<bool(const Event&)>& fn) = 0;

  // Rollup checkpoints are kept per worker: each worker folds the events it
  // appended itself, so workers sharing one store never fold an event twice
  // or skip one. ApplyRollups merges the deltas into stored rollups (metrics
  // added, sketches merged) and sets `worker`'s checkpoint, in one durable
  // transaction. Other workers' checkpoints are left alone.
  virtual absl::Status ApplyRollups(absl::Span<const RollupRow> deltas,
                                    int32_t worker, int64_t checkpoint_seq) = 0;
  // The seq up to which `worker`'s events are reflected in stored rollups
  // (0: none).
  virtual absl::StatusOr<int64_t> RollupCheckpoint(int32_t worker) = 0;
  // Every worker that has a checkpoint, with it, in worker order (for
  // adopting the unfolded events of a worker that is gone).
  virtual absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>>
  ListRollupCheckpoints() = 0;
  // Calls fn for stored cells with the given site and level, bucket in
  // [from_bucket, to_bucket), and dim in dims.
  virtual absl::Status ScanRollups(
      int64_t site_id, RollupLevel level, int64_t from_bucket,
      int64_t to_bucket, absl::Span<const std::string> dims,
      const std::function<void(const RollupRow&)>& fn) = 0;
  // Deletes all rollups and resets every checkpoint to 0 (for a rebuild).
  virtual absl::Status ClearRollups() = 0;

  // Retention: deletes the site's raw events with ts_ms < before_ms (rollups
  // stay) and returns how many were deleted.
  virtual absl::StatusOr<int64_t> DeleteEventsBefore(int64_t site_id,
                                                     int64_t before_ms) = 0;
  // Deletes every event and rollup of the site, keeping the site, its keys,
  // its configuration documents and the rollup checkpoints. NotFound if there
  // is no such site.
  virtual absl::Status EraseSiteData(int64_t site_id) = 0;

  // Configuration documents: small JSON objects by kind ("goal", "funnel",
  // "report", "alert", "share", …) and site, managed by the engine, the
  // server and the jobs. AddConfigDoc assigns id and updated_ms (when 0);
  // InvalidArgument unless kind is 1..64 bytes and json a JSON object,
  // NotFound when site_id is not 0 and names no site. UpdateConfigDoc
  // replaces json and updated_ms (now when 0) of the doc with doc.id
  // (NotFound if absent); kind and site_id stay. ListConfigDocs: kind ""
  // lists every kind, site_id 0 every site's (and those of no site), in id
  // order. DeleteConfigDoc: NotFound if absent. RemoveSite also removes the
  // site's documents.
  virtual absl::StatusOr<ConfigDoc> AddConfigDoc(const ConfigDoc& doc) = 0;
  virtual absl::StatusOr<std::vector<ConfigDoc>> ListConfigDocs(
      std::string_view kind, int64_t site_id) = 0;
  virtual absl::Status UpdateConfigDoc(const ConfigDoc& doc) = 0;
  virtual absl::Status DeleteConfigDoc(int64_t id) = 0;

  // Job ledger: one row per (job, site_id, period), so that a scheduled job
  // runs exactly once per period across workers and leader changes.
  // ClaimJobRun inserts `want` in state "claimed" (attempts 1) when no row
  // exists, or takes the row over for want.holder (attempts + 1, state
  // "claimed") when its state is "claimed" or "failed" and its updated_ms <
  // stale_before_ms; it returns the row as stored after the call, so the
  // caller holds the claim iff row.holder == want.holder && row.state ==
  // "claimed" && the row was written by this call (updated_ms ==
  // want.updated_ms). UpdateJobRun sets state, error, attempts and
  // updated_ms when run.holder still holds the row (FailedPrecondition
  // otherwise, also when the row does not exist). Both are atomic across
  // workers and processes sharing the store. A takeover keeps the row's
  // error. InvalidArgument when want.job or want.holder is empty.
  virtual absl::StatusOr<JobRun> ClaimJobRun(const JobRun& want,
                                             int64_t stale_before_ms) = 0;
  virtual absl::Status UpdateJobRun(const JobRun& run) = 0;
  // Rows of `job` ("" = every job) newest first (by updated_ms), at most
  // `limit` (<= 0: all).
  virtual absl::StatusOr<std::vector<JobRun>> ListJobRuns(std::string_view job,
                                                          int64_t limit) = 0;
};

// Opens a store by URL: "memory://", "sqlite:///abs/path.db",
// "sqlite://relative/path.db", "postgres://…" (or "postgresql://…"),
// "redis://…". InvalidArgument for an unknown scheme.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url);

}  // namespace analytics

#endif  // ANALYTICS_STORE_H_
