// Bot detection from the User-Agent string.
//
// Owns: the list of bot markers and their reasons. Bots are dropped by the
// engine and counted by reason, never stored.
#ifndef ANALYTICS_ENRICH_BOTS_H_
#define ANALYTICS_ENRICH_BOTS_H_

#include <string_view>

namespace analytics {

// Returns "" for a likely human browser, else a reason:
//   "empty_user_agent", "crawler" (search and SEO crawlers, e.g. Googlebot,
//   bingbot, AhrefsBot), "monitoring" (UptimeRobot, Pingdom, ...),
//   "headless" (HeadlessChrome, PhantomJS, Puppeteer, Playwright markers,
//   Selenium), "http_library" (curl, Wget, python-requests, Go-http-client,
//   okhttp, Java/, axios, node-fetch, ...), "preview" (link unfurlers such as
//   Slackbot, facebookexternalhit, Twitterbot, Discordbot).
// Case-insensitive; fast (called for every event).
std::string_view DetectBot(std::string_view user_agent);

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_BOTS_H_
