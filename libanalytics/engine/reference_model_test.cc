// Reference-model test: random event streams go through the Engine; random
// queries are answered three ways (planner's choice, forced raw-event scan,
// and a brute-force model written here from the inputs) and must agree.
// Counts are exact; visitors from sketches within the sketch's error.
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "analytics/engine.h"
#include "gtest/gtest.h"
#include "libanalytics/enrich/country.h"
#include "libanalytics/enrich/referrer.h"
#include "libanalytics/enrich/url.h"
#include "libanalytics/enrich/user_agent.h"
#include "libanalytics/query/query.h"
#include "rapidjson/document.h"

namespace analytics {
namespace {

const char* kUas[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
};
const char* kPages[] = {"/",       "/pricing", "/blog/a",
                        "/blog/b", "/docs",    "/signup"};
const char* kReferrers[] = {"",
                            "",
                            "https://www.google.com/",
                            "https://news.ycombinator.com/item?id=3",
                            "https://t.co/xyz",
                            "https://example.com/self",
                            "https://blog.other.org/post"};
const char* kZones[] = {"Europe/Berlin", "America/New_York", "Asia/Tokyo", ""};

struct MEvent {
  int64_t ts_ms;
  std::string page, name, url, referrer, ip, ua, tz;
  Props props;
  int width;
  int session = -1;
};
struct MSession {
  int64_t start = 0, last = 0;
  int pageviews = 0, events = 0, interactive_custom = 0;
  std::string entry, exit, visitor;
  VisitAttrs attrs;
  bool bounce() const { return pageviews == 1 && interactive_custom == 0; }
};

std::string Screen(int w) {
  if (w <= 0) return "";
  if (w < 576) return "Mobile";
  if (w < 992) return "Tablet";
  if (w < 1440) return "Laptop";
  return "Desktop";
}

struct Model {
  std::vector<MEvent> events;
  std::vector<MSession> sessions;
  absl::TimeZone tz;

  void Sessionize() {
    absl::flat_hash_map<std::string, int> open;  // ip|ua -> session
    auto geo = *CountryResolver::Create("");
    for (MEvent& e : events) {
      std::string who = e.ip + "|" + e.ua;
      auto it = open.find(who);
      if (it == open.end() ||
          e.ts_ms - sessions[it->second].last > 30 * 60000) {
        MSession s;
        s.start = s.last = e.ts_ms;
        s.entry = e.page;
        s.visitor = absl::StrCat(who, "|", e.ts_ms / 86400000);
        Acquisition a = ParseAcquisition(e.url, e.referrer, "example.com");
        UserAgentInfo u = ParseUserAgent(e.ua);
        s.attrs = {e.page,       a.source,          a.referrer,
                   a.utm_source, a.utm_medium,      a.utm_campaign,
                   a.utm_term,   a.utm_content,     geo->Resolve("", "", e.tz),
                   u.browser,    u.browser_version, u.os,
                   u.os_version, u.device,          Screen(e.width),
                   "en-US"};
        sessions.push_back(s);
        open[who] = static_cast<int>(sessions.size()) - 1;
        it = open.find(who);
      }
      MSession& s = sessions[it->second];
      e.session = it->second;
      s.last = std::max(s.last, e.ts_ms);
      s.events++;
      if (e.name == "pageview") {
        s.pageviews++;
        s.exit = e.page;
      } else {
        s.interactive_custom++;
      }
    }
  }

  std::optional<std::string> Value(const MEvent& e,
                                   const std::string& dim) const {
    const MSession& s = sessions[e.session];
    const VisitAttrs& v = s.attrs;
    if (dim == "event:page") return e.page;
    if (dim == "event:name") return e.name;
    if (dim == "event:props:plan") {
      for (auto& [k, val] : e.props) {
        if (k == "plan") return val;
      }
      return std::nullopt;
    }
    if (dim == "visit:entry_page") return s.entry;
    if (dim == "visit:exit_page") return s.exit;
    if (dim == "visit:source")
      return v.source.empty() ? "Direct / None" : v.source;
    if (dim == "visit:browser") return v.browser;
    if (dim == "visit:device") return v.device;
    if (dim == "visit:country") return v.country;
    if (dim == "visit:screen") return v.screen;
    if (dim == "visit:os") return v.os;
    if (dim == "visit:os_version") return v.os_version;
    if (dim == "visit:browser_version") return v.browser_version;
    if (dim == "visit:referrer")
      return v.referrer.empty() ? "Direct / None" : v.referrer;
    if (dim == "visit:utm_source") return v.utm_source;
    if (dim == "visit:utm_medium") return v.utm_medium;
    if (dim == "visit:locale") return v.locale;
    if (dim == "event:hostname") return std::string("example.com");
    ADD_FAILURE() << "model lacks " << dim;
    return std::nullopt;
  }
};

struct Q {
  std::string date_range_json;
  int64_t from_ms, to_ms;
  std::string dim;  // "" none, "time:day", "time:hour", or a dimension
  std::string fop, fdim, fval;  // filter, fop "" = none
  std::vector<std::string> metrics;
};

struct Row {
  std::vector<double> m;
};

std::string Label(const Model& model, const std::string& dim, int64_t ms,
                  int64_t range_from_ms) {
  absl::Time t = absl::FromUnixMillis(ms);
  if (dim == "time:day") return absl::FormatTime("%Y-%m-%d", t, model.tz);
  if (dim == "time:month") {
    return absl::FormatTime("%Y-%m-01", t, model.tz);
  }
  if (dim == "time:week") {
    absl::CivilDay d = absl::ToCivilDay(t, model.tz);
    while (absl::GetWeekday(d) != absl::Weekday::monday) --d;
    absl::CivilDay first =
        absl::ToCivilDay(absl::FromUnixMillis(range_from_ms), model.tz);
    if (d < first) d = first;
    return absl::FormatCivilTime(d);
  }
  return absl::FormatTime("%Y-%m-%d %H:00:00", t, model.tz);
}

std::map<std::string, Row> BruteForce(const Model& model, const Q& q) {
  struct Acc {
    int64_t pageviews = 0, events = 0, visits = 0, bounces = 0, duration = 0,
            spv = 0;
    absl::flat_hash_set<std::string> visitors;
  };
  std::map<std::string, Acc> acc;
  auto matches = [&](const MEvent& e) {
    if (q.fop.empty()) return true;
    std::optional<std::string> v = model.Value(e, q.fdim);
    bool hit = v && (q.fop == "contains" ? v->find(q.fval) != std::string::npos
                                         : *v == q.fval);
    return q.fop == "is_not" ? !hit : hit;
  };
  auto key = [&](const MEvent& e, int64_t ts) -> std::optional<std::string> {
    if (q.dim.empty()) return "";
    if (q.dim.rfind("time:", 0) == 0) return Label(model, q.dim, ts, q.from_ms);
    std::optional<std::string> v = model.Value(e, q.dim);
    if (!v || v->empty()) return std::nullopt;
    return v;
  };
  std::map<int, std::set<std::string>> session_keys;
  for (const MEvent& e : model.events) {
    if (!matches(e)) continue;
    const MSession& s = model.sessions[e.session];
    if (e.ts_ms >= q.from_ms && e.ts_ms < q.to_ms) {
      if (auto k = key(e, e.ts_ms)) {
        Acc& a = acc[*k];
        a.pageviews += e.name == "pageview";
        a.events++;
        a.visitors.insert(s.visitor);
      }
    }
    if (s.start >= q.from_ms && s.start < q.to_ms) {
      if (auto k = key(e, s.start)) session_keys[e.session].insert(*k);
    }
  }
  for (const auto& [sid, keys] : session_keys) {
    const MSession& s = model.sessions[sid];
    for (const std::string& k : keys) {
      Acc& a = acc[k];
      a.visits++;
      a.bounces += s.bounce();
      a.duration += s.last - s.start;
      a.spv += s.pageviews;
    }
  }
  std::map<std::string, Row> out;
  for (const auto& [k, a] : acc) {
    Row r;
    for (const std::string& m : q.metrics) {
      double v = 0;
      if (m == "visitors") v = a.visitors.size();
      if (m == "pageviews") v = a.pageviews;
      if (m == "events") v = a.events;
      if (m == "visits") v = a.visits;
      if (m == "bounce_rate")
        v = a.visits ? std::round(100.0 * a.bounces / a.visits) : 0;
      if (m == "visit_duration")
        v = a.visits ? std::round(a.duration / 1000.0 / a.visits) : 0;
      if (m == "views_per_visit")
        v = a.visits ? std::round(100.0 * a.spv / a.visits) / 100 : 0;
      r.m.push_back(v);
    }
    if (a.events == 0 && a.visits == 0) continue;
    out[k] = r;
  }
  return out;
}

std::map<std::string, Row> FromJson(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  std::map<std::string, Row> out;
  for (const auto& r : d["results"].GetArray()) {
    std::vector<std::string> dims;
    for (const auto& x : r["dimensions"].GetArray())
      dims.push_back(x.GetString());
    Row row;
    for (const auto& x : r["metrics"].GetArray())
      row.m.push_back(x.GetDouble());
    out[absl::StrJoin(dims, "|")] = row;
  }
  return out;
}

std::string ToJson(const Q& q) {
  std::string body = absl::StrCat(R"({"site_id":"example.com","date_range":)",
                                  q.date_range_json, R"(,"metrics":[")",
                                  absl::StrJoin(q.metrics, "\",\""), "\"]");
  if (!q.dim.empty())
    absl::StrAppend(&body, R"(,"dimensions":[")", q.dim, "\"]");
  if (!q.fop.empty()) {
    absl::StrAppend(&body, R"(,"filters":[[")", q.fop, R"(",")", q.fdim,
                    R"(",[")", q.fval, "\"]]]");
  }
  absl::StrAppend(&body, R"(,"pagination":{"limit":100000}})");
  return body;
}

void ExpectSame(const std::map<std::string, Row>& want,
                const std::map<std::string, Row>& got, const Q& q,
                bool approx_visitors, const std::string& what) {
  const std::string ctx = ToJson(q) + " via " + what;
  ASSERT_EQ(want.size(), got.size()) << ctx;
  for (const auto& [k, w] : want) {
    auto it = got.find(k);
    ASSERT_NE(it, got.end()) << ctx << " missing row " << k;
    for (size_t i = 0; i < q.metrics.size(); ++i) {
      if (q.metrics[i] == "visitors" && approx_visitors) {
        EXPECT_NEAR(it->second.m[i], w.m[i], std::max(1.0, w.m[i] * 0.02))
            << ctx << " row " << k;
      } else {
        EXPECT_DOUBLE_EQ(it->second.m[i], w.m[i])
            << ctx << " row " << k << " metric " << q.metrics[i];
      }
    }
  }
}

class ReferenceModelTest : public ::testing::TestWithParam<int> {};

TEST_P(ReferenceModelTest, RandomStreamsAndQueriesAgree) {
  std::mt19937_64 rng(GetParam());
  // "Now": 2026-11-20 15:30 UTC.
  FakeClock clock(absl::FromUnixSeconds(1795188600));
  const int64_t now_ms = absl::ToUnixMillis(clock.Now());
  Model model;
  model.tz = absl::FixedTimeZone(3600);  // Europe/Berlin in November
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &model.tz));

  // Visitors with sessions over the last 12 days, some crossing midnight.
  const int visitors = 150 + static_cast<int>(rng() % 200);
  for (int v = 0; v < visitors; ++v) {
    std::string ip = absl::StrCat("10.", v / 250, ".", v % 250, ".7");
    std::string ua = kUas[rng() % 5];
    int64_t t = now_ms - static_cast<int64_t>(rng() % (12LL * 86400000));
    const int sessions = 1 + rng() % 3;
    for (int s = 0; s < sessions; ++s) {
      const int n = 1 + rng() % 5;
      std::string ref = kReferrers[rng() % 7];
      std::string tz = kZones[rng() % 4];
      int width = static_cast<int>(rng() % 2000);
      for (int i = 0; i < n && t < now_ms; ++i) {
        MEvent e;
        e.ts_ms = t;
        e.page = kPages[rng() % 6];
        e.name = rng() % 5 == 0 ? "signup" : "pageview";
        if (e.name == "signup" && rng() % 2)
          e.props = {{"plan", rng() % 2 ? "pro" : "free"}};
        e.url = "https://example.com" + e.page;
        if (i == 0 && rng() % 4 == 0) e.url += "?utm_source=newsletter";
        e.referrer = i == 0 ? ref : "";
        e.ip = ip;
        e.ua = ua;
        e.tz = tz;
        e.width = width;
        model.events.push_back(e);
        t += 1000 * static_cast<int64_t>(rng() % 900);  // < 15 min apart
      }
      t += 1000 * static_cast<int64_t>(3600 + rng() % 86400);
    }
  }
  std::stable_sort(
      model.events.begin(), model.events.end(),
      [](const MEvent& a, const MEvent& b) { return a.ts_ms < b.ts_ms; });
  model.Sessionize();

  Options o;
  o.store_url = "memory://";
  o.clock = &clock;
  auto engine = *Engine::Open(o);
  ASSERT_TRUE(
      engine->AddSite({.domain = "example.com", .timezone = "Europe/Berlin"})
          .ok());
  std::vector<EventInput> batch;
  for (const MEvent& m : model.events) {
    EventInput e;
    e.site = "example.com";
    e.name = m.name;
    e.url = m.url;
    e.referrer = m.referrer;
    e.ts = absl::FromUnixMillis(m.ts_ms);
    e.ip = m.ip;
    e.user_agent = m.ua;
    e.props = m.props;
    e.timezone = m.tz;
    e.screen_width = m.width;
    e.locale = "en-US";
    batch.push_back(e);
    if (batch.size() == 97) {
      auto r = engine->TrackBatch(batch);
      ASSERT_TRUE(r.ok() && r->rejected.empty() && r->dropped.empty());
      batch.clear();
    }
  }
  ASSERT_TRUE(engine->TrackBatch(batch).ok());
  ASSERT_TRUE(engine->Flush().ok());

  const absl::CivilDay today = absl::ToCivilDay(clock.Now(), model.tz);
  auto day_ms = [&](absl::CivilDay d) {
    return absl::ToUnixMillis(absl::FromCivil(d, model.tz));
  };
  const std::vector<std::string> dims = {"",
                                         "time:day",
                                         "event:page",
                                         "event:name",
                                         "visit:source",
                                         "visit:browser",
                                         "visit:device",
                                         "visit:country",
                                         "visit:entry_page",
                                         "visit:exit_page",
                                         "visit:screen",
                                         "event:props:plan",
                                         "visit:os",
                                         "visit:os_version",
                                         "visit:browser_version",
                                         "visit:referrer",
                                         "visit:utm_source",
                                         "visit:utm_medium",
                                         "visit:locale",
                                         "event:hostname",
                                         "time:week",
                                         "time:month",
                                         "time:hour"};
  const char* fdims[] = {"event:page",      "visit:source",
                         "visit:browser",   "event:name",
                         "visit:device",    "visit:entry_page",
                         "visit:exit_page", "event:props:plan"};
  const char* fvals[] = {"/pricing", "Google", "Chrome",
                         "signup",   "Mobile", "/blog/a",
                         "/blog",    "pro",    "Direct / None"};
  const std::vector<std::string> all_metrics = {
      "visitors",    "visits",         "pageviews",      "events",
      "bounce_rate", "visit_duration", "views_per_visit"};
  int rollup_answers = 0;
  int split_compared = 0;
  for (int i = 0; i < 250; ++i) {
    Q q;
    switch (rng() % 4) {
      case 0:
        q.date_range_json = "\"7d\"";
        q.from_ms = day_ms(today - 6), q.to_ms = day_ms(today + 1);
        break;
      case 1:
        q.date_range_json = "\"day\"";
        q.from_ms = day_ms(today), q.to_ms = day_ms(today + 1);
        break;
      case 2: {
        absl::CivilDay f = today - static_cast<int>(rng() % 10);
        absl::CivilDay t = f + static_cast<int>(rng() % 4);
        q.date_range_json =
            absl::StrCat("[\"", absl::FormatCivilTime(f), "\",\"",
                         absl::FormatCivilTime(t), "\"]");
        q.from_ms = day_ms(f), q.to_ms = day_ms(t + 1);
        break;
      }
      default:
        q.date_range_json = "\"30d\"";
        q.from_ms = day_ms(today - 29), q.to_ms = day_ms(today + 1);
    }
    q.dim = dims[rng() % dims.size()];
    if (q.dim == "time:hour") {
      q.date_range_json = "\"day\"";
      q.from_ms = day_ms(today), q.to_ms = day_ms(today + 1);
    }
    if (rng() % 2) {
      const char* ops[] = {"is", "is_not", "contains"};
      q.fop = ops[rng() % 3];
      // Half the time filter on the breakdown dimension (rollup-answerable).
      q.fdim = (rng() % 2 && q.dim.find(':') != std::string::npos &&
                q.dim.rfind("time", 0) != 0)
                   ? q.dim
                   : fdims[rng() % 8];
      q.fval = fvals[rng() % 9];
    }
    for (const std::string& m : all_metrics) {
      if (rng() % 2) q.metrics.push_back(m);
    }
    if (q.metrics.empty()) q.metrics.push_back("visitors");

    const std::string body = ToJson(q);
    absl::StatusOr<std::string> planned = engine->Query(body);
    ASSERT_TRUE(planned.ok()) << body << " " << planned.status();
    absl::StatusOr<QuerySpec> spec = ParseQuery(
        body, [&](std::string_view id) { return engine->FindSite(id); },
        clock.Now());
    ASSERT_TRUE(spec.ok());
    if (planned->find("\"source\":\"rollups\"") != std::string::npos) {
      // Every rollup scan split in two halves on two threads gives exactly
      // the answer of one scan.
      absl::StatusOr<std::string> one =
          ExecuteQuery(*spec, QuerySources{.store = engine->store()});
      absl::StatusOr<std::string> split = ExecuteQuery(
          *spec,
          QuerySources{.store = engine->store(), .split_scan_buckets = 1});
      ASSERT_TRUE(one.ok() && split.ok()) << body;
      EXPECT_EQ(*one, *split) << body;
      ++split_compared;
    }
    spec->force_raw = true;
    absl::StatusOr<std::string> raw =
        ExecuteQuery(*spec, QuerySources{engine->store(), nullptr});
    ASSERT_TRUE(raw.ok()) << raw.status();

    const auto want = BruteForce(model, q);
    const bool via_rollups =
        planned->find("\"source\":\"rollups\"") != std::string::npos;
    rollup_answers += via_rollups;
    ExpectSame(want, FromJson(*raw), q, /*approx_visitors=*/false, "events");
    ExpectSame(want, FromJson(*planned), q, via_rollups,
               via_rollups ? "rollups" : "events (planned)");
    if (HasFatalFailure()) return;
  }
  // The planner must actually use rollups for a good share of these.
  EXPECT_GT(rollup_answers, 60);
  EXPECT_EQ(split_compared, rollup_answers);
}

// Rows that merge thousands of sketch entries (the random streams above
// stay small): a split scan promotes them to dense exactly as one scan does,
// and a daily timeseries point (one day cell) keeps its cell's sparse form,
// whose estimate of 3,000 distinct visitors is within a few (a dense p = 16
// estimate is off by ~12).
TEST(ReferenceModelLargeRowsTest, SplitScanAndOneCellRows) {
  FakeClock clock(absl::FromUnixSeconds(1795188600));  // 2026-11-20 15:30 UTC
  Options o;
  o.store_url = "memory://";
  o.clock = &clock;
  auto engine = *Engine::Open(o);
  ASSERT_TRUE(engine->AddSite({.domain = "example.com"}).ok());
  const absl::CivilDay today =
      absl::ToCivilDay(clock.Now(), absl::UTCTimeZone());
  constexpr int kDays = 10, kVisitors = 3000;
  std::vector<EventInput> batch;
  for (int d = kDays; d >= 1; --d) {
    const absl::Time day = absl::FromCivil(today - d, absl::UTCTimeZone());
    for (int v = 0; v < kVisitors; ++v) {
      EventInput e;
      e.site = "example.com";
      e.name = "pageview";
      e.url = v % 2 ? "https://example.com/a" : "https://example.com/b";
      e.ts = day + absl::Seconds(10 * v);
      e.ip = absl::StrCat("10.", v / 250, ".", v % 250, ".", d);
      e.user_agent = kUas[0];
      batch.push_back(e);
      if (batch.size() == 1000) {
        auto r = engine->TrackBatch(batch);
        ASSERT_TRUE(r.ok() && r->rejected.empty() && r->dropped.empty());
        batch.clear();
      }
    }
  }
  ASSERT_TRUE(engine->Flush().ok());
  const std::string range =
      absl::StrCat(R"("date_range":[")", absl::FormatCivilTime(today - kDays),
                   R"(",")", absl::FormatCivilTime(today - 1), R"("])");
  // Also 2 days: each half holds one cell, so only absorbing promotes.
  const std::string two_days =
      absl::StrCat(R"("date_range":[")", absl::FormatCivilTime(today - 2),
                   R"(",")", absl::FormatCivilTime(today - 1), R"("])");
  for (const std::string& over : {range, two_days})
    for (const char* rest :
         {R"("metrics":["visitors"],"dimensions":["time:day"])",
          R"("metrics":["visitors","pageviews"],"dimensions":["event:page"])",
          R"("metrics":["visitors","pageviews"])"}) {
      const std::string body =
          absl::StrCat(R"({"site_id":"example.com",)", over, ",", rest, "}");
      absl::StatusOr<QuerySpec> spec = ParseQuery(
          body, [&](std::string_view id) { return engine->FindSite(id); },
          clock.Now());
      ASSERT_TRUE(spec.ok()) << spec.status();
      absl::StatusOr<std::string> one =
          ExecuteQuery(*spec, QuerySources{.store = engine->store()});
      absl::StatusOr<std::string> split = ExecuteQuery(
          *spec,
          QuerySources{.store = engine->store(), .split_scan_buckets = 1});
      ASSERT_TRUE(one.ok() && split.ok()) << body;
      ASSERT_NE(one->find(R"("source":"rollups")"), std::string::npos) << *one;
      EXPECT_EQ(*one, *split) << body;
    }
  const std::string body =
      absl::StrCat(R"({"site_id":"example.com",)", range,
                   R"(,"metrics":["visitors"],"dimensions":["time:day"]})");
  absl::StatusOr<std::string> daily = engine->Query(body);
  ASSERT_TRUE(daily.ok()) << daily.status();
  rapidjson::Document doc;
  doc.Parse(daily->c_str());
  ASSERT_TRUE(doc.IsObject()) << *daily;
  const auto& results = doc["results"];
  ASSERT_EQ(results.Size(), static_cast<unsigned>(kDays)) << *daily;
  for (const auto& r : results.GetArray()) {
    EXPECT_NEAR(r["metrics"][0].GetInt(), kVisitors, 3) << *daily;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReferenceModelTest,
                         ::testing::Values(1, 2, 3, 4, 5, 6));

}  // namespace
}  // namespace analytics
