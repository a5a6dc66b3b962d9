#include "libanalytics/rollup/rollup_builder.h"

#include "gtest/gtest.h"

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
  int64_t seq = 0;
  auto rows = Rows(b, &seq);
  EXPECT_EQ(seq, 7);
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

}  // namespace
}  // namespace analytics
