#include "libanalytics/enrich/country.h"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// Resolve into a reused string (the enricher's path) gives what the rules
// give (a reference written here: a CDN header of two letters, upper-cased,
// unless XX or T1; else the time zone's country), whatever the string held.
TEST(CountryResolverTest, ResolveIntoStringMatchesRules) {
  auto r = MakeResolver();
  auto reference = [&](std::string_view cdn, std::string_view tz) {
    while (!cdn.empty() && (cdn.front() == ' ' || cdn.front() == '\t')) {
      cdn.remove_prefix(1);
    }
    while (!cdn.empty() && (cdn.back() == ' ' || cdn.back() == '\t')) {
      cdn.remove_suffix(1);
    }
    if (cdn.size() == 2 && std::isalpha(static_cast<unsigned char>(cdn[0])) &&
        std::isalpha(static_cast<unsigned char>(cdn[1]))) {
      std::string code(cdn);
      for (char& c : code) c = static_cast<char>(std::toupper(c));
      if (code != "XX" && code != "T1") return code;
    }
    return r->FromTimezone(tz);
  };
  std::string out;
  int non_empty = 0;
  for (std::string_view cdn : {"", "fr", " de ", "XX", "xx", "T1", "t1", "FRA",
                               "1A", "\xC3\xA9", "  ", "a", "Gb\t"}) {
    for (std::string_view tz : {"", "Europe/Berlin", " Asia/Tokyo ",
                                "Nowhere/X", "UTC", "US/Pacific"}) {
      for (const char* before :
           {"", "junk", "a string longer than SSO ....."}) {
        out = before;
        r->Resolve("203.0.113.9", cdn, tz, &out);
        const std::string want = reference(cdn, tz);
        EXPECT_EQ(out, want) << cdn << " " << tz << " " << before;
        EXPECT_EQ(r->Resolve("203.0.113.9", cdn, tz), want) << cdn << " " << tz;
        non_empty += want.empty() ? 0 : 1;
      }
    }
  }
  EXPECT_GT(non_empty, 100);
}

// Resolve's time zone table (tz_table_, the hot path) agrees with the map
// FromTimezone reads, over every zone name tzdata lists (zones and links),
// and over near misses of them: prefixes, one character more or changed,
// case changes, whitespace around.
TEST(CountryResolverTest, TimezoneTableMatchesMap) {
  auto r = MakeResolver();
  std::vector<std::string> names;
  for (const char* file :
       {"/usr/share/zoneinfo/zone1970.tab", "/usr/share/zoneinfo/zone.tab",
        "/usr/share/zoneinfo/tzdata.zi"}) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> cols;
      std::string col;
      for (char c : line + "\t") {
        if (c == '\t' || c == ' ') {
          if (!col.empty()) cols.push_back(col);
          col.clear();
        } else {
          col += c;
        }
      }
      if (cols.size() >= 3 && cols[0] != "#") names.push_back(cols[2]);
      if (cols.size() >= 2 && (cols[0] == "Z" || cols[0] == "L")) {
        names.push_back(cols[1]);
      }
    }
  }
  ASSERT_GT(names.size(), 300u);
  std::string out = "junk left in the string";
  int found = 0;
  auto check = [&](std::string_view tz) {
    r->Resolve("", "", tz, &out);
    ASSERT_EQ(out, r->FromTimezone(tz)) << "[" << tz << "]";
    found += out.empty() ? 0 : 1;
  };
  for (const std::string& name : names) {
    check(name);
    check(" " + name + "\n");
    for (size_t n = 0; n < name.size(); ++n) check(name.substr(0, n));
    check(name + "x");
    std::string changed = name;
    changed[changed.size() / 2] ^= 0x20;
    check(changed);
    if (HasFailure()) return;
  }
  EXPECT_GT(found, 400);
}

}  // namespace
}  // namespace analytics
