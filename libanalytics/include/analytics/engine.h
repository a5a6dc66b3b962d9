// Engine: the public entry point of libanalytics.
//
//   auto engine = analytics::Engine::Open({.store_url = "sqlite:///var/a.db"});
//   (*engine)->AddSite({.domain = "example.com", .timezone = "Europe/Berlin"});
//   analytics::EventInput e; e.site = "example.com"; e.url = "https://…"; …
//   absl::StatusOr<TrackResult> r = (*engine)->Track(e);
//   absl::StatusOr<std::string> json = (*engine)->Query(R"({"site_id": …})");
//
// Thread-safety: every method is safe to call from many threads at once.
// Durability: when Track/TrackBatch return OK for an event with
// TrackResult::accepted, that event is durable in the store (group commit:
// concurrent callers share one transaction).
#ifndef ANALYTICS_ENGINE_H_
#define ANALYTICS_ENGINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "analytics/clock.h"
#include "analytics/coordinator.h"
#include "analytics/event.h"
#include "analytics/store.h"

namespace analytics {

// Store meta key under which the engine keeps the admin token's SHA-256
// (hex); the dashboard ties its login sessions to it.
inline constexpr char kAdminTokenMetaKey[] = "admin_token_sha256";

struct Options {
  // "sqlite:///abs/path.db", "sqlite://rel/path.db" or "memory://".
  std::string store_url = "sqlite://./data/analytics.db";
  // Optional MaxMind-format country database (.mmdb).
  std::string geoip_path;
  // Not owned; RealClock() when null.
  Clock* clock = nullptr;
  // Track() of an event for an unknown site: NotFound unless this is set,
  // in which case the site is created with time zone UTC.
  bool auto_create_sites = false;
  // Idle time after which a visitor's next event starts a new session.
  absl::Duration session_timeout = absl::Minutes(30);
  // How often pending rollup deltas are checkpointed into the store, and the
  // number of pending events that forces a checkpoint sooner.
  absl::Duration checkpoint_interval = absl::Seconds(1);
  int64_t checkpoint_events = 200000;
  // Maximum events per group commit.
  int max_batch = 4096;
  // What workers sharing the store share besides it (analytics/coordinator.h):
  // "local://" (one process), "redis://host:port", "postgres://…".
  std::string coord_url = "local://";
  // This worker's number, unique among the workers sharing the store (a
  // coordinator lease "worker:N" enforces it). Events carry it; each worker
  // folds its own events into rollups (per-worker checkpoints).
  int32_t worker = 0;
  // Leader lease: one worker at a time runs the scheduled jobs. The lease is
  // renewed, and tried for by followers, every leader_lease / 5: a dead
  // leader is replaced at most leader_lease * 6 / 5 (12 s) after it died.
  absl::Duration leader_lease = absl::Seconds(10);
};

// Why an event was not stored although the request was well-formed.
struct TrackResult {
  bool accepted = false;
  std::string dropped_reason;  // "" when accepted, e.g. "bot:crawler"
};

struct BatchResult {
  int64_t accepted = 0;
  std::map<std::string, int64_t> dropped;  // reason -> count
  // Index in the batch and error, for events that failed validation.
  std::vector<std::pair<size_t, absl::Status>> rejected;
};

// Who a bearer token belongs to.
struct Principal {
  bool admin = false;   // the admin token: every site, management routes
  int64_t site_id = 0;  // for a site API key: the one site it may read
  int64_t key_id = 0;
};

// An API key as shown to users (never with its secret, except once at
// creation).
struct ApiKey {
  int64_t id = 0;
  std::string site;  // domain
  std::string name;
  std::string prefix;  // first characters of the secret
  int64_t created_ms = 0;
  bool revoked = false;
};

struct EngineStats {
  int64_t accepted = 0;
  std::map<std::string, int64_t> dropped;
  int64_t live_sessions = 0;
  int64_t pending_rollup_events = 0;
  int64_t commits = 0;
  int64_t queue_depth = 0;
  // Round trips to a shared coordinator for session state (sessionizing,
  // heartbeats, live counts); 0 with a local one. Events are sessionized
  // once per group commit, so under load this grows slower than `accepted`.
  int64_t coord_round_trips = 0;
  // Store commit latency histogram: counts[i] commits took at most
  // bounds_ms[i] (and more than bounds_ms[i-1]); counts.back() counts those
  // above the last bound. sum_ms is the total.
  std::vector<double> commit_latency_bounds_ms;
  std::vector<int64_t> commit_latency_counts;
  double commit_latency_sum_ms = 0;
};

class Engine {
 public:
  // Opens the coordinator and the store, runs the store's migrations,
  // rebuilds rollups past this worker's checkpoint from raw events, and
  // starts the committer. With a remote coordinator, takes the lease
  // "worker:<Options::worker>" first: FailedPrecondition naming the holder
  // when another live process has that worker number.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(const Options& options);

  virtual ~Engine() = default;

  // Validates, enriches, sessionizes and durably stores one event.
  // InvalidArgument names the bad field; NotFound for an unknown site;
  // Unavailable when the store or a remote coordinator failed (nothing
  // acknowledged; the engine recovers by itself once they answer again).
  virtual absl::StatusOr<TrackResult> Track(const EventInput& event) = 0;
  // The same for many events in one commit. Invalid events are reported in
  // BatchResult::rejected and do not fail the others; a store failure fails
  // the whole call.
  virtual absl::StatusOr<BatchResult> TrackBatch(
      absl::Span<const EventInput> events) = 0;
  // Pipelined TrackBatch for bulk loaders (log import): validates, enriches
  // and sessionizes `events` in the caller's thread, queues them for the
  // group commit and returns without waiting for it, so that the caller can
  // prepare its next batch meanwhile. `done` gets what TrackBatch would have
  // returned, once the events are durable (or failed); it runs on an engine
  // thread and must be quick. Batches submitted one after another by one
  // thread are sessionized and committed in that order. A non-OK return
  // means nothing was queued and `done` is not called. The caller bounds how
  // many batches it keeps in flight. The default runs TrackBatch.
  virtual absl::Status SubmitBatch(
      absl::Span<const EventInput> events,
      std::function<void(absl::StatusOr<BatchResult>)> done) {
    done(TrackBatch(events));
    return absl::OkStatus();
  }

  // Answers a Plausible Stats API v2 query body (JSON), returning the
  // response JSON ({"results":[…],"meta":{…},"query":{…}}).
  // `site_id` in the body is the site's domain (or short id).
  virtual absl::StatusOr<std::string> Query(std::string_view query_json) = 0;

  // Sites. AddSite validates the domain and time zone and assigns a short id
  // when none is given.
  virtual absl::StatusOr<Site> AddSite(const Site& site) = 0;
  virtual absl::StatusOr<std::vector<Site>> ListSites() = 0;
  virtual absl::StatusOr<Site> FindSite(
      std::string_view domain_or_short_id) = 0;
  virtual absl::Status RemoveSite(std::string_view domain) = 0;

  // Updates a site's time zone, allowed origins and retention_days (by
  // domain); `site` holds the complete new values.
  virtual absl::StatusOr<Site> UpdateSite(const Site& site) = 0;

  // Keeps a visitor "live" without recording an event (tracker heartbeats).
  // Uses site, ip, user_agent and ts of `event`. NotFound for an unknown site;
  // bots are ignored.
  virtual absl::Status Heartbeat(const EventInput& event) = 0;
  // Distinct visitors of the site with an event or heartbeat within `window`
  // before now.
  virtual absl::StatusOr<int64_t> LiveVisitors(
      std::string_view site, absl::Duration window = absl::Minutes(5)) = 0;

  // Admin token. EnsureAdminToken() creates one on first call for a store
  // (returns it, the only time it is shown) and returns nullopt when one
  // already exists; only its SHA-256 is stored. SetAdminToken replaces it.
  virtual absl::StatusOr<std::optional<std::string>> EnsureAdminToken() = 0;
  virtual absl::Status SetAdminToken(std::string_view token) = 0;

  // Site-scoped API keys. CreateApiKey returns the key and its secret (shown
  // once); only a hash is stored.
  virtual absl::StatusOr<std::pair<ApiKey, std::string>> CreateApiKey(
      std::string_view site, std::string_view name) = 0;
  virtual absl::StatusOr<std::vector<ApiKey>> ListApiKeys() = 0;
  virtual absl::Status RevokeApiKey(int64_t id) = 0;
  // Unauthenticated for a missing, unknown or revoked token. Comparison is
  // by hash lookup plus a constant-time check.
  virtual absl::StatusOr<Principal> Authenticate(std::string_view token) = 0;

  // Writes pending rollup deltas to the store.
  virtual absl::Status Flush() = 0;
  // Flushes and stops the committer; later calls fail with
  // FailedPrecondition. Idempotent; the destructor calls it.
  virtual absl::Status Close() = 0;

  virtual EngineStats Stats() = 0;
  virtual Store* store() = 0;

  // OK when the store and the coordinator answer (for /ready); Unavailable
  // naming which one does not (or that this process lost its worker lease).
  virtual absl::Status Ready() = 0;
  // Whether this worker holds the leader lease (always true with a local
  // coordinator). Scheduled jobs run only on the leader. The lease is taken
  // and renewed every leader_lease / 5 by a background thread; a leader that
  // Close()s releases it, one that dies loses it after leader_lease.
  virtual bool IsLeader() = 0;
  // This worker's holder name in leases and the job ledger:
  // "<hostname>:<pid>:<Options::worker>".
  virtual std::string WorkerName() = 0;
  // The coordinator opened from Options::coord_url (owned by the engine).
  virtual Coordinator* coordinator() = 0;
};

}  // namespace analytics

#endif  // ANALYTICS_ENGINE_H_
