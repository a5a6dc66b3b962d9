// Reference-model test for goals and funnels: random journeys with known
// conversions go through the Engine; every goal number (aggregate, event:goal
// breakdown, timeseries, conversion_rate, group_conversion_rate, has_done /
// has_not_done) and every funnel step equals a brute-force computation over
// the same events, for several seeds, on every store: memory and SQLite
// here, PostgreSQL and Redis through tests/services/*.sh (the CTest entries
// goals_reference_postgres / goals_reference_redis), which fail when
// ANALYTICS_TEST_POSTGRES_URL / ANALYTICS_TEST_REDIS_URL is not set.
// Unfiltered funnels answer from the funnel segments (goals_cache.h); after
// more events are tracked, and after older events are deleted, the segments'
// answer still equals the raw scan's.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "analytics/clock.h"
#include "analytics/engine.h"
#include "gtest/gtest.h"
#include "libanalytics/query/goals.h"
#include "libanalytics/query/goals_cache.h"
#include "rapidjson/document.h"

namespace analytics {
namespace {

const char* kPages[] = {"/",       "/pricing",  "/blog/a", "/blog/b/c",
                        "/signup", "/checkout", "/docs"};

struct MEvent {
  int64_t ts_ms;
  std::string name, page, ip;
  Props props;
  int session = -1;
  std::string visitor;
};
struct MSession {
  int64_t last = 0;
  std::string entry, visitor;
};

// The goals under test, as documents and as brute-force predicates.
struct MGoal {
  std::string json, name;
  std::function<bool(const MEvent&)> match;
};

bool Glob(const std::string& pat, const std::string& s) {
  // Brute-force wildcard match: '*' within a segment, '**' anything.
  std::function<bool(size_t, size_t)> m = [&](size_t i, size_t j) -> bool {
    if (i == pat.size()) return j == s.size();
    if (pat[i] == '*') {
      const bool dbl = i + 1 < pat.size() && pat[i + 1] == '*';
      const size_t ni = i + (dbl ? 2 : 1);
      for (size_t k = j; k <= s.size(); ++k) {
        if (m(ni, k)) return true;
        if (k < s.size() && !dbl && s[k] == '/') break;
      }
      return false;
    }
    return j < s.size() && s[j] == pat[i] && m(i + 1, j + 1);
  };
  return m(0, 0);
}

std::vector<MGoal> Goals() {
  auto ev = [](std::string n) {
    return [n](const MEvent& e) { return e.name == n; };
  };
  auto page = [](std::string p) {
    return [p](const MEvent& e) {
      return e.name == "pageview" && Glob(p, e.page);
    };
  };
  return {
      {R"({"event_name":"Signup"})", "Signup", ev("Signup")},
      {R"({"event_name":"Signup","props":{"plan":"pro"},"display_name":"Pro"})",
       "Pro",
       [](const MEvent& e) {
         if (e.name != "Signup") return false;
         for (auto& [k, v] : e.props) {
           if (k == "plan" && v == "pro") return true;
         }
         return false;
       }},
      {R"({"event_name":"Purchase"})", "Purchase", ev("Purchase")},
      {R"({"page_path":"/blog/*"})", "Visit /blog/*", page("/blog/*")},
      {R"({"page_path":"/blog/**"})", "Visit /blog/**", page("/blog/**")},
      {R"({"page_path":"/pricing"})", "Visit /pricing", page("/pricing")},
  };
}

double Pct(double a, double b) {
  return b > 0 ? std::round(10000.0 * a / b) / 100.0 : 0;
}

rapidjson::Document Parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

// Rows of a v2 answer: dims joined by '|' -> metrics.
std::map<std::string, std::vector<double>> Rows(const std::string& json) {
  std::map<std::string, std::vector<double>> out;
  rapidjson::Document d = Parse(json);
  for (auto& r : d["results"].GetArray()) {
    std::string k;
    for (auto& x : r["dimensions"].GetArray()) {
      if (!k.empty()) k += "|";
      k += x.GetString();
    }
    std::vector<double> m;
    for (auto& x : r["metrics"].GetArray()) m.push_back(x.GetDouble());
    out[k] = m;
  }
  return out;
}

// Rows of a v2 answer without rows whose metrics are all 0 (the raw path
// can list a goal met only by events after the range, in a session that
// started in it, with 0 visitors and 0 events), and meta.source.
std::pair<std::map<std::string, std::vector<double>>, std::string> NonZeroRows(
    const std::string& json) {
  auto rows = Rows(json);
  for (auto it = rows.begin(); it != rows.end();) {
    bool zero = true;
    for (double v : it->second) zero &= v == 0;
    it = zero ? rows.erase(it) : std::next(it);
  }
  rapidjson::Document d = Parse(json);
  std::string source;
  if (d.HasMember("meta") && d["meta"].HasMember("source")) {
    source = d["meta"]["source"].GetString();
  }
  return {rows, source};
}

// (store kind, seed).
using Param = std::tuple<std::string, int>;

// The URL of a store of `kind` with no sites (and so no events, rollups or
// goals of any site), or "" with a test failure when the service is not set.
std::string FreshStoreUrl(const std::string& kind, int seed) {
  std::string url;
  if (kind == "memory") return "memory://";
  if (kind == "sqlite") {
    const std::filesystem::path dir =
        std::filesystem::path(::testing::TempDir()) /
        absl::StrCat("goals_reference_", getpid(), "_", seed);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return "sqlite://" + (dir / "goals.db").string();
  }
  const char* env = kind == "postgres" ? "ANALYTICS_TEST_POSTGRES_URL"
                                       : "ANALYTICS_TEST_REDIS_URL";
  const char* v = std::getenv(env);
  if (v == nullptr || *v == '\0') {
    ADD_FAILURE() << env << " is not set: run through tests/services/" << kind
                  << ".sh (ctest -R goals_reference_" << kind << ")";
    return "";
  }
  url = v;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url);
  if (!store.ok()) {
    ADD_FAILURE() << "cannot open " << kind << ": " << store.status();
    return "";
  }
  absl::StatusOr<std::vector<Site>> sites = (*store)->ListSites();
  EXPECT_TRUE(sites.ok()) << sites.status();
  if (sites.ok()) {
    for (const Site& site : *sites) {
      EXPECT_TRUE((*store)->RemoveSite(site.id).ok());
    }
  }
  return url;
}

class GoalsReferenceTest : public ::testing::TestWithParam<Param> {};

TEST_P(GoalsReferenceTest, GoalsAndFunnelsMatchBruteForce) {
  const auto& [store_kind, seed] = GetParam();
  const std::string store_url = FreshStoreUrl(store_kind, seed);
  ASSERT_FALSE(store_url.empty());
  std::mt19937_64 rng(seed);
  FakeClock clock(absl::FromUnixSeconds(1795188600));  // 2026-11-20 15:30 UTC
  const int64_t now_ms = absl::ToUnixMillis(clock.Now());
  std::vector<MEvent> events;
  const int visitors = 120 + static_cast<int>(rng() % 120);
  for (int v = 0; v < visitors; ++v) {
    std::string ip = absl::StrCat("10.1.", v / 250, ".", v % 250);
    int64_t t = now_ms - static_cast<int64_t>(rng() % (9LL * 86400000));
    const int sessions = 1 + rng() % 3;
    for (int s = 0; s < sessions; ++s) {
      const int n = 1 + rng() % 14;
      for (int i = 0; i < n && t < now_ms; ++i) {
        MEvent e;
        e.ts_ms = t;
        e.ip = ip;
        e.page = kPages[rng() % 7];
        const int r = static_cast<int>(rng() % 10);
        e.name = r == 0 ? "Signup" : r == 1 ? "Purchase" : "pageview";
        if (e.name == "Signup" && rng() % 2) {
          e.props = {{"plan", rng() % 2 ? "pro" : "free"}};
        }
        events.push_back(e);
        t += 1000 * static_cast<int64_t>(rng() % 600);
      }
      t += 1000 * static_cast<int64_t>(2400 + rng() % 50000);
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](auto& a, auto& b) { return a.ts_ms < b.ts_ms; });
  std::vector<MSession> sessions;
  {
    absl::flat_hash_map<std::string, int> open;
    for (MEvent& e : events) {
      auto it = open.find(e.ip);
      if (it == open.end() || e.ts_ms - sessions[it->second].last > 1800000) {
        MSession s;
        s.entry = e.page;
        s.visitor = absl::StrCat(e.ip, "|", e.ts_ms / 86400000);
        sessions.push_back(s);
        open[e.ip] = static_cast<int>(sessions.size()) - 1;
        it = open.find(e.ip);
      }
      sessions[it->second].last = e.ts_ms;
      e.session = it->second;
      e.visitor = sessions[it->second].visitor;
    }
  }

  Options o;
  o.store_url = store_url;
  o.clock = &clock;
  auto engine = *Engine::Open(o);
  ASSERT_TRUE(
      engine->AddSite({.domain = "example.com", .timezone = "Europe/Berlin"})
          .ok());
  const int64_t site_id = engine->FindSite("example.com")->id;
  std::vector<EventInput> batch;
  for (const MEvent& m : events) {
    EventInput e;
    e.site = "example.com";
    e.name = m.name;
    e.url = "https://example.com" + m.page;
    e.ts = absl::FromUnixMillis(m.ts_ms);
    e.ip = m.ip;
    e.user_agent =
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 "
        "Firefox/121.0";
    e.props = m.props;
    batch.push_back(e);
  }
  auto tr = engine->TrackBatch(batch);
  ASSERT_TRUE(tr.ok() && tr->rejected.empty() && tr->dropped.empty());
  ASSERT_TRUE(engine->Flush().ok());

  // Goals are defined after the events: past conversions count.
  const std::vector<MGoal> goals = Goals();
  for (const MGoal& g : goals) {
    absl::StatusOr<Goal> added = AddGoal(engine->store(), site_id, g.json);
    ASSERT_TRUE(added.ok()) << added.status();
    EXPECT_EQ(added->display_name, g.name);
  }
  EXPECT_EQ(AddGoal(engine->store(), site_id, R"({"event_name":"Signup"})")
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);

  absl::TimeZone tz;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &tz));
  const absl::CivilDay today = absl::ToCivilDay(clock.Now(), tz);
  struct Range {
    std::string json;
    int64_t from, to;
  };
  auto day_ms = [&](absl::CivilDay d) {
    return absl::ToUnixMillis(absl::FromCivil(d, tz));
  };
  std::vector<Range> ranges = {
      {"\"7d\"", day_ms(today - 6), day_ms(today + 1)},
      {absl::StrCat("[\"", absl::FormatCivilTime(today - 4), "T05:30:00\",\"",
                    absl::FormatCivilTime(today - 1), "T20:10:59\"]"),
       day_ms(today - 4) + 19800000, day_ms(today - 1) + 72660000}};
  auto in = [](const Range& r, const MEvent& e) {
    return e.ts_ms >= r.from && e.ts_ms < r.to;
  };
  auto query = [&](const std::string& body) {
    absl::StatusOr<std::string> r = engine->Query(body);
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << body;
    return r.ok() ? *r : std::string("{\"results\":[]}");
  };

  for (const Range& range : ranges) {
    SCOPED_TRACE(range.json);
    auto body = [&](std::string metrics, std::string dims,
                    std::string filters) {
      return absl::StrCat(R"({"site_id":"example.com","date_range":)",
                          range.json, R"(,"metrics":)", metrics,
                          R"(,"dimensions":)", dims, R"(,"filters":)", filters,
                          "}");
    };
    absl::flat_hash_set<std::string> all;
    for (const MEvent& e : events) {
      if (in(range, e)) all.insert(e.visitor);
    }
    // Breakdown by event:goal with visitors, events, conversion_rate.
    auto rows = Rows(query(body(R"(["visitors","events","conversion_rate"])",
                                R"(["event:goal"])", "[]")));
    for (const MGoal& g : goals) {
      absl::flat_hash_set<std::string> conv;
      int64_t n = 0;
      for (const MEvent& e : events) {
        if (in(range, e) && g.match(e)) conv.insert(e.visitor), ++n;
      }
      SCOPED_TRACE(g.name);
      if (n == 0) {
        EXPECT_FALSE(rows.contains(g.name));
        continue;
      }
      ASSERT_TRUE(rows.contains(g.name));
      EXPECT_EQ(rows[g.name][0], conv.size());
      EXPECT_EQ(rows[g.name][1], n);
      EXPECT_DOUBLE_EQ(rows[g.name][2], Pct(conv.size(), all.size()));
      // The same through an event:goal filter (aggregate).
      auto agg = Rows(query(
          body(R"(["visitors","events","conversion_rate"])", "[]",
               absl::StrCat(R"([["is","event:goal",[")", g.name, "\"]]]"))));
      ASSERT_EQ(agg.size(), 1u);
      EXPECT_EQ(agg[""][0], conv.size());
      EXPECT_EQ(agg[""][1], n);
      EXPECT_DOUBLE_EQ(agg[""][2], Pct(conv.size(), all.size()));
      // Timeseries by day.
      std::map<std::string, std::pair<absl::flat_hash_set<std::string>, int>>
          days;
      for (const MEvent& e : events) {
        if (!in(range, e) || !g.match(e)) continue;
        auto& d = days[absl::FormatTime("%Y-%m-%d",
                                        absl::FromUnixMillis(e.ts_ms), tz)];
        d.first.insert(e.visitor);
        d.second++;
      }
      auto ts = Rows(query(
          body(R"(["visitors","events"])", R"(["time:day"])",
               absl::StrCat(R"([["is","event:goal",[")", g.name, "\"]]]"))));
      ASSERT_EQ(ts.size(), days.size());
      for (auto& [day, d] : days) {
        EXPECT_EQ(ts[day][0], d.first.size()) << day;
        EXPECT_EQ(ts[day][1], d.second) << day;
      }
      // group_conversion_rate by entry page.
      std::map<std::string, absl::flat_hash_set<std::string>> gconv, gall;
      for (const MEvent& e : events) {
        if (!in(range, e)) continue;
        const std::string& entry = sessions[e.session].entry;
        gall[entry].insert(e.visitor);
        if (g.match(e)) gconv[entry].insert(e.visitor);
      }
      auto gr = Rows(query(body(
          R"(["visitors","group_conversion_rate"])", R"(["visit:entry_page"])",
          absl::StrCat(R"([["is","event:goal",[")", g.name, "\"]]]"))));
      ASSERT_EQ(gr.size(), gconv.size());
      for (auto& [entry, c] : gconv) {
        EXPECT_EQ(gr[entry][0], c.size()) << entry;
        EXPECT_DOUBLE_EQ(gr[entry][1], Pct(c.size(), gall[entry].size()))
            << entry;
      }
      // has_done / has_not_done, composed with an entry-page filter:
      // pageviews of (not) converted visitors in sessions entering at "/".
      for (const char* op : {"has_done", "has_not_done"}) {
        int64_t pv = 0;
        absl::flat_hash_set<std::string> vis;
        for (const MEvent& e : events) {
          if (!in(range, e) || sessions[e.session].entry != "/") continue;
          if (conv.contains(e.visitor) != (std::string(op) == "has_done")) {
            continue;
          }
          vis.insert(e.visitor);
          pv += e.name == "pageview";
        }
        auto hd = Rows(query(body(
            R"(["visitors","pageviews"])", "[]",
            absl::StrCat(R"([["is","visit:entry_page",["/"]],[")", op,
                         R"(",["is","event:goal",[")", g.name, "\"]]]]"))));
        std::vector<double> got =
            hd.contains("") ? hd[""] : std::vector<double>{0, 0};
        EXPECT_EQ(got[0], vis.size()) << op;
        EXPECT_EQ(got[1], pv) << op;
      }
    }

    // Goal queries answer from the funnel segments (goals_cache.h), with the
    // raw scan's numbers; filters compose.
    for (const auto& [metrics, dims, filters] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {R"(["visitors","events","conversion_rate"])", R"(["event:goal"])",
              "[]"},
             {R"(["visitors","events","pageviews","percentage"])",
              R"(["event:goal"])",
              R"([["is","visit:entry_page",["/","/docs"]]])"},
             {R"(["visitors","events","conversion_rate"])",
              R"(["event:goal","event:page"])",
              R"([["is_not","event:goal",["Purchase"]]])"},
             {R"(["visitors","events"])", R"(["time:day","event:goal"])", "[]"},
             {R"(["visitors","events"])", R"(["time:hour"])",
              R"([["is","event:goal",["Visit /blog/*"]]])"},
             {R"(["visitors","group_conversion_rate"])",
              R"(["visit:entry_page"])",
              R"([["is","event:goal",["Pro","Visit /pricing"]]])"},
             {R"(["visitors","events","conversion_rate"])", R"(["event:goal"])",
              R"([["has_done",["is","event:goal",["Signup"]]]])"},
             {R"(["visitors","events"])", R"(["visit:browser"])",
              R"([["is","event:goal",["Visit /blog/**"]],)"
              R"(["has_not_done",["is","event:goal",["Purchase"]]]])"},
             {R"(["visitors","pageviews"])", R"(["event:goal"])",
              R"([["or",[["is","visit:entry_page",["/pricing"]],)"
              R"(["is","event:page",["/docs"]]]]])"},
         }) {
      SCOPED_TRACE(absl::StrCat(dims, " ", filters));
      const auto [seg, seg_source] =
          NonZeroRows(query(body(metrics, dims, filters)));
      EXPECT_EQ(seg_source, "segments");
      SetFunnelCacheEnabled(false);
      const auto [raw, raw_source] =
          NonZeroRows(query(body(metrics, dims, filters)));
      SetFunnelCacheEnabled(true);
      EXPECT_EQ(raw_source, "events");
      EXPECT_EQ(seg, raw);
      EXPECT_FALSE(seg.empty());
    }

    // Funnels: session and 1-day window, unfiltered and filtered.
    const std::vector<std::function<bool(const MEvent&)>> steps = {
        goals[3].match,  // Visit /blog/*
        [](const MEvent& e) {
          return e.name == "pageview" && e.page == "/pricing";
        },
        goals[0].match,  // Signup
        goals[2].match,  // Purchase
    };
    const std::string steps_json =
        R"([{"goal":"Visit /blog/*"},{"page":"/pricing"},{"goal":"Signup"},{"event":"Purchase"}])";
    for (int64_t window : {0LL, 86400LL}) {
      for (bool filtered : {false, true}) {
        SCOPED_TRACE(absl::StrCat("window ", window, " filtered ", filtered));
        // Brute force: per session (or visitor), the longest prefix of steps
        // found as a subsequence (within the window from a step-1 event).
        absl::flat_hash_set<int> ok_sessions;
        for (const MEvent& e : events) {
          if (in(range, e) && (!filtered || e.page == "/docs")) {
            ok_sessions.insert(e.session);
          }
        }
        std::map<std::string, std::vector<const MEvent*>> groups;
        for (const MEvent& e : events) {
          if (!in(range, e) || !ok_sessions.contains(e.session)) continue;
          groups[window ? e.visitor : absl::StrCat(e.visitor, "#", e.session)]
              .push_back(&e);
        }
        auto prefix = [&](const std::vector<const MEvent*>& evs, size_t from,
                          int64_t until) {
          int best = 0;
          for (int k = 1; k <= 4; ++k) {
            size_t j = from;
            int found = 0;
            for (; j < evs.size() && evs[j]->ts_ms <= until && found < k; ++j) {
              if (steps[found](*evs[j])) ++found;
            }
            if (found == k) best = k;
          }
          return best;
        };
        std::map<std::string, int> depth;
        for (auto& [key, evs] : groups) {
          const std::string who = evs[0]->visitor;
          int d = 0;
          if (!window) {
            d = prefix(evs, 0, INT64_MAX);
          } else {
            for (size_t i = 0; i < evs.size(); ++i) {
              if (steps[0](*evs[i])) {
                d = std::max(d, prefix(evs, i, evs[i]->ts_ms + window * 1000));
              }
            }
          }
          depth[who] = std::max(depth[who], d);
        }
        std::vector<int64_t> want(4, 0);
        for (auto& [w, d] : depth) {
          for (int i = 0; i < d; ++i) ++want[i];
        }
        std::string fq = absl::StrCat(
            R"({"site_id":"example.com","date_range":)", range.json,
            filtered ? R"(,"filters":[["is","event:page",["/docs"]]])" : "",
            R"(,"funnel":{"steps":)", steps_json,
            window ? absl::StrCat(R"(,"window_seconds":)", window) : "", "}}");
        absl::StatusOr<std::string> got = QueryFunnel(
            fq, [&](std::string_view id) { return engine->FindSite(id); },
            clock.Now(), QuerySources{engine->store(), nullptr});
        ASSERT_TRUE(got.ok()) << got.status() << fq;
        rapidjson::Document d = Parse(*got);
        auto& st = d["funnel"]["steps"];
        ASSERT_EQ(st.Size(), 4u);
        for (int i = 0; i < 4; ++i) {
          EXPECT_EQ(st[i]["visitors"].GetInt64(), want[i]) << "step " << i;
          const int64_t prev = i ? want[i - 1] : want[0];
          EXPECT_EQ(st[i]["dropoff"].GetInt64(), prev - want[i]);
          EXPECT_DOUBLE_EQ(st[i]["conversion_rate"].GetDouble(),
                           Pct(want[i], want[0]));
          EXPECT_DOUBLE_EQ(st[i]["conversion_rate_step"].GetDouble(),
                           Pct(want[i], prev));
        }
        if (!filtered && seed == 1) {
          EXPECT_GT(want[3], 0) << "journeys should complete the funnel";
        }
      }
    }
  }
  // The funnel segments follow new events: three new visitors complete all
  // four steps today; every step grows by three, as in the raw scan.
  std::string source;
  auto funnel = [&](bool cached, int64_t window, std::string filters = "[]") {
    SetFunnelCacheEnabled(cached);
    const std::string fq = absl::StrCat(
        R"({"site_id":"example.com","date_range":"7d","filters":)", filters,
        R"(,"funnel":{"steps":)",
        R"([{"goal":"Visit /blog/*"},{"page":"/pricing"},{"goal":"Signup"},)",
        R"({"event":"Purchase"}])",
        window ? absl::StrCat(R"(,"window_seconds":)", window) : "", "}}");
    absl::StatusOr<std::string> got = QueryFunnel(
        fq, [&](std::string_view id) { return engine->FindSite(id); },
        clock.Now(), QuerySources{engine->store(), nullptr});
    SetFunnelCacheEnabled(true);
    EXPECT_TRUE(got.ok()) << got.status();
    std::vector<int64_t> out;
    if (!got.ok()) return out;
    rapidjson::Document d = Parse(*got);
    for (auto& x : d["funnel"]["steps"].GetArray()) {
      out.push_back(x["visitors"].GetInt64());
    }
    source = d["meta"]["source"].GetString();
    return out;
  };
  ASSERT_TRUE(WarmFunnelSegments(engine->store(), site_id,
                                 now_ms - 10 * 86400000LL, now_ms + 1)
                  .ok());
  const int64_t rows_before = GetFunnelCacheStats(engine->store()).rows;
  EXPECT_EQ(rows_before, static_cast<int64_t>(events.size()));
  const std::vector<int64_t> before = funnel(true, 0);
  const std::vector<int64_t> before_window = funnel(true, 86400);
  std::vector<EventInput> more;
  for (int v = 0; v < 3; ++v) {
    int minute = 20;
    for (auto [name, page] : std::vector<std::pair<std::string, std::string>>{
             {"pageview", "/blog/a"},
             {"pageview", "/pricing"},
             {"Signup", "/signup"},
             {"Purchase", "/checkout"}}) {
      EventInput e;
      e.site = "example.com";
      e.name = name;
      e.url = "https://example.com" + page;
      e.ts = clock.Now() - absl::Minutes(minute -= 4);
      e.ip = absl::StrCat("10.9.0.", v + 1);
      e.user_agent =
          "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 "
          "Firefox/121.0";
      more.push_back(e);
    }
  }
  auto tr2 = engine->TrackBatch(more);
  ASSERT_TRUE(tr2.ok() && tr2->rejected.empty() && tr2->dropped.empty());
  ASSERT_TRUE(engine->Flush().ok());
  const std::vector<int64_t> after = funnel(true, 0);
  EXPECT_EQ(GetFunnelCacheStats(engine->store()).rows, rows_before + 12);
  const std::vector<int64_t> after_window = funnel(true, 86400);
  ASSERT_EQ(before.size(), 4u);
  ASSERT_EQ(after.size(), 4u);
  ASSERT_EQ(after_window.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(after[i], before[i] + 3) << "step " << i;
    EXPECT_EQ(after_window[i], before_window[i] + 3) << "step " << i;
  }
  EXPECT_EQ(source, "segments");
  EXPECT_EQ(after, funnel(false, 0));
  EXPECT_EQ(source, "events");
  EXPECT_EQ(after_window, funnel(false, 86400));
  // Filters compose with the segments: event, visit, goal and behavioural
  // filters select the same sessions as in the raw scan.
  for (
      const char* filters :
      {R"([["is","visit:entry_page",["/","/docs"]]])",
       R"([["is_not","visit:browser",["Chrome"]],["contains","event:page",["blog"]]])",
       R"([["is","event:goal",["Pro"]]])",
       R"([["has_done",["is","event:goal",["Signup"]]]])",
       R"([["has_not_done",["is","event:page",["/docs"]]]])",
       R"([["or",[["is","visit:entry_page",["/pricing"]],["is","event:name",["Purchase"]]]]])"}) {
    SCOPED_TRACE(filters);
    for (int64_t window : {0LL, 86400LL}) {
      const std::vector<int64_t> seg = funnel(true, window, filters);
      EXPECT_EQ(source, "segments");
      EXPECT_EQ(seg, funnel(false, window, filters));
    }
  }
  // visit:exit_page is known only at the session's end: raw scan.
  funnel(true, 0, R"([["is","visit:exit_page",["/"]]])");
  EXPECT_EQ(source, "events");
  // Deleting the older events (as retention does) is seen by the segments.
  absl::StatusOr<int64_t> deleted =
      engine->store()->DeleteEventsBefore(site_id, now_ms - 3 * 86400000LL);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ASSERT_GT(*deleted, 0);
  const std::vector<int64_t> kept = funnel(true, 0);
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_LT(kept[0], after[0]);
  EXPECT_EQ(kept, funnel(false, 0));
  EXPECT_EQ(funnel(true, 86400), funnel(false, 86400));
}

// The background backfill of the segments is bounded and resumable: a
// warm-up interrupted after a step limit (with events arriving in between,
// in days already built and days not yet built) finishes from the first day
// it had not built, builds each day once, and the goal answers then equal a
// brute-force count of every event.
TEST_P(GoalsReferenceTest, BackfillResumesWhereItStopped) {
  const auto& [store_kind, seed] = GetParam();
  const std::string store_url = FreshStoreUrl(store_kind, seed + 100);
  ASSERT_FALSE(store_url.empty());
  std::mt19937_64 rng(seed);
  FakeClock clock(absl::FromUnixSeconds(1795188600));  // 2026-11-20 15:30 UTC
  Options o;
  o.store_url = store_url;
  o.clock = &clock;
  auto engine = *Engine::Open(o);
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  const int64_t site_id = engine->FindSite("example.com")->id;
  Store* store = engine->store();
  InvalidateFunnelCache(store, 0);
  const int64_t day0 = absl::ToUnixMillis(
      absl::FromCivil(absl::CivilDay(2026, 11, 12), absl::UTCTimeZone()));
  constexpr int64_t kDay = 86400000;
  constexpr int kDays = 8;  // 2026-11-12 .. 2026-11-19

  std::vector<MEvent> events;  // visitor: ip|day (daily salt)
  auto track = [&](int day, int n, const std::string& ip_prefix) {
    std::vector<EventInput> batch;
    for (int v = 0; v < n; ++v) {
      const std::string ip = absl::StrCat(ip_prefix, v);
      int64_t t = day0 + day * kDay + 3600000 * (1 + v % 20);
      for (int i = 0; i < 1 + static_cast<int>(rng() % 6); ++i) {
        MEvent m;
        m.ts_ms = t;
        m.ip = ip;
        m.page = kPages[rng() % 7];
        const int r = static_cast<int>(rng() % 6);
        m.name = r == 0 ? "Signup" : r == 1 ? "Purchase" : "pageview";
        if (m.name == "Signup" && rng() % 2) m.props = {{"plan", "pro"}};
        m.visitor = absl::StrCat(ip, "|", day);
        events.push_back(m);
        EventInput e;
        e.site = "example.com";
        e.name = m.name;
        // Some sessions span two hostnames (visit attributes stay the same).
        e.url = (v % 3 == 0 && i % 2 == 1 ? "https://blog.example.com"
                                          : "https://example.com") +
                m.page;
        e.ts = absl::FromUnixMillis(m.ts_ms);
        e.ip = ip;
        e.user_agent =
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 "
            "Firefox/121.0";
        e.props = m.props;
        batch.push_back(e);
        t += 60000 * static_cast<int64_t>(1 + rng() % 5);
      }
    }
    auto tr = engine->TrackBatch(batch);
    ASSERT_TRUE(tr.ok() && tr->rejected.empty() && tr->dropped.empty());
    ASSERT_TRUE(engine->Flush().ok());
  };
  for (int d = 0; d < kDays; ++d)
    track(d, 20 + d, absl::StrCat("10.3.", d, "."));
  // Goals defined after the events: the backfill counts past conversions.
  const std::vector<MGoal> goals = Goals();
  for (const MGoal& g : goals) {
    ASSERT_TRUE(AddGoal(store, site_id, g.json).ok());
  }
  const int64_t from = day0, to = day0 + kDays * kDay;
  // A step of 0 days builds nothing (and makes the store's cache).
  absl::StatusOr<int64_t> left =
      WarmFunnelSegmentsStep(store, site_id, from, to, 0);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(*left, kDays);
  const int64_t built0 = GetFunnelCacheStats(store).days_built;
  auto built = [&] { return GetFunnelCacheStats(store).days_built - built0; };

  // Step 1: three days (newest first), then interrupted.
  left = WarmFunnelSegmentsStep(store, site_id, from, to, 3);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(*left, kDays - 3);
  EXPECT_EQ(built(), 3);
  // Events arrive meanwhile: in a built day (2026-11-19) and in one still
  // missing (2026-11-13).
  track(7, 5, "10.4.7.");
  track(1, 5, "10.4.1.");

  auto want = [&](int64_t lo, int64_t hi) {
    std::map<std::string, std::vector<double>> out;
    absl::flat_hash_set<std::string> all;
    for (const MEvent& e : events) {
      if (e.ts_ms >= lo && e.ts_ms < hi) all.insert(e.visitor);
    }
    for (const MGoal& g : goals) {
      absl::flat_hash_set<std::string> conv;
      int64_t n = 0;
      for (const MEvent& e : events) {
        if (e.ts_ms >= lo && e.ts_ms < hi && g.match(e)) {
          conv.insert(e.visitor), ++n;
        }
      }
      if (n > 0) {
        out[g.name] = {static_cast<double>(conv.size()), static_cast<double>(n),
                       Pct(conv.size(), all.size())};
      }
    }
    return out;
  };
  auto top_goals = [&](const std::string& range) {
    absl::StatusOr<std::string> r = engine->Query(
        absl::StrCat(R"({"site_id":"example.com","date_range":)", range,
                     R"(,"metrics":["visitors","events","conversion_rate"],)",
                     R"("dimensions":["event:goal"]})"));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? NonZeroRows(*r)
                  : std::pair<std::map<std::string, std::vector<double>>,
                              std::string>();
  };
  // A query over the days already built answers from them (no day built)
  // with the events that arrived since.
  {
    const auto [rows, source] = top_goals(R"(["2026-11-17","2026-11-19"])");
    EXPECT_EQ(source, "segments");
    EXPECT_EQ(rows, want(day0 + 5 * kDay, to));
    EXPECT_EQ(built(), 3);
  }
  // Step 2 resumes with the fourth-newest day; step 3 finishes.
  left = WarmFunnelSegmentsStep(store, site_id, from, to, 3);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(*left, kDays - 6);
  EXPECT_EQ(built(), 6);
  left = WarmFunnelSegmentsStep(store, site_id, from, to, 100);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(*left, 0);
  EXPECT_EQ(built(), kDays);  // every day built exactly once
  left = WarmFunnelSegmentsStep(store, site_id, from, to, 100);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 0);
  EXPECT_EQ(built(), kDays);
  EXPECT_EQ(GetFunnelCacheStats(store).rows,
            static_cast<int64_t>(events.size()));

  const auto [rows, source] = top_goals(R"(["2026-11-12","2026-11-19"])");
  EXPECT_EQ(source, "segments");
  EXPECT_EQ(built(), kDays);
  const auto expected = want(from, to);
  EXPECT_EQ(rows, expected);
  EXPECT_EQ(expected.size(), goals.size());
  SetFunnelCacheEnabled(false);
  const auto [raw, raw_source] = top_goals(R"(["2026-11-12","2026-11-19"])");
  SetFunnelCacheEnabled(true);
  EXPECT_EQ(raw_source, "events");
  EXPECT_EQ(raw, expected);
  // Visit and hostname breakdowns over sessions that span two hostnames.
  for (
      const char* q :
      {R"("metrics":["visitors","group_conversion_rate"],"dimensions":["visit:entry_page"],"filters":[["is","event:goal",["Signup","Visit /blog/**"]]])",
       R"("metrics":["visitors","events"],"dimensions":["event:goal","event:hostname"])",
       R"("metrics":["visitors","events"],"dimensions":["event:goal","visit:browser"],"filters":[["is","event:hostname",["blog.example.com"]]])"}) {
    SCOPED_TRACE(q);
    const std::string body = absl::StrCat(
        R"({"site_id":"example.com","date_range":["2026-11-12","2026-11-19"],)",
        q, "}");
    absl::StatusOr<std::string> seg = engine->Query(body);
    ASSERT_TRUE(seg.ok()) << seg.status();
    SetFunnelCacheEnabled(false);
    absl::StatusOr<std::string> scan = engine->Query(body);
    SetFunnelCacheEnabled(true);
    ASSERT_TRUE(scan.ok()) << scan.status();
    EXPECT_EQ(NonZeroRows(*seg).second, "segments");
    EXPECT_EQ(NonZeroRows(*seg).first, NonZeroRows(*scan).first);
    EXPECT_GT(NonZeroRows(*seg).first.size(), 1u);
  }

  // The daemon's background warmer (SegmentWarmer): stopped after its first
  // steps, a new one finishes the rest, building each day once; the answer
  // is the same.
  InvalidateFunnelCache(store, 0);
  const int64_t built1 = GetFunnelCacheStats(store).days_built;
  SegmentWarmer::Options wo;
  wo.days = kDays;  // the last 8 days and today, plus one for time zones
  wo.pause = absl::Milliseconds(200);
  wo.now = [&] { return clock.Now(); };
  auto wait_days = [&](int64_t n) {
    for (int i = 0; i < 1000 && GetFunnelCacheStats(store).days < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return GetFunnelCacheStats(store).days;
  };
  {
    SegmentWarmer first(store, wo);
    first.Start();
    EXPECT_GE(wait_days(1), 1);
    first.Stop();
  }
  const int64_t partial = GetFunnelCacheStats(store).days;
  EXPECT_GE(partial, 1);
  EXPECT_LT(partial, kDays + 1);
  {
    wo.pause = absl::Milliseconds(1);
    SegmentWarmer second(store, wo);
    second.Start();
    EXPECT_EQ(wait_days(kDays + 1), kDays + 1);
  }
  EXPECT_EQ(GetFunnelCacheStats(store).days_built - built1, kDays + 1);
  const auto [warm_rows, warm_source] =
      top_goals(R"(["2026-11-12","2026-11-19"])");
  EXPECT_EQ(warm_source, "segments");
  EXPECT_EQ(warm_rows, expected);
  EXPECT_EQ(GetFunnelCacheStats(store).days_built - built1, kDays + 1);
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  return absl::StrCat(std::get<0>(info.param), "_", std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Memory, GoalsReferenceTest,
                         ::testing::Combine(::testing::Values("memory"),
                                            ::testing::Values(1, 2, 3, 4)),
                         ParamName);
INSTANTIATE_TEST_SUITE_P(
    Stores, GoalsReferenceTest,
    ::testing::Combine(::testing::Values("sqlite", "postgres", "redis"),
                       ::testing::Values(1, 2)),
    ParamName);

TEST(GoalsTest, PatternsAndValidation) {
  RE2 re(PagePatternRegex("/blog/*"));
  EXPECT_TRUE(RE2::FullMatch("/blog/a", re));
  EXPECT_TRUE(RE2::FullMatch("/blog/", re));
  EXPECT_FALSE(RE2::FullMatch("/blog/a/b", re));
  RE2 re2(PagePatternRegex("/blog/**"));
  EXPECT_TRUE(RE2::FullMatch("/blog/a/b", re2));
  RE2 re3(PagePatternRegex("/a.b?"));
  EXPECT_TRUE(RE2::FullMatch("/a.b?", re3));
  EXPECT_FALSE(RE2::FullMatch("/axb", re3));
  auto err = [](const char* j) {
    return std::string(ParseGoal(j).status().message());
  };
  EXPECT_EQ(err("{}").rfind("event_name:", 0), 0u);
  EXPECT_EQ(err(R"({"page_path":"blog"})").rfind("page_path:", 0), 0u);
  EXPECT_EQ(err(R"({"event_name":"x","props":[1]})").rfind("props:", 0), 0u);
  auto ferr = [](const char* j) {
    return std::string(ParseFunnel(j).status().message());
  };
  EXPECT_EQ(ferr(R"({"steps":[{"page":"/a"}]})").rfind("steps:", 0), 0u);
  EXPECT_EQ(ferr(R"({"steps":[{"page":"/a"},{"x":"/b"}]})").rfind("steps:", 0),
            0u);
  EXPECT_EQ(
      ferr(R"({"steps":[{"page":"/a"},{"page":"/b"}],"window_seconds":0})")
          .rfind("window_seconds:", 0),
      0u);
  EXPECT_TRUE(ParseFunnel(R"({"steps":[{"page":"/a"},{"goal":"G"}]})").ok());
}

}  // namespace
}  // namespace analytics
