// End-to-end tests of the Engine on the memory and SQLite stores.
#include "analytics/engine.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "analytics/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libanalytics/core/event_testing.h"
#include "libanalytics/engine/engine_testing.h"
#include "libanalytics/store/forwarding_store.h"
#include "rapidjson/document.h"

namespace analytics {
namespace {

using ::analytics::testing::ExpectSameEvent;
using ::analytics::testing::ExpectSameVisit;

constexpr char kChrome[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36";
constexpr char kIphone[] =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

std::string TempDir() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "engXXXXXX").string();
  char* d = mkdtemp(tmpl.data());
  return d;
}

class EngineTest : public ::testing::Test {
 protected:
  // 2026-11-02 12:00:00 UTC, a Monday.
  FakeClock clock_{absl::FromUnixSeconds(1793620800)};

  std::unique_ptr<Engine> Open(std::string url = "memory://") {
    Options o;
    o.store_url = url;
    o.clock = &clock_;
    auto e = Engine::Open(o);
    EXPECT_TRUE(e.ok()) << e.status();
    return *std::move(e);
  }

  EventInput Ev(std::string page, int64_t offset_s = 0,
                std::string ip = "198.51.100.1", std::string ua = kChrome) {
    EventInput e;
    e.site = "example.com";
    e.url = "https://example.com" + page;
    e.ts = clock_.Now() + absl::Seconds(offset_s);
    e.ip = std::move(ip);
    e.user_agent = std::move(ua);
    return e;
  }

  static rapidjson::Document Q(Engine& engine, const std::string& body) {
    auto r = engine.Query(body);
    EXPECT_TRUE(r.ok()) << r.status();
    rapidjson::Document d;
    d.Parse(r.ok() ? r->c_str() : "{}");
    return d;
  }
};

TEST_F(EngineTest, UnknownSiteIsNotFound) {
  auto engine = Open();
  auto r = engine->Track(Ev("/"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr("example.com"));
}

TEST_F(EngineTest, InvalidEventNamesField) {
  auto engine = Open();
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  EventInput e = Ev("/");
  e.name = std::string(121, 'x');
  auto r = engine->Track(e);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("name"));
}

TEST_F(EngineTest, BotsAreDroppedAndCounted) {
  auto engine = Open();
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  auto r = engine->Track(Ev("/", 0, "1.2.3.4",
                            "Mozilla/5.0 (compatible; Googlebot/2.1; "
                            "+http://www.google.com/bot.html)"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->accepted);
  EXPECT_EQ(r->dropped_reason, "bot:crawler");
  EXPECT_EQ(engine->Stats().dropped["bot:crawler"], 1);
  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["pageviews"]})");
  EXPECT_EQ(d["results"].Size(), 0u);
}

TEST_F(EngineTest, AggregateMetricsOfTwoSessions) {
  auto engine = Open();
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  // Visitor A: two pageviews 60 s apart (not a bounce). Visitor B: one.
  ASSERT_TRUE(engine->Track(Ev("/a", 0, "198.51.100.1")).ok());
  ASSERT_TRUE(engine->Track(Ev("/b", 60, "198.51.100.1")).ok());
  ASSERT_TRUE(engine->Track(Ev("/a", 120, "198.51.100.2", kIphone)).ok());
  for (const char* path : {"rollups", "events"}) {
    std::string body =
        R"({"site_id":"example.com","date_range":"day","metrics":["visitors","visits","pageviews","bounce_rate","visit_duration","views_per_visit","events"])";
    if (std::string(path) == "events") {
      body += R"(,"filters":[["is_not","event:hostname",["x"]]])";
    }
    body += "}";
    auto d = Q(*engine, body);
    ASSERT_EQ(d["results"].Size(), 1u) << path;
    const auto& m = d["results"][0]["metrics"];
    EXPECT_EQ(m[0].GetInt(), 2) << path;   // visitors
    EXPECT_EQ(m[1].GetInt(), 2) << path;   // visits
    EXPECT_EQ(m[2].GetInt(), 3) << path;   // pageviews
    EXPECT_EQ(m[3].GetInt(), 50) << path;  // bounce_rate
    EXPECT_EQ(m[4].GetInt(), 30) << path;  // visit_duration (60+0)/2
    EXPECT_DOUBLE_EQ(m[5].GetDouble(), 1.5) << path;
    EXPECT_EQ(m[6].GetInt(), 3) << path;
    EXPECT_STREQ(d["meta"]["source"].GetString(), path);
  }
}

TEST_F(EngineTest, BreakdownsAndFilters) {
  auto engine = Open();
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  EventInput a = Ev("/pricing", 0, "198.51.100.1");
  a.referrer = "https://www.google.com/search?q=x";
  ASSERT_TRUE(engine->Track(a).ok());
  EventInput b = Ev("/", 10, "198.51.100.2", kIphone);
  b.referrer = "https://news.ycombinator.com/item?id=1";
  ASSERT_TRUE(engine->Track(b).ok());
  ASSERT_TRUE(engine->Track(Ev("/pricing", 20, "198.51.100.2", kIphone)).ok());
  ASSERT_TRUE(engine->Track(Ev("/", 30, "198.51.100.3")).ok());

  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visitors","pageviews"],"dimensions":["visit:source"]})");
  ASSERT_EQ(d["results"].Size(), 3u);
  std::map<std::string, int> visitors;
  for (const auto& r : d["results"].GetArray()) {
    visitors[r["dimensions"][0].GetString()] = r["metrics"][0].GetInt();
  }
  EXPECT_EQ(visitors["Google"], 1);
  EXPECT_EQ(visitors["Hacker News"], 1);
  EXPECT_EQ(visitors["Direct / None"], 1);

  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["pageviews"],"dimensions":["event:page"],"order_by":[["pageviews","desc"]]})");
  ASSERT_EQ(d["results"].Size(), 2u);
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 2);

  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"filters":[["is","visit:device",["Mobile"]]]})");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 1);

  // Two dimensions at once fall back to raw events.
  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["pageviews"],"filters":[["is","visit:device",["Mobile"]],["contains","event:page",["pric"]]]})");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 1);
  EXPECT_STREQ(d["meta"]["source"].GetString(), "events");

  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visits"],"dimensions":["visit:exit_page"]})");
  ASSERT_EQ(d["results"].Size(), 2u);

  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"filters":[["matches","event:page",["^/pr.*g$"]]]})");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 2);
}

TEST_F(EngineTest, TimeseriesInSiteTimeZoneAndComparison) {
  auto engine = Open();
  ASSERT_TRUE(
      engine->AddSite({.domain = "example.com", .timezone = "America/New_York"})
          .ok());
  // 12:00 UTC = 07:00 in New York; one event today, two yesterday.
  ASSERT_TRUE(engine->Track(Ev("/", 0, "198.51.100.1")).ok());
  ASSERT_TRUE(engine->Track(Ev("/", -86400, "198.51.100.2")).ok());
  ASSERT_TRUE(engine->Track(Ev("/", -86400 + 5, "198.51.100.3")).ok());
  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"7d","metrics":["visitors"],"dimensions":["time:day"]})");
  ASSERT_EQ(d["results"].Size(), 2u);
  EXPECT_STREQ(d["results"][0]["dimensions"][0].GetString(), "2026-11-01");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 2);
  EXPECT_STREQ(d["results"][1]["dimensions"][0].GetString(), "2026-11-02");

  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"dimensions":["time:hour"]})");
  ASSERT_EQ(d["results"].Size(), 1u);
  EXPECT_STREQ(d["results"][0]["dimensions"][0].GetString(),
               "2026-11-02 07:00:00");

  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"include":{"comparisons":{"mode":"previous_period"}}})");
  ASSERT_EQ(d["results"].Size(), 1u);
  EXPECT_EQ(d["results"][0]["comparison"]["metrics"][0].GetInt(), 2);
  EXPECT_EQ(d["results"][0]["comparison"]["change"][0].GetInt(), -50);
}

TEST_F(EngineTest, EngagementFeedsScrollDepthAndTimeOnPageOnly) {
  auto engine = Open();
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  auto engagement = [&](std::string page, int64_t offset, double sd, double ms,
                        std::string ip = "198.51.100.1") {
    EventInput e = Ev(page, offset, ip);
    e.name = "engagement";
    e.interactive = false;
    e.props = {{"sd", absl::StrCat(sd)}, {"e", absl::StrCat(ms)}};
    return e;
  };
  // No session yet: dropped.
  auto r = engine->Track(engagement("/a", -10, 50, 1000, "198.51.100.9"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dropped_reason, "engagement_without_session");
  ASSERT_TRUE(engine->Track(Ev("/a", 0)).ok());
  ASSERT_TRUE(engine->Track(engagement("/a", 10, 40, 10000)).ok());
  ASSERT_TRUE(engine->Track(engagement("/a", 20, 80, 20000)).ok());
  ASSERT_TRUE(engine->Track(Ev("/b", 30, "198.51.100.2")).ok());
  ASSERT_TRUE(
      engine->Track(engagement("/b", 40, 20, 6000, "198.51.100.2")).ok());
  // Engagement events are not events, pageviews or a bounce-breaker.
  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["events","pageviews","bounce_rate","visit_duration"]})");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 2);
  EXPECT_EQ(d["results"][0]["metrics"][1].GetInt(), 2);
  EXPECT_EQ(d["results"][0]["metrics"][2].GetInt(), 100);
  EXPECT_EQ(d["results"][0]["metrics"][3].GetInt(), 0);
  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["scroll_depth","time_on_page","pageviews"],"dimensions":["event:page"],"order_by":[["event:page","asc"]]})");
  ASSERT_EQ(d["results"].Size(), 2u);
  EXPECT_STREQ(d["results"][0]["dimensions"][0].GetString(), "/a");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 80);  // max per page
  EXPECT_EQ(d["results"][0]["metrics"][1].GetInt(), 30);  // 10 s + 20 s
  EXPECT_EQ(d["results"][0]["metrics"][2].GetInt(), 1);
  EXPECT_EQ(d["results"][1]["metrics"][0].GetInt(), 20);
  EXPECT_EQ(d["results"][1]["metrics"][1].GetInt(), 6);
  d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"dimensions":["event:name"]})");
  EXPECT_EQ(d["results"].Size(), 1u);  // only "pageview"
}

TEST_F(EngineTest, QueryErrorsNameTheField) {
  auto engine = Open();
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {"{", "body"},
      {R"({"date_range":"day","metrics":["visitors"]})", "site_id"},
      {R"({"site_id":"nope.com","date_range":"day","metrics":["visitors"]})",
       "site_id"},
      {R"({"site_id":"example.com","date_range":"day","metrics":["bogus"]})",
       "metrics"},
      {R"({"site_id":"example.com","date_range":"fortnight","metrics":["visitors"]})",
       "date_range"},
      {R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"dimensions":["visit:shoe_size"]})",
       "dimensions"},
      {R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"filters":[["matches","event:page",["(unclosed"]]]})",
       "filters"},
      {R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"filters":[["xor","event:page",["/"]]]})",
       "filters"},
      {R"({"site_id":"example.com","date_range":"day","metrics":["visitors"],"order_by":[["pageviews","desc"]]})",
       "order_by"},
      {R"({"site_id":"example.com","date_range":"day","metrics":["percentage"]})",
       "metrics"},
  };
  for (const Case& c : cases) {
    auto r = engine->Query(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_THAT(std::string(r.status().message()),
                ::testing::StartsWith(c.field))
        << c.body;
  }
}

TEST_F(EngineTest, ConcurrentTrackSharesCommits) {
  std::string dir = TempDir();
  auto engine = Open("sqlite://" + dir + "/a.db");
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = engine->Track(
            Ev("/p" + std::to_string(i), i, "10.0.0." + std::to_string(t)));
        ASSERT_TRUE(r.ok() && r->accepted);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(engine->Stats().accepted, 800);
  EXPECT_LT(engine->Stats().commits, 800);  // group commit shared transactions
  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["pageviews","visitors"]})");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 800);
  EXPECT_EQ(d["results"][0]["metrics"][1].GetInt(), 16);
  std::filesystem::remove_all(dir);
}

// Read-your-writes under concurrent ingestion: the folder lets group
// commits gather before folding them (kFoldDelay), so a query right after
// an acknowledged Track must still see it. Each thread tracks pageviews of
// its own page and queries that page's count after every one.
TEST_F(EngineTest, QueryAfterConcurrentTrackSeesEveryAcknowledgedEvent) {
  std::string dir = TempDir();
  auto engine = Open("sqlite://" + dir + "/a.db");
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string page = "/t" + std::to_string(t);
      for (int i = 1; i <= 25; ++i) {
        auto r = engine->Track(Ev(page, i, "10.0.1." + std::to_string(t)));
        ASSERT_TRUE(r.ok() && r->accepted);
        auto d =
            Q(*engine,
              R"({"site_id":"example.com","date_range":"day",)"
              R"("metrics":["pageviews"],"filters":[["is","event:page",[")" +
                  page + R"("]]]})");
        ASSERT_TRUE(d.HasMember("results") && d["results"].IsArray());
        // No row: no pageview of that page yet.
        const int got =
            d["results"].Empty() ? 0 : d["results"][0]["metrics"][0].GetInt();
        EXPECT_EQ(got, i) << page;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::filesystem::remove_all(dir);
}

// SubmitBatch (pipelined TrackBatch): returns before the commit, reports each
// batch's result once, in submission order, and keeps sessions in order
// across batches in flight (one visitor's pageviews over three batches form
// one session; its bounce and duration are right only if they were
// sessionized in order).
TEST_F(EngineTest, SubmitBatchPipelinesInOrder) {
  std::string dir = TempDir();
  auto engine = Open("sqlite://" + dir + "/a.db");
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  absl::Mutex mu;
  std::vector<int> order;
  std::vector<int64_t> accepted;
  int64_t bots = 0;
  for (int b = 0; b < 3; ++b) {
    std::vector<EventInput> batch;
    for (int i = 0; i < 100; ++i) {
      batch.push_back(Ev("/p" + std::to_string(i), b * 100 + i));
    }
    EventInput bot = Ev("/", b, "1.2.3.4",
                        "Mozilla/5.0 (compatible; Googlebot/2.1; "
                        "+http://www.google.com/bot.html)");
    batch.push_back(bot);
    EventInput bad = Ev("/");
    bad.name = std::string(121, 'x');
    batch.push_back(bad);
    ASSERT_TRUE(engine
                    ->SubmitBatch(batch,
                                  [&, b](absl::StatusOr<BatchResult> r) {
                                    absl::MutexLock l(&mu);
                                    order.push_back(b);
                                    ASSERT_TRUE(r.ok()) << r.status();
                                    accepted.push_back(r->accepted);
                                    bots += r->dropped["bot:crawler"];
                                    ASSERT_EQ(r->rejected.size(), 1u);
                                    EXPECT_EQ(r->rejected[0].first, 101u);
                                  })
                    .ok());
  }
  // A batch with nothing to store is answered at once, not lost.
  std::vector<EventInput> only_bad(1, Ev("/"));
  only_bad[0].name = std::string(121, 'x');
  ASSERT_TRUE(engine
                  ->SubmitBatch(only_bad,
                                [&](absl::StatusOr<BatchResult> r) {
                                  absl::MutexLock l(&mu);
                                  order.push_back(3);
                                  EXPECT_TRUE(r.ok() && r->accepted == 0 &&
                                              r->rejected.size() == 1);
                                })
                  .ok());
  {
    absl::MutexLock l(&mu);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return order.size() == 4;
    };
    mu.Await(absl::Condition(&all));
    // The empty batch may finish first; the three committed ones in order.
    std::vector<int> committed;
    for (int b : order) {
      if (b < 3) committed.push_back(b);
    }
    EXPECT_EQ(committed, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(accepted, (std::vector<int64_t>{100, 100, 100}));
    EXPECT_EQ(bots, 3);
  }
  EXPECT_EQ(engine->Stats().accepted, 300);
  EXPECT_EQ(engine->Stats().dropped["bot:crawler"], 3);
  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["pageviews","visits","bounce_rate","visit_duration"]})");
  const auto& m = d["results"][0]["metrics"];
  EXPECT_EQ(m[0].GetInt(), 300);
  EXPECT_EQ(m[1].GetInt(), 1);
  EXPECT_EQ(m[2].GetInt(), 0);
  EXPECT_EQ(m[3].GetInt(), 299);
  engine.reset();
  std::filesystem::remove_all(dir);
}

// Records each stored event's page and seq (after the store's append
// returns), slowly enough that callers queue behind a commit.
class RecordingStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::Status AppendEvents(absl::Span<Event> events) override {
    absl::SleepFor(absl::Microseconds(300));
    absl::Status s = ForwardingStore::AppendEvents(events);
    if (!s.ok()) return s;
    absl::MutexLock l(&mu_);
    for (const Event& e : events) seqs_[e.page].push_back(e.seq);
    ++appends_;
    return s;
  }
  // The seqs under which `page` was stored (one, unless stored twice).
  std::vector<int64_t> Seqs(const std::string& page) {
    absl::MutexLock l(&mu_);
    auto it = seqs_.find(page);
    return it == seqs_.end() ? std::vector<int64_t>{} : it->second;
  }
  int64_t appends() {
    absl::MutexLock l(&mu_);
    return appends_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<int64_t>> seqs_ ABSL_GUARDED_BY(mu_);
  int64_t appends_ ABSL_GUARDED_BY(mu_) = 0;
};

// Opens an engine whose store is wrapped in a W (a ForwardingStore taking
// the real store); *wrapper points to it.
template <typename W>
absl::StatusOr<std::unique_ptr<Engine>> OpenWrapped(const Options& o,
                                                    W** wrapper) {
  SetStoreWrapperForTest([&](std::unique_ptr<Store> base) {
    auto s = std::make_unique<W>(std::move(base));
    *wrapper = s.get();
    return s;
  });
  auto opened = Engine::Open(o);
  SetStoreWrapperForTest(nullptr);
  return opened;
}

// The acknowledgement rule under many concurrent callers: when Track
// returns accepted, its event is in the store, exactly once, after the
// caller's previous events; and commits are shared. max_batch is small so
// that a caller's Pending is often not in the first group committed.
TEST_F(EngineTest, TrackReturnsOnlyAfterItsEventIsStoredUnderConcurrency) {
  RecordingStore* rec = nullptr;
  Options o;
  o.store_url = "memory://";
  o.clock = &clock_;
  o.max_batch = 3;
  auto opened = OpenWrapped(o, &rec);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Engine> engine = *std::move(opened);
  ASSERT_NE(rec, nullptr);
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  constexpr int kThreads = 16, kEach = 30;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int64_t last_seq = 0;
      for (int i = 0; i < kEach; ++i) {
        const std::string page = absl::StrCat("/t", t, "-", i);
        auto r = engine->Track(Ev(page, i, absl::StrCat("10.0.2.", t)));
        ASSERT_TRUE(r.ok() && r->accepted) << page;
        std::vector<int64_t> seqs = rec->Seqs(page);
        ASSERT_EQ(seqs.size(), 1u)
            << page << " acknowledged but stored " << seqs.size() << " times";
        EXPECT_GT(seqs[0], last_seq) << page;
        last_seq = seqs[0];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LT(rec->appends(), kThreads * kEach);  // group commits
  // Alone again: one caller per commit.
  for (int i = 0; i < 3; ++i) {
    const std::string page = absl::StrCat("/alone-", i);
    auto r = engine->Track(Ev(page, i));
    ASSERT_TRUE(r.ok() && r->accepted) << page;
    EXPECT_EQ(rec->Seqs(page).size(), 1u) << page;
  }
  EXPECT_EQ(engine->Stats().accepted, kThreads * kEach + 3);
  ASSERT_TRUE(engine->Close().ok());
}

// A rollup write whose outcome is unknown (the store committed it, then the
// connection dropped before the answer: PostgreSQL restarting) must not be
// applied a second time; one that really failed must not be lost.
class FlakyRollupStore : public ForwardingStore {
 public:
  enum Fault { kNone, kCommitThenFail, kFail };
  using ForwardingStore::ForwardingStore;
  void Arm(Fault f) { fault_ = f; }
  absl::Status ApplyRollups(absl::Span<const RollupRow> deltas, int32_t worker,
                            int64_t checkpoint_seq) override {
    const Fault f = fault_.exchange(kNone);
    if (f == kFail) return absl::UnavailableError("store: connection lost");
    absl::Status s =
        ForwardingStore::ApplyRollups(deltas, worker, checkpoint_seq);
    if (f == kCommitThenFail && s.ok()) {
      return absl::UnavailableError("store: connection lost after COMMIT");
    }
    return s;
  }

 private:
  std::atomic<Fault> fault_{kNone};
};

TEST_F(EngineTest, RollupWriteOfUnknownOutcomeCountsOnce) {
  FlakyRollupStore* flaky = nullptr;
  Options o;
  o.store_url = "memory://";
  o.clock = &clock_;
  o.checkpoint_interval = absl::Hours(1);  // only Flush() checkpoints
  o.checkpoint_events = 1 << 30;
  auto opened = OpenWrapped(o, &flaky);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Engine> engine = *std::move(opened);
  ASSERT_NE(flaky, nullptr);
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  auto track = [&](int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(engine->Track(Ev("/a", i)).ok());
  };
  auto pageviews = [&] {
    auto d = Q(*engine, R"({"site_id":"example.com","date_range":"day",)"
                        R"("metrics":["pageviews"]})");
    EXPECT_STREQ(d["meta"]["source"].GetString(), "rollups");
    return d["results"][0]["metrics"][0].GetInt();
  };

  track(10);
  flaky->Arm(FlakyRollupStore::kCommitThenFail);
  EXPECT_EQ(engine->Flush().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pageviews(), 10);  // stored, although the write "failed"
  track(5);
  ASSERT_TRUE(engine->Flush().ok());
  EXPECT_EQ(pageviews(), 15);  // not 25: the 10 were not applied again

  track(4);
  flaky->Arm(FlakyRollupStore::kFail);
  EXPECT_EQ(engine->Flush().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(engine->Flush().ok());
  EXPECT_EQ(pageviews(), 19);  // the failed write's 4 are applied later
  EXPECT_TRUE(engine->Close().ok());
}

// Acknowledged events survive kill -9: a child process tracks events and
// dies without any cleanup; the parent reopens the store and counts them.
TEST_F(EngineTest, AcknowledgedEventsSurviveAbruptExit) {
  std::string dir = TempDir();
  std::string url = "sqlite://" + dir + "/a.db";
  {
    auto engine = Open(url);
    ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    Options o;
    o.store_url = url;
    o.clock = &clock_;
    o.checkpoint_interval = absl::Hours(1);  // rollups never checkpointed
    o.checkpoint_events = 1 << 30;
    auto engine = Engine::Open(o);
    if (!engine.ok()) _exit(2);
    int acked = 0;
    for (int i = 0; i < 300; ++i) {
      if ((*engine)->Track(Ev("/x", i, "10.1.1." + std::to_string(i % 7))).ok())
        ++acked;
    }
    (void)!write(fds[1], &acked, sizeof(acked));
    _exit(0);  // no destructors, no flush: like kill -9 after the acks
  }
  close(fds[1]);
  int acked = 0;
  ASSERT_EQ(read(fds[0], &acked, sizeof(acked)), sizeof(acked));
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(acked, 300);
  auto engine = Open(url);  // rebuilds rollups from raw events
  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["pageviews","visitors","visits"]})");
  EXPECT_STREQ(d["meta"]["source"].GetString(), "rollups");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 300);
  EXPECT_EQ(d["results"][0]["metrics"][1].GetInt(), 7);
  EXPECT_EQ(d["results"][0]["metrics"][2].GetInt(), 7);
  std::filesystem::remove_all(dir);
}

TEST_F(EngineTest, SessionsContinueAcrossRestart) {
  std::string dir = TempDir();
  std::string url = "sqlite://" + dir + "/a.db";
  {
    auto engine = Open(url);
    ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
    ASSERT_TRUE(engine->Track(Ev("/a", -60)).ok());
  }
  auto engine = Open(url);
  ASSERT_TRUE(engine->Track(Ev("/b", 0)).ok());
  auto d = Q(
      *engine,
      R"({"site_id":"example.com","date_range":"day","metrics":["visits","bounce_rate"]})");
  EXPECT_EQ(d["results"][0]["metrics"][0].GetInt(), 1);
  EXPECT_EQ(d["results"][0]["metrics"][1].GetInt(), 0);
  std::filesystem::remove_all(dir);
}

TEST_F(EngineTest, SitesAddListRemove) {
  auto engine = Open();
  auto s =
      engine->AddSite({.domain = "Example.com", .timezone = "Europe/Berlin"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->domain, "example.com");
  EXPECT_EQ(s->short_id.size(), 12u);
  EXPECT_EQ(engine->AddSite({.domain = "example.com"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine->AddSite({.domain = "bad domain"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->AddSite({.domain = "x.com", .timezone = "Mars/Olympus"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(engine->FindSite(s->short_id).ok());
  ASSERT_TRUE(engine->Track(Ev("/")).ok());
  ASSERT_TRUE(engine->RemoveSite("example.com").ok());
  EXPECT_EQ(engine->FindSite("example.com").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(engine->ListSites()->empty());
}

// TrackBatch enriches into recycled Events (the folder hands folded vectors
// back): many batches of varied sizes, some pipelined (their group commit
// folds into one larger vector, which a later batch splits), with bots,
// invalid inputs and engagement events without a session among them, store
// exactly the events an engine that builds every Event afresh stores (every
// field, in the same seq order), with the same results.
// Checkpoints are spaced under load, but pending rollup cells are bounded:
// past 16,384 of them the folder checkpoints whatever the interval (here an
// hour, so only the bound can make it).
TEST_F(EngineTest, PendingRollupCellsForceACheckpoint) {
  const std::string dir = TempDir();
  const std::string url = "sqlite://" + dir + "/cells.db";
  Options o;
  o.store_url = url;
  o.clock = &clock_;
  o.checkpoint_interval = absl::Hours(1);
  o.checkpoint_events = std::numeric_limits<int64_t>::max();
  auto engine = Engine::Open(o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE((*engine)->AddSite({.domain = "example.com"}).ok());
  // 12,000 distinct pages, each its own session (entry page too): ~24,000
  // hour cells.
  std::vector<EventInput> batch;
  for (int i = 0; i < 12000; ++i) {
    batch.push_back(Ev(absl::StrCat("/page/", i), 0,
                       absl::StrCat("10.2.", i / 250, ".", i % 250)));
  }
  auto r = (*engine)->TrackBatch(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->accepted, 12000);
  auto store = OpenStore(url);
  ASSERT_TRUE(store.ok()) << store.status();
  int64_t checkpoint = 0;
  for (int i = 0; i < 200 && checkpoint == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    checkpoint = (*store)->RollupCheckpoint(0).value_or(0);
  }
  EXPECT_GT(checkpoint, 0) << "no checkpoint within 10 s of 24,000 cells";
  ASSERT_TRUE((*engine)->Close().ok());
  std::filesystem::remove_all(dir);
}

// A batch mixing sites: each event is stored under its own site (Prepare
// looks a site up again only when the domain changes).
TEST_F(EngineTest, MixedSiteBatchKeepsEachEventsSite) {
  const std::string dir = TempDir();
  auto engine = Open("sqlite://" + dir + "/sites.db");
  auto a = engine->AddSite({.domain = "example.com"});
  auto b = engine->AddSite({.domain = "other.org"});
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<EventInput> batch;
  const char* const kOrder[] = {"example.com", "other.org", "other.org",
                                "example.com", "nope.net",  "example.com"};
  for (const char* site : kOrder) {
    EventInput in = Ev("/x");
    in.site = site;
    in.url = absl::StrCat("https://", site, "/x");
    batch.push_back(std::move(in));
  }
  auto r = engine->TrackBatch(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted, 5);
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_EQ(r->rejected[0].first, 4u);
  auto count = [&](const std::string& site) {
    rapidjson::Document d =
        Q(*engine,
          absl::StrCat(R"({"site_id":")", site,
                       R"(","date_range":"day","metrics":["pageviews"]})"));
    return d["results"][0]["metrics"][0].GetInt64();
  };
  EXPECT_EQ(count("example.com"), 3);
  EXPECT_EQ(count("other.org"), 2);
  ASSERT_TRUE(engine->Close().ok());
  std::filesystem::remove_all(dir);
}

TEST_F(EngineTest, RecycledEventsStoreWhatFreshOnesStore) {
  std::mt19937_64 rng(3);
  const char* const kRefs[] = {"", "https://www.google.com/",
                               "https://a-long-referring-host.example.org/"
                               "with/a/long/path",
                               "https://news.ycombinator.com/item?id=1"};
  const char* const kNames[] = {"pageview", "pageview", "pageview", "Signup",
                                "engagement"};
  const size_t kSizes[] = {1, 2, 7, 60, 250, 700};
  std::vector<std::vector<EventInput>> batches(150);
  int64_t offset_ms = -absl::ToInt64Milliseconds(absl::Hours(11));
  for (auto& batch : batches) {
    const size_t n = kSizes[rng() % std::size(kSizes)];
    for (size_t i = 0; i < n; ++i) {
      const int visitor = static_cast<int>(rng() % 300);
      std::string page = absl::StrCat("/p", rng() % 50);
      if (rng() % 3 == 0) absl::StrAppend(&page, "/a/longer/path/of/the/page");
      if (rng() % 15 == 0) absl::StrAppend(&page, "?utm_source=newsletter");
      EventInput in =
          Ev(page, 0, absl::StrCat("10.1.", visitor / 100, ".", visitor % 100));
      // Today only: hashed with the salts of today and yesterday, which the
      // store shares (those of other days are random per engine).
      offset_ms += static_cast<int64_t>(rng() % 2000);
      in.ts = clock_.Now() + absl::Milliseconds(offset_ms);
      in.name = kNames[rng() % std::size(kNames)];
      in.referrer = kRefs[rng() % std::size(kRefs)];
      if (rng() % 4 == 0) {
        in.props = {{"plan", std::string(1 + rng() % 30, 'p')}};
      }
      in.interactive = rng() % 3 != 0;
      in.screen_width = static_cast<int>(rng() % 2000);
      in.locale = rng() % 2 ? "en-US" : "de-DE-x-a-long-locale-tag";
      if (visitor % 7 == 0) in.user_agent = kIphone;
      if (rng() % 25 == 0) {
        in.user_agent =
            "Mozilla/5.0 (compatible; Googlebot/2.1; "
            "+http://www.google.com/bot.html)";
      }
      if (rng() % 40 == 0) in.name = std::string(121, 'x');  // rejected
      batch.push_back(std::move(in));
    }
  }
  ASSERT_LT(offset_ms, 0);

  struct Run {
    std::vector<Event> stored;
    std::vector<std::string> results;  // accepted, rejected, dropped
    int64_t recycled = 0;
  };
  // `salts`: the engine whose salts of today and yesterday to use (both
  // engines must hash visitors alike). Leaves the engine open in *keep.
  auto run = [&](bool recycle, Engine* salts, Run* out,
                 std::unique_ptr<Engine>* keep) {
    SetEventRecyclingForTest(recycle);
    std::unique_ptr<Engine> engine = Open();
    SetEventRecyclingForTest(true);
    std::mt19937_64 pattern(5);  // which batches go in flight together
    ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
    if (salts != nullptr) {
      const int64_t today = absl::ToUnixSeconds(clock_.Now()) / 86400;
      for (int64_t day : {today - 1, today}) {
        auto salt = salts->store()->GetSalt(day);
        ASSERT_TRUE(salt.ok() && salt->has_value());
        ASSERT_TRUE(engine->store()->PutSaltIfAbsent(day, **salt).ok());
      }
    }
    auto describe = [](const absl::StatusOr<BatchResult>& r) {
      if (!r.ok()) return r.status().ToString();
      std::string d = absl::StrCat(r->accepted, " rejected");
      for (const auto& [i, s] : r->rejected) absl::StrAppend(&d, " ", i);
      for (const auto& [reason, n] : r->dropped) {
        absl::StrAppend(&d, " ", reason, "=", n);
      }
      return d;
    };
    for (size_t b = 0; b < batches.size();) {
      if (pattern() % 3 == 0) {
        // Up to four batches in flight: one group commit, mostly.
        const size_t k =
            std::min<size_t>(batches.size() - b, 1 + pattern() % 4);
        absl::Mutex mu;
        std::vector<std::string> got(k);
        size_t done = 0;
        for (size_t j = 0; j < k; ++j) {
          ASSERT_TRUE(engine
                          ->SubmitBatch(batches[b + j],
                                        [&, j](absl::StatusOr<BatchResult> r) {
                                          absl::MutexLock l(&mu);
                                          got[j] = describe(r);
                                          ++done;
                                        })
                          .ok());
        }
        absl::MutexLock l(&mu);
        auto all = [&]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done == k; };
        mu.Await(absl::Condition(&all));
        for (std::string& g : got) out->results.push_back(std::move(g));
        b += k;
      } else {
        out->results.push_back(describe(engine->TrackBatch(batches[b])));
        ++b;
      }
    }
    ASSERT_TRUE(engine->Flush().ok());
    const int64_t site_id = engine->FindSite("example.com")->id;
    ASSERT_TRUE(
        engine->store()
            ->ScanEvents(
                {site_id, 0, std::numeric_limits<int64_t>::max() / 2, false},
                [&](const Event& e) {
                  out->stored.push_back(e);
                  return true;
                })
            .ok());
    std::sort(out->stored.begin(), out->stored.end(),
              [](const Event& a, const Event& b) { return a.seq < b.seq; });
    out->recycled = RecycledEventsForTest(engine.get());
    *keep = std::move(engine);
  };
  Run recycled, fresh;
  std::unique_ptr<Engine> first, second;
  run(true, nullptr, &recycled, &first);
  ASSERT_FALSE(HasFailure());
  run(false, first.get(), &fresh, &second);
  ASSERT_FALSE(HasFailure());

  EXPECT_GT(recycled.recycled, 5000);
  EXPECT_EQ(fresh.recycled, 0);
  EXPECT_EQ(recycled.results, fresh.results);
  ASSERT_EQ(recycled.stored.size(), fresh.stored.size());
  EXPECT_GT(recycled.stored.size(), 10000u);
  for (size_t i = 0; i < fresh.stored.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameEvent(recycled.stored[i], fresh.stored[i]);
    if (HasFailure()) return;
  }
}

// The free list of recycled events is bounded in bytes: a batch of events
// with large props (which the spare Events would keep the capacity of) is
// not kept; ordinary batches are (and Flush returns once they are).
TEST_F(EngineTest, RecyclingKeepsNoHugeEvents) {
  auto engine = Open();
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  std::vector<EventInput> huge;
  for (int i = 0; i < 300; ++i) {
    EventInput in = Ev("/h", i, absl::StrCat("10.2.0.", i % 250));
    for (int p = 0; p < 30; ++p) {
      in.props.emplace_back(absl::StrCat("k", p), std::string(2000, 'v'));
    }
    huge.push_back(std::move(in));
  }
  for (int round = 0; round < 3; ++round) {
    auto r = engine->TrackBatch(huge);
    ASSERT_TRUE(r.ok() && r->accepted == 300);
    ASSERT_TRUE(engine->Flush().ok());
  }
  EXPECT_EQ(RecycledEventsForTest(engine.get()), 0);  // ~20 MB each
  std::vector<EventInput> small;
  for (int i = 0; i < 300; ++i) {
    small.push_back(Ev("/s", i, absl::StrCat("10.3.0.", i % 250)));
  }
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(engine->TrackBatch(small).ok());
    ASSERT_TRUE(engine->Flush().ok());
  }
  EXPECT_EQ(RecycledEventsForTest(engine.get()), 600);
}

}  // namespace
}  // namespace analytics
