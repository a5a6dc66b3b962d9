// Funnel segments: an in-memory, compact copy of the events funnels read, so
// that a funnel over millions of events never rescans the store.
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

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
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

// What the cache of `store` holds (all sites).
struct FunnelCacheStats {
  int64_t rows = 0, keys = 0, attrs = 0, sessions = 0, visitors = 0;
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

}  // namespace analytics

#endif  // ANALYTICS_QUERY_GOALS_CACHE_H_
