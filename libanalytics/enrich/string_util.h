// Private helpers for the enrich module. The Debian 12 abseil is built with
// its own absl::string_view (not an alias of std::string_view), so these
// bridge the two and provide the few std::string_view utilities we need.
#ifndef ANALYTICS_ENRICH_STRING_UTIL_H_
#define ANALYTICS_ENRICH_STRING_UTIL_H_

#include <cstddef>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace analytics::enrich_internal {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

inline std::string_view ToStd(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

inline std::string_view StripWhitespace(std::string_view s) {
  return ToStd(absl::StripAsciiWhitespace(ToAbsl(s)));
}

inline bool StartsWithIgnoreCase(std::string_view text,
                                 std::string_view prefix) {
  return absl::StartsWithIgnoreCase(ToAbsl(text), ToAbsl(prefix));
}

}  // namespace analytics::enrich_internal

#endif  // ANALYTICS_ENRICH_STRING_UTIL_H_
