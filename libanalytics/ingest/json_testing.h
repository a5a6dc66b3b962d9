// Test helpers shared by the JSON parsers' differential tests
// (canonical_test, trackers_test): random byte-level edits of a valid input,
// number texts around the fast parsers' limits.
#ifndef ANALYTICS_INGEST_JSON_TESTING_H_
#define ANALYTICS_INGEST_JSON_TESTING_H_

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace analytics::testing_json {

// `s` with 1 to 3 random edits: a byte erased, inserted or replaced (by one
// of `alphabet`), or the rest cut off.
inline std::string RandomEdits(std::string s, std::string_view alphabet,
                               std::mt19937_64& rng) {
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int k = 0; k < edits && !s.empty(); ++k) {
    const size_t at = rng() % s.size();
    const char c = alphabet[rng() % alphabet.size()];
    switch (rng() % 4) {
      case 0:
        s.erase(at, 1);
        break;
      case 1:
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c);
        break;
      case 2:
        s[at] = c;
        break;
      case 3:
        s.resize(at);
        break;
    }
  }
  return s;
}

// `n` random decimal digits; the first not 0 when `lead`.
inline std::string RandomDigits(int n, bool lead, std::mt19937_64& rng) {
  std::string d;
  for (int i = 0; i < n; ++i) {
    d.push_back(
        static_cast<char>('0' + (i == 0 && lead ? 1 + rng() % 9 : rng() % 10)));
  }
  return d;
}

// Numbers around what the fast parsers read themselves
// (-?(0|[1-9]\d*)(\.\d+)?, at most 15 digits): edge cases (signs, leading
// zeros, too many digits, exponents, malformed), then `random` generated
// ones (up to 17 integer and 12 fraction digits, some exponents).
inline std::vector<std::string> NumberTexts(int random, std::mt19937_64& rng) {
  std::vector<std::string> out = {"0",
                                  "-0",
                                  "0.0",
                                  "-0.0",
                                  "1",
                                  "-1",
                                  "1.0",
                                  "0.1",
                                  "0.5",
                                  "-0.5",
                                  "2.5",
                                  "1e0",
                                  "1e3",
                                  "1E-2",
                                  "01",
                                  "-01",
                                  "1.",
                                  ".5",
                                  "-",
                                  "+1",
                                  "1.2.3",
                                  "1-2",
                                  "00.5",
                                  "0.30000000000000004",
                                  "0.9999999999999999",
                                  "1.000000000000001",
                                  "123456789012345",
                                  "1234567890123456",
                                  "12345678901234567",
                                  "12345678901234.5",
                                  "1234567890123.45",
                                  "90071992547409.93",
                                  "9007199254740993",
                                  "0.000000000000001",
                                  "0.0000000000000001",
                                  "1790812840.123",
                                  "1790812840.1234567",
                                  "-999999999999999",
                                  "1440",
                                  "-1440",
                                  "99999.99",
                                  "100000",
                                  "100000.0",
                                  "100000.5",
                                  "100001"};
  for (int i = 0; i < random; ++i) {
    std::string n = rng() % 5 == 0 ? "-" : "";
    n += rng() % 6 == 0
             ? "0"
             : RandomDigits(1 + static_cast<int>(rng() % 17), true, rng);
    if (rng() % 3 != 0) {
      n += "." + RandomDigits(1 + static_cast<int>(rng() % 12), false, rng);
    }
    if (rng() % 12 == 0) n += "e" + std::to_string(rng() % 40);
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace analytics::testing_json

#endif  // ANALYTICS_INGEST_JSON_TESTING_H_
