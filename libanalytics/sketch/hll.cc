#include "libanalytics/sketch/hll.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace analytics {
namespace {

// Sparse entries (HyperLogLog++, Heule et al. 2013) use precision 25:
// entry = (index25 << 6) | rank25, where index25 = top 25 bits of the hash and
// rank25 = 1 + leading zeros of the remaining 39 bits (1..40). Entries take 4
// bytes in memory and when serialized; the limit keeps the largest serialized
// sparse sketch (8 + 4 * count bytes) below the dense one (4 + 2^p bytes).
constexpr int kSparsePrecision = 25;
constexpr int kRankBits = 6;
constexpr uint32_t kRankMask = (1u << kRankBits) - 1;
constexpr int kMaxSparseRank = 64 - kSparsePrecision + 1;  // 40
// Largest dense rank at precision p: 51 at p = 14.
constexpr int MaxRank(int p) { return 64 - p + 1; }
constexpr int kMaxRank = MaxRank(HyperLogLog::kPrecision);  // 51, the largest
// Sparse entries kept at precision p: 4094 at p = 14, 16382 at p = 16.
constexpr size_t SparseLimit(int p) { return (size_t{1} << p) / 4 - 2; }
constexpr size_t kMaxSparseLimit = SparseLimit(HyperLogLog::kMaxPrecision);
// Bits of index25 below the dense register index at p = 14 (the widest).
constexpr int kExtraBits = kSparsePrecision - HyperLogLog::kPrecision;  // 11
// Version 2: p = 14, a 4-byte header. Version 3: byte 4 holds p (15..16).
constexpr uint8_t kVersion = 2;
constexpr uint8_t kVersionWithPrecision = 3;
constexpr size_t HeaderBytes(int p) {
  return p == HyperLogLog::kPrecision ? 4 : 5;
}
// MergeMany sorts all entries at once from this many sparse sketches on, and
// merges fewer pairwise (log2 of their number passes over the entries, each
// cheaper than the sort's). Measured (callgrind): a sort of 2-7 lists of
// ~8k entries (BM_RollupFold's days) cost 1.5x the pairwise merges; of ~24
// lists (a log import's days), 0.7x.
constexpr size_t kSortManySparse = 8;
// Most entries merged into a sparse list by binary search (MergeSparseEntries).
constexpr size_t kGallopMax = 256;
enum Encoding : uint8_t { kEmpty = 0, kExact = 1, kSparse = 2, kDense = 3 };

inline uint32_t IndexOf(uint64_t hash, int p) {
  return static_cast<uint32_t>(hash >> (64 - p));
}
inline uint8_t RankOf(uint64_t hash, int p) {
  // The sentinel bit caps the count of leading zeros at 64 - p (rank
  // 65 - p).
  const uint64_t w = (hash << p) | (uint64_t{1} << (p - 1));
  return static_cast<uint8_t>(std::countl_zero(w) + 1);
}
inline void AddToDense(uint8_t* dense, uint64_t hash, int p) {
  uint8_t& r = dense[IndexOf(hash, p)];
  r = std::max(r, RankOf(hash, p));
}
inline uint32_t SparseEntry(uint64_t hash) {
  const uint32_t index = static_cast<uint32_t>(hash >> (64 - kSparsePrecision));
  // The sentinel bit caps the count of leading zeros at 39 (rank 40).
  const uint64_t w =
      (hash << kSparsePrecision) | (uint64_t{1} << (kSparsePrecision - 1));
  const uint32_t rank = static_cast<uint32_t>(std::countl_zero(w) + 1);
  return index << kRankBits | rank;
}
inline uint32_t EntryIndex(uint32_t entry) { return entry >> kRankBits; }
// The dense register and rank a sparse entry stands for at precision P:
// exactly what Add(hash) gives in dense mode for any hash with this sparse
// entry.
template <int P>
inline uint32_t DenseIndexOf(uint32_t entry) {
  return entry >> (kRankBits + kSparsePrecision - P);
}
// kExtraRank[x] = 1 + leading zeros of the 11-bit value x (x > 0); 11 for 0.
constexpr auto kExtraRank = [] {
  std::array<uint8_t, 1u << kExtraBits> t{};
  for (uint32_t x = 0; x < t.size(); ++x) {
    int zeros = 0;
    while (zeros < kExtraBits && !((x >> (kExtraBits - 1 - zeros)) & 1)) {
      ++zeros;
    }
    t[x] = static_cast<uint8_t>(zeros == kExtraBits ? kExtraBits : zeros + 1);
  }
  return t;
}();
template <int P>
inline uint8_t DenseRankOf(uint32_t entry) {
  // 1 + leading zeros of the low w = 25 - P index bits if they are non-zero,
  // else w + rank25 (the hash's next 39 bits continue the run of zeros).
  // kExtraRank counts zeros in 11 bits: the w bits are shifted up to 11.
  constexpr int w = kSparsePrecision - P;
  const uint32_t extra = EntryIndex(entry) & ((1u << w) - 1);
  const uint32_t more = extra == 0 ? (entry & kRankMask) + w - kExtraBits : 0;
  return static_cast<uint8_t>(kExtraRank[extra << (kExtraBits - w)] + more);
}
template <int P>
inline void FoldIntoDense(uint8_t* dense, uint32_t entry) {
  uint8_t& r = dense[DenseIndexOf<P>(entry)];
  r = std::max(r, DenseRankOf<P>(entry));
}
// Folds n sparse entries, the k-th given by load(k), into dense registers
// of precision p.
static_assert(HyperLogLog::kPrecision == 14 && HyperLogLog::kMaxPrecision == 16,
              "FoldAllIntoDense handles p = 14..16");
template <typename Load>
void FoldAllIntoDense(uint8_t* dense, int p, Load load, size_t n) {
  switch (p) {
    case 14:
      for (size_t k = 0; k < n; ++k) FoldIntoDense<14>(dense, load(k));
      return;
    case 15:
      for (size_t k = 0; k < n; ++k) FoldIntoDense<15>(dense, load(k));
      return;
    default:
      for (size_t k = 0; k < n; ++k) FoldIntoDense<16>(dense, load(k));
      return;
  }
}

// Keeps one entry per index, the one with the largest rank, of n entries
// sorted by index (ranks within an index in any order). Returns the count.
size_t DedupeByIndex(uint32_t* e, size_t n) {
  if (n == 0) return 0;
  size_t out = 0;
  for (size_t k = 1; k < n; ++k) {
    if (EntryIndex(e[k]) == EntryIndex(e[out])) {
      e[out] = std::max(e[out], e[k]);
    } else {
      e[++out] = e[k];
    }
  }
  return out + 1;
}

// Sparse entries of n ascending hashes, deduplicated (ascending hashes have
// non-decreasing index25, the top bits). `out` has room for n. Returns the
// count.
size_t EntriesOfSorted(const uint64_t* h, size_t n, uint32_t* out) {
  for (size_t k = 0; k < n; ++k) out[k] = SparseEntry(h[k]);
  return DedupeByIndex(out, n);
}

template <typename T>
void InsertionSort(T* v, size_t n) {
  for (size_t k = 1; k < n; ++k) {
    const T x = v[k];
    size_t j = k;
    for (; j > 0 && v[j - 1] > x; --j) v[j] = v[j - 1];
    v[j] = x;
  }
}

// Unique values of n sorted values, in place. Returns the count.
size_t UniqueSorted(uint64_t* v, size_t n) {
  return static_cast<size_t>(std::unique(v, v + n) - v);
}

// Reusable buffers for AddMany's large batches (per thread; the entry
// buffers are released after a batch above 64K hashes, so a thread keeps
// at most ~0.6 MB).
struct Scratch {
  std::vector<uint32_t> entries, sorted, counts;
  std::vector<uint32_t> merged;         // MergeSparseEntries, at most 2 x 16382
  std::vector<uint64_t> hashes;         // MergeMany's exact hashes
  std::vector<uint64_t> hashes_sorted;  // ... sorted
  void Trim() {
    constexpr size_t kKeep = size_t{1} << 16;
    if (entries.capacity() > kKeep) std::vector<uint32_t>().swap(entries);
    if (sorted.capacity() > kKeep) std::vector<uint32_t>().swap(sorted);
    if (hashes.capacity() > kKeep) std::vector<uint64_t>().swap(hashes);
    if (hashes_sorted.capacity() > kKeep) {
      std::vector<uint64_t>().swap(hashes_sorted);
    }
  }
};
Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}

// Sorts n values whose top bits are uniform (hash bits) ascending; the
// result is in `out` (room for n). kKeyBits: the values are below 2^kKeyBits
// (31 for sparse entries, 64 for hashes). A counting pass on their top bits
// into n to 2n buckets (`counts` is resized to fit; 2n to 4n from 512 values
// on cost 5 % more instructions in Take, for the counts' clearing and prefix
// sums, and no less time: BM_RollupFold driver, 2,357 -> 2,235 instructions
// per event, 410 vs 407 ns) leaves most buckets with at most one value,
// nearly all with at most two: a branchless compare-exchange pass sorts
// those, and an insertion pass fixes the few values still out of place
// (neither pass moves a value out of its bucket).
// A skewed input (too many insertion moves) falls back to std::sort.
//
// BucketSortMapped sorts map(in[k]) instead, where map keeps the order of
// the inputs' top 15 bits (of kKeyBits) as its result's top bits (of
// kOutBits): the counting pass reads the inputs, and the values are mapped
// as they are scattered (AddMany sorts the sparse entries of its hashes so,
// without a pass that writes them out first).
template <int kKeyBits, int kOutBits, typename In, typename T, typename Map>
#if defined(__GNUC__)
__attribute__((noinline))  // AddMany was slower with it inlined
#endif
void BucketSortMapped(const In* in, size_t n, T* out,
                      std::vector<uint32_t>& counts, Map map) {
  if (n < 16) {
    for (size_t k = 0; k < n; ++k) out[k] = map(in[k]);
    InsertionSort(out, n);
    return;
  }
  const int bits = std::min(static_cast<int>(std::bit_width(n)), 15);
  const int in_shift = kKeyBits - bits;
  const int shift = kOutBits - bits;
  const size_t buckets = size_t{1} << bits;
  counts.assign(buckets + 1, 0);
  uint32_t* c = counts.data();
  for (size_t k = 0; k < n; ++k) ++c[(in[k] >> in_shift) + 1];
  // Prefix sums, four buckets per step of the serial chain.
  uint32_t run = 0;
  for (size_t b = 1; b <= buckets; b += 4) {
    const uint32_t x0 = c[b], x1 = c[b + 1], x2 = c[b + 2], x3 = c[b + 3];
    c[b] = run + x0;
    c[b + 1] = run + (x0 + x1);
    c[b + 2] = run + (x0 + x1 + x2);
    run += (x0 + x1) + (x2 + x3);
    c[b + 3] = run;
  }
  for (size_t k = 0; k < n; ++k) {
    const T x = map(in[k]);
    out[c[x >> shift]++] = x;
  }
  T carry = out[0];
  for (size_t k = 1; k < n; ++k) {
    const T x = out[k];
    out[k - 1] = std::min(carry, x);
    carry = std::max(carry, x);
  }
  out[n - 1] = carry;
  size_t budget = 4 * n;
  for (size_t k = 1; k < n; ++k) {
    if (out[k] >= out[k - 1]) [[likely]]
      continue;
    const T x = out[k];
    size_t j = k;
    do {
      out[j] = out[j - 1];
      --j;
    } while (j > 0 && out[j - 1] > x);
    out[j] = x;
    if ((budget -= std::min(budget, k - j)) == 0) {
      std::sort(out, out + n);
      return;
    }
  }
}

template <int kKeyBits, typename T>
void BucketSort(const T* in, size_t n, T* out, std::vector<uint32_t>& counts) {
  BucketSortMapped<kKeyBits, kKeyBits>(in, n, out, counts,
                                       [](T x) { return x; });
}

inline uint32_t LoadU32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 |
         uint32_t{b[3]} << 24;
}
inline uint64_t LoadU64(const char* p) {
  return uint64_t{LoadU32(p)} | uint64_t{LoadU32(p + 4)} << 32;
}
inline void AppendU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
               static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out->append(b, 4);
}

// Byte-wise max; simple enough for the compiler to vectorize. Kept out of
// line and 64-byte aligned so the hot loop's speed does not depend on where
// it lands in its callers (it varied 2x with unrelated code changes).
#if defined(__GNUC__)
__attribute__((noinline, aligned(64)))
#endif
void MaxInto(uint8_t* __restrict dst, const uint8_t* __restrict src,
             size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
}
// Largest byte; four independent chains so the vectorized loop is not bound
// by the latency of a single accumulator.
inline uint8_t MaxByte(const uint8_t* p, size_t n) {
  const size_t kQuarter = n / 4;
  uint8_t m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  for (size_t i = 0; i < kQuarter; ++i) {
    m0 = std::max(m0, p[i]);
    m1 = std::max(m1, p[i + kQuarter]);
    m2 = std::max(m2, p[i + 2 * kQuarter]);
    m3 = std::max(m3, p[i + 3 * kQuarter]);
  }
  return std::max(std::max(m0, m1), std::max(m2, m3));
}

// Folds 2^from dense registers into 2^to (to <= from) by register maxima:
// register i of `from` is register i >> k of `to` (k = from - to), whose rank
// is 1 + leading zeros of i's low k bits if they are non-zero, else rank + k
// (the hash's zeros continue into the dropped bits): what adding the same
// hashes at precision `to` gives.
void FoldRegisters(const uint8_t* src, int from, uint8_t* dst, int to) {
  const int k = from - to;
  const uint32_t low_mask = (1u << k) - 1;
  const size_t n = size_t{1} << from;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t r = src[i];
    if (r == 0) continue;
    const uint32_t low = static_cast<uint32_t>(i) & low_mask;
    const uint8_t folded =
        low != 0 ? static_cast<uint8_t>(k - std::bit_width(low) + 1)
                 : static_cast<uint8_t>(r + k);
    uint8_t& d = dst[i >> k];
    d = std::max(d, folded);
  }
}

absl::Status Invalid(const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat("hll: ", msg));
}

// A validated serialized sketch; `body` points past the header (and count).
struct View {
  Encoding encoding = kEmpty;
  int precision = HyperLogLog::kPrecision;
  uint32_t count = 0;
  const char* body = nullptr;
  uint8_t dense_max = 0;  // dense only: largest register
};

absl::StatusOr<View> Parse(std::string_view bytes) {
  if (bytes.size() < 4) return Invalid("truncated header");
  if (bytes[0] != 'H' || bytes[1] != 'L') return Invalid("bad magic");
  View v;
  const uint8_t version = static_cast<uint8_t>(bytes[2]);
  if (version == kVersionWithPrecision) {
    if (bytes.size() < 5) return Invalid("truncated header");
    v.precision = static_cast<uint8_t>(bytes[4]);
    // p = 14 is always written as version 2 (one encoding per sketch).
    if (v.precision <= HyperLogLog::kPrecision ||
        v.precision > HyperLogLog::kMaxPrecision) {
      return Invalid(absl::StrCat("precision ", v.precision, " out of range ",
                                  HyperLogLog::kPrecision + 1, "..",
                                  HyperLogLog::kMaxPrecision));
    }
  } else if (version != kVersion) {
    // Version 1 (p = 14 sparse entries) was never persisted; not converted.
    return Invalid(absl::StrCat("unsupported version ", version, ", expected ",
                                kVersion, " or ", kVersionWithPrecision));
  }
  const size_t header = HeaderBytes(v.precision);
  const size_t registers = size_t{1} << v.precision;
  const uint8_t enc = static_cast<uint8_t>(bytes[3]);
  switch (enc) {
    case kEmpty:
      if (bytes.size() != header) {
        return Invalid("trailing bytes after empty sketch");
      }
      v.encoding = kEmpty;
      return v;
    case kExact:
    case kSparse: {
      if (bytes.size() < header + 4) return Invalid("truncated count");
      v.encoding = static_cast<Encoding>(enc);
      v.count = LoadU32(bytes.data() + header);
      v.body = bytes.data() + header + 4;
      const uint64_t limit =
          enc == kExact ? HyperLogLog::kExactLimit : SparseLimit(v.precision);
      if (v.count == 0 || v.count > limit) {
        return Invalid(absl::StrCat(enc == kExact ? "exact" : "sparse",
                                    " count ", v.count, " out of range 1..",
                                    limit));
      }
      const uint64_t entry = enc == kExact ? 8 : 4;
      if (bytes.size() != header + 4 + entry * v.count) {
        return Invalid(absl::StrCat("length ", bytes.size(), " does not match ",
                                    enc == kExact ? "exact" : "sparse",
                                    " count ", v.count));
      }
      if (enc == kExact) {
        uint64_t prev = 0;
        for (uint32_t i = 0; i < v.count; ++i) {
          const uint64_t h = LoadU64(v.body + 8 * i);
          if (i > 0 && h <= prev) return Invalid("exact hashes not ascending");
          prev = h;
        }
      } else {
        // Branch-free passes that the compiler vectorizes (a query merges
        // millions of entries); only a bad sketch takes the loop below,
        // which names the first fault. An index below 2^25 is an entry
        // below 2^31.
        const char* b = v.body;
        uint32_t all = 0, bad = 0;
        for (uint32_t i = 0; i < v.count; ++i) {
          const uint32_t e = LoadU32(b + 4 * i);
          all |= e;
          bad |= static_cast<uint32_t>((e & kRankMask) - 1 >=
                                       uint32_t{kMaxSparseRank});
        }
        for (uint32_t i = 1; i < v.count; ++i) {
          bad |= static_cast<uint32_t>(EntryIndex(LoadU32(b + 4 * i)) <=
                                       EntryIndex(LoadU32(b + 4 * i - 4)));
        }
        bad |= all >> 31;
        if (bad == 0) return v;
        int64_t prev = -1;
        for (uint32_t i = 0; i < v.count; ++i) {
          const uint32_t e = LoadU32(v.body + 4 * i);
          const uint32_t index = EntryIndex(e);
          const uint32_t rank = e & kRankMask;
          if (index >= (1u << kSparsePrecision)) {
            return Invalid(
                absl::StrCat("sparse index ", index, " out of range"));
          }
          if (static_cast<int64_t>(index) <= prev) {
            return Invalid("sparse indexes not ascending");
          }
          if (rank == 0 || rank > kMaxSparseRank) {
            return Invalid(absl::StrCat("sparse rank ", rank,
                                        " out of range 1..", kMaxSparseRank));
          }
          prev = index;
        }
      }
      return v;
    }
    case kDense: {
      if (bytes.size() != header + registers) {
        return Invalid(absl::StrCat("dense length ", bytes.size(),
                                    ", expected ", header + registers));
      }
      v.encoding = kDense;
      v.body = bytes.data() + header;
      v.dense_max =
          MaxByte(reinterpret_cast<const uint8_t*>(v.body), registers);
      if (v.dense_max > MaxRank(v.precision)) {
        return Invalid(absl::StrCat("dense register value ", v.dense_max,
                                    " out of range 0..", MaxRank(v.precision)));
      }
      return v;
    }
    default:
      return Invalid(absl::StrCat("unknown encoding ", enc));
  }
}

// Ertl 2017, "New cardinality estimation algorithms for HyperLogLog
// sketches", section 4 (the improved raw estimator; no bias tables).
double Sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0, z = x, prev;
  do {
    x *= x;
    prev = z;
    z += x * y;
    y += y;
  } while (z != prev);
  return z;
}
double Tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0, z = 1.0 - x, prev;
  do {
    x = std::sqrt(x);
    prev = z;
    y *= 0.5;
    z -= (1.0 - x) * (1.0 - x) * y;
  } while (z != prev);
  return z / 3.0;
}
// c[k]: registers of rank k (0..65 - p).
uint64_t EstimateFromHistogram(const uint32_t (&c)[kMaxRank + 1], int p) {
  const double m = static_cast<double>(uint64_t{1} << p);
  const int q = 64 - p;  // 50 at p = 14
  if (c[0] == (uint32_t{1} << p)) return 0;
  double z = m * Tau(1.0 - c[q + 1] / m);
  for (int k = q; k >= 1; --k) z = 0.5 * (z + c[k]);
  z += m * Sigma(c[0] / m);
  const double alpha_inf = 1.0 / (2.0 * std::log(2.0));
  return static_cast<uint64_t>(std::llround(alpha_inf * m * m / z));
}

}  // namespace

bool HyperLogLog::empty() const {
  return mode_ == Mode::kExact && exact_.empty();
}

void HyperLogLog::Add(uint64_t hash) {
  switch (mode_) {
    case Mode::kDense:
      AddToDense(dense_.data(), hash, p_);
      return;
    case Mode::kSparse:
      AddSparseEntry(SparseEntry(hash));
      return;
    case Mode::kExact: {
      auto it = std::lower_bound(exact_.begin(), exact_.end(), hash);
      if (it != exact_.end() && *it == hash) return;
      exact_.insert(it, hash);
      if (exact_.size() > kExactLimit) ToSparse();
      return;
    }
  }
}

void HyperLogLog::AddMany(absl::Span<uint64_t> hashes) {
  const size_t n = hashes.size();
  if (n == 0) return;
  uint64_t* h = hashes.data();
  if (mode_ == Mode::kDense) {
    uint8_t* d = dense_.data();
    const int p = p_;
    for (size_t k = 0; k < n; ++k) AddToDense(d, h[k], p);
    return;
  }
  if (n <= kExactLimit) {
    uint64_t sorted[kExactLimit];
    BucketSort<64>(h, n, sorted, ThreadScratch().counts);
    AddSortedUnique(sorted, UniqueSorted(sorted, n));
    return;
  }
  // Many hashes: sort their sparse entries (with this sketch's exact hashes,
  // if any) and merge them in one pass.
  Scratch& s = ThreadScratch();
  const size_t mine = exact_.size();  // 0 when sparse
  s.sorted.resize(n + mine);
  if (mine == 0) {
    // (A sparse or empty sketch: the entries made as they are sorted.)
    BucketSortMapped<64, 31>(h, n, s.sorted.data(), s.counts,
                             [](uint64_t x) { return SparseEntry(x); });
  } else {
    s.entries.resize(n + mine);
    uint32_t* e = s.entries.data();
    for (size_t k = 0; k < n; ++k) e[k] = SparseEntry(h[k]);
    for (size_t k = 0; k < mine; ++k) e[n + k] = SparseEntry(exact_[k]);
    BucketSort<31>(e, n + mine, s.sorted.data(), s.counts);
  }
  const uint32_t* sorted = s.sorted.data();
  const size_t count = DedupeByIndex(s.sorted.data(), n + mine);
  if (mode_ == Mode::kSparse) {
    MergeSparseEntries([sorted](size_t k) { return sorted[k]; }, count);
  } else if (count > kExactLimit) {
    // More distinct indexes than kExactLimit: more distinct hashes too.
    sparse_.assign(sorted, sorted + count);
    exact_.clear();
    exact_.shrink_to_fit();
    mode_ = Mode::kSparse;
    if (sparse_.size() > sparse_limit()) ToDense();
  } else {
    // Few distinct indexes: count the distinct hashes (rare: a large batch
    // of mostly repeated hashes).
    std::sort(h, h + n);
    const size_t unique = UniqueSorted(h, n);
    if (unique > kExactLimit) {
      sparse_.assign(sorted, sorted + count);
      exact_.clear();
      exact_.shrink_to_fit();
      mode_ = Mode::kSparse;
    } else {
      AddSortedUnique(h, unique);
    }
  }
  s.Trim();
}

void HyperLogLog::AddSortedUnique(const uint64_t* h, size_t n) {
  if (n == 0) return;
  switch (mode_) {
    case Mode::kDense: {
      uint8_t* d = dense_.data();
      for (size_t k = 0; k < n; ++k) AddToDense(d, h[k], p_);
      return;
    }
    case Mode::kSparse: {
      uint32_t e[kExactLimit];
      const size_t count = EntriesOfSorted(h, n, e);
      MergeSparseEntries([&e](size_t k) { return e[k]; }, count);
      return;
    }
    case Mode::kExact:
      break;
  }
  const size_t m = exact_.size();
  if (m + n <= kExactLimit) {
    // Merge from the back into exact_ itself; duplicates leave a gap
    // between the untouched prefix and the merged tail, closed at the end.
    exact_.resize(m + n);
    uint64_t* a = exact_.data();
    size_t i = m, j = n, k = m + n;
    while (i > 0 && j > 0) {  // branchless, as in MergeSparseEntries
      const uint64_t x = a[i - 1], y = h[j - 1];
      a[--k] = std::max(x, y);
      i -= x >= y;
      j -= y >= x;
    }
    for (; j > 0; --j) a[--k] = h[j - 1];
    if (k > i) {
      std::memmove(a + i, a + k, (m + n - k) * sizeof(uint64_t));
      exact_.resize(m + n - (k - i));
    }
    return;
  }
  uint64_t all[2 * kExactLimit];
  const size_t total = static_cast<size_t>(
      std::set_union(exact_.begin(), exact_.end(), h, h + n, all) - all);
  if (total <= kExactLimit) {
    exact_.assign(all, all + total);
    return;
  }
  uint32_t e[2 * kExactLimit];
  const size_t count = EntriesOfSorted(all, total, e);
  sparse_.assign(e, e + count);
  exact_.clear();
  exact_.shrink_to_fit();
  mode_ = Mode::kSparse;
}

void HyperLogLog::ToSparse() {
  // exact_ is sorted, so its entries come sorted by index.
  sparse_.resize(exact_.size());
  sparse_.resize(EntriesOfSorted(exact_.data(), exact_.size(), sparse_.data()));
  exact_.clear();
  exact_.shrink_to_fit();
  mode_ = Mode::kSparse;
  if (sparse_.size() > sparse_limit()) ToDense();
}

size_t HyperLogLog::entries() const {
  switch (mode_) {
    case Mode::kExact:
      return exact_.size();
    case Mode::kSparse:
      return sparse_.size();
    case Mode::kDense:
      break;
  }
  return 0;
}

void HyperLogLog::ToDense() {
  dense_.assign(registers(), 0);
  if (mode_ == Mode::kSparse) {
    const uint32_t* e = sparse_.data();
    FoldAllIntoDense(
        dense_.data(), p_, [e](size_t k) { return e[k]; }, sparse_.size());
  } else {
    for (uint64_t h : exact_) AddToDense(dense_.data(), h, p_);
  }
  sparse_.clear();
  sparse_.shrink_to_fit();
  exact_.clear();
  exact_.shrink_to_fit();
  mode_ = Mode::kDense;
}

void HyperLogLog::AddSparseEntry(uint32_t entry) {
  const uint32_t key = entry & ~kRankMask;
  auto it = std::lower_bound(sparse_.begin(), sparse_.end(), key);
  if (it != sparse_.end() && EntryIndex(*it) == EntryIndex(entry)) {
    *it = std::max(*it, entry);
    return;
  }
  sparse_.insert(it, entry);
  if (sparse_.size() > sparse_limit()) ToDense();
}

template <typename Load>
void HyperLogLog::MergeSparseEntries(Load load, size_t n) {
  // this is sparse; both lists sorted by index, one entry per index.
  if (n == 0) return;
  const size_t m = sparse_.size();
  if (n <= kGallopMax && n * (m < 1024 ? 8 : 32) <= m) {
    // Few entries into many: find each one's place by binary search, then
    // move the runs between them once, from the back, straight to their
    // final places (memmove instead of one branch per entry). Measured: a
    // win over the linear merge below from 8x as many entries in short
    // lists, from 32x in long ones.
    uint32_t pos[kGallopMax];
    size_t dups = 0, lo = 0;
    for (size_t j = 0; j < n; ++j) {
      const uint32_t b = load(j);
      const uint32_t* a = sparse_.data();
      lo = static_cast<size_t>(std::lower_bound(a + lo, a + m, b & ~kRankMask) -
                               a);
      pos[j] = static_cast<uint32_t>(lo);
      if (lo < m && EntryIndex(a[lo]) == EntryIndex(b)) ++dups;
    }
    const size_t total = m + n - dups;
    sparse_.resize(total);
    uint32_t* a = sparse_.data();
    size_t i = m, k = total;  // a[0..i) not yet moved; a[k..total) final
    for (size_t j = n; j > 0; --j) {
      const uint32_t b = load(j - 1);
      const size_t p = pos[j - 1];
      const bool same = p < m && EntryIndex(a[p]) == EntryIndex(b);
      const uint32_t merged = same ? std::max(a[p], b) : b;
      const size_t from = same ? p + 1 : p;
      k -= i - from;
      std::memmove(a + k, a + from, (i - from) * sizeof(uint32_t));
      a[--k] = merged;
      i = p;
    }
    if (sparse_.size() > sparse_limit()) ToDense();
    return;
  }
  // Comparable lengths: merge from both ends at once (two independent
  // dependency chains) into scratch, branchless: the index is in the high
  // bits, so the front takes the smaller entry and the back the larger one,
  // except that equal indexes give the larger rank at both ends.
  Scratch& s = ThreadScratch();
  s.merged.resize(m + n);
  uint32_t* out = s.merged.data();
  const uint32_t* a = sparse_.data();
  size_t i = 0, ie = m, j = 0, je = n, f = 0, back = m + n;
  while (i < ie && j < je) {
    {
      const uint32_t x = a[i], y = load(j);
      const uint32_t ix = EntryIndex(x), iy = EntryIndex(y);
      out[f++] = ix == iy ? std::max(x, y) : std::min(x, y);
      i += ix <= iy;
      j += iy <= ix;
    }
    if (i == ie || j == je) break;
    {
      const uint32_t x = a[ie - 1], y = load(je - 1);
      const uint32_t ix = EntryIndex(x), iy = EntryIndex(y);
      out[--back] = std::max(x, y);
      ie -= ix >= iy;
      je -= iy >= ix;
    }
  }
  // One list is used up; the other's rest lies between the two ends.
  for (; i < ie; ++i) out[f++] = a[i];
  for (; j < je; ++j) out[f++] = load(j);
  const size_t tail = m + n - back;
  std::memmove(out + f, out + back, tail * sizeof(uint32_t));
  const size_t total = f + tail;
  if (total > sparse_limit()) {
    std::vector<uint8_t> dense(registers(), 0);
    FoldAllIntoDense(
        dense.data(), p_, [out](size_t k) { return out[k]; }, total);
    dense_ = std::move(dense);
    sparse_.clear();
    sparse_.shrink_to_fit();
    mode_ = Mode::kDense;
    return;
  }
  if (s.merged.capacity() <= 2 * total) {
    // Hand the merged buffer over (no copy); this sketch's old buffer
    // becomes the scratch. At most 2x the entries' size stays allocated.
    s.merged.resize(total);
    sparse_.swap(s.merged);
  } else {
    sparse_.assign(out, out + total);
  }
}

template <typename Load>
void HyperLogLog::MergeSparse(Load load, size_t n) {
  switch (mode_) {
    case Mode::kDense:
      FoldAllIntoDense(dense_.data(), p_, load, n);
      return;
    case Mode::kSparse:
      MergeSparseEntries(load, n);
      return;
    case Mode::kExact:
      break;
  }
  // The other sketch's entries, then this one's hashes added to them.
  uint64_t mine[kExactLimit];
  const size_t m = exact_.size();
  std::copy(exact_.begin(), exact_.end(), mine);
  exact_.clear();
  exact_.shrink_to_fit();
  mode_ = Mode::kSparse;
  sparse_.clear();
  sparse_.reserve(n + m);
  for (size_t k = 0; k < n; ++k) sparse_.push_back(load(k));
  AddSortedUnique(mine, m);
}

void HyperLogLog::ReducePrecision(int p) {
  if (p >= p_) return;
  const int from = p_;
  p_ = static_cast<uint8_t>(p);
  switch (mode_) {
    case Mode::kExact:
      return;
    case Mode::kSparse:
      if (sparse_.size() > sparse_limit()) ToDense();
      return;
    case Mode::kDense: {
      std::vector<uint8_t> dense(registers(), 0);
      FoldRegisters(dense_.data(), from, dense.data(), p);
      dense_ = std::move(dense);
      return;
    }
  }
}

void HyperLogLog::MergeDense(const uint8_t* regs, int p) {
  // p >= p_ (the caller lowered this sketch's precision first).
  if (mode_ != Mode::kDense) ToDense();
  if (p == p_) {
    MaxInto(dense_.data(), regs, registers());
  } else {
    FoldRegisters(regs, p, dense_.data(), p_);
  }
}

void HyperLogLog::Merge(const HyperLogLog& other) {
  if (&other == this || other.empty()) return;
  AdoptPrecision(other.p_);
  switch (other.mode_) {
    case Mode::kExact:
      AddSortedUnique(other.exact_.data(), other.exact_.size());
      return;
    case Mode::kSparse: {
      const uint32_t* entries = other.sparse_.data();
      MergeSparse([entries](size_t k) { return entries[k]; },
                  other.sparse_.size());
      return;
    }
    case Mode::kDense:
      MergeDense(other.dense_.data(), other.p_);
      return;
  }
}

void HyperLogLog::MergeMany(absl::Span<const HyperLogLog* const> others) {
  // The one-pass union needs one precision and no dense sketch (a dense
  // sketch absorbs merges cheaply: it is merged first, then the rest).
  int p = empty() ? -1 : p_;
  bool one_pass = mode_ != Mode::kDense;
  const HyperLogLog* dense = nullptr;
  size_t sparse = mode_ == Mode::kSparse ? 1 : 0;
  for (const HyperLogLog* o : others) {
    if (o == nullptr || o == this || o->empty()) continue;
    if (p < 0) p = o->p_;
    if (o->p_ != p) one_pass = false;
    if (o->mode_ == Mode::kDense) {
      one_pass = false;
      if (dense == nullptr) dense = o;
    }
    sparse += o->mode_ == Mode::kSparse ? 1 : 0;
  }
  if (!one_pass) {
    if (dense != nullptr) Merge(*dense);
    for (const HyperLogLog* o : others) {
      if (o != nullptr && o != dense) Merge(*o);
    }
    return;
  }
  if (p < 0) return;  // all empty
  p_ = static_cast<uint8_t>(p);
  if (sparse == 0) {
    UnionExact(others);
    return;
  }
  if (sparse >= kSortManySparse) {
    // Many sparse lists: all entries (each exact hash as its entry) sorted
    // once, then one entry (the largest rank) per index.
    Scratch& s = ThreadScratch();
    std::vector<uint32_t>& e = s.entries;
    e.clear();
    auto add = [&e](const HyperLogLog& h) {
      e.insert(e.end(), h.sparse_.begin(), h.sparse_.end());
      for (uint64_t x : h.exact_) e.push_back(SparseEntry(x));
    };
    add(*this);
    for (const HyperLogLog* o : others) {
      if (o != nullptr && o != this) add(*o);
    }
    s.sorted.resize(e.size());
    BucketSort<31>(e.data(), e.size(), s.sorted.data(), s.counts);
    const size_t count = DedupeByIndex(s.sorted.data(), e.size());
    AdoptSortedEntries(s.sorted.data(), count);
    s.Trim();
    return;
  }
  // A few sparse lists are merged pairwise (each level halves their number;
  // a sparse merge is linear in both lists), with the exact sketches' union
  // (one pass) as one more list.
  std::vector<HyperLogLog> acc;
  acc.reserve(sparse + 1);
  {
    HyperLogLog exact(p);
    if (mode_ == Mode::kExact) exact.exact_.swap(exact_);
    exact.UnionExact(others);
    if (!exact.empty()) acc.push_back(std::move(exact));
  }
  if (mode_ == Mode::kSparse) acc.push_back(std::move(*this));
  for (const HyperLogLog* o : others) {
    if (o != nullptr && o != this && o->mode_ == Mode::kSparse) {
      acc.push_back(*o);
    }
  }
  while (acc.size() > 1) {
    size_t w = 0;
    for (size_t j = 0; j < acc.size(); j += 2, ++w) {
      if (j + 1 < acc.size()) acc[j].Merge(acc[j + 1]);
      if (w != j) acc[w] = std::move(acc[j]);
    }
    acc.resize(w);
  }
  *this = std::move(acc[0]);
}

void HyperLogLog::UnionExact(absl::Span<const HyperLogLog* const> others) {
  // This and the exact sketches of `others` (of this precision): their
  // distinct hashes, exact up to kExactLimit (as AddSortedUnique's unions),
  // else their sparse entries, dense above the sparse limit (as the
  // pairwise merges turn).
  Scratch& s = ThreadScratch();
  std::vector<uint64_t>& h = s.hashes;
  h.assign(exact_.begin(), exact_.end());
  for (const HyperLogLog* o : others) {
    if (o != nullptr && o != this && o->mode_ == Mode::kExact) {
      h.insert(h.end(), o->exact_.begin(), o->exact_.end());
    }
  }
  // The bucket sort (hash bits are uniform) where std::sort cost 2x.
  std::vector<uint64_t>& u = s.hashes_sorted;
  u.resize(h.size());
  BucketSort<64>(h.data(), h.size(), u.data(), s.counts);
  const size_t n = UniqueSorted(u.data(), u.size());
  if (n <= kExactLimit) {
    exact_.assign(u.data(), u.data() + n);
    return;
  }
  s.sorted.resize(n);
  const size_t count = EntriesOfSorted(u.data(), n, s.sorted.data());
  AdoptSortedEntries(s.sorted.data(), count);
  s.Trim();
}

void HyperLogLog::AdoptSortedEntries(const uint32_t* sorted, size_t count) {
  exact_.clear();
  exact_.shrink_to_fit();
  if (count > sparse_limit()) {
    dense_.assign(registers(), 0);
    FoldAllIntoDense(
        dense_.data(), p_, [sorted](size_t k) { return sorted[k]; }, count);
    sparse_.clear();
    sparse_.shrink_to_fit();
    mode_ = Mode::kDense;
  } else {
    sparse_.assign(sorted, sorted + count);
    mode_ = Mode::kSparse;
  }
}

void HyperLogLog::AdoptPrecision(int p) {
  // An empty sketch takes the precision of what it merges (it holds nothing
  // that a precision could have shaped); otherwise the smaller one wins.
  if (empty()) {
    p_ = static_cast<uint8_t>(p);
  } else {
    ReducePrecision(p);
  }
}

absl::Status HyperLogLog::MergeSerialized(std::string_view bytes) {
  absl::StatusOr<View> parsed = Parse(bytes);
  if (!parsed.ok()) return parsed.status();
  const View& v = *parsed;
  // Empty (also an all-zero dense form): nothing to merge, no precision.
  if (v.encoding == kEmpty || (v.encoding == kDense && v.dense_max == 0)) {
    return absl::OkStatus();
  }
  AdoptPrecision(v.precision);
  switch (v.encoding) {
    case kEmpty:
      break;
    case kExact: {
      uint64_t h[kExactLimit];  // count <= kExactLimit, ascending (checked)
      for (uint32_t i = 0; i < v.count; ++i) h[i] = LoadU64(v.body + 8 * i);
      AddSortedUnique(h, v.count);
      break;
    }
    case kSparse: {
      const char* body = v.body;
      MergeSparse([body](size_t k) { return LoadU32(body + 4 * k); }, v.count);
      break;
    }
    case kDense:
      MergeDense(reinterpret_cast<const uint8_t*>(v.body), v.precision);
      break;
  }
  return absl::OkStatus();
}

absl::StatusOr<HyperLogLog> HyperLogLog::Deserialize(std::string_view bytes) {
  absl::StatusOr<View> parsed = Parse(bytes);
  if (!parsed.ok()) return parsed.status();
  const View& v = *parsed;
  HyperLogLog h(v.precision);
  switch (v.encoding) {
    case kEmpty:
      break;
    case kExact:
      h.exact_.resize(v.count);
      for (uint32_t i = 0; i < v.count; ++i) {
        h.exact_[i] = LoadU64(v.body + 8 * i);
      }
      break;
    case kSparse: {
      h.mode_ = Mode::kSparse;
      h.sparse_.resize(v.count);  // count <= the sparse limit (checked)
      for (uint32_t i = 0; i < v.count; ++i) {
        h.sparse_[i] = LoadU32(v.body + 4 * i);
      }
      break;
    }
    case kDense:
      // An all-zero dense sketch is the empty sketch.
      if (v.dense_max == 0) break;
      h.mode_ = Mode::kDense;
      h.dense_.assign(reinterpret_cast<const uint8_t*>(v.body),
                      reinterpret_cast<const uint8_t*>(v.body) + h.registers());
      break;
  }
  return h;
}

std::string HyperLogLog::Serialize() const {
  std::string out;
  SerializeTo(&out);
  return out;
}

void HyperLogLog::SerializeTo(std::string* out) const {
  out->clear();
  // One allocation for the whole form (header, count, body).
  out->reserve(5 + 4 +
               (mode_ == Mode::kDense    ? registers()
                : mode_ == Mode::kSparse ? 4 * sparse_.size()
                                         : 8 * exact_.size()));
  // An empty sketch is written as version 2 whatever its precision: merging
  // it changes nothing, precision included (see AdoptPrecision).
  const bool p14 = p_ == kPrecision || empty();
  const char header[3] = {
      'H', 'L', static_cast<char>(p14 ? kVersion : kVersionWithPrecision)};
  out->append(header, 3);
  // Byte 3 (the encoding), then p in version 3.
  auto encoding = [&](Encoding e) {
    out->push_back(static_cast<char>(e));
    if (!p14) out->push_back(static_cast<char>(p_));
  };
  switch (mode_) {
    case Mode::kExact: {
      if (exact_.empty()) {
        encoding(kEmpty);
        return;
      }
      encoding(kExact);
      AppendU32(out, static_cast<uint32_t>(exact_.size()));
      if constexpr (std::endian::native == std::endian::little) {
        // Appended as is (resize + memcpy zero-filled the body first).
        out->append(reinterpret_cast<const char*>(exact_.data()),
                    8 * exact_.size());
      } else {
        const size_t base = out->size();
        out->resize(base + 8 * exact_.size());
        char* p = out->data() + base;
        for (uint64_t h : exact_) {
          for (int b = 0; b < 8; ++b) *p++ = static_cast<char>(h >> (8 * b));
        }
      }
      return;
    }
    case Mode::kSparse: {
      encoding(kSparse);
      AppendU32(out, static_cast<uint32_t>(sparse_.size()));
      if constexpr (std::endian::native == std::endian::little) {
        out->append(reinterpret_cast<const char*>(sparse_.data()),
                    4 * sparse_.size());
      } else {
        const size_t base = out->size();
        out->resize(base + 4 * sparse_.size());
        char* p = out->data() + base;
        for (uint32_t e : sparse_) {
          for (int b = 0; b < 4; ++b) *p++ = static_cast<char>(e >> (8 * b));
        }
      }
      return;
    }
    case Mode::kDense:
      encoding(kDense);
      out->append(reinterpret_cast<const char*>(dense_.data()), registers());
      return;
  }
}

uint64_t HyperLogLog::Estimate() const {
  if (mode_ == Mode::kExact) return exact_.size();
  if (mode_ == Mode::kSparse) {
    // Linear counting over the 2^25 sparse registers: m' ln(m' / (m' - k)).
    // At most 16,382 (p = 16) of 2^25 registers are set, where it is nearly
    // exact (standard error about 2 even at 16,382 entries).
    constexpr double m = double{1u << kSparsePrecision};
    const double k = static_cast<double>(sparse_.size());
    return static_cast<uint64_t>(std::llround(-m * std::log1p(-k / m)));
  }
  // Four partial histograms avoid a store-to-load dependency per byte.
  uint32_t part[4][kMaxRank + 1] = {};
  const uint8_t* d = dense_.data();
  const size_t n = registers();
  for (size_t i = 0; i < n; i += 4) {
    ++part[0][d[i]];
    ++part[1][d[i + 1]];
    ++part[2][d[i + 2]];
    ++part[3][d[i + 3]];
  }
  uint32_t c[kMaxRank + 1] = {};
  for (int k = 0; k <= kMaxRank; ++k) {
    c[k] = part[0][k] + part[1][k] + part[2][k] + part[3][k];
  }
  return EstimateFromHistogram(c, p_);
}

}  // namespace analytics
