#include "libanalytics/ingest/trackers.h"

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "analytics/event.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

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
