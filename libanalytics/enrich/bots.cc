// Bot detection works on "words": maximal runs of ASCII letters and digits,
// lower-cased. Each word is looked up in a table of known markers; a word
// that ends in "bot" or contains "crawl" / "spider" is a generic crawler.
// Matching whole words (rather than raw substrings) keeps phone models such
// as "CUBOT_X30" or "Cubot" from being flagged: "cubot" is an explicit
// exception, and "bot" inside a longer word ("Abbott") does not match since
// only the word's end is tested. A "+http" contact URL, which only automated
// clients put in their User-Agent, is a generic crawler signal too.
#include "libanalytics/enrich/bots.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "libanalytics/enrich/string_util.h"
namespace analytics {
namespace {

using enrich_internal::StartsWithIgnoreCase;

constexpr std::string_view kCrawler = "crawler";
constexpr std::string_view kMonitoring = "monitoring";
constexpr std::string_view kHeadless = "headless";
constexpr std::string_view kHttpLibrary = "http_library";
constexpr std::string_view kPreview = "preview";

struct Marker {
  std::string_view word;  // Lower case, letters and digits only.
  std::string_view reason;
};

// Specific markers; they win over the generic "...bot" / "crawl" rules.
constexpr Marker kMarkers[] = {
    // Link unfurlers / previews.
    {"slackbot", kPreview},
    {"facebookexternalhit", kPreview},
    {"facebookcatalog", kPreview},
    {"twitterbot", kPreview},
    {"discordbot", kPreview},
    {"linkedinbot", kPreview},
    {"telegrambot", kPreview},
    {"whatsapp", kPreview},
    {"skypeuripreview", kPreview},
    {"pinterestbot", kPreview},
    {"redditbot", kPreview},
    {"embedly", kPreview},
    {"iframely", kPreview},
    {"vkshare", kPreview},
    {"mastodon", kPreview},
    {"applenewsbot", kPreview},
    {"bitlybot", kPreview},
    // Monitoring.
    {"uptimerobot", kMonitoring},
    {"pingdom", kMonitoring},
    {"statuscake", kMonitoring},
    {"site24x7", kMonitoring},
    {"newrelicpinger", kMonitoring},
    {"datadog", kMonitoring},
    {"checkly", kMonitoring},
    {"freshping", kMonitoring},
    {"betteruptime", kMonitoring},
    {"uptime", kMonitoring},
    {"hetrixtools", kMonitoring},
    {"nodeping", kMonitoring},
    {"monitis", kMonitoring},
    {"gtmetrix", kMonitoring},
    {"catchpoint", kMonitoring},
    {"dynatrace", kMonitoring},
    {"zabbix", kMonitoring},
    {"nagios", kMonitoring},
    {"pagespeed", kMonitoring},
    // Headless and automated browsers.
    {"headlesschrome", kHeadless},
    {"phantomjs", kHeadless},
    {"puppeteer", kHeadless},
    {"playwright", kHeadless},
    {"selenium", kHeadless},
    {"webdriver", kHeadless},
    {"slimerjs", kHeadless},
    {"cypress", kHeadless},
    {"lighthouse", kHeadless},
    {"htmlunit", kHeadless},
    {"jsdom", kHeadless},
    {"zombie", kHeadless},
    // HTTP client libraries and command-line tools.
    {"curl", kHttpLibrary},
    {"libcurl", kHttpLibrary},
    {"wget", kHttpLibrary},
    {"python", kHttpLibrary},  // python-requests, Python-urllib, python-httpx.
    {"aiohttp", kHttpLibrary},
    {"httpx", kHttpLibrary},
    {"okhttp", kHttpLibrary},
    {"java", kHttpLibrary},
    {"axios", kHttpLibrary},
    {"node", kHttpLibrary},  // node-fetch, undici's "node".
    {"undici", kHttpLibrary},
    {"got", kHttpLibrary},
    {"superagent", kHttpLibrary},
    {"libwww", kHttpLibrary},
    {"lwp", kHttpLibrary},
    {"guzzlehttp", kHttpLibrary},
    {"ruby", kHttpLibrary},
    {"faraday", kHttpLibrary},
    {"httpclient", kHttpLibrary},  // Apache-HttpClient.
    {"winhttp", kHttpLibrary},
    {"dart", kHttpLibrary},
    {"restsharp", kHttpLibrary},
    {"postmanruntime", kHttpLibrary},
    {"insomnia", kHttpLibrary},
    {"httpie", kHttpLibrary},
    {"reqwest", kHttpLibrary},
    {"hackney", kHttpLibrary},
    {"finch", kHttpLibrary},
    {"windowspowershell", kHttpLibrary},
    {"powershell", kHttpLibrary},
    {"scrapy", kHttpLibrary},
    {"colly", kHttpLibrary},
    {"httpunit", kHttpLibrary},
    {"k6", kHttpLibrary},
    {"jmeter", kHttpLibrary},
    // Crawlers whose name does not end in "bot".
    {"baiduspider", kCrawler},
    {"mediapartners", kCrawler},
    {"feedfetcher", kCrawler},
    {"adsbot", kCrawler},
    {"externalagent", kCrawler},  // meta-externalagent.
    {"bytespider", kCrawler},
    {"slurp", kCrawler},     // Yahoo! Slurp.
    {"archiver", kCrawler},  // ia_archiver.
    {"inspectiontool", kCrawler},
    {"chatgpt", kCrawler},  // ChatGPT-User.
    {"perplexity", kCrawler},
    {"seznambot", kCrawler},
    {"sogou", kCrawler},
    {"exabot", kCrawler},
    {"qwantify", kCrawler},
    {"yeti", kCrawler},  // Naver.
    {"feedly", kCrawler},
    {"feedburner", kCrawler},
    {"validator", kCrawler},
    {"w3c", kCrawler},
    {"nutch", kCrawler},
    {"heritrix", kCrawler},
    {"httrack", kCrawler},
    {"screaming", kCrawler},  // Screaming Frog SEO Spider.
    {"scanner", kCrawler},
    {"zgrab", kCrawler},
    {"masscan", kCrawler},
    {"nmap", kCrawler},
    {"censysinspect", kCrawler},
    {"expanse", kCrawler},
};

// Words ending in "bot" that are not bots (phone makers).
constexpr std::string_view kNotBots[] = {"cubot"};

class MarkerTable {
 public:
  MarkerTable() {
    for (const Marker& m : kMarkers) {
      map_.try_emplace(m.word, m.reason);
      const size_t f = Fingerprint(m.word);
      filter_[f / 64] |= uint64_t{1} << (f % 64);
    }
  }
  std::string_view Find(std::string_view word) const {
    const size_t f = Fingerprint(word);
    if ((filter_[f / 64] & (uint64_t{1} << (f % 64))) == 0) return {};
    auto it = map_.find(word);
    return it == map_.end() ? std::string_view() : it->second;
  }

 private:
  static constexpr size_t kFilterBits = 4096;
  // Length, first and last letter: a cheap filter in front of the hash
  // lookup that rejects nearly all words of real browser User-Agents.
  static size_t Fingerprint(std::string_view w) {
    const auto first = static_cast<unsigned char>(w.front());
    const auto last = static_cast<unsigned char>(w.back());
    return (w.size() * 977 + first * 31 + last) % kFilterBits;
  }
  uint64_t filter_[kFilterBits / 64] = {};
  absl::flat_hash_map<std::string_view, std::string_view> map_;
};

const MarkerTable& Table() {
  static const MarkerTable* table = new MarkerTable();
  return *table;
}

bool GenericCrawlerWord(std::string_view w) {
  if (w.ends_with("bot")) {
    for (std::string_view not_bot : kNotBots) {
      if (w == not_bot) return false;
    }
    return true;
  }
  if (w.size() >= 5) {
    return w.find("crawl") != std::string_view::npos ||
           w.find("spider") != std::string_view::npos;
  }
  return false;
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

}  // namespace

std::string_view DetectBot(std::string_view user_agent) {
  size_t i = 0;
  const size_t n = user_agent.size();
  while (i < n &&
         absl::ascii_isspace(static_cast<unsigned char>(user_agent[i])))
    ++i;
  if (i == n) return "empty_user_agent";

  const MarkerTable& table = Table();
  bool generic = false;
  char buf[64];
  while (i < n) {
    const char c = user_agent[i];
    if (!IsWordChar(c)) {
      if (c == '+' && StartsWithIgnoreCase(user_agent.substr(i + 1), "http")) {
        generic = true;
      }
      ++i;
      continue;
    }
    size_t start = i;
    while (i < n && IsWordChar(user_agent[i])) ++i;
    size_t len = i - start;
    if (len > sizeof(buf)) len = sizeof(buf);  // Long words: check a prefix.
    for (size_t k = 0; k < len; ++k) {
      buf[k] = absl::ascii_tolower(
          static_cast<unsigned char>(user_agent[start + k]));
    }
    std::string_view word(buf, len);
    if (std::string_view reason = table.Find(word); !reason.empty()) {
      return reason;
    }
    // "Go-http-client/1.1": "go" alone is too common a word to be a marker.
    if (word == "go" &&
        StartsWithIgnoreCase(user_agent.substr(i), "-http-client")) {
      return kHttpLibrary;
    }
    if (!generic) generic = GenericCrawlerWord(word);
  }
  return generic ? kCrawler : std::string_view();
}

}  // namespace analytics
