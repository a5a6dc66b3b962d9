// Funnel segments: an in-memory, compact copy of the events funnels and goals
// read, so that a funnel or a goal query over millions of events never
// rescans the store.
//
// Also owns: the goal answers from the segments (CachedGoalRows: the
// event:goal breakdown, goal filters, has_done sets), and their backfill
// (WarmFunnelSegmentsStep, SegmentWarmer: one day per step, resumable).
//
// Owns: one cache per Store instance (and database: a token kept in the
// store's meta table tells a fresh database at a reused address apart), with
// per (site, UTC day) segments of the site's non-engagement events as rows of
// (ts within the day, seq, step key, session): 20 bytes an event. A step key
// interns an event's name, page, hostname and props, so a query matches each
// distinct key once against its steps and then walks the rows with a table
// look-up per event.
//
// Consistency: a missing day is built with one Store::ScanEvents over the whole
// day; after that, every query first catches up with Store::ScanEventsAfter
// from a per-worker watermark (events appended since, of any day, are merged
// into the cached days, duplicates dropped by (ts, seq)). A worker first seen
// after the cache was made is caught up from the highest seq seen when the
// cache was made. Deletions (retention, erase, site removal; by any process
// sharing the store) always remove the site's earliest events, so each query
// also looks up the site's earliest cached event (a one-millisecond scan) and
// drops the site's segments when it is gone. InvalidateFunnelCache drops them
// at once. Cost of the catch-up: one ListRollupCheckpoints and one
// ScanEventsAfter per worker; on SQLite (no index on worker) the latter reads
// the rows appended after that worker's last event, which grows while a
// worker sharing the file is idle.
//
// Memory: the registry keeps the caches of the 4 most recently used stores.
//
// Filters compose: a session takes part when any of its events in the range
// matches. Segments keep each event's name, page, hostname and props (in its
// step key) and each session's visit attributes (source, UTM, entry page,
// country, browser, …, fixed at the session's first event; a session whose
// events disagree is marked and answered by the raw scan), and resolved
// has_done / has_not_done sets test the visitor id. A filter on
// visit:exit_page is answered by the raw scan. A cache stops taking new days
// above kFunnelCacheMaxRows rows (the caller scans then).
#ifndef ANALYTICS_QUERY_GOALS_CACHE_H_
#define ANALYTICS_QUERY_GOALS_CACHE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/store.h"
#include "libanalytics/query/goals.h"
#include "libanalytics/query/query.h"

namespace analytics {

inline constexpr int64_t kFunnelCacheMaxRows = 60'000'000;  // ~1.2 GB

// Whether funnels use segments (default true; tests turn it off to compare
// with the raw scan).
void SetFunnelCacheEnabled(bool enabled);
bool FunnelCacheEnabled();

// Builds the site's missing segments for [from_ms, to_ms) now (e.g. the last
// 30 days at startup, so that the first funnel does not pay the raw scan).
absl::Status WarmFunnelSegments(Store* store, int64_t site_id, int64_t from_ms,
                                int64_t to_ms);

// One bounded step of the background backfill of the site's segments for
// [from_ms, to_ms): builds at most `max_days` missing UTC days, newest first
// (one ScanEvents each), and returns how many days of the range are still
// missing (0: warm). Progress is the set of built days, so a warm-up that is
// interrupted (a step limit, a shutdown) resumes with the first day it had
// not built; queries build whatever is still missing when they run.
absl::StatusOr<int64_t> WarmFunnelSegmentsStep(Store* store, int64_t site_id,
                                               int64_t from_ms, int64_t to_ms,
                                               int64_t max_days);

// Builds the segments of every site's last `days` days in the background
// with WarmFunnelSegmentsStep, one day per step, newest first, with a pause
// between steps, so that the first funnel or goal query after a start does
// not pay the raw scan. Bounded (one day's scan per step) and resumable (a
// stop keeps what was built; the next step starts at the first missing day).
// When every site is warm it looks again every `idle` (new sites, new days).
class SegmentWarmer {
 public:
  struct Options {
    int64_t days = 30;
    absl::Duration pause = absl::Milliseconds(20);
    absl::Duration idle = absl::Seconds(60);
    std::function<absl::Time()> now = [] { return absl::Now(); };
  };
  SegmentWarmer(Store* store, Options options);
  ~SegmentWarmer();  // Stop()
  void Start();
  // Returns after the step in progress, if any.
  void Stop();

 private:
  void Loop();
  Store* store_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// What the cache of `store` holds (all sites). `days_built` counts day builds
// since the cache was made (a day rebuilt after a deletion counts again).
struct FunnelCacheStats {
  int64_t rows = 0, keys = 0, attrs = 0, sessions = 0, visitors = 0;
  int64_t days = 0, days_built = 0;
};
FunnelCacheStats GetFunnelCacheStats(const Store* store);

// Drops the cached segments of `site_id` (0: every site) of `store`.
void InvalidateFunnelCache(const Store* store, int64_t site_id);

// For each visitor with at least one step in [from_ms, to_ms), the number of
// steps completed (funnel semantics of goals.h, no filter): the count of
// visitors per depth, out[i] = visitors that completed steps 1..i+1.
// `filter` (resolved: no event:goal or has_done leaves) selects sessions.
// nullopt when the cache cannot answer (disabled, too large, a filter on
// visit:exit_page, or a filter on visit attributes where a candidate session's
// events disagree on them).
absl::StatusOr<std::optional<std::vector<int64_t>>> CachedFunnelCounts(
    Store* store, int64_t site_id, int64_t from_ms, int64_t to_ms,
    bool include_imports, const std::vector<Goal>& steps,
    int64_t window_seconds, const std::optional<Filter>& filter);

// Goal counts from the segments (docs/ARCHITECTURE.md "Goals and funnels"):
// the event:goal breakdown, goal-filtered aggregates, breakdowns and
// timeseries with visitors / events / pageviews, exactly as the raw-event
// path of the v2 query computes them (an event counts once per goal it
// completes; visitors are exact distinct counts).
struct SegmentDim {
  enum class Kind { kTime, kGoal, kDim } kind = Kind::kDim;
  Dimension dim;  // kDim: an event:* / visit:* (not exit) dimension
};
struct SegmentQuery {
  int64_t site_id = 0, from_ms = 0, to_ms = 0;
  bool include_imports = true;
  // Resolved (no event:goal or has_done leaves). Without a kGoal dimension
  // (and unless lookup_only or want_visitor_ids) it must have a positive
  // goal clause at its top level (Filter::goal), so that engagement events
  // (not in the segments) never match.
  std::optional<Filter> filter;
  std::vector<SegmentDim> dims;  // the answer rows' dimensions, in order
  const std::vector<Goal>* goals = nullptr;  // for a kGoal dimension
  // For a kTime dimension: the row label of a time, constant within each
  // UTC slot of `time_slot_ms` (a divisor of an hour).
  std::function<std::string(int64_t ms)> time_label;
  int64_t time_slot_ms = 0;
  // The rows are only looked up (conversion_rate and percentage
  // denominators): rows the raw path lists with all zeros (only engagement
  // events matched) do not matter, so no goal clause is needed.
  bool lookup_only = false;
  // Also return each row's visitor ids (has_done / has_not_done; the raw
  // path skips engagement events there too, so no goal clause is needed).
  bool want_visitor_ids = false;
};
struct SegmentRow {
  std::vector<std::string> dims;
  int64_t events = 0, pageviews = 0, visitors = 0;
  std::vector<uint64_t> visitor_ids;  // when want_visitor_ids
};
// nullopt when the segments cannot answer (disabled, over the row budget, no
// goal in the query (see lookup_only), a visit:exit_page dimension, more than
// 64 goals, or visit attributes used where a contributing session's events
// disagree).
absl::StatusOr<std::optional<std::vector<SegmentRow>>> CachedGoalRows(
    Store* store, const SegmentQuery& q);

}  // namespace analytics

#endif  // ANALYTICS_QUERY_GOALS_CACHE_H_
