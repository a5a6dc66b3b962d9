#include "libanalytics/enrich/user_agent.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "libanalytics/enrich/bots.h"
#include "libanalytics/enrich/string_util.h"
namespace analytics {
namespace {

using enrich_internal::StripWhitespace;

constexpr size_t kNpos = std::string_view::npos;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads "major[<sep>minor]" at the start of `s`, where <sep> is '.' or '_',
// and returns "major.minor" (minor defaults to "0" when `pad_minor`).
std::string MajorMinor(std::string_view s, bool pad_minor) {
  size_t i = 0;
  while (i < s.size() && IsDigit(s[i])) ++i;
  if (i == 0) return "";
  std::string out(s.substr(0, i));
  if (i + 1 < s.size() && (s[i] == '.' || s[i] == '_') && IsDigit(s[i + 1])) {
    size_t j = i + 1;
    while (j < s.size() && IsDigit(s[j])) ++j;
    out.push_back('.');
    out.append(s.substr(i + 1, j - i - 1));
  } else if (pad_minor) {
    out.append(".0");
  }
  return out;
}

// Version following `token` (which includes its '/' or ' ' separator).
std::string VersionAfter(std::string_view ua, std::string_view token) {
  size_t pos = ua.find(token);
  if (pos == kNpos) return "";
  return MajorMinor(ua.substr(pos + token.size()), /*pad_minor=*/true);
}

bool Has(std::string_view ua, std::string_view token) {
  return ua.find(token) != kNpos;
}

struct BrowserRule {
  std::string_view token;  // Searched case-sensitively.
  std::string_view name;
};

// Order matters: Chromium-based browsers also send "Chrome/" and "Safari/",
// iOS browsers send "Safari/" (and sometimes "Version/").
constexpr BrowserRule kBrowserRules[] = {
    {"EdgiOS/", "Edge"},
    {"EdgA/", "Edge"},
    {"Edg/", "Edge"},
    {"Edge/", "Edge"},
    {"OPiOS/", "Opera"},
    {"OPR/", "Opera"},
    {"OPT/", "Opera"},
    {"Opera Mini/", "Opera Mini"},
    {"SamsungBrowser/", "Samsung Internet"},
    {"YaBrowser/", "Yandex Browser"},
    {"Vivaldi/", "Vivaldi"},
    {"UCBrowser/", "UC Browser"},
    {"UBrowser/", "UC Browser"},
    {"DuckDuckGo/", "DuckDuckGo"},
    {"Whale/", "Whale"},
    {"MiuiBrowser/", "MIUI Browser"},
    {"HuaweiBrowser/", "Huawei Browser"},
    {"CriOS/", "Chrome"},
    {"FxiOS/", "Firefox"},
    {"Focus/", "Firefox"},
    {"Firefox/", "Firefox"},
};

struct OsResult {
  std::string_view os;
  std::string version;
  std::string_view device;  // Device implied by the OS alone.
};

std::string WindowsVersion(std::string_view nt) {
  if (nt.starts_with("10.0")) return "10";
  if (nt.starts_with("6.3")) return "8.1";
  if (nt.starts_with("6.2")) return "8";
  if (nt.starts_with("6.1")) return "7";
  if (nt.starts_with("6.0")) return "Vista";
  if (nt.starts_with("5.1") || nt.starts_with("5.2")) return "XP";
  if (nt.starts_with("5.0")) return "2000";
  return MajorMinor(nt, /*pad_minor=*/false);
}

OsResult ParseOs(std::string_view ua) {
  if (Has(ua, "Windows Phone")) {
    return {"Windows Phone", VersionAfter(ua, "Windows Phone "), "Mobile"};
  }
  const bool ipad = Has(ua, "iPad");
  if (ipad || Has(ua, "iPhone") || Has(ua, "iPod")) {
    std::string version;
    if (size_t p = ua.find("iPhone OS "); p != kNpos) {
      version = MajorMinor(ua.substr(p + 10), /*pad_minor=*/false);
    } else if (size_t p = ua.find("CPU OS "); p != kNpos) {
      version = MajorMinor(ua.substr(p + 7), /*pad_minor=*/false);
    }
    return {"iOS", std::move(version), ipad ? "Tablet" : "Mobile"};
  }
  if (size_t p = ua.find("Android"); p != kNpos) {
    std::string version;
    std::string_view rest = ua.substr(p + 7);
    if (!rest.empty() && (rest[0] == ' ' || rest[0] == '/')) {
      version = MajorMinor(rest.substr(1), /*pad_minor=*/false);
    }
    return {"Android", std::move(version), ""};
  }
  if (size_t p = ua.find("Windows NT "); p != kNpos) {
    return {"Windows", WindowsVersion(ua.substr(p + 11)), "Desktop"};
  }
  if (Has(ua, "Windows")) return {"Windows", "", "Desktop"};
  if (Has(ua, "CrOS")) return {"Chrome OS", "", "Desktop"};
  if (size_t p = ua.find("Mac OS X "); p != kNpos) {
    return {"Mac", MajorMinor(ua.substr(p + 9), /*pad_minor=*/false),
            "Desktop"};
  }
  if (Has(ua, "Macintosh")) return {"Mac", "", "Desktop"};
  if (Has(ua, "KAIOS") || Has(ua, "KaiOS")) return {"KaiOS", "", "Mobile"};
  if (Has(ua, "FreeBSD")) return {"FreeBSD", "", "Desktop"};
  if (Has(ua, "OpenBSD")) return {"OpenBSD", "", "Desktop"};
  if (Has(ua, "Linux") || Has(ua, "X11")) return {"Linux", "", "Desktop"};
  return {"", "", ""};
}

void ParseBrowser(std::string_view ua, const OsResult& os,
                  UserAgentInfo* info) {
  for (const BrowserRule& rule : kBrowserRules) {
    if (size_t p = ua.find(rule.token); p != kNpos) {
      info->browser = std::string(rule.name);
      info->browser_version =
          MajorMinor(ua.substr(p + rule.token.size()), /*pad_minor=*/true);
      return;
    }
  }
  if (Has(ua, "Opera")) {  // Presto-era Opera: "Opera/9.80 ... Version/12.16".
    info->browser = "Opera";
    info->browser_version = VersionAfter(ua, "Version/");
    if (info->browser_version.empty()) {
      info->browser_version = VersionAfter(ua, "Opera/");
    }
    return;
  }
  if (size_t p = ua.find("MSIE "); p != kNpos) {
    info->browser = "Internet Explorer";
    info->browser_version = MajorMinor(ua.substr(p + 5), /*pad_minor=*/true);
    return;
  }
  if (Has(ua, "Trident/")) {
    info->browser = "Internet Explorer";
    info->browser_version = VersionAfter(ua, "rv:");
    if (info->browser_version.empty()) info->browser_version = "11.0";
    return;
  }
  if (size_t p = ua.find("Chromium/"); p != kNpos) {
    info->browser = "Chromium";
    info->browser_version = MajorMinor(ua.substr(p + 9), /*pad_minor=*/true);
    return;
  }
  if (size_t p = ua.find("Chrome/"); p != kNpos) {
    // Android WebView marks itself with "; wv)" (Lollipop+) or sends
    // "Version/4.0 Chrome/..." (KitKat).
    const bool webview =
        os.os == "Android" && (Has(ua, "; wv)") || Has(ua, "Version/4.0"));
    info->browser = webview ? "Android WebView" : "Chrome";
    info->browser_version = MajorMinor(ua.substr(p + 7), /*pad_minor=*/true);
    return;
  }
  if (Has(ua, "Safari/") || (os.os == "iOS" && Has(ua, "AppleWebKit/"))) {
    if (os.os == "Android") {
      info->browser = "Android Browser";
    } else {
      info->browser = "Safari";
    }
    info->browser_version = VersionAfter(ua, "Version/");
    return;
  }
}

}  // namespace

UserAgentInfo ParseUserAgent(std::string_view ua) {
  UserAgentInfo info;
  ua = StripWhitespace(ua);
  if (ua.empty()) return info;

  // Chromium 110+ reports "Windows NT 10.0" and "Mac OS X 10_15_7" forever
  // (UA reduction); Windows 11 and newer macOS cannot be told apart here.
  OsResult os = ParseOs(ua);
  ParseBrowser(ua, os, &info);

  std::string_view device = os.device;
  if (os.os == "Android") {
    device = Has(ua, "Mobile") ? "Mobile" : "Tablet";
  }
  // Desktop Windows IE sends "Tablet PC 2.0" on touch screens: not a tablet.
  if ((device != "Desktop" && Has(ua, "Tablet")) || Has(ua, "Kindle") ||
      Has(ua, "Silk/")) {
    device = "Tablet";
  } else if (device.empty() &&
             (Has(ua, "Mobi") || info.browser == "Opera Mini")) {
    device = "Mobile";
  }
  info.os = std::string(os.os);
  info.os_version = std::move(os.version);
  info.device = std::string(device);
  return info;
}

namespace {

// Per-thread direct-mapped entries in front of every UserAgentCache.
struct ThreadUaEntry {
  std::string ua;
  std::shared_ptr<const UserAgentInfo> info;  // null: empty slot
};
constexpr size_t kThreadUaEntries = 64;
constexpr size_t kMaxThreadUaLength = 512;
thread_local std::array<ThreadUaEntry, kThreadUaEntries> thread_ua;
thread_local std::shared_ptr<const UserAgentInfo> thread_ua_long;

// A cheap slot choice (a collision only costs a miss): the length and a
// few words spread over the string.
size_t ThreadUaSlot(std::string_view ua) {
  uint64_t h = ua.size() * 0x9E3779B97F4A7C15ULL;
  if (ua.size() >= 8) {
    uint64_t a, b, c;
    std::memcpy(&a, ua.data(), 8);
    std::memcpy(&b, ua.data() + ua.size() / 2 - 4, 8);
    std::memcpy(&c, ua.data() + ua.size() - 8, 8);
    h ^= (a + (b * 0xC2B2AE3D27D4EB4FULL)) ^ (c * 0x165667B19E3779F9ULL);
  } else {
    for (char ch : ua) h = (h ^ static_cast<unsigned char>(ch)) * 31;
  }
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 32;
  return h % kThreadUaEntries;
}

}  // namespace

const UserAgentInfo& UserAgentCache::Lookup(std::string_view ua) {
  ThreadUaEntry& e = thread_ua[ThreadUaSlot(ua)];
  if (e.info != nullptr && e.ua == ua) return *e.info;
  std::shared_ptr<const UserAgentInfo> info = Get(ua);
  if (ua.size() > kMaxThreadUaLength) {  // not kept in the table
    thread_ua_long = std::move(info);
    return *thread_ua_long;
  }
  e.ua.assign(ua);
  e.info = std::move(info);
  return *e.info;
}

std::shared_ptr<const UserAgentInfo> UserAgentCache::Get(std::string_view ua) {
  // Absurdly long strings are parsed but not cached (they would only evict
  // useful entries and are usually junk).
  constexpr size_t kMaxCachedLength = 2048;
  auto parse = [](std::string_view ua) {
    UserAgentInfo info = ParseUserAgent(ua);
    info.bot_reason = std::string(DetectBot(ua));
    return std::make_shared<const UserAgentInfo>(std::move(info));
  };
  if (ua.size() > kMaxCachedLength) return parse(ua);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = map_.find(enrich_internal::ToAbsl(ua));
    if (it != map_.end()) return it->second;
  }
  auto info = parse(ua);
  absl::MutexLock lock(&mu_);
  auto it = map_.find(enrich_internal::ToAbsl(ua));
  if (it != map_.end()) return it->second;
  if (map_.size() >= capacity_) map_.clear();
  map_.emplace(std::string(ua), info);
  return info;
}

}  // namespace analytics
