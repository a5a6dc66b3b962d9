#include "libanalytics/query/v1.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libanalytics/query/query.h"

namespace analytics {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

V1Params P(
    std::initializer_list<std::pair<const std::string, std::string>> kv) {
  V1Params p(kv);
  p.emplace("site_id", "example.com");
  return p;
}

std::string Q(V1Endpoint e, const V1Params& p) {
  absl::StatusOr<std::string> r = V1ToV2Query(e, p);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : "";
}

void ExpectError(V1Endpoint e, const V1Params& p, const std::string& prefix) {
  absl::StatusOr<std::string> r = V1ToV2Query(e, p);
  ASSERT_FALSE(r.ok()) << *r;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), StartsWith(prefix));
}

constexpr V1Endpoint kAgg = V1Endpoint::kAggregate;
constexpr V1Endpoint kTs = V1Endpoint::kTimeseries;
constexpr V1Endpoint kBd = V1Endpoint::kBreakdown;

TEST(V1ToV2, Defaults) {
  EXPECT_EQ(Q(kAgg, P({})),
            R"({"site_id":"example.com","metrics":["visitors"],)"
            R"("date_range":"30d"})");
}

TEST(V1ToV2, RelativePeriodsWithoutDate) {
  for (const char* p : {"12mo", "6mo", "month", "30d", "7d", "day"}) {
    EXPECT_THAT(Q(kAgg, P({{"period", p}})),
                HasSubstr(std::string(R"("date_range":")") + p + "\""))
        << p;
  }
}

TEST(V1ToV2, DayWithDate) {
  EXPECT_THAT(Q(kAgg, P({{"period", "day"}, {"date", "2026-01-05"}})),
              HasSubstr(R"("date_range":["2026-01-05","2026-01-05"])"));
}

TEST(V1ToV2, MonthWithDate) {
  EXPECT_THAT(Q(kAgg, P({{"period", "month"}, {"date", "2024-02-17"}})),
              HasSubstr(R"("date_range":["2024-02-01","2024-02-29"])"));
}

TEST(V1ToV2, SevenAndThirtyDaysEndAtDate) {
  EXPECT_THAT(Q(kAgg, P({{"period", "7d"}, {"date", "2026-01-05"}})),
              HasSubstr(R"("date_range":["2025-12-30","2026-01-05"])"));
  EXPECT_THAT(Q(kAgg, P({{"period", "30d"}, {"date", "2026-01-05"}})),
              HasSubstr(R"("date_range":["2025-12-07","2026-01-05"])"));
}

TEST(V1ToV2, MonthsWithDate) {
  EXPECT_THAT(Q(kAgg, P({{"period", "6mo"}, {"date", "2026-03-10"}})),
              HasSubstr(R"("date_range":["2025-10-01","2026-03-31"])"));
  EXPECT_THAT(Q(kAgg, P({{"period", "12mo"}, {"date", "2026-03-10"}})),
              HasSubstr(R"("date_range":["2025-04-01","2026-03-31"])"));
}

TEST(V1ToV2, Custom) {
  EXPECT_THAT(
      Q(kAgg, P({{"period", "custom"}, {"date", "2025-12-01,2026-01-31"}})),
      HasSubstr(R"("date_range":["2025-12-01","2026-01-31"])"));
}

TEST(V1ToV2, PeriodAndDateErrors) {
  ExpectError(kAgg, P({{"period", "year2"}}), "period: unknown value 'year2'");
  ExpectError(kAgg, P({{"period", "custom"}}), "date: required");
  ExpectError(kAgg, P({{"period", "custom"}, {"date", "2026-01-01"}}),
              "date: expected two dates");
  ExpectError(kAgg,
              P({{"period", "custom"}, {"date", "2026-02-01,2026-01-01"}}),
              "date: end is before start");
  ExpectError(kAgg, P({{"period", "day"}, {"date", "2026-13-01"}}), "date:");
  ExpectError(kAgg, P({{"period", "day"}, {"date", "yesterday"}}), "date:");
}

TEST(V1ToV2, SiteIdRequired) {
  ExpectError(kAgg, V1Params{}, "site_id: required");
}

TEST(V1ToV2, Metrics) {
  EXPECT_THAT(Q(kAgg, P({{"metrics",
                          "visitors,pageviews,bounce_rate,"
                          "visit_duration"}})),
              HasSubstr(R"("metrics":["visitors","pageviews","bounce_rate",)"
                        R"("visit_duration"])"));
  ExpectError(kAgg, P({{"metrics", "visitors,clicks"}}),
              "metrics: unknown metric 'clicks'");
  ExpectError(kAgg, P({{"metrics", "visitors,"}}), "metrics:");
}

TEST(V1ToV2, FilterIs) {
  EXPECT_THAT(Q(kAgg, P({{"filters", "visit:country==DE|FR"}})),
              HasSubstr(R"("filters":[["is","visit:country",["DE","FR"]]])"));
}

TEST(V1ToV2, FilterIsNotAndConjunction) {
  EXPECT_THAT(
      Q(kAgg, P({{"filters", "event:page==/blog;visit:source!=Google"}})),
      HasSubstr(R"("filters":[["is","event:page",["/blog"]],)"
                R"(["is_not","visit:source",["Google"]]])"));
}

TEST(V1ToV2, FilterContains) {
  EXPECT_THAT(Q(kAgg, P({{"filters", "event:page~pricing"}})),
              HasSubstr(R"(["contains","event:page",["pricing"]])"));
}

TEST(V1ToV2, FilterWildcards) {
  EXPECT_THAT(Q(kAgg, P({{"filters", "event:page==/blog/**"}})),
              HasSubstr(R"(["matches","event:page",["^\\/blog\\/.*$"]])"));
  EXPECT_THAT(Q(kAgg, P({{"filters", "event:page!=/docs/*/intro"}})),
              HasSubstr(R"(["matches_not","event:page",)"
                        R"(["^\\/docs\\/[^/]*\\/intro$"]])"));
}

TEST(V1ToV2, FilterWildcardEscapesRegexCharacters) {
  EXPECT_THAT(Q(kAgg, P({{"filters", "event:page==/a.b(1)+?*|/x"}})),
              HasSubstr(R"(["matches","event:page",)"
                        R"(["^\\/a\\.b\\(1\\)\\+\\?[^/]*$","^\\/x$"]])"));
}

TEST(V1ToV2, FilterEscapedPipe) {
  EXPECT_THAT(Q(kAgg, P({{"filters", R"(event:props:q==a\|b|c)"}})),
              HasSubstr(R"(["is","event:props:q",["a|b","c"]])"));
}

TEST(V1ToV2, FilterErrors) {
  ExpectError(kAgg, P({{"filters", "event:page"}}), "filters: expected");
  ExpectError(kAgg, P({{"filters", "visit:planet==Mars"}}),
              "filters: unknown property 'visit:planet'");
  ExpectError(kAgg, P({{"filters", "event:page=/a"}}),
              "filters: unknown operator");
  ExpectError(kAgg, P({{"filters", "event:page==/a|"}}),
              "filters: empty value");
}

TEST(V1ToV2, Timeseries) {
  EXPECT_THAT(Q(kTs, P({})), HasSubstr(R"("dimensions":["time:day"])"));
  EXPECT_THAT(Q(kTs, P({{"interval", "month"}})),
              HasSubstr(R"("dimensions":["time:month"])"));
  EXPECT_THAT(Q(kTs, P({{"period", "day"}, {"interval", "hour"}})),
              HasSubstr(R"("dimensions":["time:hour"])"));
  EXPECT_THAT(Q(kTs, P({{"period", "12mo"}})),
              HasSubstr(R"("dimensions":["time:month"])"));
  ExpectError(kTs, P({{"interval", "minute"}}),
              "interval: unknown value 'minute'");
}

TEST(V1ToV2, BreakdownDefaults) {
  EXPECT_EQ(Q(kBd, P({{"property", "event:page"}})),
            R"({"site_id":"example.com","metrics":["visitors"],)"
            R"("date_range":"30d","dimensions":["event:page"],)"
            R"("order_by":[["visitors","desc"]],)"
            R"("pagination":{"limit":100,"offset":0}})");
}

TEST(V1ToV2, BreakdownPagination) {
  EXPECT_THAT(
      Q(kBd, P({{"property", "visit:source"}, {"limit", "50"}, {"page", "3"}})),
      HasSubstr(R"("pagination":{"limit":50,"offset":100})"));
  ExpectError(kBd, P({{"property", "visit:source"}, {"limit", "1001"}}),
              "limit: must be an integer from 1 to 1000");
  ExpectError(kBd, P({{"property", "visit:source"}, {"limit", "x"}}), "limit:");
  ExpectError(kBd, P({{"property", "visit:source"}, {"page", "0"}}), "page:");
}

TEST(V1ToV2, BreakdownProperty) {
  ExpectError(kBd, P({}), "property: required for breakdown");
  ExpectError(kBd, P({{"property", "visit:nope"}}),
              "property: unknown property");
  EXPECT_THAT(Q(kBd, P({{"property", "event:props:plan"}})),
              HasSubstr(R"("dimensions":["event:props:plan"])"));
}

TEST(V1ToV2, Compare) {
  EXPECT_THAT(
      Q(kAgg, P({{"compare", "previous_period"}})),
      HasSubstr(R"("include":{"comparisons":{"mode":"previous_period"}})"));
  ExpectError(kAgg, P({{"compare", "last_year"}}), "compare: unknown value");
}

// The bodies are ones the v2 parser accepts.
TEST(V1ToV2, V2ParserAcceptsBodies) {
  SiteResolver sites = [](std::string_view) -> absl::StatusOr<Site> {
    Site s;
    s.id = 1;
    s.domain = "example.com";
    return s;
  };
  const absl::Time now = absl::FromUnixSeconds(1790812840);
  const std::pair<V1Endpoint, V1Params> cases[] = {
      {kAgg, P({{"period", "7d"},
                {"date", "2026-01-05"},
                {"metrics", "visitors,bounce_rate,visit_duration"},
                {"compare", "previous_period"},
                {"filters", "event:page==/blog/**|/a*;visit:country!=DE"}})},
      {kTs, P({{"period", "month"}, {"interval", "date"}})},
      {kTs, P({{"period", "custom"}, {"date", "2026-01-01,2026-01-31"}})},
      {kBd, P({{"property", "event:props:plan"},
               {"page", "2"},
               {"filters", "event:name~sign"}})},
  };
  for (const auto& [endpoint, params] : cases) {
    std::string body = Q(endpoint, params);
    absl::StatusOr<QuerySpec> q = ParseQuery(body, sites, now);
    EXPECT_TRUE(q.ok()) << body << " " << q.status();
  }
  absl::StatusOr<QuerySpec> q = ParseQuery(
      Q(kAgg, P({{"period", "day"}, {"date", "2026-01-05"}})), sites, now);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->from_ms, 1767571200000);  // 2026-01-05T00:00:00Z
  EXPECT_EQ(q->to_ms, 1767657600000);
}

// ----------------------------------------------------------- responses

std::string R(V1Endpoint e, const V1Params& p, const std::string& v2) {
  absl::StatusOr<std::string> r = V2ToV1Response(e, p, v2);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : "";
}

TEST(V2ToV1, Aggregate) {
  EXPECT_EQ(
      R(kAgg, P({{"metrics", "visitors,bounce_rate,visit_duration"}}),
        R"({"results":[{"metrics":[12,37.5,61],"dimensions":[]}],)"
        R"("meta":{},"query":{"metrics":["visitors","bounce_rate",)"
        R"("visit_duration"]}})"),
      R"({"results":{"visitors":{"value":12},"bounce_rate":{"value":37.5},)"
      R"("visit_duration":{"value":61}}})");
}

TEST(V2ToV1, AggregateWithComparison) {
  EXPECT_EQ(R(kAgg, P({{"metrics", "visitors,pageviews"}}),
              R"({"results":[{"metrics":[12,30],"dimensions":[],)"
              R"("comparison":{"dimensions":[],"metrics":[10,40],)"
              R"("change":[20,-25]}}]})"),
            R"({"results":{"visitors":{"value":12,"change":20},)"
            R"("pageviews":{"value":30,"change":-25}}})");
}

TEST(V2ToV1, AggregateEmptyIsZero) {
  EXPECT_EQ(R(kAgg, P({}), R"({"results":[]})"),
            R"({"results":{"visitors":{"value":0}}})");
}

TEST(V2ToV1, Timeseries) {
  EXPECT_EQ(R(kTs, P({{"metrics", "visitors,pageviews"}}),
              R"({"results":[{"metrics":[3,5],"dimensions":["2026-01-01"]},)"
              R"({"metrics":[4,9],"dimensions":["2026-01-02"]}]})"),
            R"({"results":[{"date":"2026-01-01","visitors":3,"pageviews":5},)"
            R"({"date":"2026-01-02","visitors":4,"pageviews":9}]})");
}

TEST(V2ToV1, BreakdownKeys) {
  const std::string v2 = R"({"results":[{"metrics":[7],"dimensions":["X"]}]})";
  const std::pair<const char*, const char*> cases[] = {
      {"event:page", "page"},
      {"visit:source", "source"},
      {"visit:country", "country"},
      {"visit:browser", "browser"},
      {"event:name", "name"},
      {"event:props:plan", "plan"},
      {"visit:utm_source", "utm_source"},
      {"visit:entry_page", "entry_page"},
  };
  for (const auto& [prop, key] : cases) {
    EXPECT_EQ(
        R(kBd, P({{"property", prop}}), v2),
        std::string(R"({"results":[{")") + key + R"(":"X","visitors":7}]})")
        << prop;
  }
}

TEST(V2ToV1, BreakdownSeveralMetrics) {
  EXPECT_EQ(
      R(kBd,
        P({{"property", "event:page"}, {"metrics", "visitors,bounce_rate"}}),
        R"({"results":[{"metrics":[10,50],"dimensions":["/"]},)"
        R"({"metrics":[4,0],"dimensions":["/blog"]}]})"),
      R"({"results":[{"page":"/","visitors":10,"bounce_rate":50},)"
      R"({"page":"/blog","visitors":4,"bounce_rate":0}]})");
}

TEST(V2ToV1, Errors) {
  absl::StatusOr<std::string> r = V2ToV1Response(kAgg, P({}), "{");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = V2ToV1Response(kAgg, P({}), R"({"x":1})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = V2ToV1Response(kBd, P({}), R"({"results":[]})");
  EXPECT_THAT(std::string(r.status().message()), StartsWith("property:"));
}

}  // namespace
}  // namespace analytics
