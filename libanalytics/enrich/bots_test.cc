#include "libanalytics/enrich/bots.h"

#include <string>

#include "gtest/gtest.h"

namespace analytics {
namespace {

struct Case {
  const char* ua;
  const char* reason;
};

const Case kBots[] = {
    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "crawler"},
    {"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
     "Googlebot/2.1; +http://www.google.com/bot.html) Chrome/120.0.6099.129 "
     "Safari/537.36",
     "crawler"},
    {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
     "crawler"},
    {"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
     "crawler"},
    {"Mozilla/5.0 (compatible; SemrushBot/7~bl; "
     "+http://www.semrush.com/bot.html)",
     "crawler"},
    {"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
     "crawler"},
    {"Mozilla/5.0 (compatible; Baiduspider/2.0; "
     "+http://www.baidu.com/search/spider.html)",
     "crawler"},
    {"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "crawler"},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; "
     "+http://www.apple.com/go/applebot)",
     "crawler"},
    {"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
     "GPTBot/1.0; +https://openai.com/gptbot)",
     "crawler"},
    {"Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com)",
     "crawler"},
    {"AdsBot-Google (+http://www.google.com/adsbot.html)", "crawler"},
    {"Screaming Frog SEO Spider/19.4", "crawler"},
    {"Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
     "crawler"},
    {"Mozilla/5.0 (compatible; SomeNewThing/1.0; +https://example.com/info)",
     "crawler"},
    {"Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
     "monitoring"},
    {"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "monitoring"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
     "like Gecko) HeadlessChrome/120.0.6099.28 Safari/537.36",
     "headless"},
    {"Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like "
     "Gecko) PhantomJS/2.1.1 Safari/538.1",
     "headless"},
    {"Mozilla/5.0 (X11; Linux x86_64) Selenium/4.15", "headless"},
    {"curl/8.4.0", "http_library"},
    {"Wget/1.21.3", "http_library"},
    {"python-requests/2.31.0", "http_library"},
    {"Python-urllib/3.11", "http_library"},
    {"Go-http-client/1.1", "http_library"},
    {"okhttp/4.12.0", "http_library"},
    {"Java/17.0.9", "http_library"},
    {"axios/1.6.2", "http_library"},
    {"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "http_library"},
    {"Apache-HttpClient/4.5.14 (Java/17.0.8)", "http_library"},
    {"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "preview"},
    {"facebookexternalhit/1.1 "
     "(+http://www.facebook.com/externalhit_uatext.php)",
     "preview"},
    {"Twitterbot/1.0", "preview"},
    {"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
     "preview"},
    {"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient "
     "+http://www.linkedin.com)",
     "preview"},
    {"TelegramBot (like TwitterBot)", "preview"},
    {"WhatsApp/2.23.20.0", "preview"},
    {"", "empty_user_agent"},
    {"   ", "empty_user_agent"},
};

const char* const kHumans[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
    "Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 "
    "Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 9; Cubot P30) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[FBAN/FBIOS;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.1;FBSS/3;"
    "FBID/phone;FBLC/en_US;FBOP/5]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram "
    "309.0.2.18.108 (iPhone14,5; iOS 17_1; en_US; en; scale=3.00; "
    "1170x2532; 538285171)",
    "Mozilla/5.0 (Linux; Android 12; SM-G991B Build/SP1A.210812.016; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Safari/537.36",
};

TEST(DetectBotTest, Bots) {
  for (const Case& c : kBots) {
    EXPECT_EQ(DetectBot(c.ua), c.reason) << c.ua;
  }
}

TEST(DetectBotTest, Humans) {
  for (const char* ua : kHumans) {
    EXPECT_EQ(DetectBot(ua), "") << ua;
  }
}

TEST(DetectBotTest, CaseInsensitive) {
  EXPECT_EQ(DetectBot("CURL/7.0"), "http_library");
  EXPECT_EQ(DetectBot("GOOGLEBOT"), "crawler");
  EXPECT_EQ(DetectBot("headlesschrome/1"), "headless");
}

TEST(DetectBotTest, LongAndOddInput) {
  std::string long_ua(10000, 'a');
  EXPECT_EQ(DetectBot(long_ua), "");
  long_ua += " bot";
  EXPECT_EQ(DetectBot(long_ua), "crawler");
  EXPECT_EQ(DetectBot(std::string("\0\xff\x80", 3)), "");
  EXPECT_EQ(DetectBot("+"), "");
}

}  // namespace
}  // namespace analytics
