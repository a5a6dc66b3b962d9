#include <algorithm>
#include <cmath>
#include <iomanip>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "analytics/event.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libanalytics/ingest/canonical_internal.h"
#include "libanalytics/ingest/json_testing.h"

namespace analytics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s),
                         absl::UTCTimeZone());
}

EventInput Valid() {
  EventInput in;
  in.site = "example.com";
  in.url = "https://example.com/a";
  return in;
}

// Expects InvalidArgument whose message starts with `prefix`.
void ExpectError(const absl::Status& s, absl::string_view prefix) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), StartsWith(std::string(prefix)));
}
void ExpectJsonError(absl::string_view json, absl::string_view prefix) {
  SCOPED_TRACE(json);
  ExpectError(
      ParseEventJson(std::string_view(json.data(), json.size())).status(),
      prefix);
}
// A JSON event with `extra` spliced in after the required fields.
std::string Json(absl::string_view extra) {
  std::string j = R"({"site":"example.com","url":"https://example.com/a")";
  if (!extra.empty()) absl::StrAppend(&j, ",", extra);
  j += "}";
  return j;
}
absl::StatusOr<EventInput> ParseWith(absl::string_view extra) {
  return ParseEventJson(Json(extra));
}
std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

TEST(CanonicalTest, FullEvent) {
  absl::StatusOr<EventInput> in = ParseEventJson(R"({
    "site":"example.com","name":"signup","url":"https://example.com/a?x=1",
    "referrer":"https://google.com/","ts":1790812840.5,"ip":"203.0.113.9",
    "user_agent":"Mozilla/5.0","props":{"plan":"pro","seats":3,"ratio":2.5,
    "trial":true,"gone":null},"screen_width":1440,"locale":"en-US",
    "timezone":"Europe/Berlin","country":"DE","interactive":false,
    "imported":true,"unknown_key":{"nested":[1,2,3]}})");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->site, "example.com");
  EXPECT_EQ(in->name, "signup");
  EXPECT_EQ(in->url, "https://example.com/a?x=1");
  EXPECT_EQ(in->referrer, "https://google.com/");
  ASSERT_TRUE(in->ts.has_value());
  EXPECT_EQ(*in->ts, absl::FromUnixMillis(1790812840500));
  EXPECT_EQ(in->ip, "203.0.113.9");
  EXPECT_EQ(in->user_agent, "Mozilla/5.0");
  EXPECT_THAT(in->props,
              ElementsAre(Pair("plan", "pro"), Pair("seats", "3"),
                          Pair("ratio", "2.5"), Pair("trial", "true")));
  EXPECT_EQ(in->screen_width, 1440);
  EXPECT_EQ(in->locale, "en-US");
  EXPECT_EQ(in->timezone, "Europe/Berlin");
  EXPECT_EQ(in->country_hint, "DE");
  EXPECT_FALSE(in->interactive);
  EXPECT_TRUE(in->imported);
}

TEST(CanonicalTest, MinimalEventDefaults) {
  absl::StatusOr<EventInput> in = ParseWith("");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->name, "pageview");
  EXPECT_FALSE(in->ts.has_value());
  EXPECT_TRUE(in->props.empty());
  EXPECT_EQ(in->screen_width, 0);
  EXPECT_TRUE(in->interactive);
  EXPECT_FALSE(in->imported);
  EXPECT_TRUE(ValidateEventInput(Valid()).ok());
}

TEST(CanonicalTest, NullMeansAbsent) {
  absl::StatusOr<EventInput> in = ParseWith(
      R"("name":null,"ts":null,"props":null,"referrer":null,"interactive":null)");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->name, "pageview");
  EXPECT_FALSE(in->ts.has_value());
}

TEST(CanonicalTest, MissingRequiredFields) {
  ExpectJsonError(R"({"url":"https://example.com/"})", "site: required");
  ExpectJsonError(R"({"site":"example.com"})", "url: required");
  ExpectJsonError(R"({"site":"","url":"https://example.com/"})",
                  "site: required");
  ExpectJsonError(Json(R"("name":"")"), "name: empty");
}

TEST(CanonicalTest, InvalidJson) {
  ExpectJsonError("", "body: invalid JSON at offset 0: ");
  ExpectJsonError(R"({"site":)", "body: invalid JSON at offset 8: ");
  ExpectJsonError(R"({"site":"a"} x)", "body: invalid JSON at offset ");
  ExpectJsonError(R"({"site":"a",})", "body: invalid JSON at offset ");
  ExpectError(ParseEventJson(R"({"a":1)").status(), "body: invalid JSON");
  EXPECT_THAT(std::string(ParseEventJson("{").status().message()),
              HasSubstr("Missing a name for object member."));
}

// Deep nesting is refused before it costs stack (the reader recurses per
// level; 64 KiB of '[' overflowed an ASan build's stack in fuzzing).
TEST(CanonicalTest, DeepNestingIsRefused) {
  const std::string ok = absl::StrCat(
      R"({"site":"a.b","name":"pageview","url":"https://a.b/","x":)",
      std::string(30, '['), std::string(30, ']'), "}");
  EXPECT_TRUE(ParseEventJson(ok).ok()) << ParseEventJson(ok).status();
  const std::string deep = absl::StrCat(
      R"({"site":"a.b","name":"pageview","url":"https://a.b/","x":)",
      std::string(40, '['), std::string(40, ']'), "}");
  ExpectError(ParseEventJson(deep).status(),
              "body: nested deeper than 32 levels");
  ExpectError(ParseEventJson(std::string(65000, '[')).status(),
              "body: nested deeper than 32 levels");
}

TEST(CanonicalTest, TopLevelMustBeObject) {
  ExpectJsonError("[]", "body: expected a JSON object");
  ExpectJsonError("\"x\"", "body: expected a JSON object");
  ExpectJsonError("42", "body: expected a JSON object");
  ExpectJsonError("null", "body: expected a JSON object");
}

TEST(CanonicalTest, WrongTypes) {
  ExpectJsonError(R"({"site":1,"url":"u"})", "site: expected a string");
  ExpectJsonError(Json(R"("name":5)"), "name: expected a string");
  ExpectJsonError(Json(R"("url":["x"])"), "url: expected a string");
  ExpectJsonError(Json(R"("referrer":{})"), "referrer: expected a string");
  ExpectJsonError(Json(R"("ip":true)"), "ip: expected a string");
  ExpectJsonError(Json(R"("user_agent":1)"), "user_agent: expected a string");
  ExpectJsonError(Json(R"("locale":1)"), "locale: expected a string");
  ExpectJsonError(Json(R"("timezone":1)"), "timezone: expected a string");
  ExpectJsonError(Json(R"("country":1)"), "country: expected a string");
  ExpectJsonError(Json(R"("interactive":"yes")"),
                  "interactive: expected a boolean");
  ExpectJsonError(Json(R"("imported":1)"), "imported: expected a boolean");
  ExpectJsonError(Json(R"("props":[1])"), "props: expected an object");
  ExpectJsonError(Json(R"("props":"a=b")"), "props: expected an object");
  ExpectJsonError(Json(R"("screen_width":"1440")"),
                  "screen_width: expected an integer");
  ExpectJsonError(Json(R"("screen_width":14.5)"),
                  "screen_width: expected an integer");
  ExpectJsonError(Json(R"("ts":true)"),
                  "ts: not a number or ISO 8601 date-time");
  ExpectJsonError(Json(R"("ts":{})"), "ts: not a number or ISO 8601 date-time");
}

TEST(CanonicalTest, UnknownKeysIgnored) {
  absl::StatusOr<EventInput> in =
      ParseWith(R"("foo":1,"bar":{"x":[null]},"nam":3,"props_x":[])");
  ASSERT_TRUE(in.ok()) << in.status();
}

TEST(CanonicalTest, NumericTimestamps) {
  absl::StatusOr<EventInput> in = ParseWith(R"("ts":1767225600)");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(*in->ts, Utc(2026, 1, 1));
  in = ParseWith(R"("ts":1767225600.25)");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(*in->ts, Utc(2026, 1, 1) + absl::Milliseconds(250));
  in = ParseWith(R"("ts":946684800)");  // 2000-01-01T00:00:00Z
  ASSERT_TRUE(in.ok()) << in.status();
  in = ParseWith(R"("ts":4133980799.5)");  // last moment of 2100
  ASSERT_TRUE(in.ok()) << in.status();
}

TEST(CanonicalTest, NumericTimestampOutOfRange) {
  ExpectJsonError(Json(R"("ts":946684799)"), "ts: out of range");
  ExpectJsonError(Json(R"("ts":4133980800)"), "ts: out of range");
  ExpectJsonError(Json(R"("ts":1767225600000)"), "ts: out of range");  // ms
  ExpectJsonError(Json(R"("ts":-1)"), "ts: out of range");
  ExpectJsonError(Json(R"("ts":1e400)"), "body: invalid JSON");
}

TEST(CanonicalTest, IsoTimestamps) {
  struct Case {
    const char* text;
    absl::Time want;
  };
  const Case cases[] = {
      {"2026-01-02T03:04:05Z", Utc(2026, 1, 2, 3, 4, 5)},
      {"2026-01-02t03:04:05z", Utc(2026, 1, 2, 3, 4, 5)},
      {"2026-01-02T03:04:05.250Z",
       Utc(2026, 1, 2, 3, 4, 5) + absl::Milliseconds(250)},
      {"2026-01-02T03:04:05+02:00", Utc(2026, 1, 2, 1, 4, 5)},
      {"2026-01-02T03:04:05-05:30", Utc(2026, 1, 2, 8, 34, 5)},
      {"2026-01-02T03:04:05+0200", Utc(2026, 1, 2, 1, 4, 5)},
      {"2026-01-02T03:04:05", Utc(2026, 1, 2, 3, 4, 5)},
      {"2026-01-02T03:04:05.123456",
       Utc(2026, 1, 2, 3, 4, 5) + absl::Microseconds(123456)},
      {"2026-01-02T03:04Z", Utc(2026, 1, 2, 3, 4)},
      {"2026-01-02T03:04", Utc(2026, 1, 2, 3, 4)},
      {"2026-01-02 03:04:05", Utc(2026, 1, 2, 3, 4, 5)},
      {"2026-01-02", Utc(2026, 1, 2)},
      {"2000-01-01T00:00:00Z", Utc(2000, 1, 1)},
      {"2100-12-31T23:59:59Z", Utc(2100, 12, 31, 23, 59, 59)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<EventInput> in =
        ParseWith(absl::StrCat(R"("ts":)", Quoted(c.text)));
    ASSERT_TRUE(in.ok()) << c.text << ": " << in.status();
    EXPECT_EQ(*in->ts, c.want) << c.text;
  }
}

TEST(CanonicalTest, BadIsoTimestamps) {
  for (const char* text :
       {"", "yesterday", "2026-13-01", "2026-01-32", "2026-01-02T25:00:00Z",
        "2026-01-02T03:04:05+25:00", "2026-01-02T03:04:05Zjunk",
        "infinite-future", " 2026-01-02", "2026/01/02", "1767225600"}) {
    ExpectJsonError(Json(absl::StrCat(R"("ts":)", Quoted(text))),
                    "ts: not a number or ISO 8601 date-time");
  }
  ExpectJsonError(Json(R"("ts":"1999-12-31T23:59:59Z")"), "ts: out of range");
  ExpectJsonError(Json(R"("ts":"2101-01-01")"), "ts: out of range");
  ExpectJsonError(Json(R"("ts":"2100-12-31T23:59:59-01:00")"),
                  "ts: out of range");
}

TEST(CanonicalTest, PropValueTypes) {
  absl::StatusOr<EventInput> in = ParseWith(
      R"("props":{"s":"x","i":3,"neg":-7,"d":2.5,"whole":3.0,"big":18446744073709551615,)"
      R"("exp":1e21,"small":0.001,"t":true,"f":false,"n":null,"empty":""})");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(
      in->props,
      ElementsAre(Pair("s", "x"), Pair("i", "3"), Pair("neg", "-7"),
                  Pair("d", "2.5"), Pair("whole", "3"),
                  Pair("big", "18446744073709551615"), Pair("exp", "1e+21"),
                  Pair("small", "0.001"), Pair("t", "true"), Pair("f", "false"),
                  Pair("empty", "")));
}

TEST(CanonicalTest, NestedPropsRejected) {
  ExpectJsonError(Json(R"("props":{"plan":{"a":1}})"), "props.plan: ");
  ExpectJsonError(Json(R"("props":{"tags":["a"]})"), "props.tags: ");
}

TEST(CanonicalTest, PropCountLimit) {
  std::string props;
  for (int i = 0; i < 30; ++i) {
    absl::StrAppend(&props, i ? "," : "", "\"k", i, "\":", i);
  }
  absl::StatusOr<EventInput> in =
      ParseWith(absl::StrCat(R"("props":{)", props, "}"));
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->props.size(), 30u);
  // Nulls do not count.
  ASSERT_TRUE(
      ParseWith(absl::StrCat(R"("props":{)", props, R"(,"z":null})")).ok());
  ExpectJsonError(Json(absl::StrCat(R"("props":{)", props, R"(,"k30":1})")),
                  "props: more than 30 properties");
}

TEST(CanonicalTest, PropKeyLimits) {
  const std::string k300(300, 'k');
  EXPECT_TRUE(
      ParseWith(absl::StrCat(R"("props":{)", Quoted(k300), ":1}")).ok());
  ExpectJsonError(Json(absl::StrCat(R"("props":{)", Quoted(k300 + "k"), ":1}")),
                  "props.kkkk");
  EXPECT_THAT(std::string(ParseWith(absl::StrCat(R"("props":{)",
                                                 Quoted(k300 + "k"), ":1}"))
                              .status()
                              .message()),
              HasSubstr("key longer than 300 bytes"));
  ExpectJsonError(Json(R"("props":{"":1})"), "props: empty key");
}

TEST(CanonicalTest, PropValueLimit) {
  const std::string v2000(2000, 'v');
  EXPECT_TRUE(
      ParseWith(absl::StrCat(R"("props":{"plan":)", Quoted(v2000), "}")).ok());
  ExpectJsonError(
      Json(absl::StrCat(R"("props":{"plan":)", Quoted(v2000 + "v"), "}")),
      "props.plan: value longer than 2000 bytes");
}

TEST(CanonicalTest, SiteLimit) {
  const std::string site(253, 's');
  EXPECT_TRUE(ParseEventJson(
                  absl::StrCat(R"({"site":)", Quoted(site), R"(,"url":"u"})"))
                  .ok());
  ExpectJsonError(
      absl::StrCat(R"({"site":)", Quoted(site + "s"), R"(,"url":"u"})"),
      "site: longer than 253 bytes");
}

TEST(CanonicalTest, UrlLimit) {
  const std::string url = "https://example.com/" + std::string(1980, 'a');
  ASSERT_EQ(url.size(), 2000u);
  EXPECT_TRUE(
      ParseEventJson(absl::StrCat(R"({"site":"s","url":)", Quoted(url), "}"))
          .ok());
  ExpectJsonError(absl::StrCat(R"({"site":"s","url":)", Quoted(url + "a"), "}"),
                  "url: longer than 2000 bytes");
}

TEST(CanonicalTest, ReferrerLimit) {
  const std::string ref(2000, 'r');
  EXPECT_TRUE(ParseWith(absl::StrCat(R"("referrer":)", Quoted(ref))).ok());
  ExpectJsonError(Json(absl::StrCat(R"("referrer":)", Quoted(ref + "r"))),
                  "referrer: longer than 2000 bytes");
}

TEST(CanonicalTest, NameLimitCountsCharacters) {
  // 120 two-byte characters (240 bytes) are fine; 121 are not.
  std::string name;
  for (int i = 0; i < 120; ++i) name += "\xC3\xA9";  // é
  EXPECT_TRUE(ParseWith(absl::StrCat(R"("name":)", Quoted(name))).ok());
  ExpectJsonError(Json(absl::StrCat(R"("name":)", Quoted(name + "e"))),
                  "name: longer than 120 characters");
  EXPECT_TRUE(
      ParseWith(absl::StrCat(R"("name":)", Quoted(std::string(120, 'n'))))
          .ok());
  // Escapes count as the characters they denote.
  std::string escaped;
  for (int i = 0; i < 120; ++i) escaped += "\\u00e9";
  EXPECT_TRUE(ParseWith(absl::StrCat(R"("name":)", Quoted(escaped))).ok());
}

TEST(CanonicalTest, ScreenWidthLimits) {
  absl::StatusOr<EventInput> in = ParseWith(R"("screen_width":100000)");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->screen_width, 100000);
  in = ParseWith(R"("screen_width":0)");
  ASSERT_TRUE(in.ok());
  in = ParseWith(R"("screen_width":1440.0)");
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->screen_width, 1440);
  ExpectJsonError(Json(R"("screen_width":100001)"),
                  "screen_width: out of range 0..100000");
  ExpectJsonError(Json(R"("screen_width":-1)"), "screen_width: out of range");
  ExpectJsonError(Json(R"("screen_width":18446744073709551615)"),
                  "screen_width: out of range");
  ExpectJsonError(Json(R"("screen_width":1e300)"),
                  "screen_width: out of range");
}

TEST(CanonicalTest, InvalidUtf8InEachStringField) {
  const std::string bad =
      "a\xFF"
      "b";
  for (const char* field : {"site", "name", "url", "referrer", "ip",
                            "user_agent", "locale", "timezone"}) {
    std::string json =
        absl::StrCat(R"({"site":"example.com","url":"https://example.com/",")",
                     field, "\":", Quoted(bad), "}");
    ExpectJsonError(json, absl::StrCat(field, ": invalid UTF-8"));
  }
  ExpectJsonError(Json(absl::StrCat(R"("country":)", Quoted(bad))),
                  "country: invalid UTF-8");
  ExpectJsonError(Json(absl::StrCat(R"("props":{"plan":)", Quoted(bad), "}")),
                  "props.plan: invalid UTF-8");
  ExpectJsonError(Json(absl::StrCat(R"("props":{)", Quoted(bad), ":1}")),
                  "props: key is not valid UTF-8");
}

TEST(CanonicalTest, Utf8Validator) {
  struct Case {
    std::string text;
    bool ok;
  };
  const Case cases[] = {
      {"plain ascii text that is longer than eight bytes", true},
      {"\xC3\xA9", true},           // é
      {"\xE2\x82\xAC", true},       // €
      {"\xF0\x9F\x98\x80", true},   // 😀
      {"\xEF\xBF\xBF", true},       // U+FFFF
      {"\xF4\x8F\xBF\xBF", true},   // U+10FFFF
      {"\xC0\xAF", false},          // overlong '/'
      {"\xC1\xBF", false},          // overlong
      {"\xE0\x80\xAF", false},      // overlong
      {"\xF0\x80\x80\xAF", false},  // overlong
      {"\xED\xA0\x80", false},      // U+D800 surrogate
      {"\xED\xBF\xBF", false},      // U+DFFF surrogate
      {"\xF4\x90\x80\x80", false},  // > U+10FFFF
      {"\xF5\x80\x80\x80", false},
      {"\x80", false},              // lone continuation
      {"\xC3", false},              // truncated
      {"\xE2\x82", false},          // truncated
      {"abcdefgh\xE2\x82", false},  // truncated after fast path
      {"\xC3\x28", false},          // bad continuation
  };
  for (const Case& c : cases) {
    EventInput in = Valid();
    in.referrer = c.text;
    EXPECT_EQ(ValidateEventInput(in).ok(), c.ok)
        << testing::PrintToString(c.text);
  }
}

TEST(CanonicalTest, EscapedSurrogates) {
  absl::StatusOr<EventInput> in = ParseWith(R"("name":"\ud83d\ude00")");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->name, "\xF0\x9F\x98\x80");
  // A lone low surrogate is either a JSON error or invalid UTF-8.
  EXPECT_FALSE(ParseWith(R"("name":"\udc00")").ok());
  EXPECT_FALSE(ParseWith(R"("name":"\ud800")").ok());
}

TEST(CanonicalTest, EmbeddedNulIsKept) {
  absl::StatusOr<EventInput> in = ParseWith(R"("user_agent":"a\u0000b")");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->user_agent, std::string("a\0b", 3));
}

TEST(CanonicalTest, InputNeedNotBeNulTerminated) {
  const std::string text = Json("") + "garbage";
  absl::StatusOr<EventInput> in =
      ParseEventJson(std::string_view(text).substr(0, text.size() - 7));
  ASSERT_TRUE(in.ok()) << in.status();
}

TEST(CanonicalTest, ValidateDirectly) {
  EventInput in = Valid();
  in.screen_width = -1;
  ExpectError(ValidateEventInput(in), "screen_width: ");
  in = Valid();
  in.ts = Utc(1999, 12, 31);
  ExpectError(ValidateEventInput(in), "ts: ");
  in = Valid();
  in.props.emplace_back("", "x");
  ExpectError(ValidateEventInput(in), "props: empty key");
  in = Valid();
  in.country_hint = "\xFF";
  ExpectError(ValidateEventInput(in), "country_hint: invalid UTF-8");
  in = Valid();
  in.name.clear();
  ExpectError(ValidateEventInput(in), "name: empty");
}

// ValidateEventInput skips the per-field UTF-8 checks when one scan finds
// every string ASCII: a non-ASCII byte anywhere (the scan's 16-byte steps,
// its overlapping last step, short strings) must still be validated, and
// counted as part of a character in the name's length limit.
TEST(CanonicalTest, NonAsciiByteAnywhereIsValidated) {
  using Setter = std::string* (*)(EventInput*);
  struct Field {
    const char* name;
    Setter get;
  };
  const Field fields[] = {
      {"site", [](EventInput* in) { return &in->site; }},
      {"name", [](EventInput* in) { return &in->name; }},
      {"url", [](EventInput* in) { return &in->url; }},
      {"referrer", [](EventInput* in) { return &in->referrer; }},
      {"ip", [](EventInput* in) { return &in->ip; }},
      {"user_agent", [](EventInput* in) { return &in->user_agent; }},
      {"locale", [](EventInput* in) { return &in->locale; }},
      {"timezone", [](EventInput* in) { return &in->timezone; }},
      {"country_hint", [](EventInput* in) { return &in->country_hint; }},
      {"props.k", [](EventInput* in) { return &in->props[0].second; }},
      {"props", [](EventInput* in) { return &in->props[0].first; }},
  };
  for (const Field& f : fields) {
    for (size_t len = 1; len <= 40; ++len) {
      for (size_t at = 0; at < len; ++at) {
        SCOPED_TRACE(absl::StrCat(f.name, " len ", len, " at ", at));
        EventInput in = Valid();
        in.props.emplace_back("k", "v");
        std::string* s = f.get(&in);
        // Invalid: a lone continuation byte.
        s->assign(len, 'a');
        (*s)[at] = '\x80';
        ExpectError(ValidateEventInput(in),
                    std::string_view(f.name) == "props"
                        ? "props: key is not valid UTF-8"
                        : absl::StrCat(f.name, ": invalid UTF-8"));
        // Valid: a two-byte character.
        s->assign(len + 1, 'a');
        (*s)[at] = '\xC3';
        (*s)[at + 1] = '\xA9';
        EXPECT_TRUE(ValidateEventInput(in).ok());
      }
    }
  }
  // The name limit counts characters: 118 + 2 two-byte ones are 120.
  EventInput in = Valid();
  in.name = std::string(118, 'n') + "\xC3\xA9\xC3\xA9";
  EXPECT_TRUE(ValidateEventInput(in).ok());
  in.name += "n";
  ExpectError(ValidateEventInput(in), "name: longer than 120 characters");
}

TEST(CanonicalTest, LongPropKeyMessageIsTruncatedOnCharBoundary) {
  std::string key;
  for (int i = 0; i < 110; ++i) key += "\xC3\xA9";  // 220 bytes
  EventInput in = Valid();
  in.props.emplace_back(key, std::string(2001, 'v'));
  absl::Status s = ValidateEventInput(in);
  ExpectError(s, "props.\xC3\xA9");
  EXPECT_THAT(std::string(s.message()), HasSubstr("...: value longer"));
  EventInput check = Valid();
  check.referrer = std::string(s.message());
  EXPECT_TRUE(ValidateEventInput(check).ok());  // message is valid UTF-8
}

TEST(CanonicalTest, DuplicateKeysLastWins) {
  absl::StatusOr<EventInput> in =
      ParseEventJson(R"({"site":"a.com","site":"b.com","url":"u"})");
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->site, "b.com");
}

TEST(CanonicalTest, LargeEventOverflowsStackBuffers) {
  std::string props;
  for (int i = 0; i < 30; ++i) {
    absl::StrAppend(&props, i ? "," : "", "\"key", i,
                    "\":", Quoted(std::string(1500, 'x')));
  }
  absl::StatusOr<EventInput> in =
      ParseWith(absl::StrCat(R"("props":{)", props, "}"));
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->props.size(), 30u);
  EXPECT_EQ(in->props[29].second.size(), 1500u);
}

// Same status (code and message) and the same EventInput (every field: a
// field added to EventInput must be added here, hence the size check).
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(EventInput) == 352,
              "EventInput changed: compare the new field in ExpectSameResult");
#endif
void ExpectSameResult(const absl::StatusOr<EventInput>& got,
                      const absl::StatusOr<EventInput>& want,
                      std::string_view json) {
  SCOPED_TRACE(testing::PrintToString(std::string(json)));
  ASSERT_EQ(got.status(), want.status());
  if (!want.ok()) return;
  EXPECT_EQ(got->site, want->site);
  EXPECT_EQ(got->name, want->name);
  EXPECT_EQ(got->url, want->url);
  EXPECT_EQ(got->referrer, want->referrer);
  EXPECT_EQ(got->ts, want->ts);
  EXPECT_EQ(got->ip, want->ip);
  EXPECT_EQ(got->user_agent, want->user_agent);
  EXPECT_EQ(got->props, want->props);
  EXPECT_EQ(got->screen_width, want->screen_width);
  EXPECT_EQ(got->locale, want->locale);
  EXPECT_EQ(got->timezone, want->timezone);
  EXPECT_EQ(got->country_hint, want->country_hint);
  EXPECT_EQ(got->interactive, want->interactive);
  EXPECT_EQ(got->imported, want->imported);
}

// Edge cases and realistic lines (the first and sixth take the fast path).
std::vector<std::string> Seeds() {
  return {
      Json(R"("name":"Signup","referrer":"https://www.google.com/",)"
           R"("ts":1790812840.123,"ip":"203.0.113.9",)"
           R"("user_agent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",)"
           R"("props":{"plan":"pro","n":3,"x":2.5e1,"ok":true,"z":null},)"
           R"("screen_width":1440,"locale":"en-US","timezone":"Europe/Berlin",)"
           R"("country":"de","interactive":false,"imported":true)"),
      Json(R"("ts":"2026-05-01T10:00:00.250+02:00","name":"caf\u00e9")"),
      Json(R"("url":"https://example.com/\u00e9t\u00e9","props":{})"),
      "\xEF\xBB\xBF" + Json(R"("name":"x")"),
      " \t\r\n" + Json(R"("props" : { "a" : "b" } , "ts" : 1790000000 )") +
          " \n",
      Json(R"("name":"é","props":{"ключ":"значение"})"),
      Json(R"("unknown":{"a":[1,2]},"x":[],"y":-0.0,"z":1E400)"),
      Json(R"("screen_width":1e3,"ts":17900000001e-1)"),
      Json(R"("screen_width":18446744073709551615)"),
      Json(R"("screen_width":-9223372036854775809)"),
      Json(R"("screen_width":00)"),
      Json(R"("props":{"k":{}})"),
      Json(R"("props":null,"props":"x")"),
      Json(R"("site":"a.com","site":"b.com","props":{"a":1},"props":{"a":2})"),
      R"({"site":"example.com","url":"/"}  x)",
      std::string(R"({"site":"example.com","url":"/"})") + '\0' + "x",
      "{}",
      "",
      "[]",
      "1",
  };
}

// The seeds and `n` random mutations of them (bytes from JSON's syntax,
// digits, UTF-8 lead/continuation bytes, control characters, NUL; cuts).
std::vector<std::string> MutatedInputs(int n) {
  const std::vector<std::string> seeds = Seeds();
  std::mt19937_64 rng(11);
  const std::string alphabet =
      // (No embedded NUL here: the literal's own length is right.)
      std::string("\"\\{}[],:0123456789eE.+- \t\r\nntrufals\x01\x1F\x7F") +
      std::string("\x80\xBF\xC3\xA9\xE2\xED\xF0\xF4\xFF\0", 10);
  std::vector<std::string> inputs = seeds;
  for (int i = 0; i < n; ++i) {
    std::string s =
        testing_json::RandomEdits(seeds[rng() % seeds.size()], alphabet, rng);
    inputs.push_back(std::move(s));
  }
  return inputs;
}

// The fast path answers for ordinary events and, wherever it answers, gives
// exactly what the full parser gives: checked on edge cases and on random
// mutations of realistic lines.
TEST(CanonicalTest, FastPathAgreesWithFullParser) {
  const std::vector<std::string> seeds = Seeds();
  const std::vector<std::string> inputs = MutatedInputs(60000);
  int fast = 0, fast_ok = 0, fast_err = 0;
  for (const std::string& json : inputs) {
    std::optional<absl::StatusOr<EventInput>> got =
        canonical_internal::ParseEventJsonFast(json);
    const absl::StatusOr<EventInput> want =
        canonical_internal::ParseEventJsonFull(json);
    ExpectSameResult(ParseEventJson(json), want, json);
    if (!got.has_value()) continue;
    ++fast;
    (got->ok() ? fast_ok : fast_err)++;
    ExpectSameResult(*got, want, json);
    if (HasFailure()) return;
  }
  // The ordinary seeds take the fast path; mutations exercise both sides.
  EXPECT_TRUE(canonical_internal::ParseEventJsonFast(seeds[0]).has_value());
  EXPECT_TRUE(canonical_internal::ParseEventJsonFast(seeds[5]).has_value());
  EXPECT_GT(fast_ok, 2000);
  EXPECT_GT(fast_err, 500);
  EXPECT_GT(static_cast<int>(inputs.size()) - fast, 10000)
      << fast << " fast (" << fast_ok << " ok, " << fast_err << " errors)";
}

// Numbers the fast path parses itself (-?(0|[1-9]\d*)(\.\d+)?, at most 15
// digits) and their neighbours (more digits, exponents, malformed): as a
// prop value (its text shows every bit of the double), as ts and as
// screen_width, the fast path gives exactly what the full parser (RapidJSON's
// reader) gives, and answers for every simple number.
TEST(CanonicalTest, FastPathNumbersMatchFullParser) {
  std::mt19937_64 rng(5);
  std::vector<std::string> numbers = testing_json::NumberTexts(20000, rng);
  for (int i = 0; i < 20000; ++i) {
    // Timestamps in range, with a fraction of 0..9 digits.
    numbers.push_back(absl::StrCat(
        946684800 + rng() % 3187296000, ".",
        testing_json::RandomDigits(static_cast<int>(rng() % 10), false, rng)));
  }
  int fast_simple = 0;
  for (const std::string& n : numbers) {
    for (const std::string& json :
         {Json(absl::StrCat(R"("props":{"n":)", n, "}")),
          Json(absl::StrCat(R"("ts":)", n)),
          Json(absl::StrCat(R"("screen_width":)", n))}) {
      std::optional<absl::StatusOr<EventInput>> got =
          canonical_internal::ParseEventJsonFast(json);
      const absl::StatusOr<EventInput> want =
          canonical_internal::ParseEventJsonFull(json);
      if (!got.has_value()) continue;
      ExpectSameResult(*got, want, json);
      if (HasFailure()) return;
    }
    // A simple number as a prop value always takes the fast path.
    const bool simple =
        n.find_first_of("eE") == std::string::npos &&
        n.size() - (n[0] == '-') - (n.find('.') != std::string::npos) <= 15;
    if (simple && canonical_internal::ParseEventJsonFast(
                      Json(absl::StrCat(R"("props":{"n":)", n, "}")))
                      .has_value()) {
      ++fast_simple;
    }
  }
  EXPECT_GT(fast_simple, 15000);
}

// The fast path and ParseEventJson against the full parser on one input:
// same result wherever the fast path answers; *fast counts its answers.
void ExpectAgrees(const std::string& json, int* fast = nullptr) {
  const absl::StatusOr<EventInput> want =
      canonical_internal::ParseEventJsonFull(json);
  ExpectSameResult(ParseEventJson(json), want, json);
  std::optional<absl::StatusOr<EventInput>> got =
      canonical_internal::ParseEventJsonFast(json);
  if (!got.has_value()) return;
  if (fast != nullptr) ++*fast;
  ExpectSameResult(*got, want, json);
}

// A random string value: mostly URL-ish ASCII, sometimes UTF-8 (valid or
// not), sometimes a byte JSON must escape or an escape sequence.
std::string RandomJsonString(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces = {
      "a",       "Z",
      "0",       "/",
      ".",       "-",
      "_",       "?",
      "=",       "&",
      " ",       ":",
      ";",       "(",
      ")",       "é",
      "ключ",    "€",
      "😀",       "\xC3",
      "\x80",    "\xED\xA0\x80",
      "\xFF",    "\\\"",
      "\\\\",    "\\/",
      "\\b",     "\\f",
      "\\n",     "\\r",
      "\\t",     "\\u00e9",
      "\\u0000", "\\ud83d\\ude00",
      "\\ud83d", "\\ude00",
      "\\u12",   "\\x",
      "\x01",    "\x1F",
      "\x7F",    std::string(1, '\0')};
  std::string s;
  const int n = static_cast<int>(rng() % 40);
  const bool plain = rng() % 2 == 0;  // only the first 15 pieces (ASCII)
  for (int i = 0; i < n; ++i) {
    s += pieces[rng() % (plain ? 15 : pieces.size())];
  }
  return s;
}

// A random event line: the known keys (and some unknown ones, near misses
// of known ones among them) in random order, maybe repeated, values of the
// right or a wrong type, whitespace or none between tokens.
std::string RandomEventLine(std::mt19937_64& rng) {
  static const std::vector<std::string> keys = {"site",
                                                "name",
                                                "url",
                                                "referrer",
                                                "ts",
                                                "ip",
                                                "user_agent",
                                                "screen_width",
                                                "locale",
                                                "timezone",
                                                "country",
                                                "interactive",
                                                "imported",
                                                "props",
                                                "sit",
                                                "sites",
                                                "nam",
                                                "names",
                                                "ur",
                                                "urlx",
                                                "referre",
                                                "t",
                                                "tss",
                                                "i",
                                                "ipp",
                                                "user_agen",
                                                "user_agents",
                                                "screen_widt",
                                                "local",
                                                "timezon",
                                                "",
                                                "Site",
                                                "x"};
  auto ws = [&] {
    static const char* kWs[] = {"", "", "", "", " ", "\n", "\t ", "\r\n"};
    return std::string(kWs[rng() % 8]);
  };
  auto value = [&](const std::string& key) -> std::string {
    switch (rng() % 12) {
      case 0:
        return "null";
      case 1:
        return rng() % 2 ? "true" : "false";
      case 2:
        return std::to_string(static_cast<int64_t>(rng() % 200000) - 1000);
      case 3:
        return absl::StrCat(946684800 + rng() % 3187296000, ".", rng() % 1000);
      case 4:
        return rng() % 2 ? "1e3" : "-0.5";
      case 5: {
        std::string props = "{";
        const int n = static_cast<int>(rng() % 4);
        for (int i = 0; i < n; ++i) {
          absl::StrAppend(&props, i ? "," : "", ws(), "\"",
                          RandomJsonString(rng), "\"", ws(), ":", ws(),
                          rng() % 3 ? Quoted(RandomJsonString(rng))
                                    : std::string(rng() % 2 ? "7" : "null"),
                          ws());
        }
        return props + "}";
      }
      case 6:
        return key == "ts" ? Quoted("2026-05-01T10:00:00Z") : "[]";
      default:
        return Quoted(RandomJsonString(rng));
    }
  };
  std::string line = ws() + "{";
  std::vector<std::string> members;
  // Usually the required fields, valid.
  if (rng() % 8 != 0) members.push_back(R"("site":"example.com")");
  if (rng() % 8 != 0) members.push_back(R"("url":"https://example.com/a")");
  const int n = static_cast<int>(rng() % 12);
  for (int i = 0; i < n; ++i) {
    const std::string& key = keys[rng() % keys.size()];
    members.push_back(absl::StrCat(Quoted(key), ws(), ":", ws(), value(key)));
  }
  std::shuffle(members.begin(), members.end(), rng);
  for (size_t i = 0; i < members.size(); ++i) {
    absl::StrAppend(&line, i ? "," : "", ws(), members[i], ws());
  }
  return line + "}" + ws();
}

// Random lines (every field, every value type, whitespace, escapes, UTF-8,
// near-miss keys): the fast path agrees with the full parser, and answers
// for many of them, errors included.
TEST(CanonicalTest, FastPathAgreesOnRandomLines) {
  std::mt19937_64 rng(23);
  int fast = 0;
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    ExpectAgrees(RandomEventLine(rng), &fast);
    if (HasFailure()) return;
  }
  EXPECT_GT(fast, n / 10);
}

// Every prefix of realistic lines (and of the seeds): a cut anywhere, inside
// a key, a string, a number or a literal, is an error, the same one.
TEST(CanonicalTest, FastPathAgreesOnEveryPrefix) {
  std::vector<std::string> lines = Seeds();
  std::mt19937_64 rng(31);
  for (int i = 0; i < 50; ++i) lines.push_back(RandomEventLine(rng));
  for (const std::string& line : lines) {
    for (size_t n = 0; n <= line.size(); ++n) {
      ExpectAgrees(line.substr(0, n));
      if (HasFailure()) return;
    }
  }
}

// Every escape, in every string field, in a prop key and value and in a
// member key (the fast path leaves them all to the full parser).
TEST(CanonicalTest, EveryEscapeAgrees) {
  const std::vector<std::string> escapes = {
      R"(\")",     R"(\\)",           R"(\/)",
      R"(\b)",     R"(\f)",           R"(\n)",
      R"(\r)",     R"(\t)",           R"(\u0041)",
      R"(\u00e9)", R"(\u20AC)",       R"(\u0000)",
      R"(\u001f)", R"(\ud83d\ude00)", R"(\ud83d)",
      R"(\ude00)", R"(\ud83dx)",      R"(\ud83d\u0041)",
      R"(\u12)",   R"(\uZZZZ)",       R"(\x)",
      R"(\)",      R"(\U0041)"};
  const std::vector<std::string> fields = {
      "site",       "name",   "url",      "referrer", "ip",
      "user_agent", "locale", "timezone", "country",  "ts"};
  for (const std::string& e : escapes) {
    for (const std::string& field : fields) {
      ExpectAgrees(Json(absl::StrCat(Quoted(field), ":\"a", e, "b\"")));
      ExpectAgrees(Json(absl::StrCat(Quoted(field), ":\"", e, "\"")));
    }
    ExpectAgrees(Json(absl::StrCat(R"("props":{"k)", e, R"(":"v"})")));
    ExpectAgrees(Json(absl::StrCat(R"("props":{"k":"v)", e, R"("})")));
    // An escaped known key ("u\u0072l" is "url").
    ExpectAgrees(Json(absl::StrCat(R"("u)", e, R"(rl":"/x")")));
    ExpectAgrees(
        absl::StrCat(R"({"site":"example.com","u\u0072l":"/)", e, "\"}"));
    if (HasFailure()) return;
  }
}

// The 16-byte string scan: a string of every length up to 48 with a quote,
// backslash, control character, NUL or non-ASCII byte at every position,
// and the line ending at every distance from it (the parser reads a padded
// copy; the scan must stop at the text's end whatever follows).
TEST(CanonicalTest, StringScanAtEveryOffset) {
  const std::string specials[] = {
      "\"",   "\\",       "\x01", "\x1F", std::string(1, '\0'),
      "\x7F", "\xC3\xA9", "\xC3", "\xFF"};
  for (size_t len = 0; len <= 48; ++len) {
    const std::string plain(len, 'u');
    for (const std::string& tail : {std::string("\"}"), std::string("\""),
                                    std::string("\"} "), std::string("")}) {
      ExpectAgrees(
          absl::StrCat(R"({"site":"example.com","url":")", plain, tail));
      ExpectAgrees(absl::StrCat(R"({"site":"example.com","url":"/","k":")",
                                plain, tail));
    }
    for (size_t at = 0; at < len; ++at) {
      for (const std::string& special : specials) {
        std::string v = plain;
        v.replace(at, 1, special);
        ExpectAgrees(
            absl::StrCat(R"({"site":"example.com","url":")", v, "\"}"));
        ExpectAgrees(absl::StrCat(R"({"url":"/","user_agent":")", v,
                                  R"(","site":"example.com"})"));
        ExpectAgrees(
            absl::StrCat(R"({"url":"/","site":"example.com",")", v, R"(":1})"));
      }
      if (HasFailure()) return;
    }
  }
}

// The 16-byte string scan at its block boundaries: strings of every length
// up to 70 (four blocks and a part) with a special byte (or two: a byte
// >= 0x80 first, which continues the scan in its non-ASCII loop, then a
// byte that stops it) at every offset, in every kind of string the fast
// path scans (a field, a member key, a prop key and value), and lines
// ending at every offset modulo 16 after them.
TEST(CanonicalTest, StringScanAtBlockBoundaries) {
  const std::string specials[] = {"\"",
                                  "\\",
                                  "\x01",
                                  "\x1F",
                                  std::string(1, '\0'),
                                  "\x7F",
                                  " ",
                                  "\x80",
                                  "\xBF",
                                  "\xC3\xA9",
                                  "\xC3",
                                  "\xFF",
                                  "\xE2\x82\xAC",
                                  "\xF0\x9F\x98\x80"};
  const std::string stops[] = {"\"", "\\n", "\x01", std::string(1, '\0'),
                               "\xC3\xA9"};
  auto lines = [](const std::string& v) {
    return std::vector<std::string>{
        absl::StrCat(R"({"site":"example.com","url":")", v, "\"}"),
        absl::StrCat(R"({"url":"/","user_agent":")", v,
                     R"(","site":"example.com"})"),
        absl::StrCat(R"({"url":"/","site":"example.com",")", v, R"(":1})"),
        absl::StrCat(R"({"url":"/","site":"example.com","props":{")", v,
                     R"(":"x"}})"),
        absl::StrCat(R"({"url":"/","site":"example.com","props":{"k":")", v,
                     R"("}})")};
  };
  int fast = 0;
  for (size_t len = 0; len <= 70; ++len) {
    const std::string plain(len, 'u');
    for (const std::string& line : lines(plain)) ExpectAgrees(line, &fast);
    for (size_t at = 0; at < len; ++at) {
      for (const std::string& special : specials) {
        std::string v = plain;
        v.replace(at, 1, special);
        for (const std::string& line : lines(v)) ExpectAgrees(line, &fast);
      }
      // A byte >= 0x80, then one that stops the non-ASCII scan.
      for (size_t stop_at = at + 1; stop_at < len; stop_at += 7) {
        for (const std::string& stop : stops) {
          std::string v = plain;
          v.replace(stop_at, 1, stop);
          v.replace(at, 1, "\xC3\xA9");
          for (const std::string& line : lines(v)) ExpectAgrees(line, &fast);
        }
      }
      if (HasFailure()) return;
    }
    // The line's end at every offset modulo 16 after the string (trailing
    // whitespace, or cut short).
    for (size_t k = 0; k < 16; ++k) {
      const std::string line =
          absl::StrCat(R"({"site":"example.com","url":")", plain, "\"}");
      ExpectAgrees(line + std::string(k, ' '), &fast);
      if (k < line.size()) ExpectAgrees(line.substr(0, line.size() - k));
      ExpectAgrees(
          absl::StrCat(line.substr(0, line.size() - 2), std::string(k, 'v')));
    }
    if (HasFailure()) return;
  }
  EXPECT_GT(fast, 20000);
}

// The fast path's own number scans ("ts" straight to microseconds,
// "screen_width" straight in) at the edges of what they take: the same
// result as the full parser, and an answer for every plain one.
TEST(CanonicalTest, PlainTsAndScreenWidthAtTheirEdges) {
  std::vector<std::string> ts = {
      "946684800",         "946684799",         "946684800.000001",
      "946684799.999999",  "946684799.9999999", "946684800.0000001",
      "4133980800",        "4133980799",        "4133980799.99999",
      "4133980799.999999", "4133980800.00001",  "1790812840.123456",
      "1790812840.5",      "1790812840.",       "1790812840.1e0",
      "01790812840",       "-1790812840",       "17908128400",
      "179081284",         "99999999.9999999",  "1790812840.0",
      "1790812840.000000", "1790812840.100000", "1073741823.999999",
      "1073741824.000001", "2147483647.99999",  "2147483648.00001"};
  std::mt19937_64 rng(41);
  for (int i = 0; i < 20000; ++i) {
    // Random timestamps in range, and near both ends.
    const uint64_t secs = i % 3 == 0   ? 946684800 + rng() % 3187296000
                          : i % 3 == 1 ? 946684790 + rng() % 20
                                       : 4133980790 + rng() % 20;
    ts.push_back(absl::StrCat(
        secs, i % 7 == 0 ? "" : ".",
        testing_json::RandomDigits(static_cast<int>(rng() % 8), false, rng)));
  }
  for (const std::string& t : ts) {
    ExpectAgrees(Json(absl::StrCat(R"("ts":)", t)));
    ExpectAgrees(Json(absl::StrCat(R"("ts" : )", t, " ")));
    if (HasFailure()) return;
  }
  for (const std::string& w :
       {"0", "1", "00", "01", "-0", "-1", "1.0", "1e3", "99999", "100000",
        "100001", "999999", "1000000", "18446744073709551616", "1440 ",
        "1440.5", "true", "null", "\"1440\""}) {
    ExpectAgrees(Json(absl::StrCat(R"("screen_width":)", w)));
  }
  // Every plain timestamp and width in range takes the fast path.
  for (const std::string& json :
       {Json(R"("ts":946684800)"), Json(R"("ts":4133980799.99999)"),
        Json(R"("ts":1790812840.123456)"), Json(R"("screen_width":0)"),
        Json(R"("screen_width":100000)")}) {
    EXPECT_TRUE(canonical_internal::ParseEventJsonFast(json).has_value())
        << json;
  }
}

// Numeric timestamps: canonical_internal::TsMicros is std::llround(s * 1e6)
// over the accepted range (random doubles, both ends, and the neighbours of
// the powers of two where the spacing of doubles changes).
TEST(CanonicalTest, TsMicrosIsLlround) {
  std::vector<double> seconds = {946684800.0, 4133980799.999999,
                                 std::nextafter(4133980800.0, 0.0),
                                 1790812840.123, 1790812840.5e0};
  for (double p2 : {std::ldexp(1.0, 50), std::ldexp(1.0, 51)}) {
    double x = p2;
    for (int i = 0; i < 64; ++i) x = std::nextafter(x, 0.0);
    for (int i = 0; i < 128; ++i, x = std::nextafter(x, 1e300)) {
      seconds.push_back(x / 1e6);
      seconds.push_back(std::nextafter(x / 1e6, 0.0));
      seconds.push_back(std::nextafter(x / 1e6, 1e300));
      seconds.push_back((std::floor(x) + 0.5) / 1e6);
    }
  }
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> in_range(946684800.0, 4133980800.0);
  for (int i = 0; i < 1000000; ++i) {
    const double d = in_range(rng);
    seconds.push_back(d);
    // Half a microsecond: seconds whose d * 1e6 is a tie (n + 0.5), where
    // rounding half to even or truncating would differ.
    const double half = (std::floor(d * 1e6) + 0.5) / 1e6;
    seconds.push_back(half);
    seconds.push_back(std::nextafter(half, 0.0));
    seconds.push_back(std::nextafter(half, 1e300));
  }
  int ties = 0;
  for (double d : seconds) {
    if (!(d >= 946684800.0 && d < 4133980800.0)) continue;
    const double x = d * 1e6;
    if (x - std::floor(x) == 0.5) ++ties;
    ASSERT_EQ(canonical_internal::TsMicros(d), std::llround(x))
        << std::setprecision(17) << d;
  }
  EXPECT_GT(ties, 100000);
}

// An EventInput with every field set to something no parse gives: long
// strings (on the heap), more props than most lines have, flags flipped.
EventInput Garbage() {
  EventInput in;
  const std::string junk(100, 'g');
  for (std::string* f :
       {&in.site, &in.name, &in.url, &in.referrer, &in.ip, &in.user_agent,
        &in.locale, &in.timezone, &in.country_hint}) {
    *f = junk;
  }
  in.ts = absl::FromUnixSeconds(12345);
  for (int i = 0; i < 8; ++i) {
    in.props.emplace_back(junk + std::to_string(i), junk);
  }
  in.screen_width = 777;
  in.interactive = false;
  in.imported = true;
  return in;
}

// Parsing into a reused EventInput gives exactly what a fresh parse gives,
// for valid lines and errors alike (same status), whatever the EventInput
// held before: garbage in every field, or the previous line's result (valid
// or failed), through the public overload and both internal parsers.
TEST(CanonicalTest, ParseIntoReusedInputMatchesFreshParse) {
  const std::vector<std::string> inputs = MutatedInputs(20000);
  EventInput carried = Garbage();  // reused across the whole stream
  int ok = 0, errors = 0;
  for (const std::string& json : inputs) {
    const absl::StatusOr<EventInput> want = ParseEventJson(json);
    (want.ok() ? ok : errors)++;

    absl::Status s = ParseEventJson(json, &carried);
    ExpectSameResult(s.ok() ? absl::StatusOr<EventInput>(carried)
                            : absl::StatusOr<EventInput>(s),
                     want, json);

    EventInput garbage = Garbage();
    s = ParseEventJson(json, &garbage);
    ExpectSameResult(s.ok() ? absl::StatusOr<EventInput>(garbage)
                            : absl::StatusOr<EventInput>(s),
                     want, json);

    garbage = Garbage();
    s = canonical_internal::ParseEventJsonFull(json, &garbage);
    ExpectSameResult(s.ok() ? absl::StatusOr<EventInput>(garbage)
                            : absl::StatusOr<EventInput>(s),
                     canonical_internal::ParseEventJsonFull(json), json);

    garbage = Garbage();
    std::optional<absl::Status> fast =
        canonical_internal::ParseEventJsonFast(json, &garbage);
    std::optional<absl::StatusOr<EventInput>> fast_want =
        canonical_internal::ParseEventJsonFast(json);
    ASSERT_EQ(fast.has_value(), fast_want.has_value());
    if (fast.has_value()) {
      ExpectSameResult(fast->ok() ? absl::StatusOr<EventInput>(garbage)
                                  : absl::StatusOr<EventInput>(*fast),
                       *fast_want, json);
    }
    if (HasFailure()) return;
  }
  EXPECT_GT(ok, 1000);
  EXPECT_GT(errors, 1000);
}

// The props of a reused EventInput shrink to the parsed ones, keep the
// parsed order, and the defaults (name "pageview", interactive) come back.
TEST(CanonicalTest, ParseIntoReusedInputResetsDefaults) {
  EventInput in = Garbage();
  ASSERT_TRUE(ParseEventJson(Json(R"("props":{"b":"2","a":1})"), &in).ok());
  EXPECT_THAT(in.props, ElementsAre(Pair("b", "2"), Pair("a", "1")));
  EXPECT_EQ(in.name, "pageview");
  EXPECT_TRUE(in.interactive);
  EXPECT_FALSE(in.imported);
  EXPECT_FALSE(in.ts.has_value());
  EXPECT_EQ(in.screen_width, 0);
  EXPECT_EQ(in.referrer, "");
  ASSERT_TRUE(ParseEventJson(Json(""), &in).ok());
  EXPECT_TRUE(in.props.empty());
}

}  // namespace
}  // namespace analytics
