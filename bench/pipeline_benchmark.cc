// Library benchmarks: the in-memory pipeline (parse + enrich + sessionize +
// rollup fold) on one core, and durable ingestion through the Engine on
// SQLite (TrackBatch of 1,000 from 4 threads; Track from 64 threads); the
// rollup fold alone.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "analytics/engine.h"
#include "bench/gen.h"
#include "benchmark/benchmark.h"
#include "libanalytics/enrich/country.h"
#include "libanalytics/enrich/enricher.h"
#include "libanalytics/enrich/visitor_id.h"
#include "libanalytics/rollup/rollup_builder.h"
#include "libanalytics/session/sessionizer.h"

namespace analytics::bench {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1790000000);

// One core: JSON line -> EventInput -> Event -> session stamps -> rollups.
void BM_PipelineInMemory(benchmark::State& state) {
  const int64_t n = 200000;
  std::vector<EventInput> inputs =
      Generate("example.com", n, kStart, absl::Hours(24));
  std::vector<std::string> lines;
  for (const auto& e : inputs) lines.push_back(ToJsonLine(e));
  auto geo = *CountryResolver::Create("");
  const std::string salt = NewSalt();
  Enricher enricher(geo.get(), [&](int64_t) { return salt; });
  Site site{.id = 1, .domain = "example.com", .timezone = "Europe/Berlin"};
  absl::TimeZone tz;
  absl::LoadTimeZone(site.timezone, &tz);
  int64_t i = 0;
  auto sessions = std::make_unique<Sessionizer>();
  auto rollups = std::make_unique<RollupBuilder>();
  rollups->SetSiteTimezone(1, tz);
  // One EventInput and one Event, parsed and enriched into again and again
  // (as the CLI's ingest parses and the engine enriches into recycled
  // Events): their strings keep their capacity.
  EventInput in;
  std::vector<Event> batch(1);
  std::string bot;
  int64_t sessions_started = 0;
  for (auto _ : state) {
    (void)ParseEventJson(lines[i % n], &in);
    Event& e = batch[0];
    uint64_t prev = 0;
    bot.clear();
    (void)enricher.Enrich(in, site, kStart, &e, &prev, &bot);
    if (bot.empty()) {  // (the generated traffic has no bots)
      sessions->Assign(&e, prev, in.interactive);
      sessions_started += e.first_in_session ? 1 : 0;
      e.seq = i + 1;
      rollups->Add(batch);
    }
    if (++i % n == 0) {
      state.PauseTiming();
      int64_t seq;
      rollups->Take(&seq);
      sessions = std::make_unique<Sessionizer>();
      state.ResumeTiming();
    }
    if (i % 50000 == 0) {  // a checkpoint's drain, as the engine does
      int64_t seq;
      benchmark::DoNotOptimize(rollups->Take(&seq));
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["events_per_session"] =
      static_cast<double>(state.iterations()) /
      static_cast<double>(std::max<int64_t>(1, sessions_started));
}
BENCHMARK(BM_PipelineInMemory)->Unit(benchmark::kNanosecond)->MinTime(3);

// The generated events, enriched and sessionized once (before timing), with
// `edit(i, events)` applied to each in order (it may look at earlier ones).
std::vector<Event> FoldEvents(
    const std::function<void(int64_t, std::vector<Event>&)>& edit) {
  const int64_t n = 200000;
  std::vector<EventInput> inputs =
      Generate("example.com", n, kStart, absl::Hours(24));
  auto geo = *CountryResolver::Create("");
  const std::string salt = NewSalt();
  Enricher enricher(geo.get(), [&](int64_t) { return salt; });
  Site site{.id = 1, .domain = "example.com", .timezone = "Europe/Berlin"};
  Sessionizer sessions;
  std::vector<Event> events(n);
  for (int64_t i = 0; i < n; ++i) {
    Event& e = events[i];
    uint64_t prev = 0;
    std::string bot;
    (void)enricher.Enrich(inputs[i], site, kStart, &e, &prev, &bot);
    sessions.Assign(&e, prev, inputs[i].interactive);
    e.seq = i + 1;
    if (edit) edit(i, events);
  }
  return events;
}

// RollupBuilder::Add one event at a time over `events`, and Take every
// 50,000 events as in BM_PipelineInMemory. `force_tuples`: 0 lets the
// builder decide the tuple groups' mode, 1 forces tuples, 2 per dimension.
void RunFold(benchmark::State& state, const std::vector<Event>& events,
             int64_t force_tuples = 0) {
  absl::TimeZone tz;
  absl::LoadTimeZone("Europe/Berlin", &tz);
  auto rollups = std::make_unique<RollupBuilder>();
  rollups->SetSiteTimezone(1, tz);
  if (force_tuples != 0) rollups->ForceTupleModeForTesting(force_tuples == 1);
  const size_t n = events.size();
  int64_t i = 0;
  for (auto _ : state) {
    rollups->Add(absl::MakeConstSpan(&events[i % n], 1));
    if (++i % 50000 == 0) {
      int64_t seq;
      benchmark::DoNotOptimize(rollups->Take(&seq));
    }
  }
  state.SetItemsProcessed(state.iterations());
  // The share of (event, tuple group) folds done as tuples (the rest per
  // dimension): the builder decides from the traffic.
  const double tuples = static_cast<double>(rollups->tuple_folds_for_testing());
  state.counters["tuple_share"] =
      tuples / std::max(1.0, tuples + rollups->direct_folds_for_testing());
}

// The rollup fold alone over the generated traffic.
void BM_RollupFold(benchmark::State& state) {
  static const std::vector<Event> events = FoldEvents(nullptr);
  RunFold(state, events);
}
BENCHMARK(BM_RollupFold)->Unit(benchmark::kNanosecond)->MinTime(3);

// BM_RollupFold when every event's visit attributes are distinct (a small
// site, or a long tail of user agents and places): no two events share a
// locale or a referrer.
void BM_RollupFoldDistinctVisits(benchmark::State& state) {
  static const std::vector<Event> events =
      FoldEvents([](int64_t i, std::vector<Event>& evs) {
        evs[i].visit.locale = "x-" + std::to_string(i);
        evs[i].visit.referrer = "https://r" + std::to_string(i) + ".example/";
      });
  RunFold(state, events);
}
BENCHMARK(BM_RollupFoldDistinctVisits)
    ->Unit(benchmark::kNanosecond)
    ->MinTime(3);

// Between the two: the visit attributes (with a distinct locale and
// referrer) shared by range(0) consecutive events (so each new tuple cell
// takes that many), with the tuple groups' mode decided by the builder
// (range(1) = 0), or forced to tuples (1) or to per dimension (2): where the
// decision's threshold should lie.
void BM_RollupFoldSharedVisits(benchmark::State& state) {
  const int64_t k = state.range(0);
  static std::map<int64_t, std::vector<Event>> by_k;
  std::vector<Event>& events = by_k[k];
  if (events.empty()) {
    events = FoldEvents([k](int64_t i, std::vector<Event>& evs) {
      Event& e = evs[i];
      // All visit attributes of the group's first event (so its tuples).
      if (i % k != 0) e.visit = evs[i - i % k].visit;
      e.visit.locale = "x-" + std::to_string(i / k);
      e.visit.referrer = "https://r" + std::to_string(i / k) + ".example/";
    });
  }
  RunFold(state, events, state.range(1));
}
BENCHMARK(BM_RollupFoldSharedVisits)
    ->ArgsProduct({{2, 3, 4, 8}, {0, 1, 2}})
    ->Unit(benchmark::kNanosecond)
    ->MinTime(1);

std::unique_ptr<Engine> g_engine;
std::vector<EventInput> g_events;
std::string g_dir;

void SetUpEngine(const benchmark::State&) {
  g_dir = (std::filesystem::temp_directory_path() / "analytics-bench").string();
  std::filesystem::remove_all(g_dir);
  Options o;
  o.store_url = "sqlite://" + g_dir + "/bench.db";
  g_engine = *Engine::Open(o);
  (void)g_engine->AddSite({.domain = "example.com"});
  if (g_events.empty()) {
    g_events = Generate("example.com", 400000, absl::Now() - absl::Hours(24),
                        absl::Hours(24));
  }
}
void TearDownEngine(const benchmark::State&) {
  (void)g_engine->Close();
  g_engine.reset();
  std::filesystem::remove_all(g_dir);
}

// Durable: each TrackBatch returns only after its events are committed.
void BM_TrackBatch1000Sqlite(benchmark::State& state) {
  size_t off = (state.thread_index() * 100000) % g_events.size();
  for (auto _ : state) {
    auto span = absl::MakeConstSpan(g_events).subspan(off, 1000);
    auto r = g_engine->TrackBatch(span);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    off = (off + 1000) % (g_events.size() - 1000);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_TrackBatch1000Sqlite)
    ->Setup(SetUpEngine)
    ->Teardown(TearDownEngine)
    ->Threads(4)
    ->UseRealTime()
    ->MinTime(3);

void BM_TrackSqlite(benchmark::State& state) {
  size_t off = (state.thread_index() * 5000) % g_events.size();
  for (auto _ : state) {
    auto r = g_engine->Track(g_events[off]);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    off = (off + 1) % g_events.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrackSqlite)
    ->Setup(SetUpEngine)
    ->Teardown(TearDownEngine)
    ->Threads(64)
    ->UseRealTime()
    ->MinTime(3);

}  // namespace
}  // namespace analytics::bench

// As analyticsd and the CLI do (see server/analyticsd.cc main): Debian's
// Abseil leaves absl::Mutex deadlock detection on.
int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
