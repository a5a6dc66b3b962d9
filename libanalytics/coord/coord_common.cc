// Helpers shared by the coordinator backends (see coord_common.h).
#include "libanalytics/coord/coord_common.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace analytics {
namespace coord {

absl::Status CheckDistinctKeys(absl::Span<const SessionWrite> writes) {
  if (writes.size() < 2) return absl::OkStatus();
  absl::flat_hash_set<std::pair<int64_t, uint64_t>> seen;
  seen.reserve(writes.size());
  for (const SessionWrite& w : writes) {
    if (!seen.insert({w.key.site_id, w.key.visitor_id}).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "coordinator: StoreSessions batch holds two writes for site ",
          w.key.site_id, " visitor ", w.key.visitor_id));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLease(std::string_view name, std::string_view holder) {
  if (name.empty()) {
    return absl::InvalidArgumentError("coordinator: empty lease name");
  }
  if (holder.empty()) {
    return absl::InvalidArgumentError("coordinator: empty lease holder");
  }
  return absl::OkStatus();
}

absl::Status CheckCounterArgs(size_t keys, size_t costs) {
  if (keys == costs) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "coordinator: AddToCounters got ", keys, " keys but ", costs, " costs"));
}

}  // namespace coord
}  // namespace analytics
