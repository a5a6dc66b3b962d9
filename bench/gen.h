// Synthetic traffic for benchmarks: realistic mixes of visitors, user agents,
// pages, referrers and custom events, deterministic for a seed.
#ifndef ANALYTICS_BENCH_GEN_H_
#define ANALYTICS_BENCH_GEN_H_

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "analytics/event.h"

namespace analytics::bench {

inline const std::vector<std::string>& UserAgents() {
  static const std::vector<std::string> uas = {
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
      "like Gecko) Chrome/120.0.0.0 Safari/537.36",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
      "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
      "Safari/604.1",
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
      "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
      "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, "
      "like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
      "like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
      "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
      "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 "
      "Firefox/120.0",
  };
  return uas;
}

inline const std::vector<std::string>& Referrers() {
  static const std::vector<std::string> refs = {
      "",
      "",
      "",
      "https://www.google.com/",
      "https://www.google.de/",
      "https://news.ycombinator.com/item?id=1",
      "https://t.co/abc",
      "https://www.reddit.com/r/programming/",
      "https://duckduckgo.com/",
      "https://github.com/org/repo",
      "https://www.bing.com/search?q=x",
      "https://blog.example.org/post/1"};
  return refs;
}

inline const std::vector<std::string>& Zones() {
  static const std::vector<std::string> z = {
      "Europe/Berlin", "America/New_York",    "Europe/London",
      "Asia/Tokyo",    "America/Los_Angeles", "Europe/Paris",
      "Asia/Kolkata",  "Australia/Sydney",    "America/Sao_Paulo",
      "Europe/Madrid"};
  return z;
}

// Generates `n` events for `site` spread over [start, start + span), in time
// order, from about n / 8 visitors with sessions of a few pageviews.
inline std::vector<EventInput> Generate(const std::string& site, int64_t n,
                                        absl::Time start, absl::Duration span,
                                        uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::vector<EventInput> out;
  out.reserve(n);
  const int64_t visitors = std::max<int64_t>(1, n / 8);
  const int64_t span_ms = absl::ToInt64Milliseconds(span);
  const int64_t start_ms = absl::ToUnixMillis(start);
  const auto& uas = UserAgents();
  const auto& refs = Referrers();
  const auto& zones = Zones();
  for (int64_t i = 0; i < n; ++i) {
    // Events are spread evenly in time; a visitor is drawn from a skewed pool
    // so that some visitors return and sessions have several pageviews.
    const int64_t ts = start_ms + (span_ms * i) / n;
    const int64_t v = (rng() % 4 == 0) ? (i / 3) % visitors
                                       : static_cast<int64_t>(rng() % visitors);
    EventInput e;
    e.site = site;
    const int page =
        static_cast<int>(std::min<uint64_t>(rng() % 400, rng() % 400));
    e.url = absl::StrCat("https://", site, "/page/", page);
    if (rng() % 20 == 0)
      absl::StrAppend(&e.url, "?utm_source=newsletter&utm_medium=email");
    e.referrer = refs[rng() % refs.size()];
    e.ts = absl::FromUnixMillis(ts);
    e.ip = absl::StrCat(10 + v % 200, ".", (v >> 8) % 256, ".", (v >> 16) % 256,
                        ".", v % 251);
    e.user_agent = uas[v % uas.size()];
    e.screen_width = static_cast<int>(360 + (v * 37) % 1800);
    e.locale = v % 3 ? "en-US" : "de-DE";
    e.timezone = zones[v % zones.size()];
    if (rng() % 10 == 0) {
      e.name = "Signup";
      e.props = {{"plan", rng() % 2 ? "pro" : "free"}};
    }
    out.push_back(std::move(e));
  }
  return out;
}

// The canonical JSON line of an event (for parse benchmarks and the CLI).
inline std::string ToJsonLine(const EventInput& e) {
  // ts in seconds with milliseconds (StrCat of a double keeps only 6
  // significant digits: events would fall on steps 10,000 s apart).
  const int64_t ts_ms = absl::ToUnixMillis(*e.ts);
  std::string s = absl::StrCat(
      R"({"site":")", e.site, R"(","name":")", e.name, R"(","url":")", e.url,
      R"(","referrer":")", e.referrer, R"(","ts":)", ts_ms / 1000, ".",
      absl::Dec(ts_ms % 1000, absl::kZeroPad3), R"(,"ip":")", e.ip,
      R"(","user_agent":")", e.user_agent, R"(","screen_width":)",
      e.screen_width, R"(,"locale":")", e.locale, R"(","timezone":")",
      e.timezone, "\"");
  if (!e.props.empty()) {
    absl::StrAppend(&s, R"(,"props":{)");
    for (size_t i = 0; i < e.props.size(); ++i) {
      absl::StrAppend(&s, i ? "," : "", "\"", e.props[i].first, "\":\"",
                      e.props[i].second, "\"");
    }
    absl::StrAppend(&s, "}");
  }
  absl::StrAppend(&s, "}");
  return s;
}

// Starts a fresh SQLite database at `db`: removes that file and its WAL and
// shared-memory siblings (never anything else: `db` may sit in /tmp or a
// directory holding other data) and creates the parent directory.
inline void FreshSqliteFile(const std::string& db) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(db + suffix, ec);
  }
  const std::filesystem::path parent = std::filesystem::path(db).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
  }
}

}  // namespace analytics::bench

#endif  // ANALYTICS_BENCH_GEN_H_
