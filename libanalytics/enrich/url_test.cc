#include "libanalytics/enrich/url.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace analytics {
namespace {

TEST(SplitUrlTest, FullUrl) {
  UrlParts p = SplitUrl("https://user:pw@Host.Example.com:8080/p/a?x=1&y=2#f");
  EXPECT_EQ(p.scheme, "https");
  EXPECT_EQ(p.host, "Host.Example.com");
  EXPECT_EQ(p.path, "/p/a");
  EXPECT_EQ(p.query, "x=1&y=2");
}

TEST(SplitUrlTest, NoPath) {
  UrlParts p = SplitUrl("https://example.com");
  EXPECT_EQ(p.host, "example.com");
  EXPECT_EQ(p.path, "/");
  EXPECT_EQ(p.query, "");
  p = SplitUrl("https://example.com?q=1");
  EXPECT_EQ(p.host, "example.com");
  EXPECT_EQ(p.path, "/");
  EXPECT_EQ(p.query, "q=1");
}

TEST(SplitUrlTest, NoScheme) {
  UrlParts p = SplitUrl("example.com/a/b?c=d");
  EXPECT_EQ(p.scheme, "");
  EXPECT_EQ(p.host, "example.com");
  EXPECT_EQ(p.path, "/a/b");
  EXPECT_EQ(p.query, "c=d");
}

TEST(SplitUrlTest, ProtocolRelative) {
  UrlParts p = SplitUrl("//cdn.example.com/x.js");
  EXPECT_EQ(p.host, "cdn.example.com");
  EXPECT_EQ(p.path, "/x.js");
}

TEST(SplitUrlTest, BarePath) {
  UrlParts p = SplitUrl("/a?x");
  EXPECT_EQ(p.scheme, "");
  EXPECT_EQ(p.host, "");
  EXPECT_EQ(p.path, "/a");
  EXPECT_EQ(p.query, "x");
}

TEST(SplitUrlTest, FragmentOnlyAndEmpty) {
  UrlParts p = SplitUrl("https://example.com/a#frag?notquery");
  EXPECT_EQ(p.path, "/a");
  EXPECT_EQ(p.query, "");
  p = SplitUrl("");
  EXPECT_EQ(p.host, "");
  EXPECT_EQ(p.path, "/");
  p = SplitUrl("#only");
  EXPECT_EQ(p.host, "");
  EXPECT_EQ(p.path, "/");
}

TEST(SplitUrlTest, Ipv6AndPort) {
  UrlParts p = SplitUrl("http://[::1]:3000/x");
  EXPECT_EQ(p.host, "[::1]");
  EXPECT_EQ(p.path, "/x");
  p = SplitUrl("localhost:3000/x");
  EXPECT_EQ(p.host, "localhost");
  EXPECT_EQ(p.path, "/x");
}

TEST(SplitUrlTest, AndroidApp) {
  UrlParts p = SplitUrl("android-app://com.google.android.gm/");
  EXPECT_EQ(p.scheme, "android-app");
  EXPECT_EQ(p.host, "com.google.android.gm");
}

TEST(SplitUrlTest, GarbageDoesNotCrash) {
  for (const char* s :
       {"://", "?", "@", "[", "http://", "http://@:/?#", "%%%", "   "}) {
    UrlParts p = SplitUrl(s);
    EXPECT_FALSE(p.path.empty()) << s;
  }
}

TEST(QueryParamTest, Basics) {
  EXPECT_EQ(QueryParam("a=1&b=2", "b"), "2");
  EXPECT_EQ(QueryParam("a=1&b=2", "c"), std::nullopt);
  EXPECT_EQ(QueryParam("a=1&a=2", "a"), "1");
  EXPECT_EQ(QueryParam("flag&a=1", "flag"), "");
  EXPECT_EQ(QueryParam("a=", "a"), "");
  EXPECT_EQ(QueryParam("", "a"), std::nullopt);
  EXPECT_EQ(QueryParam("ab=1", "a"), std::nullopt);
}

TEST(QueryParamTest, Decoding) {
  EXPECT_EQ(QueryParam("q=hello+world%21", "q"), "hello world!");
  EXPECT_EQ(QueryParam("q=%E2%82%AC", "q"), "\xE2\x82\xAC");
  EXPECT_EQ(QueryParam("q=100%", "q"), "100%");
  EXPECT_EQ(QueryParam("q=%zz%4", "q"), "%zz%4");
  EXPECT_EQ(QueryParam("utm%5Fsource=x", "utm_source"), "x");
}

TEST(NormalizeHostTest, Basics) {
  EXPECT_EQ(NormalizeHost("WWW.Example.COM"), "example.com");
  EXPECT_EQ(NormalizeHost("example.com."), "example.com");
  EXPECT_EQ(NormalizeHost("www.example.com."), "example.com");
  EXPECT_EQ(NormalizeHost("wwwexample.com"), "wwwexample.com");
  EXPECT_EQ(NormalizeHost("sub.www.example.com"), "sub.www.example.com");
  EXPECT_EQ(NormalizeHost(""), "");
}

TEST(NormalizePathTest, Basics) {
  EXPECT_EQ(NormalizePath(""), "/");
  EXPECT_EQ(NormalizePath("/"), "/");
  EXPECT_EQ(NormalizePath("/a/"), "/a");
  EXPECT_EQ(NormalizePath("/a/b"), "/a/b");
  EXPECT_EQ(NormalizePath("/caf%C3%A9/"), "/caf\xC3\xA9");
  EXPECT_EQ(NormalizePath("/a%2"), "/a%2");
  EXPECT_EQ(NormalizePath("/a%gg"), "/a%gg");
  EXPECT_EQ(NormalizePath("/a+b"), "/a+b");
  EXPECT_EQ(NormalizePath("/%20x"), "/ x");
}

// Escapes that decode to invalid UTF-8 stay as sent: stored dimension values
// must be valid UTF-8, or JSON answers carrying them do not parse.
TEST(NormalizePathTest, InvalidUtf8EscapesAreKept) {
  EXPECT_EQ(NormalizePath("/a%FF"), "/a%FF");
  EXPECT_EQ(NormalizePath("/%C0%AF/x"), "/%C0%AF/x");    // overlong '/'
  EXPECT_EQ(NormalizePath("/%ED%A0%80"), "/%ED%A0%80");  // surrogate
  EXPECT_EQ(NormalizePath("/%E2%82"), "/%E2%82");        // truncated
  EXPECT_EQ(NormalizePath("/caf%C3%A9%20x"), "/caf\xC3\xA9 x");
  EXPECT_EQ(QueryParam("utm_source=%FFx+y", "utm_source"), "%FFx+y");
  EXPECT_EQ(QueryParam("utm_source=%E2%82%AC+1", "utm_source"),
            "\xE2\x82\xAC 1");
}

}  // namespace
}  // namespace analytics
