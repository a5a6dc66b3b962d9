#include "libanalytics/session/sessionizer.h"

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "analytics/coordinator.h"
#include "gtest/gtest.h"
#include "libanalytics/core/visit_fields.h"
#include "libanalytics/sketch/hll.h"

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

// ---- The local path against a plain reference ----

// The rules of sessionizer.h written the plain way: a map of (site, visitor)
// to a state holding the visit as VisitAttrs and the seen pages and names
// as strings, swept every 65,536 Assign calls like the Sessionizer.
class ReferenceSessionizer {
 public:
  explicit ReferenceSessionizer(int64_t timeout_ms) : timeout_ms_(timeout_ms) {}

  bool Assign(Event* e, uint64_t prev_visitor_id, bool interactive) {
    watermark_ = std::max(watermark_, e->ts_ms);
    if (++assigns_ % 65536 == 0) Sweep();
    State* s = Live(e->site_id, e->visitor_id, e->ts_ms);
    if (s == nullptr && prev_visitor_id != 0) {
      s = Live(e->site_id, prev_visitor_id, e->ts_ms);
      if (s != nullptr) e->visitor_id = prev_visitor_id;
    }
    if (e->name == "engagement") {
      if (s == nullptr) return false;
      s->live_ms = std::max(s->live_ms, e->ts_ms);
      e->visit = s->visit;
      e->first_in_session = e->first_page = e->first_name = false;
      Stamp(*s, e);
      e->d_bounce = 0;
      e->d_duration_ms = 0;
      return true;
    }
    int prev_bounce = 0;
    int64_t prev_duration = 0;
    if (s == nullptr) {
      s = &sessions_[{e->site_id, e->visitor_id}];
      *s = State();
      s->session_id = HyperLogLog::HashKey(Key(e->site_id, e->visitor_id) ^
                                           static_cast<uint64_t>(e->ts_ms));
      s->visitor_id = e->visitor_id;
      s->site_id = e->site_id;
      s->start_ms = s->last_ms = e->ts_ms;
      e->visit.entry_page = e->page;
      s->visit = e->visit;
      e->first_in_session = true;
    } else {
      prev_bounce = Bounce(*s);
      prev_duration = s->last_ms - s->start_ms;
      e->visit = s->visit;
      e->first_in_session = false;
    }
    s->events++;
    if (e->name == "pageview") {
      s->pageviews++;
      s->exit_page = e->page;
    } else if (interactive) {
      s->interactive_custom++;
    }
    s->last_ms = std::max(s->last_ms, e->ts_ms);
    s->live_ms = std::max(s->live_ms, e->ts_ms);
    e->first_page = s->pages.insert(e->page).second;
    e->first_name = s->names.insert(e->name).second;
    Stamp(*s, e);
    e->d_bounce = static_cast<int8_t>(Bounce(*s) - prev_bounce);
    e->d_duration_ms = e->s_duration_ms - prev_duration;
    return true;
  }

  void Restore(const Event& last) {
    State& s = sessions_[{last.site_id, last.visitor_id}];
    s = State();
    s.session_id = last.session_id;
    s.visitor_id = last.visitor_id;
    s.site_id = last.site_id;
    s.start_ms = last.session_start_ms;
    s.last_ms = last.session_start_ms + last.s_duration_ms;
    s.live_ms = last.ts_ms;
    s.pageviews = last.s_pageviews;
    s.events = last.s_events;
    s.interactive_custom = last.s_pageviews == 1 && !last.s_bounce ? 1 : 0;
    s.exit_page = last.s_exit_page;
    s.visit = last.visit;
    s.pages = {last.page};
    s.names = {last.name};
    watermark_ = std::max(watermark_, last.ts_ms);
  }

  size_t Sweep() {
    return std::erase_if(sessions_, [&](const auto& kv) {
      return kv.second.last_ms < watermark_ - timeout_ms_;
    });
  }
  size_t Forget(const absl::flat_hash_set<uint64_t>& ids) {
    return std::erase_if(sessions_, [&](const auto& kv) {
      return ids.contains(kv.second.session_id);
    });
  }
  bool Touch(int64_t site, uint64_t visitor, uint64_t prev, int64_t ts_ms) {
    for (uint64_t id : {visitor, prev}) {
      if (id == 0) continue;
      if (State* s = Live(site, id, ts_ms)) {
        s->live_ms = std::max(s->live_ms, ts_ms);
        return true;
      }
    }
    return false;
  }
  int64_t CountLive(int64_t site, int64_t since_ms) const {
    std::set<uint64_t> visitors;
    for (const auto& [key, s] : sessions_) {
      if (s.site_id == site && s.live_ms >= since_ms) {
        visitors.insert(s.visitor_id);
      }
    }
    return static_cast<int64_t>(visitors.size());
  }
  size_t size() const { return sessions_.size(); }

 private:
  struct State {
    uint64_t session_id = 0, visitor_id = 0;
    int64_t site_id = 0, start_ms = 0, last_ms = 0, live_ms = 0;
    int32_t pageviews = 0, events = 0, interactive_custom = 0;
    std::string exit_page;
    VisitAttrs visit;
    std::set<std::string> pages, names;
  };
  // The sessionizer's key hash (session ids derive from it).
  static uint64_t Key(int64_t site, uint64_t visitor) {
    return HyperLogLog::HashKey(
        visitor ^ (static_cast<uint64_t>(site) * 0x9E3779B97F4A7C15ULL));
  }
  static int Bounce(const State& s) {
    return s.pageviews == 1 && s.interactive_custom == 0;
  }
  State* Live(int64_t site, uint64_t visitor, int64_t ts_ms) {
    auto it = sessions_.find({site, visitor});
    if (it == sessions_.end() || ts_ms - it->second.last_ms > timeout_ms_) {
      return nullptr;
    }
    return &it->second;
  }
  static void Stamp(const State& s, Event* e) {
    e->session_id = s.session_id;
    e->session_start_ms = s.start_ms;
    e->s_pageviews = s.pageviews;
    e->s_events = s.events;
    e->s_bounce = Bounce(s);
    e->s_duration_ms = s.last_ms - s.start_ms;
    e->s_exit_page = s.exit_page;
  }

  const int64_t timeout_ms_;
  int64_t watermark_ = 0;
  int64_t assigns_ = 0;
  std::map<std::pair<int64_t, uint64_t>, State> sessions_;
};

// The first field where two stamped events differ ("" if none).
std::string StampDiff(const Event& a, const Event& b) {
  if (a.visitor_id != b.visitor_id) return "visitor_id";
  if (a.session_id != b.session_id) return "session_id";
  if (a.session_start_ms != b.session_start_ms) return "session_start_ms";
  for (size_t i = 0; i < std::size(kVisitFields); ++i) {
    if (a.visit.*kVisitFields[i] != b.visit.*kVisitFields[i]) {
      return "visit field " + std::to_string(i);
    }
  }
  if (a.first_in_session != b.first_in_session) return "first_in_session";
  if (a.first_page != b.first_page) return "first_page";
  if (a.first_name != b.first_name) return "first_name";
  if (a.s_pageviews != b.s_pageviews) return "s_pageviews";
  if (a.s_events != b.s_events) return "s_events";
  if (a.s_bounce != b.s_bounce) return "s_bounce";
  if (a.s_duration_ms != b.s_duration_ms) return "s_duration_ms";
  if (a.s_exit_page != b.s_exit_page) return "s_exit_page";
  if (a.d_bounce != b.d_bounce) return "d_bounce";
  if (a.d_duration_ms != b.d_duration_ms) return "d_duration_ms";
  if (a.name != b.name || a.page != b.page || a.ts_ms != b.ts_ms ||
      a.site_id != b.site_id) {
    return "input fields";
  }
  return "";
}

// Random traffic through the Sessionizer and the reference: every stamped
// field of every event, and Sweep, Forget, Touch, CountLive, size and
// Restore (into a restarted pair) must agree. The traffic covers what the
// compact local state special-cases: visits and exit pages too long for
// the inline buffer (and fields of 255+ bytes), names close to "pageview"
// and "engagement", revisited entry pages, long sessions (seen hashes
// spilling), previous-day ids (equal to today's or not), late events
// (older than the watermark, also across the periodic sweep) and timeouts.
TEST(SessionizerTest, RandomTrafficStampsLikeAReference) {
  constexpr int64_t kTimeoutMs = 30 * 60 * 1000;
  auto got = std::make_unique<Sessionizer>(absl::Milliseconds(kTimeoutMs));
  auto want = std::make_unique<ReferenceSessionizer>(kTimeoutMs);
  std::mt19937_64 rng(11);
  auto pick = [&](uint64_t n) { return rng() % n; };
  auto text = [&](size_t n) {
    std::string s(n, 'a');
    for (char& c : s) c = static_cast<char>('a' + pick(3));
    return s;
  };
  const std::vector<std::string> names = {
      "pageview",   "pageview",   "pageview",  "pageview",
      "engagement", "signup",     "",          "pageviex",
      "Pageview",   "engagemenx", "pageviews", "engagements",
      "download",   "pageview"};
  std::vector<Event> recent;  // stamped events, for Forget and Restore
  int64_t ts = 1'000'000'000;
  int kept = 0, continued = 0, prev_continued = 0, late = 0, big_visits = 0;
  for (int i = 0; i < 240'000; ++i) {
    if (i == 160'000) {
      // A restart: new instances, restored from the latest events.
      got = std::make_unique<Sessionizer>(absl::Milliseconds(kTimeoutMs));
      want = std::make_unique<ReferenceSessionizer>(kTimeoutMs);
      std::map<uint64_t, const Event*> last;  // by session id
      for (const Event& ev : recent) last[ev.session_id] = &ev;
      for (const auto& [id, ev] : last) {
        got->Restore(*ev);
        want->Restore(*ev);
      }
      ASSERT_EQ(got->size(), want->size());
    }
    SCOPED_TRACE(i);
    ts += static_cast<int64_t>(pick(4000));
    if (pick(2000) == 0) ts += 2 * kTimeoutMs;  // everybody times out
    Event e;
    e.site_id = 1 + static_cast<int64_t>(pick(3));
    e.ts_ms = ts;
    if (pick(20) == 0) {  // late: before the watermark, maybe before a sweep
      e.ts_ms -= static_cast<int64_t>(pick(2 * kTimeoutMs));
      ++late;
    }
    e.name = names[pick(names.size())];
    e.page = pick(50) == 0 ? "/" + text(40 + pick(300))
                           : "/p" + std::to_string(pick(8));
    e.visitor_id = 1 + pick(600);
    uint64_t prev = 0;
    const uint64_t r = pick(6);
    if (r == 0) prev = e.visitor_id;                  // one salt for two days
    if (r == 1) prev = 1 + (e.visitor_id + 7) % 600;  // yesterday's id
    size_t total = 0;
    const bool big = pick(30) == 0;
    for (std::string VisitAttrs::*f : kVisitFields) {
      // Values of one length differ in at most one byte (as "en-US" and
      // "en-GB" do), so that comparing them must look at every byte.
      const size_t n = big ? pick(300) : pick(pick(4) == 0 ? 20 : 6);
      std::string v = std::string(300, 'v').substr(0, n);
      if (n > 0 && pick(2) == 0) v[pick(n)] = 'w';
      e.visit.*f = std::move(v);
      total += (e.visit.*f).size();
    }
    if (total > 127) ++big_visits;
    const bool interactive = pick(3) != 0;

    Event w = e;
    const bool kept_want = want->Assign(&w, prev, interactive);
    ASSERT_EQ(got->Assign(&e, prev, interactive), kept_want);
    if (!kept_want) continue;
    const std::string diff = StampDiff(e, w);
    ASSERT_EQ(diff, "") << "event " << i << " (" << e.name << " at " << e.ts_ms
                        << ", site " << e.site_id << ")";
    ++kept;
    if (!e.first_in_session) ++continued;
    if (e.visitor_id == prev && prev != 0 && r == 1) ++prev_continued;
    recent.push_back(e);
    if (recent.size() > 3000)
      recent.erase(recent.begin(), recent.begin() + 1000);

    switch (pick(400)) {
      case 0:
        ASSERT_EQ(got->Sweep(), want->Sweep());
        break;
      case 1: {
        absl::flat_hash_set<uint64_t> ids;
        for (int k = 0; k < 3; ++k) {
          ids.insert(recent[pick(recent.size())].session_id);
        }
        ids.insert(12345);  // no such session
        ASSERT_EQ(got->Forget(ids), want->Forget(ids));
        break;
      }
      case 2: {
        const int64_t site = 1 + static_cast<int64_t>(pick(3));
        const uint64_t v = 1 + pick(600), p = pick(2) ? 0 : 1 + pick(600);
        const int64_t at = ts - static_cast<int64_t>(pick(kTimeoutMs));
        ASSERT_EQ(got->Touch(site, v, p, at), want->Touch(site, v, p, at));
        break;
      }
      case 3:
        for (int64_t site = 1; site <= 3; ++site) {
          const int64_t since = ts - static_cast<int64_t>(pick(kTimeoutMs));
          ASSERT_EQ(got->CountLive(site, since), want->CountLive(site, since));
        }
        ASSERT_EQ(got->size(), want->size());
        break;
      case 4: {  // Restore over a session that may be live
        const Event& last = recent[pick(recent.size())];
        got->Restore(last);
        want->Restore(last);
        break;
      }
    }
  }
  EXPECT_EQ(got->size(), want->size());
  // The traffic reached the cases it is meant to.
  EXPECT_GT(continued, 20'000);
  EXPECT_GT(prev_continued, 1'000);
  EXPECT_GT(late, 10'000);
  EXPECT_GT(big_visits, 5'000);
  EXPECT_GT(kept, 200'000);
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
