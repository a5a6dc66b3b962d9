#include "libanalytics/enrich/country.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace analytics {
namespace {

std::unique_ptr<CountryResolver> MakeResolver(
    const std::string& zoneinfo = "/usr/share/zoneinfo") {
  auto r = CountryResolver::Create("", zoneinfo);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

TEST(CountryResolverTest, MissingMmdbIsAnError) {
  auto r = CountryResolver::Create("/nonexistent/GeoLite2-Country.mmdb");
  EXPECT_FALSE(r.ok());
}

TEST(CountryResolverTest, InvalidMmdbIsAnError) {
  const std::string path = ::testing::TempDir() + "/not_an_mmdb.mmdb";
  {
    std::ofstream out(path);
    out << "this is not a MaxMind database";
  }
  auto r = CountryResolver::Create(path);
  EXPECT_FALSE(r.ok());
  std::remove(path.c_str());
}

TEST(CountryResolverTest, EmptyPathHasNoDatabase) {
  auto r = MakeResolver();
  EXPECT_FALSE(r->has_database());
  EXPECT_EQ(r->Resolve("8.8.8.8", "", ""), "");
}

TEST(CountryResolverTest, TimezonesFromZoneTab) {
  auto r = MakeResolver();
  EXPECT_EQ(r->FromTimezone("Europe/Berlin"), "DE");
  EXPECT_EQ(r->FromTimezone("Europe/Zurich"), "CH");
  EXPECT_EQ(r->FromTimezone("Europe/Oslo"), "NO");
  EXPECT_EQ(r->FromTimezone("America/New_York"), "US");
  EXPECT_EQ(r->FromTimezone("America/Sao_Paulo"), "BR");
  EXPECT_EQ(r->FromTimezone("Asia/Tokyo"), "JP");
  EXPECT_EQ(r->FromTimezone("Asia/Kolkata"), "IN");
  EXPECT_EQ(r->FromTimezone("Australia/Sydney"), "AU");
  EXPECT_EQ(r->FromTimezone("Europe/Kyiv"), "UA");
}

TEST(CountryResolverTest, TimezoneAliases) {
  auto r = MakeResolver();
  EXPECT_EQ(r->FromTimezone("Asia/Calcutta"), "IN");
  EXPECT_EQ(r->FromTimezone("Europe/Kiev"), "UA");
  EXPECT_EQ(r->FromTimezone("Asia/Saigon"), "VN");
}

TEST(CountryResolverTest, UnknownTimezones) {
  auto r = MakeResolver();
  EXPECT_EQ(r->FromTimezone(""), "");
  EXPECT_EQ(r->FromTimezone("UTC"), "");
  EXPECT_EQ(r->FromTimezone("Etc/GMT+5"), "");
  EXPECT_EQ(r->FromTimezone("Mars/Olympus_Mons"), "");
}

TEST(CountryResolverTest, MissingZoneinfoGivesEmptyTable) {
  auto r = MakeResolver("/nonexistent/zoneinfo");
  EXPECT_EQ(r->FromTimezone("Europe/Berlin"), "");
}

TEST(CountryResolverTest, CustomZoneinfo) {
  const std::string dir = ::testing::TempDir();
  {
    std::ofstream(dir + "/zone1970.tab")
        << "# comment\nCH,DE,LI\t+4723+00832\tEurope/Zurich\tBusingen\n"
           "DE,DK,NO\t+5230+01322\tEurope/Berlin\n";
    std::ofstream(dir + "/zone.tab") << "DE\t+5230+01322\tEurope/Berlin\n";
    std::ofstream(dir + "/tzdata.zi") << "L Europe/Zurich Europe/Vaduz\n"
                                         "L Europe/Vaduz Europe/Alias2\n";
  }
  auto r = MakeResolver(dir);
  EXPECT_EQ(r->FromTimezone("Europe/Zurich"), "CH");
  EXPECT_EQ(r->FromTimezone("Europe/Berlin"), "DE");
  EXPECT_EQ(r->FromTimezone("Europe/Vaduz"), "CH");
  EXPECT_EQ(r->FromTimezone("Europe/Alias2"), "CH");
  for (const char* f : {"/zone1970.tab", "/zone.tab", "/tzdata.zi"}) {
    std::remove((dir + f).c_str());
  }
}

TEST(CountryResolverTest, CdnHeaderRules) {
  auto r = MakeResolver();
  EXPECT_EQ(r->Resolve("1.2.3.4", "FR", "Europe/Berlin"), "FR");
  EXPECT_EQ(r->Resolve("", "fr", ""), "FR");
  EXPECT_EQ(r->Resolve("", "XX", "Europe/Berlin"), "DE");
  EXPECT_EQ(r->Resolve("", "T1", "Europe/Berlin"), "DE");
  EXPECT_EQ(r->Resolve("", "", "Europe/Berlin"), "DE");
  EXPECT_EQ(r->Resolve("", "FRA", "Asia/Tokyo"), "JP");
  EXPECT_EQ(r->Resolve("", "1A", ""), "");
  EXPECT_EQ(r->Resolve("", "", ""), "");
}

}  // namespace
}  // namespace analytics
