// Folding events into rollup cells; see rollup_builder.h.
#include "libanalytics/rollup/rollup_builder.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <tuple>
#include <utility>

#include "absl/base/attributes.h"
#include "libanalytics/core/dimensions.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/core/visit_fields.h"

namespace analytics {

int64_t LocalDayStart(int64_t ts_ms, const absl::TimeZone& tz) {
  absl::Time t = absl::FromUnixMillis(ts_ms);
  absl::CivilDay day = absl::ToCivilDay(t, tz);
  return absl::ToUnixSeconds(absl::FromCivil(day, tz));
}

namespace {
constexpr uint8_t kHour = static_cast<uint8_t>(RollupLevel::kHour);
constexpr uint8_t kDay = static_cast<uint8_t>(RollupLevel::kDay);
constexpr size_t kNumRollupDims = sizeof(kRollupDims) / sizeof(kRollupDims[0]);

// kRollupDims[3..] are the VisitAttrs fields in their canonical order.
constexpr size_t kFirstVisitDim = 3;
static_assert(kRollupDims[kFirstVisitDim] == DimId::kEntryPage &&
              kNumRollupDims - kFirstVisitDim == std::size(kVisitFields) &&
              kRollupDims[kNumRollupDims - 1] == DimId::kLocale);

// kRollupDims[kFirstTupleDim..] are folded as two tuples (see the header):
// source, referrer and the UTM fields; country .. locale.
constexpr size_t kFirstTupleDim = 4;
constexpr size_t kAcquisitionDims = 7;
constexpr size_t kAgentDims = 8;
static_assert(kRollupDims[kFirstTupleDim] == DimId::kSource &&
              kRollupDims[kFirstTupleDim + kAcquisitionDims] ==
                  DimId::kCountry &&
              kFirstTupleDim + kAcquisitionDims + kAgentDims == kNumRollupDims);

// RawValue(e, kRollupDims[i]) without a switch.
inline std::string_view DimValue(const Event& e, size_t i) {
  switch (i) {
    case 0:
      return {};
    case 1:
      return e.page;
    case 2:
      return e.name;
    default:
      return e.visit.*kVisitFields[i - kFirstVisitDim];
  }
}

// The most dimensions a tuple stands for (bounds the drained log's growth).
constexpr size_t kMaxTupleDims = 8;
static_assert(kAcquisitionDims <= kMaxTupleDims && kAgentDims <= kMaxTupleDims);

// A group is folded as tuples while each new tuple cell takes at least this
// many events, else per dimension: making a tuple cell costs more than
// folding its dimensions once, and each reuse saves a part of that. Measured
// (BM_RollupFoldSharedVisits, tuples vs per dimension): 3 events per tuple
// +7%, 4 +2%, 8 -9%.
constexpr uint32_t kMinTupleReuse = 5;

// KindOf(kRollupDims[i]) of the dimensions folded one by one.
const DimKind kFirstKinds[kFirstTupleDim] = {
    KindOf(kRollupDims[0]), KindOf(kRollupDims[1]), KindOf(kRollupDims[2]),
    KindOf(kRollupDims[3])};

int64_t HourBucket(int64_t ts_ms) {
  int64_t s = ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000;
  return s - ((s % 3600) + 3600) % 3600;
}
}  // namespace

namespace {
// True when the zone's offset from UTC is a whole number of hours at every
// transition from 1970 to 2100 (and at its start), so that no UTC hour
// straddles a local midnight.
bool WholeHourZone(const absl::TimeZone& tz) {
  absl::Time t = absl::UnixEpoch();
  const absl::Time end =
      absl::FromCivil(absl::CivilYear(2100), absl::UTCTimeZone());
  if (tz.At(t).offset % 3600 != 0) return false;
  absl::TimeZone::CivilTransition tr;
  while (t < end && tz.NextTransition(t, &tr)) {
    // The transition's instant (for a repeated civil time, `trans`).
    const absl::TimeZone::TimeInfo ti = tz.At(tr.to);
    absl::Time next =
        ti.kind == absl::TimeZone::TimeInfo::UNIQUE ? ti.pre : ti.trans;
    if (next <= t) next = t + absl::Seconds(1);  // always make progress
    t = next;
    if (tz.At(t).offset % 3600 != 0) return false;
  }
  return true;
}
}  // namespace

void RollupBuilder::SetSiteTimezone(int64_t site_id, const absl::TimeZone& tz) {
  const bool whole = WholeHourZone(tz);
  absl::MutexLock l(&mu_);
  zones_[site_id] = SiteZone{tz, whole};
  last_zone_ = nullptr;  // (the map may have moved its values)
}

RollupBuilder::SiteZone& RollupBuilder::ZoneOf(int64_t site) {
  if (last_zone_ != nullptr && last_zone_site_ == site) return *last_zone_;
  auto it = zones_.find(site);
  if (it == zones_.end()) {
    it = zones_.emplace(site, SiteZone{absl::UTCTimeZone(), true}).first;
  }
  // (Valid until zones_ changes: an emplace above, or SetSiteTimezone.)
  last_zone_site_ = site;
  last_zone_ = &it->second;
  return it->second;
}

int64_t RollupBuilder::DayBucket(int64_t site, int64_t ts_ms) {
  SiteZone& z = ZoneOf(site);
  if (ts_ms >= z.day_start_ms && ts_ms < z.day_end_ms) return z.day_bucket;
  absl::Time t = absl::FromUnixMillis(ts_ms);
  absl::CivilDay day = absl::ToCivilDay(t, z.tz);
  z.day_bucket = absl::ToUnixSeconds(absl::FromCivil(day, z.tz));
  z.day_start_ms = z.day_bucket * 1000;
  z.day_end_ms = absl::ToUnixMillis(absl::FromCivil(day + 1, z.tz));
  return z.day_bucket;
}

RollupBuilder::RollupBuilder() {
  for (DimId d : kRollupDims) dim_names_.emplace_back(DimName(d));
  // The hidden tuple dimensions, under names no query or row can use.
  tuple_dims_begin_ = dim_names_.size();
  for (const auto& [first, count, name] :
       {std::tuple{kFirstTupleDim, kAcquisitionDims, "\x01tuple:acquisition"},
        std::tuple{kFirstTupleDim + kAcquisitionDims, kAgentDims,
                   "\x01tuple:agent"}}) {
    groups_.push_back(TupleGroup{static_cast<uint16_t>(first),
                                 static_cast<uint16_t>(count),
                                 static_cast<uint16_t>(dim_names_.size())});
    dim_names_.emplace_back(name);
  }
  tuple_dims_end_ = dim_names_.size();
  values_.resize(dim_names_.size());
}

RollupBuilder::~RollupBuilder() = default;

uint16_t RollupBuilder::PropDim(std::string_view key) {
  // By the key itself: building "event:props:<key>" for dim_index_ cost
  // more than the look-up.
  auto it = prop_dims_.find(AV(key));
  if (it != prop_dims_.end()) [[likely]]
    return it->second;
  lookup_scratch_.assign("event:props:");
  lookup_scratch_.append(key);
  const uint16_t dim = DimOf(lookup_scratch_);
  prop_dims_.emplace(key, dim);
  return dim;
}

uint16_t RollupBuilder::DimOf(const std::string& name) {
  auto it = dim_index_.find(name);
  if (it != dim_index_.end()) return it->second;
  auto pos = std::find(dim_names_.begin(), dim_names_.end(), name);
  if (pos == dim_names_.end()) {
    dim_names_.push_back(name);
    values_.resize(dim_names_.size());
    pos = dim_names_.end() - 1;
  }
  const uint16_t dim = static_cast<uint16_t>(pos - dim_names_.begin());
  dim_index_.emplace(name, dim);
  return dim;
}

// (The last answer's check is inlined: most events fall in the previous
// event's bucket.)
ABSL_ATTRIBUTE_ALWAYS_INLINE inline RollupBuilder::Bucket*
RollupBuilder::BucketFor(int64_t site, uint8_t level, int64_t bucket) {
  Bucket* b = last_hit_;
  if (b != nullptr && b->bucket == bucket && b->site_id == site &&
      b->level == level) [[likely]] {
    return b;
  }
  return BucketForSlow(site, level, bucket);
}

RollupBuilder::Bucket* RollupBuilder::BucketForSlow(int64_t site, uint8_t level,
                                                    int64_t bucket) {
  for (Bucket* b : last_bucket_) {
    if (b != nullptr && b->bucket == bucket && b->site_id == site &&
        b->level == level) {
      last_hit_ = b;
      return b;
    }
  }
  auto& slot = buckets_[BucketKey{site, bucket, level}];
  if (slot == nullptr) {
    slot = std::make_unique<Bucket>();
    slot->site_id = site;
    slot->level = level;
    slot->bucket = bucket;
  }
  last_bucket_[next_cache_slot_] = slot.get();
  next_cache_slot_ = (next_cache_slot_ + 1) % 4;
  last_hit_ = slot.get();
  return slot.get();
}

namespace {
inline uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t Mix(uint64_t a, uint64_t b) {
  const unsigned __int128 m =
      static_cast<unsigned __int128>(a ^ 0x9E3779B97F4A7C15ULL) *
      (b ^ 0xD6E8FEB86659FD93ULL);
  return static_cast<uint64_t>(m) ^ static_cast<uint64_t>(m >> 64);
}
}  // namespace

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool RollupBuilder::SessionSet::Insert(
    const Bucket* b, uint64_t key) {
  if (2 * (size_ + 1) > slots_.size()) [[unlikely]] {  // load factor <= 1/2
    Grow();
  }
  const size_t mask = slots_.size() - 1;
  for (size_t i = Mix(key, reinterpret_cast<uintptr_t>(b)) & mask;;
       i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.b == nullptr) {
      s.key = key;
      s.b = b;
      ++size_;
      return true;
    }
    if (s.key == key && s.b == b) return false;
  }
}

void RollupBuilder::SessionSet::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(std::max<size_t>(64, 2 * old.size()), Slot());
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.b == nullptr) continue;
    size_t i = Mix(s.key, reinterpret_cast<uintptr_t>(s.b)) & mask;
    while (slots_[i].b != nullptr) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void RollupBuilder::SessionSet::Clear() {
  // Keeps the capacity (the next checkpoint's sessions are about as many),
  // unless it is far more than this one's took.
  if (slots_.size() > 1024 && slots_.size() > 16 * size_) {
    slots_ = std::vector<Slot>();
  } else {
    std::fill(slots_.begin(), slots_.end(), Slot());
  }
  size_ = 0;
}

// KeyOf, Find and Intern are inlined (a few times per event, where the calls
// cost a third of the look-up).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline RollupBuilder::ValueTable::Key
RollupBuilder::ValueTable::KeyOf(std::string_view v) {
  const char* p = v.data();
  const size_t n = v.size();
  Key k{0, 0, 0, static_cast<uint32_t>(n)};
  if (n >= 8) {
    k.w0 = Load64(p);
    k.w1 = Load64(p + n - 8);
  } else if (n >= 4) {
    k.w0 = Load32(p);
    k.w1 = Load32(p + n - 4);
  } else if (n > 0) {
    k.w0 = uint64_t{static_cast<uint8_t>(p[0])} |
           uint64_t{static_cast<uint8_t>(p[n / 2])} << 8 |
           uint64_t{static_cast<uint8_t>(p[n - 1])} << 16;
  }
  if (n <= 16) {
    k.hash = Mix(k.w0 ^ n, k.w1);
  } else {
    k.hash = absl::Hash<absl::string_view>{}(AV(v));
    k.w0 = k.hash;
  }
  return k;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline RollupBuilder::ValueTable::Entry*
RollupBuilder::ValueTable::Find(const Key& k, std::string_view v) {
  if (table.empty()) return nullptr;
  const size_t mask = table.size() - 1;
  for (size_t i = k.hash & mask;; i = (i + 1) & mask) {
    Entry& e = table[i];
    if (e.id == kNoId) return nullptr;
    if (e.w0 == k.w0 && e.w1 == k.w1 && e.size == k.size &&
        (k.size <= 16 || values[e.id] == v)) {
      return &e;
    }
  }
}

namespace {
// The bytes of [p, p + n) and n, mixed into h: 16 bytes per multiply, the
// last (or only) up to 16 bytes read as two overlapping words (as KeyOf).
inline uint64_t MixField(uint64_t h, const char* p, size_t n) {
  for (; n > 16; n -= 16, p += 16) {
    h = Mix(h ^ Load64(p), Load64(p + 8) ^ 0x8BB84B93962EACC9ULL);
  }
  uint64_t a = 0, b = 0;
  if (n >= 8) {
    a = Load64(p);
    b = Load64(p + n - 8);
  } else if (n >= 4) {
    a = Load32(p);
    b = Load32(p + n - 4);
  } else if (n > 0) {
    a = uint64_t{static_cast<uint8_t>(p[0])} |
        uint64_t{static_cast<uint8_t>(p[n / 2])} << 8 |
        uint64_t{static_cast<uint8_t>(p[n - 1])} << 16;
  }
  return Mix(h ^ a, b ^ (uint64_t{n} << 32 | 0x4F1BBCDDULL));
}

// The words KeyOf reads of [p, p + n): for n <= 16, two (overlapping)
// words that, with n, are the bytes; for longer ones, the first and last 8
// bytes.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void FieldWords(const char* p, size_t n,
                                                    uint64_t* a, uint64_t* b) {
  if (n >= 8) {
    *a = Load64(p);
    *b = Load64(p + n - 8);
  } else if (n >= 4) {
    *a = Load32(p);
    *b = Load32(p + n - 4);
  } else {
    *a = n == 0 ? 0
                : uint64_t{static_cast<uint8_t>(p[0])} |
                      uint64_t{static_cast<uint8_t>(p[n / 2])} << 8 |
                      uint64_t{static_cast<uint8_t>(p[n - 1])} << 16;
    *b = 0;
  }
}
}  // namespace

namespace {
// Whether the k words at a and at b (read on from b: a Tuple's w, then its
// n) are equal: 16 bytes per compare, in GCC's portable vector extension
// (plain loops did not vectorize, ~10 instructions per tuple field).
template <size_t k>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool SameWords(const uint64_t* a,
                                                   const uint64_t* b) {
  typedef uint64_t V2 __attribute__((vector_size(16)));
  V2 diff = {0, 0};
  for (size_t i = 0; i + 2 <= k; i += 2) {
    V2 x, y;
    std::memcpy(&x, a + i, 16);
    std::memcpy(&y, reinterpret_cast<const char*>(b) + 8 * i, 16);
    diff |= x ^ y;
  }
  uint64_t rest = 0;
  if constexpr (k % 2 == 1) {
    uint64_t y;
    std::memcpy(&y, reinterpret_cast<const char*>(b) + 8 * (k - 1), 8);
    rest = a[k - 1] ^ y;
  }
  return ((diff[0] | diff[1]) | rest) == 0;
}
}  // namespace

template <size_t n>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline RollupBuilder::ValueTable::Key
RollupBuilder::ValueTable::TupleKey(const std::string_view* f, uint64_t mask,
                                    Tuple<n>* t) {
  // Every field's bytes and size (so that ("ab", "") and ("a", "b") differ),
  // chained: a few multiplies per tuple instead of absl::Hash's per-field
  // combine. Only look-ups and the tuple sampling use the hash (equal
  // tuples are found by comparing their fields), so its quality is all
  // that matters, not its values. A field of up to 16 bytes is hashed from
  // the words that it is compared by (MixField's, read once).
  t->f = f;
  t->has_long = false;
  t->n[2 * (Tuple<n>::kWords - 2 * n) - 1] = 0;  // (the padding, if any)
  uint64_t h = 0x243F6A8885A308D3ULL ^ n;
  size_t size = 0;
  // (Unrolled: the loop's overhead was a third of its cost.)
#pragma GCC unroll 16
  for (size_t i = 0; i < n; ++i) {
    const size_t len = f[i].size();
    FieldWords(f[i].data(), len, &t->w[i], &t->w[n + i]);
    t->n[i] = static_cast<uint32_t>(len);
    if (len > 16) [[unlikely]] {
      t->has_long = true;
      h = MixField(h, f[i].data(), len);
    } else {
      h = Mix(h ^ t->w[i], t->w[n + i] ^ (uint64_t{len} << 32 | 0x4F1BBCDDULL));
    }
    size += sizeof(uint32_t) + len;
  }
  h = Mix(h, size) & mask;
  return Key{h, 0, h, static_cast<uint32_t>(size)};
}

template <size_t n>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline RollupBuilder::ValueTable::Entry*
RollupBuilder::ValueTable::FindTuple(const Key& k, const Tuple<n>& t) {
  if (table.empty()) return nullptr;
  const size_t mask = table.size() - 1;
  for (size_t i = k.hash & mask;; i = (i + 1) & mask) {
    Entry& e = table[i];
    if (e.id == kNoId) return nullptr;
    if (e.w0 != k.w0 || e.size != k.size) continue;
    // The words and sizes, without a branch per field; then the bytes of
    // the long fields (whose words are only their ends).
    static_assert(offsetof(Tuple<n>, n) ==
                  offsetof(Tuple<n>, w) + 2 * n * sizeof(uint64_t));
    if (!SameWords<Tuple<n>::kWords>(
            tuple_words.data() + size_t{e.id} * Tuple<n>::kWords, t.w)) {
      continue;
    }
    if (t.has_long) [[unlikely]] {
      const char* p = values[e.id].data();
      bool equal = true;
      for (size_t j = 0; j < n && equal; ++j) {
        if (t.n[j] <= 16) continue;
        equal = std::memcmp(p, t.f[j].data(), t.n[j]) == 0;
        p += t.n[j];
      }
      if (!equal) continue;
    }
    return &e;
  }
}

template <size_t n>
RollupBuilder::ValueTable::Entry* RollupBuilder::ValueTable::InsertTuple(
    const Key& k, const Tuple<n>& t) {
  std::string long_bytes;
  for (size_t j = 0; j < n; ++j) {
    if (t.n[j] > 16) long_bytes.append(t.f[j]);
  }
  Entry* e = Insert(k, long_bytes, /*tuple=*/true);
  const size_t at = tuple_words.size();
  tuple_words.resize(at + Tuple<n>::kWords, 0);
  uint64_t* w = tuple_words.data() + at;
  std::memcpy(w, t.w, sizeof(t.w));
  std::memcpy(w + 2 * n, t.n, sizeof(t.n));  // (with the padding)
  return e;
}

RollupBuilder::ValueTable::Entry* RollupBuilder::ValueTable::Insert(
    const Key& k, std::string_view v, bool tuple) {
  const uint32_t id = static_cast<uint32_t>(values.size());
  if (2 * (values.size() + 1) > table.size()) {  // load factor <= 1/2
    std::vector<Entry> old = std::move(table);
    table.assign(std::max<size_t>(16, 2 * old.size()), Entry());
    const size_t mask = table.size() - 1;
    for (const Entry& e : old) {
      if (e.id == kNoId) continue;
      const uint64_t hash = tuple ? e.w0 : KeyOf(values[e.id]).hash;
      size_t i = hash & mask;
      while (table[i].id != kNoId) i = (i + 1) & mask;
      table[i] = e;
    }
  }
  const size_t mask = table.size() - 1;
  size_t i = k.hash & mask;
  while (table[i].id != kNoId) i = (i + 1) & mask;
  Entry& e = table[i];
  e.w0 = k.w0;
  e.w1 = k.w1;
  e.size = k.size;
  e.id = id;
  values.emplace_back(v);
  return &e;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline RollupBuilder::ValueTable::Entry&
RollupBuilder::Intern(uint16_t dim, std::string_view value) {
  ValueTable& t = values_[dim];
  const ValueTable::Key k = ValueTable::KeyOf(value);
  ValueTable::Entry* e = t.Find(k, value);
  return e != nullptr ? *e : *t.Insert(k, value);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t RollupBuilder::CellAt(
    Bucket* b, uint16_t dim, ValueTable::Entry& v) {
  if (v.b[0] == b) [[likely]]
    return v.cell[0];
  return CellAtSlow(b, dim, v);
}

uint32_t RollupBuilder::CellAtSlow(Bucket* b, uint16_t dim,
                                   ValueTable::Entry& v) {
  uint32_t cell;
  if (v.b[1] == b) {
    cell = v.cell[1];
  } else {
    auto [it, inserted] = b->cells.try_emplace(
        uint64_t{dim} << 32 | v.id, static_cast<uint32_t>(cells_.size()));
    if (inserted) {
      cells_.emplace_back();
      CellInfo& c = cell_info_.emplace_back();
      c.bucket = b;
      c.value = v.id;
      c.dim = dim;
    }
    cell = it->second;
  }
  v.b[1] = v.b[0];
  v.cell[1] = v.cell[0];
  v.b[0] = b;
  v.cell[0] = cell;
  return cell;
}

namespace {
// Visitor hashes logged before they are added to the sketches (12 bytes
// each): bounds the log's memory; Take and Scan drain it too.
constexpr size_t kMaxLoggedVisitors = size_t{1} << 20;

// The most entries a sparse sketch of precision p holds (sketch/hll.h,
// serialized format: sparse count 1..2^p / 4 - 2); a sketch with more
// distinct sparse indexes is dense.
size_t SparseLimit(int p) { return (size_t{1} << p) / 4 - 2; }

// Number of distinct dense registers (top p bits) of `hashes`: a lower bound
// of the number of distinct sparse indexes (each sparse index lies in one
// register), so above SparseLimit(p) the sketch of these hashes is dense,
// whatever else it holds.
size_t DistinctRegisters(absl::Span<const uint64_t> hashes, int p) {
  uint64_t seen[(size_t{1} << HyperLogLog::kMaxPrecision) / 64] = {};
  for (uint64_t h : hashes) {
    const uint32_t r = static_cast<uint32_t>(h >> (64 - p));
    seen[r >> 6] |= uint64_t{1} << (r & 63);
  }
  size_t n = 0;
  for (size_t i = 0; i < (size_t{1} << p) / 64; ++i) {
    n += static_cast<size_t>(std::popcount(seen[i]));
  }
  return n;
}

// The totals' visitor sketches (dimension 0: one cell per site and bucket,
// the headline visitors figure) use p = 16, a standard error of 0.41 %
// (0.81 % at the default p = 14); the breakdowns' cells keep p = 14.
static_assert(kRollupDims[0] == DimId::kTotal);
std::unique_ptr<HyperLogLog> NewSketch(uint16_t dim) {
  return std::make_unique<HyperLogLog>(dim == 0 ? HyperLogLog::kMaxPrecision
                                                : HyperLogLog::kPrecision);
}
}  // namespace

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint32_t RollupBuilder::TupleCellAt(
    Bucket* b, const TupleGroup& g, ValueTable::Entry& v, const Event& e) {
  const uint32_t ci = CellAt(b, g.dim, v);
  if (cell_info_[ci].targets != kNoTargets) [[likely]]
    return ci;
  AddTupleTargets(b, g, ci, e);
  return ci;
}

void RollupBuilder::AddTupleTargets(Bucket* b, const TupleGroup& g, uint32_t ci,
                                    const Event& e) {
  const uint32_t at = static_cast<uint32_t>(tuple_targets_.size());
  for (size_t i = g.first; i < size_t{g.first} + g.count; ++i) {
    const uint16_t dim = static_cast<uint16_t>(i);
    tuple_targets_.push_back(CellAt(b, dim, Intern(dim, DimValue(e, i))));
  }
  cell_info_[ci].targets = at;
  tuple_cells_.push_back(ci);
}

void RollupBuilder::FlushTuples() {
  for (uint32_t ci : tuple_cells_) {
    RollupMetrics& m = cells_[ci].m;
    const CellInfo& c = cell_info_[ci];
    const TupleGroup& g = groups_[c.dim - tuple_dims_begin_];
    for (size_t k = 0; k < g.count; ++k) {
      cells_[tuple_targets_[c.targets + k]].m += m;
    }
    m = RollupMetrics{};
  }
}

// (Inlined: a few times per event, where the call cost as much as the work.)
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RollupBuilder::LogVisitor(
    uint32_t cell, uint64_t h, std::vector<uint32_t>* cells,
    std::vector<uint64_t>* hashes, size_t weight) {
  CellStats& c = cells_[cell];
  if (c.has_last && c.last_hash == h) return;
  c.has_last = true;
  c.last_hash = h;
  cells->push_back(cell);
  hashes->push_back(h);
  logged_weight_ += weight;
  if (logged_weight_ >= kMaxLoggedVisitors) [[unlikely]] {
    DrainVisitors();
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RollupBuilder::AddVisitor(
    uint32_t cell, uint64_t h) {
  LogVisitor(cell, h, &log_cells_, &log_hashes_, 1);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void RollupBuilder::AddTupleVisitor(
    uint32_t cell, uint64_t h) {
  // A logged tuple visitor expands to up to kMaxTupleDims cells' entries.
  LogVisitor(cell, h, &tuple_log_cells_, &tuple_log_hashes_, kMaxTupleDims);
}

void RollupBuilder::DrainVisitors() {
  if (log_cells_.empty() && tuple_log_cells_.empty()) return;
  // Counting sort of the log by cell, then one AddMany per cell: the sketch
  // depends only on the set of hashes added, not on their order or batching.
  // A tuple cell's visitors go to each of its dimensions' cells.
  const uint32_t gen = ++drain_gen_;
  const size_t n = cells_.size();
  drain_end_.assign(n + 1, 0);
  uint32_t* end = drain_end_.data();
  for (uint32_t c : log_cells_) ++end[c + 1];
  // A tuple cell's logged visitors are counted in its own slot (a tuple
  // cell takes no hashes itself), then added to its dimensions' cells once:
  // one increment per logged visitor instead of one per dimension.
  // Their hashes are then grouped by tuple cell (drain_tuple_hashes_, from
  // drain_tuple_at_[cell]) and copied to each dimension's cell as one run.
  for (uint32_t t : tuple_log_cells_) ++end[t + 1];
  drain_tuples_.clear();
  drain_tuple_at_.resize(n);  // (read only at the tuple cells set below)
  drain_feed_end_.assign(n + 1, 0);
  uint32_t* feed_end = drain_feed_end_.data();
  uint32_t run = 0;
  size_t feeds = 0;
  for (uint32_t t : tuple_cells_) {
    const uint32_t k = end[t + 1];
    if (k == 0) continue;
    end[t + 1] = 0;
    drain_tuples_.push_back({t, run, k});
    drain_tuple_at_[t] = run;
    run += k;
    const CellInfo& c = cell_info_[t];
    const uint32_t* targets = tuple_targets_.data() + c.targets;
    const size_t count = groups_[c.dim - tuple_dims_begin_].count;
    for (size_t j = 0; j < count; ++j) {
      end[targets[j] + 1] += k;
      ++feed_end[targets[j] + 1];
    }
    feeds += count;
  }
  // Each cell's feeders (drain_tuples_ indexes, ascending), then the cells
  // that are fed by the same feeders as an earlier one, only by them, and
  // have no sketch yet: their sketch will be a copy of that cell's, so they
  // take no hashes (end[] counts none for them).
  drain_copies_.clear();
  if (feeds != 0) {
    for (size_t i = 1; i <= n; ++i) feed_end[i] += feed_end[i - 1];
    drain_feeders_.resize(feeds);
    uint32_t* feeders = drain_feeders_.data();
    drain_pos_.assign(feed_end, feed_end + n);
    uint32_t* pos = drain_pos_.data();
    for (uint32_t k = 0; k < drain_tuples_.size(); ++k) {
      const CellInfo& c = cell_info_[drain_tuples_[k].cell];
      const uint32_t* targets = tuple_targets_.data() + c.targets;
      const size_t count = groups_[c.dim - tuple_dims_begin_].count;
      for (size_t j = 0; j < count; ++j) feeders[pos[targets[j]]++] = k;
    }
    drain_share_.clear();
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t fb = feed_end[i], fe = feed_end[i + 1];
      if (fb == fe || cell_info_[i].sketch != nullptr) continue;
      // (A simple multiplicative hash of the feeders, and the precision.)
      uint64_t h = cell_info_[i].dim == 0 ? 1 : 2;
      uint64_t hashes = 0;
      for (uint32_t f = fb; f < fe; ++f) {
        hashes += drain_tuples_[feeders[f]].count;
        h = (h ^ feeders[f]) * 0x9E3779B97F4A7C15ull;
      }
      if (hashes != end[i + 1]) continue;  // also logged directly
      auto [it, inserted] = drain_share_.try_emplace(h & share_hash_mask_, i);
      if (inserted) continue;
      const uint32_t first = it->second;
      const CellInfo& o = cell_info_[first];
      if ((o.dim == 0) != (cell_info_[i].dim == 0) ||
          feed_end[first + 1] - feed_end[first] != fe - fb ||
          !std::equal(feeders + fb, feeders + fe, feeders + feed_end[first])) {
        continue;  // a hash collision: built on its own
      }
      drain_copies_.emplace_back(i, first);
      end[i + 1] = 0;
    }
  }
  for (size_t i = 1; i <= n; ++i) end[i] += end[i - 1];
  if (drain_sorted_size_ < end[n]) {  // uninitialized: every slot is written
    drain_sorted_size_ = std::max<size_t>(end[n], 2 * drain_sorted_size_);
    drain_sorted_ =
        std::make_unique_for_overwrite<uint64_t[]>(drain_sorted_size_);
  }
  uint64_t* sorted = drain_sorted_.get();
  {
    drain_pos_.assign(end, end + n);
    uint32_t* pos = drain_pos_.data();
    for (size_t k = 0; k < log_cells_.size(); ++k) {
      sorted[pos[log_cells_[k]]++] = log_hashes_[k];
    }
    drain_tuple_hashes_.resize(run);
    uint64_t* th = drain_tuple_hashes_.data();
    uint32_t* at = drain_tuple_at_.data();
    for (size_t k = 0; k < tuple_log_cells_.size(); ++k) {
      th[at[tuple_log_cells_[k]]++] = tuple_log_hashes_[k];
    }
    for (const DrainTuple& t : drain_tuples_) {
      const CellInfo& c = cell_info_[t.cell];
      const uint32_t* targets = tuple_targets_.data() + c.targets;
      const size_t count = groups_[c.dim - tuple_dims_begin_].count;
      const uint64_t* from = th + t.begin;
      for (size_t j = 0; j < count; ++j) {
        const uint32_t to_cell = targets[j];
        if (end[to_cell] == end[to_cell + 1]) continue;  // a copy's
        uint64_t* to = sorted + pos[to_cell];
        for (uint32_t i = 0; i < t.count; ++i) to[i] = from[i];
        pos[to_cell] += t.count;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (end[i] == end[i + 1]) continue;
    CellInfo& c = cell_info_[i];
    c.changed = gen;
    c.copy_of = kNoCell;
    const absl::Span<uint64_t> hashes =
        absl::MakeSpan(sorted + end[i], end[i + 1] - end[i]);
    if (c.sketch == nullptr) c.sketch = NewSketch(c.dim);
    const bool dense = c.sketch->entries() == 0 && !c.sketch->empty();
    const int p = c.sketch->precision();
    if (!dense && hashes.size() > SparseLimit(p) &&
        DistinctRegisters(hashes, p) > SparseLimit(p)) {
      // The sketch ends dense: build it dense right away (adding a hash to
      // a dense sketch is a register max; the sparse path would sort them).
      auto dense = std::make_unique<HyperLogLog>(p);
      dense->PromoteToDense();
      dense->Merge(*c.sketch);
      c.sketch = std::move(dense);
    }
    c.sketch->AddMany(hashes);
  }
  for (const auto& [copy, from] : drain_copies_) {
    CellInfo& c = cell_info_[copy];
    c.sketch = std::make_unique<HyperLogLog>(*cell_info_[from].sketch);
    c.changed = gen;
    c.copy_of = from;
  }
  log_cells_.clear();
  log_hashes_.clear();
  logged_weight_ = 0;
  tuple_log_cells_.clear();
  tuple_log_hashes_.clear();
}

// An event's buckets and what it adds to session-constant cells.
struct RollupBuilder::EventBuckets {
  Bucket* be[2];  // by level: the event's bucket
  Bucket* bs[2];  // ... and its session start's
  int levels;
  int64_t pv;
  uint64_t vh;
  bool visitor_known[2];
  int64_t visits;
  int64_t d_bounce;
  int64_t d_duration_ms;
};

void RollupBuilder::FoldVisitDim(const EventBuckets& eb, uint16_t dim,
                                 std::string_view value) {
  ValueTable::Entry& v = Intern(dim, value);
  for (int level = 0; level < eb.levels; ++level) {
    const uint32_t ci = CellAt(eb.be[level], dim, v);
    {
      CellStats& c = cells_[ci];
      c.m.pageviews += eb.pv;
      c.m.events += 1;
    }
    if (!eb.visitor_known[level]) AddVisitor(ci, eb.vh);
    const uint32_t si =
        eb.bs[level] == eb.be[level] ? ci : CellAt(eb.bs[level], dim, v);
    CellStats& s = cells_[si];
    s.m.visits += eb.visits;
    s.m.bounces += eb.d_bounce;
    s.m.duration_ms += eb.d_duration_ms;
    s.m.session_pageviews += eb.pv;
  }
}

template <size_t kFirst, size_t kCount>
void RollupBuilder::FoldGroup(TupleGroup& g, const Event& e,
                              const EventBuckets& eb) {
  std::string_view f[kCount];
#pragma GCC unroll 16
  for (size_t k = 0; k < kCount; ++k) {
    f[k] = e.visit.*kVisitFields[kFirst - kFirstVisitDim + k];
  }
  ValueTable::Tuple<kCount> tuple;
  const ValueTable::Key key =
      ValueTable::TupleKey<kCount>(f, tuple_hash_mask_, &tuple);
  if ((key.hash >> 60) == 0) {
    ++g.window_sampled;
    g.window_new +=
        g.sampled.insert(Mix(key.hash, reinterpret_cast<uintptr_t>(eb.be[0])))
            .second;
  }
  const bool tuples = g.tuples;
  if (++g.window_events >= tuple_window_) {
    g.tuples = g.window_new * kMinTupleReuse <= g.window_sampled;
    g.window_events = g.window_sampled = g.window_new = 0;
  }
  if (!tuples) {
    ++direct_folds_;
    for (size_t k = 0; k < kCount; ++k) {
      FoldVisitDim(eb, static_cast<uint16_t>(kFirst + k), f[k]);
    }
    return;
  }
  ++tuple_folds_;
  ValueTable& t = values_[g.dim];
  ValueTable::Entry* found = t.FindTuple<kCount>(key, tuple);
  if (found == nullptr) found = t.InsertTuple<kCount>(key, tuple);
  ValueTable::Entry& v = *found;
  for (int level = 0; level < eb.levels; ++level) {
    const uint32_t ci = TupleCellAt(eb.be[level], g, v, e);
    {
      CellStats& c = cells_[ci];
      c.m.pageviews += eb.pv;
      c.m.events += 1;
    }
    if (!eb.visitor_known[level]) AddTupleVisitor(ci, eb.vh);
    const uint32_t si =
        eb.bs[level] == eb.be[level] ? ci : TupleCellAt(eb.bs[level], g, v, e);
    CellStats& s = cells_[si];
    s.m.visits += eb.visits;
    s.m.bounces += eb.d_bounce;
    s.m.duration_ms += eb.d_duration_ms;
    s.m.session_pageviews += eb.pv;
  }
}

void RollupBuilder::AddOne(const Event& e) {
  if (e.is_engagement()) {  // feeds only raw-event metrics
    last_seq_ = std::max(last_seq_, e.seq);
    return;
  }
  const int64_t hour_e = HourBucket(e.ts_ms);
  const int64_t hour_s = HourBucket(e.session_start_ms);
  const uint64_t vh = HyperLogLog::HashKey(e.visitor_id);
  // Whole-hour zones derive day cells from hour cells (see the header).
  const int levels = ZoneOf(e.site_id).derive_days ? 1 : 2;
  const int64_t pv = e.is_pageview() ? 1 : 0;

  Bucket* be[2] = {BucketFor(e.site_id, kHour, hour_e), nullptr};
  Bucket* bs[2] = {
      hour_s == hour_e ? be[0] : BucketFor(e.site_id, kHour, hour_s), nullptr};
  if (levels == 2) {
    const int64_t day_e = DayBucket(e.site_id, e.ts_ms);
    const int64_t day_s = DayBucket(e.site_id, e.session_start_ms);
    be[1] = BucketFor(e.site_id, kDay, day_e);
    bs[1] = day_s == day_e ? be[1] : BucketFor(e.site_id, kDay, day_s);
  }
  // Session-constant dimensions have one value per session, so their cells
  // in an event bucket already hold the visitor after the session's first
  // event there (HLL inserts are idempotent: skipping them changes nothing).
  bool visitor_known[2] = {false, false};
  const uint64_t session_key = e.session_id ^ (vh * 0x9E3779B97F4A7C15ULL);
  for (int level = 0; level < levels && e.session_id != 0; ++level) {
    visitor_known[level] = !visitor_done_.Insert(be[level], session_key);
  }
  for (size_t i = 0; i < kFirstTupleDim; ++i) {
    const DimId d = kRollupDims[i];
    const uint16_t dim = static_cast<uint16_t>(i);
    // The total's one value ("") is looked up once per Take.
    static_assert(kRollupDims[0] == DimId::kTotal);
    if (i == 0 && total_entry_ == nullptr) total_entry_ = &Intern(0, {});
    ValueTable::Entry& v = i == 0 ? *total_entry_ : Intern(dim, DimValue(e, i));
    const DimKind kind = kFirstKinds[i];
    int64_t visits = 0;
    bool session_part = false;
    if (kind == DimKind::kEvent) {
      visits = (d == DimId::kPage ? e.first_page : e.first_name) ? 1 : 0;
      session_part = visits != 0;
    } else {
      visits = e.first_in_session ? 1 : 0;
      session_part = true;
    }
    for (int level = 0; level < levels; ++level) {
      const uint32_t ci = CellAt(be[level], dim, v);
      {
        CellStats& c = cells_[ci];
        c.m.pageviews += pv;
        c.m.events += 1;
      }
      if (kind == DimKind::kEvent || !visitor_known[level]) AddVisitor(ci, vh);
      if (!session_part) continue;
      const uint32_t si =
          bs[level] == be[level] ? ci : CellAt(bs[level], dim, v);
      CellStats& s = cells_[si];
      s.m.visits += visits;
      if (kind != DimKind::kEvent) {
        s.m.bounces += e.d_bounce;
        s.m.duration_ms += e.d_duration_ms;
        s.m.session_pageviews += pv;
      }
    }
  }
  // The tuples: one look-up and one cell per level each, standing for their
  // dimensions' cells (all session-constant). A tuple cell pays for itself
  // only when several events share it: each window of events decides from
  // the events per new tuple cell, measured on the tuples whose hash has its
  // top 4 bits zero (all events of a sampled tuple are sampled, so the ratio
  // is that of all tuples).
  const EventBuckets eb{{be[0], be[1]},
                        {bs[0], bs[1]},
                        levels,
                        pv,
                        vh,
                        {visitor_known[0], visitor_known[1]},
                        e.first_in_session ? 1 : 0,
                        e.d_bounce,
                        e.d_duration_ms};
  FoldGroup<kFirstTupleDim, kAcquisitionDims>(groups_[0], e, eb);
  FoldGroup<kFirstTupleDim + kAcquisitionDims, kAgentDims>(groups_[1], e, eb);
  for (const auto& [key, value] : e.props) {
    const uint16_t dim = PropDim(key);
    ValueTable::Entry& v = Intern(dim, value);
    for (int level = 0; level < levels; ++level) {
      const uint32_t ci = CellAt(be[level], dim, v);
      CellStats& c = cells_[ci];
      c.m.pageviews += pv;
      c.m.events += 1;
      AddVisitor(ci, vh);
    }
  }
  ++pending_events_;
  last_seq_ = std::max(last_seq_, e.seq);
}

void RollupBuilder::Add(absl::Span<const Event> events) {
  absl::MutexLock l(&mu_);
  for (const Event& e : events) AddOne(e);
}

namespace {
struct DayKey {
  int64_t site, bucket;
  uint16_t dim;
  uint32_t value;
  bool operator==(const DayKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const DayKey& k) {
    return H::combine(std::move(h), k.site, k.bucket, k.dim, k.value);
  }
};
// A derived day cell. Its sketch is the union of its hour cells' sketches;
// with one hour cell (common when Take runs often: a checkpoint holds a few
// hours of events), the union is that cell's sketch, whose serialized form
// (rows[hour_row].visitors) is copied instead of merged; with more, their
// union is taken in one pass (HyperLogLog::MergeMany: a day of mostly small
// hour sketches cost ~2 sparse-list rebuilds per hour merged pairwise).
struct DayCell {
  RollupMetrics m;
  size_t hour_row = 0;  // the first hour cell's row
  int hours = 0;
};

}  // namespace

std::vector<RollupRow> RollupBuilder::Take(int64_t* checkpoint_seq) {
  absl::MutexLock l(&mu_);
  DrainVisitors();
  FlushTuples();
  for (auto& [k, b] : buckets_) {
    b->derive = b->level == kHour && ZoneOf(b->site_id).derive_days;
    b->day =
        b->derive ? LocalDayStart(b->bucket * 1000, ZoneOf(b->site_id).tz) : 0;
  }
  std::vector<RollupRow> rows;
  rows.reserve(cells_.size());
  const HyperLogLog empty;
  // Day cells derived from hour cells, for whole-hour zones.
  absl::flat_hash_map<DayKey, uint32_t> day_index;
  std::vector<DayCell> days;
  std::vector<DayKey> day_keys;
  // (day cell, a non-empty sketch of one of its hour cells)
  std::vector<std::pair<uint32_t, const HyperLogLog*>> day_sketches;
  for (size_t i = 0; i < cells_.size(); ++i) {
    const CellInfo& c = cell_info_[i];
    if (IsTupleDim(c.dim)) continue;  // flushed into its dimensions' cells
    const Bucket& b = *c.bucket;
    const std::string& value = values_[c.dim].values[c.value];
    RollupRow& r = rows.emplace_back();
    r.site_id = b.site_id;
    r.level = static_cast<RollupLevel>(b.level);
    r.bucket = b.bucket;
    r.dim = dim_names_[c.dim];
    r.value = value;
    r.m = cells_[i].m;
    const HyperLogLog& sketch = c.sketch ? *c.sketch : empty;
    sketch.SerializeTo(&r.visitors);
    if (!b.derive) continue;
    const DayKey key{b.site_id, b.day, c.dim, c.value};
    auto [it, inserted] =
        day_index.try_emplace(key, static_cast<uint32_t>(days.size()));
    if (inserted) {
      days.emplace_back();
      day_keys.push_back(key);
    }
    DayCell& d = days[it->second];
    d.m += r.m;
    if (++d.hours == 1) d.hour_row = rows.size() - 1;
    if (c.sketch) {
      // A copy's day merges the sketch it was copied from (so that two days
      // with the same sketches are seen as such below).
      const HyperLogLog* sketch = c.sketch.get();
      if (c.copy_of != kNoCell && cell_info_[c.copy_of].changed == c.changed) {
        sketch = cell_info_[c.copy_of].sketch.get();
      }
      day_sketches.emplace_back(it->second, sketch);
    }
  }
  // Each day's hour sketches together (a counting sort by day cell).
  std::vector<uint32_t> day_first(days.size() + 1, 0);
  for (const auto& [day, sketch] : day_sketches) ++day_first[day + 1];
  for (size_t i = 1; i <= days.size(); ++i) day_first[i] += day_first[i - 1];
  std::vector<const HyperLogLog*> by_day(day_sketches.size());
  {
    std::vector<uint32_t> pos(day_first.begin(), day_first.end() - 1);
    for (const auto& [day, sketch] : day_sketches) by_day[pos[day]++] = sketch;
  }
  // Days whose hours have the same sketches (copies: see DrainVisitors) get
  // the same union: (hash of the sketches -> the first such day's row).
  absl::flat_hash_map<uint64_t, std::pair<uint32_t, size_t>> day_union;
  for (size_t i = 0; i < days.size(); ++i) {
    const DayKey& k = day_keys[i];
    RollupRow& r = rows.emplace_back();
    r.site_id = k.site;
    r.level = RollupLevel::kDay;
    r.bucket = k.bucket;
    r.dim = dim_names_[k.dim];
    r.value = values_[k.dim].values[k.value];
    r.m = days[i].m;
    const absl::Span<const HyperLogLog* const> merge =
        absl::MakeConstSpan(by_day).subspan(day_first[i],
                                            day_first[i + 1] - day_first[i]);
    if (days[i].hours == 1) {
      r.visitors = rows[days[i].hour_row].visitors;
    } else if (merge.empty()) {
      empty.SerializeTo(&r.visitors);
    } else if (merge.size() == 1) {
      merge[0]->SerializeTo(&r.visitors);
    } else {
      uint64_t h = 0;
      for (const HyperLogLog* s : merge) {
        h = (h ^ reinterpret_cast<uintptr_t>(s)) * 0x9E3779B97F4A7C15ull;
      }
      auto [it, inserted] =
          day_union.try_emplace(h, static_cast<uint32_t>(i), rows.size() - 1);
      if (!inserted) {
        const uint32_t o = it->second.first;
        if (std::equal(merge.begin(), merge.end(),
                       by_day.begin() + day_first[o],
                       by_day.begin() + day_first[o + 1])) {
          r.visitors = rows[it->second.second].visitors;
          continue;
        }
      }
      // The union of the hour sketches in one pass (see MergeMany).
      HyperLogLog day(merge[0]->precision());
      day.MergeMany(merge);
      day.SerializeTo(&r.visitors);
    }
  }
  cells_.clear();
  cell_info_.clear();
  tuple_cells_.clear();
  tuple_targets_.clear();
  for (TupleGroup& g : groups_) g.sampled.clear();
  for (ValueTable& t : values_) t = ValueTable();
  total_entry_ = nullptr;
  visitor_done_.Clear();  // (before the buckets it points to go)
  buckets_.clear();
  for (Bucket*& b : last_bucket_) b = nullptr;
  last_hit_ = nullptr;
  pending_events_ = 0;
  *checkpoint_seq = last_seq_;
  return rows;
}

void RollupBuilder::PutBack(const std::vector<RollupRow>& rows) {
  absl::MutexLock l(&mu_);
  total_entry_ = nullptr;  // (values_[0] may grow: its entries move)
  for (const RollupRow& r : rows) {
    if (r.level == RollupLevel::kDay && ZoneOf(r.site_id).derive_days) {
      continue;  // derived again from the hour rows put back
    }
    const uint16_t dim = DimOf(r.dim);
    if (IsTupleDim(dim)) continue;  // never a row's (see the constructor)
    const uint32_t ci =
        CellAt(BucketFor(r.site_id, static_cast<uint8_t>(r.level), r.bucket),
               dim, Intern(dim, r.value));
    cells_[ci].m += r.m;
    CellInfo& c = cell_info_[ci];
    if (c.sketch == nullptr) c.sketch = NewSketch(dim);
    (void)c.sketch->MergeSerialized(r.visitors);
    c.changed = ++drain_gen_;  // (no longer a copy, nor copied)
    c.copy_of = kNoCell;
  }
}

void RollupBuilder::Scan(int64_t site_id, RollupLevel level,
                         int64_t from_bucket, int64_t to_bucket,
                         absl::Span<const std::string> dims,
                         const std::function<void(const RollupRow&)>& fn) {
  absl::MutexLock l(&mu_);
  DrainVisitors();
  FlushTuples();
  SiteZone& zone = ZoneOf(site_id);
  // Day cells of whole-hour zones are the hour cells, relabelled with their
  // local day; callers aggregate rows with equal keys.
  const bool derived = level == RollupLevel::kDay && zone.derive_days;
  const uint8_t want =
      static_cast<uint8_t>(derived ? RollupLevel::kHour : level);
  std::vector<bool> wanted(dim_names_.size());
  for (size_t dim = 0; dim < dim_names_.size(); ++dim) {
    wanted[dim] = !IsTupleDim(dim) && std::find(dims.begin(), dims.end(),
                                                dim_names_[dim]) != dims.end();
  }
  const HyperLogLog empty;
  RollupRow r;
  for (const auto& [k, b] : buckets_) {
    if (k.site_id != site_id || k.level != want) continue;
    const int64_t bucket =
        derived ? LocalDayStart(k.bucket * 1000, zone.tz) : k.bucket;
    if (bucket < from_bucket || bucket >= to_bucket) continue;
    for (const auto& [key, index] : b->cells) {
      const CellInfo& c = cell_info_[index];
      if (!wanted[c.dim]) continue;
      r.site_id = k.site_id;
      r.level = level;
      r.bucket = bucket;
      r.dim = dim_names_[c.dim];
      r.value = values_[c.dim].values[c.value];
      r.m = cells_[index].m;
      r.visitors.clear();
      (c.sketch ? *c.sketch : empty).SerializeTo(&r.visitors);
      fn(r);
    }
  }
}

int64_t RollupBuilder::pending_events() const {
  absl::MutexLock l(&mu_);
  return pending_events_;
}

int64_t RollupBuilder::pending_cells() const {
  absl::MutexLock l(&mu_);
  return static_cast<int64_t>(cells_.size() - tuple_cells_.size());
}

int64_t RollupBuilder::last_seq() const {
  absl::MutexLock l(&mu_);
  return last_seq_;
}

void RollupBuilder::set_last_seq(int64_t seq) {
  absl::MutexLock l(&mu_);
  last_seq_ = seq;
}

void RollupBuilder::SetTupleWindowForTesting(uint32_t events) {
  absl::MutexLock l(&mu_);
  tuple_window_ = events;
}

void RollupBuilder::SetTupleHashMaskForTesting(uint64_t mask) {
  absl::MutexLock l(&mu_);
  tuple_hash_mask_ = mask;
}

void RollupBuilder::SetShareHashMaskForTesting(uint64_t mask) {
  absl::MutexLock l(&mu_);
  share_hash_mask_ = mask;
}

void RollupBuilder::ForceTupleModeForTesting(bool tuples) {
  absl::MutexLock l(&mu_);
  tuple_window_ = ~uint32_t{0};
  for (TupleGroup& g : groups_) g.tuples = tuples;
}

int64_t RollupBuilder::tuple_folds_for_testing() const {
  absl::MutexLock l(&mu_);
  return tuple_folds_;
}

int64_t RollupBuilder::direct_folds_for_testing() const {
  absl::MutexLock l(&mu_);
  return direct_folds_;
}

}  // namespace analytics
