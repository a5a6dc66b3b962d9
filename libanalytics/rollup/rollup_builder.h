// RollupBuilder: folds stored events into rollup cells.
//
// Owns: which cells an event touches and what it adds to them. A cell is
// (site, level, bucket, dimension, value) -> RollupMetrics + visitor sketch.
// Hour buckets are UTC hours; day buckets start at local midnight in the
// site's time zone. For every dimension in kRollupDims and every prop key:
//   - event part, in the bucket of the event's time: pageviews, events, and
//     the visitor added to the sketch;
//   - session part, in the bucket of the session's start (session metrics
//     belong to the start): visits (+1 on the session's first event; for
//     event:page / event:name, +1 on the first event with that value),
//     bounces and duration (the event's stamped deltas, which retract the
//     session's previous contribution), session_pageviews.
// Props carry only the event part. Because the fold uses only fields stamped
// on the event, replaying stored events rebuilds exactly the same cells.
//
// For sites whose zone is always a whole number of hours from UTC (nearly
// all), every UTC hour lies within one local day, so events are folded into
// hour cells only and the day cells are derived from them (Take, Scan): half
// the work per event. Other zones (e.g. Asia/Kolkata) fold both levels.
//
// Thread-safety: all methods lock an internal mutex.
#ifndef ANALYTICS_ROLLUP_ROLLUP_BUILDER_H_
#define ANALYTICS_ROLLUP_ROLLUP_BUILDER_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "analytics/event.h"
#include "analytics/store.h"
#include "libanalytics/sketch/hll.h"

namespace analytics {

// Start (unix seconds) of the local day containing `ts_ms` in `tz`.
int64_t LocalDayStart(int64_t ts_ms, const absl::TimeZone& tz);

class RollupBuilder {
 public:
  RollupBuilder() = default;

  // Day buckets of events of `site_id` use this zone (UTC when never set).
  void SetSiteTimezone(int64_t site_id, const absl::TimeZone& tz);

  // Folds events in. `last_seq` is recorded as the highest folded seq.
  void Add(absl::Span<const Event> events);

  // Drains the pending cells as rows to write, and returns the highest seq
  // folded so far in *checkpoint_seq.
  std::vector<RollupRow> Take(int64_t* checkpoint_seq);
  // Puts rows taken by Take() back, e.g. when writing them failed.
  void PutBack(const std::vector<RollupRow>& rows);

  // Calls fn for pending cells like Store::ScanRollups does.
  void Scan(int64_t site_id, RollupLevel level, int64_t from_bucket,
            int64_t to_bucket, absl::Span<const std::string> dims,
            const std::function<void(const RollupRow&)>& fn);

  int64_t pending_events() const;
  int64_t last_seq() const;
  void set_last_seq(int64_t seq);

 private:
  struct Cell {
    RollupMetrics m;
    HyperLogLog visitors;
    // Visitor hashes not yet in `visitors`: added in batches (one sort and
    // merge instead of a sorted insert per event).
    std::vector<uint64_t> buffer;
    uint32_t flush_at = 256;
    void AddVisitor(uint64_t h) {
      if (!buffer.empty() && buffer.back() == h) return;
      buffer.push_back(h);
      if (buffer.size() >= flush_at) FlushVisitors();
    }
    void FlushVisitors() {
      if (buffer.empty()) return;
      visitors.AddMany(absl::MakeSpan(buffer));
      buffer.clear();
      // A sparse sketch merges a batch in one pass over all its entries (up
      // to 4094): batches of at least half its size keep that pass, and its
      // reallocation, to a few operations per hash. The sketch is the same
      // whatever the batching (it depends only on the set of hashes).
      flush_at =
          static_cast<uint32_t>(std::max<size_t>(256, visitors.entries() / 2));
    }
  };
  // Cells of one (site, level, bucket), per dimension index, by value. Two
  // levels keep the per-event work to one short-string lookup per dimension.
  struct Bucket {
    int64_t site_id = 0;
    uint8_t level = 0;
    int64_t bucket = 0;
    std::vector<absl::flat_hash_map<std::string, Cell>> dims;
    // Sessions (session id mixed with visitor hash) whose visitor is already
    // in this bucket's cells of the session-constant dimensions (total and
    // visit:*): later events of the session skip those sketch inserts.
    absl::flat_hash_set<uint64_t> visitor_done;
  };
  struct BucketKey {
    int64_t site_id;
    int64_t bucket;
    uint8_t level;
    bool operator==(const BucketKey&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const BucketKey& k) {
      return H::combine(std::move(h), k.site_id, k.bucket, k.level);
    }
  };
  struct SiteZone {
    absl::TimeZone tz;
    bool derive_days = true;   // whole-hour offsets: day cells from hours
    int64_t day_start_ms = 1;  // cached local day [start, end)
    int64_t day_end_ms = 0;
    int64_t day_bucket = 0;
  };

  Bucket* BucketFor(int64_t site, uint8_t level, int64_t bucket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static Cell& CellFor(Bucket* b, uint16_t dim, std::string_view value);
  int64_t DayBucket(int64_t site, int64_t ts_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SiteZone& ZoneOf(int64_t site) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static RollupRow ToRow(const Bucket& b, RollupLevel level, int64_t bucket,
                         const std::string& dim, std::string_view value,
                         Cell& c);
  uint16_t PropDim(std::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddOne(const Event& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<BucketKey, std::unique_ptr<Bucket>> buckets_
      ABSL_GUARDED_BY(mu_);
  Bucket* last_bucket_[4] ABSL_GUARDED_BY(mu_) = {};  // small lookup cache
  std::vector<std::string> dim_names_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint16_t> dim_index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, SiteZone> zones_ ABSL_GUARDED_BY(mu_);
  int64_t pending_events_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::string lookup_scratch_ ABSL_GUARDED_BY(mu_);
  int next_cache_slot_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace analytics

#endif  // ANALYTICS_ROLLUP_ROLLUP_BUILDER_H_
