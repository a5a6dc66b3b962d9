// Binary encoding of a rollup bucket: every cell of one (site, level, bucket)
// in one byte string, as the SQLite store keeps hour buckets (one row per
// site and hour instead of one per cell: a row costs ~7 us to upsert, and an
// hour of a site has hundreds of cells).
//
// Owns: the block format and merging deltas into a block. Format 1: a format
// byte, the dimension count, then per dimension in byte order of its name:
// the name, its cell count, the byte length of its section, and the section:
// per cell in byte order of its value, the value, the six metrics (zigzag, in
// RollupMetrics order) and the serialized visitor sketch (empty: none).
// Readers skip the sections of dimensions they do not want. Stored data:
// never change format 1, add a new format byte instead.
#ifndef ANALYTICS_STORE_ROLLUP_CODEC_H_
#define ANALYTICS_STORE_ROLLUP_CODEC_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "analytics/store.h"

namespace analytics {

// The serialized union of two serialized sketches; an empty string is the
// empty sketch (the result is empty only when both are).
absl::StatusOr<std::string> MergeSerializedSketches(std::string_view a,
                                                    std::string_view b);

// Encodes cells sorted by (dim, value), without duplicates, into *out
// (replaced). Their site, level and bucket are not stored.
void EncodeRollupBlock(absl::Span<const RollupRow> cells, std::string* out);

// Calls fn for each cell of the block whose dim `want` accepts, in (dim,
// value) order, with site_id, level and bucket set from the arguments.
// DataLoss for bytes EncodeRollupBlock did not produce (fn may have been
// called for the cells before the damage).
absl::Status DecodeRollupBlock(
    std::string_view in, int64_t site_id, RollupLevel level, int64_t bucket,
    const std::function<bool(std::string_view dim)>& want,
    const std::function<void(const RollupRow&)>& fn);

// The block `old` (empty: no block yet) with `deltas` applied, as the
// per-cell upsert of a rollup row does: metrics added, sketches merged.
// Deltas may come in any order and repeat a cell. Writes the new block to
// *out and its cell count to *cells.
absl::Status ApplyToRollupBlock(std::string_view old,
                                absl::Span<const RollupRow* const> deltas,
                                std::string* out, int64_t* cells);

}  // namespace analytics

#endif  // ANALYTICS_STORE_ROLLUP_CODEC_H_
