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
// Per event the work is counters and appends: values are interned per
// dimension (until the next Take) and cells found by integer keys; visitor
// hashes go to a log and are added to the cells' sketches in one batch per
// cell when the log is drained (Take, Scan, or when it is long). A sketch
// depends only on the set of hashes added, so the rows are the same as with
// an insert per event.
//
// Session-constant dimensions that go together are folded as one tuple: the
// acquisition fields (source, referrer, UTM) and the user agent and place
// (country .. locale) are each interned as one value of a hidden dimension,
// whose cell in a bucket stands for the tuple's cells of each dimension
// (resolved once, when the tuple cell is made). An event then does one
// look-up and one cell update per tuple instead of one per dimension; tuple
// cells carry no sketch (their logged visitors are logged again for each
// dimension's cell when the log is drained) and their metrics are added to
// the dimensions' cells before Take and Scan read them. When traffic has far
// fewer distinct tuples per bucket than events, this is most of the
// per-event work saved; when it does not (a small site, a long tail of user
// agents or referrers), making a tuple cell costs more than folding its
// dimensions one by one. So each group is folded as tuples only while its
// new tuple cells take at least 5 events each (estimated every 4096 events
// on a hash sample of the tuples), and per dimension otherwise. Each event
// goes one way, so both can fill the same cells.
//
// Thread-safety: all methods lock an internal mutex.
#ifndef ANALYTICS_ROLLUP_ROLLUP_BUILDER_H_
#define ANALYTICS_ROLLUP_ROLLUP_BUILDER_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
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
  RollupBuilder();
  ~RollupBuilder();

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
  // Pending cells (each holds a visitor sketch of up to 16 KiB): what the
  // builder's memory grows with.
  int64_t pending_cells() const;
  int64_t last_seq() const;
  void set_last_seq(int64_t seq);

  // For tests: the events per tuple-mode decision (default 4096), and how
  // many (event, tuple group) pairs were folded as tuples and per dimension.
  void SetTupleWindowForTesting(uint32_t events);
  // For tests: and's every tuple hash with `mask` (0: all tuples collide, so
  // that look-ups tell tuples apart by their fields alone).
  void SetTupleHashMaskForTesting(uint64_t mask);
  // For tests: and's the hash of each cell's feeding tuple cells (drains
  // share the sketch of identically fed cells) with `mask` (0: every
  // candidate is compared with the first one, feeder by feeder).
  void SetShareHashMaskForTesting(uint64_t mask);
  // For benchmarks: folds the tuple groups always as tuples, or never.
  void ForceTupleModeForTesting(bool tuples);
  int64_t tuple_folds_for_testing() const;
  int64_t direct_folds_for_testing() const;

 private:
  // A cell's metrics and visitor sketch. Visitor hashes are first appended to
  // the builder's visitor log and added to `sketch` in one batch per cell
  // when the log is drained (Take, Scan, or when it is long).
  struct Bucket;
  // Per-event fields of a cell (one cache line).
  struct alignas(64) CellStats {
    RollupMetrics m;
    uint64_t last_hash = 0;  // last logged visitor (repeats are skipped)
    bool has_last = false;
  };
  static constexpr uint32_t kNoTargets = ~uint32_t{0};
  struct CellInfo {
    Bucket* bucket = nullptr;
    uint32_t value = 0;  // id in values_[dim]
    uint16_t dim = 0;
    // For a tuple cell: where its dimensions' cells start in tuple_targets_.
    uint32_t targets = kNoTargets;
    // The drain (drain_gen_) that last changed `sketch`, and the cell whose
    // sketch it was copied from in that drain (kNoCell: none). The two are
    // equal while both cells' `changed` match (Take then merges the day
    // cells of either from the same sketches).
    uint32_t changed = 0;
    uint32_t copy_of = kNoCell;
    std::unique_ptr<HyperLogLog> sketch;  // null: empty so far
  };
  static constexpr uint32_t kNoCell = ~uint32_t{0};
  // Dimensions folded as one tuple: kRollupDims[first, first + count), all
  // session-constant, interned together as values of the hidden dimension
  // `dim`.
  //
  // Whether a group is folded as tuples is decided from the traffic: every
  // tuple_window_ events, from the events per new tuple cell of the window,
  // estimated on the events of a sample of the tuples (by hash; see AddOne).
  // Otherwise its dimensions are folded one by one as the others are.
  struct TupleGroup {
    uint16_t first;
    uint16_t count;
    uint16_t dim;
    bool tuples = true;           // fold as tuples (else per dimension)
    uint32_t window_events = 0;   // events of this window
    uint32_t window_sampled = 0;  // ... of sampled tuples
    uint32_t window_new = 0;      // ... that made a new sampled tuple cell
    // Sampled tuple cells (tuple hash mixed with the bucket) since Take.
    absl::flat_hash_set<uint64_t> sampled;
  };
  // The cells of one (site, level, bucket), by (dim << 32 | value id).
  struct Bucket {
    int64_t site_id = 0;
    uint8_t level = 0;
    int64_t bucket = 0;
    absl::flat_hash_map<uint64_t, uint32_t> cells;  // -> index in cells_
    // Set by Take: whether day cells derive from this hour bucket, and its
    // local day.
    bool derive = false;
    int64_t day = 0;
  };
  // The values of one dimension seen since the last Take, interned to dense
  // ids, with each value's cells in the two buckets it was used in last (so
  // that most cell look-ups are an id compare, not a hash look-up).
  struct ValueTable {
    // A value's identity: its size and two words that, up to 16 bytes, are
    // its bytes (so comparing them compares the values); for longer values,
    // its hash and last 8 bytes (URLs share their first bytes), and the
    // values are compared in full when the words and the size match.
    struct Key {
      uint64_t w0, w1, hash;
      uint32_t size;
    };
    struct Entry {
      uint64_t w0 = 0, w1 = 0;
      uint32_t size = 0;
      uint32_t id = kNoId;
      // The value's cells in the two buckets it was used in last.
      Bucket* b[2] = {nullptr, nullptr};
      uint32_t cell[2] = {0, 0};
    };
    static constexpr uint32_t kNoId = ~uint32_t{0};
    std::vector<Entry> table;  // open addressing, size a power of two
    // By id. For a tuple: the bytes of its fields longer than 16, in order.
    std::vector<std::string> values;
    // For a tuple table: each tuple's Tuple::Words(), by id.
    std::vector<uint64_t> tuple_words;
    static Key KeyOf(std::string_view v);
    Entry* Find(const Key& k, std::string_view v);  // null when absent
    // `tuple`: a table of tuples, whose keys are TupleKey's (w0: the hash).
    Entry* Insert(const Key& k, std::string_view v, bool tuple = false);
    // An event's tuple of N fields (N: the group's size, a constant so that
    // the fields' loops unroll), as it is looked up: each field's size and
    // first and last (up to) 8 bytes, as KeyOf reads them, computed once
    // for both the hash and the comparisons.
    template <size_t N>
    struct Tuple {
      const std::string_view* f;
      // Stored per tuple in tuple_words: w and n, as they lie here (n
      // padded with zeros to whole words), compared 16 bytes at a time.
      static constexpr size_t kWords = 2 * N + (N + 1) / 2;
      uint64_t w[2 * N];  // the words of field i: w[i] and w[N + i]
      uint32_t n[2 * (kWords - 2 * N)];  // ... and its size (then zeros)
      bool has_long;                     // a field is longer than 16 bytes
    };
    // The tuple's fields, and its key (the fields' hash, and'ed with `mask`,
    // and encoded size).
    template <size_t N>
    static Key TupleKey(const std::string_view* f, uint64_t mask, Tuple<N>* t);
    template <size_t N>
    Entry* FindTuple(const Key& k, const Tuple<N>& t);
    template <size_t N>
    Entry* InsertTuple(const Key& k, const Tuple<N>& t);
  };
  // The (bucket, session key) pairs of sessions (session id mixed with
  // visitor hash) whose visitor is already in the bucket's cells of the
  // session-constant dimensions (total and visit:*): later events of the
  // session there skip those sketch inserts. Cleared by Take.
  //
  // Hand-written (open addressing, linear probing) instead of an
  // absl::flat_hash_set per bucket: each hour's set grew from empty, and its
  // insert (with prepare_insert and resize) cost ~117 instructions per event;
  // this one is shared by the buckets and keeps its capacity across Takes.
  class SessionSet {
   public:
    // Adds (b, key); true when it was not there.
    bool Insert(const Bucket* b, uint64_t key);
    void Clear();

   private:
    struct Slot {
      uint64_t key = 0;
      const Bucket* b = nullptr;  // null: empty
    };
    void Grow();
    std::vector<Slot> slots_;  // size a power of two (or 0)
    size_t size_ = 0;
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
  // BucketFor when the bucket is not last_hit_ (out of line).
  Bucket* BucketForSlow(int64_t site, uint8_t level, int64_t bucket)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The value's entry in values_[dim] (valid until the next Intern).
  ValueTable::Entry& Intern(uint16_t dim, std::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Index in cells_ of the cell (b, dim, v), created when missing.
  uint32_t CellAt(Bucket* b, uint16_t dim, ValueTable::Entry& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CellAt when the cell is not v's in its last bucket (out of line).
  uint32_t CellAtSlow(Bucket* b, uint16_t dim, ValueTable::Entry& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The cell (b, g.dim, v) of a tuple of event e, created with its
  // dimensions' cells when missing.
  uint32_t TupleCellAt(Bucket* b, const TupleGroup& g, ValueTable::Entry& v,
                       const Event& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes the new tuple cell ci's dimensions' cells (TupleCellAt's slow
  // path).
  void AddTupleTargets(Bucket* b, const TupleGroup& g, uint32_t ci,
                       const Event& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Folds the event's value of session-constant dimension `dim` into its
  // cells.
  struct EventBuckets;
  void FoldVisitDim(const EventBuckets& eb, uint16_t dim,
                    std::string_view value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Folds the event's values of the group's dimensions (kRollupDims[kFirst,
  // kFirst + kCount)), as a tuple or per dimension.
  template <size_t kFirst, size_t kCount>
  void FoldGroup(TupleGroup& g, const Event& e, const EventBuckets& eb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the tuple cells' metrics to their dimensions' cells and zeroes them.
  void FlushTuples() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsTupleDim(size_t dim) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return dim >= tuple_dims_begin_ && dim < tuple_dims_end_;
  }
  void AddVisitor(uint32_t cell, uint64_t h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddTupleVisitor(uint32_t cell, uint64_t h)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // AddVisitor and AddTupleVisitor: appends to the given log unless the cell
  // just logged the same visitor; drains the logs when they are long.
  // `weight`: how many sketch entries the logged visitor stands for.
  void LogVisitor(uint32_t cell, uint64_t h, std::vector<uint32_t>* cells,
                  std::vector<uint64_t>* hashes, size_t weight)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the logged visitor hashes to their cells' sketches.
  void DrainVisitors() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t DayBucket(int64_t site, int64_t ts_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SiteZone& ZoneOf(int64_t site) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint16_t PropDim(std::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint16_t DimOf(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddOne(const Event& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<BucketKey, std::unique_ptr<Bucket>> buckets_
      ABSL_GUARDED_BY(mu_);
  Bucket* last_bucket_[4] ABSL_GUARDED_BY(mu_) = {};  // small lookup cache
  SessionSet visitor_done_ ABSL_GUARDED_BY(mu_);
  int next_cache_slot_ ABSL_GUARDED_BY(mu_) = 0;
  Bucket* last_hit_ ABSL_GUARDED_BY(mu_) = nullptr;  // BucketFor's last answer
  // Every pending cell, in creation order; cleared by Take.
  std::vector<CellStats> cells_ ABSL_GUARDED_BY(mu_);
  std::vector<CellInfo> cell_info_ ABSL_GUARDED_BY(mu_);  // by cell index
  // Visitor hashes not yet in their cells' sketches: (cell index, hash).
  std::vector<uint32_t> log_cells_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> log_hashes_ ABSL_GUARDED_BY(mu_);
  // The same for tuple cells (each stands for several dimensions' cells).
  std::vector<uint32_t> tuple_log_cells_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> tuple_log_hashes_ ABSL_GUARDED_BY(mu_);
  // Sketch entries the logs stand for: log_cells_.size() + kMaxTupleDims *
  // tuple_log_cells_.size().
  size_t logged_weight_ ABSL_GUARDED_BY(mu_) = 0;
  // DrainVisitors' scratch (kept: a drain sorts ~15 hashes per event).
  std::vector<uint32_t> drain_end_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> drain_pos_ ABSL_GUARDED_BY(mu_);
  // The tuple cells with logged visitors: where their hashes lie in
  // drain_tuple_hashes_ (grouped by tuple cell), and how many.
  struct DrainTuple {
    uint32_t cell, begin, count;
  };
  std::vector<DrainTuple> drain_tuples_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> drain_tuple_at_ ABSL_GUARDED_BY(mu_);  // by cell
  std::vector<uint64_t> drain_tuple_hashes_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<uint64_t[]> drain_sorted_ ABSL_GUARDED_BY(mu_);
  // Cells fed only by tuple cells get identical hash lists when the same
  // tuple cells feed them (e.g. in a bucket, utm_campaign "" and utm_term
  // "" of every visit without UTM fields): DrainVisitors finds such cells
  // (their feeders: drain_tuples_ indexes, by cell from drain_feed_end_) and
  // builds one sketch for each set, copied to the others.
  std::vector<uint32_t> drain_feed_end_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> drain_feeders_ ABSL_GUARDED_BY(mu_);
  // (feeder list hash -> first cell with it) and (copy, cell copied).
  absl::flat_hash_map<uint64_t, uint32_t> drain_share_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint32_t, uint32_t>> drain_copies_ ABSL_GUARDED_BY(mu_);
  uint32_t drain_gen_ ABSL_GUARDED_BY(mu_) = 0;
  size_t drain_sorted_size_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<TupleGroup> groups_ ABSL_GUARDED_BY(mu_);
  // Hidden dimensions (of tuples) are [tuple_dims_begin_, tuple_dims_end_).
  size_t tuple_dims_begin_ ABSL_GUARDED_BY(mu_) = 0;
  size_t tuple_dims_end_ ABSL_GUARDED_BY(mu_) = 0;
  // Tuple cells (indexes in cells_) and their dimensions' cells.
  std::vector<uint32_t> tuple_cells_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> tuple_targets_ ABSL_GUARDED_BY(mu_);
  uint32_t tuple_window_ ABSL_GUARDED_BY(mu_) = 4096;
  uint64_t tuple_hash_mask_ ABSL_GUARDED_BY(mu_) = ~uint64_t{0};
  uint64_t share_hash_mask_ ABSL_GUARDED_BY(mu_) = ~uint64_t{0};
  int64_t tuple_folds_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t direct_folds_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<ValueTable> values_ ABSL_GUARDED_BY(mu_);  // by dim
  std::vector<std::string> dim_names_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint16_t> dim_index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, SiteZone> zones_ ABSL_GUARDED_BY(mu_);
  // ZoneOf's last answer (null: none; reset when zones_ changes).
  int64_t last_zone_site_ ABSL_GUARDED_BY(mu_) = 0;
  SiteZone* last_zone_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The total's one value in values_[0] (null: not looked up since the last
  // Take or PutBack, which may move it).
  ValueTable::Entry* total_entry_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t pending_events_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // PropDim's answers by prop key (dimensions are never renumbered).
  absl::flat_hash_map<std::string, uint16_t> prop_dims_ ABSL_GUARDED_BY(mu_);
  std::string lookup_scratch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace analytics

#endif  // ANALYTICS_ROLLUP_ROLLUP_BUILDER_H_
