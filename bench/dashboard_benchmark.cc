// Dashboard benchmark: N events (default 10 million) over 30 days in SQLite;
// the dashboard's queries answered by the Engine (rollups) beside the same
// answers computed with SQL GROUP BY over a raw events table, in one run.
// The store keeps events in blocks (not SQL rows), so the raw table, one row
// per event with the columns the queries read and the old schema's two
// indexes, is written beside it (PATH.raw) from the stored events.
//
//   build/bin/dashboard_benchmark [--events N] [--db PATH] [--reuse]
//                                 [--no-sql] [--store URL]
//
// --store postgres://... or redis://... loads and queries that store instead
// (the SQL GROUP BY comparison is SQLite-only and is then skipped); with
// --reuse it only queries what an earlier run loaded into that store.
// --no-sql skips the SQL comparison on SQLite too (engine timings only).
//
// Prints per-query times, the ratio, visitors' error against the exact
// count, pageviews equality, ingestion rate and peak RSS.
#include <sqlite3.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "analytics/engine.h"
#include "analytics/store.h"
#include "bench/gen.h"
#include "rapidjson/document.h"

namespace analytics::bench {
namespace {

double Ms(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - a)
      .count();
}

long PeakRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

// Writes every stored event of `db` as a row of table `events` in `raw`.
bool WriteRawTable(const std::string& db, const std::string& raw) {
  FreshSqliteFile(raw);
  auto store = OpenStore("sqlite://" + db);
  if (!store.ok()) {
    fprintf(stderr, "raw: %s\n", std::string(store.status().message()).c_str());
    return false;
  }
  sqlite3* out = nullptr;
  sqlite3_open(raw.c_str(), &out);
  sqlite3_exec(out,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; "
               "CREATE TABLE events(site_id INTEGER, ts_ms INTEGER, name TEXT, "
               "page TEXT, visitor_id INTEGER, session_id INTEGER, "
               "session_start_ms INTEGER, source TEXT, country TEXT, "
               "browser TEXT, os TEXT, device TEXT, s_events INTEGER, "
               "s_bounce INTEGER, s_duration_ms INTEGER); BEGIN",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(out,
                     "INSERT INTO events VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                     "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                     -1, &ins, nullptr);
  auto text = [&](int i, const std::string& v) {
    sqlite3_bind_text(ins, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
  };
  int64_t rows = 0;
  absl::Status st = (*store)->ScanEventsAfter(0, 0, [&](const Event& e) {
    sqlite3_bind_int64(ins, 1, e.site_id);
    sqlite3_bind_int64(ins, 2, e.ts_ms);
    text(3, e.name);
    text(4, e.page);
    sqlite3_bind_int64(ins, 5, static_cast<int64_t>(e.visitor_id));
    sqlite3_bind_int64(ins, 6, static_cast<int64_t>(e.session_id));
    sqlite3_bind_int64(ins, 7, e.session_start_ms);
    text(8, e.visit.source);
    text(9, e.visit.country);
    text(10, e.visit.browser);
    text(11, e.visit.os);
    text(12, e.visit.device);
    sqlite3_bind_int(ins, 13, e.s_events);
    sqlite3_bind_int(ins, 14, e.s_bounce ? 1 : 0);
    sqlite3_bind_int64(ins, 15, e.s_duration_ms);
    sqlite3_step(ins);
    sqlite3_reset(ins);
    ++rows;
    return true;
  });
  sqlite3_finalize(ins);
  sqlite3_exec(out,
               "COMMIT; CREATE INDEX events_site_ts ON events(site_id, ts_ms); "
               "CREATE INDEX events_site_session_start ON "
               "events(site_id, session_start_ms)",
               nullptr, nullptr, nullptr);
  sqlite3_close(out);
  if (!st.ok()) {
    fprintf(stderr, "raw: %s\n", std::string(st.message()).c_str());
    return false;
  }
  fprintf(stderr, "raw table: %lld rows\n", static_cast<long long>(rows));
  return true;
}

int Main(int argc, char** argv) {
  int64_t n = 10000000;
  std::string db = "/tmp/analytics-dashboard/dash.db";
  bool reuse = false;
  bool no_sql = false;
  std::string store_url;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--events") && i + 1 < argc)
      n = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--db") && i + 1 < argc)
      db = argv[++i];
    else if (!strcmp(argv[i], "--store") && i + 1 < argc)
      store_url = argv[++i];
    else if (!strcmp(argv[i], "--reuse"))
      reuse = true;
    else if (!strcmp(argv[i], "--no-sql"))
      no_sql = true;
    else {
      fprintf(stderr,
              "usage: %s [--events N] [--db PATH] [--reuse] [--no-sql] "
              "[--store URL]\n",
              argv[0]);
      return 2;
    }
  }
  // 30 whole UTC days ending at "now" (a fixed date, so runs compare).
  const absl::Time start =
      absl::FromCivil(absl::CivilDay(2026, 10, 1), absl::UTCTimeZone());
  const absl::Time end = start + absl::Hours(24 * 30);
  FakeClock clock(end - absl::Minutes(1));
  Options o;
  const bool sqlite = store_url.empty();
  o.store_url = sqlite ? "sqlite://" + db : store_url;
  o.clock = &clock;
  if (!reuse && sqlite) FreshSqliteFile(db);
  auto engine_or = Engine::Open(o);
  if (!engine_or.ok()) {
    fprintf(stderr, "open: %s\n",
            std::string(engine_or.status().message()).c_str());
    return 1;
  }
  auto engine = *std::move(engine_or);
  if (!reuse) {
    (void)engine->AddSite({.domain = "example.com"});
    auto t0 = std::chrono::steady_clock::now();
    const int64_t chunk = 100000;
    for (int64_t done = 0; done < n; done += chunk) {
      const int64_t m = std::min(chunk, n - done);
      const absl::Duration span = (end - start) * (static_cast<double>(m) / n);
      const absl::Time from =
          start + (end - start) * (static_cast<double>(done) / n);
      std::vector<EventInput> events =
          Generate("example.com", m, from, span, done + 7);
      // Two producers, each TrackBatch of 1,000 (durable on return).
      std::vector<std::thread> threads;
      for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
          for (int64_t i = t * 1000; i < m; i += 2000) {
            auto span = absl::MakeConstSpan(events).subspan(
                i, std::min<int64_t>(1000, m - i));
            auto r = engine->TrackBatch(span);
            if (!r.ok()) {
              fprintf(stderr, "track: %s\n",
                      std::string(r.status().message()).c_str());
              std::exit(1);
            }
          }
        });
      }
      for (auto& t : threads) t.join();
      fprintf(stderr, "\ringested %lld / %lld",
              static_cast<long long>(done + m), static_cast<long long>(n));
    }
    (void)engine->Flush();
    const double ms = Ms(t0);
    printf(
        "\ningest: %lld events in %.1f s = %.0f events/s (durable TrackBatch, "
        "2 threads)\n",
        static_cast<long long>(n), ms / 1000, n / (ms / 1000));
  }

  const char* range = R"("date_range":["2026-10-01","2026-10-30"])";
  std::vector<std::pair<std::string, std::string>> queries = {
      {"aggregate",
       R"("metrics":["visitors","visits","pageviews","bounce_rate","visit_duration"])"},
      {"timeseries",
       R"("metrics":["visitors","pageviews"],"dimensions":["time:day"])"},
      {"top pages",
       R"("metrics":["visitors","pageviews"],"dimensions":["event:page"],"pagination":{"limit":10})"},
      {"top sources",
       R"("metrics":["visitors"],"dimensions":["visit:source"],"pagination":{"limit":10})"},
      {"top countries",
       R"("metrics":["visitors"],"dimensions":["visit:country"],"pagination":{"limit":10})"},
      {"top browsers",
       R"("metrics":["visitors"],"dimensions":["visit:browser"],"pagination":{"limit":10})"},
      {"top os",
       R"("metrics":["visitors"],"dimensions":["visit:os"],"pagination":{"limit":10})"},
      {"top devices",
       R"("metrics":["visitors"],"dimensions":["visit:device"],"pagination":{"limit":10})"},
  };
  // Best of 5 runs of each query over `range`; the first query's answer of
  // the last run in *first_json. False (after printing why) on an error.
  using Queries = std::vector<std::pair<std::string, std::string>>;
  auto best_of_5 = [&](const Queries& qs, const char* over,
                       std::vector<double>* best, std::string* first_json) {
    best->assign(qs.size(), 1e18);
    for (int rep = 0; rep < 5; ++rep) {
      for (size_t i = 0; i < qs.size(); ++i) {
        std::string body = std::string(R"({"site_id":"example.com",)") + over +
                           "," + qs[i].second + "}";
        auto t0 = std::chrono::steady_clock::now();
        auto r = engine->Query(body);
        (*best)[i] = std::min((*best)[i], Ms(t0));
        if (!r.ok()) {
          fprintf(stderr, "query: %s\n",
                  std::string(r.status().message()).c_str());
          return false;
        }
        if (i == 0) *first_json = *r;
      }
    }
    return true;
  };
  std::vector<double> best;
  std::string aggregate_json;
  if (!best_of_5(queries, range, &best, &aggregate_json)) return 1;
  double engine_total = 0;
  for (double b : best) engine_total += b;
  // Not part of the dashboard's total: queries that the planner answers from
  // hour rollups (a date-time range), to show what hour buckets cost.
  const char* hour_range =
      R"("date_range":["2026-10-15T00:00:00Z","2026-10-15T11:59:59Z"])";
  const Queries hour_queries = {
      {"12h aggregate",
       R"("metrics":["visitors","visits","pageviews","bounce_rate"])"},
      {"12h top pages",
       R"("metrics":["visitors","pageviews"],"dimensions":["event:page"],"pagination":{"limit":10})"},
      {"12h hourly",
       R"("metrics":["visitors","pageviews"],"dimensions":["time:hour"])"},
  };
  std::vector<double> hour_best;
  std::string hour_json;
  if (!best_of_5(hour_queries, hour_range, &hour_best, &hour_json)) return 1;
  if (hour_json.find(R"("source":"rollups")") == std::string::npos) {
    fprintf(stderr, "hour queries were not answered from rollups: %s\n",
            hour_json.c_str());
    return 1;
  }
  auto print_hour_queries = [&] {
    printf("%-16s %12s\n", "hour rollups", "best of 5 ms");
    for (size_t i = 0; i < hour_queries.size(); ++i) {
      printf("%-16s %12.2f\n", hour_queries[i].first.c_str(), hour_best[i]);
    }
  };
  // No raw-SQL reference for other stores, nor with --no-sql (query timings
  // only, e.g. to profile the engine's side).
  if (!sqlite || no_sql) {
    printf("events: %lld over 30 days, store %s\n", static_cast<long long>(n),
           store_url.substr(0, 8).c_str());
    printf("%-16s %12s\n", "engine query", "best of 5 ms");
    for (size_t i = 0; i < queries.size(); ++i)
      printf("%-16s %12.2f\n", queries[i].first.c_str(), best[i]);
    printf("%-16s %12.2f\n", "engine total", engine_total);
    print_hour_queries();
    printf("aggregate: %s\n", aggregate_json.c_str());
    printf("peak RSS: %ld MiB\n", PeakRssMb());
    (void)engine->Close();
    return 0;
  }

  // The same answers with SQL over the raw events table.
  const std::string raw = db + ".raw";
  if (!(reuse && std::filesystem::exists(raw)) && !WriteRawTable(db, raw)) {
    return 1;
  }
  sqlite3* sql = nullptr;
  sqlite3_open_v2(raw.c_str(), &sql, SQLITE_OPEN_READONLY, nullptr);
  const int64_t f = absl::ToUnixMillis(start), t = absl::ToUnixMillis(end);
  const std::string where = "site_id=1 AND ts_ms>=" + std::to_string(f) +
                            " AND ts_ms<" + std::to_string(t);
  std::vector<std::pair<std::string, std::string>> sqls = {
      {"aggregate",
       "SELECT count(DISTINCT visitor_id), count(DISTINCT session_id), "
       "sum(name='pageview') FROM events WHERE " +
           where},
      {"aggregate sessions",
       "SELECT avg(s_bounce), avg(s_duration_ms) FROM (SELECT max(s_events), "
       "s_bounce, "
       "s_duration_ms FROM events WHERE site_id=1 AND session_start_ms>=" +
           std::to_string(f) + " AND session_start_ms<" + std::to_string(t) +
           " GROUP BY session_id)"},
      {"timeseries",
       "SELECT ts_ms/86400000 d, count(DISTINCT visitor_id), "
       "sum(name='pageview') "
       "FROM events WHERE " +
           where + " GROUP BY d"},
  };
  for (const char* col :
       {"page", "source", "country", "browser", "os", "device"}) {
    sqls.push_back({std::string("top ") + col,
                    std::string("SELECT ") + col +
                        ", count(DISTINCT visitor_id) v FROM events WHERE " +
                        where + " GROUP BY 1 ORDER BY v DESC LIMIT 10"});
  }
  double sql_total = 0;
  int64_t exact_visitors = 0, exact_pageviews = 0;
  std::vector<double> sql_ms;
  for (const auto& [name, q] : sqls) {
    auto t0 = std::chrono::steady_clock::now();
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(sql, q.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      fprintf(stderr, "sql: %s\n", sqlite3_errmsg(sql));
      return 1;
    }
    bool first = true;
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (first && name == "aggregate") {
        exact_visitors = sqlite3_column_int64(st, 0);
        exact_pageviews = sqlite3_column_int64(st, 2);
      }
      first = false;
    }
    sqlite3_finalize(st);
    sql_ms.push_back(Ms(t0));
    sql_total += sql_ms.back();
  }
  sqlite3_close(sql);

  rapidjson::Document d;
  d.Parse(aggregate_json.c_str());
  const int64_t visitors = d["results"][0]["metrics"][0].GetInt64();
  const int64_t pageviews = d["results"][0]["metrics"][2].GetInt64();

  printf("events: %lld over 30 days\n", static_cast<long long>(n));
  printf("%-16s %12s\n", "engine query", "best of 5 ms");
  for (size_t i = 0; i < queries.size(); ++i) {
    printf("%-16s %12.2f\n", queries[i].first.c_str(), best[i]);
  }
  printf("%-16s %12.2f\n", "engine total", engine_total);
  print_hour_queries();
  printf("%-20s %12s\n", "SQL GROUP BY query", "ms");
  for (size_t i = 0; i < sqls.size(); ++i) {
    printf("%-20s %12.1f\n", sqls[i].first.c_str(), sql_ms[i]);
  }
  printf("%-20s %12.1f\n", "SQL total", sql_total);
  printf("speed-up: %.0fx\n", sql_total / engine_total);
  printf("visitors: engine %lld, exact %lld, error %.3f%%\n",
         static_cast<long long>(visitors),
         static_cast<long long>(exact_visitors),
         100.0 * std::abs(visitors - exact_visitors) /
             std::max<int64_t>(1, exact_visitors));
  printf("pageviews: engine %lld, exact %lld (%s)\n",
         static_cast<long long>(pageviews),
         static_cast<long long>(exact_pageviews),
         pageviews == exact_pageviews ? "equal" : "DIFFERENT");
  printf("peak RSS: %ld MiB\n", PeakRssMb());
  (void)engine->Close();
  return pageviews == exact_pageviews ? 0 : 1;
}

}  // namespace
}  // namespace analytics::bench

int main(int argc, char** argv) { return analytics::bench::Main(argc, argv); }
