// Coordinator benchmark (not a test; run by hand). Measures the two calls on
// the ingest path, per batch of 64: session load + compare-and-set (one
// LoadSessions and one StoreSessions) and MarkLive. "local" always runs;
// "redis" and "postgres" run when ANALYTICS_TEST_REDIS_URL /
// ANALYTICS_TEST_POSTGRES_URL are set, e.g.
//   bash tests/services/redis.sh run -- bash tests/services/postgres.sh run
//     -- build/bin/coord_benchmark      (one line)
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "analytics/coordinator.h"
#include "benchmark/benchmark.h"

namespace analytics {
namespace {

constexpr int kBatch = 64;
constexpr int kVisitors = 100000;

void SessionLoadCas(benchmark::State& state, const std::string& url) {
  auto c = OpenCoordinator(url);
  if (!c.ok()) {
    state.SkipWithError(std::string(c.status().message()).c_str());
    return;
  }
  int64_t site = absl::ToUnixMillis(absl::Now());  // fresh keys per run
  uint64_t next = 0;
  std::vector<SessionKey> keys(kBatch);
  std::vector<SessionWrite> writes(kBatch);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      keys[i] = SessionKey{site, next++ % kVisitors};
    }
    auto loaded = (*c)->LoadSessions(keys);
    if (!loaded.ok()) {
      state.SkipWithError(std::string(loaded.status().message()).c_str());
      return;
    }
    for (int i = 0; i < kBatch; ++i) {
      writes[i] = SessionWrite{keys[i], (*loaded)[i].version,
                               std::string(96, 'x'), absl::Minutes(30)};
    }
    auto stored = (*c)->StoreSessions(writes);
    if (!stored.ok()) {
      state.SkipWithError(std::string(stored.status().message()).c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void MarkLiveBatch(benchmark::State& state, const std::string& url) {
  auto c = OpenCoordinator(url);
  if (!c.ok()) {
    state.SkipWithError(std::string(c.status().message()).c_str());
    return;
  }
  int64_t site = absl::ToUnixMillis(absl::Now());
  uint64_t next = 0;
  std::vector<LiveMark> marks(kBatch);
  for (auto _ : state) {
    int64_t now = absl::ToUnixMillis(absl::Now());
    for (int i = 0; i < kBatch; ++i) {
      marks[i] = LiveMark{site + (i % 4), next++ % kVisitors, now};
    }
    absl::Status st = (*c)->MarkLive(marks);
    if (!st.ok()) {
      state.SkipWithError(std::string(st.message()).c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void RegisterAll() {
  std::vector<std::pair<std::string, std::string>> backends = {
      {"local", "local://"}};
  if (const char* u = std::getenv("ANALYTICS_TEST_REDIS_URL")) {
    backends.emplace_back("redis", u);
  }
  if (const char* u = std::getenv("ANALYTICS_TEST_POSTGRES_URL")) {
    backends.emplace_back("postgres", u);
  }
  for (const auto& [name, url] : backends) {
    benchmark::RegisterBenchmark(("BM_SessionLoadCas64/" + name).c_str(),
                                 SessionLoadCas, url)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_MarkLive64/" + name).c_str(),
                                 MarkLiveBatch, url)
        ->UseRealTime();
  }
}

}  // namespace
}  // namespace analytics

int main(int argc, char** argv) {
  analytics::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
