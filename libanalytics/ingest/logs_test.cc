#include "libanalytics/ingest/logs.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace analytics {
namespace {

using ::testing::HasSubstr;

constexpr char kUa[] =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36";

std::string Combined(std::string_view ip, std::string_view request,
                     int status = 200, std::string_view ref = "-",
                     std::string_view ua = kUa,
                     std::string_view time = "10/Oct/2023:13:55:36 -0700") {
  std::string s(ip);
  s.append(" - - [").append(time).append("] \"").append(request);
  s.append("\" ").append(std::to_string(status)).append(" 2326 \"");
  s.append(ref).append("\" \"").append(ua).append("\"");
  return s;
}

struct Parsed {
  bool ok = false;
  LogRecord r;
  std::string_view error;
};

// LogRecord holds views into the line and the scratch buffer, and tests pass
// temporaries (Combined(...)) and reassign results; so both are kept alive
// for the whole test binary in a deque (stable addresses, unlike a moved
// std::string whose short-string buffer moves with it).
Parsed Parse(LogFormat f, std::string_view line) {
  static std::deque<std::string>* keep = new std::deque<std::string>();
  const std::string& kept = keep->emplace_back(line);
  std::string& scratch = keep->emplace_back();
  Parsed p;
  p.ok = ParseLogLine(f, kept, &p.r, &scratch, &p.error);
  return p;
}

TEST(LogsTest, Combined) {
  std::string line = Combined("203.0.113.9", "GET /blog/post?x=1 HTTP/1.1", 200,
                              "https://www.google.com/", kUa);
  Parsed p = Parse(LogFormat::kCombined, line);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.ip, "203.0.113.9");
  EXPECT_EQ(p.r.method, "GET");
  EXPECT_EQ(p.r.target, "/blog/post?x=1");
  EXPECT_EQ(p.r.status, 200);
  EXPECT_EQ(p.r.referrer, "https://www.google.com/");
  EXPECT_EQ(p.r.user_agent, kUa);
  EXPECT_EQ(p.r.host, "");
  // 13:55:36 at -07:00 is 20:55:36 UTC.
  EXPECT_EQ(p.r.ts, absl::FromCivil(absl::CivilSecond(2023, 10, 10, 20, 55, 36),
                                    absl::UTCTimeZone()));
}

TEST(LogsTest, CombinedPositiveOffsetAndExtraFields) {
  std::string line = Combined("10.0.0.1", "GET / HTTP/2.0", 304, "-", kUa,
                              "01/Mar/2024:00:30:00 +0130") +
                     " \"198.51.100.1\" rt=0.012";
  Parsed p = Parse(LogFormat::kCombined, line);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.status, 304);
  EXPECT_EQ(p.r.referrer, "");
  EXPECT_EQ(p.r.ts, absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 0, 0),
                                    absl::UTCTimeZone()));
}

TEST(LogsTest, Ipv6AndUserWithSpaces) {
  std::string line =
      "2001:db8::1 - john doe [10/Oct/2023:13:55:36 +0000] \"GET /a HTTP/1.1\" "
      "200 - \"-\" \"-\"";
  Parsed p = Parse(LogFormat::kCombined, line);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.ip, "2001:db8::1");
  EXPECT_EQ(p.r.user_agent, "");
  EXPECT_EQ(p.r.referrer, "");
}

TEST(LogsTest, EscapedQuotesApacheAndNginx) {
  // Apache writes \" and \\; nginx writes \x22.
  std::string apache = Combined("1.2.3.4", "GET /q HTTP/1.1", 200, "-",
                                R"(Mozilla/5.0 \"quoted\" back\\slash)");
  Parsed p = Parse(LogFormat::kCombined, apache);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.user_agent, R"(Mozilla/5.0 "quoted" back\slash)");
  std::string nginx =
      Combined("1.2.3.4", R"(GET /a\x22b HTTP/1.1)", 200,
               "https://x.test/?q=\\x22hi\\x22", R"(Agent \x22X\x22 \xC3\xA9)");
  p = Parse(LogFormat::kCombined, nginx);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.target, "/a\"b");
  EXPECT_EQ(p.r.referrer, "https://x.test/?q=\"hi\"");
  EXPECT_EQ(p.r.user_agent, R"(Agent "X" \xC3\xA9)");  // non-ASCII kept
}

TEST(LogsTest, Common) {
  std::string line =
      "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif "
      "HTTP/1.0\" 200 2326";
  Parsed p = Parse(LogFormat::kCommon, line);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.target, "/apache_pb.gif");
  EXPECT_FALSE(Parse(LogFormat::kCombined, line).ok);
}

TEST(LogsTest, BadAndTruncatedLines) {
  const std::string good = Combined("1.2.3.4", "GET / HTTP/1.1");
  for (size_t cut : {5ul, 20ul, 40ul, 60ul, 75ul, good.size() - 1}) {
    Parsed p = Parse(LogFormat::kCombined, good.substr(0, cut));
    EXPECT_FALSE(p.ok) << cut;
    EXPECT_FALSE(p.error.empty());
  }
  for (std::string_view t :
       {"32/Oct/2023:13:55:36 -0700", "10/Foo/2023:13:55:36 -0700",
        "29/Feb/2023:13:55:36 -0700", "10/Oct/2023:25:55:36 -0700",
        "10/Oct/2023 13:55:36 -0700", "10/Oct/2023:13:55:36"}) {
    Parsed p = Parse(LogFormat::kCombined,
                     Combined("1.2.3.4", "GET / HTTP/1.1", 200, "-", kUa, t));
    EXPECT_FALSE(p.ok) << t;
    EXPECT_EQ(p.error, "bad time") << t;
  }
  EXPECT_FALSE(Parse(LogFormat::kCombined, "").ok);
  EXPECT_FALSE(Parse(LogFormat::kCombined, "garbage").ok);
  EXPECT_FALSE(Parse(LogFormat::kCombined,
                     "1.2.3.4 - - [10/Oct/2023:13:55:36 -0700] \"GET / "
                     "HTTP/1.1\" 2x0 12 \"-\" \"-\"")
                   .ok);
  // A request line that is not "METHOD TARGET": parsed, method empty.
  Parsed p = Parse(LogFormat::kCombined, Combined("1.2.3.4", "-", 408));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.r.method, "");
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "method");
}

TEST(LogsTest, HugeLine) {
  std::string big(200000, 'a');
  Parsed p = Parse(LogFormat::kCombined,
                   Combined("1.2.3.4", "GET /x HTTP/1.1", 200, "-", big));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.r.user_agent.size(), big.size());
}

TEST(LogsTest, Caddy) {
  std::string line =
      R"({"level":"info","ts":1696971336.5,"logger":"http.log.access",)"
      R"("msg":"handled request","request":{"remote_ip":"10.0.0.1",)"
      R"("client_ip":"203.0.113.7","proto":"HTTP/2.0","method":"GET",)"
      R"("host":"example.com:443","uri":"/docs?a=b","headers":{"User-Agent":)"
      R"(["Mozilla/5.0 \"x\""],"Referer":["https://duckduckgo.com/"]}},)"
      R"("status":200,"size":10})";
  Parsed p = Parse(LogFormat::kCaddyJson, line);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.ip, "203.0.113.7");
  EXPECT_EQ(p.r.method, "GET");
  EXPECT_EQ(p.r.host, "example.com:443");
  EXPECT_EQ(p.r.target, "/docs?a=b");
  EXPECT_EQ(p.r.user_agent, "Mozilla/5.0 \"x\"");
  EXPECT_EQ(p.r.referrer, "https://duckduckgo.com/");
  EXPECT_EQ(p.r.status, 200);
  EXPECT_EQ(p.r.ts, absl::FromUnixMillis(1696971336500));
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "");
  EventInput ev;
  ToEventInput(p.r, "example.com", &ev);
  EXPECT_EQ(ev.url, "https://example.com/docs?a=b");
  EXPECT_TRUE(ev.imported);
  // A reused EventInput (the importer's) gets exactly what a fresh one gets.
  EventInput reused;
  reused.name = "Signup";
  reused.props = {{"plan", "pro"}, {"k", "v"}};
  reused.screen_width = 1440;
  reused.locale = "de-DE";
  reused.timezone = "Europe/Berlin";
  reused.country_hint = "DE";
  reused.interactive = false;
  reused.site = "other.org";
  ToEventInput(p.r, "example.com", &reused);
  EXPECT_EQ(reused.name, ev.name);
  EXPECT_EQ(reused.props, ev.props);
  EXPECT_EQ(reused.screen_width, 0);
  EXPECT_EQ(reused.locale, "");
  EXPECT_EQ(reused.timezone, "");
  EXPECT_EQ(reused.country_hint, "");
  EXPECT_TRUE(reused.interactive);
  EXPECT_EQ(reused.site, ev.site);
  EXPECT_EQ(reused.url, ev.url);
  EXPECT_EQ(reused.referrer, ev.referrer);
  EXPECT_EQ(reused.ip, ev.ip);
  EXPECT_EQ(reused.user_agent, ev.user_agent);
  EXPECT_EQ(reused.ts, ev.ts);
  EXPECT_TRUE(reused.imported);

  std::string iso =
      R"({"ts":"2023-10-10T20:55:36.25Z","request":{"remote_ip":"::1",)"
      R"("method":"HEAD","host":"other.org","uri":"/"},"status":200})";
  p = Parse(LogFormat::kCaddyJson, iso);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.r.ip, "::1");
  EXPECT_EQ(p.r.user_agent, "");
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "method");
  p.r.method = "GET";
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "host");
  EXPECT_FALSE(Parse(LogFormat::kCaddyJson, R"({"ts":1,"status":200})").ok);
  EXPECT_FALSE(Parse(LogFormat::kCaddyJson, R"({"ts":)").ok);
  // Status codes outside 100..999 are damaged lines (found by fuzzing).
  for (const char* status : {"-1", "0", "99", "1000", "2147483647"}) {
    std::string bad = iso;
    bad.replace(bad.find("200"), 3, status);
    p = Parse(LogFormat::kCaddyJson, bad);
    EXPECT_FALSE(p.ok) << status;
    EXPECT_EQ(p.error, "bad status") << status;
  }
}

TEST(LogsTest, Filters) {
  LogFilter f;
  Parsed p = Parse(LogFormat::kCombined,
                   Combined("1.2.3.4", "GET /style.CSS?v=3 HTTP/1.1"));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(SkipReason(p.r, f, "example.com"), "asset");
  f.include_assets = true;
  EXPECT_EQ(SkipReason(p.r, f, "example.com"), "");
  for (std::string_view a :
       {"/a.js", "/i/logo.png", "/x.jpeg", "/f.woff2", "/robots.txt",
        "/sitemap.xml", "/favicon.ico", "/a.map", "/d.pdf", "/z.zip"}) {
    EXPECT_TRUE(IsAssetPath(a)) << a;
  }
  for (std::string_view page : {"/", "/blog/", "/about", "/index.html",
                                "/a.php?f=x.png", "/v1.2/notes", "/x.js/"}) {
    EXPECT_FALSE(IsAssetPath(page)) << page;
  }
  f = LogFilter{};
  p = Parse(LogFormat::kCombined, Combined("1.2.3.4", "GET / HTTP/1.1", 404));
  EXPECT_EQ(SkipReason(p.r, f, "example.com"), "status");
  p = Parse(LogFormat::kCombined, Combined("1.2.3.4", "GET / HTTP/1.1", 301));
  EXPECT_EQ(SkipReason(p.r, f, "example.com"), "");
  f.status_max = 299;
  EXPECT_EQ(SkipReason(p.r, f, "example.com"), "status");
  p = Parse(LogFormat::kCombined, Combined("1.2.3.4", "POST /f HTTP/1.1"));
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "method");
  p = Parse(LogFormat::kCombined, Combined("1.2.3.4", "HEAD / HTTP/1.1"));
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "method");
  // Absolute-form targets.
  p = Parse(LogFormat::kCombined,
            Combined("1.2.3.4", "GET http://www.example.com/p HTTP/1.1"));
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "");
  EventInput ev;
  ToEventInput(p.r, "example.com", &ev);
  EXPECT_EQ(ev.url, "https://www.example.com/p");
  p = Parse(LogFormat::kCombined,
            Combined("1.2.3.4", "GET http://evil.test/p HTTP/1.1"));
  EXPECT_EQ(SkipReason(p.r, LogFilter{}, "example.com"), "host");

  EXPECT_EQ(ParseStatusRange("200-399"), std::make_pair(200, 399));
  EXPECT_EQ(ParseStatusRange("200"), std::make_pair(200, 200));
  EXPECT_FALSE(ParseStatusRange("399-200"));
  EXPECT_FALSE(ParseStatusRange("2xx"));
}

// ------------------------------------------------ differential references ---
// The parser and asset filter as they were before their speed-ups (SSE2
// quote scan, one-pass extension lookup): the simple code the fast code must
// agree with on every input.
namespace reference {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

int Digits2(const char* p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return !s.empty();
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int MonthFromAbbrev(const char* p) {
  const char a = Lower(p[0]), b = Lower(p[1]), c = Lower(p[2]);
  switch (a) {
    case 'j':
      if (b == 'a' && c == 'n') return 1;
      if (b == 'u' && c == 'n') return 6;
      if (b == 'u' && c == 'l') return 7;
      return 0;
    case 'f':
      return b == 'e' && c == 'b' ? 2 : 0;
    case 'm':
      if (b == 'a' && c == 'r') return 3;
      if (b == 'a' && c == 'y') return 5;
      return 0;
    case 'a':
      if (b == 'p' && c == 'r') return 4;
      if (b == 'u' && c == 'g') return 8;
      return 0;
    case 's':
      return b == 'e' && c == 'p' ? 9 : 0;
    case 'o':
      return b == 'c' && c == 't' ? 10 : 0;
    case 'n':
      return b == 'o' && c == 'v' ? 11 : 0;
    case 'd':
      return b == 'e' && c == 'c' ? 12 : 0;
  }
  return 0;
}

// "10/Oct/2000:13:55:36 -0700" (exactly 26 characters).
bool ParseClfTime(std::string_view s, absl::Time* out) {
  if (s.size() != 26) return false;
  const char* p = s.data();
  if (p[2] != '/' || p[6] != '/' || p[11] != ':' || p[14] != ':' ||
      p[17] != ':' || p[20] != ' ' || (p[21] != '+' && p[21] != '-')) {
    return false;
  }
  static constexpr int kDigitAt[] = {0,  1,  7,  8,  9,  10, 12, 13,
                                     15, 16, 18, 19, 22, 23, 24, 25};
  for (int i : kDigitAt) {
    if (!IsDigit(p[i])) return false;
  }
  const int day = Digits2(p);
  const int month = MonthFromAbbrev(p + 3);
  const int year = Digits2(p + 7) * 100 + Digits2(p + 9);
  const int hour = Digits2(p + 12), minute = Digits2(p + 15),
            second = Digits2(p + 18);
  const int off_h = Digits2(p + 22), off_m = Digits2(p + 24);
  if (month == 0 || day < 1 || hour > 23 || minute > 59 || second > 60 ||
      off_h > 23 || off_m > 59) {
    return false;
  }
  static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kMonthDays[month - 1] || (month == 2 && day == 29 && !leap)) {
    return false;
  }
  int64_t secs = DaysFromCivil(year, month, day) * 86400 + hour * 3600 +
                 minute * 60 + second;
  const int64_t off = off_h * 3600 + off_m * 60;
  secs += p[21] == '+' ? -off : off;
  *out = absl::FromUnixSeconds(secs);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Appends `raw` to *scratch with Apache (\" \\) and nginx (\xHH) escapes
// undone; \xHH of non-ASCII bytes stay as written (keeps the text valid
// UTF-8). Returns a view of the appended text. *scratch has enough capacity
// reserved by the caller, so earlier views stay valid.
std::string_view Unescape(std::string_view raw, std::string* scratch) {
  const size_t start = scratch->size();
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      const char n = raw[i + 1];
      if (n == '"' || n == '\\') {
        scratch->push_back(n);
        ++i;
        continue;
      }
      if (n == 'x' && i + 3 < raw.size()) {
        const int hi = HexValue(raw[i + 2]), lo = HexValue(raw[i + 3]);
        if (hi >= 0 && lo >= 0 && hi < 8) {
          scratch->push_back(static_cast<char>(hi * 16 + lo));
          i += 3;
          continue;
        }
      }
    }
    scratch->push_back(c);
  }
  return std::string_view(scratch->data() + start, scratch->size() - start);
}

// Reads a quoted field starting at line[*pos] == '"'. Sets *pos past the
// closing quote. A quote preceded by an odd number of backslashes is escaped.
bool Quoted(std::string_view line, size_t* pos, std::string_view* raw,
            bool* escaped) {
  if (*pos >= line.size() || line[*pos] != '"') return false;
  const size_t open = *pos + 1;
  size_t i = open;
  *escaped = false;
  while (true) {
    const void* q = std::memchr(line.data() + i, '"', line.size() - i);
    if (q == nullptr) return false;
    const size_t at = static_cast<const char*>(q) - line.data();
    size_t bs = 0;
    while (at - bs > open && line[at - bs - 1] == '\\') ++bs;
    if (bs % 2 == 0) {
      *raw = line.substr(open, at - open);
      *pos = at + 1;
      if (!*escaped) {
        *escaped = std::memchr(raw->data(), '\\', raw->size()) != nullptr;
      }
      return true;
    }
    *escaped = true;
    i = at + 1;
  }
}

std::string_view Field(std::string_view raw, bool escaped,
                       std::string* scratch) {
  if (raw == "-") return {};
  return escaped ? Unescape(raw, scratch) : raw;
}

bool Fail(std::string_view* error, std::string_view why) {
  if (error != nullptr) *error = why;
  return false;
}

// Apache/nginx common and combined:
//   %h %l %u [%t] "%r" %>s %b ["%{Referer}i" "%{User-Agent}i" …]
bool RefParseClf(std::string_view line, bool combined, LogRecord* out,
                 std::string* scratch, std::string_view* error) {
  scratch->clear();
  scratch->reserve(line.size());
  const size_t sp = line.find(' ');
  if (sp == 0 || sp == std::string_view::npos) {
    return Fail(error, "no client address");
  }
  out->ip = line.substr(0, sp);
  if (out->ip.size() > 2 && out->ip.front() == '[' && out->ip.back() == ']') {
    out->ip = out->ip.substr(1, out->ip.size() - 2);
  }
  // %l and %u (which may hold spaces) up to " [".
  const size_t lb = line.find(" [", sp);
  if (lb == std::string_view::npos) return Fail(error, "no [time]");
  const size_t t0 = lb + 2;
  if (t0 + 27 > line.size() || line[t0 + 26] != ']') {
    return Fail(error, "bad time");
  }
  if (!ParseClfTime(line.substr(t0, 26), &out->ts)) {
    return Fail(error, "bad time");
  }
  size_t pos = t0 + 27;
  if (pos + 1 >= line.size() || line[pos] != ' ') {
    return Fail(error, "truncated after time");
  }
  ++pos;
  std::string_view request;
  bool escaped;
  if (!Quoted(line, &pos, &request, &escaped)) {
    return Fail(error, "bad request field");
  }
  if (escaped) request = Unescape(request, scratch);
  out->method = {};
  out->target = {};
  if (const size_t s1 = request.find(' '); s1 != std::string_view::npos) {
    out->method = request.substr(0, s1);
    std::string_view rest = request.substr(s1 + 1);
    const size_t s2 = rest.rfind(' ');
    if (s2 != std::string_view::npos &&
        rest.substr(s2 + 1).starts_with("HTTP/")) {
      rest = rest.substr(0, s2);
    }
    out->target = rest;
  }
  // Status and size.
  if (pos + 4 > line.size() || line[pos] != ' ' || !IsDigit(line[pos + 1]) ||
      !IsDigit(line[pos + 2]) || !IsDigit(line[pos + 3])) {
    return Fail(error, "bad status");
  }
  out->status = (line[pos + 1] - '0') * 100 + Digits2(line.data() + pos + 2);
  pos += 4;
  if (pos >= line.size() || line[pos] != ' ') return Fail(error, "no size");
  ++pos;
  size_t size_end = line.find(' ', pos);
  if (size_end == std::string_view::npos) size_end = line.size();
  const std::string_view size = line.substr(pos, size_end - pos);
  if (size != "-" && !AllDigits(size)) return Fail(error, "bad size");
  pos = size_end;
  out->host = {};
  out->referrer = {};
  out->user_agent = {};
  if (!combined) return true;
  std::string_view raw;
  if (pos + 1 >= line.size() || line[pos] != ' ') {
    return Fail(error, "no referrer");
  }
  ++pos;
  if (!Quoted(line, &pos, &raw, &escaped)) return Fail(error, "bad referrer");
  out->referrer = Field(raw, escaped, scratch);
  if (pos + 1 >= line.size() || line[pos] != ' ') {
    return Fail(error, "no user agent");
  }
  ++pos;
  if (!Quoted(line, &pos, &raw, &escaped)) {
    return Fail(error, "bad user agent");
  }
  out->user_agent = Field(raw, escaped, scratch);
  return true;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

constexpr std::string_view kAssetExtensions[] = {
    "css",        "js",   "mjs",  "png", "jpg",  "jpeg", "gif",  "svg",
    "ico",        "webp", "avif", "bmp", "tif",  "tiff", "woff", "woff2",
    "ttf",        "otf",  "eot",  "map", "txt",  "xml",  "json", "pdf",
    "zip",        "gz",   "tgz",  "bz2", "xz",   "7z",   "rar",  "tar",
    "mp4",        "webm", "mp3",  "ogg", "wav",  "flac", "m4a",  "mov",
    "avi",        "wasm", "csv",  "rss", "atom", "apk",  "dmg",  "exe",
    "iso",        "doc",  "docx", "xls", "xlsx", "ppt",  "pptx", "swf",
    "webmanifest"};

bool RefIsAssetPath(std::string_view path) {
  const size_t q = path.find_first_of("?#");
  if (q != std::string_view::npos) path = path.substr(0, q);
  const size_t slash = path.rfind('/');
  if (slash != std::string_view::npos) path = path.substr(slash + 1);
  const size_t dot = path.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view ext = path.substr(dot + 1);
  if (ext.empty() || ext.size() > 11) return false;
  for (std::string_view a : kAssetExtensions) {
    if (EqualsIgnoreCase(ext, a)) return true;
  }
  return false;
}

}  // namespace reference

// A random combined/common line from pieces that hit the parser's branches:
// spaces and '[' in %l %u, quotes and backslash runs in the quoted fields
// (before and after 16-byte boundaries), \xHH escapes, broken times, a
// missing HTTP/ version; then maybe truncated or with one byte changed.
std::string RandomClfLine(std::mt19937& rng) {
  auto pick = [&](std::initializer_list<std::string_view> l) {
    // The first (well-formed) piece half the time.
    return std::string(l.begin()[rng() % 2 ? 0 : rng() % l.size()]);
  };
  // Mostly plain bytes; a quote or backslash one time in 16, so that a
  // fair share of the lines parse.
  auto field = [&](size_t max_len) {
    static constexpr char kPlain[] = "aZ/ .?x4F-1[]H";
    std::string s;
    const size_t n = rng() % (max_len + 1);
    for (size_t i = 0; i < n; ++i) {
      const unsigned r = rng();
      s.push_back(r % 16 == 0 ? "\"\\"[(r >> 4) % 2]
                              : kPlain[(r >> 4) % (sizeof(kPlain) - 1)]);
    }
    return s;
  };
  std::string line = pick({"1.2.3.4", "[2001:db8::1]", "", "h"});
  line += pick({" - - ", " - u ser ", " a[b - ", " ", "  - [x] - "});
  line += pick({"[10/Oct/2023:13:55:36 -0700]", "[29/Feb/2023:00:00:00 +0000]",
                "[10/Oct/2023:13:55:36]", "[10/oct/2024:23:59:60 +2359]", "["});
  line += " \"";
  line += pick({"GET ", "POST ", "", "GET"});
  line += field(40);
  line += pick({" HTTP/1.1", " HTTP/", "", " HTTP"});
  line += "\" ";
  line += pick({"200", "404", "2x0", "20"});
  line += pick({" 123", " -", " 1a", "", " "});
  line += " \"" + field(40) + "\" \"" + field(60) + "\"";
  line += pick({"", " \"extra\"", " x"});
  switch (rng() % 4) {
    case 0:
      line.resize(rng() % (line.size() + 1));
      break;
    case 1:
      if (!line.empty()) line[rng() % line.size()] = "\" \\[]-"[rng() % 6];
      break;
  }
  return line;
}

void ExpectSameRecord(const LogRecord& a, const LogRecord& b,
                      std::string_view line) {
  EXPECT_EQ(a.ip, b.ip) << line;
  EXPECT_EQ(a.method, b.method) << line;
  EXPECT_EQ(a.target, b.target) << line;
  EXPECT_EQ(a.host, b.host) << line;
  EXPECT_EQ(a.referrer, b.referrer) << line;
  EXPECT_EQ(a.user_agent, b.user_agent) << line;
  EXPECT_EQ(a.status, b.status) << line;
  EXPECT_EQ(a.ts, b.ts) << line;
}

TEST(LogsTest, ClfParserAgreesWithReference) {
  std::mt19937 rng(8);
  int parsed = 0;
  for (int i = 0; i < 200000; ++i) {
    const std::string line = RandomClfLine(rng);
    for (bool combined : {true, false}) {
      LogRecord got, want;
      std::string got_scratch, want_scratch;
      std::string_view got_error, want_error;
      const bool ok =
          ParseLogLine(combined ? LogFormat::kCombined : LogFormat::kCommon,
                       line, &got, &got_scratch, &got_error);
      const bool want_ok = reference::RefParseClf(line, combined, &want,
                                                  &want_scratch, &want_error);
      ASSERT_EQ(ok, want_ok) << line;
      if (ok) {
        ++parsed;
        ExpectSameRecord(got, want, line);
      } else {
        EXPECT_EQ(got_error, want_error) << line;
      }
      if (HasFailure()) return;
    }
  }
  EXPECT_GT(parsed, 20000);  // the generator reaches the end of a line
}

TEST(LogsTest, IsAssetPathAgreesWithReference) {
  std::mt19937 rng(8);
  static constexpr std::string_view kPieces[] = {
      "/",   ".",      "?",           "#",     "a",  "Z",
      "css", "JS",     "webmanifest", "woff2", "x.", "/v1.2",
      "Png", "tar.gz", "0123456789",  "%2E"};
  for (int i = 0; i < 300000; ++i) {
    std::string path;
    const int n = static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) path += kPieces[rng() % std::size(kPieces)];
    ASSERT_EQ(IsAssetPath(path), reference::RefIsAssetPath(path)) << path;
  }
  for (std::string_view ext_view : reference::kAssetExtensions) {
    const std::string ext(ext_view);
    std::string upper = ext;
    for (char& c : upper) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    for (const std::string& path :
         {"/a." + ext, "/a." + upper + "?q=1", "/a." + ext + "x",
          "/." + ext + "#f", "/a." + ext + "/", "a.b" + ext}) {
      ASSERT_EQ(IsAssetPath(path), reference::RefIsAssetPath(path)) << path;
    }
  }
}

TEST(LogsTest, Detect) {
  std::string c = Combined("1.2.3.4", "GET / HTTP/1.1");
  std::string common =
      "1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1";
  std::string caddy =
      R"({"ts":1.5e9,"request":{"remote_ip":"1.2.3.4","method":"GET",)"
      R"("uri":"/"},"status":200})";
  EXPECT_EQ(DetectLogFormat({"", c, "junk", c}), LogFormat::kCombined);
  EXPECT_EQ(DetectLogFormat({common, common}), LogFormat::kCommon);
  EXPECT_EQ(DetectLogFormat({"  ", caddy}), LogFormat::kCaddyJson);
  EXPECT_EQ(DetectLogFormat({"junk", ""}), std::nullopt);
  EXPECT_EQ(LogFormatFromName("nginx"), LogFormat::kCombined);
  EXPECT_EQ(LogFormatFromName("caddy-json"), LogFormat::kCaddyJson);
  EXPECT_EQ(LogFormatFromName("w3c"), std::nullopt);
}

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "logs_test_", getpid(), "_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    Options o;
    o.store_url = "memory://";
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = *std::move(e);
    ASSERT_TRUE(engine_->AddSite({.domain = "example.com"}).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(std::string_view name, std::string_view text) {
    std::string path = (dir_ / std::string(name)).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  ImportTotals Import(const std::string& path, FileImport* out = nullptr) {
    auto r = LogReader::Open(path);
    EXPECT_TRUE(r.ok()) << r.status();
    ImportTotals t;
    ImportOptions o;
    o.site = "example.com";
    o.batch_size = 3;
    auto f = ImportLog(*engine_, **r, o, &t);
    EXPECT_TRUE(f.ok()) << f.status();
    if (out && f.ok()) *out = *f;
    return t;
  }

  int64_t Pageviews(bool include_imports = true) {
    auto r = engine_->Query(absl::StrCat(
        R"({"site_id":"example.com","date_range":"all","metrics":["pageviews"])",
        include_imports ? "" : R"(,"include":{"imports":false})", "}"));
    EXPECT_TRUE(r.ok()) << r.status();
    size_t at = r->find("\"results\":[{\"metrics\":[");
    if (at == std::string::npos) {  // no rows: nothing counted
      EXPECT_THAT(*r, HasSubstr("\"results\":[]"));
      return 0;
    }
    return std::stoll(r->substr(at + 23));
  }

  std::string Lines(int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) {
      s += Combined(absl::StrCat("10.0.", i / 250, ".", i % 250),
                    absl::StrCat("GET /p", i % 7, " HTTP/1.1"), 200, "-", kUa,
                    absl::StrFormat("10/Oct/2023:13:%02d:%02d +0000",
                                    (i / 60) % 60, i % 60));
      s += "\n";
    }
    return s;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ImportTest, ImportsSkipsAndResumes) {
  std::string text = Lines(0, 10) + Combined("1.1.1.1", "GET /a.css HTTP/1.1") +
                     "\n" + Combined("1.1.1.1", "GET /x HTTP/1.1", 500) + "\n" +
                     Combined("1.1.1.1", "POST /x HTTP/1.1") + "\n" +
                     Combined("66.249.66.1", "GET /x HTTP/1.1", 200, "-",
                              "Mozilla/5.0 (compatible; Googlebot/2.1; "
                              "+http://www.google.com/bot.html)") +
                     "\n" + "this is not a log line\n\n";
  std::string path = Write("access.log", text);
  ImportTotals t = Import(path);
  EXPECT_EQ(t.imported, 10);
  EXPECT_EQ(t.skipped["asset"], 1);
  EXPECT_EQ(t.skipped["status"], 1);
  EXPECT_EQ(t.skipped["method"], 1);
  EXPECT_EQ(t.skipped["bot:crawler"], 1);
  EXPECT_EQ(t.malformed, 1);
  ASSERT_EQ(t.malformed_shown.size(), 1u);
  EXPECT_EQ(t.malformed_shown[0].first, 15);
  EXPECT_EQ(Pageviews(), 10);
  EXPECT_EQ(Pageviews(false), 0);

  // Again: nothing new.
  t = Import(path);
  EXPECT_EQ(t.imported, 0);
  EXPECT_EQ(t.lines, 0);
  EXPECT_EQ(t.skipped["duplicate"], 16);
  EXPECT_EQ(Pageviews(), 10);

  // The log grew.
  Write("access.log", text + Lines(10, 15));
  t = Import(path);
  EXPECT_EQ(t.imported, 5);
  EXPECT_EQ(t.lines, 5);
  EXPECT_EQ(Pageviews(), 15);
}

TEST_F(ImportTest, PartialLastLineWaits) {
  std::string full = Lines(0, 8);
  std::string cut = full.substr(0, full.size() - 30);  // mid-line, no "\n"
  std::string path = Write("a.log", cut);
  FileImport f;
  ImportTotals t = Import(path, &f);
  EXPECT_EQ(t.imported, 7);
  EXPECT_EQ(t.malformed, 0);
  EXPECT_TRUE(f.partial_last_line);
  Write("a.log", full);
  t = Import(path, &f);
  EXPECT_EQ(t.imported, 1);
  EXPECT_EQ(t.malformed, 0);
  EXPECT_EQ(f.end_line, 8);
  EXPECT_EQ(Pageviews(), 8);
}

TEST_F(ImportTest, GzipIsTheSameFile) {
  std::string text = Lines(0, 20);
  std::string gz = (dir_ / "a.log.gz").string();
  gzFile g = gzopen(gz.c_str(), "wb");
  gzwrite(g, text.data(), text.size());
  gzclose(g);
  ImportTotals t = Import(gz);
  EXPECT_EQ(t.imported, 20);
  EXPECT_EQ(Pageviews(), 20);
  // The uncompressed log (same first line) grew by 2 lines.
  t = Import(Write("a.log", text + Lines(20, 22)));
  EXPECT_EQ(t.imported, 2);
  EXPECT_EQ(Pageviews(), 22);
}

TEST_F(ImportTest, LongLinesAndCrlf) {
  std::string text = Lines(0, 2);
  text += Combined("1.2.3.4", "GET /long HTTP/1.1", 200, "-",
                   std::string(100000, 'x')) +
          "\n";
  text += Combined("1.2.3.4", "GET /crlf HTTP/1.1") + "\r\n";
  ImportTotals t = Import(Write("l.log", text));
  EXPECT_EQ(t.imported, 3);
  EXPECT_EQ(t.malformed, 1);
  ASSERT_EQ(t.malformed_shown.size(), 1u);
  EXPECT_EQ(t.malformed_shown[0].first, 3);
  EXPECT_THAT(t.malformed_shown[0].second, HasSubstr("too long"));
}

TEST_F(ImportTest, UndetectableFormat) {
  auto r = LogReader::Open(Write("x.log", "hello\nworld\n"));
  ASSERT_TRUE(r.ok());
  ImportTotals t;
  ImportOptions o;
  o.site = "example.com";
  auto f = ImportLog(*engine_, **r, o, &t);
  EXPECT_FALSE(f.ok());
}

}  // namespace
}  // namespace analytics
