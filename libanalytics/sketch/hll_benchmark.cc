// Microbenchmarks for the HyperLogLog sketch. Run by hand:
//   build/bin/hll_benchmark
#include <cstdint>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "libanalytics/sketch/hll.h"

namespace analytics {
namespace {

HyperLogLog Dense(uint64_t seed, uint64_t n = 100000) {
  HyperLogLog h;
  for (uint64_t i = 0; i < n; ++i) h.Add(HyperLogLog::HashKey(seed << 32 | i));
  return h;
}

void BM_AddDense(benchmark::State& state) {
  HyperLogLog h = Dense(1);
  uint64_t i = 0;
  for (auto _ : state) h.Add(HyperLogLog::HashKey(i++));
  benchmark::DoNotOptimize(h);
}
BENCHMARK(BM_AddDense);

void BM_AddSparse(benchmark::State& state) {
  // Grows a fresh sketch from empty through exact and sparse (n adds each).
  const int64_t n = state.range(0);
  for (auto _ : state) {
    HyperLogLog h;
    for (int64_t i = 0; i < n; ++i) h.Add(HyperLogLog::HashKey(i));
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_AddSparse)->Arg(1000)->Arg(4000);

void BM_MergeDense(benchmark::State& state) {
  HyperLogLog a = Dense(1), b = Dense(2);
  for (auto _ : state) {
    a.Merge(b);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_MergeDense);

void BM_MergeSerializedDense(benchmark::State& state) {
  HyperLogLog a = Dense(1);
  const std::string b = Dense(2).Serialize();
  for (auto _ : state) {
    benchmark::DoNotOptimize(a.MergeSerialized(b));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_MergeSerializedDense);

void BM_MergeSerializedSparse(benchmark::State& state) {
  // A typical rollup cell: two ~1000-visitor days merged (stays sparse).
  const HyperLogLog a = Dense(1, 1000);
  const std::string b = Dense(2, 1000).Serialize();
  for (auto _ : state) {
    HyperLogLog c = a;
    benchmark::DoNotOptimize(c.MergeSerialized(b));
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_MergeSerializedSparse);

// The same, over 256 different pairs in turn: merging the same pair (even
// a few pairs) again and again lets the branch predictor learn their
// interleaving, which real merges never repeat.
void BM_MergeSerializedSparseVaried(benchmark::State& state) {
  std::vector<HyperLogLog> as;
  std::vector<std::string> bs;
  for (uint64_t i = 0; i < 256; ++i) {
    as.push_back(Dense(2 * i + 1, 1000));
    bs.push_back(Dense(2 * i + 2, 1000).Serialize());
  }
  size_t k = 0;
  for (auto _ : state) {
    HyperLogLog c = as[k];
    benchmark::DoNotOptimize(c.MergeSerialized(bs[k]));
    benchmark::DoNotOptimize(c);
    k = (k + 1) % 256;
  }
}
BENCHMARK(BM_MergeSerializedSparseVaried);

void BM_MergeSparseIntoDense(benchmark::State& state) {
  HyperLogLog a = Dense(1);
  const HyperLogLog b = Dense(2, 2000);
  for (auto _ : state) {
    a.Merge(b);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_MergeSparseIntoDense);

// RollupBuilder's drain: AddMany of one cell's hashes into a fresh sketch
// (exact for small batches, sparse for larger ones), 64 cells per run, from
// a pool of 16 runs' worth of different hashes (repeating the same batches
// would let the branch predictor learn them).
void BM_AddManyFresh(benchmark::State& state) {
  const int64_t n = state.range(0);
  constexpr int kCells = 64, kRuns = 16;
  std::vector<uint64_t> all(n * kCells * kRuns);
  for (size_t i = 0; i < all.size(); ++i) all[i] = HyperLogLog::HashKey(i);
  std::vector<uint64_t> batch(n);
  int run = 0;
  for (auto _ : state) {
    for (int c = 0; c < kCells; ++c) {
      auto from = all.begin() + (run * kCells + c) * n;
      batch.assign(from, from + n);
      HyperLogLog h;
      h.AddMany(absl::MakeSpan(batch));
      benchmark::DoNotOptimize(h);
    }
    run = (run + 1) % kRuns;
  }
  state.SetItemsProcessed(state.iterations() * n * kCells);
}
BENCHMARK(BM_AddManyFresh)->Arg(8)->Arg(30)->Arg(200)->Arg(2000);

void BM_AddManyDense(benchmark::State& state) {
  HyperLogLog h = Dense(1);
  std::vector<uint64_t> all(10000), batch;
  for (size_t i = 0; i < all.size(); ++i) all[i] = HyperLogLog::HashKey(i);
  for (auto _ : state) {
    batch = all;
    h.AddMany(absl::MakeSpan(batch));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * all.size());
}
BENCHMARK(BM_AddManyDense);

// Take's day cells: hour sketches (exact and sparse) merged into a fresh
// day sketch, 24 per day; 16 different days in turn.
void BM_MergeHoursIntoDay(benchmark::State& state) {
  const int64_t n = state.range(0);
  constexpr int kDays = 16;
  std::vector<HyperLogLog> hours;
  for (uint64_t i = 0; i < 24 * kDays; ++i) hours.push_back(Dense(i + 1, n));
  int d = 0;
  for (auto _ : state) {
    HyperLogLog day;
    for (int h = 0; h < 24; ++h) day.Merge(hours[d * 24 + h]);
    benchmark::DoNotOptimize(day);
    d = (d + 1) % kDays;
  }
  state.SetItemsProcessed(state.iterations() * 24);
}
BENCHMARK(BM_MergeHoursIntoDay)->Arg(10)->Arg(100);

void BM_EstimateDense(benchmark::State& state) {
  HyperLogLog a = Dense(1);
  for (auto _ : state) benchmark::DoNotOptimize(a.Estimate());
}
BENCHMARK(BM_EstimateDense);

void BM_EstimateSparse(benchmark::State& state) {
  HyperLogLog a = Dense(1, 2000);
  for (auto _ : state) benchmark::DoNotOptimize(a.Estimate());
}
BENCHMARK(BM_EstimateSparse);

}  // namespace
}  // namespace analytics
