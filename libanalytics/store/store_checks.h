// Checks and rules shared by every Store backend (store.h): the validation of
// configuration documents and job ledger rows, and when a job run may be
// claimed. Keeping them in one place keeps the backends' answers identical.
#ifndef ANALYTICS_STORE_STORE_CHECKS_H_
#define ANALYTICS_STORE_STORE_CHECKS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "analytics/store.h"

namespace analytics {

// Job ledger states (JobRun::state).
inline constexpr std::string_view kJobClaimed = "claimed";
inline constexpr std::string_view kJobFailed = "failed";

// InvalidArgument unless doc.kind is 1..64 bytes and doc.json is a JSON
// object.
absl::Status CheckConfigDoc(const ConfigDoc& doc);
// InvalidArgument unless json is a JSON object (for UpdateConfigDoc).
absl::Status CheckConfigDocJson(std::string_view json);

// InvalidArgument unless job and holder are non-empty.
absl::Status CheckJobRun(const JobRun& run);

// Whether ClaimJobRun may take an existing row over: its state is "claimed"
// or "failed" and it was last written before stale_before_ms.
bool JobRunTakeable(const JobRun& row, int64_t stale_before_ms);

}  // namespace analytics

#endif  // ANALYTICS_STORE_STORE_CHECKS_H_
