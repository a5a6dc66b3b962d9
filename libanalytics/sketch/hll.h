// HyperLogLog unique-count sketch (p = 14 by default, up to 16), mergeable,
// with an exact mode.
//
// Owns: the sketch algorithm and its serialized format. Nothing else.
//
// Representations, chosen automatically as a sketch grows:
//   exact  - up to kExactLimit distinct 64-bit hashes kept as a sorted
//            vector; Estimate() is exact.
//   sparse - HyperLogLog++ sparse form (Heule, Nunkesser, Hall 2013):
//            (index, rank) pairs at precision p' = 25 for the non-zero
//            registers of a 2^25-register sketch, while smaller than the
//            dense form (at most 2^p / 4 - 2 entries: 4094 at p = 14);
//            Estimate() is linear counting over 2^25 registers, nearly
//            exact at these sizes.
//   dense  - 2^p one-byte registers.
// Precision p (14..16) sets the dense form's size and error (standard error
// 1.04 / sqrt(2^p): 0.81 % at 14, 0.41 % at 16). Merging sketches of
// different precisions gives the smallest precision of the non-empty ones
// (dense registers fold down exactly), whatever the order of the merges.
// Add() takes a 64-bit hash that is already well mixed (callers hash their
// keys, e.g. the visitor id, with HashKey()). Merge() is commutative,
// associative and idempotent; merging never loses information versus adding
// the same hashes to one sketch.
//
// Serialized format (little-endian):
//   byte 0..1  magic "HL"
//   byte 2     version: 2 for p = 14, 3 for p = 15..16 (version 1, with
//              p = 14 sparse entries, is rejected: it was never persisted)
//   byte 3     encoding: 0 empty, 1 exact, 2 sparse, 3 dense
//   byte 4     version 3 only: p (an empty sketch is always written as
//              version 2)
//   exact : u32 count (1..64), then count x u64 hashes, strictly ascending
//   sparse: u32 count (1..2^p / 4 - 2), then count x u32
//           (index25 << 6 | rank25),
//           index25 strictly ascending; index25 = top 25 bits of the hash,
//           rank25 = 1 + number of leading zeros of the remaining 39 bits
//           (1..40)
//   dense : 2^p x u8 registers (0..65 - p); all zero means empty
// Dense register index = top p bits of the hash; rank = 1 + number of leading
// zeros of the remaining 64 - p bits (max 65 - p). A sparse entry maps to
// dense register index25 >> (25 - p) with rank = 1 + leading zeros of the low
// 25 - p bits of index25 if they are non-zero, else 25 - p + rank25: exactly
// the register that adding the hash to a dense sketch sets. Dense estimation:
// Ertl's improved raw estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017), which needs neither linear counting nor bias
// tables.
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
  // The default precision, and the registers of a sketch of it.
  static constexpr int kPrecision = 14;
  static constexpr int kRegisters = 1 << kPrecision;
  static constexpr int kMaxPrecision = 16;
  static constexpr int kExactLimit = 64;

  HyperLogLog() = default;
  // precision is clamped to kPrecision..kMaxPrecision.
  explicit HyperLogLog(int precision)
      : p_(static_cast<uint8_t>(precision < kPrecision      ? kPrecision
                                : precision > kMaxPrecision ? kMaxPrecision
                                                            : precision)) {}
  int precision() const { return p_; }

  void Add(uint64_t hash);
  // Adds many hashes at once (reorders `hashes`): the same sketch as adding
  // them one by one. A small batch is sorted and merged into the exact or
  // sparse list in place; a large one has its sparse entries bucket-sorted
  // and merged in one pass; a dense sketch just takes register maxima.
  void AddMany(absl::Span<uint64_t> hashes);
  void Merge(const HyperLogLog& other);
  // Merges all of `others` (null entries are skipped): the same sketch as
  // merging them one by one. When they share a precision and none is
  // dense, the exact ones are united in one pass (their hashes sorted
  // together once, where each pairwise merge rebuilds the list) and the
  // sparse ones merged pairwise.
  void MergeMany(absl::Span<const HyperLogLog* const> others);
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

  // A 64-bit mix of a key (for callers whose keys are not yet hashes):
  // splitmix64, inline (the sessionizer and the rollup fold call it per
  // event; session ids are stored, so this must not change).
  static uint64_t HashKey(uint64_t key) {
    uint64_t z = key + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  // Implementation detail; see hll.cc.
  enum class Mode : uint8_t { kExact, kSparse, kDense };
  Mode mode_ = Mode::kExact;
  uint8_t p_ = kPrecision;
  std::vector<uint64_t> exact_;   // sorted, unique
  std::vector<uint32_t> sparse_;  // (index25 << 6) | rank25, sorted by index
  std::vector<uint8_t> dense_;    // 2^p_ bytes when dense
  void ToSparse();
  // MergeMany of exact sketches: this (exact) and the exact ones of
  // `others`, all of precision p_.
  void UnionExact(absl::Span<const HyperLogLog* const> others);
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
  size_t registers() const { return size_t{1} << p_; }
  size_t sparse_limit() const { return registers() / 4 - 2; }
  // Lowers the precision to p (no-op unless p < p_), folding the registers.
  void ReducePrecision(int p);
  // Before merging a non-empty sketch of precision p.
  void AdoptPrecision(int p);
  // Replaces the contents with `count` sparse entries, sorted by index and
  // one per index: kept sparse up to the sparse limit, folded dense beyond.
  void AdoptSortedEntries(const uint32_t* sorted, size_t count);
  // Merges 2^p dense registers (p >= p_); this sketch becomes dense.
  void MergeDense(const uint8_t* registers, int p);
};

}  // namespace analytics

#endif  // ANALYTICS_SKETCH_HLL_H_
