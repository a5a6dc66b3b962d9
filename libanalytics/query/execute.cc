// Query execution: planning, the rollup path, the raw-event path, metrics,
// ordering, comparison and the response JSON; see query.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/query/goals.h"
#include "libanalytics/query/goals_cache.h"
#include "libanalytics/query/query.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics {
namespace {

// Engagement of one (session, page): max scroll depth, total engaged ms.
using EngagementMap = absl::flat_hash_map<std::pair<uint64_t, std::string>,
                                          std::pair<double, double>>;

// Sparse entries above which a query accumulator that merged more than one
// sketch turns dense (the dense estimate's error there is about 0.6 % at
// p = 14). A row of one cell (a daily timeseries point) keeps the cell's
// own form, so its estimate is the cell's.
constexpr size_t kPromoteEntries = 2048;

struct Agg {
  std::unique_ptr<EngagementMap> engagement;  // only for engagement metrics
  RollupMetrics m;
  HyperLogLog hll;
  absl::flat_hash_set<uint64_t> vis;
  bool exact = false;
  int64_t counted = -1;  // exact distinct visitors counted by the segments
  int32_t sketches = 0;  // rollup sketches merged into hll
  // After merging `n` more sketches: dense when worth it (kPromoteEntries).
  // The final form depends only on the union and on the count, so it does
  // not depend on the order or grouping of the merges.
  void Merged(int32_t n) {
    sketches += n;
    if (sketches >= 2 && hll.entries() > kPromoteEntries) hll.PromoteToDense();
  }
  int64_t visitors() const {
    if (counted >= 0) return counted;
    return exact ? static_cast<int64_t>(vis.size())
                 : static_cast<int64_t>(hll.Estimate());
  }
};

// Rows keyed by their dimension values.
class RowSet {
 public:
  // Returns the row index for `key` (parts joined by '\x1f').
  size_t Get(std::string_view key, const std::vector<std::string_view>& parts) {
    auto it = index_.find(AV(key));
    if (it != index_.end()) return it->second;
    size_t i = aggs_.size();
    index_.emplace(std::string(key), i);
    keys_.emplace_back(parts.begin(), parts.end());
    aggs_.emplace_back();
    return i;
  }
  std::optional<size_t> Find(std::string_view key) const {
    auto it = index_.find(AV(key));
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  Agg& agg(size_t i) { return aggs_[i]; }
  const Agg& agg(size_t i) const { return aggs_[i]; }
  const std::vector<std::string>& key(size_t i) const { return keys_[i]; }
  size_t size() const { return aggs_.size(); }

  // Adds the rollup rows of `other` (m and hll), new keys after this set's
  // in other's order: absorbing the rows of a later bucket range gives the
  // rows one scan of both ranges would have given.
  void AbsorbRollupRows(RowSet& other) {
    std::vector<std::string_view> parts;
    for (size_t i = 0; i < other.size(); ++i) {
      parts.assign(other.keys_[i].begin(), other.keys_[i].end());
      Agg& a = aggs_[Get(absl::StrJoin(other.keys_[i], "\x1f"), parts)];
      const Agg& b = other.aggs_[i];
      a.m += b.m;
      a.hll.Merge(b.hll);
      a.Merged(b.sketches);
    }
  }

 private:
  absl::flat_hash_map<std::string, size_t> index_;
  std::vector<std::vector<std::string>> keys_;
  std::vector<Agg> aggs_;
};

std::string TimeLabel(int64_t ms, TimeGrain grain, const absl::TimeZone& tz,
                      int64_t range_from_ms) {
  absl::Time t = absl::FromUnixMillis(ms);
  switch (grain) {
    case TimeGrain::kHour:
      return absl::FormatTime("%Y-%m-%d %H:00:00", t, tz);
    case TimeGrain::kDay:
      return absl::FormatTime("%Y-%m-%d", t, tz);
    case TimeGrain::kWeek: {
      absl::CivilDay d = absl::ToCivilDay(t, tz);
      absl::CivilDay monday = d - ((static_cast<int>(absl::GetWeekday(d)) + 7 -
                                    static_cast<int>(absl::Weekday::monday)) %
                                   7);
      absl::CivilDay first =
          absl::ToCivilDay(absl::FromUnixMillis(range_from_ms), tz);
      if (range_from_ms >= 0 && monday < first) monday = first;
      return absl::FormatCivilTime(monday);
    }
    case TimeGrain::kMonth: {
      absl::CivilMonth m(absl::ToCivilDay(t, tz));
      return absl::FormatCivilTime(absl::CivilDay(m));
    }
    case TimeGrain::kNone:
      break;
  }
  return "";
}

bool IsSessionMetric(Metric m) {
  return m == Metric::kVisits || m == Metric::kBounceRate ||
         m == Metric::kVisitDuration || m == Metric::kViewsPerVisit;
}

bool HasNegation(const Filter& f) {
  switch (f.op) {
    case Filter::Op::kIsNot:
    case Filter::Op::kContainsNot:
    case Filter::Op::kMatchesNot:
    case Filter::Op::kNot:
      return true;
    case Filter::Op::kAnd:
    case Filter::Op::kOr:
      for (const Filter& c : f.children) {
        if (HasNegation(c)) return true;
      }
      return false;
    default:
      return false;
  }
}

bool WholeHourOffsets(const QuerySpec& q, int64_t from_ms, int64_t to_ms) {
  for (int64_t ms : {from_ms, to_ms}) {
    if (q.tz.At(absl::FromUnixMillis(ms)).offset % 3600 != 0) return false;
  }
  return true;
}

struct Plan {
  bool rollups = false;
  RollupLevel level = RollupLevel::kDay;
  std::optional<Dimension> dim;  // the one rollup dimension, if any
};

const DimSpec* TimeDim(const QuerySpec& q) {
  for (const DimSpec& d : q.dims) {
    if (d.grain != TimeGrain::kNone) return &d;
  }
  return nullptr;
}

Plan MakePlan(const QuerySpec& q, int64_t from_ms, int64_t to_ms) {
  Plan p;
  if (q.force_raw) return p;
  // Rollups mix imported and live events: excluding imports needs the raw
  // events. The minimal correct approach (no second set of rollups); a query
  // with include.imports=false costs a raw scan.
  if (!q.include_imports) return p;
  for (Metric m : q.metrics) {
    if (m == Metric::kScrollDepth || m == Metric::kTimeOnPage) return p;
  }
  std::vector<Dimension> used;
  const Dimension* breakdown = nullptr;
  for (const DimSpec& d : q.dims) {
    if (d.grain != TimeGrain::kNone) continue;
    if (breakdown != nullptr) return p;
    breakdown = &d.dim;
    used.push_back(d.dim);
  }
  if (q.filter) q.filter->CollectDims(&used);
  for (const Dimension& d : used) {
    if (d.name != used[0].name) return p;
    // Behavioural filters (per visitor) and unresolved goals need events.
    if (d.name == kVisitorDimName || d.name == kGoalDimName) return p;
  }
  if (!used.empty()) {
    const Dimension& d = used[0];
    if (d.kind == DimKind::kExit || d.id == DimId::kHostname) return p;
    if (d.kind == DimKind::kProp && q.filter && HasNegation(*q.filter)) {
      return p;
    }
    if (d.kind == DimKind::kEvent || d.kind == DimKind::kProp) {
      for (Metric m : q.metrics) {
        if (!IsSessionMetric(m)) continue;
        if (m != Metric::kVisits || d.kind == DimKind::kProp) return p;
        // One value per row: a breakdown by it, or a single exact `is`.
        bool single = breakdown != nullptr;
        if (!single && q.filter && q.filter->op == Filter::Op::kIs &&
            q.filter->values.size() == 1 && q.filter->case_sensitive) {
          single = true;
        }
        if (!single) return p;
      }
    }
    p.dim = d;
  }
  const DimSpec* td = TimeDim(q);
  TimeGrain grain = td ? td->grain : TimeGrain::kNone;
  const bool day_aligned = LocalDayStart(from_ms, q.tz) * 1000 == from_ms &&
                           LocalDayStart(to_ms, q.tz) * 1000 == to_ms;
  const bool hour_aligned = from_ms % 3600000 == 0 && to_ms % 3600000 == 0;
  if (grain != TimeGrain::kHour && day_aligned) {
    p.level = RollupLevel::kDay;
  } else if (hour_aligned && WholeHourOffsets(q, from_ms, to_ms)) {
    p.level = RollupLevel::kHour;
  } else {
    return p;
  }
  p.rollups = true;
  return p;
}

std::string_view DisplayOf(const Dimension& d, std::string_view raw) {
  return DisplayValue(d.id, raw);
}

// Builds the row key of a thing whose dimension values come from `get`.
// Returns false when a breakdown value is missing or empty.
bool BuildKey(
    const QuerySpec& q, int64_t time_ms,
    const std::function<std::optional<std::string_view>(const Dimension&)>& get,
    std::string* key, std::vector<std::string>* scratch,
    std::vector<std::string_view>* parts) {
  key->clear();
  parts->clear();
  scratch->resize(q.dims.size());
  for (size_t i = 0; i < q.dims.size(); ++i) {
    const DimSpec& d = q.dims[i];
    if (i) key->push_back('\x1f');
    if (d.grain != TimeGrain::kNone) {
      (*scratch)[i] = TimeLabel(time_ms, d.grain, q.tz, q.from_ms);
      parts->push_back((*scratch)[i]);
    } else {
      std::optional<std::string_view> v = get(d.dim);
      if (!v || v->empty()) return false;
      parts->push_back(*v);
    }
    key->append(parts->back());
  }
  return true;
}

// Adds rollup cells to the rows of a query (its filter, keys and sums).
class RollupRowAdder {
 public:
  RollupRowAdder(const QuerySpec& q, const Plan& plan, RowSet* rows)
      : q_(q), plan_(plan), rows_(rows) {}

  void Add(const RollupRow& r) {
    std::string_view display =
        plan_.dim ? DisplayOf(*plan_.dim, r.value) : std::string_view();
    auto get = [&](const Dimension&) -> std::optional<std::string_view> {
      return display;
    };
    if (q_.filter && !q_.filter->Eval(get)) return;
    if (!BuildKey(q_, r.bucket * 1000, get, &key_, &scratch_, &parts_)) return;
    Agg& a = rows_->agg(rows_->Get(key_, parts_));
    a.m += r.m;
    if (!r.visitors.empty()) {
      absl::Status s = a.hll.MergeSerialized(r.visitors);
      if (!s.ok()) status_ = s;
      // A row that absorbs many large cells is cheaper to merge into in
      // dense form; small rows stay sparse (nearly exact).
      a.Merged(1);
    }
  }
  // The first sketch that failed to merge, if any.
  const absl::Status& status() const { return status_; }

 private:
  const QuerySpec& q_;
  const Plan& plan_;
  RowSet* rows_;
  std::string key_;
  std::vector<std::string> scratch_;
  std::vector<std::string_view> parts_;
  absl::Status status_;
};

// Scans the stored rollup cells of buckets [fb, tb) into *rows.
absl::Status ScanStoredRollups(const QuerySpec& q, const Plan& plan, int64_t fb,
                               int64_t tb, Store* store, RowSet* rows) {
  const std::vector<std::string> dims = {plan.dim ? plan.dim->name : ""};
  RollupRowAdder adder(q, plan, rows);
  absl::Status s =
      store->ScanRollups(q.site.id, plan.level, fb, tb, dims,
                         [&](const RollupRow& r) { adder.Add(r); });
  return s.ok() ? adder.status() : s;
}

absl::Status RunRollups(const QuerySpec& q, const Plan& plan, int64_t from_ms,
                        int64_t to_ms, const QuerySources& src, RowSet* rows) {
  const int64_t fb = from_ms / 1000, tb = to_ms / 1000;
  const int64_t bucket_s = plan.level == RollupLevel::kDay ? 86400 : 3600;
  absl::Status s;
  if (src.split_scan_buckets > 0 && plan.dim &&
      (tb - fb) / bucket_s >= src.split_scan_buckets) {
    // A breakdown over many buckets merges thousands of visitor sketches
    // (top pages over 30 days: ~12,000): the later half of the buckets is
    // scanned and merged on a second thread, then absorbed. Rows, their
    // order and every sketch come out as one scan gives them (a sketch's
    // final form depends only on the union of what it merged).
    const int64_t mid = fb + (tb - fb) / 2;
    RowSet later;
    absl::Status later_status;
    std::thread t([&] {
      later_status = ScanStoredRollups(q, plan, mid, tb, src.store, &later);
    });
    s = ScanStoredRollups(q, plan, fb, mid, src.store, rows);
    t.join();
    if (s.ok()) s = later_status;
    if (s.ok()) rows->AbsorbRollupRows(later);
  } else {
    s = ScanStoredRollups(q, plan, fb, tb, src.store, rows);
  }
  if (!s.ok() || !src.pending) return s;
  // Cells not yet checkpointed, after the stored ones.
  const std::vector<std::string> dims = {plan.dim ? plan.dim->name : ""};
  RollupRowAdder adder(q, plan, rows);
  src.pending->Scan(q.site.id, plan.level, fb, tb, dims,
                    [&](const RollupRow& r) { adder.Add(r); });
  return adder.status();
}

absl::Status RunRaw(const QuerySpec& q, int64_t from_ms, int64_t to_ms,
                    const QuerySources& src, RowSet* rows) {
  std::vector<Dimension> used;
  for (const DimSpec& d : q.dims) {
    if (d.grain == TimeGrain::kNone) used.push_back(d.dim);
  }
  if (q.filter) q.filter->CollectDims(&used);
  bool need_exit = false;
  for (const Dimension& d : used) need_exit |= d.kind == DimKind::kExit;

  EventScan scan;
  scan.site_id = q.site.id;
  scan.from_ms = from_ms;
  scan.to_ms = to_ms;
  scan.include_session_starts = true;

  // Pass 1 (only when needed): each session's final exit page.
  absl::flat_hash_map<uint64_t, std::pair<int32_t, std::string>> exits;
  if (need_exit) {
    absl::Status s = src.store->ScanEvents(scan, [&](const Event& e) {
      if (!q.include_imports && e.imported) return true;
      auto& x = exits[e.session_id];
      if (e.s_events >= x.first) x = {e.s_events, e.s_exit_page};
      return true;
    });
    if (!s.ok()) return s;
  }

  struct Sess {
    int32_t best_events = -1;
    bool bounce = false;
    int64_t duration_ms = 0;
    int32_t pageviews = 0;
    int64_t start_ms = 0;
    absl::InlinedVector<uint32_t, 2> rows;
  };
  absl::flat_hash_map<uint64_t, Sess> sessions;
  std::string key;
  std::vector<std::string> scratch;
  std::vector<std::string_view> parts;

  const std::vector<Goal>* goal_list = nullptr;
  for (const DimSpec& d : q.dims) {
    if (d.name == kGoalDimName) goal_list = q.goals.get();
  }
  std::string_view cur_goal;
  absl::InlinedVector<std::string_view, 4> goal_vals;
  absl::Status s = src.store->ScanEvents(scan, [&](const Event& e) {
    if (!q.include_imports && e.imported) return true;
    auto get = [&](const Dimension& d) -> std::optional<std::string_view> {
      if (d.name == kVisitorDimName) return EventDimValue(e, d);
      if (d.name == kGoalDimName) return cur_goal;
      if (d.kind == DimKind::kExit) {
        auto it = exits.find(e.session_id);
        return it == exits.end() ? std::string_view(e.s_exit_page)
                                 : std::string_view(it->second.second);
      }
      std::optional<std::string_view> v = RawValue(e, d);
      if (!v) return v;
      return DisplayOf(d, *v);
    };
    const bool match = !q.filter || q.filter->Eval(get);
    const bool in_range = e.ts_ms >= from_ms && e.ts_ms < to_ms;
    // An event:goal breakdown: the event counts once per goal it completes.
    goal_vals.clear();
    if (goal_list == nullptr) {
      goal_vals.emplace_back();
    } else if (match) {
      for (const Goal& g : *goal_list) {
        if (g.Matches(e)) goal_vals.push_back(g.display_name);
      }
    }
    if (e.is_engagement() && goal_list != nullptr) return true;
    if (e.is_engagement()) {
      if (match && in_range &&
          BuildKey(q, e.ts_ms, get, &key, &scratch, &parts)) {
        Agg& a = rows->agg(rows->Get(key, parts));
        a.exact = true;
        if (!a.engagement) a.engagement = std::make_unique<EngagementMap>();
        double sd = 0, ms = 0;
        for (const auto& [k, v] : e.props) {
          if (k == "sd") (void)absl::SimpleAtod(AV(v), &sd);
          if (k == "e") (void)absl::SimpleAtod(AV(v), &ms);
        }
        auto& pair = (*a.engagement)[{e.session_id, e.page}];
        pair.first = std::max(pair.first, std::clamp(sd, 0.0, 100.0));
        pair.second += std::clamp(ms, 0.0, 30 * 60 * 1000.0);
      }
      return true;
    }
    const bool start_in =
        e.session_start_ms >= from_ms && e.session_start_ms < to_ms;
    for (std::string_view gv : goal_vals) {
      cur_goal = gv;
      if (match && in_range &&
          BuildKey(q, e.ts_ms, get, &key, &scratch, &parts)) {
        Agg& a = rows->agg(rows->Get(key, parts));
        a.exact = true;
        a.m.pageviews += e.is_pageview();
        a.m.events += 1;
        a.vis.insert(e.visitor_id);
      }
    }
    if (start_in) {
      Sess& ss = sessions[e.session_id];
      if (e.s_events > ss.best_events) {
        ss.best_events = e.s_events;
        ss.bounce = e.s_bounce;
        ss.duration_ms = e.s_duration_ms;
        ss.pageviews = e.s_pageviews;
        ss.start_ms = e.session_start_ms;
      }
      for (std::string_view gv : goal_vals) {
        cur_goal = gv;
        if (match &&
            BuildKey(q, e.session_start_ms, get, &key, &scratch, &parts)) {
          uint32_t r = static_cast<uint32_t>(rows->Get(key, parts));
          rows->agg(r).exact = true;
          if (std::find(ss.rows.begin(), ss.rows.end(), r) == ss.rows.end()) {
            ss.rows.push_back(r);
          }
        }
      }
    }
    return true;
  });
  if (!s.ok()) return s;
  for (const auto& [id, ss] : sessions) {
    for (uint32_t r : ss.rows) {
      Agg& a = rows->agg(r);
      a.m.visits += 1;
      a.m.bounces += ss.bounce;
      a.m.duration_ms += ss.duration_ms;
      a.m.session_pageviews += ss.pageviews;
    }
  }
  return absl::OkStatus();
}

// Goal counts from the funnel segments (goals_cache.h), which hold every
// non-engagement event in memory: the event:goal breakdown and goal-filtered
// queries with visitors / events / pageviews. False when they cannot answer.
absl::StatusOr<bool> RunSegments(const QuerySpec& q, int64_t from_ms,
                                 int64_t to_ms, const QuerySources& src,
                                 RowSet* rows, bool lookup_only) {
  if (q.force_raw || !FunnelCacheEnabled()) return false;
  for (Metric m : q.metrics) {
    if (m != Metric::kVisitors && m != Metric::kEvents &&
        m != Metric::kPageviews && m != Metric::kPercentage &&
        m != Metric::kConversionRate && m != Metric::kGroupConversionRate) {
      return false;
    }
  }
  SegmentQuery sq;
  sq.site_id = q.site.id;
  sq.from_ms = from_ms;
  sq.to_ms = to_ms;
  sq.include_imports = q.include_imports;
  sq.filter = q.filter;
  sq.goals = q.goals.get();
  sq.lookup_only = lookup_only;
  for (const DimSpec& d : q.dims) {
    SegmentDim sd;
    if (d.grain != TimeGrain::kNone) {
      sd.kind = SegmentDim::Kind::kTime;
      // Labels change at local hour boundaries only: one label per UTC hour
      // (or minute, for zones with offsets of whole minutes).
      int64_t slot = 3'600'000;
      for (int64_t ms = from_ms;; ms = std::min(ms + 86'400'000, to_ms)) {
        const int offset = q.tz.At(absl::FromUnixMillis(ms)).offset;
        if (offset % 60 != 0) return false;
        if (offset % 3600 != 0) slot = 60'000;
        if (ms == to_ms) break;
      }
      sq.time_slot_ms = slot;
      const TimeGrain grain = d.grain;
      sq.time_label = [&q, grain](int64_t ms) {
        return TimeLabel(ms, grain, q.tz, q.from_ms);
      };
    } else if (d.name == kGoalDimName) {
      sd.kind = SegmentDim::Kind::kGoal;
    } else {
      sd.dim = d.dim;
    }
    sq.dims.push_back(std::move(sd));
  }
  absl::StatusOr<std::optional<std::vector<SegmentRow>>> r =
      CachedGoalRows(src.store, sq);
  if (!r.ok()) return r.status();
  if (!*r) return false;
  std::string key;
  std::vector<std::string_view> parts;
  for (const SegmentRow& row : **r) {
    key.clear();
    parts.clear();
    for (size_t i = 0; i < row.dims.size(); ++i) {
      if (i) key.push_back('\x1f');
      key += row.dims[i];
      parts.push_back(row.dims[i]);
    }
    Agg& a = rows->agg(rows->Get(key, parts));
    a.exact = true;
    a.m.events += row.events;
    a.m.pageviews += row.pageviews;
    a.counted = row.visitors;
  }
  return true;
}

// Whether a (resolved) query is about goals: it reads event:goal, or a
// has_done / has_not_done filter (a visitor set). Only those build and read
// the funnel segments for their denominators.
bool GoalRelated(const QuerySpec& q) {
  if (q.goals) return true;
  std::function<bool(const Filter&)> any = [&](const Filter& f) {
    if (f.goal || f.op == Filter::Op::kInSet) return true;
    for (const Filter& c : f.children) {
      if (any(c)) return true;
    }
    return false;
  };
  return q.filter && any(*q.filter);
}

// `lookup_only`: the rows are only looked up (denominators), see
// SegmentQuery::lookup_only.
absl::Status Run(const QuerySpec& q, int64_t from_ms, int64_t to_ms,
                 const QuerySources& src, RowSet* rows,
                 std::string* path = nullptr, bool lookup_only = false) {
  Plan plan = MakePlan(q, from_ms, to_ms);
  if (path) *path = plan.rollups ? "rollups" : "events";
  if (plan.rollups) return RunRollups(q, plan, from_ms, to_ms, src, rows);
  absl::StatusOr<bool> seg =
      RunSegments(q, from_ms, to_ms, src, rows, lookup_only);
  if (!seg.ok()) return seg.status();
  if (*seg) {
    if (path) *path = "segments";
    return absl::OkStatus();
  }
  return RunRaw(q, from_ms, to_ms, src, rows);
}

// num / den rounded to two decimals, computed as round(100 * num / den) / 100
// so that the result does not depend on an intermediate rounding.
double Ratio2(double num, double den) {
  return den > 0 ? std::round(100.0 * num / den) / 100.0 : 0;
}

struct OutRow {
  std::vector<std::string> dims;
  std::vector<double> metrics;
  std::optional<std::vector<double>> cmp;
  std::vector<std::string> cmp_dims;
};

// Filter tree without clauses on event:name / event:props (the goal), for
// conversion_rate's denominator.
std::optional<Filter> WithoutGoal(const std::optional<Filter>& f) {
  if (!f) return std::nullopt;
  auto is_goal = [](const Filter& x) {
    if (x.goal) return true;
    return x.op != Filter::Op::kAnd && x.op != Filter::Op::kOr &&
           x.op != Filter::Op::kNot && x.op != Filter::Op::kInSet &&
           (x.dim.id == DimId::kName || x.dim.id == DimId::kProp);
  };
  if (is_goal(*f)) return std::nullopt;
  if (f->op != Filter::Op::kAnd) return f;
  Filter out = *f;
  out.children.clear();
  for (const Filter& c : f->children) {
    if (!is_goal(c)) out.children.push_back(c);
  }
  if (out.children.empty()) return std::nullopt;
  return out;
}

// `f` AND `g`, flattened so that g stays a top-level clause.
Filter AndWith(const std::optional<Filter>& f, Filter g) {
  Filter out;
  out.op = Filter::Op::kAnd;
  if (f) {
    if (f->op == Filter::Op::kAnd) {
      out.children = f->children;
    } else {
      out.children.push_back(*f);
    }
  }
  out.children.push_back(std::move(g));
  return out;
}

absl::StatusOr<std::vector<OutRow>> ComputeResolved(const QuerySpec& q,
                                                    int64_t from_ms,
                                                    int64_t to_ms,
                                                    const QuerySources& src,
                                                    std::string* path);

// Resolves goals and behavioural filters, and answers an event:goal
// breakdown as one query per goal (its Filter added to the filters).
absl::StatusOr<std::vector<OutRow>> Compute(const QuerySpec& q_in,
                                            int64_t from_ms, int64_t to_ms,
                                            const QuerySources& src,
                                            std::string* path) {
  QuerySpec q = q_in;
  if (!q.goals && UsesGoals(q)) {
    absl::StatusOr<std::vector<Goal>> goals = ListGoals(src.store, q.site.id);
    if (!goals.ok()) return goals.status();
    q.goals = std::make_shared<const std::vector<Goal>>(*std::move(goals));
  }
  absl::StatusOr<std::optional<Filter>> f =
      ResolveQueryFilter(q, from_ms, to_ms, src);
  if (!f.ok()) return f.status();
  q.filter = *std::move(f);
  int gi = -1;
  for (size_t i = 0; i < q.dims.size(); ++i) {
    if (q.dims[i].name == kGoalDimName) gi = static_cast<int>(i);
  }
  if (gi < 0) return ComputeResolved(q, from_ms, to_ms, src, path);
  // Goals that all answer from rollups: one rollup query each. Otherwise a
  // single raw scan counts every goal (RunRaw's goal breakdown).
  for (const Goal& g : *q.goals) {
    QuerySpec sub = q;
    sub.dims.erase(sub.dims.begin() + gi);
    sub.filter = AndWith(q.filter, g.ToFilter());
    if (!MakePlan(sub, from_ms, to_ms).rollups) {
      return ComputeResolved(q, from_ms, to_ms, src, path);
    }
  }
  std::vector<OutRow> out;
  if (path) *path = "events";
  for (const Goal& g : *q.goals) {
    QuerySpec sub = q;
    sub.dims.erase(sub.dims.begin() + gi);
    sub.filter = AndWith(q.filter, g.ToFilter());
    std::string sub_path;
    absl::StatusOr<std::vector<OutRow>> rows =
        ComputeResolved(sub, from_ms, to_ms, src, &sub_path);
    if (!rows.ok()) return rows.status();
    if (path && sub_path == "rollups" && out.empty()) *path = sub_path;
    for (OutRow& r : *rows) {
      r.dims.insert(r.dims.begin() + gi, g.display_name);
      out.push_back(std::move(r));
    }
  }
  return out;
}

absl::StatusOr<std::vector<OutRow>> ComputeResolved(const QuerySpec& q,
                                                    int64_t from_ms,
                                                    int64_t to_ms,
                                                    const QuerySources& src,
                                                    std::string* path) {
  RowSet rows;
  absl::Status s = Run(q, from_ms, to_ms, src, &rows, path);
  if (!s.ok()) return s;

  const bool want_pct = std::find(q.metrics.begin(), q.metrics.end(),
                                  Metric::kPercentage) != q.metrics.end();
  const bool lookup_only = GoalRelated(q);
  const bool want_cr =
      std::find(q.metrics.begin(), q.metrics.end(), Metric::kConversionRate) !=
          q.metrics.end() ||
      std::find(q.metrics.begin(), q.metrics.end(),
                Metric::kGroupConversionRate) != q.metrics.end();
  int64_t total_visitors = 0;
  if (want_pct) {
    QuerySpec t = q;
    t.dims.clear();
    t.metrics = {Metric::kVisitors};
    RowSet tr;
    s = Run(t, from_ms, to_ms, src, &tr, nullptr, lookup_only);
    if (!s.ok()) return s;
    if (tr.size() > 0) total_visitors = tr.agg(0).visitors();
  }
  // conversion_rate denominators keyed by the non-goal dimension values.
  RowSet denom, tdenom;
  std::vector<size_t> denom_dims, tdenom_dims;
  if (want_cr) {
    // conversion_rate: per time bucket only (Plausible v2's global rate).
    QuerySpec t = q;
    t.filter = WithoutGoal(q.filter);
    t.dims.clear();
    for (size_t i = 0; i < q.dims.size(); ++i) {
      if (q.dims[i].grain == TimeGrain::kNone) continue;
      t.dims.push_back(q.dims[i]);
      tdenom_dims.push_back(i);
    }
    t.metrics = {Metric::kVisitors};
    s = Run(t, from_ms, to_ms, src, &tdenom, nullptr, lookup_only);
    if (!s.ok()) return s;
  }
  if (want_cr) {
    QuerySpec t = q;
    t.filter = WithoutGoal(q.filter);
    t.dims.clear();
    for (size_t i = 0; i < q.dims.size(); ++i) {
      const DimSpec& d = q.dims[i];
      if (d.grain == TimeGrain::kNone &&
          (d.dim.id == DimId::kName || d.dim.id == DimId::kProp ||
           d.name == kGoalDimName)) {
        continue;
      }
      t.dims.push_back(d);
      denom_dims.push_back(i);
    }
    t.metrics = {Metric::kVisitors};
    s = Run(t, from_ms, to_ms, src, &denom, nullptr, lookup_only);
    if (!s.ok()) return s;
  }

  std::vector<OutRow> out;
  out.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const Agg& a = rows.agg(i);
    OutRow r;
    r.dims = rows.key(i);
    const int64_t visitors = a.visitors();
    const double visits = static_cast<double>(a.m.visits);
    for (Metric m : q.metrics) {
      double v = 0;
      switch (m) {
        case Metric::kVisitors:
          v = visitors;
          break;
        case Metric::kVisits:
          v = a.m.visits;
          break;
        case Metric::kPageviews:
          v = a.m.pageviews;
          break;
        case Metric::kEvents:
          v = a.m.events;
          break;
        case Metric::kViewsPerVisit:
          v = Ratio2(static_cast<double>(a.m.session_pageviews), visits);
          break;
        case Metric::kBounceRate:
          v = visits > 0 ? std::round(100.0 * a.m.bounces / visits) : 0;
          break;
        case Metric::kVisitDuration:
          v = visits > 0 ? std::round(a.m.duration_ms / visits / 1000.0) : 0;
          break;
        case Metric::kPercentage:
          v = Ratio2(100.0 * visitors, static_cast<double>(total_visitors));
          break;
        case Metric::kScrollDepth:
        case Metric::kTimeOnPage: {
          double sum = 0;
          size_t n = a.engagement ? a.engagement->size() : 0;
          if (n > 0) {
            for (const auto& [k, v] : *a.engagement) {
              sum += m == Metric::kScrollDepth ? v.first : v.second / 1000.0;
            }
          }
          v = n > 0 ? std::round(sum / n) : 0;
          break;
        }
        case Metric::kConversionRate:
        case Metric::kGroupConversionRate: {
          const bool group = m == Metric::kGroupConversionRate;
          const std::vector<size_t>& dd = group ? denom_dims : tdenom_dims;
          const RowSet& ds = group ? denom : tdenom;
          std::string key;
          for (size_t k = 0; k < dd.size(); ++k) {
            if (k) key.push_back('\x1f');
            key.append(r.dims[dd[k]]);
          }
          std::optional<size_t> d = ds.Find(key);
          int64_t base = d ? ds.agg(*d).visitors() : 0;
          // Exact numerators over sketch denominators can overshoot.
          v = std::min(100.0,
                       Ratio2(100.0 * visitors, static_cast<double>(base)));
          break;
        }
      }
      r.metrics.push_back(v);
    }
    // Rows with no data in any metric (e.g. only session-start cells of
    // another period) are dropped.
    if (a.m.events == 0 && a.m.visits == 0 && visitors == 0 && !a.engagement) {
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

void Sort(const QuerySpec& q, std::vector<OutRow>* rows) {
  std::vector<std::pair<int, bool>> keys;  // (index: >=0 metric, <0 dim), desc
  auto metric_index = [&](const std::string& n) -> int {
    for (size_t i = 0; i < q.metric_names.size(); ++i) {
      if (q.metric_names[i] == n) return static_cast<int>(i);
    }
    return -1;
  };
  auto dim_index = [&](const std::string& n) -> int {
    for (size_t i = 0; i < q.dims.size(); ++i) {
      if (q.dims[i].name == n) return -1 - static_cast<int>(i);
    }
    return 0;
  };
  for (const auto& [name, desc] : q.order_by) {
    int mi = metric_index(name);
    keys.emplace_back(mi >= 0 ? mi : dim_index(name), desc);
  }
  if (keys.empty()) {
    const DimSpec* td = TimeDim(q);
    if (td) {
      keys.emplace_back(dim_index(td->name), false);
    } else {
      keys.emplace_back(0, true);
    }
  }
  for (size_t i = 0; i < q.dims.size(); ++i) {
    keys.emplace_back(-1 - static_cast<int>(i), false);
  }
  std::stable_sort(rows->begin(), rows->end(),
                   [&](const OutRow& a, const OutRow& b) {
                     for (const auto& [k, desc] : keys) {
                       if (k >= 0) {
                         if (a.metrics[k] != b.metrics[k]) {
                           return desc ? a.metrics[k] > b.metrics[k]
                                       : a.metrics[k] < b.metrics[k];
                         }
                       } else {
                         const std::string& x = a.dims[-1 - k];
                         const std::string& y = b.dims[-1 - k];
                         if (x != y) return desc ? x > y : x < y;
                       }
                     }
                     return false;
                   });
}

bool IsIntegerMetric(Metric m) {
  return m != Metric::kViewsPerVisit && m != Metric::kPercentage &&
         m != Metric::kConversionRate && m != Metric::kGroupConversionRate;
}

template <typename W>
void WriteMetric(W& w, Metric m, double v) {
  if (IsIntegerMetric(m)) {
    w.Int64(static_cast<int64_t>(std::llround(v)));
  } else {
    w.Double(v);
  }
}

absl::StatusOr<int64_t> EarliestDay(const QuerySpec& q, const QuerySources& src,
                                    int64_t to_ms) {
  int64_t earliest = std::numeric_limits<int64_t>::max();
  const std::vector<std::string> dims = {""};
  auto fn = [&](const RollupRow& r) {
    earliest = std::min(earliest, r.bucket);
  };
  absl::Status s = src.store->ScanRollups(
      q.site.id, RollupLevel::kDay, std::numeric_limits<int64_t>::min() / 2,
      to_ms / 1000, dims, fn);
  if (!s.ok()) return s;
  if (src.pending) {
    src.pending->Scan(q.site.id, RollupLevel::kDay,
                      std::numeric_limits<int64_t>::min() / 2, to_ms / 1000,
                      dims, fn);
  }
  if (earliest == std::numeric_limits<int64_t>::max()) {
    return LocalDayStart(to_ms, q.tz) * 1000 - 86400000;
  }
  return earliest * 1000;
}

std::string IsoTime(int64_t ms, const absl::TimeZone& tz) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", absl::FromUnixMillis(ms), tz);
}

}  // namespace

std::string_view PlanQuery(const QuerySpec& spec) {
  return MakePlan(spec, spec.from_ms, spec.to_ms).rollups ? "rollups"
                                                          : "events";
}

absl::StatusOr<std::string> ExecuteQuery(const QuerySpec& spec_in,
                                         const QuerySources& src) {
  QuerySpec q = spec_in;
  if (q.from_ms < 0) {
    absl::StatusOr<int64_t> e = EarliestDay(q, src, q.to_ms);
    if (!e.ok()) return e.status();
    q.from_ms = *e;
    if (q.compare != QuerySpec::Compare::kNone) {
      return absl::InvalidArgumentError(
          "include: comparisons are not available for date_range \"all\"");
    }
  }
  std::string path;
  absl::StatusOr<std::vector<OutRow>> rows =
      Compute(q, q.from_ms, q.to_ms, src, &path);
  if (!rows.ok()) return rows.status();
  Sort(q, &*rows);

  int64_t cmp_from = 0, cmp_to = 0;
  if (q.compare != QuerySpec::Compare::kNone) {
    const bool day_aligned =
        LocalDayStart(q.from_ms, q.tz) * 1000 == q.from_ms &&
        LocalDayStart(q.to_ms, q.tz) * 1000 == q.to_ms;
    absl::CivilDay f = absl::ToCivilDay(absl::FromUnixMillis(q.from_ms), q.tz);
    absl::CivilDay t = absl::ToCivilDay(absl::FromUnixMillis(q.to_ms), q.tz);
    if (q.compare == QuerySpec::Compare::kYearOverYear) {
      absl::CivilDay pf(f.year() - 1, f.month(), f.day());
      absl::CivilDay pt(t.year() - 1, t.month(), t.day());
      cmp_from = absl::ToUnixMillis(absl::FromCivil(pf, q.tz)) +
                 (q.from_ms - absl::ToUnixMillis(absl::FromCivil(f, q.tz)));
      cmp_to = absl::ToUnixMillis(absl::FromCivil(pt, q.tz)) +
               (q.to_ms - absl::ToUnixMillis(absl::FromCivil(t, q.tz)));
    } else if (day_aligned) {
      int64_t days = t - f;
      cmp_to = q.from_ms;
      cmp_from = absl::ToUnixMillis(absl::FromCivil(f - days, q.tz));
    } else {
      cmp_to = q.from_ms;
      cmp_from = q.from_ms - (q.to_ms - q.from_ms);
    }
    QuerySpec c = q;
    c.from_ms = cmp_from;
    c.to_ms = cmp_to;
    absl::StatusOr<std::vector<OutRow>> prev =
        Compute(c, cmp_from, cmp_to, src, nullptr);
    if (!prev.ok()) return prev.status();
    Sort(c, &*prev);
    const DimSpec* td = TimeDim(q);
    absl::flat_hash_map<std::string, size_t> by_key;
    for (size_t i = 0; i < prev->size(); ++i) {
      std::vector<std::string> k;
      for (size_t j = 0; j < q.dims.size(); ++j) {
        if (q.dims[j].grain == TimeGrain::kNone)
          k.push_back((*prev)[i].dims[j]);
      }
      by_key.emplace(absl::StrJoin(k, "\x1f"), i);
    }
    for (size_t i = 0; i < rows->size(); ++i) {
      OutRow& r = (*rows)[i];
      std::optional<size_t> match;
      if (td) {
        if (i < prev->size()) match = i;
      } else {
        std::vector<std::string> k;
        for (size_t j = 0; j < q.dims.size(); ++j) k.push_back(r.dims[j]);
        auto it = by_key.find(absl::StrJoin(k, "\x1f"));
        if (it != by_key.end()) match = it->second;
      }
      r.cmp = match ? (*prev)[*match].metrics
                    : std::vector<double>(q.metrics.size(), 0.0);
      r.cmp_dims = match ? (*prev)[*match].dims : r.dims;
    }
  }

  const int64_t total = static_cast<int64_t>(rows->size());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.SetMaxDecimalPlaces(2);
  w.StartObject();
  w.Key("results");
  w.StartArray();
  for (int64_t i = q.offset; i < total && i < q.offset + q.limit; ++i) {
    const OutRow& r = (*rows)[i];
    w.StartObject();
    w.Key("metrics");
    w.StartArray();
    for (size_t k = 0; k < q.metrics.size(); ++k) {
      WriteMetric(w, q.metrics[k], r.metrics[k]);
    }
    w.EndArray();
    w.Key("dimensions");
    w.StartArray();
    for (const std::string& d : r.dims) w.String(d.data(), d.size());
    w.EndArray();
    if (r.cmp) {
      w.Key("comparison");
      w.StartObject();
      w.Key("dimensions");
      w.StartArray();
      for (const std::string& d : r.cmp_dims) w.String(d.data(), d.size());
      w.EndArray();
      w.Key("metrics");
      w.StartArray();
      for (size_t k = 0; k < q.metrics.size(); ++k) {
        WriteMetric(w, q.metrics[k], (*r.cmp)[k]);
      }
      w.EndArray();
      w.Key("change");
      w.StartArray();
      for (size_t k = 0; k < q.metrics.size(); ++k) {
        const double now = r.metrics[k], before = (*r.cmp)[k];
        if (q.metrics[k] == Metric::kBounceRate) {
          w.Int64(std::llround(now - before));
        } else if (before == 0) {
          w.Int64(now > 0 ? 100 : 0);
        } else {
          w.Int64(std::llround((now - before) / before * 100.0));
        }
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();

  w.Key("meta");
  w.StartObject();
  w.Key("source");
  w.String(path.c_str());
  w.Key("time_zone");
  w.String(q.site.timezone.c_str());
  if (q.total_rows) {
    w.Key("total_rows");
    w.Int64(total);
  }
  if (q.compare != QuerySpec::Compare::kNone) {
    w.Key("comparison_date_range");
    w.StartArray();
    w.String(IsoTime(cmp_from, q.tz).c_str());
    w.String(IsoTime(cmp_to - 1000, q.tz).c_str());
    w.EndArray();
  }
  w.EndObject();

  w.Key("query");
  w.StartObject();
  w.Key("site_id");
  w.String(q.site.domain.c_str());
  w.Key("metrics");
  w.StartArray();
  for (const std::string& m : q.metric_names) w.String(m.c_str());
  w.EndArray();
  w.Key("date_range");
  w.StartArray();
  w.String(IsoTime(q.from_ms, q.tz).c_str());
  w.String(IsoTime(q.to_ms - 1000, q.tz).c_str());
  w.EndArray();
  w.Key("dimensions");
  w.StartArray();
  for (const DimSpec& d : q.dims) w.String(d.name.c_str());
  w.EndArray();
  w.Key("filters");
  w.RawValue(q.filters_json.data(), q.filters_json.size(),
             rapidjson::kArrayType);
  w.Key("order_by");
  w.StartArray();
  for (const auto& [n, desc] : q.order_by) {
    w.StartArray();
    w.String(n.c_str());
    w.String(desc ? "desc" : "asc");
    w.EndArray();
  }
  w.EndArray();
  w.Key("pagination");
  w.StartObject();
  w.Key("limit");
  w.Int64(q.limit);
  w.Key("offset");
  w.Int64(q.offset);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace analytics
