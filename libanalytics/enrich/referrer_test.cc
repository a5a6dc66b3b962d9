#include "libanalytics/enrich/referrer.h"

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "libanalytics/enrich/string_util.h"
#include "libanalytics/enrich/url.h"

namespace analytics {
namespace {

TEST(SourceForHostTest, KnownHosts) {
  EXPECT_EQ(SourceForHost(""), "");
  EXPECT_EQ(SourceForHost("google.com"), "Google");
  EXPECT_EQ(SourceForHost("google.de"), "Google");
  EXPECT_EQ(SourceForHost("google.co.uk"), "Google");
  EXPECT_EQ(SourceForHost("google.com.br"), "Google");
  EXPECT_EQ(SourceForHost("images.google.fr"), "Google");
  EXPECT_EQ(SourceForHost("mail.google.com"), "Gmail");
  EXPECT_EQ(SourceForHost("bing.com"), "Bing");
  EXPECT_EQ(SourceForHost("cn.bing.com"), "Bing");
  EXPECT_EQ(SourceForHost("duckduckgo.com"), "DuckDuckGo");
  EXPECT_EQ(SourceForHost("search.yahoo.com"), "Yahoo!");
  EXPECT_EQ(SourceForHost("yahoo.co.jp"), "Yahoo!");
  EXPECT_EQ(SourceForHost("yandex.ru"), "Yandex");
  EXPECT_EQ(SourceForHost("baidu.com"), "Baidu");
  EXPECT_EQ(SourceForHost("news.ycombinator.com"), "Hacker News");
  EXPECT_EQ(SourceForHost("reddit.com"), "Reddit");
  EXPECT_EQ(SourceForHost("old.reddit.com"), "Reddit");
  EXPECT_EQ(SourceForHost("t.co"), "Twitter");
  EXPECT_EQ(SourceForHost("twitter.com"), "Twitter");
  EXPECT_EQ(SourceForHost("x.com"), "Twitter");
  EXPECT_EQ(SourceForHost("m.facebook.com"), "Facebook");
  EXPECT_EQ(SourceForHost("l.instagram.com"), "Instagram");
  EXPECT_EQ(SourceForHost("lnkd.in"), "LinkedIn");
  EXPECT_EQ(SourceForHost("linkedin.com"), "LinkedIn");
  EXPECT_EQ(SourceForHost("m.youtube.com"), "YouTube");
  EXPECT_EQ(SourceForHost("github.com"), "GitHub");
  EXPECT_EQ(SourceForHost("en.m.wikipedia.org"), "Wikipedia");
  EXPECT_EQ(SourceForHost("com.google.android.gm"), "Gmail");
  EXPECT_EQ(SourceForHost("com.google.android.googlequicksearchbox"), "Google");
}

TEST(SourceForHostTest, UnknownHostsPassThrough) {
  EXPECT_EQ(SourceForHost("example.org"), "example.org");
  EXPECT_EQ(SourceForHost("blog.example.co.uk"), "blog.example.co.uk");
  EXPECT_EQ(SourceForHost("googleusercontent.com"), "googleusercontent.com");
  EXPECT_EQ(SourceForHost("notx.com"), "notx.com");
  EXPECT_EQ(SourceForHost("localhost"), "localhost");
  EXPECT_EQ(SourceForHost("com.example.app"), "com.example.app");
}

TEST(ParseAcquisitionTest, Direct) {
  Acquisition a = ParseAcquisition("https://example.com/", "", "example.com");
  EXPECT_EQ(a.source, "");
  EXPECT_EQ(a.referrer, "");
}

TEST(ParseAcquisitionTest, ReferrerHostAndPath) {
  Acquisition a =
      ParseAcquisition("https://example.com/blog",
                       "https://news.ycombinator.com/item?id=1", "example.com");
  EXPECT_EQ(a.source, "Hacker News");
  EXPECT_EQ(a.referrer, "news.ycombinator.com/item");

  a = ParseAcquisition("https://example.com/", "https://WWW.Google.de/",
                       "example.com");
  EXPECT_EQ(a.source, "Google");
  EXPECT_EQ(a.referrer, "google.de/");

  a = ParseAcquisition("https://example.com/", "https://other.net/a/b/",
                       "example.com");
  EXPECT_EQ(a.source, "other.net");
  EXPECT_EQ(a.referrer, "other.net/a/b");
}

TEST(ParseAcquisitionTest, AndroidApp) {
  Acquisition a =
      ParseAcquisition("https://example.com/",
                       "android-app://com.google.android.gm", "example.com");
  EXPECT_EQ(a.source, "Gmail");
  EXPECT_EQ(a.referrer, "com.google.android.gm/");
  a = ParseAcquisition("https://example.com/",
                       "android-app://org.example.reader/", "example.com");
  EXPECT_EQ(a.source, "org.example.reader");
}

TEST(ParseAcquisitionTest, SelfReferral) {
  Acquisition a = ParseAcquisition("https://example.com/b",
                                   "https://www.example.com/a", "example.com");
  EXPECT_EQ(a.source, "");
  EXPECT_EQ(a.referrer, "");
  a = ParseAcquisition("https://example.com/b", "https://blog.example.com/a",
                       "www.Example.com");
  EXPECT_EQ(a.source, "");
  EXPECT_EQ(a.referrer, "");
  // Not a subdomain, just a common suffix.
  a = ParseAcquisition("https://example.com/b", "https://notexample.com/a",
                       "example.com");
  EXPECT_EQ(a.source, "notexample.com");
  EXPECT_EQ(a.referrer, "notexample.com/a");
}

TEST(ParseAcquisitionTest, QueryParametersWin) {
  Acquisition a = ParseAcquisition(
      "https://example.com/?utm_source=newsletter&utm_medium=email"
      "&utm_campaign=spring+sale&utm_term=shoes%20red&utm_content=top&ref=x",
      "https://google.com/", "example.com");
  EXPECT_EQ(a.source, "newsletter");
  EXPECT_EQ(a.referrer, "google.com/");
  EXPECT_EQ(a.utm_source, "newsletter");
  EXPECT_EQ(a.utm_medium, "email");
  EXPECT_EQ(a.utm_campaign, "spring sale");
  EXPECT_EQ(a.utm_term, "shoes red");
  EXPECT_EQ(a.utm_content, "top");

  a = ParseAcquisition("https://example.com/?ref=producthunt&source=x",
                       "https://t.co/abc", "example.com");
  EXPECT_EQ(a.source, "producthunt");
  EXPECT_EQ(a.referrer, "t.co/abc");
  EXPECT_EQ(a.utm_source, "");

  a = ParseAcquisition("https://example.com/?source=podcast", "",
                       "example.com");
  EXPECT_EQ(a.source, "podcast");
  EXPECT_EQ(a.referrer, "");

  // Empty utm_source does not win.
  a = ParseAcquisition("https://example.com/?utm_source=&ref=hn", "",
                       "example.com");
  EXPECT_EQ(a.source, "hn");
}

TEST(ParseAcquisitionTest, GarbageReferrer) {
  Acquisition a =
      ParseAcquisition("https://example.com/", "/relative/path", "example.com");
  EXPECT_EQ(a.source, "");
  EXPECT_EQ(a.referrer, "");
}

// The per-thread cache of referrer parts never answers for another pair:
// random interleavings of many pairs (more than the cache holds, on two
// sites) give what each pair gave when first seen.
TEST(ParseAcquisitionTest, CachedReferrersKeepTheirOwnAnswers) {
  std::vector<std::string> referrers = {"",
                                        " ",
                                        "https://www.google.com/",
                                        "android-app://com.google.android.gm",
                                        "https://example.com/self",
                                        "https://sub.example.org/x"};
  for (int i = 0; i < 700; ++i) {
    referrers.push_back("https://host" + std::to_string(i % 97) + ".example" +
                        (i % 3 ? ".org" : ".com") + "/p/" + std::to_string(i) +
                        "/?q=1");
  }
  const std::string sites[] = {"example.com", "https://www.example.org"};
  std::vector<Acquisition> first;
  for (const std::string& r : referrers) {
    for (const std::string& site : sites) {
      first.push_back(ParseAcquisition("https://example.com/a?ref=x", r, site));
    }
  }
  uint64_t x = 1;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const size_t k = (x >> 33) % first.size();
    const Acquisition got = ParseAcquisition("https://example.com/a?ref=x",
                                             referrers[k / 2], sites[k % 2]);
    ASSERT_EQ(got.source, first[k].source) << k;
    ASSERT_EQ(got.referrer, first[k].referrer) << k;
  }
  EXPECT_EQ(first[4 * 2 + 0].referrer, "");  // a self-referral
  EXPECT_EQ(first[2 * 2 + 0].source, "x");   // ?ref= wins
  EXPECT_EQ(first[2 * 2 + 0].referrer, "google.com/");
}

// The UTM fields are each QueryParam's value, whitespace-stripped ("" when
// absent), and a utm_source is the source: over random page queries.
TEST(ParseAcquisitionTest, UtmFieldsMatchQueryParamOnRandomQueries) {
  std::mt19937_64 rng(13);
  const std::string_view pieces[] = {"utm_source=",
                                     "utm_medium=",
                                     "utm_campaign=",
                                     "utm_term=",
                                     "utm_content=",
                                     "utm%5Fterm=",
                                     "&",
                                     "=",
                                     " ",
                                     "%20",
                                     "+",
                                     "x",
                                     "\t",
                                     "news",
                                     "%FF",
                                     "ref=",
                                     "source="};
  // (Only a query containing "utm_" is looked at: an encoded key such as
  // "utm%5Fterm" alone is ignored, as it always was.)
  auto want = [](std::string_view query, std::string_view key) {
    if (query.find("utm_") == std::string_view::npos) return std::string();
    std::optional<std::string> v = QueryParam(query, key);
    return v ? std::string(enrich_internal::StripWhitespace(*v))
             : std::string();
  };
  VisitAttrs visit;
  int with_utm = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string url = "https://example.com/p?";
    const int n = static_cast<int>(rng() % 10);
    for (int k = 0; k < n; ++k) url += pieces[rng() % std::size(pieces)];
    const UrlParts page = SplitUrl(url);
    visit.utm_term = "stale";
    ParseAcquisition(page, "", "example.com", &visit);
    SCOPED_TRACE(url);
    ASSERT_EQ(visit.utm_source, want(page.query, "utm_source"));
    ASSERT_EQ(visit.utm_medium, want(page.query, "utm_medium"));
    ASSERT_EQ(visit.utm_campaign, want(page.query, "utm_campaign"));
    ASSERT_EQ(visit.utm_term, want(page.query, "utm_term"));
    ASSERT_EQ(visit.utm_content, want(page.query, "utm_content"));
    if (!visit.utm_source.empty()) {
      ASSERT_EQ(visit.source, visit.utm_source);
      ++with_utm;
    }
  }
  EXPECT_GT(with_utm, 1000);
}
}  // namespace

}  // namespace analytics
