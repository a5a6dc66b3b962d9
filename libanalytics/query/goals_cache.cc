// Funnel segments; see goals_cache.h.
#include "libanalytics/query/goals_cache.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "libanalytics/core/dimensions.h"

namespace analytics {
namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kMaxSegmentDays = 800;
constexpr std::string_view kTokenMetaKey = "funnel_cache_token";
constexpr uint32_t kImportedBit = 0x80000000u;
constexpr uint8_t kMixedAny = 1;
constexpr uint8_t kMixedVisit = 2;

std::atomic<bool> g_enabled{true};

struct __attribute__((packed)) Row {
  int64_t seq;
  int32_t ts_off;  // ms within the UTC day
  uint32_t key;    // step key id; kImportedBit set for imported events
  uint32_t sess;   // session index
};
static_assert(sizeof(Row) == 20);

bool RowLess(const Row& a, const Row& b) {
  return a.ts_off != b.ts_off ? a.ts_off < b.ts_off : a.seq < b.seq;
}

struct Segment {
  std::vector<Row> rows;  // (ts_off, seq) order
};

constexpr int kFirstAttrDim = static_cast<int>(DimId::kEntryPage);
constexpr int kLastAttrDim = static_cast<int>(DimId::kLocale);
constexpr int kAttrFields = 2 + kLastAttrDim - kFirstAttrDim;  // + hostname
static_assert(kAttrFields == 17);
using AttrIds = std::array<uint32_t, kAttrFields>;

struct FieldDict {
  absl::flat_hash_map<std::string, uint32_t> index;
  std::vector<std::string> values;
  uint32_t Intern(std::string_view v) {
    auto [it, fresh] =
        index.try_emplace(std::string(v), static_cast<uint32_t>(values.size()));
    if (fresh) values.emplace_back(v);
    return it->second;
  }
};

// Field of a session-level dimension in AttrIds.
int AttrField(DimId id) {
  return id == DimId::kHostname ? 0 : static_cast<int>(id) - kFirstAttrDim + 1;
}

struct SiteData {
  absl::flat_hash_map<uint64_t, uint32_t> sess_index;
  std::vector<uint32_t> sess_visitor;  // session index -> visitor index
  std::vector<uint32_t> sess_attrs;    // session index -> attrs index
  // Events with different attrs: kMixedAny, plus kMixedVisit when they differ
  // in more than the hostname.
  std::vector<uint8_t> sess_mixed;
  absl::flat_hash_map<uint64_t, uint32_t> vis_index;
  std::vector<uint64_t> visitors;  // visitor index -> visitor id
  absl::flat_hash_map<std::string, uint32_t> key_index;
  std::vector<Event> keys;  // name, page, hostname and props
  // The session-level dimensions (visit attributes, hostname) of events.
  // Interned by a 128-bit hash of the values; each set as per-field value
  // ids (hostname, then kEntryPage..kLocale).
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint32_t> attrs_index;
  std::vector<AttrIds> attrs;
  std::array<FieldDict, kAttrFields> fields;
  std::map<int64_t, Segment> days;
};

struct Cache {
  std::mutex mu;
  std::string token;
  bool primed = false;
  absl::flat_hash_map<int32_t, int64_t> watermark;  // per worker
  int64_t first_seen_max = 0;  // watermark for workers that appear later
  int64_t rows = 0;
  int64_t days_built = 0;
  absl::flat_hash_map<int64_t, SiteData> sites;
  uint64_t last_used = 0;  // guarded by g_registry_mu
};

constexpr size_t kMaxCaches = 4;

std::mutex g_registry_mu;
std::map<const Store*, std::shared_ptr<Cache>>& Registry() {
  static auto* r = new std::map<const Store*, std::shared_ptr<Cache>>;
  return *r;
}

std::string NewToken() {
  std::random_device rd;
  std::mt19937_64 g((static_cast<uint64_t>(rd()) << 32) ^ rd());
  return absl::StrCat(g(), "-", g());
}

// Appends a row for `e` (not engagement) to `rows`, interning its session,
// visitor and step key in `site`.
void AddRow(SiteData& site, const Event& e, int64_t day,
            std::vector<Row>& rows) {
  std::string key = e.name;
  key.push_back('\0');
  key += e.page;
  key.push_back('\0');
  key += e.hostname;
  for (const auto& [k, v] : e.props) {
    key.push_back('\0');
    key += k;
    key.push_back('\0');
    key += v;
  }
  auto [kit, knew] = site.key_index.try_emplace(
      std::move(key), static_cast<uint32_t>(site.keys.size()));
  if (knew) {
    Event k;
    k.name = e.name;
    k.page = e.page;
    k.hostname = e.hostname;
    k.props = e.props;
    site.keys.push_back(std::move(k));
  }
  std::string attrs(e.hostname);
  for (int id = kFirstAttrDim; id <= kLastAttrDim; ++id) {
    attrs.push_back('\0');
    attrs += RawValue(e, static_cast<DimId>(id));
  }
  const std::pair<uint64_t, uint64_t> ah(absl::HashOf(attrs),
                                         std::hash<std::string>{}(attrs));
  auto [ait, anew] = site.attrs_index.try_emplace(
      ah, static_cast<uint32_t>(site.attrs.size()));
  if (anew) {
    AttrIds a;
    a[0] = site.fields[0].Intern(e.hostname);
    for (int id = kFirstAttrDim; id <= kLastAttrDim; ++id) {
      const DimId d = static_cast<DimId>(id);
      a[AttrField(d)] = site.fields[AttrField(d)].Intern(RawValue(e, d));
    }
    site.attrs.push_back(a);
  }
  auto [sit, snew] = site.sess_index.try_emplace(
      e.session_id, static_cast<uint32_t>(site.sess_visitor.size()));
  if (snew) {
    auto [vit, vnew] = site.vis_index.try_emplace(
        e.visitor_id, static_cast<uint32_t>(site.visitors.size()));
    if (vnew) site.visitors.push_back(e.visitor_id);
    site.sess_visitor.push_back(vit->second);
    site.sess_attrs.push_back(ait->second);
    site.sess_mixed.push_back(0);
  } else if (site.sess_attrs[sit->second] != ait->second) {
    uint8_t& mixed = site.sess_mixed[sit->second];
    mixed |= kMixedAny;
    const AttrIds& a = site.attrs[site.sess_attrs[sit->second]];
    const AttrIds& b = site.attrs[ait->second];
    if (!std::equal(a.begin() + 1, a.end(), b.begin() + 1)) {
      mixed |= kMixedVisit;
    }
  }
  rows.push_back(Row{e.seq, static_cast<int32_t>(e.ts_ms - day * kDayMs),
                     kit->second | (e.imported ? kImportedBit : 0u),
                     sit->second});
}

int64_t DayOf(int64_t ts_ms) {
  return ts_ms >= 0 ? ts_ms / kDayMs : -((-ts_ms + kDayMs - 1) / kDayMs);
}

// The cache of `store`, valid for the database it reads now.
absl::StatusOr<std::shared_ptr<Cache>> CacheFor(Store* store) {
  absl::StatusOr<std::optional<std::string>> token =
      store->GetMeta(kTokenMetaKey);
  if (!token.ok()) return token.status();
  if (!*token) {
    absl::StatusOr<std::string> put =
        store->PutMetaIfAbsent(kTokenMetaKey, NewToken());
    if (!put.ok()) return put.status();
    *token = *put;
  }
  std::lock_guard<std::mutex> l(g_registry_mu);
  static uint64_t clock = 0;
  auto& reg = Registry();
  std::shared_ptr<Cache>& c = reg[store];
  if (!c || c->token != **token) {
    c = std::make_shared<Cache>();
    c->token = **token;
  }
  c->last_used = ++clock;
  std::shared_ptr<Cache> out = c;
  // Caches of stores that are gone (closed engines) are never used again:
  // keep the most recently used few.
  while (reg.size() > kMaxCaches) {
    auto oldest = reg.begin();
    for (auto it = reg.begin(); it != reg.end(); ++it) {
      if (it->second->last_used < oldest->second->last_used) oldest = it;
    }
    reg.erase(oldest);
  }
  return out;
}

// Merges the events appended since the watermarks into the cached days.
absl::Status CatchUp(Store* store, Cache& c) {
  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> ckpts =
      store->ListRollupCheckpoints();
  if (!ckpts.ok()) return ckpts.status();
  for (const auto& [w, seq] : *ckpts) {
    if (!c.watermark.contains(w)) {
      c.watermark[w] = c.primed ? c.first_seen_max : seq;
    }
  }
  // New rows per (site, day), merged below.
  absl::flat_hash_map<int64_t, std::map<int64_t, std::vector<Row>>> fresh;
  for (auto& [w, mark] : c.watermark) {
    int64_t& m = mark;
    absl::Status s = store->ScanEventsAfter(m, w, [&](const Event& e) {
      m = std::max(m, e.seq);
      if (e.is_engagement()) return true;
      auto site = c.sites.find(e.site_id);
      if (site == c.sites.end()) return true;
      const int64_t day = DayOf(e.ts_ms);
      if (!site->second.days.contains(day)) return true;  // built when read
      AddRow(site->second, e, day, fresh[e.site_id][day]);
      return true;
    });
    if (!s.ok()) return s;
  }
  if (!c.primed) {
    c.primed = true;
    for (const auto& [w, m] : c.watermark) {
      c.first_seen_max = std::max(c.first_seen_max, m);
    }
  }
  for (auto& [site_id, days] : fresh) {
    SiteData& site = c.sites[site_id];
    for (auto& [day, rows] : days) {
      std::sort(rows.begin(), rows.end(), RowLess);
      std::vector<Row>& have = site.days[day].rows;
      std::vector<Row> merged;
      merged.reserve(have.size() + rows.size());
      std::set_union(have.begin(), have.end(), rows.begin(), rows.end(),
                     std::back_inserter(merged), RowLess);
      c.rows += static_cast<int64_t>(merged.size() - have.size());
      have = std::move(merged);
    }
  }
  return absl::OkStatus();
}

// Builds the missing days of [from_day, to_day] of the site, one scan per run
// of consecutive missing days. False when over the row budget.
absl::StatusOr<bool> BuildDays(Store* store, Cache& c, int64_t site_id,
                               int64_t from_day, int64_t to_day) {
  SiteData& site = c.sites[site_id];
  int64_t d = from_day;
  while (d <= to_day) {
    if (site.days.contains(d)) {
      ++d;
      continue;
    }
    if (c.rows > kFunnelCacheMaxRows) return false;
    int64_t end = d;
    while (end + 1 <= to_day && !site.days.contains(end + 1)) ++end;
    std::map<int64_t, std::vector<Row>> built;
    for (int64_t x = d; x <= end; ++x) built[x];
    EventScan scan;
    scan.site_id = site_id;
    scan.from_ms = d * kDayMs;
    scan.to_ms = (end + 1) * kDayMs;
    auto cur = built.begin();
    absl::Status s = store->ScanEvents(scan, [&](const Event& e) {
      if (e.is_engagement()) return true;
      const int64_t day = DayOf(e.ts_ms);
      if (day < d || day > end) return true;
      if (cur->first != day) cur = built.find(day);
      AddRow(site, e, day, cur->second);
      return true;
    });
    if (!s.ok()) return s;
    for (auto& [day, rows] : built) {
      // ScanEvents returns (ts, seq) order; sort in case a store does not.
      if (!std::is_sorted(rows.begin(), rows.end(), RowLess)) {
        std::sort(rows.begin(), rows.end(), RowLess);
      }
      c.rows += static_cast<int64_t>(rows.size());
      ++c.days_built;
      rows.shrink_to_fit();
      site.days[day].rows = std::move(rows);
    }
    d = end + 1;
  }
  return true;
}

// Drops the site's segments when its earliest cached event is gone from the
// store: deletions (retention, erase, site removal) remove every event before
// a time, so they always remove that one. One indexed look-up of one
// millisecond.
absl::Status DropIfDeleted(Store* store, Cache& c, int64_t site_id) {
  auto it = c.sites.find(site_id);
  if (it == c.sites.end()) return absl::OkStatus();
  bool checked = false;
  for (const auto& [day, seg] : it->second.days) {
    if (seg.rows.empty()) continue;
    const Row first = seg.rows.front();
    EventScan scan;
    scan.site_id = site_id;
    scan.from_ms = day * kDayMs + first.ts_off;
    scan.to_ms = scan.from_ms + 1;
    bool found = false;
    absl::Status s = store->ScanEvents(scan, [&](const Event& e) {
      found |= e.seq == first.seq;
      return !found;
    });
    if (!s.ok()) return s;
    if (found) return absl::OkStatus();
    checked = true;
    break;
  }
  // Only empty days cached: no event of them can be gone.
  if (!checked) return absl::OkStatus();
  for (const auto& [day, seg] : it->second.days) {
    c.rows -= static_cast<int64_t>(seg.rows.size());
  }
  c.sites.erase(it);
  return absl::OkStatus();
}

// The store's cache, locked, caught up with the events appended since it was
// last read, and without the site's segments if their events were deleted:
// what every reader and warmer starts from.
struct LockedCache {
  std::shared_ptr<Cache> cache;
  std::unique_lock<std::mutex> lock;
};
absl::StatusOr<LockedCache> OpenCache(Store* store, int64_t site_id) {
  absl::StatusOr<std::shared_ptr<Cache>> cache_or = CacheFor(store);
  if (!cache_or.ok()) return cache_or.status();
  LockedCache out{std::move(*cache_or), {}};
  out.lock = std::unique_lock<std::mutex>(out.cache->mu);
  absl::Status s = CatchUp(store, *out.cache);
  if (!s.ok()) return s;
  s = DropIfDeleted(store, *out.cache, site_id);
  if (!s.ok()) return s;
  return out;
}

}  // namespace

void SetFunnelCacheEnabled(bool enabled) { g_enabled = enabled; }
bool FunnelCacheEnabled() { return g_enabled; }

absl::Status WarmFunnelSegments(Store* store, int64_t site_id, int64_t from_ms,
                                int64_t to_ms) {
  if (!g_enabled || to_ms <= from_ms) return absl::OkStatus();
  absl::StatusOr<LockedCache> locked = OpenCache(store, site_id);
  if (!locked.ok()) return locked.status();
  Cache& c = *locked->cache;
  return BuildDays(store, c, site_id, DayOf(from_ms), DayOf(to_ms - 1))
      .status();
}

absl::StatusOr<int64_t> WarmFunnelSegmentsStep(Store* store, int64_t site_id,
                                               int64_t from_ms, int64_t to_ms,
                                               int64_t max_days) {
  if (!g_enabled || to_ms <= from_ms) return 0;
  absl::StatusOr<LockedCache> locked = OpenCache(store, site_id);
  if (!locked.ok()) return locked.status();
  Cache& c = *locked->cache;
  int64_t missing = 0;
  int64_t built = 0;
  for (int64_t d = DayOf(to_ms - 1); d >= DayOf(from_ms); --d) {
    if (c.sites[site_id].days.contains(d)) continue;
    if (built < max_days) {
      absl::StatusOr<bool> ok = BuildDays(store, c, site_id, d, d);
      if (!ok.ok()) return ok.status();
      if (!*ok) return 0;  // over the row budget: nothing more to build
      ++built;
    } else {
      ++missing;
    }
  }
  return missing;
}

SegmentWarmer::SegmentWarmer(Store* store, Options options)
    : store_(store), options_(std::move(options)) {}

SegmentWarmer::~SegmentWarmer() { Stop(); }

void SegmentWarmer::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void SegmentWarmer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SegmentWarmer::Loop() {
  auto wait = [&](absl::Duration d) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, absl::ToChronoMilliseconds(d), [&] { return stop_; });
    return !stop_;
  };
  while (wait(options_.pause)) {
    absl::StatusOr<std::vector<Site>> sites = store_->ListSites();
    bool more = false;
    if (sites.ok()) {
      const int64_t to_ms = absl::ToUnixMillis(options_.now());
      // Whole UTC days, today included.
      const int64_t to = (DayOf(to_ms) + 1) * kDayMs;
      // One more day: a local day of the site may start on the previous UTC
      // day.
      const int64_t from = to - (options_.days + 1) * kDayMs;
      for (const Site& site : *sites) {
        absl::StatusOr<int64_t> left =
            WarmFunnelSegmentsStep(store_, site.id, from, to, 1);
        if (left.ok() && *left > 0) more = true;
        std::lock_guard<std::mutex> l(mu_);
        if (stop_) return;
      }
    }
    if (!more && !wait(options_.idle)) return;
  }
}

FunnelCacheStats GetFunnelCacheStats(const Store* store) {
  std::shared_ptr<Cache> c;
  {
    std::lock_guard<std::mutex> l(g_registry_mu);
    auto it = Registry().find(store);
    if (it == Registry().end()) return {};
    c = it->second;
  }
  std::lock_guard<std::mutex> l(c->mu);
  FunnelCacheStats st;
  st.rows = c->rows;
  st.days_built = c->days_built;
  for (const auto& [id, site] : c->sites) {
    st.days += static_cast<int64_t>(site.days.size());
    st.keys += static_cast<int64_t>(site.keys.size());
    st.attrs += static_cast<int64_t>(site.attrs.size());
    st.sessions += static_cast<int64_t>(site.sess_visitor.size());
    st.visitors += static_cast<int64_t>(site.visitors.size());
  }
  return st;
}

void InvalidateFunnelCache(const Store* store, int64_t site_id) {
  std::shared_ptr<Cache> c;
  {
    std::lock_guard<std::mutex> l(g_registry_mu);
    auto it = Registry().find(store);
    if (it == Registry().end()) return;
    c = it->second;
  }
  std::lock_guard<std::mutex> l(c->mu);
  if (site_id == 0) {
    c->sites.clear();
    c->rows = 0;
    return;
  }
  auto it = c->sites.find(site_id);
  if (it == c->sites.end()) return;
  for (const auto& [day, seg] : it->second.days) {
    c->rows -= static_cast<int64_t>(seg.rows.size());
  }
  c->sites.erase(it);
}

absl::StatusOr<std::optional<std::vector<int64_t>>> CachedFunnelCounts(
    Store* store, int64_t site_id, int64_t from_ms, int64_t to_ms,
    bool include_imports, const std::vector<Goal>& steps,
    int64_t window_seconds, const std::optional<Filter>& filter) {
  using Out = std::optional<std::vector<int64_t>>;
  if (!g_enabled || to_ms <= from_ms || steps.empty() || steps.size() > 16) {
    return Out();
  }
  bool session_dims = false, event_dims = false, visitor_dim = false;
  if (filter) {
    std::vector<Dimension> dims;
    filter->CollectDims(&dims);
    for (const Dimension& d : dims) {
      if (d.name == kVisitorDimName) {
        visitor_dim = true;
      } else if (d.kind == DimKind::kExit) {
        return Out();  // known at the session's end
      } else if (d.kind == DimKind::kSession || d.id == DimId::kHostname) {
        session_dims = true;
      } else {
        event_dims = true;
      }
    }
  }
  absl::StatusOr<LockedCache> locked = OpenCache(store, site_id);
  if (!locked.ok()) return locked.status();
  Cache& c = *locked->cache;
  const int64_t from_day = DayOf(from_ms);
  const int64_t to_day = DayOf(to_ms - 1);
  absl::StatusOr<bool> built = BuildDays(store, c, site_id, from_day, to_day);
  if (!built.ok()) return built.status();
  if (!*built) return Out();
  SiteData& site = c.sites[site_id];

  // Step mask of every distinct key.
  std::vector<uint16_t> kmask(site.keys.size());
  for (size_t k = 0; k < site.keys.size(); ++k) {
    uint16_t m = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].Matches(site.keys[k])) m |= 1u << i;
    }
    kmask[k] = m;
  }

  // Hits in (ts, seq) order.
  struct Hit {
    int64_t ts;
    uint32_t sess;
    uint16_t mask;
  };
  std::vector<Hit> hits;
  for (auto it = site.days.lower_bound(from_day);
       it != site.days.end() && it->first <= to_day; ++it) {
    const int64_t base = it->first * kDayMs;
    const bool whole = base >= from_ms && base + kDayMs <= to_ms;
    for (const Row& r : it->second.rows) {
      const uint16_t m = kmask[r.key & ~kImportedBit];
      if (!m) continue;
      if (!include_imports && (r.key & kImportedBit)) continue;
      const int64_t ts = base + r.ts_off;
      if (!whole && (ts < from_ms || ts >= to_ms)) continue;
      hits.push_back(Hit{ts, r.sess, m});
    }
  }

  // Filters: a session takes part when any of its events in the range
  // matches; only sessions with a hit matter.
  std::vector<uint8_t> matched;
  if (filter) {
    matched.assign(site.sess_visitor.size(), 0);
    std::vector<uint8_t> cand(site.sess_visitor.size(), 0);
    for (const Hit& h : hits) {
      if (session_dims && site.sess_mixed[h.sess]) return Out();
      cand[h.sess] = 1;
    }
    auto eval = [&](uint32_t key_id, uint32_t sess) {
      const Event& key = site.keys[key_id];
      const AttrIds& attrs = site.attrs[site.sess_attrs[sess]];
      const uint64_t& vis = site.visitors[site.sess_visitor[sess]];
      return filter->Eval(
          [&](const Dimension& d) -> std::optional<std::string_view> {
            if (d.name == kVisitorDimName) {
              return std::string_view(reinterpret_cast<const char*>(&vis),
                                      sizeof(vis));
            }
            if (d.kind == DimKind::kSession || d.id == DimId::kHostname) {
              const int f = AttrField(d.id);
              return DisplayValue(d.id, site.fields[f].values[attrs[f]]);
            }
            return EventDimValue(key, d);
          });
    };
    if (!event_dims) {
      // Visit attributes and visitor only: one evaluation per session (its
      // events in the range, a hit among them, share them).
      std::vector<int8_t> memo(visitor_dim ? 0 : site.attrs.size(), -1);
      for (const Hit& h : hits) {
        if (!cand[h.sess]) continue;
        cand[h.sess] = 0;
        if (!visitor_dim) {
          int8_t& m = memo[site.sess_attrs[h.sess]];
          if (m < 0) m = eval(0, h.sess) ? 1 : 0;
          matched[h.sess] = m;
        } else {
          matched[h.sess] = eval(0, h.sess);
        }
      }
    } else {
      // Memoized per step key (and visit attributes) unless the visitor is
      // tested.
      std::vector<int8_t> key_memo(
          session_dims || visitor_dim ? 0 : site.keys.size(), -1);
      absl::flat_hash_map<uint64_t, bool> pair_memo;
      for (auto it = site.days.lower_bound(from_day);
           it != site.days.end() && it->first <= to_day; ++it) {
        const int64_t base = it->first * kDayMs;
        for (const Row& r : it->second.rows) {
          if (!cand[r.sess] || matched[r.sess]) continue;
          if (!include_imports && (r.key & kImportedBit)) continue;
          const int64_t ts = base + r.ts_off;
          if (ts < from_ms || ts >= to_ms) continue;
          const uint32_t k = r.key & ~kImportedBit;
          bool m;
          if (visitor_dim) {
            m = eval(k, r.sess);
          } else if (!session_dims) {
            int8_t& x = key_memo[k];
            if (x < 0) x = eval(k, r.sess) ? 1 : 0;
            m = x;
          } else {
            const uint64_t pk =
                (static_cast<uint64_t>(k) << 32) | site.sess_attrs[r.sess];
            auto [pit, fresh] = pair_memo.try_emplace(pk, false);
            if (fresh) pit->second = eval(k, r.sess);
            m = pit->second;
          }
          if (m) matched[r.sess] = 1;
        }
      }
    }
    size_t kept = 0;
    for (const Hit& h : hits) {
      if (matched[h.sess]) hits[kept++] = h;
    }
    hits.resize(kept);
  }

  const int n = static_cast<int>(steps.size());
  const size_t nvis = site.visitors.size();
  std::vector<uint8_t> depth(nvis, 0);
  if (window_seconds == 0) {
    std::vector<uint8_t> state(site.sess_visitor.size(), 0);
    for (const Hit& h : hits) {
      uint8_t& k = state[h.sess];
      if (k < n && (h.mask & (1u << k))) ++k;
    }
    for (size_t i = 0; i < state.size(); ++i) {
      if (!state[i]) continue;
      uint8_t& d = depth[site.sess_visitor[i]];
      d = std::max(d, state[i]);
    }
  } else {
    // Counting sort by visitor, keeping time order.
    std::vector<uint32_t> start(nvis + 1, 0);
    for (const Hit& h : hits) ++start[site.sess_visitor[h.sess] + 1];
    for (size_t v = 0; v < nvis; ++v) start[v + 1] += start[v];
    std::vector<uint32_t> pos(start.begin(), start.end() - 1);
    std::vector<uint32_t> order(hits.size());
    for (uint32_t i = 0; i < hits.size(); ++i) {
      order[pos[site.sess_visitor[hits[i].sess]]++] = i;
    }
    const int64_t win = window_seconds * 1000;
    for (size_t v = 0; v < nvis; ++v) {
      const uint32_t b = start[v], e = start[v + 1];
      int best = 0;
      for (uint32_t i = b; i < e && best < n; ++i) {
        const Hit& first = hits[order[i]];
        if (!(first.mask & 1u)) continue;
        const int64_t limit = first.ts + win;
        int k = 0;
        for (uint32_t j = i; j < e && k < n; ++j) {
          const Hit& h = hits[order[j]];
          if (h.ts > limit) break;
          if (h.mask & (1u << k)) ++k;
        }
        best = std::max(best, k);
      }
      depth[v] = static_cast<uint8_t>(best);
    }
  }
  std::vector<int64_t> out(n, 0);
  std::vector<int64_t> at(n + 1, 0);
  for (uint8_t d : depth) ++at[d];
  int64_t acc = 0;
  for (int i = n; i >= 1; --i) {
    acc += at[i];
    out[i - 1] = acc;
  }
  return Out(std::move(out));
}

namespace {

// Exact distinct visitors of one answer row: a hash set of visitor indexes
// while small, a bitmap over the site's visitors once that is smaller.
class VisitorSet {
 public:
  void Add(uint32_t v, size_t nvis) {
    if (!bits_.empty()) {
      uint64_t& w = bits_[v >> 6];
      const uint64_t b = uint64_t{1} << (v & 63);
      count_ += (w & b) == 0;
      w |= b;
      return;
    }
    if (set_.insert(v).second &&
        set_.size() > std::max<size_t>(1024, nvis / 32)) {
      bits_.assign((nvis + 63) / 64, 0);
      for (uint32_t x : set_) bits_[x >> 6] |= uint64_t{1} << (x & 63);
      count_ = static_cast<int64_t>(set_.size());
      set_ = absl::flat_hash_set<uint32_t>();
    }
  }
  int64_t size() const {
    return bits_.empty() ? static_cast<int64_t>(set_.size()) : count_;
  }
  template <typename F>
  void ForEach(F f) const {
    if (bits_.empty()) {
      for (uint32_t v : set_) f(v);
      return;
    }
    for (size_t w = 0; w < bits_.size(); ++w) {
      for (uint64_t b = bits_[w]; b != 0; b &= b - 1) {
        f(static_cast<uint32_t>(w * 64 + __builtin_ctzll(b)));
      }
    }
  }

 private:
  absl::flat_hash_set<uint32_t> set_;
  std::vector<uint64_t> bits_;
  int64_t count_ = 0;
};

// Dimensions a step key carries: they differ per event.
bool KeyLevel(const Dimension& d) {
  return d.name != kVisitorDimName &&
         (d.kind == DimKind::kEvent || d.kind == DimKind::kProp);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

}  // namespace

absl::StatusOr<std::optional<std::vector<SegmentRow>>> CachedGoalRows(
    Store* store, const SegmentQuery& q) {
  using Out = std::optional<std::vector<SegmentRow>>;
  // "all" (from_ms < 0) and ranges of years: the raw scan.
  if (!g_enabled || q.to_ms <= q.from_ms || q.from_ms < 0 ||
      q.to_ms - q.from_ms > kMaxSegmentDays * kDayMs) {
    return Out();
  }
  int goal_dim = -1, time_dim = -1;
  bool session_breakdown = false;
  for (size_t i = 0; i < q.dims.size(); ++i) {
    const SegmentDim& d = q.dims[i];
    switch (d.kind) {
      case SegmentDim::Kind::kGoal:
        if (q.goals == nullptr || q.goals->size() > 64 || goal_dim >= 0) {
          return Out();
        }
        goal_dim = static_cast<int>(i);
        break;
      case SegmentDim::Kind::kTime:
        if (!q.time_label || q.time_slot_ms <= 0 ||
            3'600'000 % q.time_slot_ms != 0 || time_dim >= 0) {
          return Out();
        }
        time_dim = static_cast<int>(i);
        break;
      case SegmentDim::Kind::kDim:
        if (d.dim.kind == DimKind::kSession) {
          session_breakdown = true;
        } else if (!KeyLevel(d.dim)) {
          return Out();
        }
        break;
    }
  }
  // The filter's top-level clauses: on the event alone (its step key,
  // memoized per key), on its visit attributes alone (memoized per attribute
  // set), on both (memoized per key and attribute set), or on the visitor
  // (evaluated per event).
  std::vector<const Filter*> key_clauses, attr_clauses, mixed_clauses,
      visitor_clauses, visitor_only_clauses;
  bool positive_goal = false;
  if (q.filter) {
    std::vector<const Filter*> conj;
    if (q.filter->op == Filter::Op::kAnd) {
      for (const Filter& c : q.filter->children) conj.push_back(&c);
    } else {
      conj.push_back(&*q.filter);
    }
    for (const Filter* c : conj) {
      if (c->goal && c->op != Filter::Op::kNot) positive_goal = true;
      std::vector<Dimension> dims;
      c->CollectDims(&dims);
      bool on_key = false, on_attrs = false, on_visitor = false;
      for (const Dimension& d : dims) {
        if (d.name == kVisitorDimName) {
          on_visitor = true;
        } else if (d.kind == DimKind::kSession) {
          on_attrs = true;
        } else if (KeyLevel(d)) {
          on_key = true;
        } else {
          return Out();  // visit:exit_page: known at the session's end
        }
      }
      if (on_visitor && !on_attrs && !on_key) {
        visitor_only_clauses.push_back(c);  // memoized per visitor
      } else if (on_visitor) {
        visitor_clauses.push_back(c);
      } else if (on_attrs && on_key) {
        mixed_clauses.push_back(c);
      } else if (on_attrs) {
        attr_clauses.push_back(c);
      } else {
        key_clauses.push_back(c);
      }
    }
  }
  // Engagement events are not in the segments: only a goal (never an
  // engagement event) keeps them out of the answer.
  if (goal_dim < 0 && !positive_goal && !q.lookup_only && !q.want_visitor_ids) {
    return Out();
  }
  const bool uses_attrs = session_breakdown || !attr_clauses.empty() ||
                          !mixed_clauses.empty() || !visitor_clauses.empty();

  absl::StatusOr<LockedCache> locked = OpenCache(store, q.site_id);
  if (!locked.ok()) return locked.status();
  Cache& c = *locked->cache;
  const int64_t from_day = DayOf(q.from_ms);
  const int64_t to_day = DayOf(q.to_ms - 1);
  absl::StatusOr<bool> built = BuildDays(store, c, q.site_id, from_day, to_day);
  if (!built.ok()) return built.status();
  if (!*built) return Out();
  SiteData& site = c.sites[q.site_id];
  const size_t nvis = site.visitors.size();

  auto value = [&](const Dimension& d, uint32_t k,
                   uint32_t sess) -> std::optional<std::string_view> {
    if (d.name == kVisitorDimName) {
      const uint64_t& v = site.visitors[site.sess_visitor[sess]];
      return std::string_view(reinterpret_cast<const char*>(&v), sizeof(v));
    }
    if (d.kind == DimKind::kSession) {
      const AttrIds& a = site.attrs[site.sess_attrs[sess]];
      const int f = AttrField(d.id);
      return DisplayValue(d.id, site.fields[f].values[a[f]]);
    }
    return EventDimValue(site.keys[k], d);
  };
  auto holds = [&](const std::vector<const Filter*>& clauses, uint32_t k,
                   uint32_t sess) {
    for (const Filter* f : clauses) {
      if (!f->Eval([&](const Dimension& d) { return value(d, k, sess); })) {
        return false;
      }
    }
    return true;
  };
  // The values of the breakdown dimensions of one kind ("" when missing or
  // empty: the event adds to no row, as in the raw path's BuildKey).
  auto tuple = [&](bool session, uint32_t k, uint32_t sess, std::string* out) {
    out->clear();
    for (const SegmentDim& d : q.dims) {
      if (d.kind != SegmentDim::Kind::kDim ||
          (d.dim.kind == DimKind::kSession) != session) {
        continue;
      }
      std::optional<std::string_view> v = value(d.dim, k, sess);
      if (!v || v->empty()) return false;
      out->append(*v);
      out->push_back('\x1f');
    }
    return true;
  };

  // Per step key: a class (the goals it completes, or bit 0 when there is no
  // goal dimension, and its event-level breakdown values); -1 when excluded.
  constexpr int32_t kUnknown = -2;
  std::vector<int32_t> kclass(site.keys.size(), kUnknown);
  std::vector<uint8_t> kpageview(site.keys.size(), 0);
  absl::flat_hash_map<std::string, int32_t> class_index;
  int32_t nclasses = 0;
  // Per visit attribute set: a class (its session-level breakdown values);
  // -1 when the attribute clauses exclude it.
  std::vector<int32_t> aclass(uses_attrs ? site.attrs.size() : 0, kUnknown);
  absl::flat_hash_map<std::string, int32_t> aclass_index;
  // Groups: the answer rows (without the time label) an event adds to.
  std::vector<std::vector<uint32_t>> groups;
  std::vector<int32_t> kgroup;  // per key class, when no attribute matters
  std::vector<std::vector<int32_t>> class_groups;  // [key class][attr class]
  absl::flat_hash_map<uint64_t, uint32_t> pair_group;  // (key, attrs)
  absl::flat_hash_map<std::string, uint32_t> partial_index;
  std::vector<std::vector<std::string>> partial_dims;
  std::string scratch;
  auto make_group = [&](uint32_t k, uint32_t sess) {
    std::vector<uint32_t> rows;
    if (holds(mixed_clauses, k, sess)) {
      uint64_t m = 1;
      if (goal_dim >= 0) {
        m = 0;
        for (size_t g = 0; g < q.goals->size(); ++g) {
          if ((*q.goals)[g].Matches(site.keys[k])) m |= uint64_t{1} << g;
        }
      }
      for (int g = 0; m != 0; ++g, m >>= 1) {
        if (!(m & 1)) continue;
        std::vector<std::string> dims(q.dims.size());
        std::string key;
        for (int i = 0; i < static_cast<int>(q.dims.size()); ++i) {
          if (i) key.push_back('\x1f');
          if (i == time_dim) continue;
          if (i == goal_dim) {
            dims[i] = (*q.goals)[g].display_name;
          } else {
            // Present and non-empty: checked by the classes.
            dims[i] = std::string(*value(q.dims[i].dim, k, sess));
          }
          key += dims[i];
        }
        auto [it, fresh] = partial_index.try_emplace(
            std::move(key), static_cast<uint32_t>(partial_dims.size()));
        if (fresh) partial_dims.push_back(std::move(dims));
        rows.push_back(it->second);
      }
    }
    groups.push_back(std::move(rows));
    return static_cast<uint32_t>(groups.size() - 1);
  };

  struct Acc {
    int64_t events = 0, pageviews = 0;
    VisitorSet vis;
  };
  std::vector<Acc> acc;
  std::vector<int8_t> vmemo(visitor_only_clauses.empty() ? 0 : nvis, -1);
  std::vector<std::pair<uint32_t, uint32_t>> final_keys;  // (label, partial)
  absl::flat_hash_map<uint64_t, uint32_t> final_index;
  std::vector<std::string> labels;
  absl::flat_hash_map<std::string, uint32_t> label_index;
  int64_t cur_slot = INT64_MIN;
  uint32_t cur_label = 0;
  for (auto it = site.days.lower_bound(from_day);
       it != site.days.end() && it->first <= to_day; ++it) {
    const int64_t base = it->first * kDayMs;
    const bool whole = base >= q.from_ms && base + kDayMs <= q.to_ms;
    for (const Row& r : it->second.rows) {
      if (!q.include_imports && (r.key & kImportedBit)) continue;
      const uint32_t k = r.key & ~kImportedBit;
      int32_t& kc = kclass[k];
      if (kc == kUnknown) {
        kpageview[k] = site.keys[k].is_pageview();
        kc = -1;
        bool any = goal_dim < 0;
        if (!any) {
          for (const Goal& g : *q.goals) any = any || g.Matches(site.keys[k]);
        }
        if (any && holds(key_clauses, k, r.sess) &&
            tuple(false, k, r.sess, &scratch)) {
          uint64_t m = 1;
          if (goal_dim >= 0) {
            m = 0;
            for (size_t g = 0; g < q.goals->size(); ++g) {
              if ((*q.goals)[g].Matches(site.keys[k])) m |= uint64_t{1} << g;
            }
          }
          scratch.append(reinterpret_cast<const char*>(&m), sizeof(m));
          auto [cit, fresh] = class_index.try_emplace(scratch, nclasses);
          if (fresh) ++nclasses;
          kc = cit->second;
        }
      }
      if (kc < 0) continue;
      const int64_t ts = base + r.ts_off;
      if (!whole && (ts < q.from_ms || ts >= q.to_ms)) continue;
      uint32_t g;
      if (!uses_attrs) {
        if (kgroup.size() <= static_cast<size_t>(kc)) {
          kgroup.resize(kc + 1, -1);
        }
        int32_t& x = kgroup[kc];
        if (x < 0) x = static_cast<int32_t>(make_group(k, r.sess));
        g = static_cast<uint32_t>(x);
      } else {
        // The raw path reads each event's own visit attributes (the
        // hostname comes from the step key).
        if (site.sess_mixed[r.sess] & kMixedVisit) return Out();
        const uint32_t at = site.sess_attrs[r.sess];
        int32_t& ac = aclass[at];
        if (ac == kUnknown) {
          ac = -1;
          if (holds(attr_clauses, k, r.sess) &&
              tuple(true, k, r.sess, &scratch)) {
            auto [ait, fresh] = aclass_index.try_emplace(
                scratch, static_cast<int32_t>(aclass_index.size()));
            ac = ait->second;
          }
        }
        if (ac < 0) continue;
        if (mixed_clauses.empty()) {
          // Dense: few key classes, attribute classes by first use.
          if (class_groups.size() <= static_cast<size_t>(kc)) {
            class_groups.resize(kc + 1);
          }
          std::vector<int32_t>& row = class_groups[kc];
          if (row.size() <= static_cast<size_t>(ac)) row.resize(ac + 1, -1);
          if (row[ac] < 0)
            row[ac] = static_cast<int32_t>(make_group(k, r.sess));
          g = static_cast<uint32_t>(row[ac]);
        } else {
          const uint64_t pk = (static_cast<uint64_t>(k) << 32) | at;
          auto pit = pair_group.find(pk);
          if (pit == pair_group.end()) {
            pit = pair_group.emplace(pk, make_group(k, r.sess)).first;
          }
          g = pit->second;
        }
      }
      if (groups[g].empty()) continue;
      if (!visitor_clauses.empty() && !holds(visitor_clauses, k, r.sess)) {
        continue;
      }
      const uint32_t vis = site.sess_visitor[r.sess];
      if (!visitor_only_clauses.empty()) {
        int8_t& vm = vmemo[vis];
        if (vm < 0) vm = holds(visitor_only_clauses, k, r.sess) ? 1 : 0;
        if (!vm) continue;
      }
      for (uint32_t p : groups[g]) {
        uint32_t fr = p;
        if (time_dim >= 0) {
          const int64_t slot = FloorDiv(ts, q.time_slot_ms);
          if (slot != cur_slot) {
            cur_slot = slot;
            std::string label = q.time_label(slot * q.time_slot_ms);
            auto [lit, fresh] = label_index.try_emplace(
                label, static_cast<uint32_t>(labels.size()));
            if (fresh) labels.push_back(std::move(label));
            cur_label = lit->second;
          }
          auto [fit, fresh] = final_index.try_emplace(
              (static_cast<uint64_t>(cur_label) << 32) | p,
              static_cast<uint32_t>(acc.size()));
          if (fresh) {
            acc.emplace_back();
            final_keys.emplace_back(cur_label, p);
          }
          fr = fit->second;
        } else if (p >= acc.size()) {
          acc.resize(p + 1);
        }
        Acc& a = acc[fr];
        ++a.events;
        a.pageviews += kpageview[k];
        a.vis.Add(vis, nvis);
      }
    }
  }
  std::vector<SegmentRow> out;
  out.reserve(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) {
    if (acc[i].events == 0) continue;
    SegmentRow row;
    if (time_dim >= 0) {
      row.dims = partial_dims[final_keys[i].second];
      row.dims[time_dim] = labels[final_keys[i].first];
    } else {
      row.dims = partial_dims[i];
    }
    row.events = acc[i].events;
    row.pageviews = acc[i].pageviews;
    row.visitors = acc[i].vis.size();
    if (q.want_visitor_ids) {
      row.visitor_ids.reserve(row.visitors);
      acc[i].vis.ForEach(
          [&](uint32_t v) { row.visitor_ids.push_back(site.visitors[v]); });
    }
    out.push_back(std::move(row));
  }
  return Out(std::move(out));
}

}  // namespace analytics
