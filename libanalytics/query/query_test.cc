// Unit tests of query parsing, date ranges, filter evaluation and planning.
#include "libanalytics/query/query.h"

#include "gtest/gtest.h"

namespace analytics {
namespace {

// 2026-11-18 15:30 UTC (a Wednesday); Berlin is UTC+1 then.
const absl::Time kNow = absl::FromUnixSeconds(1795015800);

SiteResolver Sites() {
  return [](std::string_view id) -> absl::StatusOr<Site> {
    if (id != "example.com") return absl::NotFoundError("site_id: unknown");
    return Site{.id = 1,
                .domain = "example.com",
                .short_id = "abcdefghijkl",
                .timezone = "Europe/Berlin"};
  };
}

QuerySpec Parse(const std::string& rest) {
  auto q = ParseQuery(
      R"({"site_id":"example.com","metrics":["visitors"],)" + rest + "}",
      Sites(), kNow);
  EXPECT_TRUE(q.ok()) << q.status();
  return q.ok() ? *q : QuerySpec{};
}

std::string Local(int64_t ms) {
  absl::TimeZone tz;
  absl::LoadTimeZone("Europe/Berlin", &tz);
  return absl::FormatTime("%Y-%m-%d %H:%M", absl::FromUnixMillis(ms), tz);
}

TEST(QueryParseTest, RelativeRangesResolveInTheSiteZone) {
  QuerySpec q = Parse(R"("date_range":"day")");
  EXPECT_EQ(Local(q.from_ms), "2026-11-18 00:00");
  EXPECT_EQ(Local(q.to_ms), "2026-11-19 00:00");
  q = Parse(R"("date_range":"7d")");
  EXPECT_EQ(Local(q.from_ms), "2026-11-12 00:00");
  EXPECT_EQ(Local(q.to_ms), "2026-11-19 00:00");
  q = Parse(R"("date_range":"30d")");
  EXPECT_EQ(Local(q.from_ms), "2026-10-20 00:00");
  q = Parse(R"("date_range":"month")");
  EXPECT_EQ(Local(q.from_ms), "2026-11-01 00:00");
  EXPECT_EQ(Local(q.to_ms), "2026-12-01 00:00");
  q = Parse(R"("date_range":"6mo")");
  EXPECT_EQ(Local(q.from_ms), "2026-06-01 00:00");
  q = Parse(R"("date_range":"12mo")");
  EXPECT_EQ(Local(q.from_ms), "2025-12-01 00:00");
  q = Parse(R"("date_range":"year")");
  EXPECT_EQ(Local(q.from_ms), "2026-01-01 00:00");
  EXPECT_EQ(Local(q.to_ms), "2027-01-01 00:00");
  q = Parse(R"("date_range":"24h")");
  EXPECT_EQ(q.to_ms - q.from_ms, 24 * 3600 * 1000);
  EXPECT_EQ(q.to_ms % 3600000, 0);
  q = Parse(R"("date_range":["2026-01-01","2026-01-31"])");
  EXPECT_EQ(Local(q.from_ms), "2026-01-01 00:00");
  EXPECT_EQ(Local(q.to_ms), "2026-02-01 00:00");
  q = Parse(
      R"("date_range":["2026-01-01T10:00:00+01:00","2026-01-01T11:59:59+01:00"])");
  EXPECT_EQ(q.to_ms - q.from_ms, 2 * 3600 * 1000);
}

TEST(QueryParseTest, TimeDimensionPicksAGrainFromTheRange) {
  EXPECT_EQ(Parse(R"("date_range":"day","dimensions":["time"])").dims[0].grain,
            TimeGrain::kHour);
  EXPECT_EQ(Parse(R"("date_range":"30d","dimensions":["time"])").dims[0].grain,
            TimeGrain::kDay);
  EXPECT_EQ(Parse(R"("date_range":"12mo","dimensions":["time"])").dims[0].grain,
            TimeGrain::kMonth);
}

TEST(QueryParseTest, Errors) {
  for (
      const char* body : {
          R"({"site_id":"example.com","metrics":["visitors"],"date_range":["2026-02-01","2026-01-01"]})",
          R"({"site_id":"example.com","metrics":["visitors"],"date_range":"day","dimensions":["time:day","time:hour"]})",
          R"({"site_id":"example.com","metrics":["visitors"],"date_range":"day","pagination":{"limit":0}})",
          R"({"site_id":"example.com","metrics":["visitors"],"date_range":"day","filters":[["is","event:page","/"]]})",
          R"({"site_id":"example.com","metrics":["visitors"],"date_range":"day","filters":[["is","event:page",[]]]})",
          R"({"site_id":"example.com","metrics":["conversion_rate"],"date_range":"day"})",
          R"([1,2])",
      }) {
    auto q = ParseQuery(body, Sites(), kNow);
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
  EXPECT_EQ(
      ParseQuery(
          R"({"site_id":"other.com","metrics":["visitors"],"date_range":"day"})",
          Sites(), kNow)
          .status()
          .code(),
      absl::StatusCode::kNotFound);
}

TEST(FilterTest, Operators) {
  QuerySpec q = Parse(R"("date_range":"day","filters":[["or",[
      ["is","event:page",["/a","/b"]],
      ["and",[["contains","visit:source",["oo"]],["not",["matches","event:page",["^/x"]]]]]]]])");
  ASSERT_TRUE(q.filter.has_value());
  auto eval = [&](std::string page, std::string source) {
    return q.filter->Eval(
        [&](const Dimension& d) -> std::optional<std::string_view> {
          if (d.id == DimId::kPage) return std::string_view(page);
          return std::string_view(source);
        });
  };
  EXPECT_TRUE(eval("/a", ""));
  EXPECT_TRUE(eval("/c", "Google"));
  EXPECT_FALSE(eval("/x1", "Google"));
  EXPECT_FALSE(eval("/c", "Bing"));
}

TEST(FilterTest, CaseInsensitiveAndMissingProps) {
  QuerySpec q = Parse(
      R"("date_range":"day","filters":[["is_not","event:props:plan",["PRO"],{"case_sensitive":false}]])");
  auto eval = [&](std::optional<std::string_view> v) {
    return q.filter->Eval([&](const Dimension&) { return v; });
  };
  EXPECT_FALSE(eval("pro"));
  EXPECT_TRUE(eval("free"));
  EXPECT_TRUE(eval(std::nullopt));  // events without the prop are "not pro"
}

TEST(PlanTest, RollupsWhenOneDimensionAndAlignedRange) {
  EXPECT_EQ(PlanQuery(Parse(R"("date_range":"7d")")), "rollups");
  EXPECT_EQ(
      PlanQuery(Parse(
          R"("date_range":"7d","dimensions":["visit:source"],"filters":[["is_not","visit:source",["Google"]]])")),
      "rollups");
  EXPECT_EQ(
      PlanQuery(Parse(R"("date_range":"day","dimensions":["time:hour"])")),
      "rollups");
  EXPECT_EQ(
      PlanQuery(Parse(R"("date_range":"24h","dimensions":["event:page"])")),
      "rollups");
  // Two dimensions, exit pages, unaligned ranges: raw events.
  EXPECT_EQ(
      PlanQuery(Parse(
          R"("date_range":"7d","dimensions":["visit:source"],"filters":[["is","event:page",["/"]]])")),
      "events");
  EXPECT_EQ(
      PlanQuery(Parse(R"("date_range":"7d","dimensions":["visit:exit_page"])")),
      "events");
  EXPECT_EQ(
      PlanQuery(Parse(
          R"("date_range":["2026-01-01T10:30:00Z","2026-01-01T12:00:00Z"])")),
      "events");
  // Session metrics for an event dimension: only visits, one value per row.
  auto plan = [&](const std::string& metrics, const std::string& rest) {
    auto q =
        ParseQuery(R"({"site_id":"example.com","date_range":"7d","metrics":)" +
                       metrics + "," + rest + "}",
                   Sites(), kNow);
    EXPECT_TRUE(q.ok()) << q.status();
    return std::string(PlanQuery(*q));
  };
  EXPECT_EQ(plan(R"(["visits"])", R"("dimensions":["event:page"])"), "rollups");
  EXPECT_EQ(plan(R"(["visits"])", R"("filters":[["is","event:page",["/"]]])"),
            "rollups");
  EXPECT_EQ(
      plan(R"(["visits"])", R"("filters":[["contains","event:page",["/"]]])"),
      "events");
  EXPECT_EQ(plan(R"(["bounce_rate"])", R"("dimensions":["event:page"])"),
            "events");
  EXPECT_EQ(plan(R"(["visitors"])",
                 R"("filters":[["is_not","event:props:plan",["x"]]])"),
            "events");
}

}  // namespace
}  // namespace analytics
