// Acquisition: the source, referrer and UTM fields of a visit.
//
// Owns: the table of well-known referrer hosts -> source names, and the rules
// that decide the source. Rules (Plausible's): utm_source, then `ref`, then
// `source` query parameters of the page URL win; otherwise the referrer host
// mapped through the table (google.*, bing.com, duckduckgo.com, yahoo.*,
// baidu.com, yandex.*, news.ycombinator.com -> "Hacker News", reddit.com,
// t.co/twitter.com/x.com -> "Twitter", facebook.com, instagram.com,
// linkedin.com/lnkd.in, youtube.com, github.com, ...), otherwise the referrer
// host itself. A referrer on the site's own domain (or a subdomain of it) is
// a self-referral: no source, no referrer. What a referrer contributes is
// kept per thread for recent (referrer, site domain) pairs (they repeat).
#ifndef ANALYTICS_ENRICH_REFERRER_H_
#define ANALYTICS_ENRICH_REFERRER_H_

#include <string>
#include <string_view>

#include "analytics/event.h"
#include "libanalytics/enrich/url.h"

namespace analytics {

struct Acquisition {
  std::string source;    // "" = Direct / None
  std::string referrer;  // normalized host + path of the referrer, no query
  std::string utm_source, utm_medium, utm_campaign, utm_term, utm_content;
};

// `page_url` is the full page URL (its query holds UTM parameters),
// `referrer` the full referrer URL, `site_domain` the site's domain.
Acquisition ParseAcquisition(std::string_view page_url,
                             std::string_view referrer,
                             std::string_view site_domain);
// The same, for a page URL already split with SplitUrl.
Acquisition ParseAcquisition(const UrlParts& page, std::string_view referrer,
                             std::string_view site_domain);
// The same into visit's source, referrer and utm_* fields (each one
// assigned, over its capacity; the other fields are left alone).
void ParseAcquisition(const UrlParts& page, std::string_view referrer,
                      std::string_view site_domain, VisitAttrs* visit);

// Source name for a normalized referrer host ("" -> ""), e.g.
// "google.de" -> "Google", "t.co" -> "Twitter", "example.org" -> "example.org".
std::string SourceForHost(std::string_view host);

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_REFERRER_H_
