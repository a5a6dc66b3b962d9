#include "libanalytics/ingest/logs.h"

#include <zlib.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
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
