// Enricher: enriching into a recycled Event (as the engine does) gives
// exactly the Event a fresh one gives, through the Sessionizer's stamps.
#include "libanalytics/enrich/enricher.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "libanalytics/core/event_testing.h"
#include "libanalytics/enrich/bots.h"
#include "libanalytics/enrich/country.h"
#include "libanalytics/enrich/referrer.h"
#include "libanalytics/enrich/url.h"
#include "libanalytics/enrich/user_agent.h"
#include "libanalytics/enrich/visitor_id.h"
#include "libanalytics/session/sessionizer.h"

namespace analytics {
namespace {

using ::analytics::testing::ExpectSameEvent;
using ::analytics::testing::ExpectSameVisit;

const absl::Time kStart = absl::FromUnixSeconds(1790000000);

// A field added to Event must be set in Garbage below too (and compared in
// core/event_testing.h), hence the size check.
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(Event) == 760,
              "Event changed: set the new field in Garbage");
#endif

// An Event with every field set to what no enrichment gives: long strings
// (on the heap), props, flags set, numbers non-zero.
Event Garbage() {
  Event e;
  const std::string junk(80, 'j');
  e.seq = 99;
  e.site_id = 98;
  e.ts_ms = 97;
  e.name = e.hostname = e.page = e.s_exit_page = junk;
  for (int i = 0; i < 5; ++i) e.props.emplace_back(junk, junk);
  e.visitor_id = 96;
  e.session_id = 95;
  e.session_start_ms = 94;
  VisitAttrs& v = e.visit;
  for (std::string* f :
       {&v.entry_page, &v.source, &v.referrer, &v.utm_source, &v.utm_medium,
        &v.utm_campaign, &v.utm_term, &v.utm_content, &v.country, &v.browser,
        &v.browser_version, &v.os, &v.os_version, &v.device, &v.screen,
        &v.locale}) {
    *f = junk;
  }
  e.first_in_session = e.first_page = e.first_name = true;
  e.s_pageviews = 93;
  e.s_events = 92;
  e.s_bounce = true;
  e.s_duration_ms = 91;
  e.d_bounce = -1;
  e.d_duration_ms = 90;
  e.imported = true;
  e.worker = 89;
  return e;
}

// A random stream of inputs covering what enrichment branches on: long and
// short pages and hosts, percent-escapes, UTM/ref parameters, referrers
// (self, search, long), props (0..4), custom and engagement events, bots,
// days (salts), flags, locales, time zones, country hints, screen widths.
std::vector<EventInput> RandomInputs(int n, uint64_t seed) {
  static const char* const kUas[] = {
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
      "like Gecko) Chrome/120.0.0.0 Safari/537.36",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
      "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
      "Safari/604.1",
      "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
      "Mozilla/5.0 (compatible; Googlebot/2.1; "
      "+http://www.google.com/bot.html)",
      "",
  };
  static const char* const kRefs[] = {
      "",
      "https://www.google.com/",
      "https://example.com/self",
      "https://sub.example.com/x",
      "https://news.ycombinator.com/item?id=1",
      "https://a-rather-long-referring-host.example.org/some/long/path/here",
      "  https://t.co/abc  ",
      "not a url",
  };
  static const char* const kQueries[] = {
      "",
      "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale-2026",
      "?ref=producthunt",
      "?source=a-very-long-source-name-that-is-not-inline&x=1",
      "?utm_term=t&utm_content=c",
      "?q=1",
  };
  static const char* const kNames[] = {
      "pageview", "pageview",   "pageview",
      "Signup",   "engagement", "A rather long custom event name"};
  static const char* const kZones[] = {"Europe/Berlin", "America/Los_Angeles",
                                       "", "Asia/Tokyo"};
  std::mt19937_64 rng(seed);
  std::vector<EventInput> out;
  for (int i = 0; i < n; ++i) {
    EventInput in;
    in.site = "example.com";
    const int visitor = static_cast<int>(rng() % 40);
    in.name = kNames[rng() % std::size(kNames)];
    std::string host = rng() % 8 == 0 ? "WWW.Example.COM" : "example.com";
    if (rng() % 10 == 0) host = "a-long-subdomain-name.example.com";
    std::string path = absl::StrCat("/p", rng() % 30);
    if (rng() % 4 == 0) absl::StrAppend(&path, "/a/longer/path/segment/");
    if (rng() % 10 == 0) absl::StrAppend(&path, "/caf%C3%A9");
    in.url = absl::StrCat("https://", host, path,
                          kQueries[rng() % std::size(kQueries)]);
    in.referrer = kRefs[rng() % std::size(kRefs)];
    // Mostly forward in time, some over midnight (the previous day's salt).
    in.ts = kStart + absl::Seconds(i * 37 + static_cast<int64_t>(rng() % 600));
    if (rng() % 20 == 0) in.ts.reset();
    in.ip = absl::StrCat("10.0.", visitor / 10, ".", visitor);
    in.user_agent = kUas[rng() % 30 == 0 ? 3 : visitor % 3];
    if (rng() % 50 == 0) in.user_agent = kUas[4];
    const int nprops = rng() % 3 == 0 ? static_cast<int>(rng() % 5) : 0;
    for (int p = 0; p < nprops; ++p) {
      in.props.emplace_back(absl::StrCat("k", p),
                            std::string(1 + rng() % 40, 'v'));
    }
    in.screen_width = static_cast<int>(rng() % 2000);
    in.locale = rng() % 2 ? "en-US" : "";
    in.timezone = kZones[visitor % std::size(kZones)];
    in.country_hint = rng() % 5 == 0 ? "DE" : "";
    in.interactive = rng() % 4 != 0;
    in.imported = rng() % 10 == 0;
    out.push_back(std::move(in));
  }
  return out;
}

TEST(EnricherTest, RecycledEventGivesWhatAFreshOneGives) {
  auto geo = *CountryResolver::Create("");
  Enricher enricher(geo.get(), [](int64_t day) -> absl::StatusOr<std::string> {
    return std::string(16, static_cast<char>('a' + day % 26));
  });
  const Site site{.id = 7, .domain = "example.com", .timezone = "UTC"};
  const absl::Time now = kStart + absl::Hours(30);
  // Three pipelines over the same stream, each with its own sessions: a
  // fresh Event per input; one Event reused for the whole stream (it holds
  // the previous event, or a bot's leftovers); one refilled with garbage
  // before each input.
  Sessionizer fresh_sessions, reused_sessions, garbage_sessions;
  Event reused = Garbage();
  int kept = 0, bots = 0, dropped = 0, continued = 0;
  for (const EventInput& in : RandomInputs(20000, 5)) {
    Event want;
    uint64_t want_prev = 0;
    std::string want_bot;
    ASSERT_TRUE(
        enricher.Enrich(in, site, now, &want, &want_prev, &want_bot).ok());

    uint64_t prev = 0;
    std::string bot;
    ASSERT_TRUE(enricher.Enrich(in, site, now, &reused, &prev, &bot).ok());
    EXPECT_EQ(bot, want_bot);
    Event garbage = Garbage();
    uint64_t gprev = 0;
    std::string gbot;
    ASSERT_TRUE(enricher.Enrich(in, site, now, &garbage, &gprev, &gbot).ok());
    if (!want_bot.empty()) {
      ++bots;
      continue;
    }
    EXPECT_EQ(prev, want_prev);
    EXPECT_EQ(gprev, want_prev);
    {
      SCOPED_TRACE("enriched, reused");
      ExpectSameEvent(reused, want);
    }
    {
      SCOPED_TRACE("enriched, garbage");
      ExpectSameEvent(garbage, want);
    }
    const bool k = fresh_sessions.Assign(&want, want_prev, in.interactive);
    ASSERT_EQ(reused_sessions.Assign(&reused, prev, in.interactive), k);
    ASSERT_EQ(garbage_sessions.Assign(&garbage, gprev, in.interactive), k);
    if (!k) {
      ++dropped;
      continue;
    }
    ++kept;
    continued += want.first_in_session ? 0 : 1;
    {
      SCOPED_TRACE("sessionized, reused");
      ExpectSameEvent(reused, want);
    }
    {
      SCOPED_TRACE("sessionized, garbage");
      ExpectSameEvent(garbage, want);
    }
    if (HasFailure()) return;
  }
  // The stream exercises bots, dropped engagements and continued sessions.
  EXPECT_GT(bots, 100);
  EXPECT_GT(dropped, 50);
  EXPECT_GT(continued, 5000);
  EXPECT_GT(kept, 15000);
}

// Enrich as the module functions give it, step by step from a fresh Event
// (the reference for Enrich's fast paths: the fused URL split, the time
// zone table, the inline milliseconds).
void ReferenceEnrich(const EventInput& in, const Site& site, absl::Time now,
                     const CountryResolver& geo, const Enricher::SaltFn& salts,
                     Event* e, uint64_t* prev_visitor_id,
                     std::string* bot_reason) {
  const UserAgentInfo ua = ParseUserAgent(in.user_agent);
  if (std::string_view bot = DetectBot(in.user_agent); !bot.empty()) {
    *bot_reason = std::string(bot);
    return;
  }
  *e = Event();
  e->site_id = site.id;
  e->ts_ms = absl::ToUnixMillis(in.ts.value_or(now));
  e->name = in.name;
  e->imported = in.imported;
  const UrlParts url = SplitUrl(in.url);
  e->hostname = NormalizeHost(url.host);
  e->page = NormalizePath(url.path);
  e->props = in.props;
  VisitAttrs& v = e->visit;
  v.browser = ua.browser;
  v.browser_version = ua.browser_version;
  v.os = ua.os;
  v.os_version = ua.os_version;
  v.device = ua.device;
  const Acquisition acq = ParseAcquisition(in.url, in.referrer, site.domain);
  v.source = acq.source;
  v.referrer = acq.referrer;
  v.utm_source = acq.utm_source;
  v.utm_medium = acq.utm_medium;
  v.utm_campaign = acq.utm_campaign;
  v.utm_term = acq.utm_term;
  v.utm_content = acq.utm_content;
  // The CDN rule alone (no time zone), else the table through FromTimezone.
  v.country = geo.Resolve(in.ip, in.country_hint, "");
  if (v.country.empty()) v.country = geo.FromTimezone(in.timezone);
  v.screen = ScreenClass(in.screen_width);
  v.locale = in.locale;
  const int64_t day = e->ts_ms >= 0 ? e->ts_ms / 86400000
                                    : -((-e->ts_ms + 86400000 - 1) / 86400000);
  e->visitor_id = VisitorId(*salts(day), site.id, in.ip, in.user_agent);
  *prev_visitor_id = VisitorId(*salts(day - 1), site.id, in.ip, in.user_agent);
}

// Inputs beyond RandomInputs' for the fast paths: URLs of every shape
// (upper case, "www.", ports, userinfo, escapes, fragments, whitespace,
// trailing slashes and dots), time zones with case and whitespace changes,
// CDN hints, times before the epoch and between milliseconds.
std::vector<EventInput> FastPathInputs(int n, uint64_t seed) {
  std::vector<EventInput> out = RandomInputs(n, seed);
  std::mt19937_64 rng(seed + 1);
  const std::string_view url_pieces[] = {
      "https://", "http://", "example.com",  "WWW.", "www.", "Ex", ":8080",
      "u@",       "/",       "/page",        "/",    "?",    "#f", "%2F",
      "%C3%A9",   "%FF",     "utm_source=x", "&",    " ",    ".",  "a-b"};
  const std::string_view zones[] = {"Europe/Berlin",
                                    "America/New_York",
                                    "Asia/Tokyo",
                                    "UTC",
                                    "",
                                    " Europe/Paris ",
                                    "europe/berlin",
                                    "Europe/Berli",
                                    "US/Pacific",
                                    "Asia/Calcutta",
                                    "America/Argentina/Buenos_Aires",
                                    "Nowhere/At_All",
                                    "Europe/Berlin\n",
                                    "Australia/Sydney"};
  const std::string_view hints[] = {"", "", "", "de", " FR ", "XX", "T1", "D"};
  for (EventInput& in : out) {
    if (rng() % 2 == 0) {
      in.url.clear();
      const int k = 1 + static_cast<int>(rng() % 6);
      for (int i = 0; i < k; ++i) {
        in.url += url_pieces[rng() % 3 == 0 ? rng() % std::size(url_pieces)
                                            : rng() % 5];
      }
    }
    in.timezone = zones[rng() % std::size(zones)];
    in.country_hint = hints[rng() % std::size(hints)];
    switch (rng() % 8) {
      case 0:
        in.ts = absl::FromUnixMicros(static_cast<int64_t>(rng() % 4000000) -
                                     2000000);
        break;
      case 1:
        in.ts = absl::FromUnixNanos(1790000000123456789LL +
                                    static_cast<int64_t>(rng() % 100000));
        break;
      case 2:
        in.ts = absl::FromUnixSeconds(-86400 * 400) -
                absl::Nanoseconds(static_cast<int64_t>(rng() % 3000000));
        break;
      default:
        break;
    }
  }
  return out;
}

// Enrich gives exactly what the reference gives, into a recycled Event.
TEST(EnricherTest, MatchesReferenceComposition) {
  auto geo = *CountryResolver::Create("");
  const Enricher::SaltFn salts =
      [](int64_t day) -> absl::StatusOr<std::string> {
    return std::string(16, static_cast<char>('a' + (day % 26 + 26) % 26));
  };
  Enricher enricher(geo.get(), salts);
  const Site site{.id = 7, .domain = "example.com", .timezone = "UTC"};
  const absl::Time now = kStart + absl::Hours(30);
  Event got = Garbage();
  int fast_urls = 0, countries = 0;
  for (const EventInput& in : FastPathInputs(40000, 9)) {
    SCOPED_TRACE(absl::StrCat(in.url, " | ", in.timezone));
    Event want;
    uint64_t want_prev = 0, prev = 0;
    std::string want_bot, bot;
    ReferenceEnrich(in, site, now, *geo, salts, &want, &want_prev, &want_bot);
    ASSERT_TRUE(enricher.Enrich(in, site, now, &got, &prev, &bot).ok());
    ASSERT_EQ(bot, want_bot);
    if (!bot.empty()) continue;
    EXPECT_EQ(prev, want_prev);
    ExpectSameEvent(got, want);
    if (HasFailure()) return;
    fast_urls += in.url.starts_with("https://example.com/") ? 1 : 0;
    countries += want.visit.country.empty() ? 0 : 1;
  }
  EXPECT_GT(fast_urls, 5000);
  EXPECT_GT(countries, 10000);
}

// The inline milliseconds of Enrich agree with absl::ToUnixMillis at the
// edges: before the epoch, between milliseconds, far away, infinite.
TEST(EnricherTest, TimestampsMatchAbsl) {
  auto geo = *CountryResolver::Create("");
  Enricher enricher(geo.get(), [](int64_t) -> absl::StatusOr<std::string> {
    return std::string(16, 's');
  });
  const Site site{.id = 1, .domain = "example.com", .timezone = "UTC"};
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::UnixEpoch() - absl::Nanoseconds(1),
      absl::UnixEpoch() + absl::Nanoseconds(999999),
      absl::UnixEpoch() - absl::Milliseconds(1),
      absl::FromUnixSeconds(int64_t{1} << 52),
      absl::FromUnixSeconds(-(int64_t{1} << 52)),
      absl::FromUnixSeconds((int64_t{1} << 52) - 1) + absl::Milliseconds(1.5),
      absl::FromUnixSeconds(std::numeric_limits<int64_t>::max() / 1000),
      absl::InfiniteFuture(),
      absl::InfinitePast(),
  };
  std::mt19937_64 rng(4);
  for (int i = 0; i < 2000; ++i) {
    times.push_back(absl::FromUnixNanos(static_cast<int64_t>(rng())));
  }
  EventInput in;
  in.url = "https://example.com/";
  in.user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Firefox/121.0";
  Event e;
  for (absl::Time t : times) {
    in.ts = t;
    uint64_t prev = 0;
    std::string bot;
    ASSERT_TRUE(enricher.Enrich(in, site, kStart, &e, &prev, &bot).ok());
    ASSERT_EQ(e.ts_ms, absl::ToUnixMillis(t)) << t;
  }
}

}  // namespace
}  // namespace analytics
