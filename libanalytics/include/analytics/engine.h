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
#include "analytics/event.h"
#include "analytics/store.h"

namespace analytics {

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

struct EngineStats {
  int64_t accepted = 0;
  std::map<std::string, int64_t> dropped;
  int64_t live_sessions = 0;
  int64_t pending_rollup_events = 0;
  int64_t commits = 0;
  int64_t queue_depth = 0;
};

class Engine {
 public:
  // Opens the store, runs its migrations, rebuilds rollups past the last
  // checkpoint from raw events, and starts the committer.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(const Options& options);

  virtual ~Engine() = default;

  // Validates, enriches, sessionizes and durably stores one event.
  // InvalidArgument names the bad field; NotFound for an unknown site;
  // Unavailable when the store failed (nothing acknowledged).
  virtual absl::StatusOr<TrackResult> Track(const EventInput& event) = 0;
  // The same for many events in one commit. Invalid events are reported in
  // BatchResult::rejected and do not fail the others; a store failure fails
  // the whole call.
  virtual absl::StatusOr<BatchResult> TrackBatch(
      absl::Span<const EventInput> events) = 0;

  // Answers a Plausible Stats API v2 query body (JSON), returning the
  // response JSON ({"results":[…],"meta":{…},"query":{…}}).
  // `site_id` in the body is the site's domain (or short id).
  virtual absl::StatusOr<std::string> Query(std::string_view query_json) = 0;

  // Sites. AddSite validates the domain and time zone and assigns a short id
  // when none is given.
  virtual absl::StatusOr<Site> AddSite(const Site& site) = 0;
  virtual absl::StatusOr<std::vector<Site>> ListSites() = 0;
  virtual absl::StatusOr<Site> FindSite(std::string_view domain_or_short_id) = 0;
  virtual absl::Status RemoveSite(std::string_view domain) = 0;

  // Writes pending rollup deltas to the store.
  virtual absl::Status Flush() = 0;
  // Flushes and stops the committer; later calls fail with
  // FailedPrecondition. Idempotent; the destructor calls it.
  virtual absl::Status Close() = 0;

  virtual EngineStats Stats() = 0;
  virtual Store* store() = 0;
};

}  // namespace analytics

#endif  // ANALYTICS_ENGINE_H_
