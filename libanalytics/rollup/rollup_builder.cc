// Folding events into rollup cells; see rollup_builder.h.
#include "libanalytics/rollup/rollup_builder.h"

#include <algorithm>

#include "libanalytics/core/dimensions.h"
#include "libanalytics/core/strings.h"

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
}

RollupBuilder::SiteZone& RollupBuilder::ZoneOf(int64_t site) {
  auto it = zones_.find(site);
  if (it == zones_.end()) {
    it = zones_.emplace(site, SiteZone{absl::UTCTimeZone(), true}).first;
  }
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

uint16_t RollupBuilder::PropDim(std::string_view key) {
  if (dim_names_.empty()) {
    for (DimId d : kRollupDims) dim_names_.emplace_back(DimName(d));
  }
  lookup_scratch_.assign("event:props:");
  lookup_scratch_.append(key);
  auto it = dim_index_.find(lookup_scratch_);
  if (it != dim_index_.end()) return it->second;
  uint16_t id = static_cast<uint16_t>(dim_names_.size());
  dim_names_.push_back(lookup_scratch_);
  dim_index_.emplace(lookup_scratch_, id);
  return id;
}

RollupBuilder::Bucket* RollupBuilder::BucketFor(int64_t site, uint8_t level,
                                                int64_t bucket) {
  for (Bucket* b : last_bucket_) {
    if (b != nullptr && b->bucket == bucket && b->site_id == site &&
        b->level == level) {
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
  return slot.get();
}

RollupBuilder::Cell& RollupBuilder::CellFor(Bucket* b, uint16_t dim,
                                            std::string_view value) {
  if (b->dims.size() <= dim) b->dims.resize(dim + 1);
  auto& cells = b->dims[dim];
  auto it = cells.find(AV(value));
  if (it != cells.end()) return it->second;
  return cells[std::string(value)];
}

void RollupBuilder::AddOne(const Event& e) {
  if (e.is_engagement()) {  // feeds only raw-event metrics
    last_seq_ = std::max(last_seq_, e.seq);
    return;
  }
  if (dim_names_.empty()) {
    for (DimId d : kRollupDims) dim_names_.emplace_back(DimName(d));
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
    visitor_known[level] = !be[level]->visitor_done.insert(session_key).second;
  }
  for (size_t i = 0; i < kNumRollupDims; ++i) {
    const DimId d = kRollupDims[i];
    const std::string_view v = RawValue(e, d);
    const DimKind kind = KindOf(d);
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
      Cell& c = CellFor(be[level], static_cast<uint16_t>(i), v);
      c.m.pageviews += pv;
      c.m.events += 1;
      if (kind == DimKind::kEvent || !visitor_known[level]) c.AddVisitor(vh);
      if (!session_part) continue;
      Cell& s = bs[level] == be[level]
                    ? c
                    : CellFor(bs[level], static_cast<uint16_t>(i), v);
      s.m.visits += visits;
      if (kind != DimKind::kEvent) {
        s.m.bounces += e.d_bounce;
        s.m.duration_ms += e.d_duration_ms;
        s.m.session_pageviews += pv;
      }
    }
  }
  for (const auto& [key, value] : e.props) {
    const uint16_t dim = PropDim(key);
    for (int level = 0; level < levels; ++level) {
      Cell& c = CellFor(be[level], dim, value);
      c.m.pageviews += pv;
      c.m.events += 1;
      c.AddVisitor(vh);
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
// `value` views the key of an hour cell (alive until Take clears them).
struct DayKey {
  int64_t site, bucket;
  uint16_t dim;
  std::string_view value;
  bool operator==(const DayKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const DayKey& k) {
    return H::combine(std::move(h), k.site, k.bucket, k.dim, k.value);
  }
};
}  // namespace

RollupRow RollupBuilder::ToRow(const Bucket& b, RollupLevel level,
                               int64_t bucket, const std::string& dim,
                               std::string_view value, Cell& c) {
  RollupRow r;
  r.site_id = b.site_id;
  r.level = level;
  r.bucket = bucket;
  r.dim = dim;
  r.value.assign(value.data(), value.size());
  r.m = c.m;
  c.FlushVisitors();
  c.visitors.SerializeTo(&r.visitors);
  return r;
}

std::vector<RollupRow> RollupBuilder::Take(int64_t* checkpoint_seq) {
  absl::MutexLock l(&mu_);
  std::vector<RollupRow> rows;
  // Day cells derived from hour cells, for whole-hour zones.
  absl::flat_hash_map<DayKey, Cell> days;
  for (auto& [k, b] : buckets_) {
    const RollupLevel level = static_cast<RollupLevel>(b->level);
    const bool derive =
        level == RollupLevel::kHour && ZoneOf(b->site_id).derive_days;
    const int64_t day =
        derive ? LocalDayStart(b->bucket * 1000, ZoneOf(b->site_id).tz) : 0;
    for (size_t dim = 0; dim < b->dims.size(); ++dim) {
      for (auto& [value, c] : b->dims[dim]) {
        rows.push_back(ToRow(*b, level, b->bucket, dim_names_[dim], value, c));
        if (!derive) continue;
        Cell& d = days[DayKey{b->site_id, day, static_cast<uint16_t>(dim),
                              std::string_view(value)}];
        d.m.pageviews += c.m.pageviews;
        d.m.events += c.m.events;
        d.m.visits += c.m.visits;
        d.m.bounces += c.m.bounces;
        d.m.duration_ms += c.m.duration_ms;
        d.m.session_pageviews += c.m.session_pageviews;
        d.visitors.Merge(c.visitors);
      }
    }
  }
  Bucket proto;
  for (auto& [k, c] : days) {
    proto.site_id = k.site;
    rows.push_back(ToRow(proto, RollupLevel::kDay, k.bucket, dim_names_[k.dim],
                         k.value, c));
  }
  buckets_.clear();
  for (Bucket*& b : last_bucket_) b = nullptr;
  pending_events_ = 0;
  *checkpoint_seq = last_seq_;
  return rows;
}

void RollupBuilder::PutBack(const std::vector<RollupRow>& rows) {
  absl::MutexLock l(&mu_);
  for (const RollupRow& r : rows) {
    if (r.level == RollupLevel::kDay && ZoneOf(r.site_id).derive_days) {
      continue;  // derived again from the hour rows put back
    }
    auto it = dim_index_.find(r.dim);
    uint16_t dim;
    if (it != dim_index_.end()) {
      dim = it->second;
    } else {
      auto pos = std::find(dim_names_.begin(), dim_names_.end(), r.dim);
      if (pos == dim_names_.end()) {
        dim_names_.push_back(r.dim);
        pos = dim_names_.end() - 1;
      }
      dim = static_cast<uint16_t>(pos - dim_names_.begin());
      dim_index_.emplace(r.dim, dim);
    }
    Cell& c =
        CellFor(BucketFor(r.site_id, static_cast<uint8_t>(r.level), r.bucket),
                dim, r.value);
    c.m.pageviews += r.m.pageviews;
    c.m.events += r.m.events;
    c.m.visits += r.m.visits;
    c.m.bounces += r.m.bounces;
    c.m.duration_ms += r.m.duration_ms;
    c.m.session_pageviews += r.m.session_pageviews;
    (void)c.visitors.MergeSerialized(r.visitors);
  }
}

void RollupBuilder::Scan(int64_t site_id, RollupLevel level,
                         int64_t from_bucket, int64_t to_bucket,
                         absl::Span<const std::string> dims,
                         const std::function<void(const RollupRow&)>& fn) {
  absl::MutexLock l(&mu_);
  SiteZone& zone = ZoneOf(site_id);
  // Day cells of whole-hour zones are the hour cells, relabelled with their
  // local day; callers aggregate rows with equal keys.
  const bool derived = level == RollupLevel::kDay && zone.derive_days;
  const uint8_t want =
      static_cast<uint8_t>(derived ? RollupLevel::kHour : level);
  RollupRow r;
  for (const auto& [k, b] : buckets_) {
    if (k.site_id != site_id || k.level != want) continue;
    const int64_t bucket =
        derived ? LocalDayStart(k.bucket * 1000, zone.tz) : k.bucket;
    if (bucket < from_bucket || bucket >= to_bucket) continue;
    for (size_t dim = 0; dim < b->dims.size(); ++dim) {
      const std::string& name = dim_names_[dim];
      if (b->dims[dim].empty() ||
          std::find(dims.begin(), dims.end(), name) == dims.end()) {
        continue;
      }
      for (auto& [value, c] : b->dims[dim]) {
        c.FlushVisitors();
        r.site_id = k.site_id;
        r.level = level;
        r.bucket = bucket;
        r.dim = name;
        r.value = value;
        r.m = c.m;
        r.visitors.clear();
        c.visitors.SerializeTo(&r.visitors);
        fn(r);
      }
    }
  }
}

int64_t RollupBuilder::pending_events() const {
  absl::MutexLock l(&mu_);
  return pending_events_;
}

int64_t RollupBuilder::last_seq() const {
  absl::MutexLock l(&mu_);
  return last_seq_;
}

void RollupBuilder::set_last_seq(int64_t seq) {
  absl::MutexLock l(&mu_);
  last_seq_ = seq;
}

}  // namespace analytics
