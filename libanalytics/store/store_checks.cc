// Shared store checks (see store_checks.h).
#include "libanalytics/store/store_checks.h"

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace analytics {

absl::Status CheckConfigDoc(const ConfigDoc& doc) {
  if (doc.kind.empty() || doc.kind.size() > 64) {
    return absl::InvalidArgumentError(
        "store: config doc kind must be 1 to 64 bytes");
  }
  return CheckConfigDocJson(doc.json);
}

absl::Status CheckConfigDocJson(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: config doc json is not valid JSON: ",
                     rapidjson::GetParseError_En(d.GetParseError()),
                     " at offset ", d.GetErrorOffset()));
  }
  if (!d.IsObject()) {
    return absl::InvalidArgumentError(
        "store: config doc json must be a JSON object");
  }
  return absl::OkStatus();
}

absl::Status CheckJobRun(const JobRun& run) {
  if (run.job.empty()) {
    return absl::InvalidArgumentError("store: job run needs a job name");
  }
  if (run.holder.empty()) {
    return absl::InvalidArgumentError("store: job run needs a holder");
  }
  return absl::OkStatus();
}

bool JobRunTakeable(const JobRun& row, int64_t stale_before_ms) {
  return (row.state == kJobClaimed || row.state == kJobFailed) &&
         row.updated_ms < stale_before_ms;
}

}  // namespace analytics
