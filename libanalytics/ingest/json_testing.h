// Test helper shared by the JSON parsers' differential tests (canonical_test,
// trackers_test): random byte-level edits of a valid input.
#ifndef ANALYTICS_INGEST_JSON_TESTING_H_
#define ANALYTICS_INGEST_JSON_TESTING_H_

#include <cstddef>
#include <random>
#include <string>
#include <string_view>

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

}  // namespace analytics::testing_json

#endif  // ANALYTICS_INGEST_JSON_TESTING_H_
