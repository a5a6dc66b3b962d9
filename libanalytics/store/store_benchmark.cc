// Throughput of Store::AppendEvents into SQLite (batches of 1000 typical
// events, in a temp dir). Not a test: run by hand from ${build}/bin.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analytics/event.h"
#include "analytics/store.h"
#include "benchmark/benchmark.h"
#include "libanalytics/store/memory_store.h"
#include "libanalytics/store/sqlite_store.h"

namespace analytics {
namespace {

// A batch that looks like real traffic: mostly pageviews with full visit
// attributes, some custom events with a prop or two.
std::vector<Event> TypicalBatch(int n, int64_t site_id, int64_t base_ts) {
  static const char* kPages[] = {"/", "/pricing", "/blog/how-we-count",
                                 "/docs/getting-started", "/about"};
  std::vector<Event> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    Event e;
    e.site_id = site_id;
    e.ts_ms = base_ts + i * 37;
    e.name = (i % 10 == 9) ? "Signup" : "pageview";
    e.hostname = "www.example.com";
    e.page = kPages[i % 5];
    if (i % 10 == 9) e.props = {{"plan", "pro"}, {"method", "google"}};
    e.visitor_id = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i / 4 + 1);
    e.session_id = e.visitor_id ^ 0x5555;
    e.session_start_ms = base_ts + (i / 4) * 4 * 37;
    e.visit.entry_page = "/";
    e.visit.source = (i % 3 == 0) ? "Google" : "";
    e.visit.referrer = (i % 3 == 0) ? "google.com" : "";
    e.visit.country = "DE";
    e.visit.browser = "Chrome";
    e.visit.browser_version = "126.0";
    e.visit.os = "Windows";
    e.visit.os_version = "10";
    e.visit.device = "Desktop";
    e.visit.screen = "Desktop";
    e.visit.locale = "de-DE";
    e.first_in_session = i % 4 == 0;
    e.first_page = true;
    e.first_name = i % 4 == 0;
    e.s_pageviews = i % 4 + 1;
    e.s_events = i % 4 + 1;
    e.s_bounce = i % 4 == 0;
    e.s_duration_ms = (i % 4) * 37;
    e.s_exit_page = e.page;
    e.d_bounce = i % 4 == 1 ? -1 : 0;
    e.d_duration_ms = i % 4 == 0 ? 0 : 37;
    out.push_back(std::move(e));
  }
  return out;
}

void RunAppend(benchmark::State& state, Store* store) {
  const int kBatch = static_cast<int>(state.range(0));
  absl::StatusOr<Site> site = store->AddSite(Site{0, "example.com", "abc"});
  if (!site.ok()) {
    state.SkipWithError(std::string(site.status().message()).c_str());
    return;
  }
  std::vector<Event> batch = TypicalBatch(kBatch, site->id, 1790812800000);
  int64_t total = 0;
  for (auto _ : state) {
    // Time moves on between batches, as in real traffic (each batch covers
    // 37 s), so rows land at the end of the time indexes.
    for (Event& e : batch) {
      e.ts_ms += kBatch * 37;
      e.session_start_ms += kBatch * 37;
    }
    absl::Status st = store->AppendEvents(absl::MakeSpan(batch));
    if (!st.ok()) {
      state.SkipWithError(std::string(st.message()).c_str());
      return;
    }
    total += kBatch;
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(total),
                                                  benchmark::Counter::kIsRate);
}

void BM_SqliteAppendEvents(benchmark::State& state) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "store_bench_XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore(tmpl + "/bench.db");
    if (!store.ok()) {
      state.SkipWithError(std::string(store.status().message()).c_str());
    } else {
      RunAppend(state, store->get());
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}
BENCHMARK(BM_SqliteAppendEvents)->Arg(1000)->UseRealTime()->MinTime(2.0);

void BM_MemoryAppendEvents(benchmark::State& state) {
  std::unique_ptr<Store> store = NewMemoryStore();
  RunAppend(state, store.get());
}
BENCHMARK(BM_MemoryAppendEvents)->Arg(1000)->UseRealTime();

}  // namespace
}  // namespace analytics
