// Fuzz target: the canonical event JSON (ParseEventJson), the shape of the
// CLI's JSON lines and of POST /api/track.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "analytics/event.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<analytics::EventInput> e = analytics::ParseEventJson(json);
  if (e.ok()) {
    FUZZ_CHECK(analytics::ValidateEventInput(*e).ok());
  } else {
    FUZZ_CHECK(!e.status().message().empty());
  }
  return 0;
}
