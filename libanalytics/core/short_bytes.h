// Inline copies of short byte strings, for the per-event paths that copy a
// few bytes many times (an Event's visit fields, a session's packed visit).
// Written by hand: memcpy with a runtime length is a libc call (~20
// instructions of call, dispatch and return for a few bytes), and these run
// a dozen times per event.
#ifndef ANALYTICS_CORE_SHORT_BYTES_H_
#define ANALYTICS_CORE_SHORT_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/base/attributes.h"

namespace analytics {

// memcpy(dst, src, n) for ranges that do not overlap (or are the same):
// up to 16 bytes as two overlapping fixed-size moves, longer ones through
// memcpy.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CopyShortBytes(char* dst,
                                                        const char* src,
                                                        size_t n) {
  if (n > 16) {
    std::memcpy(dst, src, n);
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n > 0) {
    const char a = src[0], b = src[n / 2], c = src[n - 1];
    dst[0] = a;
    dst[n / 2] = b;
    dst[n - 1] = c;
  }
}

}  // namespace analytics

#endif  // ANALYTICS_CORE_SHORT_BYTES_H_
