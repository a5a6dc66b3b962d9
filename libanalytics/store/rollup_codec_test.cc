// Tests of the rollup block format and of merging deltas into a block: the
// merge must equal the per-cell upsert of a rollup row (metrics added,
// sketches merged), checked against a brute-force model on random deltas.
#include "libanalytics/store/rollup_codec.h"

#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "libanalytics/sketch/hll.h"

namespace analytics {
namespace {

std::string Sketch(std::initializer_list<uint64_t> hashes) {
  HyperLogLog h;
  for (uint64_t x : hashes) h.Add(x);
  return h.Serialize();
}

std::vector<RollupRow> Decode(std::string_view block, int64_t site = 1,
                              int64_t bucket = 3600) {
  std::vector<RollupRow> out;
  absl::Status st = DecodeRollupBlock(
      block, site, RollupLevel::kHour, bucket,
      [](std::string_view) { return true; },
      [&](const RollupRow& r) { out.push_back(r); });
  EXPECT_TRUE(st.ok()) << st;
  return out;
}

RollupRow Cell(std::string dim, std::string value, int64_t pv,
               std::string visitors = "") {
  RollupRow r;
  r.site_id = 1;
  r.bucket = 3600;
  r.dim = std::move(dim);
  r.value = std::move(value);
  r.m.pageviews = pv;
  r.m.events = pv + 1;
  r.m.visits = -pv;  // deltas retract: metrics may be negative
  r.m.bounces = 2;
  r.m.duration_ms = 1 << 30;
  r.m.session_pageviews = -1;
  r.visitors = std::move(visitors);
  return r;
}

void ExpectSameRow(const RollupRow& a, const RollupRow& b) {
  EXPECT_EQ(a.site_id, b.site_id);
  EXPECT_EQ(a.level, b.level);
  EXPECT_EQ(a.bucket, b.bucket);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.m, b.m);
  EXPECT_EQ(a.visitors, b.visitors);
}

TEST(RollupCodecTest, RoundTripAndDimensionFilter) {
  std::vector<RollupRow> cells = {
      Cell("", "", 5, Sketch({1, 2})),
      Cell("event:page", "/a", 1),
      Cell("event:page", "/b", 2, Sketch({3})),
      Cell("visit:source", std::string("x\0y", 3), 3),
  };
  std::string block;
  EncodeRollupBlock(cells, &block);
  std::vector<RollupRow> back = Decode(block);
  ASSERT_EQ(back.size(), cells.size());
  for (size_t i = 0; i < cells.size(); ++i) ExpectSameRow(back[i], cells[i]);

  std::vector<std::string> seen;
  ASSERT_TRUE(DecodeRollupBlock(
                  block, 1, RollupLevel::kHour, 3600,
                  [](std::string_view d) { return d == "event:page"; },
                  [&](const RollupRow& r) { seen.push_back(r.value); })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"/a", "/b"}));

  EncodeRollupBlock({}, &block);
  EXPECT_TRUE(Decode(block).empty());
}

TEST(RollupCodecTest, DamagedBlocksAreDataLoss) {
  std::vector<RollupRow> cells = {Cell("", "", 5, Sketch({1, 2})),
                                  Cell("event:page", "/a", 1)};
  std::string block;
  EncodeRollupBlock(cells, &block);
  auto decode = [](std::string_view b) {
    return DecodeRollupBlock(
        b, 1, RollupLevel::kHour, 0, [](std::string_view) { return true; },
        [](const RollupRow&) {});
  };
  ASSERT_TRUE(decode(block).ok());
  EXPECT_EQ(decode("").code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(decode(block + "x").code(), absl::StatusCode::kDataLoss);
  std::string bad_format = block;
  bad_format[0] = 9;
  EXPECT_EQ(decode(bad_format).code(), absl::StatusCode::kDataLoss);
  // Every prefix and every single-byte change either decodes or is DataLoss
  // (never a crash or a read past the input: run under ASan in make
  // test-asan).
  for (size_t n = 0; n < block.size(); ++n) {
    absl::Status st = decode(block.substr(0, n));
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << n;
  }
  for (size_t i = 0; i < block.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string b = block;
      b[i] = static_cast<char>(b[i] ^ (1 << bit));
      absl::Status st = decode(b);
      EXPECT_TRUE(st.ok() || st.code() == absl::StatusCode::kDataLoss) << st;
    }
  }
}

// ApplyToRollupBlock against a model: a map of cells where each delta is
// added and its sketch merged, one delta at a time, as the SQL upsert does.
TEST(RollupCodecTest, ApplyEqualsPerCellUpserts) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> dims = {"", "event:page", "visit:source",
                                         "event:props:plan"};
  using Key = std::pair<std::string, std::string>;
  std::map<Key, RollupRow> model;
  std::string block;
  for (int round = 0; round < 40; ++round) {
    std::vector<RollupRow> deltas;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) {
      RollupRow d;
      d.site_id = 1;
      d.bucket = 3600;
      d.dim = dims[rng() % dims.size()];
      d.value = d.dim.empty() ? "" : "v" + std::to_string(rng() % 12);
      d.m.pageviews = static_cast<int64_t>(rng() % 5);
      d.m.events = static_cast<int64_t>(rng() % 7);
      d.m.visits = static_cast<int64_t>(rng() % 3) - 1;
      d.m.bounces = static_cast<int64_t>(rng() % 3) - 1;
      d.m.duration_ms = static_cast<int64_t>(rng() % 100000) - 50000;
      d.m.session_pageviews = static_cast<int64_t>(rng() % 4);
      if (rng() % 3 != 0) {
        HyperLogLog h;
        const int k = static_cast<int>(rng() % (round % 5 == 0 ? 3000 : 20));
        for (int j = 0; j < k; ++j) h.Add(rng() % 5000);
        d.visitors = h.Serialize();
      }
      deltas.push_back(d);
      RollupRow& c = model[{d.dim, d.value}];
      if (c.dim.empty() && c.value.empty() && c.visitors.empty() &&
          c.m == RollupMetrics{}) {
        c.site_id = 1;
        c.bucket = 3600;
        c.dim = d.dim;
        c.value = d.value;
      }
      c.m += d.m;
      absl::StatusOr<std::string> v =
          MergeSerializedSketches(c.visitors, d.visitors);
      ASSERT_TRUE(v.ok());
      c.visitors = *v;
    }
    std::vector<const RollupRow*> ptrs;
    for (const RollupRow& d : deltas) ptrs.push_back(&d);
    std::string next;
    int64_t cells = -1;
    ASSERT_TRUE(ApplyToRollupBlock(block, ptrs, &next, &cells).ok());
    block = next;
    std::vector<RollupRow> got = Decode(block);
    ASSERT_EQ(static_cast<int64_t>(got.size()), cells);
    ASSERT_EQ(got.size(), model.size()) << "round " << round;
    size_t i = 0;
    for (const auto& [key, want] : model) ExpectSameRow(got[i++], want);
  }
}

TEST(RollupCodecTest, MergeSketchesIsTheUnion) {
  EXPECT_EQ(*MergeSerializedSketches("", ""), "");
  const std::string a = Sketch({1, 2, 3});
  EXPECT_EQ(*MergeSerializedSketches(a, ""), a);
  EXPECT_EQ(*MergeSerializedSketches("", a), a);
  EXPECT_EQ(*MergeSerializedSketches(a, Sketch({3, 4})), Sketch({1, 2, 3, 4}));
  EXPECT_FALSE(MergeSerializedSketches(a, "junk").ok());
}

}  // namespace
}  // namespace analytics
