// Store: the seam for durable analytics data.
//
// A Store keeps sites, daily salts, raw events, rollups and their checkpoint.
// Implementations: SQLite (default, WAL), in-memory (tests and embedding), and
// later PostgreSQL and Redis. The engine chooses one by URL through OpenStore()
// and never includes a backend's header.
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
  // Replaces timezone and allowed_origins of the site with site.id
  // (NotFound if absent).
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
  // Calls fn for every event with seq > after_seq, in seq order.
  virtual absl::Status ScanEventsAfter(
      int64_t after_seq, const std::function<bool(const Event&)>& fn) = 0;

  // Merges the deltas into stored rollups (metrics added, sketches merged) and
  // sets the checkpoint, in one durable transaction.
  virtual absl::Status ApplyRollups(absl::Span<const RollupRow> deltas,
                                    int64_t checkpoint_seq) = 0;
  // The seq up to which events are reflected in stored rollups (0: none).
  virtual absl::StatusOr<int64_t> RollupCheckpoint() = 0;
  // Calls fn for stored cells with the given site and level, bucket in
  // [from_bucket, to_bucket), and dim in dims.
  virtual absl::Status ScanRollups(
      int64_t site_id, RollupLevel level, int64_t from_bucket,
      int64_t to_bucket, absl::Span<const std::string> dims,
      const std::function<void(const RollupRow&)>& fn) = 0;
  // Deletes all rollups and resets the checkpoint to 0 (for a rebuild).
  virtual absl::Status ClearRollups() = 0;
};

// Opens a store by URL: "memory://", "sqlite:///abs/path.db",
// "sqlite://relative/path.db". InvalidArgument for an unknown scheme.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url);

}  // namespace analytics

#endif  // ANALYTICS_STORE_H_
