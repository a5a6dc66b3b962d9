#include "libanalytics/sketch/hll.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace analytics {
namespace {

std::vector<uint64_t> Hashes(uint64_t seed, size_t n) {
  std::vector<uint64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = HyperLogLog::HashKey(seed * 0x100000000ULL + i);
  }
  return out;
}

HyperLogLog Build(const std::vector<uint64_t>& hashes) {
  HyperLogLog h;
  for (uint64_t x : hashes) h.Add(x);
  return h;
}

uint8_t Encoding(const std::string& s) { return static_cast<uint8_t>(s[3]); }

TEST(HyperLogLogTest, EmptySketch) {
  HyperLogLog h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.Estimate(), 0u);
  EXPECT_EQ(h.Serialize(), std::string("HL\x02\x00", 4));
}

TEST(HyperLogLogTest, ExactCountsForSmallSets) {
  for (size_t n : {1, 2, 10, 63, 64}) {
    std::vector<uint64_t> hashes = Hashes(7, n);
    HyperLogLog h;
    for (int rep = 0; rep < 3; ++rep) {
      for (uint64_t x : hashes) h.Add(x);
    }
    EXPECT_FALSE(h.empty());
    EXPECT_EQ(h.Estimate(), n);
    EXPECT_EQ(Encoding(h.Serialize()), 1) << n;
  }
}

TEST(HyperLogLogTest, SmallEstimatesAfterLeavingExactMode) {
  for (size_t n : {65, 100, 500, 2000}) {
    HyperLogLog h = Build(Hashes(3, n));
    EXPECT_EQ(Encoding(h.Serialize()), 2) << n;
    EXPECT_NEAR(static_cast<double>(h.Estimate()), n, 0.02 * n + 1) << n;
  }
  HyperLogLog dense = Build(Hashes(3, 20000));
  EXPECT_EQ(Encoding(dense.Serialize()), 3);
}

TEST(HyperLogLogTest, SparseSmallerThanDenseWhenSerialized) {
  // The largest sparse sketch must still be smaller than a dense one.
  HyperLogLog h;
  uint64_t i = 0;
  std::string s;
  for (;;) {
    h.Add(HyperLogLog::HashKey(i++));
    h.SerializeTo(&s);
    if (Encoding(s) == 3) break;
    EXPECT_LT(s.size(), 4u + HyperLogLog::kRegisters);
  }
}

TEST(HyperLogLogTest, RelativeErrorAtScale) {
  for (size_t n : {1000, 10000, 100000, 1000000}) {
    double sum_abs = 0;
    constexpr int kSeeds = 5;
    for (int seed = 1; seed <= kSeeds; ++seed) {
      HyperLogLog h = Build(Hashes(seed * 1000 + n, n));
      const double err =
          (static_cast<double>(h.Estimate()) - static_cast<double>(n)) / n;
      EXPECT_LT(std::abs(err), 0.02) << "n=" << n << " seed=" << seed;
      sum_abs += std::abs(err);
    }
    EXPECT_LT(sum_abs / kSeeds, 0.01) << "n=" << n;
  }
}

TEST(HyperLogLogTest, MergeEqualsAddingToOneSketch) {
  const std::vector<std::pair<size_t, size_t>> splits = {
      {0, 0},     {0, 10},    {10, 0},     {30, 30},      {40, 40},
      {64, 64},   {100, 5},   {5, 100},    {1000, 1000},  {3000, 3000},
      {50, 9000}, {9000, 50}, {20000, 10}, {20000, 20000}};
  for (const auto& [na, nb] : splits) {
    std::vector<uint64_t> a = Hashes(11, na);
    std::vector<uint64_t> b = Hashes(12, nb);
    // Some overlap between the two sides.
    if (!a.empty() && !b.empty()) b[0] = a[0];
    HyperLogLog all;
    for (uint64_t x : a) all.Add(x);
    for (uint64_t x : b) all.Add(x);
    HyperLogLog ha = Build(a), hb = Build(b);
    HyperLogLog ab = ha;
    ab.Merge(hb);
    HyperLogLog ba = hb;
    ba.Merge(ha);
    EXPECT_EQ(ab.Estimate(), all.Estimate()) << na << "," << nb;
    EXPECT_EQ(ab.Serialize(), all.Serialize()) << na << "," << nb;
    EXPECT_EQ(ba.Serialize(), all.Serialize()) << na << "," << nb;
    // Serialized merge gives the same result.
    HyperLogLog viaser = ha;
    ASSERT_TRUE(viaser.MergeSerialized(hb.Serialize()).ok());
    EXPECT_EQ(viaser.Serialize(), all.Serialize()) << na << "," << nb;
    HyperLogLog viaser2 = hb;
    ASSERT_TRUE(viaser2.MergeSerialized(ha.Serialize()).ok());
    EXPECT_EQ(viaser2.Serialize(), all.Serialize()) << na << "," << nb;
    // Idempotent.
    HyperLogLog twice = ab;
    twice.Merge(hb);
    twice.Merge(ha);
    twice.Merge(twice);
    EXPECT_EQ(twice.Serialize(), all.Serialize()) << na << "," << nb;
  }
}

TEST(HyperLogLogTest, MergeIsAssociative) {
  std::vector<HyperLogLog> parts;
  for (size_t n : {10, 200, 5000, 30000}) parts.push_back(Build(Hashes(n, n)));
  HyperLogLog left;
  for (const auto& p : parts) left.Merge(p);
  HyperLogLog right;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) right.Merge(*it);
  HyperLogLog pairs = parts[0];
  HyperLogLog tail = parts[2];
  tail.Merge(parts[3]);
  pairs.Merge(parts[1]);
  pairs.Merge(tail);
  EXPECT_EQ(left.Serialize(), right.Serialize());
  EXPECT_EQ(left.Serialize(), pairs.Serialize());
}

TEST(HyperLogLogTest, RoundTripEachMode) {
  for (size_t n : {0, 1, 64, 65, 1000, 4000, 100000}) {
    HyperLogLog h = Build(Hashes(5, n));
    const std::string s = h.Serialize();
    absl::StatusOr<HyperLogLog> back = HyperLogLog::Deserialize(s);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->Serialize(), s);
    EXPECT_EQ(back->Estimate(), h.Estimate());
    EXPECT_EQ(back->empty(), n == 0);
    // Continuing to add after a round trip behaves like the original.
    std::vector<uint64_t> more = Hashes(6, 100);
    for (uint64_t x : more) {
      h.Add(x);
      back->Add(x);
    }
    EXPECT_EQ(back->Serialize(), h.Serialize());
  }
}

TEST(HyperLogLogTest, DenseMergeSerializedIntoDense) {
  HyperLogLog a = Build(Hashes(21, 50000));
  HyperLogLog b = Build(Hashes(22, 50000));
  HyperLogLog expected = a;
  expected.Merge(b);
  ASSERT_TRUE(a.MergeSerialized(b.Serialize()).ok());
  EXPECT_EQ(a.Serialize(), expected.Serialize());
  EXPECT_NEAR(static_cast<double>(a.Estimate()), 100000, 2000);
}

TEST(HyperLogLogTest, AllZeroDenseIsEmpty) {
  std::string s("HL\x02\x03", 4);
  s.append(HyperLogLog::kRegisters, '\0');
  absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(s);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->empty());
  EXPECT_EQ(h->Estimate(), 0u);
}

void ExpectInvalid(std::string_view bytes) {
  absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(bytes);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument)
      << "size " << bytes.size();
  HyperLogLog target = Build(Hashes(1, 20000));
  const std::string before = target.Serialize();
  EXPECT_EQ(target.MergeSerialized(bytes).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(target.Serialize(), before);  // unchanged on error
}

TEST(HyperLogLogTest, RejectsSpecificCorruptions) {
  ExpectInvalid("");
  ExpectInvalid("HL");
  ExpectInvalid(std::string("XL\x02\x00", 4));
  ExpectInvalid(std::string("HL\x03\x00", 4));
  ExpectInvalid(std::string("HL\x02\x04", 4));
  ExpectInvalid(std::string("HL\x02\x00\x00", 5));
  // Version 1 (p = 14 sparse entries) is rejected, with a clear message.
  ExpectInvalid(std::string("HL\x01\x00", 4));
  ExpectInvalid(std::string("HL\x01\x02\x01\x00\x00\x00\x05\x00\x01", 9));
  {
    absl::StatusOr<HyperLogLog> v1 =
        HyperLogLog::Deserialize(std::string("HL\x01\x00", 4));
    EXPECT_NE(v1.status().message().find("version 1"), std::string::npos)
        << v1.status();
  }
  // Exact: zero count, too many, unsorted, duplicate.
  ExpectInvalid(std::string("HL\x02\x01\x00\x00\x00\x00", 8));
  {
    std::string s("HL\x02\x01\x41\x00\x00\x00", 8);
    s.append(65 * 8, '\x01');
    ExpectInvalid(s);
  }
  {
    std::string s("HL\x02\x01\x02\x00\x00\x00", 8);
    s.append(std::string("\x02\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0", 16));
    ExpectInvalid(s);
    s = std::string("HL\x02\x01\x02\x00\x00\x00", 8) +
        std::string("\x02\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0", 16);
    ExpectInvalid(s);
  }
  // Sparse (u32 index25 << 6 | rank25): index out of range, rank 0, rank 41,
  // unsorted, duplicate index, wrong length, count above the sparse limit,
  // huge count.
  const std::string sp("HL\x02\x02\x01\x00\x00\x00", 8);
  ExpectInvalid(sp + std::string("\x01\x00\x00\x80", 4));  // index 2^25
  ExpectInvalid(sp + std::string("\x40\x01\x00\x00", 4));  // rank 0
  ExpectInvalid(sp + std::string("\x69\x01\x00\x00", 4));  // rank 41
  ExpectInvalid(sp + std::string("\x41\x01\x00", 3));
  ExpectInvalid(sp + std::string("\x41\x01\x00\x00\x00", 5));
  EXPECT_TRUE(HyperLogLog::Deserialize(sp + std::string("\xe8\xff\xff\x7f", 4))
                  .ok());  // index 2^25 - 1, rank 40
  EXPECT_TRUE(HyperLogLog::Deserialize(sp + std::string("\x41\x00\x00\x00", 4))
                  .ok());  // index 1, rank 1
  const std::string sp2("HL\x02\x02\x02\x00\x00\x00", 8);
  ExpectInvalid(sp2 + std::string("\x41\x01\x00\x00\x41\x00\x00\x00", 8));
  ExpectInvalid(sp2 + std::string("\x41\x01\x00\x00\x42\x01\x00\x00", 8));
  EXPECT_TRUE(HyperLogLog::Deserialize(
                  sp2 + std::string("\x41\x00\x00\x00\x42\x01\x00\x00", 8))
                  .ok());
  {
    std::string s("HL\x02\x02\xff\x0f\x00\x00", 8);  // 4095 entries
    for (uint32_t i = 0; i < 4095; ++i) {
      const uint32_t e = (i + 1) << 6 | 1;
      s.append({static_cast<char>(e), static_cast<char>(e >> 8),
                static_cast<char>(e >> 16), static_cast<char>(e >> 24)});
    }
    ExpectInvalid(s);
    s[4] = '\xfe';  // 4094 entries
    s.resize(s.size() - 4);
    EXPECT_TRUE(HyperLogLog::Deserialize(s).ok());
  }
  ExpectInvalid(std::string("HL\x02\x02\xff\xff\xff\xff", 8));
  // Dense: register above 51, wrong length.
  {
    std::string s("HL\x02\x03", 4);
    s.append(HyperLogLog::kRegisters, '\x01');
    s[100] = 52;
    ExpectInvalid(s);
    s[100] = 51;
    EXPECT_TRUE(HyperLogLog::Deserialize(s).ok());
    ExpectInvalid(s + "x");
  }
  absl::StatusOr<HyperLogLog> bad =
      HyperLogLog::Deserialize(std::string("XL\x02\x00", 4));
  EXPECT_NE(bad.status().message().find("magic"), std::string::npos);
}

TEST(HyperLogLogTest, RejectsEveryTruncation) {
  for (size_t n : {1, 64, 65, 2000, 100000}) {
    const std::string s = Build(Hashes(9, n)).Serialize();
    for (size_t len = 0; len < s.size(); ++len) {
      ASSERT_FALSE(
          HyperLogLog::Deserialize(std::string_view(s).substr(0, len)).ok())
          << "n=" << n << " len=" << len;
    }
    ExpectInvalid(std::string_view(s).substr(0, s.size() - 1));
    EXPECT_FALSE(HyperLogLog::Deserialize(s + '\0').ok());
  }
}

TEST(HyperLogLogTest, GarbageNeverCrashes) {
  std::mt19937_64 rng(42);
  HyperLogLog target = Build(Hashes(2, 20000));
  std::vector<std::string> valid;
  for (size_t n : {0, 3, 64, 65, 700, 100000}) {
    valid.push_back(Build(Hashes(n + 1, n)).Serialize());
  }
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    switch (iter % 3) {
      case 0: {  // random bytes
        s.resize(rng() % 64);
        for (char& c : s) c = static_cast<char>(rng());
        break;
      }
      case 1: {  // a valid header with a random body
        s = std::string("HL\x02", 3);
        s.push_back(static_cast<char>(rng() % 5));
        const size_t len = rng() % 3 == 0 ? 4 + rng() % 200 : rng() % 40;
        for (size_t i = 0; i < len; ++i) s.push_back(static_cast<char>(rng()));
        if (iter % 7 == 0 && s.size() >= 8) {  // plausible count
          s[4] = static_cast<char>((s.size() - 8) / 4);
          s[5] = s[6] = s[7] = 0;
        }
        break;
      }
      case 2: {  // a valid encoding with a few bytes flipped
        s = valid[rng() % valid.size()];
        for (int k = 0; k < 3; ++k) {
          s[rng() % s.size()] ^= static_cast<char>(1 + rng() % 255);
        }
        break;
      }
    }
    absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(s);
    if (h.ok()) {
      EXPECT_EQ(h->Serialize().size() <= s.size() + 4 * 16384, true);
      (void)h->Estimate();
      HyperLogLog copy = target;
      copy.Merge(*h);
      EXPECT_GE(copy.Estimate(), 1u);
    } else {
      EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
    }
    HyperLogLog copy = target;
    EXPECT_EQ(copy.MergeSerialized(s).ok(), h.ok());
  }
}

// The dense sketch that adding `hashes` straight to dense registers gives,
// serialized; computed independently of the sketch's code.
std::string ReferenceDense(const std::vector<uint64_t>& hashes) {
  std::string regs(HyperLogLog::kRegisters, '\0');
  for (uint64_t h : hashes) {
    const size_t index = h >> (64 - HyperLogLog::kPrecision);
    int rank = 1;
    for (int bit = 63 - HyperLogLog::kPrecision; bit >= 0; --bit) {
      if ((h >> bit) & 1) break;
      ++rank;
    }
    if (rank > 51) rank = 51;
    regs[index] = std::max<char>(regs[index], static_cast<char>(rank));
  }
  return std::string("HL\x02\x03", 4) + regs;
}

// Random hashes, some with the 11 bits between the dense and the sparse index
// zero (and some with more trailing zeros), which take the "11 + sparse rank"
// path when a sparse entry becomes a dense register.
std::vector<uint64_t> TrickyHashes(std::mt19937_64& rng, size_t n) {
  std::vector<uint64_t> out(n);
  for (uint64_t& h : out) {
    h = rng();
    if (rng() % 8 == 0) {
      h &= ~(uint64_t{0x7ff} << 39);
      if (rng() % 2 == 0) h &= ~((uint64_t{1} << (rng() % 40)) - 1);
    }
  }
  return out;
}

TEST(HyperLogLogTest, SparseToDenseEqualsAddingToDense) {
  std::mt19937_64 rng(2013);
  for (int trial = 0; trial < 20; ++trial) {
    // Grow one sketch through exact and sparse until it turns dense.
    const std::vector<uint64_t> hashes = TrickyHashes(rng, 10000);
    HyperLogLog h;
    size_t added = 0;
    std::string s = h.Serialize();
    while (Encoding(s) != 3) {
      ASSERT_LT(added, hashes.size());
      h.Add(hashes[added++]);
      h.SerializeTo(&s);
    }
    EXPECT_GT(added, 4000u);
    EXPECT_EQ(s, ReferenceDense(std::vector<uint64_t>(hashes.begin(),
                                                      hashes.begin() + added)))
        << "trial " << trial << " converted after " << added;
    for (size_t i = added; i < hashes.size(); ++i) h.Add(hashes[i]);
    EXPECT_EQ(h.Serialize(), ReferenceDense(hashes)) << "trial " << trial;
  }
}

TEST(HyperLogLogTest, SparseDenseMergesEqualAddingToDense) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 10; ++trial) {
    const std::vector<uint64_t> xs = TrickyHashes(rng, 20000);
    const std::vector<uint64_t> ys = TrickyHashes(rng, 100 + rng() % 3900);
    const std::vector<uint64_t> zs = TrickyHashes(rng, 2500);
    const HyperLogLog dense = Build(xs), sparse = Build(ys),
                      sparse2 = Build(zs);
    ASSERT_EQ(Encoding(dense.Serialize()), 3);
    ASSERT_EQ(Encoding(sparse.Serialize()), 2);
    ASSERT_EQ(Encoding(sparse2.Serialize()), 2);
    std::vector<uint64_t> xy = xs;
    xy.insert(xy.end(), ys.begin(), ys.end());
    const std::string want = ReferenceDense(xy);
    HyperLogLog a = dense;
    a.Merge(sparse);
    EXPECT_EQ(a.Serialize(), want);
    HyperLogLog b = sparse;
    b.Merge(dense);
    EXPECT_EQ(b.Serialize(), want);
    HyperLogLog c = dense;
    ASSERT_TRUE(c.MergeSerialized(sparse.Serialize()).ok());
    EXPECT_EQ(c.Serialize(), want);
    HyperLogLog d = sparse;
    ASSERT_TRUE(d.MergeSerialized(dense.Serialize()).ok());
    EXPECT_EQ(d.Serialize(), want);
    // Two sparse sketches: sparse while the union fits, dense (equal to the
    // reference) once it does not.
    std::vector<uint64_t> yz = ys;
    yz.insert(yz.end(), zs.begin(), zs.end());
    HyperLogLog e = sparse;
    e.Merge(sparse2);
    HyperLogLog f = sparse2;
    ASSERT_TRUE(f.MergeSerialized(sparse.Serialize()).ok());
    const HyperLogLog all = Build(yz);
    EXPECT_EQ(e.Serialize(), all.Serialize());
    EXPECT_EQ(f.Serialize(), all.Serialize());
    if (Encoding(all.Serialize()) == 3) {
      EXPECT_EQ(e.Serialize(), ReferenceDense(yz));
    }
  }
}

TEST(HyperLogLogTest, SparseEstimatesAreNearlyExact) {
  std::mt19937_64 rng(5);
  for (size_t n : {65, 100, 500, 1000, 2000, 4000}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<uint64_t> hashes(n);
      for (uint64_t& x : hashes) x = rng();
      const HyperLogLog h = Build(hashes);
      ASSERT_EQ(Encoding(h.Serialize()), 2) << n;
      EXPECT_NEAR(static_cast<double>(h.Estimate()), n, 3) << n;
    }
  }
}

TEST(HyperLogLogTest, HashKeyMixes) {
  EXPECT_NE(HyperLogLog::HashKey(0), 0u);
  EXPECT_NE(HyperLogLog::HashKey(1), HyperLogLog::HashKey(2));
  // Consecutive keys spread over the registers.
  HyperLogLog h;
  for (uint64_t i = 0; i < 200000; ++i) h.Add(HyperLogLog::HashKey(i));
  EXPECT_NEAR(static_cast<double>(h.Estimate()), 200000, 4000);
}

// The dense sketch of precision p that adding `hashes` straight to dense
// registers gives, serialized; computed independently of the sketch's code.
std::string ReferenceDenseAt(const std::vector<uint64_t>& hashes, int p) {
  std::string regs(size_t{1} << p, '\0');
  for (uint64_t h : hashes) {
    const size_t index = h >> (64 - p);
    int rank = 1;
    for (int bit = 63 - p; bit >= 0; --bit) {
      if ((h >> bit) & 1) break;
      ++rank;
    }
    regs[index] = std::max<char>(regs[index], static_cast<char>(rank));
  }
  if (p == 14) return std::string("HL\x02\x03", 4) + regs;
  return std::string("HL\x03\x03", 4) + static_cast<char>(p) + regs;
}

HyperLogLog BuildAt(int p, const std::vector<uint64_t>& hashes) {
  HyperLogLog h(p);
  for (uint64_t x : hashes) h.Add(x);
  return h;
}
HyperLogLog BuildManyAt(int p, std::vector<uint64_t> hashes) {
  HyperLogLog h(p);
  h.AddMany(absl::MakeSpan(hashes));
  return h;
}

TEST(HyperLogLogPrecisionTest, DenseFormsMatchTheReference) {
  std::mt19937_64 rng(41);
  for (int p = 14; p <= 16; ++p) {
    const std::vector<uint64_t> hashes = TrickyHashes(rng, 60000);
    const std::string want = ReferenceDenseAt(hashes, p);
    // One by one, in a batch, and as sparse pieces merged (sparse to dense).
    EXPECT_EQ(BuildAt(p, hashes).Serialize(), want) << p;
    std::vector<uint64_t> copy = hashes;
    HyperLogLog many(p);
    many.AddMany(absl::MakeSpan(copy));
    EXPECT_EQ(many.Serialize(), want) << p;
    HyperLogLog merged(p);
    for (size_t i = 0; i < hashes.size(); i += 3000) {
      const std::vector<uint64_t> piece(
          hashes.begin() + i,
          hashes.begin() + std::min(hashes.size(), i + 3000));
      ASSERT_TRUE(merged.MergeSerialized(BuildAt(p, piece).Serialize()).ok());
    }
    EXPECT_EQ(merged.Serialize(), want) << p;
    absl::StatusOr<HyperLogLog> back = HyperLogLog::Deserialize(want);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->precision(), p);
    EXPECT_EQ(back->Serialize(), want);
  }
}

// Merging sketches of different precisions, in any order and either way
// (object or serialized), gives the sketch of all their hashes at the
// smallest precision; an empty sketch takes the precision it merges.
TEST(HyperLogLogPrecisionTest, MixedMergesEqualTheSmallestPrecision) {
  std::mt19937_64 rng(42);
  const size_t sizes[] = {0, 10, 70, 1000, 3000, 9000, 20000};
  for (int round = 0; round < 60; ++round) {
    std::vector<int> ps;
    std::vector<std::vector<uint64_t>> sets;
    std::vector<uint64_t> all;
    int min_p = 99;
    for (int i = 0; i < 3; ++i) {
      ps.push_back(14 + static_cast<int>(rng() % 3));
      sets.push_back(TrickyHashes(rng, sizes[rng() % 7]));
      all.insert(all.end(), sets.back().begin(), sets.back().end());
      if (!sets.back().empty()) min_p = std::min(min_p, ps.back());
    }
    const std::string want =
        min_p == 99 ? std::string() : BuildManyAt(min_p, all).Serialize();
    std::vector<HyperLogLog> built;
    for (int i = 0; i < 3; ++i) built.push_back(BuildManyAt(ps[i], sets[i]));
    std::vector<int> order = {0, 1, 2};
    do {
      HyperLogLog obj, ser;  // empty, p = 14 until they merge
      for (int i : order) {
        obj.Merge(built[i]);
        ASSERT_TRUE(ser.MergeSerialized(built[i].Serialize()).ok());
      }
      if (min_p == 99) {
        EXPECT_TRUE(obj.empty());
        continue;
      }
      EXPECT_EQ(obj.Serialize(), want) << round;
      EXPECT_EQ(ser.Serialize(), want) << round;
      // Into a non-empty sketch of the first one's precision.
      HyperLogLog into = built[order[0]];
      into.Merge(built[order[1]]);
      into.Merge(built[order[2]]);
      if (!sets[order[0]].empty()) EXPECT_EQ(into.Serialize(), want) << round;
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

// At p = 16 a large union stays within 1.5 % (standard error 0.41 %); p = 14
// (0.81 %) misses that in about 1 run of 15.
TEST(HyperLogLogPrecisionTest, SixteenStaysWithinOnePointFivePercent) {
  double sum_abs = 0;
  const int kRuns = 30;
  for (int seed = 1; seed <= kRuns; ++seed) {
    std::vector<uint64_t> hashes = Hashes(1000 + seed, 375000);
    // As 30 daily sketches merged, like a month of day cells.
    HyperLogLog month;
    for (int day = 0; day < 30; ++day) {
      HyperLogLog d(16);
      d.AddMany(absl::MakeSpan(hashes).subspan(day * 12500, 12500));
      month.Merge(d);
    }
    EXPECT_EQ(month.precision(), 16);
    const double err =
        (static_cast<double>(month.Estimate()) - 375000.0) / 375000.0;
    EXPECT_LT(std::abs(err), 0.015) << seed;
    sum_abs += std::abs(err);
  }
  EXPECT_LT(sum_abs / kRuns, 0.006);
}

TEST(HyperLogLogPrecisionTest, RejectsBadPrecisionEncodings) {
  ExpectInvalid(std::string("HL\x03\x00", 4));      // no precision byte
  ExpectInvalid(std::string("HL\x03\x00\x0e", 5));  // 14 is version 2
  ExpectInvalid(std::string("HL\x03\x00\x11", 5));  // 17
  ExpectInvalid(std::string("HL\x03\x00\x0d", 5));  // 13
  EXPECT_TRUE(HyperLogLog::Deserialize(std::string("HL\x03\x00\x10", 5)).ok());
  {
    std::string s("HL\x03\x03\x10", 5);
    s.append(size_t{1} << 16, '\x31');  // rank 49 = 65 - 16
    EXPECT_TRUE(HyperLogLog::Deserialize(s).ok());
    s[100] = '\x32';  // 50
    ExpectInvalid(s);
    s[100] = '\x01';
    s.pop_back();
    ExpectInvalid(s);  // length
    ExpectInvalid(std::string("HL\x02\x03", 4) + s.substr(5));
  }
  {
    // 16382 sparse entries at p = 16; 16383 is one too many.
    std::string s("HL\x03\x02\x10\xfe\x3f\x00\x00", 9);
    for (uint32_t i = 0; i < 16382; ++i) {
      const uint32_t e = (i + 1) << 6 | 1;
      s.append({static_cast<char>(e), static_cast<char>(e >> 8),
                static_cast<char>(e >> 16), static_cast<char>(e >> 24)});
    }
    absl::StatusOr<HyperLogLog> ok = HyperLogLog::Deserialize(s);
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(ok->entries(), 16382u);
    EXPECT_EQ(ok->Serialize(), s);
    s[5] = '\xff';
    const uint32_t e = 16383 << 6 | 1;
    s.append({static_cast<char>(e), static_cast<char>(e >> 8),
              static_cast<char>(e >> 16), static_cast<char>(e >> 24)});
    ExpectInvalid(s);
  }
}

}  // namespace
}  // namespace analytics

namespace analytics {
namespace {

// Small cardinalities (the common case for per-page, per-day cells) must be
// nearly exact, also after merging many serialized partial sketches.
TEST(HyperLogLogSmallTest, SmallCardinalitiesAfterMergesAreNearlyExact) {
  std::mt19937_64 rng(99);
  for (int n : {65, 80, 100, 150, 300, 1000}) {
    int worst = 0;
    for (int trial = 0; trial < 100; ++trial) {
      HyperLogLog merged;
      std::vector<uint64_t> all;
      for (int k = 0; k < 7; ++k) {
        HyperLogLog part;
        for (int i = 0; i < n / 7 + 1; ++i) {
          uint64_t h = HyperLogLog::HashKey(rng());
          part.Add(h);
          all.push_back(h);
          if (i % 3 == 0) {  // the same visitor on several days
            part.Add(all[rng() % all.size()]);
          }
        }
        ASSERT_TRUE(merged.MergeSerialized(part.Serialize()).ok());
      }
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      worst = std::max(worst, std::abs(static_cast<int>(merged.Estimate()) -
                                       static_cast<int>(all.size())));
    }
    EXPECT_LE(worst, std::max(1, n / 100)) << "n=" << n;
  }
}

}  // namespace
}  // namespace analytics

namespace analytics {
namespace {

TEST(HyperLogLogAddManyTest, SameAsAddingOneByOne) {
  std::mt19937_64 rng(5);
  for (int n : {10, 64, 100, 1000, 5000, 20000}) {
    HyperLogLog one, many;
    std::vector<uint64_t> buf;
    for (int i = 0; i < n; ++i) {
      uint64_t h = HyperLogLog::HashKey(rng() % (n / 2 + 1));
      one.Add(h);
      buf.push_back(h);
      if (buf.size() == 97) {
        many.AddMany(absl::MakeSpan(buf));
        buf.clear();
      }
    }
    many.AddMany(absl::MakeSpan(buf));
    EXPECT_EQ(one.Serialize(), many.Serialize()) << n;
  }
}

// Large batches (sorted as sparse entries made from the hashes on the fly)
// into empty, exact, sparse and dense sketches of each precision, with
// hashes of every rank (low bits zeroed: the largest ranks, whose entries
// depend on the sentinel bit) and repeats: the same sketch as Add one by one.
TEST(HyperLogLogAddManyTest, LargeBatchesOfEveryRank) {
  std::mt19937_64 rng(77);
  for (int round = 0; round < 120; ++round) {
    const int p = 14 + round % 3;
    HyperLogLog one(p), many(p);
    const int before = std::vector<int>{0, 20, 900, 6000}[round / 3 % 4];
    for (int i = 0; i < before; ++i) {
      const uint64_t h = HyperLogLog::HashKey(rng());
      one.Add(h);
      many.Add(h);
    }
    const size_t n = 65 + rng() % 3000;
    std::vector<uint64_t> batch(n);
    for (uint64_t& h : batch) {
      h = rng();
      h &= ~uint64_t{0} << (rng() % 64);         // 0..63 low bits cleared
      if (rng() % 4 == 0) h = batch[rng() % n];  // repeats (some unset: 0)
    }
    for (uint64_t h : batch) one.Add(h);
    many.AddMany(absl::MakeSpan(batch));
    ASSERT_EQ(one.Serialize(), many.Serialize()) << round;
  }
}

}  // namespace
}  // namespace analytics

namespace analytics {
namespace {

TEST(HyperLogLogPromoteTest, PromoteKeepsRegisters) {
  std::mt19937_64 rng(8);
  HyperLogLog sparse, dense;
  for (int i = 0; i < 3000; ++i) {
    uint64_t h = HyperLogLog::HashKey(rng());
    sparse.Add(h);
    dense.Add(h);
  }
  EXPECT_GT(sparse.entries(), 2000u);
  dense.PromoteToDense();
  EXPECT_EQ(dense.entries(), 0u);
  // Merging the same sparse sketch into both gives the same dense registers.
  HyperLogLog a = dense, b;
  b.PromoteToDense();
  ASSERT_TRUE(b.MergeSerialized(sparse.Serialize()).ok());
  EXPECT_EQ(a.Serialize(), b.Serialize());
  EXPECT_NEAR(static_cast<double>(a.Estimate()), 3000.0, 3000 * 0.03);
}

}  // namespace
}  // namespace analytics

namespace analytics {
namespace {

// A reference for differential tests: the set of hashes added and whether
// the sketch was made dense (PromoteToDense, or merging a dense sketch). Its
// serialized form follows the format in hll.h literally: exact up to 64
// distinct hashes, else sparse up to 4094 distinct index25, else dense.
struct SetModel {
  std::set<uint64_t> hashes;
  bool dense = false;

  static uint32_t Rank(uint64_t bits, int width) {  // 1 + leading zeros
    int zeros = 0;
    while (zeros < width && !((bits >> (width - 1 - zeros)) & 1)) ++zeros;
    return static_cast<uint32_t>(zeros + 1);
  }
  std::map<uint32_t, uint32_t> Sparse() const {  // index25 -> max rank25
    std::map<uint32_t, uint32_t> m;
    for (uint64_t h : hashes) {
      uint32_t& r = m[static_cast<uint32_t>(h >> 39)];
      r = std::max(r, Rank(h & ((uint64_t{1} << 39) - 1), 39));
    }
    return m;
  }
  static void Put(std::string* s, uint64_t v, int bytes) {
    for (int b = 0; b < bytes; ++b) s->push_back(static_cast<char>(v >> 8 * b));
  }
  std::string Bytes() const {
    std::string s = "HL\x02";
    const std::map<uint32_t, uint32_t> sparse = Sparse();
    if (dense || sparse.size() > 4094) {
      s.push_back(3);
      std::string regs(HyperLogLog::kRegisters, '\0');
      for (uint64_t h : hashes) {
        char& r = regs[h >> 50];
        const uint32_t rank = Rank(h & ((uint64_t{1} << 50) - 1), 50);
        r = static_cast<char>(std::max<uint32_t>(r, rank));
      }
      return s + regs;
    }
    if (hashes.empty()) return s + '\0';
    if (hashes.size() <= 64) {
      s.push_back(1);
      Put(&s, hashes.size(), 4);
      for (uint64_t h : hashes) Put(&s, h, 8);
      return s;
    }
    s.push_back(2);
    Put(&s, sparse.size(), 4);
    for (auto [index, rank] : sparse) Put(&s, uint64_t{index} << 6 | rank, 4);
    return s;
  }
  size_t Entries() const {
    const size_t sparse = Sparse().size();
    if (dense || sparse > 4094) return 0;
    return hashes.size() <= 64 ? hashes.size() : sparse;
  }
};

// Hashes that exercise duplicates, equal sparse indexes with other ranks,
// equal dense registers, extreme ranks and clustered top bits.
class HashSource {
 public:
  explicit HashSource(uint64_t seed) : rng_(seed) {}
  uint64_t Next(int kind) {
    const uint64_t r = rng_();
    if (seen_.empty() || kind == 0) return Keep(r);
    const uint64_t base = seen_[rng_() % seen_.size()];
    switch (kind) {
      case 1:  // a repeat
        return base;
      case 2:  // same index25, another rank
        return Keep((base & ~((uint64_t{1} << 39) - 1)) |
                    (r & ((uint64_t{1} << 39) - 1)) >> (rng_() % 40));
      case 3:  // same dense register, another index25
        return Keep((base & ~((uint64_t{1} << 50) - 1)) |
                    (r & ((uint64_t{1} << 50) - 1)) >> (rng_() % 51));
      case 4:  // all-zero low bits: the largest ranks
        return Keep(base & ~((uint64_t{1} << (39 + rng_() % 12)) - 1));
      default:  // clustered: the top 20 bits of cluster_
        return Keep((cluster_ & ~((uint64_t{1} << 44) - 1)) |
                    (r & ((uint64_t{1} << 44) - 1)));
    }
  }
  std::vector<uint64_t> Batch(size_t n) {
    const int mix = static_cast<int>(rng_() % 6);  // mostly one kind
    if (rng_() % 4 == 0) cluster_ = rng_();
    std::vector<uint64_t> out(n);
    for (auto& h : out) {
      h = Next(rng_() % 3 == 0 ? static_cast<int>(rng_() % 6) : mix);
    }
    return out;
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  uint64_t Keep(uint64_t h) {
    if (seen_.size() < 4096) {
      seen_.push_back(h);
    } else {
      seen_[rng_() % seen_.size()] = h;
    }
    return h;
  }
  std::mt19937_64 rng_;
  std::vector<uint64_t> seen_;
  uint64_t cluster_ = 0;
};

size_t BatchSize(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0:
      return rng() % 2;  // 0 or 1
    case 1:
    case 2:
      return 2 + rng() % 20;
    case 3:
      return 40 + rng() % 50;  // around kExactLimit
    case 4:
      return 90 + rng() % 400;
    case 5:
      return 500 + rng() % 3000;
    case 6:
      return 3500 + rng() % 2000;  // around the sparse limit
    default:
      return rng() % 4 == 0 ? 6000 + rng() % 10000 : rng() % 300;
  }
}

// Every operation, in random order and batching, gives exactly the bytes,
// entries and estimate of the set model (the format is stored data).
TEST(HyperLogLogDifferentialTest, MatchesSetModel) {
  constexpr int kSketches = 4;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    HashSource src(seed);
    std::mt19937_64& rng = src.rng();
    std::vector<HyperLogLog> sk(kSketches);
    std::vector<SetModel> model(kSketches);
    for (int step = 0; step < 120; ++step) {
      const int i = static_cast<int>(rng() % kSketches);
      const int j = static_cast<int>(rng() % kSketches);
      const int op = static_cast<int>(rng() % 16);
      std::string what;
      if (op < 5) {
        std::vector<uint64_t> batch = src.Batch(BatchSize(rng));
        what = "AddMany " + std::to_string(batch.size());
        model[i].hashes.insert(batch.begin(), batch.end());
        sk[i].AddMany(absl::MakeSpan(batch));
      } else if (op < 7) {
        const size_t n = rng() % 100;
        what = "Add x" + std::to_string(n);
        for (size_t k = 0; k < n; ++k) {
          const uint64_t h = src.Next(static_cast<int>(rng() % 6));
          model[i].hashes.insert(h);
          sk[i].Add(h);
        }
      } else if (op < 10) {
        what = "Merge " + std::to_string(j);
        const SetModel other = model[j];
        model[i].hashes.insert(other.hashes.begin(), other.hashes.end());
        model[i].dense |= other.dense;
        sk[i].Merge(sk[j]);
      } else if (op < 13) {
        what = "MergeSerialized " + std::to_string(j);
        const SetModel other = model[j];
        model[i].hashes.insert(other.hashes.begin(), other.hashes.end());
        // An all-zero dense sketch serializes as (and merges like) empty.
        model[i].dense |= other.dense && !other.hashes.empty();
        ASSERT_TRUE(sk[i].MergeSerialized(sk[j].Serialize()).ok());
      } else if (op == 13) {
        what = "RoundTrip";
        if (model[i].hashes.empty()) model[i].dense = false;
        absl::StatusOr<HyperLogLog> back =
            HyperLogLog::Deserialize(sk[i].Serialize());
        ASSERT_TRUE(back.ok());
        sk[i] = *std::move(back);
      } else if (op == 14) {
        what = rng() % 2 ? "Promote" : "Copy";
        if (what == "Promote") {
          model[i].dense = true;
          sk[i].PromoteToDense();
        } else {
          model[i] = model[j];
          sk[i] = sk[j];
        }
      } else {
        what = "Reset";
        model[i] = SetModel();
        sk[i] = HyperLogLog();
      }
      if (model[i].hashes.size() > 40000) {  // keeps the model cheap
        model[i] = SetModel();
        sk[i] = HyperLogLog();
      }
      const std::string want = model[i].Bytes();
      ASSERT_EQ(sk[i].Serialize(), want)
          << "seed " << seed << " step " << step << " " << what << " on " << i
          << ", " << model[i].hashes.size() << " hashes";
      ASSERT_EQ(sk[i].entries(), model[i].Entries());
      EXPECT_EQ(sk[i].empty(), model[i].hashes.empty() && !model[i].dense);
      EXPECT_EQ(sk[i].Estimate(), HyperLogLog::Deserialize(want)->Estimate());
    }
    // And one-at-a-time Add in random order gives the same sketch.
    for (int i = 0; i < kSketches; ++i) {
      std::vector<uint64_t> all(model[i].hashes.begin(), model[i].hashes.end());
      std::shuffle(all.begin(), all.end(), rng);
      HyperLogLog one;
      for (uint64_t h : all) one.Add(h);
      if (model[i].dense) one.PromoteToDense();
      EXPECT_EQ(one.Serialize(), sk[i].Serialize()) << seed << " " << i;
      EXPECT_EQ(one.Estimate(), sk[i].Estimate()) << seed << " " << i;
    }
  }
}

// AddMany's large-batch path: batches around each threshold, from each
// mode, including a batch of one register's hashes (skewed buckets).
TEST(HyperLogLogDifferentialTest, AddManyThresholds) {
  std::mt19937_64 rng(77);
  for (size_t start : {0, 1, 30, 64, 65, 200, 4000, 4094, 4095, 9000}) {
    for (size_t n :
         {0, 1, 2, 31, 32, 63, 64, 65, 66, 128, 4093, 4094, 4095, 4096, 5000}) {
      for (int kind = 0; kind < 3; ++kind) {
        SetModel model;
        HyperLogLog a;
        std::vector<uint64_t> first(start);
        for (auto& h : first) h = rng();
        a.AddMany(absl::MakeSpan(first));
        model.hashes.insert(first.begin(), first.end());
        std::vector<uint64_t> batch(n);
        for (size_t k = 0; k < n; ++k) {
          if (kind == 0) {
            batch[k] = rng();
          } else if (kind == 1) {  // half repeats of earlier batch hashes
            batch[k] = k > 0 && rng() % 2 ? batch[rng() % k] : rng();
          } else {  // one dense register
            batch[k] = (uint64_t{0x1234} << 50) | (rng() >> 14);
          }
        }
        model.hashes.insert(batch.begin(), batch.end());
        a.AddMany(absl::MakeSpan(batch));
        ASSERT_EQ(a.Serialize(), model.Bytes())
            << start << " + " << n << " kind " << kind;
      }
    }
  }
}

// Unions of exactly 63, 64 and 65 distinct hashes, reached by every path:
// exact + exact merges, and batches with repeats (more than 64 hashes, at
// most 64 distinct).
TEST(HyperLogLogDifferentialTest, ExactLimitUnions) {
  std::mt19937_64 rng(64);
  for (size_t a = 0; a <= 65; a += 5) {
    for (size_t unique : {63, 64, 65}) {
      if (a > unique) continue;
      std::vector<uint64_t> pool(unique);
      for (auto& h : pool) h = rng();
      const std::vector<uint64_t> first(pool.begin(), pool.begin() + a);
      // The rest, plus some of the first (overlap), repeated 1-3 times.
      std::vector<uint64_t> second(pool.begin() + a, pool.end());
      for (size_t k = 0; k < a; k += 3) second.push_back(first[k]);
      SetModel model;
      model.hashes.insert(pool.begin(), pool.end());
      const std::string want = model.Bytes();
      for (int copies = 1; copies <= 3; ++copies) {
        std::vector<uint64_t> batch;
        for (int c = 0; c < copies; ++c) {
          batch.insert(batch.end(), second.begin(), second.end());
        }
        std::shuffle(batch.begin(), batch.end(), rng);
        HyperLogLog x = Build(first), y = Build(second), z = Build(first);
        std::vector<uint64_t> b1 = batch, b2 = first;
        HyperLogLog w;
        w.AddMany(absl::MakeSpan(b1));
        w.AddMany(absl::MakeSpan(b2));
        x.AddMany(absl::MakeSpan(batch));
        y.Merge(Build(first));
        ASSERT_TRUE(z.MergeSerialized(Build(second).Serialize()).ok());
        const std::string tag = std::to_string(a) + "/" +
                                std::to_string(unique) + "/" +
                                std::to_string(copies);
        EXPECT_EQ(x.Serialize(), want) << tag;
        EXPECT_EQ(y.Serialize(), want) << tag;
        EXPECT_EQ(z.Serialize(), want) << tag;
        EXPECT_EQ(w.Serialize(), want) << tag;
      }
    }
  }
}

// `n` random hashes with distinct sparse indexes (their top 25 bits).
std::vector<uint64_t> DistinctIndexHashes(std::mt19937_64& rng, size_t n) {
  std::vector<uint64_t> pool;
  std::set<uint32_t> indexes;
  while (pool.size() < n) {
    const uint64_t h = rng();
    if (indexes.insert(static_cast<uint32_t>(h >> 39)).second) {
      pool.push_back(h);
    }
  }
  return pool;
}

// Unions of exactly 4093, 4094 and 4095 distinct sparse indexes (the last
// is dense) by every merge path: sketches of comparable and of very
// different sizes, Merge, MergeSerialized and AddMany, both ways round.
TEST(HyperLogLogDifferentialTest, SparseLimitUnions) {
  std::mt19937_64 rng(4094);
  for (size_t a : {3000, 2048, 4000, 100}) {
    for (size_t unique : {4093, 4094, 4095}) {
      const std::vector<uint64_t> pool = DistinctIndexHashes(rng, unique);
      const std::vector<uint64_t> first(pool.begin(), pool.begin() + a);
      std::vector<uint64_t> second(pool.begin() + a, pool.end());
      for (size_t k = 0; k < a; k += 7) second.push_back(first[k]);
      SetModel model;
      model.hashes.insert(pool.begin(), pool.end());
      const std::string want = model.Bytes();
      for (int way = 0; way < 2; ++way) {
        const std::vector<uint64_t>& x = way ? second : first;
        const std::vector<uint64_t>& y = way ? first : second;
        HyperLogLog merged = Build(x), serialized = Build(x), many = Build(x);
        merged.Merge(Build(y));
        ASSERT_TRUE(serialized.MergeSerialized(Build(y).Serialize()).ok());
        std::vector<uint64_t> batch = y;
        many.AddMany(absl::MakeSpan(batch));
        const std::string tag = std::to_string(a) + "/" +
                                std::to_string(unique) + "/" +
                                std::to_string(way);
        EXPECT_EQ(merged.Serialize(), want) << tag;
        EXPECT_EQ(serialized.Serialize(), want) << tag;
        EXPECT_EQ(many.Serialize(), want) << tag;
      }
    }
  }
}

// MergeMany against merging one by one (and the set model where the
// precision is 14 throughout): groups of empty, exact, sparse and dense
// sketches around every mode threshold, shared hashes and indexes, into an
// empty or a non-empty sketch, with null and self entries, at p = 14 and
// 16 and mixed.
TEST(HyperLogLogDifferentialTest, MergeManyEqualsMergingOneByOne) {
  std::mt19937_64 rng(2401);
  const size_t sizes[] = {0, 1, 3, 30, 63, 64, 65, 200, 1500, 4093, 5000};
  for (int round = 0; round < 600; ++round) {
    const int precision_mode = round % 4;  // 0, 1: p = 14; 2: 16; 3: mixed
    auto precision = [&] {
      if (precision_mode < 2) return HyperLogLog::kPrecision;
      if (precision_mode == 2) return HyperLogLog::kMaxPrecision;
      return static_cast<int>(14 + rng() % 3);
    };
    // A pool shared by the sketches (repeats across them), sometimes of
    // hashes with few distinct sparse indexes (index collisions).
    const bool collide = rng() % 5 == 0;
    std::vector<uint64_t> pool(6000);
    for (uint64_t& h : pool) {
      h = rng();
      if (collide) h = (h & ((uint64_t{1} << 45) - 1)) | (rng() % 40) << 58;
    }
    const size_t n = 1 + rng() % 30;
    std::vector<HyperLogLog> parts;
    SetModel model;
    for (size_t i = 0; i < n; ++i) {
      // Mostly small (hour cells), sometimes large or dense.
      const size_t size =
          rng() % 4 == 0 ? sizes[rng() % std::size(sizes)] : sizes[rng() % 6];
      HyperLogLog h(precision());
      std::vector<uint64_t> batch;
      for (size_t k = 0; k < size; ++k) batch.push_back(pool[rng() % 6000]);
      model.hashes.insert(batch.begin(), batch.end());
      h.AddMany(absl::MakeSpan(batch));
      if (rng() % 20 == 0) {
        h.PromoteToDense();
        model.dense = true;
      }
      parts.push_back(std::move(h));
    }
    HyperLogLog into(precision());
    if (rng() % 3 == 0) {  // a non-empty sketch to merge into
      std::vector<uint64_t> batch;
      for (size_t k = rng() % 300; k > 0; --k) {
        batch.push_back(pool[rng() % 6000]);
      }
      model.hashes.insert(batch.begin(), batch.end());
      into.AddMany(absl::MakeSpan(batch));
    }
    HyperLogLog one_by_one = into;
    for (const HyperLogLog& h : parts) one_by_one.Merge(h);
    std::vector<const HyperLogLog*> ptrs;
    for (const HyperLogLog& h : parts) ptrs.push_back(&h);
    if (round % 7 == 0) ptrs.push_back(nullptr);
    HyperLogLog many = into;
    if (round % 11 == 0) ptrs.push_back(&many);
    many.MergeMany(ptrs);
    const std::string tag = "round " + std::to_string(round);
    ASSERT_EQ(many.Serialize(), one_by_one.Serialize()) << tag;
    ASSERT_EQ(many.precision(), one_by_one.precision()) << tag;
    if (precision_mode < 2) {
      ASSERT_EQ(many.Serialize(), model.Bytes()) << tag;
    }
  }
}

// MergeMany of many small sketches (exact, a few sparse) whose union holds
// exactly 4093, 4094 or 4095 distinct sparse indexes (the last is dense).
TEST(HyperLogLogDifferentialTest, MergeManySparseLimit) {
  std::mt19937_64 rng(4095);
  for (size_t unique : {4093, 4094, 4095}) {
    for (size_t part : {40, 64, 300}) {
      const std::vector<uint64_t> pool = DistinctIndexHashes(rng, unique);
      std::vector<HyperLogLog> parts;
      for (size_t i = 0; i < pool.size(); i += part) {
        std::vector<uint64_t> batch(
            pool.begin() + i, pool.begin() + std::min(pool.size(), i + part));
        batch.push_back(pool[rng() % pool.size()]);  // a repeat
        parts.emplace_back().AddMany(absl::MakeSpan(batch));
      }
      std::vector<const HyperLogLog*> ptrs;
      for (const HyperLogLog& h : parts) ptrs.push_back(&h);
      HyperLogLog many;
      many.MergeMany(ptrs);
      SetModel model;
      model.hashes.insert(pool.begin(), pool.end());
      EXPECT_EQ(many.Serialize(), model.Bytes())
          << unique << " in parts of " << part;
    }
  }
}

}  // namespace
}  // namespace analytics
