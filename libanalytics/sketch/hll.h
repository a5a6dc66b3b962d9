// HyperLogLog unique-count sketch (p = 14), mergeable, with an exact mode.
//
// Owns: the sketch algorithm and its serialized format. Nothing else.
//
// Representations, chosen automatically as a sketch grows:
//   exact  - up to kExactLimit distinct 64-bit hashes kept as a sorted
//            vector; Estimate() is exact.
//   sparse - HyperLogLog++ sparse form (Heule, Nunkesser, Hall 2013):
//            (index, rank) pairs at precision p' = 25 for the non-zero
//            registers of a 2^25-register sketch, while smaller than the
//            dense form (at most 4094 entries); Estimate() is linear
//            counting over 2^25 registers, nearly exact at these sizes.
//   dense  - 2^14 one-byte registers.
// Add() takes a 64-bit hash that is already well mixed (callers hash their
// keys, e.g. the visitor id, with HashKey()). Merge() is commutative,
// associative and idempotent; merging never loses information versus adding
// the same hashes to one sketch.
//
// Serialized format (little-endian):
//   byte 0..1  magic "HL"
//   byte 2     version (2; version 1, with p = 14 sparse entries, is
//              rejected: it was never persisted)
//   byte 3     encoding: 0 empty, 1 exact, 2 sparse, 3 dense
//   exact : u32 count (1..64), then count x u64 hashes, strictly ascending
//   sparse: u32 count (1..4094), then count x u32 (index25 << 6 | rank25),
//           index25 strictly ascending; index25 = top 25 bits of the hash,
//           rank25 = 1 + number of leading zeros of the remaining 39 bits
//           (1..40)
//   dense : 16384 x u8 registers (0..51); all zero means empty
// Dense register index = top 14 bits of the hash; rank = 1 + number of leading
// zeros of the remaining 50 bits (max 51). A sparse entry maps to dense
// register index25 >> 11 with rank = 1 + leading zeros of the low 11 bits of
// index25 if they are non-zero, else 11 + rank25: exactly the register that
// adding the hash to a dense sketch sets. Dense estimation: Ertl's improved
// raw estimator ("New cardinality estimation algorithms for HyperLogLog
// sketches", 2017), which needs neither linear counting nor bias tables.
#ifndef ANALYTICS_SKETCH_HLL_H_
#define ANALYTICS_SKETCH_HLL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace analytics {

class HyperLogLog {
 public:
  static constexpr int kPrecision = 14;
  static constexpr int kRegisters = 1 << kPrecision;
  static constexpr int kExactLimit = 64;

  HyperLogLog() = default;

  void Add(uint64_t hash);
  // Adds many hashes at once (reorders `hashes`): the same sketch as adding
  // them one by one. A small batch is sorted and merged into the exact or
  // sparse list in place; a large one has its sparse entries bucket-sorted
  // and merged in one pass; a dense sketch just takes register maxima.
  void AddMany(absl::Span<uint64_t> hashes);
  void Merge(const HyperLogLog& other);
  // Number of distinct hashes added (exact in exact mode).
  uint64_t Estimate() const;
  bool empty() const;

  // Number of entries kept in the exact or sparse form (0 when dense).
  size_t entries() const;
  // Switches to the dense form now (no-op when dense). For accumulators
  // that will absorb many merges: dense merges are allocation-free and cost
  // about 1 ns per register or sparse entry, where sparse + sparse rebuilds
  // the entry list. Estimates then use the dense estimator.
  void PromoteToDense() {
    if (mode_ != Mode::kDense) ToDense();
  }

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
  std::vector<uint32_t> sparse_;  // (index25 << 6) | rank25, sorted by index
  std::vector<uint8_t> dense_;    // kRegisters bytes when dense
  void ToSparse();
  void ToDense();
  void AddSparseEntry(uint32_t entry);
  // Adds n strictly ascending hashes (n <= kExactLimit) in one merge.
  void AddSortedUnique(const uint64_t* hashes, size_t n);
  // Merges (this sparse) n sparse entries, sorted by index and one per
  // index, the k-th given by load(k); dense when the result is too long.
  template <typename Load>
  void MergeSparseEntries(Load load, size_t n);
  // Merges such entries into this sketch in any mode.
  template <typename Load>
  void MergeSparse(Load load, size_t n);
  // Merges kRegisters dense registers; this sketch becomes dense.
  void MergeDense(const uint8_t* registers);
};

}  // namespace analytics

#endif  // ANALYTICS_SKETCH_HLL_H_
