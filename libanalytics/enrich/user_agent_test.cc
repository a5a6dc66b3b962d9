#include "libanalytics/enrich/user_agent.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace analytics {
namespace {

struct Case {
  const char* ua;
  UserAgentInfo want;
};

const Case kCases[] = {
    // Desktop Chrome.
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/120.0.0.0 Safari/537.36",
     {"Chrome", "120.0", "Windows", "10", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/109.0.5414.120 Safari/537.36",
     {"Chrome", "109.0", "Windows", "7", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/109.0.0.0 Safari/537.36",
     {"Chrome", "109.0", "Windows", "8.1", "Desktop"}},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
     {"Chrome", "121.0", "Mac", "10.15", "Desktop"}},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36",
     {"Chrome", "120.0", "Linux", "", "Desktop"}},
    {"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/120.0.0.0 Safari/537.36",
     {"Chrome", "120.0", "Chrome OS", "", "Desktop"}},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Ubuntu Chromium/83.0.4103.61 Chrome/83.0.4103.61 Safari/537.36",
     {"Chromium", "83.0", "Linux", "", "Desktop"}},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chromium/120.0.6099.71 Safari/537.36",
     {"Chromium", "120.0", "Linux", "", "Desktop"}},
    // Safari.
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
     {"Safari", "17.1", "Mac", "10.15", "Desktop"}},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
     "Safari/604.1",
     {"Safari", "17.1", "iOS", "17.1", "Mobile"}},
    {"Mozilla/5.0 (iPad; CPU OS 16_6_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
     {"Safari", "16.6", "iOS", "16.6", "Tablet"}},
    {"Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5_7 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 "
     "Safari/604.1",
     {"Safari", "12.1", "iOS", "12.5", "Mobile"}},
    // iOS third-party browsers.
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
     "Mobile/15E148 Safari/604.1",
     {"Chrome", "120.0", "iOS", "17.1", "Mobile"}},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/120.0 Mobile/15E148 "
     "Safari/605.1.15",
     {"Firefox", "120.0", "iOS", "17.1", "Mobile"}},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
     "EdgiOS/120.2210.150 Mobile/15E148 Safari/605.1.15",
     {"Edge", "120.2210", "iOS", "17.2", "Mobile"}},
    // Android.
    {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
     {"Chrome", "120.0", "Android", "14", "Mobile"}},
    {"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/119.0.0.0 Safari/537.36",
     {"Chrome", "119.0", "Android", "13", "Tablet"}},
    {"Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 "
     "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile "
     "Safari/537.36",
     {"Samsung Internet", "23.0", "Android", "13", "Mobile"}},
    {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0.2210.115",
     {"Edge", "120.0", "Android", "10", "Mobile"}},
    {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 OPR/79.2.4195.76754",
     {"Opera", "79.2", "Android", "10", "Mobile"}},
    {"Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
     {"Firefox", "121.0", "Android", "14", "Mobile"}},
    {"Mozilla/5.0 (Android 13; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
     {"Firefox", "121.0", "Android", "13", "Tablet"}},
    {"Mozilla/5.0 (Linux; Android 12; SM-G991B Build/SP1A.210812.016; wv) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
     "Chrome/120.0.6099.144 Mobile Safari/537.36",
     {"Android WebView", "120.0", "Android", "12", "Mobile"}},
    {"Mozilla/5.0 (Linux; U; Android 8.1.0; en-US; Redmi 5A Build/OPM1) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.108 "
     "UCBrowser/13.4.0.1306 Mobile Safari/537.36",
     {"UC Browser", "13.4", "Android", "8.1", "Mobile"}},
    {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/118.0.0.0 YaBrowser/23.11.3.88.00 SA/3 Mobile "
     "Safari/537.36",
     {"Yandex Browser", "23.11", "Android", "10", "Mobile"}},
    {"Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) "
     "AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile "
     "Safari/534.30",
     {"Android Browser", "4.0", "Android", "4.0", "Mobile"}},
    // Firefox desktop.
    {"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 "
     "Firefox/121.0",
     {"Firefox", "121.0", "Linux", "", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 "
     "Firefox/121.0",
     {"Firefox", "121.0", "Windows", "10", "Desktop"}},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:120.0) Gecko/20100101 "
     "Firefox/120.0",
     {"Firefox", "120.0", "Mac", "10.15", "Desktop"}},
    {"Mozilla/5.0 (X11; FreeBSD amd64; rv:109.0) Gecko/20100101 "
     "Firefox/115.0",
     {"Firefox", "115.0", "FreeBSD", "", "Desktop"}},
    // Edge, Opera, Yandex, Vivaldi, IE.
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
     {"Edge", "120.0", "Windows", "10", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
     {"Edge", "18.19045", "Windows", "10", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
     {"Opera", "106.0", "Windows", "10", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) Chrome/118.0.0.0 YaBrowser/23.11.0.0 Safari/537.36",
     {"Yandex Browser", "23.11", "Windows", "10", "Desktop"}},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5.3206.48",
     {"Vivaldi", "6.5", "Linux", "", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
     {"Internet Explorer", "11.0", "Windows", "10", "Desktop"}},
    {"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; Tablet PC 2.0; "
     "rv:11.0) like Gecko",
     {"Internet Explorer", "11.0", "Windows", "7", "Desktop"}},
    {"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)",
     {"Internet Explorer", "8.0", "Windows", "XP", "Desktop"}},
    {"Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
     {"Opera", "12.18", "Windows", "7", "Desktop"}},
};

TEST(ParseUserAgentTest, RealWorldStrings) {
  for (const Case& c : kCases) {
    const UserAgentInfo got = ParseUserAgent(c.ua);
    EXPECT_EQ(got.browser, c.want.browser) << c.ua;
    EXPECT_EQ(got.browser_version, c.want.browser_version) << c.ua;
    EXPECT_EQ(got.os, c.want.os) << c.ua;
    EXPECT_EQ(got.os_version, c.want.os_version) << c.ua;
    EXPECT_EQ(got.device, c.want.device) << c.ua;
  }
}

TEST(ParseUserAgentTest, EmptyAndUnknown) {
  EXPECT_EQ(ParseUserAgent(""), UserAgentInfo{});
  EXPECT_EQ(ParseUserAgent("   "), UserAgentInfo{});
  const UserAgentInfo junk = ParseUserAgent("curl/8.4.0");
  EXPECT_EQ(junk.browser, "");
  EXPECT_EQ(junk.os, "");
  EXPECT_EQ(junk.device, "");
}

TEST(ParseUserAgentTest, TruncatedVersions) {
  EXPECT_EQ(ParseUserAgent("Mozilla/5.0 (Windows NT 10.0) Chrome/").browser,
            "Chrome");
  EXPECT_EQ(
      ParseUserAgent("Mozilla/5.0 (Windows NT 10.0) Chrome/99").browser_version,
      "99.0");
  EXPECT_EQ(ParseUserAgent("Mozilla/5.0 (Linux; Android").os, "Android");
}

TEST(UserAgentCacheTest, ReturnsSameEntry) {
  UserAgentCache cache(/*capacity=*/4);
  auto a = cache.Get(kCases[0].ua);
  auto b = cache.Get(kCases[0].ua);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(*a, ParseUserAgent(kCases[0].ua));
}

TEST(UserAgentCacheTest, BoundedAndPointersStayValid) {
  UserAgentCache cache(/*capacity=*/3);
  std::vector<std::shared_ptr<const UserAgentInfo>> held;
  for (const Case& c : kCases) held.push_back(cache.Get(c.ua));
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(held[i]->browser, kCases[i].want.browser);
  }
}

TEST(UserAgentCacheTest, ConcurrentUse) {
  UserAgentCache cache(/*capacity=*/8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache] {
      for (int i = 0; i < 2000; ++i) {
        const Case& c = kCases[i % (sizeof(kCases) / sizeof(kCases[0]))];
        EXPECT_EQ(cache.Get(c.ua)->os, c.want.os);
      }
    });
  }
  for (auto& t : threads) t.join();
}

// The per-thread entries in front of the cache answer for their own string
// only: many strings (more than the entries, some long, some empty) looked
// up in random order give ParseUserAgent's answer and DetectBot's reason.
TEST(UserAgentCacheTest, LookupMatchesGet) {
  UserAgentCache cache(/*capacity=*/16);
  std::vector<std::string> uas = {"", " ", "curl/8.0", std::string(600, 'M'),
                                  std::string(600, 'M') + "Chrome/1"};
  for (const Case& c : kCases) uas.push_back(c.ua);
  for (int i = 0; i < 300; ++i) {
    uas.push_back("Mozilla/5.0 (Windows NT 10.0) Chrome/" + std::to_string(i));
  }
  uint64_t x = 7;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::string& ua = uas[(x >> 33) % uas.size()];
    const UserAgentInfo& got = cache.Lookup(ua);
    ASSERT_EQ(got, *cache.Get(ua)) << ua;
    UserAgentInfo want = ParseUserAgent(ua);
    ASSERT_EQ(got.browser_version, want.browser_version) << ua;
    ASSERT_EQ(got.os, want.os) << ua;
  }
}

}  // namespace
}  // namespace analytics
