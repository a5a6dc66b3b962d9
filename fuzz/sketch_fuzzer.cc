// Fuzz target: HyperLogLog deserialization (bytes read back from every
// store). A sketch that deserializes must serialize, deserialize again to the
// same estimate, and merge without crashing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "libanalytics/sketch/hll.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  using analytics::HyperLogLog;
  absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(bytes);
  HyperLogLog other;
  other.Add(HyperLogLog::HashKey(42));
  absl::Status merged = other.MergeSerialized(bytes);
  FUZZ_CHECK(merged.ok() == h.ok());
  if (!h.ok()) {
    FUZZ_CHECK(!h.status().message().empty());
    return 0;
  }
  const uint64_t estimate = h->Estimate();
  std::string again = h->Serialize();
  absl::StatusOr<HyperLogLog> h2 = HyperLogLog::Deserialize(again);
  FUZZ_CHECK(h2.ok());
  FUZZ_CHECK(h2->Estimate() == estimate);
  h2->Merge(*h);
  // Merging a sketch with itself changes nothing (max of registers).
  FUZZ_CHECK(h2->Estimate() == estimate);
  return 0;
}
