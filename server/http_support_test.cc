// Tests of http_support.h's header lookups against cpp-httplib's own.
#include "server/http_support.h"

#include <httplib.h>

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace analytics::server {
namespace {

// Random case of each letter of `s`.
std::string RandomCase(const std::string& s, std::mt19937& rng) {
  std::string out = s;
  for (char& c : out) {
    if (rng() % 2)
      c = absl::ascii_isupper(c) ? absl::ascii_tolower(c)
                                 : absl::ascii_toupper(c);
  }
  return out;
}

// Differential: HeaderValue and HeaderValues answer what get_header_value
// (and get_header_value_count) answer, over random header sets with names
// in random case, repeated headers, and names that differ only in length
// or in one letter.
TEST(HeaderLookupTest, SameAsHttplib) {
  const std::vector<std::string> names = {
      "Origin",        "Referer",      "User-Agent",
      "CF-IPCountry",  "Forwarded",    "X-Forwarded-For",
      "Host",          "Content-Type", "Origins",
      "Orig",          "Referar",      "X-Forwarded-Fo",
      "Content-Length"};
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    httplib::Request req;
    const int n = static_cast<int>(rng() % 10);
    for (int i = 0; i < n; ++i) {
      req.headers.emplace(RandomCase(names[rng() % names.size()], rng),
                          "v" + std::to_string(rng() % 1000));
    }
    for (const std::string& name : names) {
      const std::string asked = RandomCase(name, rng);
      EXPECT_EQ(HeaderValue(req, asked), req.get_header_value(asked)) << asked;
      std::vector<std::string> want;
      for (size_t i = 0; i < req.get_header_value_count(asked); ++i) {
        want.push_back(req.get_header_value(asked, i));
      }
      EXPECT_EQ(HeaderValues(req, asked), want) << asked;
    }
  }
}

}  // namespace
}  // namespace analytics::server
