#include "libanalytics/enrich/url.h"

#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"
#include "libanalytics/enrich/string_util.h"

namespace analytics {
namespace {

// SplitUrl as first written (std::string_view searches throughout): the
// reference for the hand-written scans of the hot path.
UrlParts ReferenceSplitUrl(std::string_view url) {
  UrlParts parts;
  parts.path = "/";
  url = enrich_internal::StripWhitespace(url);
  if (size_t hash = url.find('#'); hash != std::string_view::npos) {
    url = url.substr(0, hash);
  }
  if (url.empty()) return parts;
  std::string_view rest = url;
  bool has_authority = false;
  if (size_t sep = rest.find("://"); sep != std::string_view::npos && sep > 0) {
    std::string_view scheme = rest.substr(0, sep);
    bool valid = absl::ascii_isalpha(static_cast<unsigned char>(scheme[0]));
    for (char c : scheme) {
      valid = valid && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                        c == '+' || c == '-' || c == '.');
    }
    if (valid) {
      parts.scheme = scheme;
      rest = rest.substr(sep + 3);
      has_authority = true;
    }
  }
  if (!has_authority) {
    if (rest.size() >= 2 && rest[0] == '/' && rest[1] == '/') {
      rest = rest.substr(2);
      has_authority = true;
    } else if (rest[0] != '/' && rest[0] != '?') {
      has_authority = true;
    }
  }
  if (has_authority) {
    size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    rest =
        end == std::string_view::npos ? std::string_view() : rest.substr(end);
    if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
      authority = authority.substr(at + 1);
    }
    if (!authority.empty() && authority[0] == '[') {
      size_t close = authority.find(']');
      authority = close == std::string_view::npos
                      ? std::string_view()
                      : authority.substr(0, close + 1);
    } else if (size_t colon = authority.find(':');
               colon != std::string_view::npos) {
      authority = authority.substr(0, colon);
    }
    parts.host = authority;
  }
  size_t q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  if (!path.empty()) parts.path = path;
  if (q != std::string_view::npos) parts.query = rest.substr(q + 1);
  return parts;
}

// SplitUrl gives the reference's parts (the same views into the input) over
// random URLs made of the characters that matter to it.
TEST(SplitUrlTest, MatchesReferenceOnRandomUrls) {
  std::mt19937_64 rng(3);
  const std::string_view pieces[] = {
      "https://", "http://", "//",  "/",       "?",  "#",    "@",
      ":",        "[",       "]",   "a",       "Ex", ".com", "www.",
      "8080",     " ",       "\t",  "x=1",     "&",  "-",    "+",
      "%2F",      "1:",      "://", "\xC3\xA9"};
  int with_host = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string url;
    const int n = static_cast<int>(rng() % 9);
    for (int k = 0; k < n; ++k) url += pieces[rng() % std::size(pieces)];
    const UrlParts got = SplitUrl(url);
    const UrlParts want = ReferenceSplitUrl(url);
    SCOPED_TRACE(url);
    auto same_view = [](std::string_view a, std::string_view b) {
      return a.data() == b.data() && a.size() == b.size();
    };
    EXPECT_TRUE(same_view(got.scheme, want.scheme) ||
                (got.scheme.empty() && want.scheme.empty()));
    EXPECT_TRUE(same_view(got.host, want.host) ||
                (got.host.empty() && want.host.empty()));
    EXPECT_EQ(got.path, want.path);
    EXPECT_TRUE(same_view(got.query, want.query) ||
                (got.query.empty() && want.query.empty()));
    if (HasFailure()) return;
    with_host += got.host.empty() ? 0 : 1;
  }
  EXPECT_GT(with_host, 10000);
}

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

// QueryParams answers as QueryParam does for each key, over random queries
// made of the characters and keys that matter to them (encoded keys, '+',
// repeated keys, pairs without '='), into recycled values.
TEST(QueryParamsTest, MatchesQueryParamOnRandomQueries) {
  std::mt19937_64 rng(11);
  const std::string_view pieces[] = {"utm_source", "utm%5Fsource",
                                     "utm_medium", "utm_term",
                                     "a+b",        "a b",
                                     "=",          "&",
                                     "%",          "%2",
                                     "%41",        "+",
                                     "x",          " ",
                                     "\xFF",       "%FF",
                                     "%C3%A9",     "utm_",
                                     "=v",         "a%2Bb"};
  const std::string_view keys[] = {"utm_source", "utm_medium", "utm_term",
                                   "a b",        "a+b",        ""};
  std::string storage[std::size(keys)];
  std::string* values[std::size(keys)];
  for (size_t i = 0; i < std::size(keys); ++i) values[i] = &storage[i];
  bool found[std::size(keys)];
  int hits = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string query;
    const int n = static_cast<int>(rng() % 10);
    for (int k = 0; k < n; ++k) query += pieces[rng() % std::size(pieces)];
    for (std::string& s : storage) s = "stale";
    QueryParams(query, keys, values, found);
    for (size_t k = 0; k < std::size(keys); ++k) {
      const std::optional<std::string> want = QueryParam(query, keys[k]);
      ASSERT_EQ(found[k], want.has_value()) << query << " " << keys[k];
      if (want.has_value()) {
        ASSERT_EQ(storage[k], *want) << query << " " << keys[k];
        ++hits;
      } else {
        ASSERT_EQ(storage[k], "stale") << query << " " << keys[k];
      }
    }
  }
  EXPECT_GT(hits, 10000);
}

// SplitUrlNormalized (a one-pass fast path for the common shape) gives
// SplitUrl's parts and NormalizeHost/NormalizePath of them, into recycled
// strings, over random URLs: mostly of the common shape, with the pieces
// that must take the general path (upper case, "www.", escapes, ports,
// userinfo, fragments, trailing slashes, dots and whitespace) mixed in.
TEST(SplitUrlNormalizedTest, MatchesSplitAndNormalize) {
  std::mt19937_64 rng(11);
  const std::string_view starts[] = {"https://",  "http://", "HTTPS://",
                                     "https:/",   "//",      "",
                                     " https://", "ftp://",  "http://"};
  const std::string_view host_pieces[] = {
      "example", ".com",  "www.", "WWW.",  "a-b", "x9",       ".", "Ex",
      "_",       ":8080", "u@",   "[::1]", "%41", "\xC3\xA9", "w", "ww"};
  const std::string_view rest_pieces[] = {
      "/", "/page", "/1",   "//", "?",  "#f", "%2F", "%C3%A9", "%FF",
      "&", "x=1",   "utm_", " ",  "\t", "+",  "a",   "/.",     "?q#"};
  std::string host = "left over from before", path = "and more of it";
  int fast_shape = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string url(starts[rng() % std::size(starts)]);
    const int nh = static_cast<int>(rng() % 4);
    for (int k = 0; k < nh; ++k) {
      // Mostly plain host pieces, so that most URLs have the common shape.
      url += host_pieces[rng() % 3 == 0 ? rng() % std::size(host_pieces)
                                        : rng() % 2];
    }
    const int nr = static_cast<int>(rng() % 5);
    for (int k = 0; k < nr; ++k) {
      url += rest_pieces[rng() % 2 == 0 ? rng() % std::size(rest_pieces)
                                        : rng() % 3];
    }
    SCOPED_TRACE(url);
    const UrlParts got = SplitUrlNormalized(url, &host, &path);
    const UrlParts want = SplitUrl(url);
    auto same_view = [](std::string_view a, std::string_view b) {
      return (a.data() == b.data() && a.size() == b.size()) ||
             (a.empty() && b.empty());
    };
    EXPECT_TRUE(same_view(got.scheme, want.scheme));
    EXPECT_TRUE(same_view(got.host, want.host));
    EXPECT_EQ(got.path, want.path);
    EXPECT_TRUE(same_view(got.query, want.query));
    EXPECT_EQ(host, NormalizeHost(want.host));
    EXPECT_EQ(path, NormalizePath(want.path));
    if (HasFailure()) return;
    fast_shape += url.starts_with("http") && !want.host.empty() &&
                  host == want.host && path == want.path;
  }
  EXPECT_GT(fast_shape, 20000);
}

TEST(NormalizeHostTest, Basics) {
  EXPECT_EQ(NormalizeHost("WWW.Example.COM"), "example.com");
  EXPECT_EQ(NormalizeHost("example.com."), "example.com");
  EXPECT_EQ(NormalizeHost("www.example.com."), "example.com");
  EXPECT_EQ(NormalizeHost("wwwexample.com"), "wwwexample.com");
  EXPECT_EQ(NormalizeHost("sub.www.example.com"), "sub.www.example.com");
  EXPECT_EQ(NormalizeHost(""), "");
}

// NormalizeHost as first written (absl's case-insensitive prefix test and
// AsciiStrToLower): the reference for the lower-casing copy loop.
std::string ReferenceNormalizeHost(std::string_view host) {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() > 4 && enrich_internal::StartsWithIgnoreCase(host, "www.")) {
    host.remove_prefix(4);
  }
  std::string out(host);
  absl::AsciiStrToLower(&out);
  return out;
}

// Over random hosts made of the characters that matter to it, into a
// recycled string (its previous contents must not show).
TEST(NormalizeHostTest, MatchesReferenceOnRandomHosts) {
  std::mt19937_64 rng(5);
  const std::string_view pieces[] = {
      "w",  "W",    "ww", "www", "WwW",      ".",    "..",  "a",
      "Ex", "\x0e", "7",  "-",   "\xC3\x89", "\xFF", "com", "wWw."};
  std::string out = "left over from before";
  for (int i = 0; i < 50000; ++i) {
    std::string host;
    const int n = static_cast<int>(rng() % 7);
    for (int k = 0; k < n; ++k) host += pieces[rng() % std::size(pieces)];
    NormalizeHost(host, &out);
    ASSERT_EQ(out, ReferenceNormalizeHost(host)) << host;
  }
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

namespace analytics::enrich_internal {
namespace {

// The inline StripWhitespace strips what absl::StripAsciiWhitespace strips:
// every byte value at either end, and random mixes of spaces and text.
TEST(StripWhitespaceTest, MatchesAbsl) {
  auto absl_strip = [](std::string_view s) {
    return ToStd(absl::StripAsciiWhitespace(ToAbsl(s)));
  };
  for (int c = 0; c < 256; ++c) {
    const std::string s = std::string(1, static_cast<char>(c)) + "x" +
                          std::string(2, static_cast<char>(c));
    ASSERT_EQ(StripWhitespace(s), absl_strip(s)) << c;
    const std::string only(3, static_cast<char>(c));
    ASSERT_EQ(StripWhitespace(only), absl_strip(only)) << c;
  }
  std::mt19937_64 rng(7);
  const char pieces[] = {' ', '\t', '\n',   '\v',   '\f',   '\r',
                         'a', '\0', '\x1f', '\x85', '\xa0', '.'};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) s += pieces[rng() % std::size(pieces)];
    const std::string_view got = StripWhitespace(s);
    const std::string_view want = absl_strip(s);
    ASSERT_TRUE(got.data() == want.data() && got.size() == want.size()) << s;
  }
}

}  // namespace
}  // namespace analytics::enrich_internal
