// Fuzz target: the canonical event JSON (ParseEventJson), the shape of the
// CLI's JSON lines and of POST /api/track.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "analytics/event.h"
#include "fuzz/fuzz_util.h"
#include "libanalytics/ingest/canonical_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<analytics::EventInput> e = analytics::ParseEventJson(json);
  if (e.ok()) {
    FUZZ_CHECK(analytics::ValidateEventInput(*e).ok());
  } else {
    FUZZ_CHECK(!e.status().message().empty());
  }
  // Wherever the fast path answers, the full parser (the reference) gives
  // the same status and the same fields.
  std::optional<absl::StatusOr<analytics::EventInput>> fast =
      analytics::canonical_internal::ParseEventJsonFast(json);
  if (fast.has_value()) {
    const absl::StatusOr<analytics::EventInput> full =
        analytics::canonical_internal::ParseEventJsonFull(json);
    FUZZ_CHECK(fast->status() == full.status());
    if (full.ok()) {
      const analytics::EventInput& a = **fast;
      const analytics::EventInput& b = *full;
      FUZZ_CHECK(a.site == b.site && a.name == b.name && a.url == b.url &&
                 a.referrer == b.referrer && a.ts == b.ts && a.ip == b.ip &&
                 a.user_agent == b.user_agent && a.props == b.props &&
                 a.screen_width == b.screen_width && a.locale == b.locale &&
                 a.timezone == b.timezone && a.country_hint == b.country_hint &&
                 a.interactive == b.interactive && a.imported == b.imported);
    }
  }
  return 0;
}
