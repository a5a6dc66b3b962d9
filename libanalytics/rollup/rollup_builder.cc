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

void RollupBuilder::SetSiteTimezone(int64_t site_id, const absl::TimeZone& tz) {
  absl::MutexLock l(&mu_);
  zones_[site_id] = SiteZone{tz};
}

int64_t RollupBuilder::DayBucket(int64_t site, int64_t ts_ms) {
  auto it = zones_.find(site);
  if (it == zones_.end()) {
    it = zones_.emplace(site, SiteZone{absl::UTCTimeZone()}).first;
  }
  SiteZone& z = it->second;
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
  const int64_t day_e = DayBucket(e.site_id, e.ts_ms);
  const int64_t hour_s = HourBucket(e.session_start_ms);
  const int64_t day_s = DayBucket(e.site_id, e.session_start_ms);
  const uint64_t vh = HyperLogLog::HashKey(e.visitor_id);
  const int64_t pv = e.is_pageview() ? 1 : 0;

  Bucket* be[2] = {BucketFor(e.site_id, kHour, hour_e),
                   BucketFor(e.site_id, kDay, day_e)};
  Bucket* bs[2] = {
      hour_s == hour_e ? be[0] : BucketFor(e.site_id, kHour, hour_s),
      day_s == day_e ? be[1] : BucketFor(e.site_id, kDay, day_s)};
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
    for (int level = 0; level < 2; ++level) {
      Cell& c = CellFor(be[level], static_cast<uint16_t>(i), v);
      c.m.pageviews += pv;
      c.m.events += 1;
      c.AddVisitor(vh);
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
    for (int level = 0; level < 2; ++level) {
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

std::vector<RollupRow> RollupBuilder::Take(int64_t* checkpoint_seq) {
  absl::MutexLock l(&mu_);
  std::vector<RollupRow> rows;
  for (auto& [k, b] : buckets_) {
    for (size_t dim = 0; dim < b->dims.size(); ++dim) {
      for (auto& [value, c] : b->dims[dim]) {
        RollupRow r;
        r.site_id = b->site_id;
        r.level = static_cast<RollupLevel>(b->level);
        r.bucket = b->bucket;
        r.dim = dim_names_[dim];
        r.value = value;
        r.m = c.m;
        c.FlushVisitors();
        c.visitors.SerializeTo(&r.visitors);
        rows.push_back(std::move(r));
      }
    }
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
  RollupRow r;
  for (const auto& [k, b] : buckets_) {
    if (k.site_id != site_id || k.level != static_cast<uint8_t>(level) ||
        k.bucket < from_bucket || k.bucket >= to_bucket) {
      continue;
    }
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
        r.bucket = k.bucket;
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
