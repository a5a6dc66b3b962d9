// Shared helpers of the libFuzzer targets in fuzz/: a hard check that
// reports which invariant broke (libFuzzer saves the input that aborts).
#ifndef ANALYTICS_FUZZ_FUZZ_UTIL_H_
#define ANALYTICS_FUZZ_FUZZ_UTIL_H_

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "analytics/event.h"

// Aborts (a finding for libFuzzer) when `cond` is false.
#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                   \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

namespace analytics::fuzz {

// Every event a parser returns must satisfy the canonical limits, and an
// error must say what was wrong.
inline void CheckEvents(const absl::StatusOr<std::vector<EventInput>>& events) {
  if (!events.ok()) {
    FUZZ_CHECK(events.status().code() != absl::StatusCode::kOk);
    FUZZ_CHECK(!events.status().message().empty());
    return;
  }
  for (const EventInput& e : *events) {
    FUZZ_CHECK(ValidateEventInput(e).ok());
  }
}

// Every field of two parsers' events equal.
inline bool SameEvents(const std::vector<EventInput>& a,
                       const std::vector<EventInput>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const EventInput& x = a[i];
    const EventInput& y = b[i];
    if (x.site != y.site || x.name != y.name || x.url != y.url ||
        x.referrer != y.referrer || x.ts != y.ts || x.ip != y.ip ||
        x.user_agent != y.user_agent || x.props != y.props ||
        x.screen_width != y.screen_width || x.locale != y.locale ||
        x.timezone != y.timezone || x.country_hint != y.country_hint ||
        x.interactive != y.interactive || x.imported != y.imported) {
      return false;
    }
  }
  return true;
}

}  // namespace analytics::fuzz

#endif  // ANALYTICS_FUZZ_FUZZ_UTIL_H_
