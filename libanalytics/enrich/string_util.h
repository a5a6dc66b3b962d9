// Private helpers for the enrich module. The Debian 12 abseil is built with
// its own absl::string_view (not an alias of std::string_view), so these
// bridge the two and provide the few std::string_view utilities we need.
#ifndef ANALYTICS_ENRICH_STRING_UTIL_H_
#define ANALYTICS_ENRICH_STRING_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "libanalytics/core/short_bytes.h"

namespace analytics::enrich_internal {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

inline std::string_view ToStd(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

// absl::ascii_isspace without its table: ' ' and '\t' '\n' '\v' '\f' '\r'.
inline bool IsAsciiSpace(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

// absl::StripAsciiWhitespace, as two inline loops (absl's goes through
// std::find_if_not with a table lookup per character; this runs several
// times per event on fields that mostly have no whitespace).
inline std::string_view StripWhitespace(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && IsAsciiSpace(s[b])) ++b;
  while (e > b && IsAsciiSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

inline bool StartsWithIgnoreCase(std::string_view text,
                                 std::string_view prefix) {
  return absl::StartsWithIgnoreCase(ToAbsl(text), ToAbsl(prefix));
}

// *out = s for the short strings of an Event (name, browser and OS fields,
// screen, locale): when *out already has s's length, as a recycled Event's
// string often has, s's bytes (at most 16) are copied over it inline;
// otherwise (and for longer strings) std::string's assignment. Written by
// hand: the assignment's checks and its memcpy call cost ~30 instructions
// for a few bytes, and Enrich makes about ten of them per event.
template <typename S>  // std::string or std::string_view
inline void AssignShort(std::string* out, const S& s) {
  const size_t n = s.size();
  if (n != out->size() || n > 16) {
    *out = s;
    return;
  }
  CopyShortBytes(out->data(), s.data(), n);
}

// a == b for two strings of n bytes, without a memcmp call for n >= 8 (a
// call costs ~20 instructions for a time zone name): 8-byte words, the
// last one overlapping.
inline bool SameBytes(const char* a, const char* b, size_t n) {
  if (n < 8) return std::memcmp(a, b, n) == 0;
  auto word = [](const char* at) {
    uint64_t w;
    std::memcpy(&w, at, 8);
    return w;
  };
  uint64_t diff = word(a + n - 8) ^ word(b + n - 8);
  for (size_t i = 0; i + 8 < n; i += 8) diff |= word(a + i) ^ word(b + i);
  return diff == 0;
}

// A fast hash of a short string for this module's per-event caches and
// fixed tables (absl::Hash of a string over 16 bytes is an out-of-line call
// into Debian's shared abseil, ~140 instructions for a referrer or a time
// zone). 8-byte words with multiply-xorshift mixing: fine for cache slots and
// for tables whose keys are fixed; not meant to resist chosen collisions.
inline uint64_t FastHash(std::string_view s, uint64_t seed = 0) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ULL);
  auto mix = [&h](uint64_t w) {
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
  };
  auto load64 = [](const char* at) {
    uint64_t w;
    std::memcpy(&w, at, 8);
    return w;
  };
  for (; n >= 8; n -= 8, p += 8) mix(load64(p));
  if (n > 0) {
    if (s.size() >= 8) {
      mix(load64(s.data() + s.size() - 8));  // the last 8, overlapping
    } else if (n >= 4) {
      uint32_t a, b;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      mix(a | (static_cast<uint64_t>(b) << 32));
    } else {
      mix(static_cast<unsigned char>(p[0]) |
          (static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) |
          (static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16));
    }
  }
  h ^= h >> 32;
  h *= 0x94D049BB133111EBULL;
  h ^= h >> 29;
  return h;
}

}  // namespace analytics::enrich_internal

#endif  // ANALYTICS_ENRICH_STRING_UTIL_H_
