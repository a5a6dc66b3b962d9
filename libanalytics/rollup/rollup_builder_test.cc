#include "libanalytics/rollup/rollup_builder.h"

#include <map>
#include <random>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libanalytics/core/dimensions.h"
#include "libanalytics/core/visit_fields.h"

namespace analytics {
namespace {

// 2026-11-02 10:30:00 UTC.
constexpr int64_t kT = 1793615400000;

Event Ev(int64_t ts_ms, int64_t start_ms, std::string page = "/") {
  Event e;
  e.seq = 1;
  e.site_id = 1;
  e.ts_ms = ts_ms;
  e.session_start_ms = start_ms;
  e.name = "pageview";
  e.page = std::move(page);
  e.visitor_id = 42;
  e.visit.source = "Google";
  return e;
}

std::map<std::tuple<int, int64_t, std::string, std::string>, RollupRow> Rows(
    RollupBuilder& b, int64_t* seq = nullptr) {
  int64_t s = 0;
  std::map<std::tuple<int, int64_t, std::string, std::string>, RollupRow> out;
  for (RollupRow& r : b.Take(&s)) {
    out[{static_cast<int>(r.level), r.bucket, r.dim, r.value}] = r;
  }
  if (seq) *seq = s;
  return out;
}

TEST(RollupBuilderTest, FirstPageviewOfASession) {
  RollupBuilder b;
  Event e = Ev(kT, kT);
  e.first_in_session = e.first_page = e.first_name = true;
  e.s_bounce = true;
  e.d_bounce = 1;
  e.seq = 7;
  b.Add({e});
  EXPECT_EQ(b.pending_events(), 1);
  // One hour cell per dimension (the day cells are derived at Take).
  EXPECT_EQ(b.pending_cells(), 19);
  int64_t seq = 0;
  auto rows = Rows(b, &seq);
  EXPECT_EQ(seq, 7);
  EXPECT_EQ(b.pending_cells(), 0);
  const int64_t hour = kT / 1000 / 3600 * 3600;
  const RollupRow& total = rows[{0, hour, "", ""}];
  EXPECT_EQ(total.m.pageviews, 1);
  EXPECT_EQ(total.m.events, 1);
  EXPECT_EQ(total.m.visits, 1);
  EXPECT_EQ(total.m.bounces, 1);
  EXPECT_EQ(total.m.session_pageviews, 1);
  auto hll = HyperLogLog::Deserialize(total.visitors);
  ASSERT_TRUE(hll.ok());
  EXPECT_EQ(hll->Estimate(), 1u);
  EXPECT_EQ((rows[{0, hour, "visit:source", "Google"}].m.visits), 1);
  EXPECT_EQ((rows[{0, hour, "event:page", "/"}].m.visits), 1);
  // Day cells exist too (UTC when no zone is set).
  const int64_t day = kT / 1000 / 86400 * 86400;
  EXPECT_EQ((rows[{1, day, "", ""}].m.pageviews), 1);
  EXPECT_EQ(b.pending_events(), 0);
}

TEST(RollupBuilderTest, SessionPartGoesToTheStartBucket) {
  RollupBuilder b;
  Event first = Ev(kT, kT);
  first.first_in_session = true;
  first.d_bounce = 1;
  Event later = Ev(kT + 3600 * 1000, kT, "/b");  // an hour later
  later.d_bounce = -1;
  later.d_duration_ms = 3600 * 1000;
  later.first_page = true;
  b.Add({first, later});
  auto rows = Rows(b);
  const int64_t h0 = kT / 1000 / 3600 * 3600, h1 = h0 + 3600;
  EXPECT_EQ((rows[{0, h0, "", ""}].m.bounces), 0);
  EXPECT_EQ((rows[{0, h0, "", ""}].m.duration_ms), 3600 * 1000);
  EXPECT_EQ((rows[{0, h0, "", ""}].m.session_pageviews), 2);
  EXPECT_EQ((rows[{0, h1, "", ""}].m.pageviews), 1);
  EXPECT_EQ((rows[{0, h1, "", ""}].m.visits), 0);
  // Page visits: /b's first view counts for the session's start bucket.
  EXPECT_EQ((rows[{0, h0, "event:page", "/b"}].m.visits), 1);
  EXPECT_EQ((rows[{0, h1, "event:page", "/b"}].m.pageviews), 1);
}

TEST(RollupBuilderTest, DayBucketsFollowTheSiteZone) {
  RollupBuilder b;
  absl::TimeZone ny;
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &ny));
  b.SetSiteTimezone(1, ny);
  // 2026-11-02 03:00 UTC is 2026-11-01 22:00 in New York.
  const int64_t t = 1793588400000;
  b.Add({Ev(t, t)});
  auto rows = Rows(b);
  const int64_t local_midnight = LocalDayStart(t, ny);
  EXPECT_EQ(local_midnight,
            1793592000 - 24 * 3600 + 0);  // 2026-11-01 04:00 UTC
  EXPECT_EQ((rows[{1, local_midnight, "", ""}].m.pageviews), 1);
}

TEST(RollupBuilderTest, HalfHourZonesFoldDayCellsPerEvent) {
  // Asia/Kolkata is UTC+5:30: UTC hours straddle local midnight, so day
  // cells cannot come from hour cells.
  absl::TimeZone kolkata;
  ASSERT_TRUE(absl::LoadTimeZone("Asia/Kolkata", &kolkata));
  for (const char* zone :
       {"Asia/Kolkata", "Europe/Berlin", "Australia/Lord_Howe"}) {
    absl::TimeZone tz;
    ASSERT_TRUE(absl::LoadTimeZone(zone, &tz));
    RollupBuilder b;
    b.SetSiteTimezone(1, tz);
    // 18:20 UTC and 18:40 UTC: in Kolkata, 23:50 and 00:10 of the next day.
    const int64_t t0 = 1793600400000 + 20 * 60000;  // 2026-11-02 06:20 UTC
    const int64_t base = t0 + 12 * 3600000;         // 18:20 UTC
    Event a = Ev(base, base);
    Event c = Ev(base + 20 * 60000, base + 20 * 60000);
    c.visitor_id = 43;
    b.Add({a, c});
    int64_t seq;
    std::map<int64_t, int64_t> day_pageviews;
    for (const RollupRow& r : b.Take(&seq)) {
      if (r.level == RollupLevel::kDay && r.dim.empty()) {
        day_pageviews[r.bucket] += r.m.pageviews;
      }
    }
    std::map<int64_t, int64_t> want;
    want[LocalDayStart(base, tz)] += 1;
    want[LocalDayStart(base + 20 * 60000, tz)] += 1;
    EXPECT_EQ(day_pageviews, want) << zone;
  }
}

TEST(RollupBuilderTest, PropsAndScanAndPutBack) {
  RollupBuilder b;
  Event e = Ev(kT, kT);
  e.name = "Signup";
  e.props = {{"plan", "pro"}};
  b.Add({e});
  const int64_t hour = kT / 1000 / 3600 * 3600;
  int found = 0;
  std::vector<std::string> dims = {"event:props:plan"};
  b.Scan(1, RollupLevel::kHour, hour, hour + 3600, dims,
         [&](const RollupRow& r) {
           EXPECT_EQ(r.value, "pro");
           EXPECT_EQ(r.m.events, 1);
           EXPECT_EQ(r.m.pageviews, 0);
           ++found;
         });
  EXPECT_EQ(found, 1);
  int64_t seq;
  std::vector<RollupRow> rows = b.Take(&seq);
  b.PutBack(rows);
  b.PutBack(rows);  // twice: metrics add up
  found = 0;
  b.Scan(1, RollupLevel::kHour, hour, hour + 3600, dims,
         [&](const RollupRow& r) {
           EXPECT_EQ(r.m.events, 2);
           ++found;
         });
  EXPECT_EQ(found, 1);
}

// Later events of a session skip the visitor insert into session-constant
// cells of a bucket that already has it; sketches must not change, also
// across a Take() (which starts new cells) and for events of other sessions.
TEST(RollupBuilderTest, VisitorsOfRepeatedSessionEventsAreKept) {
  auto estimate = [](const RollupRow& r) {
    auto hll = HyperLogLog::Deserialize(r.visitors);
    EXPECT_TRUE(hll.ok());
    return hll.ok() ? hll->Estimate() : 0;
  };
  const int64_t hour = kT / 1000 / 3600 * 3600;
  RollupBuilder b;
  std::vector<Event> events;
  for (int i = 0; i < 6; ++i) {
    Event e = Ev(kT + i * 1000, kT);
    e.visitor_id = 100 + i % 3;  // three interleaved sessions
    e.session_id = 7 + i % 3;
    e.first_in_session = i < 3;
    events.push_back(e);
  }
  b.Add(events);
  auto rows = Rows(b);
  EXPECT_EQ(estimate(rows[{0, hour, "", ""}]), 3u);
  EXPECT_EQ(estimate(rows[{0, hour, "visit:source", "Google"}]), 3u);
  EXPECT_EQ((rows[{0, hour, "visit:source", "Google"}].m.events), 6);
  EXPECT_EQ((rows[{0, hour, "visit:source", "Google"}].m.visits), 3);
  // The same sessions continue in the same hour after a drain: the new cells
  // must hold their visitors again.
  Event more = Ev(kT + 10000, kT);
  more.visitor_id = 101;
  more.session_id = 8;
  b.Add({more, more});
  rows = Rows(b);
  EXPECT_EQ(estimate(rows[{0, hour, "", ""}]), 1u);
  EXPECT_EQ(estimate(rows[{0, hour, "visit:source", "Google"}]), 1u);
  EXPECT_EQ(estimate(rows[{0, hour, "event:page", "/"}]), 1u);
  EXPECT_EQ((rows[{0, hour, "", ""}].m.events), 2);
}

// The fold as first written (one string-keyed map of cells per bucket and
// dimension, visitors buffered per cell), kept as the reference that the
// optimized RollupBuilder must match exactly.
class ReferenceFold {
 public:
  ReferenceFold() {
    for (DimId d : kRollupDims) dim_names_.emplace_back(DimName(d));
  }
  void SetSiteTimezone(int64_t site, const absl::TimeZone& tz, bool whole) {
    zones_[site] = Zone{tz, whole};
  }
  void Add(const std::vector<Event>& events) {
    for (const Event& e : events) AddOne(e);
  }
  std::vector<RollupRow> Take(int64_t* seq) {
    std::vector<RollupRow> rows;
    std::map<std::tuple<int64_t, int64_t, uint16_t, std::string>, Cell> days;
    for (auto& [k, b] : buckets_) {
      const auto [site, level, bucket] = k;
      const bool derive = level == 0 && ZoneOf(site).whole;
      const int64_t day =
          derive ? LocalDayStart(bucket * 1000, ZoneOf(site).tz) : 0;
      for (auto& [dk, c] : b.cells) {
        const auto& [dim, value] = dk;
        rows.push_back(ToRow(site, static_cast<RollupLevel>(level), bucket,
                             dim_names_[dim], value, c));
        if (!derive) continue;
        Cell& d = days[{site, day, dim, value}];
        d.m += c.m;
        d.visitors.Merge(c.visitors);
      }
    }
    for (auto& [k, c] : days) {
      const auto& [site, day, dim, value] = k;
      rows.push_back(
          ToRow(site, RollupLevel::kDay, day, dim_names_[dim], value, c));
    }
    buckets_.clear();
    pending_ = 0;
    *seq = last_seq_;
    return rows;
  }
  void PutBack(const std::vector<RollupRow>& rows) {
    for (const RollupRow& r : rows) {
      if (r.level == RollupLevel::kDay && ZoneOf(r.site_id).whole) continue;
      Cell& c = Bucket(r.site_id, static_cast<int>(r.level), r.bucket)
                    .cells[{DimOf(r.dim), r.value}];
      c.m += r.m;
      (void)c.visitors.MergeSerialized(r.visitors);
    }
  }
  void Scan(int64_t site, RollupLevel level, int64_t from, int64_t to,
            const std::vector<std::string>& dims,
            const std::function<void(const RollupRow&)>& fn) {
    const bool derived = level == RollupLevel::kDay && ZoneOf(site).whole;
    const int want = derived ? 0 : static_cast<int>(level);
    for (auto& [k, b] : buckets_) {
      const auto [s, l, bucket] = k;
      if (s != site || l != want) continue;
      const int64_t at =
          derived ? LocalDayStart(bucket * 1000, ZoneOf(site).tz) : bucket;
      if (at < from || at >= to) continue;
      for (auto& [dk, c] : b.cells) {
        if (std::find(dims.begin(), dims.end(), dim_names_[dk.first]) ==
            dims.end()) {
          continue;
        }
        fn(ToRow(site, level, at, dim_names_[dk.first], dk.second, c));
      }
    }
  }
  int64_t pending_events() const { return pending_; }
  int64_t last_seq() const { return last_seq_; }

 private:
  struct Cell {
    RollupMetrics m;
    HyperLogLog visitors;
  };
  struct BucketCells {
    std::map<std::pair<uint16_t, std::string>, Cell> cells;
    std::set<uint64_t> visitor_done;
  };
  struct Zone {
    absl::TimeZone tz = absl::UTCTimeZone();
    bool whole = true;
  };
  static RollupRow ToRow(int64_t site, RollupLevel level, int64_t bucket,
                         const std::string& dim, const std::string& value,
                         const Cell& c) {
    RollupRow r;
    r.site_id = site;
    r.level = level;
    r.bucket = bucket;
    r.dim = dim;
    r.value = value;
    r.m = c.m;
    r.visitors = c.visitors.Serialize();
    return r;
  }
  static int64_t Hour(int64_t ts_ms) {
    int64_t s = ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000;
    return s - ((s % 3600) + 3600) % 3600;
  }
  Zone& ZoneOf(int64_t site) { return zones_[site]; }
  BucketCells& Bucket(int64_t site, int level, int64_t bucket) {
    return buckets_[{site, level, bucket}];
  }
  uint16_t DimOf(const std::string& name) {
    auto pos = std::find(dim_names_.begin(), dim_names_.end(), name);
    if (pos == dim_names_.end()) {
      dim_names_.push_back(name);
      pos = dim_names_.end() - 1;
    }
    return static_cast<uint16_t>(pos - dim_names_.begin());
  }
  void AddOne(const Event& e) {
    last_seq_ = std::max(last_seq_, e.seq);
    if (e.is_engagement()) return;
    const uint64_t vh = HyperLogLog::HashKey(e.visitor_id);
    const int levels = ZoneOf(e.site_id).whole ? 1 : 2;
    const int64_t pv = e.is_pageview() ? 1 : 0;
    for (int level = 0; level < levels; ++level) {
      const absl::TimeZone& tz = ZoneOf(e.site_id).tz;
      BucketCells& be = level == 0
                            ? Bucket(e.site_id, 0, Hour(e.ts_ms))
                            : Bucket(e.site_id, 1, LocalDayStart(e.ts_ms, tz));
      BucketCells& bs =
          level == 0
              ? Bucket(e.site_id, 0, Hour(e.session_start_ms))
              : Bucket(e.site_id, 1, LocalDayStart(e.session_start_ms, tz));
      const uint64_t key = e.session_id ^ (vh * 0x9E3779B97F4A7C15ULL);
      const bool known =
          e.session_id != 0 && !be.visitor_done.insert(key).second;
      for (size_t i = 0; i < std::size(kRollupDims); ++i) {
        const DimId d = kRollupDims[i];
        const std::string v(RawValue(e, d));
        const bool event_kind = KindOf(d) == DimKind::kEvent;
        const bool first =
            event_kind ? (d == DimId::kPage ? e.first_page : e.first_name)
                       : e.first_in_session;
        Cell& c = be.cells[{static_cast<uint16_t>(i), v}];
        // The totals' sketches are kept at p = 16 (rollup_builder.cc).
        if (d == DimId::kTotal && c.visitors.empty()) {
          c.visitors = HyperLogLog(HyperLogLog::kMaxPrecision);
        }
        c.m.pageviews += pv;
        c.m.events += 1;
        if (event_kind || !known) c.visitors.Add(vh);
        if (event_kind && !first) continue;
        Cell& s = bs.cells[{static_cast<uint16_t>(i), v}];
        s.m.visits += first ? 1 : 0;
        if (!event_kind) {
          s.m.bounces += e.d_bounce;
          s.m.duration_ms += e.d_duration_ms;
          s.m.session_pageviews += pv;
        }
      }
      for (const auto& [key, value] : e.props) {
        Cell& c = be.cells[{DimOf("event:props:" + key), value}];
        c.m.pageviews += pv;
        c.m.events += 1;
        c.visitors.Add(vh);
      }
    }
    ++pending_;
  }

  std::vector<std::string> dim_names_;
  std::map<std::tuple<int64_t, int, int64_t>, BucketCells> buckets_;
  std::map<int64_t, Zone> zones_;
  int64_t pending_ = 0;
  int64_t last_seq_ = 0;
};

using RowKey =
    std::tuple<int64_t, int, int64_t, std::string, std::string, int64_t,
               int64_t, int64_t, int64_t, int64_t, int64_t, std::string>;
std::vector<RowKey> Sorted(const std::vector<RollupRow>& rows) {
  std::vector<RowKey> out;
  for (const RollupRow& r : rows) {
    out.emplace_back(r.site_id, static_cast<int>(r.level), r.bucket, r.dim,
                     r.value, r.m.pageviews, r.m.events, r.m.visits,
                     r.m.bounces, r.m.duration_ms, r.m.session_pageviews,
                     r.visitors);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The steps the differential tests below take at random besides adding
// events: scanning both folds, taking from both, and putting (part of) what
// was taken back into both.
::testing::AssertionResult SameScan(RollupBuilder& b, ReferenceFold& ref,
                                    int64_t site, RollupLevel level,
                                    int64_t from, int64_t to,
                                    const std::vector<std::string>& dims) {
  std::vector<RollupRow> got, want;
  b.Scan(site, level, from, to, dims,
         [&](const RollupRow& r) { got.push_back(r); });
  ref.Scan(site, level, from, to, dims,
           [&](const RollupRow& r) { want.push_back(r); });
  if (Sorted(got) == Sorted(want)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "scan differs: " << got.size() << " rows vs " << want.size();
}
::testing::AssertionResult SameTake(RollupBuilder& b, ReferenceFold& ref,
                                    std::vector<RollupRow>* taken) {
  int64_t seq = 0, ref_seq = 0;
  *taken = b.Take(&seq);
  std::vector<RollupRow> want = ref.Take(&ref_seq);
  if (seq != ref_seq) {
    return ::testing::AssertionFailure()
           << "take seq " << seq << " vs " << ref_seq;
  }
  if (Sorted(*taken) == Sorted(want)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "take differs: " << taken->size() << " rows vs " << want.size();
}
void PutBackSome(RollupBuilder& b, ReferenceFold& ref,
                 const std::vector<RollupRow>& taken, std::mt19937_64& rng) {
  std::vector<RollupRow> rows = taken;
  if (rng() % 2) rows.resize(rows.size() / 2);
  b.PutBack(rows);
  ref.PutBack(rows);
}
std::vector<std::string> RandomDims(std::mt19937_64& rng) {
  std::vector<std::string> dims;
  for (DimId d : kRollupDims) {
    if (rng() % 2) dims.emplace_back(DimName(d));
  }
  return dims;
}

// Random events over a few days for sites in whole-hour zones, in a
// half-hour zone (Asia/Kolkata) and without a zone, with sessions that
// continue across hours and days, visit attributes that (rarely) change
// within a session, props, engagement events, and values of every length
// (the builder interns values by their first and last bytes up to 16).
class EventSource {
 public:
  explicit EventSource(uint64_t seed) : rng_(seed) {}
  Event Next(int64_t t0, int64_t span_ms, int visitors) {
    Event e;
    e.seq = ++seq_;
    e.site_id = 1 + Pick(4);
    e.ts_ms = t0 + static_cast<int64_t>(rng_() % span_ms);
    const int v = Pick(visitors);
    e.visitor_id = 1000 + v;
    e.session_id = Pick(20) == 0 ? 0 : 5000 + v + Pick(2) * 100000;
    e.session_start_ms =
        e.ts_ms - static_cast<int64_t>(Pick(4) == 0 ? rng_() % 172800000
                                                    : rng_() % 3600000);
    const int kind = Pick(20);
    e.name = kind == 0 ? "engagement" : kind < 4 ? "Signup" : "pageview";
    e.page = Value(40, "/p");
    e.hostname = "example.com";
    VisitAttrs& a = e.visit;
    const int s = Pick(8) == 0 ? Pick(1000) : v;  // attrs follow the visitor
    a.entry_page = absl::StrCat("/p", s % 37);
    a.source = s % 5 == 0 ? "" : absl::StrCat("src", s % 7);
    a.referrer = s % 3 == 0 ? "" : absl::StrCat("ref.example/", s % 11);
    a.utm_source = s % 9 == 0 ? "newsletter" : "";
    a.utm_medium = s % 9 == 0 ? "email" : "";
    a.utm_campaign = s % 13 == 0 ? std::string(s % 40, 'c') : "";
    a.country = s % 4 == 0 ? "" : absl::StrCat("C", s % 6);
    a.browser = absl::StrCat("B", s % 5);
    a.browser_version = absl::StrCat(s % 5, ".0.", s % 3);
    a.os = s % 2 ? "Windows" : "Mac";
    a.os_version = absl::StrCat(s % 4);
    a.device = s % 3 ? "Desktop" : "Mobile";
    a.screen = s % 3 ? "Desktop" : "Mobile";
    a.locale = s % 2 ? "en-US" : "de-DE";
    for (int n = Pick(4) == 0 ? Pick(4) : 0; n > 0; --n) {
      e.props.emplace_back(absl::StrCat("k", Pick(3)), Value(12, "v"));
    }
    e.first_in_session = Pick(3) == 0;
    e.first_page = Pick(2) == 0;
    e.first_name = Pick(2) == 0;
    e.d_bounce = static_cast<int8_t>(Pick(3) - 1);
    e.d_duration_ms = Pick(3) == 0 ? -Pick(50000) : Pick(50000);
    return e;
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }
  // Values up to 40 bytes that often share their first or last 8 bytes, or
  // both (with the same size).
  std::string Value(int n, const char* prefix) {
    const int i = Pick(n);
    switch (i % 5) {
      case 4:
        return absl::StrCat("aaaaaaaa", prefix, i % 10, "bbbbbbbb");
      case 0:
        return absl::StrCat(prefix, i);
      case 1:
        return absl::StrCat(prefix, std::string(i % 23, 'x'), i);
      case 2:
        return absl::StrCat(i, std::string(i % 31, 'y'), prefix);
      default:
        return i % 8 == 3 ? std::string() : std::string(i % 41, 'z');
    }
  }
  std::mt19937_64 rng_;
  int64_t seq_ = 0;
};

TEST(RollupBuilderTest, MatchesTheReferenceFold) {
  absl::TimeZone berlin, kolkata, ny;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  ASSERT_TRUE(absl::LoadTimeZone("Asia/Kolkata", &kolkata));
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &ny));
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(seed);
    RollupBuilder b;
    ReferenceFold ref;
    b.SetSiteTimezone(1, berlin);
    ref.SetSiteTimezone(1, berlin, true);
    b.SetSiteTimezone(2, kolkata);
    ref.SetSiteTimezone(2, kolkata, false);
    b.SetSiteTimezone(4, ny);  // site 3: no zone (UTC)
    ref.SetSiteTimezone(4, ny, true);
    EventSource src(seed);
    std::mt19937_64 rng(seed * 77);
    // 2026-11-01 (a DST change in New York), over three days.
    const int64_t t0 = 1793491200000;
    const int64_t span = 3 * 86400000LL;
    std::vector<RollupRow> taken;
    for (int step = 0; step < 60; ++step) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 6) {
        std::vector<Event> events;
        const int n = 1 + static_cast<int>(rng() % 300);
        for (int i = 0; i < n; ++i) events.push_back(src.Next(t0, span, 300));
        b.Add(events);
        ref.Add(events);
        ASSERT_EQ(b.pending_events(), ref.pending_events());
      } else if (op < 8) {
        const int64_t site = 1 + static_cast<int64_t>(rng() % 4);
        const RollupLevel level =
            rng() % 2 ? RollupLevel::kDay : RollupLevel::kHour;
        const int64_t from = t0 / 1000 - 86400 + rng() % (4 * 86400);
        const int64_t to = from + rng() % (3 * 86400);
        std::vector<std::string> dims = {"", "event:page", "visit:source",
                                         "event:props:k1"};
        dims.resize(1 + rng() % dims.size());
        ASSERT_TRUE(SameScan(b, ref, site, level, from, to, dims))
            << "step " << step;
      } else if (op < 9) {
        ASSERT_TRUE(SameTake(b, ref, &taken)) << "step " << step;
      } else {
        // Put back what was taken last, or a part of it.
        PutBackSome(b, ref, taken, rng);
      }
    }
    int64_t seq = 0, ref_seq = 0;
    std::vector<RollupRow> got = b.Take(&seq);
    ASSERT_EQ(Sorted(got), Sorted(ref.Take(&ref_seq)));
    ASSERT_EQ(b.last_seq(), ref.last_seq());
  }
}

// Thousands of sessions, each with events in several hours (and, in a
// half-hour zone, days), interleaved, continuing across Takes: which
// (bucket, session) pairs already hold their visitor (a set that grows many
// times and is cleared by Take) must never answer for another bucket or an
// earlier Take's (each round folds the same hours again). Props with several
// keys, some of them prefixes of others.
TEST(RollupBuilderTest, SessionsAcrossBucketsMatchTheReferenceFold) {
  absl::TimeZone kolkata;
  ASSERT_TRUE(absl::LoadTimeZone("Asia/Kolkata", &kolkata));
  RollupBuilder b;
  ReferenceFold ref;
  b.SetSiteTimezone(2, kolkata);
  ref.SetSiteTimezone(2, kolkata, false);
  std::mt19937_64 rng(11);
  const int64_t t0 = kT / 3600000 * 3600000;
  const char* const keys[] = {"k", "k1", "k12", "plan", ""};
  std::vector<RollupRow> taken;
  int64_t seq = 0;
  for (int round = 0; round < 3; ++round) {
    for (int hour = 0; hour < 6; ++hour) {
      std::vector<Event> events;
      for (int s = 0; s < 3000; ++s) {
        if (rng() % 4 == 0) continue;  // not every session in every hour
        Event e =
            Ev(t0 + hour * 3600000LL + static_cast<int64_t>(rng() % 3600000),
               t0 + static_cast<int64_t>(s) * 1000);
        e.seq = ++seq;
        e.site_id = 1 + s % 2;
        e.visitor_id = 1000 + s;
        e.session_id = s % 50 == 0 ? 0 : 9000 + s;
        e.page = absl::StrCat("/p", rng() % 5);
        if (rng() % 3 == 0) {
          e.props = {{keys[rng() % 5], absl::StrCat("v", rng() % 3)}};
        }
        events.push_back(std::move(e));
      }
      // Events of a session in this hour: twice, one after the other.
      std::vector<Event> twice = events;
      twice.insert(twice.end(), events.begin(), events.begin() + 500);
      b.Add(twice);
      ref.Add(twice);
    }
    ASSERT_TRUE(SameTake(b, ref, &taken)) << "round " << round;
  }
}

// Cells with thousands of visitors (sparse and dense sketches, and the
// switch between them), and more logged visitors than the builder keeps
// before adding them to the sketches (its log is drained mid-period).
TEST(RollupBuilderTest, MatchesTheReferenceFoldForLargeCells) {
  RollupBuilder b;
  ReferenceFold ref;
  EventSource src(99);
  const int64_t t0 = 1793491200000;
  for (int round = 0; round < 3; ++round) {
    std::vector<Event> events;
    // 70,000 events, one hour per round: some cells take nearly every
    // visitor (dense), some a few thousand (near the sparse limit).
    for (int i = 0; i < 70000; ++i) {
      Event e = src.Next(t0 + round * 3600000LL, 3600000, 9000 * (round + 1));
      e.site_id = 1;
      e.session_start_ms = e.ts_ms;
      events.push_back(std::move(e));
    }
    b.Add(events);
    ref.Add(events);
    if (round == 1) {
      std::vector<RollupRow> got, want;
      const std::vector<std::string> dims = {"", "visit:browser"};
      b.Scan(1, RollupLevel::kDay, 0, int64_t{1} << 40, dims,
             [&](const RollupRow& r) { got.push_back(r); });
      ref.Scan(1, RollupLevel::kDay, 0, int64_t{1} << 40, dims,
               [&](const RollupRow& r) { want.push_back(r); });
      ASSERT_EQ(Sorted(got), Sorted(want));
    }
  }
  int64_t seq = 0, ref_seq = 0;
  std::vector<RollupRow> got = b.Take(&seq);
  std::vector<RollupRow> want = ref.Take(&ref_seq);
  ASSERT_EQ(Sorted(got), Sorted(want));
  // The sketches span the three forms.
  std::set<char> encodings;
  for (const RollupRow& r : got) encodings.insert(r.visitors[3]);
  EXPECT_EQ(encodings, (std::set<char>{1, 2, 3}));
  // Put back into a fresh builder: the same rows come out again.
  RollupBuilder again;
  again.PutBack(got);
  ASSERT_EQ(Sorted(again.Take(&seq)), Sorted(got));
}

// The tuple cells (source .. UTM, and country .. locale, each folded as one
// interned value; see rollup_builder.h) against the reference's cells per
// dimension: fields drawn independently from small pools, so that tuples
// share some of their values in every combination; values whose
// concatenations are equal ("ab" + "c", "a" + "bc"), long values (past a
// one-byte length), bytes that look like lengths; many sites and zones
// (half- and quarter-hour ones too); Take, Scan and PutBack in between.
// The tuple differential test below, with the tuple hash and'ed with
// `hash_mask` (0: every tuple collides with every other, so the look-ups
// tell them apart by comparing their fields alone).
void TupleCellsMatchTheReferenceFold(uint64_t hash_mask) {
  const std::vector<std::string> zones = {
      "Europe/Berlin",  "Asia/Kolkata",      "America/New_York", "",
      "Asia/Kathmandu", "Australia/Adelaide"};
  const std::string long_a(300, 'L'), long_b = std::string(299, 'L') + "M";
  const std::vector<std::vector<std::string>> pools = {
      {"", "a", "ab"},                // source
      {"", "c", "bc", "b"},           // referrer
      {"", "\x01", "\x02x", long_a},  // utm_source
      {"", "x", long_b},              // utm_medium
      // (sizes 8..16 that differ only in a middle or the last byte)
      {"", "", "c", "camp-2024-aa", "camp-2024-ab", "camp-2034-aa", "12345678",
       "12345679"},                      // utm_campaign
      {"", "t"},                         // utm_term
      {"", "\xff", "\xff\xff\xff\xff"},  // utm_content
      {"", "DE", "D"},                   // country
      {"Chrome", "Chrom", "Firefox"},    // browser
      {"120", "e120", "1", "120.0", "121.0", "120.1", "12.0.1",
       "12.1.1"},                           // browser_version
      {"Windows", "Mac", long_a},           // os
      {"", "10", "0"},                      // os_version
      {"Desktop", "Mobile"},                // device
      {"Desktop", "Mobile", "Tablet", ""},  // screen
      {"en-US", "de-DE", "en-USD"},         // locale
  };
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(seed);
    RollupBuilder b;
    // Always as tuples (this traffic repeats its tuples too rarely for the
    // builder to keep them otherwise; the next test covers the switch).
    b.SetTupleWindowForTesting(~uint32_t{0});
    b.SetTupleHashMaskForTesting(hash_mask);
    ReferenceFold ref;
    for (size_t i = 0; i < zones.size(); ++i) {
      if (zones[i].empty()) continue;  // no zone: UTC
      absl::TimeZone tz;
      ASSERT_TRUE(absl::LoadTimeZone(zones[i], &tz));
      b.SetSiteTimezone(static_cast<int64_t>(i + 1), tz);
      ref.SetSiteTimezone(static_cast<int64_t>(i + 1), tz,
                          zones[i] != "Asia/Kolkata" &&
                              zones[i] != "Asia/Kathmandu" &&
                              zones[i] != "Australia/Adelaide");
    }
    EventSource src(seed);
    std::mt19937_64 rng(seed * 31);
    const int64_t t0 = 1793491200000;
    const int64_t span = 2 * 86400000LL;
    std::vector<RollupRow> taken;
    for (int step = 0; step < 50; ++step) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 6) {
        std::vector<Event> events;
        const int n = 1 + static_cast<int>(rng() % 400);
        for (int i = 0; i < n; ++i) {
          Event e = src.Next(t0, span, 200);
          e.site_id = 1 + static_cast<int64_t>(rng() % zones.size());
          // Few values per field: tuples repeat, and share values.
          for (size_t f = 1; f < pools.size() + 1; ++f) {
            const auto& pool = pools[f - 1];
            e.visit.*kVisitFields[f] = pool[rng() % pool.size()];
          }
          events.push_back(std::move(e));
        }
        b.Add(events);
        ref.Add(events);
      } else if (op < 8) {
        const int64_t site = 1 + static_cast<int64_t>(rng() % zones.size());
        const RollupLevel level =
            rng() % 2 ? RollupLevel::kDay : RollupLevel::kHour;
        const int64_t from = t0 / 1000 - 86400 + rng() % (3 * 86400);
        const int64_t to = from + rng() % (3 * 86400);
        ASSERT_TRUE(SameScan(b, ref, site, level, from, to, RandomDims(rng)))
            << "step " << step;
      } else if (op < 9) {
        ASSERT_TRUE(SameTake(b, ref, &taken)) << "step " << step;
        ASSERT_EQ(b.pending_cells(), 0);
      } else {
        PutBackSome(b, ref, taken, rng);
      }
    }
    int64_t seq = 0, ref_seq = 0;
    std::vector<RollupRow> got = b.Take(&seq);
    ASSERT_EQ(Sorted(got), Sorted(ref.Take(&ref_seq)));
    EXPECT_EQ(b.direct_folds_for_testing(), 0);
  }
}

TEST(RollupBuilderTest, TupleCellsMatchTheReferenceFold) {
  TupleCellsMatchTheReferenceFold(~uint64_t{0});
}

// Equal tuple hashes: the fields' comparison alone finds a tuple's cell.
TEST(RollupBuilderTest, CollidingTupleHashesMatchTheReferenceFold) {
  TupleCellsMatchTheReferenceFold(0);
}

// Tuples are looked up by each field's size and first and last (up to) 8
// bytes, and by the full bytes of fields longer than 16 only: fields that
// differ in one byte anywhere (the first, a middle one, the last; around
// the 4, 8 and 16 byte boundaries; only past the first and last 8 bytes of
// a long field), in any field of either group, with tuple hashes that all
// collide or not, must give the reference fold's rows.
TEST(RollupBuilderTest, TupleFieldsDifferingInOneByteMatchTheReferenceFold) {
  std::vector<std::string> pool;
  for (size_t len : {0,  1,  2,  3,  4,  5,  7,  8,  9,  12, 15,
                     16, 17, 18, 23, 24, 25, 31, 33, 40, 64}) {
    const std::string base(len, 'a');
    pool.push_back(base);
    for (size_t at : {size_t{0}, len / 2, size_t{8}, len - 9, len - 1}) {
      if (at >= len) continue;  // (len - 9 and len - 1 wrap when short)
      std::string v = base;
      v[at] = 'b';
      pool.push_back(v);
    }
  }
  for (uint64_t mask : {~uint64_t{0}, uint64_t{0}}) {
    SCOPED_TRACE(mask);
    RollupBuilder b;
    b.ForceTupleModeForTesting(true);
    b.SetTupleHashMaskForTesting(mask);
    ReferenceFold ref;
    EventSource src(mask == 0 ? 5 : 6);
    std::mt19937_64 rng(mask == 0 ? 11 : 12);
    const int64_t t0 = 1793491200000;
    for (int round = 0; round < 6; ++round) {
      std::vector<Event> events;
      for (int i = 0; i < 400; ++i) {
        Event e = src.Next(t0, 6 * 3600000LL, 50);
        e.site_id = 1;
        // Most fields the same; a few from the pool (a value and its
        // one-byte variants), so that tuples differ in one field.
        for (size_t f = 1; f < std::size(kVisitFields); ++f) {
          e.visit.*kVisitFields[f] =
              rng() % 4 == 0 ? pool[rng() % pool.size()] : std::string("k");
        }
        events.push_back(std::move(e));
      }
      b.Add(events);
      ref.Add(events);
      if (round % 2 == 1) {
        std::vector<RollupRow> taken;
        ASSERT_TRUE(SameTake(b, ref, &taken)) << "round " << round;
      }
    }
    EXPECT_EQ(b.direct_folds_for_testing(), 0);
  }
}

// Tuples whose fields' words are all equal (NUL bytes read as zeros) and
// whose sizes add up to the same: only which field holds the NULs tells
// them apart, so every field's size must be compared (the last fields' too).
TEST(RollupBuilderTest, TupleFieldsDifferingOnlyInTheirSizesMatchTheReference) {
  for (uint64_t mask : {~uint64_t{0}, uint64_t{0}}) {
    SCOPED_TRACE(mask);
    RollupBuilder b;
    b.ForceTupleModeForTesting(true);
    b.SetTupleHashMaskForTesting(mask);
    ReferenceFold ref;
    EventSource src(7);
    std::mt19937_64 rng(13);
    const int64_t t0 = 1793491200000;
    std::vector<Event> events;
    for (int i = 0; i < 2000; ++i) {
      Event e = src.Next(t0, 3 * 3600000LL, 50);
      e.site_id = 1;
      // One or two NULs in one or two fields of each group, the others "".
      for (size_t f = 1; f < std::size(kVisitFields); ++f) {
        e.visit.*kVisitFields[f] = "";
      }
      for (size_t group_first : {size_t{1}, size_t{8}}) {
        const size_t count = group_first == 1 ? 7 : 8;
        e.visit.*kVisitFields[group_first + rng() % count] +=
            std::string(1 + rng() % 2, '\0');
        if (rng() % 2) {
          e.visit.*kVisitFields[group_first + rng() % count] += '\0';
        }
      }
      events.push_back(std::move(e));
    }
    b.Add(events);
    ref.Add(events);
    std::vector<RollupRow> taken;
    ASSERT_TRUE(SameTake(b, ref, &taken));
    EXPECT_EQ(b.direct_folds_for_testing(), 0);
  }
}

// Only "pageview" counts pageviews and only "engagement" is left out (the
// builder compares the names as words): names that differ from them in one
// byte, or in their size, must give the reference fold's rows.
TEST(RollupBuilderTest, NamesNearPageviewAndEngagementMatchTheReferenceFold) {
  const std::vector<std::string> names = {
      "pageview",  "engagement",  "pageviex",   "xageview",
      "pageviews", "pagevie",     "engagemenx", "xngagement",
      "engagemen", "engagements", "Signup",     ""};
  RollupBuilder b;
  ReferenceFold ref;
  EventSource src(3);
  std::mt19937_64 rng(3);
  std::vector<Event> events;
  for (int i = 0; i < 2000; ++i) {
    Event e = src.Next(1793491200000, 3600000, 100);
    e.name = names[rng() % names.size()];
    events.push_back(std::move(e));
  }
  b.Add(events);
  ref.Add(events);
  std::vector<RollupRow> taken;
  ASSERT_TRUE(SameTake(b, ref, &taken));
}

// Dimension cells fed only by the same tuple cells (and no sketch yet) get
// one sketch, built once and copied (DrainVisitors), and days whose hours
// hold such copies one union (Take). Feeds that are identical (the UTM
// fields of visits without them; device and screen, os and locale, which
// follow the visitor together) or nearly so (one visit's tuple differs in
// one field: one hash more or fewer), cells also fed per dimension, and
// drains (Scan), Take and PutBack in between: the reference fold's rows.
TEST(RollupBuilderTest, CellsFedByTheSameTuplesMatchTheReferenceFold) {
  absl::TimeZone berlin;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  // Seeds 5-8: every cell's feeder hash collides, so each candidate is told
  // apart from the first one by comparing the feeders themselves.
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE(seed);
    RollupBuilder b;
    b.ForceTupleModeForTesting(true);
    if (seed > 4) b.SetShareHashMaskForTesting(0);
    ReferenceFold ref;
    b.SetSiteTimezone(1, berlin);
    ref.SetSiteTimezone(1, berlin, true);
    EventSource src(seed);
    std::mt19937_64 rng(seed * 17);
    const int64_t t0 = 1793491200000;
    std::vector<RollupRow> taken;
    for (int round = 0; round < 16; ++round) {
      // Now and then per dimension, into the same cells.
      b.ForceTupleModeForTesting(rng() % 4 != 0);
      std::vector<Event> events;
      const int n = 50 + static_cast<int>(rng() % 300);
      for (int i = 0; i < n; ++i) {
        Event e = src.Next(t0, 30 * 3600000LL, 80);
        e.site_id = 1;
        VisitAttrs& a = e.visit;
        const bool news = e.visitor_id % 5 == 0;
        a.utm_source = news ? "newsletter" : "";
        a.utm_medium = news ? "email" : "";
        a.utm_campaign = a.utm_term = a.utm_content = "";
        a.screen = a.device;
        switch (rng() % 48) {  // one field off
          case 0:
            a.utm_term = "t";
            break;
          case 1:
            a.utm_content = "c";
            break;
          case 2:
            a.utm_medium = news ? "" : "email";
            break;
          case 3:
            a.screen = "Tablet";
            break;
        }
        events.push_back(std::move(e));
      }
      b.Add(events);
      ref.Add(events);
      switch (rng() % 4) {
        case 0:
          ASSERT_TRUE(SameScan(b, ref, 1, RollupLevel::kHour, 0, 1LL << 40,
                               RandomDims(rng)))
              << "round " << round;
          break;
        case 1:
          ASSERT_TRUE(SameTake(b, ref, &taken)) << "round " << round;
          break;
        case 2:
          PutBackSome(b, ref, taken, rng);
          break;
      }
    }
    ASSERT_TRUE(SameTake(b, ref, &taken));
  }
}

// The switch between tuples and per-dimension folding (decided per group
// from the events per new tuple cell; see rollup_builder.h): traffic that
// goes from a few repeated tuples to distinct ones (every event its own
// referrer, or its own referrer and locale) and back, so that both modes
// fold into the same buckets and sessions, with Take, Scan and PutBack in
// between. The rows must be the reference fold's whatever the mode.
TEST(RollupBuilderTest, AdaptiveTupleModeMatchesTheReferenceFold) {
  absl::TimeZone berlin, kolkata;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  ASSERT_TRUE(absl::LoadTimeZone("Asia/Kolkata", &kolkata));
  // Phases: 0 repeated tuples, 1 distinct referrers (the acquisition group
  // distinct, the agent group repeated), 2 distinct referrers and locales.
  const int phases[] = {0, 2, 0, 1, 2, 1, 0, 2, 0};
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(seed);
    RollupBuilder b;
    b.SetTupleWindowForTesting(64);
    ReferenceFold ref;
    b.SetSiteTimezone(1, berlin);
    ref.SetSiteTimezone(1, berlin, true);
    b.SetSiteTimezone(2, kolkata);
    ref.SetSiteTimezone(2, kolkata, false);
    EventSource src(seed);
    std::mt19937_64 rng(seed * 131);
    // A few visit profiles (repeated tuples), sharing some of their values.
    std::vector<VisitAttrs> profiles;
    for (int p = 0; p < 4; ++p) {
      profiles.push_back(src.Next(0, 1, 1).visit);
      profiles.back().referrer = p % 2 ? "ref.example/a" : "";
      profiles.back().locale = p % 3 ? "en-US" : "de-DE";
    }
    const int64_t t0 = 1793491200000;
    const int64_t span = 6 * 3600000LL;
    int64_t unique = 0;
    std::vector<RollupRow> taken;
    for (size_t phase = 0; phase < std::size(phases); ++phase) {
      SCOPED_TRACE(phase);
      const int64_t tuples_before = b.tuple_folds_for_testing();
      const int64_t direct_before = b.direct_folds_for_testing();
      for (int step = 0; step < 12; ++step) {
        const int op = static_cast<int>(rng() % 10);
        if (op < 7) {
          std::vector<Event> events;
          const int n = 1 + static_cast<int>(rng() % 200);
          for (int i = 0; i < n; ++i) {
            Event e = src.Next(t0, span, 100);
            e.site_id = 1 + static_cast<int64_t>(rng() % 2);
            e.visit = profiles[e.visitor_id % profiles.size()];
            if (phases[phase] >= 1) {
              e.visit.referrer = absl::StrCat("https://r", ++unique, ".x/");
            }
            if (phases[phase] == 2) e.visit.locale = absl::StrCat("x-", unique);
            events.push_back(std::move(e));
          }
          b.Add(events);
          ref.Add(events);
        } else if (op < 8) {
          const int64_t site = 1 + static_cast<int64_t>(rng() % 2);
          const RollupLevel level =
              rng() % 2 ? RollupLevel::kDay : RollupLevel::kHour;
          ASSERT_TRUE(SameScan(b, ref, site, level, 0, int64_t{1} << 40,
                               RandomDims(rng)))
              << "step " << step;
        } else if (op < 9) {
          ASSERT_TRUE(SameTake(b, ref, &taken)) << "step " << step;
        } else {
          PutBackSome(b, ref, taken, rng);
        }
      }
      // Each kind of traffic was folded the way it should be, at least
      // after the first window.
      if (phases[phase] == 0) {
        EXPECT_GT(b.tuple_folds_for_testing(), tuples_before);
      } else {
        EXPECT_GT(b.direct_folds_for_testing(), direct_before);
      }
      if (phases[phase] == 1) {
        EXPECT_GT(b.tuple_folds_for_testing(), tuples_before);
      }
    }
    int64_t seq = 0, ref_seq = 0;
    std::vector<RollupRow> got = b.Take(&seq);
    ASSERT_EQ(Sorted(got), Sorted(ref.Take(&ref_seq)));
  }
}

// Sites whose zones are set between events (the builder remembers the last
// site's zone, and its map of zones grows and moves them), the tuple groups
// forced to tuples, to per dimension, or decided from the traffic, long
// values, sessions retracting their bounce, and Take, Scan and PutBack in
// between (the total's value is looked up once per Take): the rows must be
// the reference fold's.
TEST(RollupBuilderTest, ZonesSetBetweenEventsMatchTheReferenceFold) {
  const std::vector<std::string> zones = {"Europe/Berlin", "Asia/Kolkata",
                                          "America/New_York", "",
                                          "Asia/Kathmandu"};
  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE(mode);
    RollupBuilder b;
    if (mode < 2) b.ForceTupleModeForTesting(mode == 0);
    if (mode == 2) b.SetTupleWindowForTesting(32);
    ReferenceFold ref;
    EventSource src(40 + mode);
    std::mt19937_64 rng(7 + mode);
    const int64_t t0 = 1793491200000;
    const int64_t span = 3 * 86400000LL;
    int64_t sites = 0;
    std::vector<RollupRow> taken;
    for (int step = 0; step < 60; ++step) {
      // A few new sites, each with its zone (or none: UTC) set before its
      // first event.
      for (int k = static_cast<int>(rng() % 3); k > 0 && sites < 48; --k) {
        ++sites;
        const std::string& name = zones[sites % zones.size()];
        if (name.empty()) continue;
        absl::TimeZone tz;
        ASSERT_TRUE(absl::LoadTimeZone(name, &tz));
        b.SetSiteTimezone(sites, tz);
        ref.SetSiteTimezone(sites, tz,
                            name != "Asia/Kolkata" && name != "Asia/Kathmandu");
      }
      if (sites == 0) continue;
      const int op = static_cast<int>(rng() % 10);
      if (op < 6) {
        std::vector<Event> events;
        const int n = 1 + static_cast<int>(rng() % 300);
        for (int i = 0; i < n; ++i) {
          Event e = src.Next(t0, span, 150);
          // Runs of events of one site (the zone cache's common case), and
          // jumps between sites.
          e.site_id = rng() % 4 == 0   ? 1 + static_cast<int64_t>(rng() % sites)
                      : events.empty() ? sites
                                       : events.back().site_id;
          if (rng() % 16 == 0) e.visit.referrer = std::string(300, 'r');
          if (rng() % 8 == 0) e.d_bounce = -1;  // a session's retraction
          events.push_back(std::move(e));
        }
        b.Add(events);
        ref.Add(events);
      } else if (op < 8) {
        const int64_t site = 1 + static_cast<int64_t>(rng() % sites);
        const RollupLevel level =
            rng() % 2 ? RollupLevel::kDay : RollupLevel::kHour;
        ASSERT_TRUE(
            SameScan(b, ref, site, level, 0, int64_t{1} << 40, RandomDims(rng)))
            << "step " << step;
      } else if (op < 9) {
        ASSERT_TRUE(SameTake(b, ref, &taken)) << "step " << step;
      } else {
        PutBackSome(b, ref, taken, rng);
      }
    }
    int64_t seq = 0, ref_seq = 0;
    std::vector<RollupRow> got = b.Take(&seq);
    ASSERT_EQ(Sorted(got), Sorted(ref.Take(&ref_seq)));
    if (mode == 0) EXPECT_EQ(b.direct_folds_for_testing(), 0);
    if (mode == 1) EXPECT_EQ(b.tuple_folds_for_testing(), 0);
  }
}

}  // namespace
}  // namespace analytics
