// HyperLogLog unique-count sketch (p = 14), mergeable, with an exact mode.
//
// Owns: the sketch algorithm and its serialized format. Nothing else.
//
// Representations, chosen automatically as a sketch grows:
//   exact  - up to kExactLimit distinct 64-bit hashes kept as a sorted
//            vector; Estimate() is exact.
//   sparse - (register index, rank) pairs for registers that are non-zero,
//            while smaller than the dense form.
//   dense  - 2^14 one-byte registers.
// Add() takes a 64-bit hash that is already well mixed (callers hash their
// keys, e.g. the visitor id, with HashKey()). Merge() is commutative,
// associative and idempotent; merging never loses information versus adding
// the same hashes to one sketch.
//
// Serialized format (little-endian):
//   byte 0..1  magic "HL"
//   byte 2     version (1)
//   byte 3     encoding: 0 empty, 1 exact, 2 sparse, 3 dense
//   exact : u32 count, then count x u64 hashes ascending
//   sparse: u32 count, then count x (u16 index, u8 rank) ascending by index
//   dense : 16384 x u8 registers
// Register index = top 14 bits of the hash; rank = 1 + number of leading
// zeros of the remaining 50 bits (max 51). Estimation: Ertl's improved raw
// estimator ("New cardinality estimation algorithms for HyperLogLog
// sketches", 2017), which needs neither linear counting nor bias tables; the
// sparse form is estimated from the registers it implies.
#ifndef ANALYTICS_SKETCH_HLL_H_
#define ANALYTICS_SKETCH_HLL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace analytics {

class HyperLogLog {
 public:
  static constexpr int kPrecision = 14;
  static constexpr int kRegisters = 1 << kPrecision;
  static constexpr int kExactLimit = 64;

  HyperLogLog() = default;

  void Add(uint64_t hash);
  void Merge(const HyperLogLog& other);
  // Number of distinct hashes added (exact in exact mode).
  uint64_t Estimate() const;
  bool empty() const;

  std::string Serialize() const;
  void SerializeTo(std::string* out) const;
  // InvalidArgument on a bad magic, version, encoding, or length.
  static absl::StatusOr<HyperLogLog> Deserialize(std::string_view bytes);
  // Merges a serialized sketch without building a temporary object when
  // possible. Same errors as Deserialize.
  absl::Status MergeSerialized(std::string_view bytes);

  // A 64-bit mix of a key (for callers whose keys are not yet hashes).
  static uint64_t HashKey(uint64_t key);

 private:
  // Implementation detail; see hll.cc.
  enum class Mode : uint8_t { kExact, kSparse, kDense };
  Mode mode_ = Mode::kExact;
  std::vector<uint64_t> exact_;   // sorted, unique
  std::vector<uint32_t> sparse_;  // (index << 8) | rank, sorted by index
  std::vector<uint8_t> dense_;    // kRegisters bytes when dense
  void ToSparse();
  void ToDense();
  void AddRegister(uint32_t index, uint8_t rank);
  void MergeSparseEntries(const uint32_t* entries, size_t n);
};

}  // namespace analytics

#endif  // ANALYTICS_SKETCH_HLL_H_
