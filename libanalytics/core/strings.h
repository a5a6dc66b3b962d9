// Bridges std::string_view and absl::string_view. Debian 12's Abseil is built
// with its own absl::string_view (not an alias of std::string_view), so code
// that speaks std::string_view converts at the Abseil call sites.
#ifndef ANALYTICS_CORE_STRINGS_H_
#define ANALYTICS_CORE_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace analytics {

inline absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view SV(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace analytics

#endif  // ANALYTICS_CORE_STRINGS_H_
