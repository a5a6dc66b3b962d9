// UTF-8 validation shared by the input checks (ingest/canonical.cc) and URL
// decoding (enrich/url.cc). Hand-written rather than taken from a library:
// none of the project's packaged dependencies exposes a strict validator
// (RapidJSON's is tied to its streams), and this one is on the per-event path.
#ifndef ANALYTICS_CORE_UTF8_H_
#define ANALYTICS_CORE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace analytics {

// Strict UTF-8: rejects overlong forms, surrogates and code points above
// U+10FFFF. Counts code points into *chars when valid.
inline bool ValidUtf8(std::string_view s, size_t* chars = nullptr) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  size_t n = 0;
  while (p < end) {
    // ASCII fast path, 8 bytes at a time.
    while (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ULL) break;
      p += 8;
      n += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (end - p < 2 || (p[1] & 0xC0) != 0x80) return false;
      p += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) {
        return false;
      }
      if (c == 0xE0 && p[1] < 0xA0) return false;   // overlong
      if (c == 0xED && p[1] >= 0xA0) return false;  // surrogate
      p += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
          (p[3] & 0xC0) != 0x80) {
        return false;
      }
      if (c == 0xF0 && p[1] < 0x90) return false;   // overlong
      if (c == 0xF4 && p[1] >= 0x90) return false;  // > U+10FFFF
      p += 4;
    } else {
      return false;  // continuation byte, C0/C1, F5..FF
    }
    ++n;
  }
  if (chars != nullptr) *chars = n;
  return true;
}

}  // namespace analytics

#endif  // ANALYTICS_CORE_UTF8_H_
