#include "libanalytics/sketch/hll.h"

#include <cmath>
#include <cstdint>
#include <random>
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
