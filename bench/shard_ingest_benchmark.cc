// Shard ingest benchmark (docs/SCALING.md, "Past one PostgreSQL primary"):
// the aggregate AppendEvents rate when sites are spread over several store
// primaries, each site's events on one primary (the site -> store-URL map the
// scaling document describes), against the same writers on one primary.
//
//   build/bin/shard_ingest_benchmark [--seconds S] [--threads T] URL...
//
// Each URL gets its own site and T writer threads (default 2), each
// appending batches of 1,000 full events (durable on return) for S seconds
// (default 20). Prints events/s per URL and in total. Passing the same URL
// twice puts both "shards" on one primary (the baseline).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analytics/store.h"

namespace {

using analytics::Event;

std::vector<Event> Batch(int n, int64_t site_id, int64_t base_ts,
                         uint64_t salt) {
  static const char* kPages[] = {"/", "/pricing", "/blog/a", "/docs", "/about"};
  std::vector<Event> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    Event e;
    e.site_id = site_id;
    e.ts_ms = base_ts + i * 37;
    e.name = "pageview";
    e.hostname = "www.example.com";
    e.page = kPages[i % 5];
    e.visitor_id = 0x9E3779B97F4A7C15ull * (salt + static_cast<uint64_t>(i));
    e.session_id = e.visitor_id ^ 0x5555;
    e.session_start_ms = base_ts;
    e.visit.entry_page = "/";
    e.visit.country = "DE";
    e.visit.browser = "Chrome";
    e.visit.os = "Windows";
    e.visit.device = "Desktop";
    e.first_in_session = true;
    e.s_pageviews = 1;
    e.s_events = 1;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 20, threads = 2;
  std::vector<std::string> urls;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [--seconds S] [--threads T] URL...\n",
              argv[0]);
      return 2;
    } else {
      urls.push_back(argv[i]);
    }
  }
  if (urls.empty() || seconds <= 0 || threads <= 0) {
    fprintf(stderr, "usage: %s [--seconds S] [--threads T] URL...\n", argv[0]);
    return 2;
  }
  std::vector<std::unique_ptr<analytics::Store>> stores;
  std::vector<int64_t> sites;
  for (size_t u = 0; u < urls.size(); ++u) {
    auto s = analytics::OpenStore(urls[u]);
    if (!s.ok()) {
      fprintf(stderr, "open %zu: %s\n", u,
              std::string(s.status().message()).c_str());
      return 1;
    }
    analytics::Site site;
    // Unique per run and per URL position (the same server may be named
    // twice, and runs may share a database).
    const int64_t run = static_cast<int64_t>(getpid()) * 100 + u;
    site.domain = absl::StrCat("shard", run, ".example");
    site.short_id = absl::StrCat("s", run);
    auto added = (*s)->AddSite(site);
    if (!added.ok()) {
      fprintf(stderr, "add site: %s\n",
              std::string(added.status().message()).c_str());
      return 1;
    }
    sites.push_back(added->id);
    stores.push_back(*std::move(s));
  }
  std::vector<std::atomic<int64_t>> counts(urls.size());
  std::atomic<bool> failed{false};
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::seconds(seconds);
  std::vector<std::thread> pool;
  for (size_t u = 0; u < urls.size(); ++u) {
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, u, t] {
        uint64_t salt = (u * 1000 + t) << 32;
        int64_t ts = 1790000000000;
        while (std::chrono::steady_clock::now() < deadline && !failed) {
          std::vector<Event> b = Batch(1000, sites[u], ts, salt);
          ts += 37000;
          salt += 1000;
          absl::Status st = stores[u]->AppendEvents(absl::MakeSpan(b));
          if (!st.ok()) {
            fprintf(stderr, "append: %s\n", std::string(st.message()).c_str());
            failed = true;
            return;
          }
          counts[u] += 1000;
        }
      });
    }
  }
  for (std::thread& th : pool) th.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  if (failed) return 1;
  int64_t total = 0;
  for (size_t u = 0; u < urls.size(); ++u) {
    printf("shard %zu: %.0f events/s (%d threads)\n", u, counts[u] / secs,
           threads);
    total += counts[u];
  }
  printf("total: %.0f events/s over %zu shard(s), %.1f s\n", total / secs,
         urls.size(), secs);
  return 0;
}
