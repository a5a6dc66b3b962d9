// Query: the Plausible Stats API v2 query model, its parser, and its
// execution against rollups or raw events.
//
// Owns: the meaning of every metric, dimension, filter and date range, the
// planner's rule for when rollups can answer, and the response JSON shape.
//
// Semantics (shared by both execution paths, so they agree by construction):
//   - pageviews, events, visitors count events whose time is in the range
//     (visitors: distinct visitor ids; sketches on the rollup path).
//   - visits, bounce_rate, visit_duration, views_per_visit count sessions
//     whose start is in the range, using the session's final state.
//   - A session matches the filters when any of its events does; an event
//     matches when the filters hold for its own fields and its session's.
//   - Rows whose breakdown value is empty are left out, except for
//     visit:source and visit:referrer, whose empty value is "Direct / None".
//   - Time buckets are in the site's time zone.
//   - event:goal (dimension and filter), conversion_rate,
//     group_conversion_rate and has_done / has_not_done are defined in
//     goals.h: goal filters are resolved into event:name / event:page /
//     event:props filters, behavioural filters into visitor sets, before
//     planning.
// Planner: rollups answer when the filters and non-time breakdown use at most
// one rollup dimension, the range aligns with the rollup buckets, and, for
// event dimensions, the metrics are ones rollups hold for them, and no
// engagement metric (scroll_depth, time_on_page) is asked. Otherwise the
// raw events are scanned. meta.source says which path answered.
#ifndef ANALYTICS_QUERY_QUERY_H_
#define ANALYTICS_QUERY_QUERY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/store.h"
#include "libanalytics/core/dimensions.h"
#include "libanalytics/rollup/rollup_builder.h"
#include "re2/re2.h"

namespace analytics {

enum class Metric {
  kVisitors,
  kVisits,
  kPageviews,
  kViewsPerVisit,
  kBounceRate,
  kVisitDuration,
  kEvents,
  kPercentage,
  kConversionRate,       // goal visitors / visitors (per time bucket)
  kGroupConversionRate,  // goal visitors / visitors of the same group
  kScrollDepth,          // avg of max scroll depth % per (session, page)
  kTimeOnPage,           // avg engaged seconds per (session, page)
};

enum class TimeGrain { kNone, kHour, kDay, kWeek, kMonth };

struct DimSpec {
  std::string name;                    // as written in the query
  TimeGrain grain = TimeGrain::kNone;  // kNone: not a time dimension
  Dimension dim;
};

// Getter for a dimension's display value on the thing being filtered;
// nullopt when it has none (an event without the prop).
using ValueGetter =
    std::function<std::optional<std::string_view>(const Dimension&)>;

struct Filter {
  enum class Op {
    kIs,
    kIsNot,
    kContains,
    kContainsNot,
    kMatches,
    kMatchesNot,
    kAnd,
    kOr,
    kNot,
    // Behavioural: visitors who did / did not do children[0] in the range.
    // Resolved before execution into kInSet (see goals.h).
    kHasDone,
    kHasNotDone,
    // The event's visitor (dimension "visitor:id", 8 raw bytes) is in `set`.
    kInSet,
  };
  Op op = Op::kIs;
  Dimension dim;
  std::vector<std::string> values;
  bool case_sensitive = true;
  std::vector<std::shared_ptr<RE2>> regexes;
  std::vector<Filter> children;
  // Derived from a goal (event:goal): left out of conversion_rate's
  // denominator like event:name clauses.
  bool goal = false;
  std::shared_ptr<const absl::flat_hash_set<std::string>> set;  // kInSet

  bool Eval(const ValueGetter& get) const;
  // Appends every dimension the filter reads.
  void CollectDims(std::vector<Dimension>* out) const;
};

struct Goal;  // goals.h

// The `event:goal` pseudo-dimension (resolved through the site's goals) and
// the visitor pseudo-dimension of resolved behavioural filters.
inline constexpr std::string_view kGoalDimName = "event:goal";
inline constexpr std::string_view kVisitorDimName = "visitor:id";

struct QuerySpec {
  Site site;
  absl::TimeZone tz;
  int64_t from_ms = 0;  // inclusive
  int64_t to_ms = 0;    // exclusive
  std::vector<Metric> metrics;
  std::vector<std::string> metric_names;
  std::vector<DimSpec> dims;
  std::optional<Filter> filter;
  std::string filters_json = "[]";                     // echoed back in "query"
  std::vector<std::pair<std::string, bool>> order_by;  // (name, descending)
  int64_t limit = 10000;
  int64_t offset = 0;
  bool total_rows = false;
  enum class Compare { kNone, kPreviousPeriod, kYearOverYear };
  Compare compare = Compare::kNone;
  // Forces the raw-event path (tests compare both paths).
  bool force_raw = false;
  // v2 `"include":{"imports":false}` leaves out events from log imports
  // (Event::imported). Rollups mix imported and live events, so false forces
  // the raw-event path (see MakePlan).
  bool include_imports = true;
  // The site's goals; loaded from the store at execution when the query
  // uses event:goal and this is null.
  std::shared_ptr<const std::vector<Goal>> goals;
};

using SiteResolver =
    std::function<absl::StatusOr<Site>(std::string_view domain_or_id)>;

// Parses a v2 query body. Relative ranges ("7d", "month", …) resolve against
// `now` in the site's time zone. InvalidArgument names the bad field.
absl::StatusOr<QuerySpec> ParseQuery(std::string_view json,
                                     const SiteResolver& sites, absl::Time now);

// Where executions read from.
struct QuerySources {
  Store* store = nullptr;
  RollupBuilder* pending = nullptr;  // may be null
  // A rollup breakdown (or dimension filter) over at least this many
  // buckets scans its two halves on two threads; 0: never. The answer is
  // the same either way (tests split every scan with 1).
  int64_t split_scan_buckets = 0;
};

// Runs the query (and its comparison) and renders the response JSON.
absl::StatusOr<std::string> ExecuteQuery(const QuerySpec& spec,
                                         const QuerySources& src);

// Which path ExecuteQuery would take ("rollups" or "events").
std::string_view PlanQuery(const QuerySpec& spec);

}  // namespace analytics

#endif  // ANALYTICS_QUERY_QUERY_H_
