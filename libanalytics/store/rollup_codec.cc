// Rollup block encoding and merging; see rollup_codec.h.
#include "libanalytics/store/rollup_codec.h"

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libanalytics/sketch/hll.h"
#include "libanalytics/store/varint.h"

namespace analytics {
namespace {

constexpr uint8_t kRollupBlockFormat = 1;

absl::Status Damaged(const char* what) {
  return absl::DataLossError(
      absl::StrCat("store: damaged rollup block (", what, ")"));
}

bool KeyLess(const RollupRow& a, const RollupRow& b) {
  return std::tie(a.dim, a.value) < std::tie(b.dim, b.value);
}

}  // namespace

absl::StatusOr<std::string> MergeSerializedSketches(std::string_view a,
                                                    std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(a);
  if (!h.ok()) return h.status();
  absl::Status st = h->MergeSerialized(b);
  if (!st.ok()) return st;
  return h->Serialize();
}

void EncodeRollupBlock(absl::Span<const RollupRow> cells, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kRollupBlockFormat));
  size_t dims = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i == 0 || cells[i].dim != cells[i - 1].dim) ++dims;
  }
  codec::PutVar(out, dims);
  std::string section;
  for (size_t i = 0; i < cells.size();) {
    size_t j = i;
    section.clear();
    for (; j < cells.size() && cells[j].dim == cells[i].dim; ++j) {
      const RollupRow& c = cells[j];
      codec::PutStr(&section, c.value);
      codec::PutSigned(&section, c.m.pageviews);
      codec::PutSigned(&section, c.m.events);
      codec::PutSigned(&section, c.m.visits);
      codec::PutSigned(&section, c.m.bounces);
      codec::PutSigned(&section, c.m.duration_ms);
      codec::PutSigned(&section, c.m.session_pageviews);
      codec::PutStr(&section, c.visitors);
    }
    codec::PutStr(out, cells[i].dim);
    codec::PutVar(out, j - i);
    codec::PutStr(out, section);
    i = j;
  }
}

absl::Status DecodeRollupBlock(
    std::string_view in, int64_t site_id, RollupLevel level, int64_t bucket,
    const std::function<bool(std::string_view dim)>& want,
    const std::function<void(const RollupRow&)>& fn) {
  codec::Reader r(in);
  uint8_t format;
  if (!r.Byte(&format)) return Damaged("empty");
  if (format != kRollupBlockFormat) return Damaged("unknown format");
  uint64_t dims;
  if (!r.Var(&dims)) return Damaged("dimension count");
  RollupRow row;
  row.site_id = site_id;
  row.level = level;
  row.bucket = bucket;
  std::string_view prev_dim;
  for (uint64_t d = 0; d < dims; ++d) {
    std::string_view dim, section;
    uint64_t n;
    if (!r.View(&dim) || !r.Var(&n) || !r.View(&section)) {
      return Damaged("dimension header");
    }
    if (d > 0 && dim <= prev_dim) return Damaged("dimension order");
    prev_dim = dim;
    if (!want(dim)) continue;
    row.dim.assign(dim.data(), dim.size());
    codec::Reader c(section);
    for (uint64_t i = 0; i < n; ++i) {
      if (!c.Str(&row.value) || !c.Signed(&row.m.pageviews) ||
          !c.Signed(&row.m.events) || !c.Signed(&row.m.visits) ||
          !c.Signed(&row.m.bounces) || !c.Signed(&row.m.duration_ms) ||
          !c.Signed(&row.m.session_pageviews) || !c.Str(&row.visitors)) {
        return Damaged("cell");
      }
      fn(row);
    }
    if (!c.done()) return Damaged("cell count");
  }
  if (!r.done()) return Damaged("trailing bytes");
  return absl::OkStatus();
}

absl::Status ApplyToRollupBlock(std::string_view old,
                                absl::Span<const RollupRow* const> deltas,
                                std::string* out, int64_t* cells) {
  std::vector<RollupRow> have;
  if (!old.empty()) {
    absl::Status st = DecodeRollupBlock(
        old, 0, RollupLevel::kHour, 0, [](std::string_view) { return true; },
        [&](const RollupRow& c) { have.push_back(c); });
    if (!st.ok()) return st;
  }
  std::vector<const RollupRow*> sorted(deltas.begin(), deltas.end());
  std::stable_sort(
      sorted.begin(), sorted.end(),
      [](const RollupRow* a, const RollupRow* b) { return KeyLess(*a, *b); });
  // Merge-join of two sorted runs; a delta for a cell already merged into
  // (the previous output cell) folds into it.
  std::vector<RollupRow> merged;
  merged.reserve(have.size() + sorted.size());
  size_t i = 0, j = 0;
  while (i < have.size() || j < sorted.size()) {
    const bool take_old = j == sorted.size() ||
                          (i < have.size() && !KeyLess(*sorted[j], have[i]));
    if (take_old) {
      merged.push_back(std::move(have[i++]));
      continue;
    }
    const RollupRow& d = *sorted[j++];
    if (!merged.empty() && merged.back().dim == d.dim &&
        merged.back().value == d.value) {
      RollupRow& c = merged.back();
      c.m += d.m;
      absl::StatusOr<std::string> v =
          MergeSerializedSketches(c.visitors, d.visitors);
      if (!v.ok()) return v.status();
      c.visitors = *std::move(v);
      continue;
    }
    RollupRow c;
    c.dim = d.dim;
    c.value = d.value;
    c.m = d.m;
    c.visitors = d.visitors;
    merged.push_back(std::move(c));
  }
  EncodeRollupBlock(merged, out);
  *cells = static_cast<int64_t>(merged.size());
  return absl::OkStatus();
}

}  // namespace analytics
