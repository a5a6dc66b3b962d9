// Fuzz target: Stats API v2 query bodies (ParseQuery: date ranges, metrics,
// dimensions, filters with and/or/not, RE2 patterns, order_by, pagination).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fuzz/fuzz_util.h"
#include "libanalytics/query/query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  analytics::SiteResolver sites =
      [](std::string_view id) -> absl::StatusOr<analytics::Site> {
    if (id != "example.com") return absl::NotFoundError("site: unknown");
    analytics::Site s;
    s.id = 1;
    s.domain = "example.com";
    s.timezone = "Europe/Berlin";
    return s;
  };
  auto spec =
      analytics::ParseQuery(json, sites, absl::FromUnixSeconds(1790812840));
  if (!spec.ok()) FUZZ_CHECK(!spec.status().message().empty());
  return 0;
}
