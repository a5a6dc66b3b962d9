// Goals and funnels: what a site counts as a conversion, and where visitors
// drop out on the way to one.
//
// Owns: the goal and funnel documents (validation, JSON form, storage as
// Store configuration documents of kind "goal" and "funnel" per site), the
// page-pattern rules, the translation of a goal into a query Filter (so that
// the `event:goal` dimension and filter reuse the v2 query paths), and funnel
// evaluation (from the funnel segments of goals_cache.h, or over raw events).
//
// Goal semantics:
//   - An event goal {"event_name":"Signup","props":{"plan":"pro"}} matches a
//     custom event of that name carrying every listed prop with that value.
//   - A page goal {"page_path":"/blog/*"} matches pageviews whose path matches
//     the pattern: `*` any characters within one path segment, `**` any
//     characters across segments, everything else literal; the whole path
//     must match.
//   - display_name defaults to the event name, or "Visit <page_path>"; it is
//     unique per site and is the value of the `event:goal` dimension.
// Goals are evaluated at query time, so a goal added later counts past
// conversions. Event goals without props answer from rollups (event:name is a
// rollup dimension); the other goal queries and has_done / has_not_done
// answer from the funnel segments (goals_cache.h), or scan raw events when
// those cannot answer.
//
// Funnel semantics (see docs/API.md): 2..8 ordered steps, each a goal (by
// display name), a page pattern or an event name. A visitor enters step i
// when, within one session (window "session") or within `window_seconds` of
// the event that completed step 1, their events complete steps 1..i in order
// (other events in between are allowed). Only events in the date range count;
// filters select sessions (a session qualifies when any of its events matches,
// as for the v2 query).
#ifndef ANALYTICS_QUERY_GOALS_H_
#define ANALYTICS_QUERY_GOALS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "analytics/event.h"
#include "analytics/store.h"
#include "libanalytics/query/query.h"
#include "re2/re2.h"

namespace analytics {

inline constexpr std::string_view kGoalDocKind = "goal";
inline constexpr std::string_view kFunnelDocKind = "funnel";
inline constexpr size_t kMinFunnelSteps = 2;
inline constexpr size_t kMaxFunnelSteps = 8;

// Compiles a page pattern (see above) into an anchored regular expression.
std::string PagePatternRegex(std::string_view pattern);

struct Goal {
  int64_t id = 0;  // configuration document id (0 until stored)
  std::string display_name;
  std::string event_name;  // event goal
  Props props;             // event goal: required prop values
  std::string page_path;   // page goal pattern
  std::shared_ptr<RE2> page_re;

  bool is_page() const { return !page_path.empty(); }
  bool Matches(const Event& e) const;
  // A Filter that holds exactly for the events the goal matches.
  Filter ToFilter() const;
  std::string ToJson() const;
};

// Parses and validates a goal document. InvalidArgument names the field.
absl::StatusOr<Goal> ParseGoal(std::string_view json);

// A funnel step: exactly one of goal / page / event is set.
struct FunnelStep {
  std::string label;  // shown in answers
  std::string goal;   // goal display name (resolved against the site's goals)
  std::string page;   // page pattern
  std::string event;  // custom event name
};

struct Funnel {
  int64_t id = 0;
  std::string name;
  std::vector<FunnelStep> steps;
  int64_t window_seconds = 0;  // 0: within one session
  std::string ToJson() const;
};

absl::StatusOr<Funnel> ParseFunnel(std::string_view json);

// Storage (Store configuration documents, per site). Add* validate, reject a
// duplicate display name / funnel name (AlreadyExists), and return the stored
// document. Delete* NotFound when the id is not one of the site's.
absl::StatusOr<Goal> AddGoal(Store* store, int64_t site_id,
                             std::string_view json);
absl::StatusOr<std::vector<Goal>> ListGoals(Store* store, int64_t site_id);
absl::Status DeleteGoal(Store* store, int64_t site_id, int64_t id);
absl::StatusOr<Funnel> AddFunnel(Store* store, int64_t site_id,
                                 std::string_view json);
absl::StatusOr<std::vector<Funnel>> ListFunnels(Store* store, int64_t site_id);
absl::Status DeleteFunnel(Store* store, int64_t site_id, int64_t id);

// Renders a list as {"goals":[…]} / {"funnels":[…]}.
std::string GoalsJson(const std::vector<Goal>& goals);
std::string FunnelsJson(const std::vector<Funnel>& funnels);

// The value of dimension `d` on a raw event as filters see it (display
// value; kVisitorDimName: the visitor id's 8 bytes).
std::optional<std::string_view> EventDimValue(const Event& e,
                                              const Dimension& d);

// Whether the query reads event:goal (dimension or filter).
bool UsesGoals(const QuerySpec& q);
// Replaces every event:goal leaf of `f` by the Filter of the goals it
// selects (goal = true).
void ResolveGoalRefs(Filter* f, const std::vector<Goal>& goals);
// q.filter with event:goal leaves and has_done / has_not_done resolved for
// the range [from_ms, to_ms) (behavioural filters scan raw events once each).
absl::StatusOr<std::optional<Filter>> ResolveQueryFilter(
    const QuerySpec& q, int64_t from_ms, int64_t to_ms,
    const QuerySources& src);

// The answer for one step.
struct FunnelStepResult {
  std::string label;
  int64_t visitors = 0;
};

// Evaluates a funnel over the events of `spec`'s site, range and filter
// (spec.filter may use event:goal and has_done, resolved with `goals`).
// It answers from the funnel segments (goals_cache.h), or scans raw events
// when they cannot answer (a visit:exit_page filter, segments disabled);
// `source`, when given, is set to "segments" or "events".
absl::StatusOr<std::vector<FunnelStepResult>> EvaluateFunnel(
    const Funnel& funnel, const std::vector<Goal>& goals, const QuerySpec& spec,
    const QuerySources& src, std::string* source = nullptr);

// The funnel query form: {"site_id":…,"date_range":…,"filters":[…],
// "funnel": "<stored funnel name>" | {"steps":[…],"window_seconds":…}}.
// Returns the response JSON (see docs/API.md).
absl::StatusOr<std::string> QueryFunnel(std::string_view json,
                                        const SiteResolver& sites,
                                        absl::Time now,
                                        const QuerySources& src);

}  // namespace analytics

#endif  // ANALYTICS_QUERY_GOALS_H_
