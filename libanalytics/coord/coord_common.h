// Small helpers shared by the coordinator backends (coord/ only).
#ifndef ANALYTICS_COORD_COORD_COMMON_H_
#define ANALYTICS_COORD_COORD_COMMON_H_

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "analytics/coordinator.h"

namespace analytics {
namespace coord {

// Live marks more than this behind a site's newest mark may be discarded.
inline constexpr absl::Duration kLiveKeep = absl::Hours(1);

// A TTL in whole milliseconds, at least 1.
inline int64_t TtlMs(absl::Duration ttl) {
  return std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl));
}

// A window length in milliseconds (at least 1) and the index of the window
// holding now_ms (floor division, so negative times work too).
inline int64_t WindowMs(absl::Duration window) { return TtlMs(window); }
inline int64_t WindowIndex(int64_t now_ms, int64_t window_ms) {
  int64_t q = now_ms / window_ms;
  if (now_ms % window_ms < 0) --q;
  return q;
}

// InvalidArgument when a batch holds two writes for one key.
absl::Status CheckDistinctKeys(absl::Span<const SessionWrite> writes);
// InvalidArgument for an empty lease name or holder ("" means "no holder").
absl::Status CheckLease(std::string_view name, std::string_view holder);
// InvalidArgument when keys and costs differ in length.
absl::Status CheckCounterArgs(size_t keys, size_t costs);

}  // namespace coord
}  // namespace analytics

#endif  // ANALYTICS_COORD_COORD_COMMON_H_
