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

}  // namespace analytics::fuzz

#endif  // ANALYTICS_FUZZ_FUZZ_UTIL_H_
