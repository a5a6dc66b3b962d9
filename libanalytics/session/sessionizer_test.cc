#include "libanalytics/session/sessionizer.h"

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace analytics
