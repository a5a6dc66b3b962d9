// Fuzz target: Stats API v1 parameters and filter strings (V1ToV2Query),
// then the v2 body it builds goes through ParseQuery. The first byte picks
// the endpoint; the rest is "key=value" lines.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "fuzz/fuzz_util.h"
#include "libanalytics/query/query.h"
#include "libanalytics/query/v1.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using analytics::V1Endpoint;
  static constexpr V1Endpoint kEndpoints[] = {
      V1Endpoint::kAggregate, V1Endpoint::kTimeseries, V1Endpoint::kBreakdown};
  const V1Endpoint endpoint = kEndpoints[data[0] % 3];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  analytics::V1Params params;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text =
        nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    params.emplace(std::string(line.substr(0, eq)),
                   std::string(line.substr(eq + 1)));
  }
  absl::StatusOr<std::string> v2 = analytics::V1ToV2Query(endpoint, params);
  if (!v2.ok()) {
    FUZZ_CHECK(!v2.status().message().empty());
    return 0;
  }
  analytics::SiteResolver sites =
      [](std::string_view) -> absl::StatusOr<analytics::Site> {
    analytics::Site s;
    s.id = 1;
    s.domain = "example.com";
    return s;
  };
  // The body V1ToV2Query builds is JSON that ParseQuery reads; it may still
  // be rejected (e.g. a bad filter value), but with a message.
  auto spec =
      analytics::ParseQuery(*v2, sites, absl::FromUnixSeconds(1790812840));
  if (!spec.ok()) FUZZ_CHECK(!spec.status().message().empty());
  return 0;
}
