#include "libanalytics/ingest/trackers.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "analytics/event.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libanalytics/ingest/json_testing.h"
#include "libanalytics/ingest/trackers_internal.h"

namespace analytics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::StartsWith;

RequestInfo Req() {
  RequestInfo r;
  r.ip = "203.0.113.9";
  r.user_agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
  r.country_hint = "DE";
  r.now = absl::FromUnixSeconds(1790812840);
  return r;
}

void ExpectError(const absl::Status& s, const std::string& prefix) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), StartsWith(prefix)) << s;
}

// ---------------------------------------------------------------- Plausible

TEST(Plausible, PageviewAsTrackerSendsIt) {
  // tracker/src/plausible.js: {n, u, d, r, w, h?, p?}, sent as text/plain.
  auto r = ParsePlausibleEvent(
      R"({"n":"pageview","u":"https://example.com/blog?utm_source=x",)"
      R"("d":"example.com","r":"https://news.ycombinator.com/","w":1440})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.site, "example.com");
  EXPECT_EQ(e.name, "pageview");
  EXPECT_EQ(e.url, "https://example.com/blog?utm_source=x");
  EXPECT_EQ(e.referrer, "https://news.ycombinator.com/");
  EXPECT_EQ(e.screen_width, 1440);
  EXPECT_TRUE(e.interactive);
  EXPECT_EQ(e.ip, "203.0.113.9");
  EXPECT_EQ(e.user_agent, Req().user_agent);
  EXPECT_EQ(e.country_hint, "DE");
  EXPECT_EQ(e.ts, Req().now);
}

// Bodies nested deeper than 32 levels are refused (every protocol shares
// the parse); 64 KiB of '[' is an error, not a stack overflow.
TEST(Plausible, DeepNestingIsRefused) {
  const std::string deep =
      absl::StrCat(R"({"type":"event","payload":{"website":"AbCdEfGhIjKl",)",
                   R"("hostname":"a.b","url":"/","name":"x","data":{"a":)",
                   std::string(40, '['), std::string(40, ']'), "}}}");
  auto umami = ParseUmamiSend(deep, Req());
  ASSERT_FALSE(umami.ok());
  EXPECT_EQ(umami.status().message(), "body: nested deeper than 32 levels");
  auto plausible = ParsePlausibleEvent(std::string(65000, '['), Req());
  ASSERT_FALSE(plausible.ok());
  EXPECT_THAT(std::string(plausible.status().message()),
              StartsWith("body: invalid JSON"));
  const std::string nested_ok =
      absl::StrCat(R"({"n":"pageview","u":"https://a.b/","d":"a.b","x":)",
                   std::string(20, '['), std::string(20, ']'), "}");
  EXPECT_TRUE(ParsePlausibleEvent(nested_ok, Req()).ok());
}

TEST(Plausible, LongAliases) {
  auto r = ParsePlausibleEvent(
      R"({"name":"Signup","url":"https://example.com/a","domain":"example.com",)"
      R"("referrer":"https://t.co/x","props":{"plan":"pro"},"interactive":false})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.name, "Signup");
  EXPECT_EQ(e.referrer, "https://t.co/x");
  EXPECT_THAT(e.props, ElementsAre(Pair("plan", "pro")));
  EXPECT_FALSE(e.interactive);
}

TEST(Plausible, MetaAndMAliases) {
  auto a = ParsePlausibleEvent(
      R"({"n":"x","u":"https://e.com/","d":"e.com","m":{"k":"v"}})", Req());
  auto b = ParsePlausibleEvent(
      R"({"n":"x","u":"https://e.com/","d":"e.com","meta":{"k":"v"}})", Req());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_THAT((*a)[0].props, ElementsAre(Pair("k", "v")));
  EXPECT_THAT((*b)[0].props, ElementsAre(Pair("k", "v")));
}

TEST(Plausible, PropsAsJsonString) {
  auto r = ParsePlausibleEvent(
      R"({"n":"Download","u":"https://e.com/","d":"e.com",)"
      R"("m":"{\"file\":\"a.pdf\",\"size\":12,\"ok\":true}"})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT((*r)[0].props,
              ElementsAre(Pair("file", "a.pdf"), Pair("size", "12"),
                          Pair("ok", "true")));
}

TEST(Plausible, PropsDropEmptyNullAndNested) {
  auto r = ParsePlausibleEvent(
      R"({"n":"x","u":"https://e.com/","d":"e.com","p":)"
      R"({"a":"","b":null,"c":[1],"d":{"x":1},"e":"keep"}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT((*r)[0].props, ElementsAre(Pair("e", "keep")));
}

TEST(Plausible, InvalidPropsStringIsIgnored) {
  auto r = ParsePlausibleEvent(
      R"({"n":"x","u":"https://e.com/","d":"e.com","p":"not json"})", Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT((*r)[0].props, IsEmpty());
}

TEST(Plausible, CommaSeparatedDomains) {
  auto r = ParsePlausibleEvent(
      R"({"n":"pageview","u":"https://a.com/","d":"a.com, www.rollup.com,b.com"})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].site, "a.com");
  EXPECT_EQ((*r)[1].site, "rollup.com");
  EXPECT_EQ((*r)[2].site, "b.com");
  EXPECT_EQ((*r)[2].url, "https://a.com/");
}

TEST(Plausible, MissingDomainFallsBackToUrlHost) {
  auto r = ParsePlausibleEvent(
      R"({"n":"pageview","u":"https://www.example.com:8443/a"})", Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].site, "example.com");
}

TEST(Plausible, HashModeKeepsFragmentInPath) {
  auto r = ParsePlausibleEvent(
      R"({"n":"pageview","u":"https://e.com/app?x=1#/settings?tab=2",)"
      R"("d":"e.com","h":1})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "https://e.com/app%23/settings%3Ftab=2?x=1");
}

TEST(Plausible, HashModeOffKeepsUrl) {
  auto r = ParsePlausibleEvent(
      R"({"n":"pageview","u":"https://e.com/#/a","d":"e.com","hashMode":false})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "https://e.com/#/a");
}

TEST(Plausible, HashModeRootPath) {
  auto r = ParsePlausibleEvent(
      R"({"n":"pageview","u":"https://e.com#/a","d":"e.com","h":true})", Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "https://e.com/%23/a");
}

TEST(Plausible, Engagement) {
  auto r = ParsePlausibleEvent(
      R"({"n":"engagement","u":"https://e.com/post","d":"e.com","r":null,)"
      R"("sd":62,"e":14250,"p":{"author":"x"}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.name, "engagement");
  EXPECT_FALSE(e.interactive);
  EXPECT_THAT(e.props, ElementsAre(Pair("author", "x"), Pair("sd", "62"),
                                   Pair("e", "14250")));
}

TEST(Plausible, NonInteractiveFlag) {
  auto r = ParsePlausibleEvent(
      R"({"n":"Outbound Link: Click","u":"https://e.com/","d":"e.com","i":false,)"
      R"("p":{"url":"https://other.org/"}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE((*r)[0].interactive);
}

TEST(Plausible, Errors) {
  ExpectError(ParsePlausibleEvent("[1]", Req()).status(), "body:");
  ExpectError(ParsePlausibleEvent("{", Req()).status(), "body: invalid JSON");
  ExpectError(
      ParsePlausibleEvent(R"({"u":"https://e.com/","d":"e.com"})", Req())
          .status(),
      "n: required");
  ExpectError(
      ParsePlausibleEvent(R"({"n":"pageview","d":"e.com"})", Req()).status(),
      "u: required");
  ExpectError(
      ParsePlausibleEvent(R"({"n":"pageview","u":"/a"})", Req()).status(),
      "d: required");
  ExpectError(
      ParsePlausibleEvent(R"({"n":5,"u":"https://e.com/","d":"e"})", Req())
          .status(),
      "n: expected a string");
  ExpectError(
      ParsePlausibleEvent(R"({"n":"x","url":7,"d":"e"})", Req()).status(),
      "url: expected a string");
  ExpectError(ParsePlausibleEvent(
                  R"({"n":"x","u":"https://e.com/","d":"e","i":"no"})", Req())
                  .status(),
              "i: expected a boolean");
  ExpectError(ParsePlausibleEvent(
                  R"({"n":"x","u":"https://e.com/","d":"e","w":"1"})", Req())
                  .status(),
              "w:");
  ExpectError(
      ParsePlausibleEvent(R"({"n":"x","u":"data:text/html,hi","d":"e"})", Req())
          .status(),
      "u: scheme");
  ExpectError(
      ParsePlausibleEvent(R"({"n":"x","u":"https://e.com/","d":" , "})", Req())
          .status(),
      "d: required");
}

TEST(Plausible, ValidationApplies) {
  std::string long_name(121, 'a');
  ExpectError(
      ParsePlausibleEvent(
          R"({"n":")" + long_name + R"(","u":"https://e.com/","d":"e"})", Req())
          .status(),
      "name:");
}

TEST(Plausible, TooManyPropsRejected) {
  std::string props;
  for (int i = 0; i < 31; ++i) {
    props +=
        (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":\"v\"";
  }
  ExpectError(ParsePlausibleEvent(R"({"n":"x","u":"https://e.com/","d":"e",)"
                                  R"("p":{)" +
                                      props + "}}",
                                  Req())
                  .status(),
              "props:");
}

// Member lookups as RapidJSON's FindMember makes them: the first member of
// the name (a null one counts as absent, and then the next alias is tried),
// names compared in full (length, every byte, escapes decoded, embedded NUL).
TEST(Plausible, MemberLookupFirstOfTheNameWins) {
  auto name_of = [](const std::string& members) -> std::string {
    auto r = ParsePlausibleEvent(
        absl::StrCat(R"({"u":"https://e.com/","d":"e.com",)", members, "}"),
        Req());
    if (!r.ok()) return std::string(r.status().message());
    return (*r)[0].name;
  };
  EXPECT_EQ(name_of(R"("n":"a","n":"b")"), "a");
  EXPECT_EQ(name_of(R"("name":"x","n":"y")"), "y");
  EXPECT_EQ(name_of(R"("n":null,"name":"x")"), "x");
  EXPECT_EQ(name_of(R"("n":null,"n":"b","name":"c")"), "c");
  EXPECT_EQ(name_of(R"("n":null,"n":"b")"), "n: required");
  EXPECT_EQ(name_of(R"("nn":"q","na":"r","n":"y")"), "y");
  EXPECT_EQ(name_of(R"("namf":"q","nam":"r","names":"s","name":"w")"), "w");
  EXPECT_EQ(name_of(R"("n\u0000":"z","":"e","N":"u","n":"y")"), "y");
  EXPECT_EQ(name_of(R"("\u006e":"esc","n":"y")"), "esc");
  EXPECT_EQ(name_of(R"("na\u006de":"esc2")"), "esc2");
  EXPECT_EQ(name_of(R"("x":1)"), "n: required");
}

// The DOM's memory starts in buffers on the stack (4 KiB of values, a 1 KiB
// parse stack) and grows onto the heap: bodies far bigger than both (long
// strings, hundreds of members, nesting near the limit, a big batch) parse
// in full, every value intact.
TEST(Plausible, BodiesBeyondTheStackBuffersParseInFull) {
  std::string unknown;  // 300 members the adapter ignores (the parse stack)
  for (int i = 0; i < 300; ++i) {
    absl::StrAppend(&unknown, ",\"x", i, "\":[", i, ",\"", std::string(40, 'y'),
                    "\"]");
  }
  std::string props;
  for (int i = 0; i < 30; ++i) {
    absl::StrAppend(&props, i ? "," : "", "\"k", i, "\":\"",
                    std::string(200 + i, static_cast<char>('a' + i % 26)),
                    "\"");
  }
  const std::string url = "https://example.com/" + std::string(1500, 'p');
  const std::string body =
      absl::StrCat(R"({"n":"Signup","u":")", url, R"(","d":"example.com",)",
                   R"("nested":)", std::string(30, '['), std::string(30, ']'),
                   unknown, R"(,"p":{)", props, "}}");
  ASSERT_GT(body.size(), 20000u);
  auto r = ParsePlausibleEvent(body, Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.name, "Signup");
  EXPECT_EQ(e.url, url);
  ASSERT_EQ(e.props.size(), 30u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(e.props[i].first, absl::StrCat("k", i));
    EXPECT_EQ(e.props[i].second,
              std::string(200 + i, static_cast<char>('a' + i % 26)));
  }

  std::string batch = "[";
  for (int i = 0; i < 200; ++i) {
    absl::StrAppend(&batch, i ? "," : "",
                    R"({"type":"event","payload":{"website":"AbCdEfGhIjKl",)",
                    R"("hostname":"a.b","url":"/p)", i, R"(","name":"e)", i,
                    R"("}})");
  }
  batch += "]";
  auto umami = ParseUmamiBatch(batch, Req());
  ASSERT_TRUE(umami.ok()) << umami.status();
  ASSERT_EQ(umami->size(), 200u);
  EXPECT_EQ((*umami)[199].name, "e199");
  EXPECT_THAT((*umami)[199].url, HasSubstr("/p199"));
}

// ------------------------------------------- Plausible: fast path vs full

// Every field of two results (or their statuses) is the same.
void ExpectSameEvents(const absl::StatusOr<std::vector<EventInput>>& got,
                      const absl::StatusOr<std::vector<EventInput>>& want,
                      const std::string& body) {
  SCOPED_TRACE(body);
  ASSERT_EQ(got.ok(), want.ok()) << got.status() << " vs " << want.status();
  if (!want.ok()) {
    EXPECT_EQ(got.status(), want.status());
    return;
  }
  ASSERT_EQ(got->size(), want->size());
  for (size_t i = 0; i < want->size(); ++i) {
    const EventInput& g = (*got)[i];
    const EventInput& w = (*want)[i];
    EXPECT_EQ(g.site, w.site);
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.url, w.url);
    EXPECT_EQ(g.referrer, w.referrer);
    EXPECT_EQ(g.ts, w.ts);
    EXPECT_EQ(g.ip, w.ip);
    EXPECT_EQ(g.user_agent, w.user_agent);
    EXPECT_EQ(g.props, w.props);
    EXPECT_EQ(g.screen_width, w.screen_width);
    EXPECT_EQ(g.locale, w.locale);
    EXPECT_EQ(g.timezone, w.timezone);
    EXPECT_EQ(g.country_hint, w.country_hint);
    EXPECT_EQ(g.interactive, w.interactive);
    EXPECT_EQ(g.imported, w.imported);
  }
}

// The fast path (where it answers) and ParsePlausibleEvent give exactly what
// the full parser gives. Counts the fast path's answers in *fast.
void ExpectPlausibleAgrees(const std::string& body, int* fast = nullptr,
                           const RequestInfo& req = Req()) {
  const absl::StatusOr<std::vector<EventInput>> want =
      trackers_internal::ParsePlausibleEventFull(body, req);
  ExpectSameEvents(ParsePlausibleEvent(body, req), want, body);
  std::optional<std::vector<EventInput>> got =
      trackers_internal::ParsePlausibleEventFast(body, req);
  if (!got.has_value()) return;
  if (fast != nullptr) ++*fast;
  ExpectSameEvents(*std::move(got), want, body);
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// `s` as the text of a JSON string: quotes and backslashes escaped (other
// bytes as they are).
std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// A random string value: mostly URL-ish ASCII, sometimes UTF-8 (valid or
// not), an escape, or a byte JSON must escape.
std::string RandomText(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces = {
      "a",       "Z",       "0",
      "/",       ".",       "-",
      "_",       "?",       "=",
      "&",       "#",       ":",
      ",",       " ",       "www.",
      "é",       "ключ",    "😀",
      "\xC3",    "\x80",    "\xFF",
      "\\\"",    "\\\\",    "\\/",
      "\\n",     "\\t",     "\\u00e9",
      "\\u0000", "\\ud83d", "\\x",
      "\x01",    "\x1F",    std::string(1, '\0')};
  std::string s;
  const int n = static_cast<int>(rng() % 24);
  const bool plain = rng() % 2 == 0;  // only the first 15 pieces (ASCII)
  for (int i = 0; i < n; ++i) {
    s += pieces[rng() % (plain ? 15 : pieces.size())];
  }
  return s;
}

// A random Plausible body: the known keys and their aliases (and near
// misses, unknown keys), in random order, maybe repeated, values of the
// right or a wrong type, whitespace or none between tokens.
std::string RandomPlausibleBody(std::mt19937_64& rng) {
  static const std::vector<std::string> keys = {
      "n",    "name",     "u",    "url",      "d",     "domain",
      "r",    "referrer", "h",    "hashMode", "i",     "interactive",
      "w",    "m",        "meta", "p",        "props", "sd",
      "e",    "nn",       "nam",  "urls",     "dd",    "ww",
      "x",    "",         "N",    "props2",   "s",     "ee",
      "hash", "ref"};
  auto ws = [&] {
    static const char* kWs[] = {"", "", "", "", " ", "\n", "\t ", "\r\n"};
    return std::string(kWs[rng() % 8]);
  };
  auto number = [&]() -> std::string {
    static const std::vector<std::string> special = {"0",
                                                     "-0",
                                                     "1",
                                                     "1.0",
                                                     "0.5",
                                                     "-1",
                                                     "1440",
                                                     "100000",
                                                     "100001",
                                                     "1e3",
                                                     "2.5e0",
                                                     "01",
                                                     "1.",
                                                     "-",
                                                     "123456789012345",
                                                     "1234567890123456",
                                                     "99999999999999999999",
                                                     "-9223372036854775809",
                                                     "0.30000000000000004",
                                                     "18446744073709551615"};
    if (rng() % 3 == 0) return special[rng() % special.size()];
    std::string n = rng() % 6 == 0 ? "-" : "";
    n += std::to_string(rng() % 200000);
    if (rng() % 3 == 0) n += "." + std::to_string(rng() % 1000);
    return n;
  };
  auto props = [&](int max) {
    std::string p = "{";
    const int n = static_cast<int>(rng() % max);
    for (int i = 0; i < n; ++i) {
      std::string v;
      switch (rng() % 8) {
        case 0:
          v = "null";
          break;
        case 1:
          v = rng() % 2 ? "true" : "false";
          break;
        case 2:
          v = number();
          break;
        case 3:
          v = rng() % 2 ? "{}" : "[1]";
          break;
        case 4:
          v = "\"\"";
          break;
        default:
          v = Quote(RandomText(rng));
      }
      absl::StrAppend(
          &p, i ? "," : "", ws(), "\"",
          rng() % 4 ? std::string(1, 'a' + rng() % 6) : RandomText(rng), "\"",
          ws(), ":", ws(), v, ws());
    }
    return p + "}";
  };
  auto value = [&](const std::string& key) -> std::string {
    const int kind = static_cast<int>(rng() % 16);
    switch (kind) {
      case 0:
        return "null";
      case 1:
        return rng() % 2 ? "true" : "false";
      case 2:
        return number();
      case 3:
        return props(rng() % 8 == 0 ? 40 : 5);
      case 4:
        return rng() % 2 ? "[]" : "{\"a\":{\"b\":[1]}}";
      case 5: {
        // Props as a JSON string (escaped quotes), sometimes with another
        // escape, valid or not, in it.
        std::string text = JsonEscape(props(6));
        if (rng() % 3 == 0) {
          static const char* kEscapes[] = {"\\u00e9", "\\u0000", "\\ud83d",
                                           "\\n",     "\\x",     "\\"};
          text.insert(rng() % (text.size() + 1), kEscapes[rng() % 6]);
        }
        return Quote(text);
      }
      case 6:
        return Quote(RandomText(rng));
      default:
        break;
    }
    // The right type, usually a realistic value.
    if (key == "n" || key == "name") {
      static const char* kNames[] = {"pageview", "engagement", "Signup", "",
                                     "Outbound Link: Click"};
      return Quote(kNames[rng() % 5]);
    }
    if (key == "u" || key == "url" || key == "r" || key == "referrer") {
      static const char* kUrls[] = {
          "https://example.com/blog?utm_source=x",
          "https://www.example.com/app#/settings?tab=1",
          "https://user@example.com:8080/a/b#frag",
          "http://[::1]:80/x#y#z",
          "/relative/path#h",
          "x#a://evil.com/p",
          "DATA:text/html,hi",
          "data:x",
          "https://example.com",
          "https://example.com#",
          ""};
      return Quote(kUrls[rng() % 11]);
    }
    if (key == "d" || key == "domain") {
      static const char* kDomains[] = {"example.com",
                                       "www.example.com",
                                       " a.com , www.b.com,c.com ",
                                       " , ",
                                       "",
                                       "a,b,c,d,e,f,g,h,i,j",
                                       "www.",
                                       "é.com"};
      return Quote(kDomains[rng() % 8]);
    }
    if (key == "h" || key == "hashMode") {
      static const char* kH[] = {"1", "0", "true", "false", "1.0", "2"};
      return kH[rng() % 6];
    }
    if (key == "i" || key == "interactive") return rng() % 2 ? "true" : "false";
    if (key == "w" || key == "sd" || key == "e") return number();
    if (key == "m" || key == "meta" || key == "p" || key == "props") {
      return props(rng() % 8 == 0 ? 40 : 6);
    }
    return Quote(RandomText(rng));
  };
  std::vector<std::string> members;
  // Usually a valid pageview or engagement event.
  if (rng() % 8 != 0) {
    members.push_back(rng() % 4 ? R"("n":"pageview")" : R"("n":"engagement")");
  }
  if (rng() % 8 != 0) {
    members.push_back(R"("u":"https://example.com/a?b=c#d")");
  }
  if (rng() % 4 != 0) members.push_back(R"("d":"example.com")");
  const int n = static_cast<int>(rng() % 8);
  for (int i = 0; i < n; ++i) {
    const std::string& key = keys[rng() % keys.size()];
    members.push_back(absl::StrCat(Quote(key), ws(), ":", ws(), value(key)));
  }
  std::shuffle(members.begin(), members.end(), rng);
  std::string body = ws() + "{";
  for (size_t i = 0; i < members.size(); ++i) {
    absl::StrAppend(&body, i ? "," : "", ws(), members[i], ws());
  }
  return body + "}" + ws();
}

// Bodies as the official tracker and the HTTP benchmark send them, and edge
// cases of the fast path's shape.
std::vector<std::string> PlausibleSeeds() {
  return {
      R"({"n":"pageview","u":"https://bench.test/blog/post-7?utm_source=newsletter","d":"bench.test","r":"https://www.google.com/","w":1440})",
      R"({"n":"pageview","u":"https://bench.test/blog/post-8?utm_source=newsletter","d":"bench.test","r":null,"w":1440})",
      R"({"n":"pageview","u":"https://example.com/app#/settings","d":"example.com","r":null,"w":1280,"h":1,"i":true,"p":{"plan":"pro","n":3,"x":2.5,"ok":false,"z":null,"e":""}})",
      R"({"n":"Signup","u":"https://example.com/","d":"example.com","r":null,"w":390,"m":"{\"plan\":\"pro\"}","p":{"a":"b"}})",
      R"({"n":"engagement","u":"https://example.com/a","d":"example.com","r":null,"sd":57,"e":12000,"h":0,"p":{}})",
      R"({"name":"pageview","url":"https://www.example.com/x","domain":"www.a.com, b.com","referrer":"https://r.com/","hashMode":true,"interactive":false,"props":{"k":"é"}})",
      " \t\r\n{ \"n\" : \"pageview\" , \"u\" : \"https://e.com/\" , \"p\" : { "
      "\"a\" : 1 } } \n",
      "\xEF\xBB\xBF{\"n\":\"pageview\",\"u\":\"https://e.com/\"}",
      R"({"n":"pageview","u":"https://e.com/","n":"x"})",
      R"({"n":null,"name":"x","u":"https://e.com/","x":[{"y":1}]})",
      R"({"n":"pageview","u":"https://e.com/"} x)",
      std::string(R"({"n":"pageview","u":"https://e.com/"})") + '\0',
      R"({"n":"pageview","u":"https://e.com/","w":1e3,"sd":1})",
      R"({"n":"pageview","u":"https://e.com/","m":1,"p":{"a":"b"}})",
      R"({})",
      "",
      "[]",
  };
}

// The benchmark's and the tracker's ordinary bodies take the fast path.
TEST(PlausibleFast, AnswersForOrdinaryBodies) {
  const std::vector<std::string> seeds = PlausibleSeeds();
  for (int i : {0, 1, 2, 4, 5, 6}) {
    EXPECT_TRUE(
        trackers_internal::ParsePlausibleEventFast(seeds[i], Req()).has_value())
        << seeds[i];
  }
  for (const std::string& seed : seeds) ExpectPlausibleAgrees(seed);
}

// Random bodies (every key and alias, every value type in every position,
// duplicates, unknown keys, whitespace, escapes, invalid UTF-8, big props):
// wherever the fast path answers it agrees with the full parser.
TEST(PlausibleFast, AgreesOnRandomBodies) {
  std::mt19937_64 rng(41);
  int fast = 0;
  const int n = 60000;
  for (int i = 0; i < n; ++i) {
    ExpectPlausibleAgrees(RandomPlausibleBody(rng), &fast);
    if (HasFailure()) return;
  }
  EXPECT_GT(fast, n / 8);
}

// Random byte changes and cuts of the seeds.
TEST(PlausibleFast, AgreesOnMutatedBodies) {
  const std::vector<std::string> seeds = PlausibleSeeds();
  std::mt19937_64 rng(43);
  const std::string alphabet =
      std::string("\"\\{}[],:0123456789eE.+- \t\r\nntrufals#,w\x01\x1F\x7F") +
      std::string("\x80\xBF\xC3\xA9\xE2\xED\xF0\xF4\xFF\0", 10);
  int fast = 0;
  for (int i = 0; i < 60000; ++i) {
    std::string s = testing_json::RandomEdits(seeds[rng() % 7], alphabet, rng);
    ExpectPlausibleAgrees(s, &fast);
    if (HasFailure()) return;
  }
  EXPECT_GT(fast, 6000);
}

// Every prefix of the seeds and of random bodies.
TEST(PlausibleFast, AgreesOnEveryPrefix) {
  std::vector<std::string> bodies = PlausibleSeeds();
  std::mt19937_64 rng(47);
  for (int i = 0; i < 100; ++i) bodies.push_back(RandomPlausibleBody(rng));
  for (const std::string& body : bodies) {
    for (size_t n = 0; n <= body.size(); ++n) {
      ExpectPlausibleAgrees(body.substr(0, n));
      if (HasFailure()) return;
    }
  }
}

// Props at and past the limits (30 props, 32 in the fast path's table; long
// keys and values), long URLs (past the padded copy's stack buffer), many
// domains, a non-ASCII or invalid byte in every string.
TEST(PlausibleFast, AgreesAtTheLimits) {
  for (int count : {0, 1, 29, 30, 31, 32, 33, 40}) {
    std::string p;
    for (int i = 0; i < count; ++i) {
      absl::StrAppend(&p, i ? "," : "", "\"k", i, "\":", i % 3 ? "\"v\"" : "1");
    }
    for (const char* key : {"p", "props", "m", "meta"}) {
      ExpectPlausibleAgrees(
          absl::StrCat(R"({"n":"x","u":"https://e.com/","d":"e.com",")", key,
                       "\":{", p, "}}"));
      ExpectPlausibleAgrees(absl::StrCat(
          R"({"n":"engagement","u":"https://e.com/","sd":1,"e":2,"p":{)", p,
          "}}"));
    }
  }
  for (size_t len : {299, 300, 301, 1999, 2000, 2001, 2100, 5000}) {
    const std::string big(len, 'a');
    ExpectPlausibleAgrees(absl::StrCat(
        R"({"n":"x","u":"https://e.com/","p":{")", big, R"(":"v"}})"));
    ExpectPlausibleAgrees(absl::StrCat(
        R"({"n":"x","u":"https://e.com/","p":{"k":")", big, R"("}})"));
    ExpectPlausibleAgrees(absl::StrCat(R"({"n":"x","u":"https://e.com/)", big,
                                       R"(","r":"https://r.com/)", big, "\"}"));
    ExpectPlausibleAgrees(absl::StrCat(R"({"n":")", std::string(len / 16, 'n'),
                                       R"(","u":"https://e.com/","d":")", big,
                                       "\"}"));
  }
  std::string domains;
  for (int i = 0; i < 12; ++i) {
    absl::StrAppend(&domains, i ? "," : "", "d", i, ".com");
    ExpectPlausibleAgrees(
        absl::StrCat(R"({"n":"x","u":"https://e.com/","p":{"a":"b"},"d":")",
                     domains, "\"}"));
  }
  for (const std::string& bad :
       {std::string("é"), std::string("\xC3"), std::string("\xFF"),
        std::string("\xED\xA0\x80")}) {
    for (const char* field : {"n", "u", "d", "r"}) {
      ExpectPlausibleAgrees(
          absl::StrCat(R"({"n":"x","u":"https://e.com/","d":"e.com",")", field,
                       R"(":"https://x)", bad, "y.com/\"}"));
    }
    ExpectPlausibleAgrees(
        absl::StrCat(R"({"n":"x","u":"https://e.com/","p":{"k)", bad, R"(":"v)",
                     bad, R"("}})"));
  }
}

// Numbers the fast path parses itself (-?(0|[1-9]\d*)(\.\d+)?, at most 15
// digits) and their neighbours (more digits, exponents, malformed) in every
// numeric position (w, h, a prop value whose text shows every bit of the
// double, the engagement's sd and e): the same as the full parser's.
TEST(PlausibleFast, AgreesOnNumbers) {
  std::mt19937_64 rng(53);
  const std::vector<std::string> numbers = testing_json::NumberTexts(3000, rng);
  int fast = 0;
  for (const std::string& n : numbers) {
    for (const std::string& body : {
             absl::StrCat(R"({"n":"x","u":"https://e.com/","w":)", n, "}"),
             absl::StrCat(R"({"n":"x","u":"https://e.com/#f","h":)", n, "}"),
             absl::StrCat(R"({"n":"x","u":"https://e.com/","p":{"k":)", n,
                          "}}"),
             absl::StrCat(R"({"n":"engagement","u":"https://e.com/","sd":)", n,
                          R"(,"e":)", n, "}"),
         }) {
      ExpectPlausibleAgrees(body, &fast);
      if (HasFailure()) return;
    }
  }
  EXPECT_GT(fast, 4000);
}

// URLs and domains: hash mode on and off, with and without "d" (then the
// host of the URL as the event has it), "www." and commas, data: URLs.
TEST(PlausibleFast, AgreesOnUrlsAndDomains) {
  const std::vector<std::string> urls = {
      "https://example.com/blog?utm_source=x",
      "https://www.example.com/app#/settings?tab=1",
      "https://user@www.example.com:8080/a/b#frag",
      "http://[::1]:80/x#y#z",
      "https://a.com?x#y://b.com/",
      "/relative/path#h",
      "x#a://evil.com/p",
      "x#",
      "DATA:text/html,hi",
      " data:x",
      "https://example.com",
      "https://example.com#",
      "https://" + std::string(1990, 'h') + ".com/#f",
      ""};
  const std::vector<std::string> hs = {"", "\"h\":1,", "\"h\":0,",
                                       "\"hashMode\":true,", "\"h\":null,"};
  const std::vector<std::string> ds = {"",
                                       R"(,"d":"example.com")",
                                       R"(,"domain":"www.a.com, b.com,,")",
                                       R"(,"d":" , ")",
                                       R"(,"d":null)",
                                       R"(,"d":"www.")"};
  int fast = 0;
  for (const std::string& url : urls) {
    for (const std::string& h : hs) {
      for (const std::string& d : ds) {
        ExpectPlausibleAgrees(absl::StrCat(R"({"n":"pageview",)", h, R"("u":")",
                                           url, "\"", d, "}"),
                              &fast);
      }
    }
  }
  EXPECT_GT(fast, 150);
  // The fragment's "://" makes a host in hash mode only (the full parser
  // splits the URL as the event has it).
  auto r = trackers_internal::ParsePlausibleEventFast(
      R"({"n":"pageview","u":"x#a://evil.com/p","h":1})", Req());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)[0].site, "evil.com");
}

// The request's strings are validated too (the fast path skips the UTF-8
// checks only when they and the body are ASCII).
TEST(PlausibleFast, AgreesOnNonAsciiRequests) {
  const std::vector<std::string> bodies = {
      R"({"n":"pageview","u":"https://e.com/","d":"e.com"})",
      R"({"n":"pageview","u":"https://e.com/é","d":"e.com"})"};
  int fast = 0;
  for (const std::string& bad : {std::string("é"), std::string("\xC3"),
                                 std::string("\xFF"), std::string("a")}) {
    for (int field = 0; field < 3; ++field) {
      RequestInfo req = Req();
      std::string* s = field == 0   ? &req.ip
                       : field == 1 ? &req.user_agent
                                    : &req.country_hint;
      *s += bad;
      for (const std::string& body : bodies) {
        ExpectPlausibleAgrees(body, &fast, req);
      }
    }
  }
  EXPECT_EQ(fast, 12);  // valid ones ("é", "a"): 2 x 3 fields x 2 bodies
}

// Props as a JSON string (the tracker's "m"), escapes unescaped as the DOM
// unescapes them, the inner text parsed as the full parser parses it.
TEST(PlausibleFast, AgreesOnPropsAsJsonString) {
  const std::vector<std::string> inner = {
      R"({\"plan\":\"pro\",\"trial\":true,\"n\":3,\"x\":2.5e1,\"z\":null})",
      R"({\"k\":\"caf\u00e9\",\"\u00e9\":\"v\"})",
      R"({\"k\":\"\ud83d\ude00\"})", R"({\"k\":\"\ud83d\"})",
      R"({\"k\":\"a\u0000b\"})", R"({\"k\":\"\\\"quoted\\\"\"})",
      R"({\"k\":\")" + std::string("\xC3") + R"(\"})",
      // (Past the 16 bytes the plain string scan loads before the escape.)
      R"({\"k\":\")" + std::string(40, 'a') + "\xC3" + R"(\"})",
      R"({\"k)" + std::string(40, 'a') + "\xFF" + R"(\":\"v\"})",
      R"({\"k\":{\"nested\":[1]},\"l\":[1,2],\"e\":\"\"})",
      R"({\"k\":)" + std::string(40, '[') + std::string(40, ']') + "}",
      R"([\"not\",\"an\",\"object\"])", R"({\"k\":)", R"({\"k\":\"v\"} x)",
      R"({\"k\":\"v\"\n})", R"({\"k\":\"v\x)", R"({\"k\":\"v\u12)", R"({})",
      R"({ })", R"(x)", R"()"};
  int fast = 0;
  for (const std::string& text : inner) {
    for (const char* key : {"m", "meta", "p", "props"}) {
      ExpectPlausibleAgrees(
          absl::StrCat(R"({"n":"Signup","u":"https://e.com/","d":"e.com",")",
                       key, R"(":")", text, "\"}"),
          &fast);
      // The first present alias wins; a second escaped string is left to
      // the full parser.
      ExpectPlausibleAgrees(
          absl::StrCat(R"({"n":"Signup","u":"https://e.com/",")", key, R"(":")",
                       text, R"(","props":"{\"a\":\"b\"}","p":{"c":"d"}})"),
          &fast);
      ExpectPlausibleAgrees(
          absl::StrCat(R"({"n":"engagement","u":"https://e.com/","sd":5,")",
                       key, R"(":")", text, R"(","h":1})"),
          &fast);
    }
  }
  EXPECT_GT(fast, 60);
  EXPECT_TRUE(
      trackers_internal::ParsePlausibleEventFast(
          R"({"n":"Signup","u":"https://e.com/","m":"{\"plan\":\"pro\"}"})",
          Req())
          .has_value());
}

TEST(Swetrix, UtmValuesArePercentEncoded) {
  auto r =
      ParseSwetrix(SwetrixKind::kPageview,
                   R"({"pid":"STEzHcB1rALV","pg":"/a#x","so":"a&b=c"})", Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "/a?utm_source=a%26b%3Dc#x");
}

TEST(Umami, FullUrlKeptWhenHostnameDiffers) {
  auto r = ParseUmamiSend(
      R"({"type":"event","payload":{"website":"w","hostname":"a.com",)"
      R"("url":"https://b.com/x"}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "https://b.com/x");
}

// ------------------------------------------------------------------ Swetrix

TEST(Swetrix, PageviewAsTrackerSendsIt) {
  // swetrix-js Lib.submitPageView: POST ${apiURL}/ with these fields.
  auto r = ParseSwetrix(
      SwetrixKind::kPageview,
      R"({"lc":"en-GB","tz":"Europe/London","ref":"https://www.google.com/",)"
      R"("so":"newsletter","me":"email","ca":"spring sale","pg":"/pricing",)"
      R"("prev":null,"pid":"STEzHcB1rALV","perf":{},"unique":false})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.site, "STEzHcB1rALV");
  EXPECT_EQ(e.name, "pageview");
  EXPECT_EQ(e.url,
            "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign="
            "spring%20sale");
  EXPECT_EQ(e.referrer, "https://www.google.com/");
  EXPECT_EQ(e.locale, "en-GB");
  EXPECT_EQ(e.timezone, "Europe/London");
  EXPECT_EQ(e.ip, "203.0.113.9");
  EXPECT_EQ(e.ts, Req().now);
}

TEST(Swetrix, PageviewTermContentQueryAndMeta) {
  auto r = ParseSwetrix(
      SwetrixKind::kPageview,
      R"({"pid":"STEzHcB1rALV","pg":"/a","qs":"?q=1","te":"shoes","co":"b",)"
      R"("meta":{"plan":"pro","n":3,"b":true}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "/a?q=1&utm_term=shoes&utm_content=b");
  EXPECT_THAT((*r)[0].props, ElementsAre(Pair("plan", "pro"), Pair("n", "3"),
                                         Pair("b", "true")));
}

TEST(Swetrix, PageviewWithoutPageIsRoot) {
  auto r = ParseSwetrix(SwetrixKind::kPageview,
                        R"({"pid":"STEzHcB1rALV","pg":null})", Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "/");
}

TEST(Swetrix, PerfProducesExtraEvent) {
  auto r = ParseSwetrix(
      SwetrixKind::kPageview,
      R"({"pid":"STEzHcB1rALV","pg":"/","perf":{"dns":1.2,"tls":10,"conn":5.5,)"
      R"("response":3,"render":120.4,"dom_load":80,"page_load":410.6,"ttfb":22}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  const EventInput& p = (*r)[1];
  EXPECT_EQ(p.name, "perf");
  EXPECT_FALSE(p.interactive);
  EXPECT_EQ(p.url, "/");
  EXPECT_THAT(p.props,
              ElementsAre(Pair("dns", "1"), Pair("tls", "10"),
                          Pair("conn", "6"), Pair("response", "3"),
                          Pair("render", "120"), Pair("dom_load", "80"),
                          Pair("page_load", "411"), Pair("ttfb", "22")));
}

TEST(Swetrix, CustomEvent) {
  // swetrix-js Lib.track: {...event, pid, pg, lc, tz, ref, so, me, ca}.
  auto r = ParseSwetrix(
      SwetrixKind::kCustom,
      R"({"ev":"signup","unique":true,"meta":{"plan":"team"},)"
      R"("pid":"STEzHcB1rALV","pg":"/join","lc":"de-DE","tz":"Europe/Berlin",)"
      R"("ref":null,"so":null,"me":null,"ca":null})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "signup");
  EXPECT_EQ((*r)[0].url, "/join");
  EXPECT_THAT((*r)[0].props, ElementsAre(Pair("plan", "team")));
}

TEST(Swetrix, Heartbeat) {
  auto r =
      ParseSwetrix(SwetrixKind::kHeartbeat, R"({"pid":"STEzHcB1rALV"})", Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].site, "STEzHcB1rALV");
  EXPECT_EQ((*r)[0].ip, "203.0.113.9");
}

TEST(Swetrix, Error) {
  // swetrix-js Lib.submitError: {pg, lc, tz, filename, lineno, colno, name,
  // message, pid}.
  std::string stack(3000, 's');
  auto r = ParseSwetrix(
      SwetrixKind::kError,
      R"({"pg":"/checkout","lc":"en-US","tz":"America/New_York",)"
      R"("filename":"https://e.com/app.js","lineno":42,"colno":7,)"
      R"("name":"TypeError","message":"x is undefined","stackTrace":")" +
          stack + R"(","pid":"STEzHcB1rALV","meta":{"release":"1.2"}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.name, "error");
  EXPECT_FALSE(e.interactive);
  EXPECT_EQ(e.url, "/checkout");
  EXPECT_EQ(e.locale, "en-US");
  ASSERT_EQ(e.props.size(), 7u);
  EXPECT_THAT(e.props[0], Pair("name", "TypeError"));
  EXPECT_THAT(e.props[1], Pair("message", "x is undefined"));
  EXPECT_THAT(e.props[2], Pair("lineno", "42"));
  EXPECT_THAT(e.props[3], Pair("colno", "7"));
  EXPECT_THAT(e.props[4], Pair("filename", "https://e.com/app.js"));
  EXPECT_EQ(e.props[5].first, "stackTrace");
  EXPECT_EQ(e.props[5].second.size(), kMaxPropValueBytes);
  EXPECT_THAT(e.props[6], Pair("release", "1.2"));
}

TEST(Swetrix, Noscript) {
  std::multimap<std::string, std::string> q = {{"pid", "STEzHcB1rALV"},
                                               {"pg", "/no-js"},
                                               {"lc", "fr-FR"},
                                               {"so", "rss"}};
  auto r = ParseSwetrixNoscript(q, Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].name, "pageview");
  EXPECT_EQ((*r)[0].url, "/no-js?utm_source=rss");
  EXPECT_EQ((*r)[0].locale, "fr-FR");
  ExpectError(ParseSwetrixNoscript({}, Req()).status(), "pid: required");
}

TEST(Swetrix, Errors) {
  ExpectError(ParseSwetrix(SwetrixKind::kPageview, "\"x\"", Req()).status(),
              "body:");
  ExpectError(
      ParseSwetrix(SwetrixKind::kPageview, R"({"pg":"/"})", Req()).status(),
      "pid: required");
  ExpectError(ParseSwetrix(SwetrixKind::kPageview, R"({"pid":"short"})", Req())
                  .status(),
              "pid: must be 12 characters of [a-zA-Z0-9-]");
  ExpectError(
      ParseSwetrix(SwetrixKind::kPageview, R"({"pid":"STEzHcB1rAL_"})", Req())
          .status(),
      "pid: must be");
  ExpectError(
      ParseSwetrix(SwetrixKind::kPageview, R"({"pid":123})", Req()).status(),
      "pid: expected a string");
  ExpectError(
      ParseSwetrix(SwetrixKind::kCustom, R"({"pid":"STEzHcB1rALV"})", Req())
          .status(),
      "ev: required");
  ExpectError(
      ParseSwetrix(SwetrixKind::kCustom,
                   R"({"pid":"STEzHcB1rALV","ev":"a","meta":[1]})", Req())
          .status(),
      "meta: expected an object");
  ExpectError(
      ParseSwetrix(SwetrixKind::kCustom,
                   R"({"pid":"STEzHcB1rALV","ev":"a","meta":{"x":{}}})", Req())
          .status(),
      "meta.x:");
  ExpectError(ParseSwetrix(SwetrixKind::kPageview,
                           R"({"pid":"STEzHcB1rALV","lc":5})", Req())
                  .status(),
              "lc: expected a string");
  ExpectError(
      ParseSwetrix(SwetrixKind::kPageview,
                   R"({"pid":"STEzHcB1rALV","perf":{"dns":"1"}})", Req())
          .status(),
      "perf.dns:");
  ExpectError(
      ParseSwetrix(SwetrixKind::kError, R"({"pid":"STEzHcB1rALV"})", Req())
          .status(),
      "name: required");
  ExpectError(ParseSwetrix(SwetrixKind::kHeartbeat, R"({})", Req()).status(),
              "pid: required");
}

// -------------------------------------------------------------------- Umami

TEST(Umami, PageviewAsTrackerSendsIt) {
  // src/tracker/index.js: send({type:"event", payload:getPayload()}).
  auto r = ParseUmamiSend(
      R"({"type":"event","payload":{"website":"4fb7fa4c-5b46-438d-94b3-3a8fb9bc2e8b",)"
      R"("screen":"1920x1080","language":"en-US","title":"Docs",)"
      R"("hostname":"docs.example.com","url":"https://docs.example.com/start?a=1",)"
      R"("referrer":"https://duckduckgo.com/","tag":null,"id":null}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.site, "4fb7fa4c-5b46-438d-94b3-3a8fb9bc2e8b");
  EXPECT_EQ(e.name, "pageview");
  EXPECT_EQ(e.url, "https://docs.example.com/start?a=1");
  EXPECT_EQ(e.referrer, "https://duckduckgo.com/");
  EXPECT_EQ(e.screen_width, 1920);
  EXPECT_EQ(e.locale, "en-US");
  EXPECT_EQ(e.ts, Req().now);
}

TEST(Umami, PathUrlCombinedWithHostname) {
  auto r = ParseUmamiSend(
      R"({"type":"event","payload":{"website":"w1","hostname":"e.com",)"
      R"("url":"/a/b?x=1","referrer":"/from"}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].url, "https://e.com/a/b?x=1");
  EXPECT_EQ((*r)[0].referrer, "https://e.com/from");
}

TEST(Umami, CustomEventWithData) {
  auto r = ParseUmamiSend(
      R"({"type":"event","payload":{"website":"w1","hostname":"e.com",)"
      R"("url":"/","name":"signup-button","data":{"plan":"pro","seats":5,)"
      R"("trial":false,"tags":["a","b"],"user":{"age":3},"none":null}}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  const EventInput& e = (*r)[0];
  EXPECT_EQ(e.name, "signup-button");
  EXPECT_THAT(e.props,
              ElementsAre(Pair("plan", "pro"), Pair("seats", "5"),
                          Pair("trial", "false"), Pair("tags", R"(["a","b"])"),
                          Pair("user", R"({"age":3})")));
}

TEST(Umami, IdentifyIsIgnored) {
  auto r = ParseUmamiSend(
      R"({"type":"identify","payload":{"website":"w1","id":"user-7",)"
      R"("data":{"email":"x"}}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, IsEmpty());
}

TEST(Umami, Batch) {
  auto r = ParseUmamiBatch(
      R"([{"type":"event","payload":{"website":"w1","hostname":"e.com","url":"/a"}},)"
      R"({"type":"identify","payload":{"website":"w1","id":"u"}},)"
      R"({"type":"event","payload":{"website":"w1","hostname":"e.com","url":"/b",)"
      R"("name":"click"}}])",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].url, "https://e.com/a");
  EXPECT_EQ((*r)[1].name, "click");
}

TEST(Umami, BatchErrorNamesIndex) {
  auto r = ParseUmamiBatch(
      R"([{"type":"event","payload":{"website":"w1","url":"/a"}},)"
      R"({"type":"event","payload":{"url":"/b"}}])",
      Req());
  ExpectError(r.status(), "[1].payload.website: required");
  ExpectError(ParseUmamiBatch(R"({"type":"event"})", Req()).status(),
              "body: expected a JSON array");
}

TEST(Umami, Errors) {
  ExpectError(ParseUmamiSend("[]", Req()).status(), "body:");
  ExpectError(ParseUmamiSend(R"({"payload":{"website":"w"}})", Req()).status(),
              "type: required");
  ExpectError(
      ParseUmamiSend(R"({"type":"bogus","payload":{}})", Req()).status(),
      "type: unknown value");
  ExpectError(ParseUmamiSend(R"({"type":"event"})", Req()).status(),
              "payload: required");
  ExpectError(ParseUmamiSend(R"({"type":"event","payload":{"url":"/"}})", Req())
                  .status(),
              "payload.website: required");
  ExpectError(
      ParseUmamiSend(R"({"type":"event","payload":{"website":"w"}})", Req())
          .status(),
      "payload.url: required");
  ExpectError(
      ParseUmamiSend(R"({"type":"event","payload":{"website":"w","url":"/",)"
                     R"("data":"x"}})",
                     Req())
          .status(),
      "payload.data: expected an object");
  ExpectError(
      ParseUmamiSend(R"({"type":"event","payload":{"website":"w","url":"/",)"
                     R"("screen":1920}})",
                     Req())
          .status(),
      "payload.screen: expected a string");
}

TEST(Umami, BadScreenIsUnknown) {
  auto r = ParseUmamiSend(
      R"({"type":"event","payload":{"website":"w","url":"https://e.com/",)"
      R"("screen":"wide"}})",
      Req());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].screen_width, 0);
}

}  // namespace
}  // namespace analytics
