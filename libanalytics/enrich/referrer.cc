#include "libanalytics/enrich/referrer.h"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "libanalytics/enrich/string_util.h"
#include "libanalytics/enrich/url.h"
namespace analytics {
namespace {

using enrich_internal::StripWhitespace;

struct HostSource {
  std::string_view host;
  std::string_view source;
};

// Exact hosts (after NormalizeHost). A host also matches when it is a
// subdomain of an entry ("m.facebook.com" -> "facebook.com"). Android app
// referrers ("android-app://com.google.android.gm") use the package name.
constexpr HostSource kHosts[] = {
    {"news.ycombinator.com", "Hacker News"},
    {"hn.algolia.com", "Hacker News"},
    {"t.co", "Twitter"},
    {"twitter.com", "Twitter"},
    {"x.com", "Twitter"},
    {"com.twitter.android", "Twitter"},
    {"facebook.com", "Facebook"},
    {"fb.com", "Facebook"},
    {"fb.me", "Facebook"},
    {"com.facebook.katana", "Facebook"},
    {"instagram.com", "Instagram"},
    {"com.instagram.android", "Instagram"},
    {"threads.net", "Threads"},
    {"linkedin.com", "LinkedIn"},
    {"lnkd.in", "LinkedIn"},
    {"com.linkedin.android", "LinkedIn"},
    {"reddit.com", "Reddit"},
    {"redd.it", "Reddit"},
    {"com.reddit.frontpage", "Reddit"},
    {"youtube.com", "YouTube"},
    {"youtu.be", "YouTube"},
    {"com.google.android.youtube", "YouTube"},
    {"github.com", "GitHub"},
    {"gitlab.com", "GitLab"},
    {"bing.com", "Bing"},
    {"duckduckgo.com", "DuckDuckGo"},
    {"baidu.com", "Baidu"},
    {"ya.ru", "Yandex"},
    {"search.brave.com", "Brave"},
    {"ecosia.org", "Ecosia"},
    {"qwant.com", "Qwant"},
    {"startpage.com", "Startpage"},
    {"kagi.com", "Kagi"},
    {"search.naver.com", "Naver"},
    {"naver.com", "Naver"},
    {"seznam.cz", "Seznam"},
    {"sogou.com", "Sogou"},
    {"so.com", "360 Search"},
    {"ask.com", "Ask"},
    {"aol.com", "AOL"},
    {"petalsearch.com", "Petal Search"},
    {"mail.google.com", "Gmail"},
    {"com.google.android.gm", "Gmail"},
    {"news.google.com", "Google News"},
    {"com.google.android.googlequicksearchbox", "Google"},
    {"com.google.android.gms", "Google"},
    {"outlook.live.com", "Outlook.com"},
    {"outlook.office.com", "Outlook.com"},
    {"outlook.office365.com", "Outlook.com"},
    {"mail.yahoo.com", "Yahoo! Mail"},
    {"pinterest.com", "Pinterest"},
    {"pin.it", "Pinterest"},
    {"tiktok.com", "TikTok"},
    {"vk.com", "VKontakte"},
    {"ok.ru", "Odnoklassniki"},
    {"t.me", "Telegram"},
    {"web.telegram.org", "Telegram"},
    {"org.telegram.messenger", "Telegram"},
    {"wa.me", "WhatsApp"},
    {"whatsapp.com", "WhatsApp"},
    {"discord.com", "Discord"},
    {"discordapp.com", "Discord"},
    {"slack.com", "Slack"},
    {"com.slack", "Slack"},
    {"medium.com", "Medium"},
    {"substack.com", "Substack"},
    {"producthunt.com", "Product Hunt"},
    {"stackoverflow.com", "Stack Overflow"},
    {"wikipedia.org", "Wikipedia"},
    {"quora.com", "Quora"},
    {"twitch.tv", "Twitch"},
    {"flipboard.com", "Flipboard"},
    {"feedly.com", "Feedly"},
    {"lobste.rs", "Lobsters"},
    {"dev.to", "DEV"},
    {"bsky.app", "Bluesky"},
    {"mastodon.social", "Mastodon"},
    {"chatgpt.com", "ChatGPT"},
    {"chat.openai.com", "ChatGPT"},
    {"perplexity.ai", "Perplexity"},
    {"claude.ai", "Claude"},
    {"gemini.google.com", "Gemini"},
    {"copilot.microsoft.com", "Copilot"},
};

// Brands matched on any top-level domain: the label just left of the public
// suffix ("google" in "google.de", "www.google.co.uk", "google.com.br").
constexpr HostSource kBrands[] = {
    {"google", "Google"},       {"yahoo", "Yahoo!"},
    {"yandex", "Yandex"},       {"bing", "Bing"},
    {"baidu", "Baidu"},         {"duckduckgo", "DuckDuckGo"},
    {"ecosia", "Ecosia"},       {"qwant", "Qwant"},
    {"startpage", "Startpage"}, {"pinterest", "Pinterest"},
    {"amazon", "Amazon"},       {"ebay", "eBay"},
    {"facebook", "Facebook"},   {"instagram", "Instagram"},
    {"linkedin", "LinkedIn"},   {"reddit", "Reddit"},
    {"youtube", "YouTube"},     {"twitter", "Twitter"},
    {"naver", "Naver"},         {"seznam", "Seznam"},
};

// Second-level labels of two-label public suffixes such as "co.uk",
// "com.br", "ne.jp" (only considered when the top-level label has two
// letters, i.e. is a country code).
constexpr std::string_view kSecondLevel[] = {
    "co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "gob", "go"};

using Table = absl::flat_hash_map<std::string_view, std::string_view>;

const Table& Hosts() {
  static const Table* table = [] {
    auto* t = new Table();
    for (const HostSource& h : kHosts) t->try_emplace(h.host, h.source);
    return t;
  }();
  return *table;
}

const Table& Brands() {
  static const Table* table = [] {
    auto* t = new Table();
    for (const HostSource& h : kBrands) t->try_emplace(h.host, h.source);
    return t;
  }();
  return *table;
}

// The label left of the public suffix, approximated as the last label, or the
// last two for "<co|com|...>.<cc>".
std::string_view BrandLabel(std::string_view host) {
  size_t last_dot = host.rfind('.');
  if (last_dot == std::string_view::npos || last_dot == 0) return {};
  std::string_view tld = host.substr(last_dot + 1);
  std::string_view rest = host.substr(0, last_dot);
  size_t dot = rest.rfind('.');
  std::string_view label =
      dot == std::string_view::npos ? rest : rest.substr(dot + 1);
  if (tld.size() == 2 && dot != std::string_view::npos) {
    for (std::string_view sl : kSecondLevel) {
      if (label == sl) {
        rest = rest.substr(0, dot);
        size_t d2 = rest.rfind('.');
        return d2 == std::string_view::npos ? rest : rest.substr(d2 + 1);
      }
    }
  }
  return label;
}

std::string ParamSource(std::string_view query) {
  for (std::string_view key : {"utm_source", "ref", "source"}) {
    std::optional<std::string> v = QueryParam(query, key);
    if (v.has_value()) {
      std::string_view trimmed = StripWhitespace(*v);
      if (!trimmed.empty()) return std::string(trimmed);
    }
  }
  return "";
}

bool IsSelfReferral(std::string_view host, std::string_view site) {
  if (site.empty()) return false;
  if (host == site) return true;
  return host.size() > site.size() && host.ends_with(site) &&
         host[host.size() - site.size() - 1] == '.';
}

// What a (stripped, non-empty) referrer contributes to an Acquisition.
struct ReferrerPart {
  bool counts = false;  // false: no host, or a self-referral
  std::string source;   // SourceForHost(host)
  std::string referrer;
};

void ComputeReferrerPart(std::string_view referrer,
                         std::string_view site_domain, ReferrerPart* part) {
  part->counts = false;
  part->source.clear();
  part->referrer.clear();
  const UrlParts ref = SplitUrl(referrer);
  std::string host = NormalizeHost(ref.host);
  if (host.empty()) return;

  // The site domain may arrive as a URL or with "www."; compare normalized.
  std::string site =
      NormalizeHost(site_domain.find("://") != std::string_view::npos
                        ? SplitUrl(site_domain).host
                        : site_domain);
  if (IsSelfReferral(host, site)) return;

  part->counts = true;
  part->source = SourceForHost(host);
  part->referrer = std::move(host);
  part->referrer.append(NormalizePath(ref.path));
}

// Referrers repeat (search engines, social sites): each thread keeps the
// parts of recent (referrer, site domain) pairs, direct-mapped.
struct ReferrerEntry {
  std::string referrer;
  std::string site_domain;
  bool used = false;
  ReferrerPart part;
};
constexpr size_t kReferrerEntries = 256;
constexpr size_t kMaxCachedReferrer = 512;

const ReferrerPart& CachedReferrerPart(std::string_view referrer,
                                       std::string_view site_domain) {
  thread_local std::array<ReferrerEntry, kReferrerEntries> entries;
  thread_local ReferrerPart uncached;
  if (referrer.size() > kMaxCachedReferrer ||
      site_domain.size() > kMaxCachedReferrer) {
    ComputeReferrerPart(referrer, site_domain, &uncached);
    return uncached;
  }
  ReferrerEntry& e =
      entries[enrich_internal::FastHash(
                  referrer, enrich_internal::FastHash(site_domain)) %
              kReferrerEntries];
  if (!e.used || e.referrer != referrer || e.site_domain != site_domain) {
    ComputeReferrerPart(referrer, site_domain, &e.part);
    e.referrer.assign(referrer);
    e.site_domain.assign(site_domain);
    e.used = true;
  }
  return e.part;
}

}  // namespace

std::string SourceForHost(std::string_view host) {
  if (host.empty()) return "";
  const Table& hosts = Hosts();
  // The host itself, then each parent domain with at least two labels.
  std::string_view h = host;
  while (true) {
    if (auto it = hosts.find(h); it != hosts.end()) {
      return std::string(it->second);
    }
    size_t dot = h.find('.');
    if (dot == std::string_view::npos) break;
    h = h.substr(dot + 1);
    if (h.find('.') == std::string_view::npos) break;
  }
  std::string_view brand = BrandLabel(host);
  if (!brand.empty()) {
    const Table& brands = Brands();
    if (auto it = brands.find(brand); it != brands.end()) {
      return std::string(it->second);
    }
  }
  return std::string(host);
}

Acquisition ParseAcquisition(std::string_view page_url,
                             std::string_view referrer,
                             std::string_view site_domain) {
  return ParseAcquisition(SplitUrl(page_url), referrer, site_domain);
}

namespace {
// ParseAcquisition into an Acquisition or a VisitAttrs (the same member
// names): every acquisition field of *acq is assigned, over its capacity.
template <typename Out>
void FillAcquisition(const UrlParts& page, std::string_view referrer,
                     std::string_view site_domain, Out* acq) {
  acq->source.clear();
  acq->referrer.clear();
  // Most page URLs carry no campaign parameters: skip the lookups then.
  if (page.query.find("utm_") != std::string_view::npos) {
    // QueryParam of each key, whitespace-stripped, in one pass over the query.
    static constexpr std::string_view kUtmKeys[] = {
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"};
    std::string* const values[] = {&acq->utm_source, &acq->utm_medium,
                                   &acq->utm_campaign, &acq->utm_term,
                                   &acq->utm_content};
    bool found[std::size(kUtmKeys)];
    QueryParams(page.query, kUtmKeys, values, found);
    for (size_t i = 0; i < std::size(kUtmKeys); ++i) {
      std::string& v = *values[i];
      if (!found[i]) {
        v.clear();
        continue;
      }
      const std::string_view trimmed = StripWhitespace(v);
      if (trimmed.size() != v.size()) {
        v.erase(0, static_cast<size_t>(trimmed.data() - v.data()));
        v.resize(trimmed.size());
      }
    }
    acq->source = acq->utm_source;
  } else {
    acq->utm_source.clear();
    acq->utm_medium.clear();
    acq->utm_campaign.clear();
    acq->utm_term.clear();
    acq->utm_content.clear();
  }
  if (acq->source.empty() &&
      (page.query.find("ref") != std::string_view::npos ||
       page.query.find("source") != std::string_view::npos)) {
    acq->source = ParamSource(page.query);
  }

  referrer = StripWhitespace(referrer);
  if (referrer.empty()) return;
  const ReferrerPart& part = CachedReferrerPart(referrer, site_domain);
  if (!part.counts) return;
  if (acq->source.empty()) acq->source = part.source;
  acq->referrer = part.referrer;
}
}  // namespace

Acquisition ParseAcquisition(const UrlParts& page, std::string_view referrer,
                             std::string_view site_domain) {
  Acquisition acq;
  FillAcquisition(page, referrer, site_domain, &acq);
  return acq;
}

void ParseAcquisition(const UrlParts& page, std::string_view referrer,
                      std::string_view site_domain, VisitAttrs* visit) {
  FillAcquisition(page, referrer, site_domain, visit);
}

}  // namespace analytics
