#include "libanalytics/session/sessionizer.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "analytics/coordinator.h"
#include "gtest/gtest.h"
#include "libanalytics/core/visit_fields.h"

namespace analytics {
namespace {

Event Make(int64_t ts_s, std::string name = "pageview", std::string page = "/",
           uint64_t visitor = 42) {
  Event e;
  e.site_id = 1;
  e.ts_ms = ts_s * 1000;
  e.name = std::move(name);
  e.page = std::move(page);
  e.visitor_id = visitor;
  e.visit.source = "Google";
  return e;
}

TEST(SessionizerTest, OnePageviewIsABounce) {
  Sessionizer s;
  Event e = Make(1000);
  s.Assign(&e, 0, true);
  EXPECT_TRUE(e.first_in_session);
  EXPECT_TRUE(e.s_bounce);
  EXPECT_EQ(e.d_bounce, 1);
  EXPECT_EQ(e.session_start_ms, 1000000);
  EXPECT_EQ(e.visit.entry_page, "/");
  EXPECT_EQ(e.s_exit_page, "/");
}

TEST(SessionizerTest, SecondPageviewRetractsBounceAndAddsDuration) {
  Sessionizer s;
  Event a = Make(1000, "pageview", "/a");
  s.Assign(&a, 0, true);
  Event b = Make(1060, "pageview", "/b");
  b.visit.source = "Bing";  // ignored: the session keeps its entry attributes
  s.Assign(&b, 0, true);
  EXPECT_FALSE(b.first_in_session);
  EXPECT_EQ(b.session_id, a.session_id);
  EXPECT_EQ(b.d_bounce, -1);
  EXPECT_FALSE(b.s_bounce);
  EXPECT_EQ(b.s_duration_ms, 60000);
  EXPECT_EQ(b.d_duration_ms, 60000);
  EXPECT_EQ(b.visit.source, "Google");
  EXPECT_EQ(b.visit.entry_page, "/a");
  EXPECT_EQ(b.s_exit_page, "/b");
  EXPECT_EQ(b.s_pageviews, 2);
  EXPECT_TRUE(b.first_page);
  Event c = Make(1070, "pageview", "/a");
  s.Assign(&c, 0, true);
  EXPECT_FALSE(c.first_page);
  EXPECT_FALSE(c.first_name);
}

TEST(SessionizerTest,
     InteractiveCustomEventEndsBounceButNonInteractiveDoesNot) {
  Sessionizer s;
  Event a = Make(1000);
  s.Assign(&a, 0, true);
  Event b = Make(1010, "engagement");
  s.Assign(&b, 0, false);
  EXPECT_TRUE(b.s_bounce);
  EXPECT_EQ(b.d_bounce, 0);
  Event c = Make(1020, "signup");
  s.Assign(&c, 0, true);
  EXPECT_FALSE(c.s_bounce);
  EXPECT_EQ(c.d_bounce, -1);
}

// A session keeps its entry visit packed into one buffer: every field of
// every length (empty, 1..3, 4..7, 8..16 and longer bytes: the copy's size
// classes) must come back as it went in.
TEST(SessionizerTest, EntryVisitRoundTripsEveryLength) {
  Sessionizer s;
  std::mt19937 rng(9);
  uint64_t visitor = 1;
  for (int trial = 0; trial < 2000; ++trial) {
    Event a = Make(1000, "pageview", "/a", ++visitor);
    std::vector<std::string> want;
    for (std::string VisitAttrs::*f : kVisitFields) {
      std::string v(rng() % 41, '\0');
      for (char& c : v) c = static_cast<char>('a' + rng() % 26);
      a.visit.*f = v;
      want.push_back(std::move(v));
    }
    want[0] = "/a";  // entry_page: the first page
    s.Assign(&a, 0, true);
    Event b = Make(1010, "pageview", "/b", visitor);
    for (std::string VisitAttrs::*f : kVisitFields) b.visit.*f = "other";
    s.Assign(&b, 0, true);
    ASSERT_FALSE(b.first_in_session);
    for (size_t i = 0; i < std::size(kVisitFields); ++i) {
      ASSERT_EQ(b.visit.*kVisitFields[i], want[i]) << "field " << i;
    }
  }
}

TEST(SessionizerTest, IdleTimeoutStartsNewSession) {
  Sessionizer s(absl::Minutes(30));
  Event a = Make(1000);
  s.Assign(&a, 0, true);
  Event b = Make(1000 + 30 * 60);  // exactly at the timeout: same session
  s.Assign(&b, 0, true);
  EXPECT_EQ(a.session_id, b.session_id);
  Event c = Make(1000 + 60 * 60 + 1);
  s.Assign(&c, 0, true);
  EXPECT_NE(c.session_id, a.session_id);
  EXPECT_TRUE(c.first_in_session);
}

TEST(SessionizerTest, PreviousSaltContinuesSession) {
  Sessionizer s;
  Event a = Make(1000, "pageview", "/", /*visitor=*/7);
  s.Assign(&a, 0, true);
  Event b = Make(1100, "pageview", "/x", /*visitor=*/8);  // new day's id
  s.Assign(&b, /*prev_visitor_id=*/7, true);
  EXPECT_EQ(b.session_id, a.session_id);
  EXPECT_EQ(b.visitor_id, 7u);
}

TEST(SessionizerTest, SweepEvictsIdleSessions) {
  Sessionizer s(absl::Minutes(30));
  for (int v = 1; v <= 100; ++v) {
    Event e = Make(1000, "pageview", "/", v);
    s.Assign(&e, 0, true);
  }
  EXPECT_EQ(s.size(), 100u);
  Event late = Make(1000 + 3600, "pageview", "/", 999);
  s.Assign(&late, 0, true);
  EXPECT_EQ(s.Sweep(), 100u);
  EXPECT_EQ(s.size(), 1u);
}

TEST(SessionizerTest, SitesDoNotShareSessions) {
  Sessionizer s;
  Event a = Make(1000);
  s.Assign(&a, 0, true);
  Event b = Make(1001);
  b.site_id = 2;
  s.Assign(&b, 0, true);
  EXPECT_TRUE(b.first_in_session);
  EXPECT_NE(a.session_id, b.session_id);
}

TEST(SessionizerTest, EngagementEventsDoNotChangeTheSession) {
  Sessionizer s;
  Event lone = Make(900, "engagement");
  EXPECT_FALSE(s.Assign(&lone, 0, false));  // no session: dropped
  EXPECT_EQ(s.size(), 0u);
  Event a = Make(1000);
  ASSERT_TRUE(s.Assign(&a, 0, true));
  Event g = Make(1500, "engagement");
  ASSERT_TRUE(s.Assign(&g, 0, false));
  EXPECT_EQ(g.session_id, a.session_id);
  EXPECT_EQ(g.s_events, 1);
  EXPECT_TRUE(g.s_bounce);
  EXPECT_EQ(g.d_duration_ms, 0);
  EXPECT_EQ(g.s_duration_ms, 0);
  EXPECT_EQ(s.CountLive(1, 1400 * 1000), 1);  // but it keeps the visitor live
}

TEST(SessionizerTest, ForgetStartsNewSessions) {
  Sessionizer s;
  Event a = Make(1000);
  s.Assign(&a, 0, true);
  EXPECT_EQ(s.Forget({a.session_id}), 1u);
  Event b = Make(1010);
  s.Assign(&b, 0, true);
  EXPECT_TRUE(b.first_in_session);
  EXPECT_EQ(b.d_bounce, 1);  // no retraction of a bounce never stored
}

TEST(SessionizerTest, LiveVisitorsAndHeartbeats) {
  Sessionizer s;
  Event a = Make(1000, "pageview", "/", 1);
  s.Assign(&a, 0, true);
  Event b = Make(1100, "pageview", "/", 2);
  s.Assign(&b, 0, true);
  EXPECT_EQ(s.CountLive(1, 1000 * 1000), 2);
  EXPECT_EQ(s.CountLive(1, 1050 * 1000), 1);
  EXPECT_TRUE(s.Touch(1, 1, 0, 1200 * 1000));  // heartbeat of visitor 1
  EXPECT_EQ(s.CountLive(1, 1150 * 1000), 1);
  EXPECT_FALSE(s.Touch(1, 99, 0, 1200 * 1000));  // no session
  EXPECT_EQ(s.CountLive(2, 0), 0);               // other site
}

// ---- Shared state (through a Coordinator; the local one here) ----

std::unique_ptr<Coordinator> Local() {
  absl::StatusOr<std::unique_ptr<Coordinator>> c = OpenCoordinator("local://");
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

TEST(SessionStateTest, EncodeDecodeRoundTrip) {
  SessionState s;
  s.session_id = 0xFEDCBA9876543210ULL;
  s.visitor_id = 42;
  s.start_ms = 1793620800000;
  s.last_ms = s.start_ms + 61000;
  s.live_ms = s.start_ms + 90000;
  s.site_id = 7;
  s.pageviews = 3;
  s.events = 5;
  s.interactive_custom = 1;
  s.exit_page = "/pricing";
  s.visit.entry_page = "/";
  s.visit.source = "Google";
  s.visit.utm_content = "x";
  s.visit.locale = "de-DE";
  s.seen = {1, 2, 0xFFFFFFFFFFFFFFFFULL};
  const std::string bytes = EncodeSessionState(s);
  EXPECT_LT(bytes.size(), 110u);  // compact
  absl::StatusOr<SessionState> back = DecodeSessionState(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->session_id, s.session_id);
  EXPECT_EQ(back->visitor_id, s.visitor_id);
  EXPECT_EQ(back->start_ms, s.start_ms);
  EXPECT_EQ(back->last_ms, s.last_ms);
  EXPECT_EQ(back->live_ms, s.live_ms);
  EXPECT_EQ(back->site_id, s.site_id);
  EXPECT_EQ(back->pageviews, 3);
  EXPECT_EQ(back->events, 5);
  EXPECT_EQ(back->interactive_custom, 1);
  EXPECT_EQ(back->exit_page, "/pricing");
  EXPECT_EQ(back->visit, s.visit);
  EXPECT_EQ(back->seen, s.seen);
  EXPECT_FALSE(DecodeSessionState("").ok());
  EXPECT_FALSE(DecodeSessionState(bytes.substr(0, bytes.size() - 3)).ok());
  EXPECT_FALSE(DecodeSessionState(bytes + "x").ok());
}

// Runs AssignBatch on copies of `events` (all interactive, no previous ids).
std::vector<bool> Batch(Sessionizer& s, std::vector<Event>& events,
                        std::vector<uint64_t> prev = {}) {
  prev.resize(events.size(), 0);
  std::vector<bool> interactive(events.size(), true);
  absl::StatusOr<std::vector<bool>> kept =
      s.AssignBatch(absl::MakeSpan(events), prev, interactive);
  EXPECT_TRUE(kept.ok()) << kept.status();
  return kept.ok() ? *kept : std::vector<bool>();
}

TEST(SharedSessionizerTest, StampsLikeTheLocalPathAcrossWorkers) {
  std::unique_ptr<Coordinator> coord = Local();
  Sessionizer local;
  Sessionizer w1(absl::Minutes(30), coord.get());
  Sessionizer w2(absl::Minutes(30), coord.get());
  ASSERT_TRUE(w1.shared());
  // The same sequence, locally in one sessionizer and alternating between
  // two shared ones, gives the same stamps.
  std::vector<Event> want = {
      Make(1000, "pageview", "/a"), Make(1010, "signup", "/a"),
      Make(1060, "pageview", "/b"), Make(1100, "engagement", "/b"),
      Make(1160, "pageview", "/a"), Make(1000 + 3 * 3600, "pageview", "/c")};
  std::vector<Event> got = want;
  for (size_t i = 0; i < want.size(); ++i) {
    const bool interactive = !want[i].is_engagement();
    ASSERT_TRUE(local.Assign(&want[i], 0, interactive));
    Sessionizer& w = i % 2 == 0 ? w1 : w2;
    std::vector<Event> one = {got[i]};
    absl::StatusOr<std::vector<bool>> kept =
        w.AssignBatch(absl::MakeSpan(one), std::vector<uint64_t>{0},
                      std::vector<bool>{interactive});
    ASSERT_TRUE(kept.ok()) << kept.status();
    ASSERT_TRUE((*kept)[0]);
    got[i] = one[0];
  }
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].session_id, want[i].session_id);
    EXPECT_EQ(got[i].session_start_ms, want[i].session_start_ms);
    EXPECT_EQ(got[i].first_in_session, want[i].first_in_session);
    EXPECT_EQ(got[i].first_page, want[i].first_page);
    EXPECT_EQ(got[i].first_name, want[i].first_name);
    EXPECT_EQ(got[i].s_pageviews, want[i].s_pageviews);
    EXPECT_EQ(got[i].s_events, want[i].s_events);
    EXPECT_EQ(got[i].s_bounce, want[i].s_bounce);
    EXPECT_EQ(got[i].s_duration_ms, want[i].s_duration_ms);
    EXPECT_EQ(got[i].s_exit_page, want[i].s_exit_page);
    EXPECT_EQ(got[i].d_bounce, want[i].d_bounce);
    EXPECT_EQ(got[i].d_duration_ms, want[i].d_duration_ms);
    EXPECT_EQ(got[i].visit, want[i].visit);
  }
  EXPECT_EQ(got[4].s_pageviews, 3);      // the two workers shared one session
  EXPECT_TRUE(got[5].first_in_session);  // after the timeout: a new one
  EXPECT_EQ(w1.size(), 0u);              // nothing kept in memory
}

// The local path keeps sessions compactly (packed visit, inline seen
// hashes spilling to a set); the shared path keeps SessionState. Random
// traffic with long sessions (many distinct pages and names), engagement,
// non-interactive events, previous-day ids and varied visit attributes must
// be stamped identically by both.
TEST(SharedSessionizerTest, RandomTrafficStampsLikeTheLocalPath) {
  std::unique_ptr<Coordinator> coord = Local();
  Sessionizer local;
  Sessionizer shared(absl::Minutes(30), coord.get());
  std::mt19937_64 rng(3);
  int64_t ts = 1000000;
  int spilled_sessions = 0;
  for (int i = 0; i < 4000; ++i) {
    ts += static_cast<int64_t>(rng() % 90);
    const uint64_t visitor = 1 + rng() % 12;
    const uint64_t r = rng();
    std::string name = r % 7 == 0   ? "engagement"
                       : r % 5 == 0 ? "custom" + std::to_string(r % 11)
                                    : "pageview";
    Event e = Make(ts, name, "/p" + std::to_string(rng() % 40), visitor);
    e.site_id = 1 + static_cast<int64_t>(rng() % 2);
    e.visit.source = std::string(rng() % 40, 's');  // long: heap strings
    e.visit.referrer = "ref" + std::to_string(rng() % 3);
    e.visit.utm_campaign = rng() % 3 ? "" : "campaign";
    e.visit.country = "DE";
    e.visit.locale = std::string(rng() % 20, 'l');
    const uint64_t prev = rng() % 4 == 0 ? visitor + 100 : 0;
    const bool interactive = rng() % 3 != 0;
    if (rng() % 500 == 0) ts += 31 * 60;  // some sessions time out
    Event got = e;
    const bool kept_local = local.Assign(&e, prev, interactive);
    std::vector<Event> one = {got};
    absl::StatusOr<std::vector<bool>> kept =
        shared.AssignBatch(absl::MakeSpan(one), std::vector<uint64_t>{prev},
                           std::vector<bool>{interactive});
    ASSERT_TRUE(kept.ok()) << kept.status();
    ASSERT_EQ((*kept)[0], kept_local) << i;
    if (!kept_local) continue;
    got = one[0];
    SCOPED_TRACE(i);
    ASSERT_EQ(got.visitor_id, e.visitor_id);
    ASSERT_EQ(got.session_id, e.session_id);
    ASSERT_EQ(got.session_start_ms, e.session_start_ms);
    ASSERT_EQ(got.first_in_session, e.first_in_session);
    ASSERT_EQ(got.first_page, e.first_page);
    ASSERT_EQ(got.first_name, e.first_name);
    ASSERT_EQ(got.s_pageviews, e.s_pageviews);
    ASSERT_EQ(got.s_events, e.s_events);
    ASSERT_EQ(got.s_bounce, e.s_bounce);
    ASSERT_EQ(got.s_duration_ms, e.s_duration_ms);
    ASSERT_EQ(got.s_exit_page, e.s_exit_page);
    ASSERT_EQ(got.d_bounce, e.d_bounce);
    ASSERT_EQ(got.d_duration_ms, e.d_duration_ms);
    ASSERT_EQ(got.visit, e.visit);
    if (e.s_events > 12) ++spilled_sessions;
  }
  EXPECT_GT(spilled_sessions, 100);  // the seen hashes left the inline slots
}

TEST(SharedSessionizerTest, OneBatchAppliesInOrderAndDropsLoneEngagement) {
  std::unique_ptr<Coordinator> coord = Local();
  Sessionizer w(absl::Minutes(30), coord.get());
  std::vector<Event> events = {
      Make(900, "engagement", "/", 5), Make(1000, "pageview", "/a", 1),
      Make(1001, "pageview", "/a", 2), Make(1030, "pageview", "/b", 1)};
  std::vector<bool> kept = Batch(w, events);
  EXPECT_EQ(kept, (std::vector<bool>{false, true, true, true}));
  EXPECT_EQ(events[3].session_id, events[1].session_id);
  EXPECT_EQ(events[3].d_bounce, -1);
  EXPECT_EQ(events[3].d_duration_ms, 30000);
  EXPECT_NE(events[2].session_id, events[1].session_id);
  // Live visitors through the coordinator.
  absl::StatusOr<int64_t> live = w.CountLiveShared(1, 1000 * 1000);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(*live, 2);
  absl::StatusOr<bool> touched = w.TouchShared(1, 2, 0, 1500 * 1000);
  ASSERT_TRUE(touched.ok());
  EXPECT_TRUE(*touched);
  EXPECT_EQ(*w.CountLiveShared(1, 1400 * 1000), 1);
  EXPECT_FALSE(*w.TouchShared(1, 99, 0, 1500 * 1000));
}

TEST(SharedSessionizerTest, PreviousDayIdContinuesTheSession) {
  std::unique_ptr<Coordinator> coord = Local();
  Sessionizer w1(absl::Minutes(30), coord.get());
  Sessionizer w2(absl::Minutes(30), coord.get());
  std::vector<Event> a = {Make(1000, "pageview", "/", 7)};
  Batch(w1, a);
  std::vector<Event> b = {Make(1100, "pageview", "/x", 8)};
  Batch(w2, b, {7});
  EXPECT_EQ(b[0].session_id, a[0].session_id);
  EXPECT_EQ(b[0].visitor_id, 7u);
  EXPECT_EQ(b[0].s_pageviews, 2);
}

TEST(SharedSessionizerTest, LostCompareAndSetIsRedoneOnTheWinnersState) {
  std::unique_ptr<Coordinator> coord = Local();
  Sessionizer w1(absl::Minutes(30), coord.get());
  Sessionizer w2(absl::Minutes(30), coord.get());
  std::vector<Event> first = {Make(1000, "pageview", "/a")};
  Batch(w1, first);
  // While w1 holds a loaded state, w2 extends the session: w1's write must
  // lose, and its event be redone on top of w2's.
  int races = 0;
  w1.set_before_store_for_test([&] {
    if (races++ > 0) return;
    std::vector<Event> other = {Make(1020, "pageview", "/b")};
    Batch(w2, other);
    EXPECT_EQ(other[0].s_pageviews, 2);
  });
  std::vector<Event> mine = {Make(1030, "pageview", "/c"),
                             Make(1031, "pageview", "/x", /*visitor=*/77)};
  Batch(w1, mine);
  EXPECT_EQ(races, 2);  // one retry
  EXPECT_EQ(mine[0].session_id, first[0].session_id);
  EXPECT_EQ(mine[0].s_pageviews, 3);  // 1000 (w1), 1020 (w2), 1030 (w1)
  EXPECT_EQ(mine[0].d_bounce, 0);     // w2 already retracted the bounce
  EXPECT_EQ(mine[0].d_duration_ms, 10000);
  EXPECT_EQ(mine[0].s_duration_ms, 30000);
  EXPECT_EQ(mine[1].s_pageviews, 1);  // the other visitor was written once
  std::vector<Event> next = {Make(1040, "pageview", "/x", 77)};
  Batch(w2, next);
  EXPECT_EQ(next[0].s_pageviews, 2);
}

TEST(SharedSessionizerTest, EndlessConflictsGiveUpWithAborted) {
  std::unique_ptr<Coordinator> coord = Local();
  Sessionizer w1(absl::Minutes(30), coord.get());
  Sessionizer w2(absl::Minutes(30), coord.get());
  int64_t t = 1000;
  w1.set_before_store_for_test([&] {
    std::vector<Event> other = {Make(++t, "pageview", "/b")};
    Batch(w2, other);
  });
  std::vector<Event> mine = {Make(1500, "pageview", "/c")};
  absl::StatusOr<std::vector<bool>> kept = w1.AssignBatch(
      absl::MakeSpan(mine), std::vector<uint64_t>{0}, std::vector<bool>{true});
  EXPECT_TRUE(absl::IsAborted(kept.status())) << kept.status();
}

TEST(SharedSessionizerTest, ForgetEventsDeletesTheSharedSession) {
  std::unique_ptr<Coordinator> coord = Local();
  Sessionizer w(absl::Minutes(30), coord.get());
  std::vector<Event> a = {Make(1000)};
  Batch(w, a);
  ASSERT_TRUE(w.ForgetEvents(a).ok());
  std::vector<Event> b = {Make(1010)};
  Batch(w, b);
  EXPECT_TRUE(b[0].first_in_session);
  EXPECT_EQ(b[0].d_bounce, 1);
}

}  // namespace
}  // namespace analytics
