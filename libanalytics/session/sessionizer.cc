// Session assignment and stamping; see sessionizer.h.
#include "libanalytics/session/sessionizer.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libanalytics/core/short_bytes.h"
#include "libanalytics/core/visit_fields.h"
#include "libanalytics/sketch/hll.h"

namespace analytics {

Sessionizer::Sessionizer(absl::Duration timeout, Coordinator* shared)
    : timeout_ms_(absl::ToInt64Milliseconds(timeout)), shared_(shared) {}

uint64_t Sessionizer::Key(int64_t site_id, uint64_t visitor_id) {
  return HyperLogLog::HashKey(
      visitor_id ^ (static_cast<uint64_t>(site_id) * 0x9E3779B97F4A7C15ULL));
}

namespace {
uint64_t SeenHash(char kind, std::string_view s) {
  return absl::HashOf(kind, s);
}

// a == string_view(b, n), inline for short strings like CopyShortBytes.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool EqualShort(const std::string& a,
                                                    const char* b, size_t n) {
  if (a.size() != n) return false;
  const char* p = a.data();
  if (n > 16) return std::memcmp(p, b, n) == 0;
  if (n >= 8) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, p, 8);
    std::memcpy(&a1, p + n - 8, 8);
    std::memcpy(&b0, b, 8);
    std::memcpy(&b1, b + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  if (n >= 4) {
    uint32_t a0, a1, b0, b1;
    std::memcpy(&a0, p, 4);
    std::memcpy(&a1, p + n - 4, 4);
    std::memcpy(&b0, b, 4);
    std::memcpy(&b1, b + n - 4, 4);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  return n == 0 ||
         (p[0] == b[0] && p[n / 2] == b[n / 2] && p[n - 1] == b[n - 1]);
}

constexpr size_t kVisitFieldCount = std::size(kVisitFields);
}  // namespace

void Sessionizer::ShardMutex::LockSlow(uint32_t c) {
  if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
  while (c != 0) {
    state_.wait(2, std::memory_order_relaxed);
    c = state_.exchange(2, std::memory_order_acquire);
  }
}

// Calls f(field, i) for each VisitAttrs field, unrolled with constant
// member offsets (a loop over kVisitFields loads each member pointer).
template <typename V, typename F>
inline void ForEachField(V& v, F&& f) {
  [&]<size_t... I>(std::index_sequence<I...>) {
    (f(v.*kVisitFields[I], I), ...);
  }
  (std::make_index_sequence<kVisitFieldCount>());
}

void Sessionizer::PackedVisit::Set(const VisitAttrs& v) {
  static_assert(kVisitFieldCount + 1 == kFields);
  size_t total = 0;
  ForEachField(v, [&](const std::string& f, size_t)
                      ABSL_ATTRIBUTE_ALWAYS_INLINE { total += f.size(); });
  if (total > kInlineChars) {
    SetBig(v);
    return;
  }
  big_.reset();
  char* out = chars_;
  ForEachField(
      v, [&](const std::string& f, size_t i) ABSL_ATTRIBUTE_ALWAYS_INLINE {
        const size_t n = f.size();
        len_[i] = static_cast<uint8_t>(n);
        CopyShortBytes(out, f.data(), n);
        out += n;
      });
  len_[kFields - 1] = 0;
}

void Sessionizer::PackedVisit::SetBig(const VisitAttrs& v) {
  if (big_ == nullptr) big_ = std::make_unique<Big>();
  big_->chars.clear();
  for (size_t i = 0; i < kVisitFieldCount; ++i) {
    const std::string& f = v.*kVisitFields[i];
    big_->len[i] = static_cast<uint32_t>(f.size());
    big_->chars.append(f);
  }
  big_->len[kFields - 1] = 0;
}

void Sessionizer::PackedVisit::SetExit(std::string_view page) {
  if (big_ == nullptr) {
    size_t off = 0;
    for (size_t i = 0; i < kVisitFieldCount; ++i) off += len_[i];
    if (off + page.size() <= kInlineChars) {
      len_[kFields - 1] = static_cast<uint8_t>(page.size());
      CopyShortBytes(chars_ + off, page.data(), page.size());
      return;
    }
    auto big = std::make_unique<Big>();
    for (size_t i = 0; i < kFields; ++i) big->len[i] = len_[i];
    big->chars.assign(chars_, off + len_[kFields - 1]);
    big_ = std::move(big);
  }
  big_->chars.resize(big_->chars.size() - big_->len[kFields - 1]);
  big_->chars.append(page);
  big_->len[kFields - 1] = static_cast<uint32_t>(page.size());
}

namespace {
// f = string_view(p, n), kept out of line so that the unrolled CopyTo stays
// small (std::string::assign inlines ~40 instructions).
[[gnu::noinline]] void AssignField(std::string& f, const char* p, size_t n) {
  f.assign(p, n);
}
template <typename Len>
inline void CopyFields(const char* p, const Len& len, VisitAttrs* v) {
  // Most fields of a visitor's later event are already the session's (user
  // agent, country, locale): comparing is cheaper than assigning.
  ForEachField(*v, [&](std::string& f, size_t i) ABSL_ATTRIBUTE_ALWAYS_INLINE {
    const size_t n = len[i];
    if (!EqualShort(f, p, n)) AssignField(f, p, n);
    p += n;
  });
}
}  // namespace

void Sessionizer::PackedVisit::CopyTo(VisitAttrs* v) const {
  if (big_ != nullptr) {
    CopyFields(big_->chars.data(), big_->len, v);
  } else {
    CopyFields(chars_, len_, v);
  }
}

std::string_view Sessionizer::PackedVisit::entry_page() const {
  static_assert(kVisitFields[0] == &VisitAttrs::entry_page);
  if (big_ != nullptr)
    return std::string_view(big_->chars.data(), big_->len[0]);
  return std::string_view(chars_, len_[0]);
}

std::string_view Sessionizer::PackedVisit::exit_page() const {
  if (big_ != nullptr) {
    const size_t n = big_->len[kFields - 1];
    return std::string_view(big_->chars.data() + big_->chars.size() - n, n);
  }
  size_t off = 0;
  for (size_t i = 0; i < kVisitFieldCount; ++i) off += len_[i];
  return std::string_view(chars_ + off, len_[kFields - 1]);
}

bool Sessionizer::SeenSet::Insert(uint64_t h) {
  if (n_ < 0) return more_->insert(h).second;
  for (int i = 0; i < n_; ++i) {
    if (inline_[i] == h) return false;
  }
  if (n_ < kInline) {
    inline_[n_++] = h;
    return true;
  }
  if (more_ == nullptr) {
    more_ = std::make_unique<absl::flat_hash_set<uint64_t>>();
  }
  more_->insert(inline_.begin(), inline_.end());
  n_ = -1;
  return more_->insert(h).second;
}

void Sessionizer::SeenSet::ClearSpilled() { more_->clear(); }

bool Sessionizer::Assign(Event* e, uint64_t prev_visitor_id, bool interactive) {
  if ((assigns_.fetch_add(1, std::memory_order_relaxed) & 0xFFFF) == 0xFFFF) {
    SweepAt(e->ts_ms);
  }
  // A previous-day id equal to today's (one salt for both days) is the same
  // key: nothing more to look up.
  if (prev_visitor_id == e->visitor_id) prev_visitor_id = 0;
  const bool engagement = e->is_engagement();

  uint64_t key = Key(e->site_id, e->visitor_id);
  Shard* shard = &ShardFor(key);
  shard->mu.Lock();
  LocalState* s = nullptr;     // the visitor's live session
  LocalState* slot = nullptr;  // else: its expired one under key, if any
  if (prev_visitor_id == 0 && !engagement) {
    // Nothing else to look at, and a session will be stamped: one probe.
    auto [it, added] = shard->sessions.try_emplace(key);
    if (!added && e->ts_ms - it->second.last_ms <= timeout_ms_) {
      s = &it->second;
    } else {
      slot = &it->second;
    }
  } else {
    auto it = shard->sessions.find(key);
    if (it != shard->sessions.end() &&
        e->ts_ms - it->second.last_ms <= timeout_ms_) {
      s = &it->second;
    } else if (prev_visitor_id != 0) {
      // The visitor may have a session under yesterday's salt.
      uint64_t pkey = Key(e->site_id, prev_visitor_id);
      Shard* pshard = &ShardFor(pkey);
      if (pshard != shard) {
        shard->mu.Unlock();
        pshard->mu.Lock();
      }
      auto pit = pshard->sessions.find(pkey);
      if (pit != pshard->sessions.end() &&
          e->ts_ms - pit->second.last_ms <= timeout_ms_) {
        shard = pshard;
        key = pkey;
        s = &pit->second;
        e->visitor_id = prev_visitor_id;
      } else if (pshard != shard) {
        pshard->mu.Unlock();
        shard->mu.Lock();
        it = shard->sessions.find(key);
      }
    }
    if (s == nullptr && it != shard->sessions.end()) slot = &it->second;
  }
  // The watermark counts every event, kept or not.
  if (e->ts_ms > shard->watermark_ms.load(std::memory_order_relaxed)) {
    shard->watermark_ms.store(e->ts_ms, std::memory_order_relaxed);
  }

  if (engagement) {
    if (s == nullptr) {
      shard->mu.Unlock();
      return false;
    }
    s->live_ms = std::max(s->live_ms, e->ts_ms);
    StampEngagementLocal(*s, e);
  } else if (s != nullptr) {
    ApplyLocal(s, e, interactive);
  } else {
    if (slot == nullptr) {
      slot = &shard->sessions.try_emplace(key).first->second;
    }
    StartLocal(slot, key, e, interactive);  // reuses an expired session
  }
  shard->mu.Unlock();
  return true;
}

void Sessionizer::StartLocal(LocalState* s, uint64_t key, Event* e,
                             bool interactive) {
  // A map slot is 4 cache lines.
  static_assert(sizeof(std::pair<const uint64_t, LocalState>) == 256);
  const bool pageview = e->is_pageview();
  s->session_id = HyperLogLog::HashKey(key ^ static_cast<uint64_t>(e->ts_ms));
  s->visitor_id = e->visitor_id;
  s->start_ms = e->ts_ms;
  s->last_ms = e->ts_ms;
  s->live_ms = std::max<int64_t>(0, e->ts_ms);  // as NewState + Apply
  s->site_id = e->site_id;
  s->pageviews = pageview ? 1 : 0;
  s->events = 1;
  s->interactive_custom = !pageview && interactive ? 1 : 0;
  // The first page is the entry page; the first name needs a hash only when
  // it is not "pageview".
  s->flags = LocalState::kEntryPageSeen;
  s->seen.Clear();
  if (pageview) {
    s->flags |= LocalState::kPageviewSeen | LocalState::kExitEntry;
  } else {
    s->seen.Insert(SeenHash('n', e->name));
  }
  e->visit.entry_page = e->page;
  s->visit.Set(e->visit);

  e->first_in_session = true;
  e->first_page = true;
  e->first_name = true;
  e->session_id = s->session_id;
  e->session_start_ms = s->start_ms;
  e->s_pageviews = s->pageviews;
  e->s_events = 1;
  e->s_bounce = pageview;  // one pageview and no custom event, or none
  e->s_duration_ms = 0;
  if (pageview) {
    e->s_exit_page = e->page;
  } else {
    e->s_exit_page.clear();
  }
  e->d_bounce = pageview ? 1 : 0;
  e->d_duration_ms = 0;
}

void Sessionizer::ApplyLocal(LocalState* s, Event* e, bool interactive) {
  const int32_t prev_bounce =
      (s->pageviews == 1 && s->interactive_custom == 0) ? 1 : 0;
  const int64_t prev_duration = s->last_ms - s->start_ms;
  e->first_in_session = false;
  s->visit.CopyTo(&e->visit);
  const bool pageview = e->is_pageview();
  s->events++;
  if (pageview) {
    s->pageviews++;
  } else if (interactive) {
    s->interactive_custom++;
  }
  s->last_ms = std::max(s->last_ms, e->ts_ms);
  s->live_ms = std::max(s->live_ms, e->ts_ms);
  if ((s->flags & LocalState::kEntryPageSeen) &&
      std::string_view(e->page) == s->visit.entry_page()) {
    e->first_page = false;
  } else {
    e->first_page = s->seen.Insert(SeenHash('p', e->page));
  }
  if (pageview) {
    e->first_name = (s->flags & LocalState::kPageviewSeen) == 0;
    s->flags |= LocalState::kPageviewSeen;
    s->visit.SetExit(e->page);
    s->flags = (s->flags & ~LocalState::kExitEntry) | LocalState::kExitOwn;
    e->s_exit_page = e->page;
  } else {
    e->first_name = s->seen.Insert(SeenHash('n', e->name));
    const std::string_view exit = s->exit_page();
    e->s_exit_page.assign(exit.data(), exit.size());
  }

  e->session_id = s->session_id;
  e->session_start_ms = s->start_ms;
  e->s_pageviews = s->pageviews;
  e->s_events = s->events;
  const int32_t bounce = (s->pageviews == 1 && s->interactive_custom == 0);
  e->s_bounce = bounce;
  e->s_duration_ms = s->last_ms - s->start_ms;
  e->d_bounce = static_cast<int8_t>(bounce - prev_bounce);
  e->d_duration_ms = e->s_duration_ms - prev_duration;
}

Sessionizer::State Sessionizer::NewState(uint64_t key, const Event& e) {
  State s;
  s.visitor_id = e.visitor_id;
  s.start_ms = e.ts_ms;
  s.last_ms = e.ts_ms;
  s.site_id = e.site_id;
  s.session_id = HyperLogLog::HashKey(key ^ static_cast<uint64_t>(e.ts_ms));
  return s;
}

void Sessionizer::StampEngagement(const State& s, Event* e) {
  e->visit = s.visit;
  e->first_in_session = e->first_page = e->first_name = false;
  e->session_id = s.session_id;
  e->session_start_ms = s.start_ms;
  e->s_pageviews = s.pageviews;
  e->s_events = s.events;
  e->s_bounce = s.pageviews == 1 && s.interactive_custom == 0;
  e->s_duration_ms = s.last_ms - s.start_ms;
  e->s_exit_page = s.exit_page;
  e->d_bounce = 0;
  e->d_duration_ms = 0;
}

void Sessionizer::StampEngagementLocal(const LocalState& s, Event* e) {
  s.visit.CopyTo(&e->visit);
  e->first_in_session = e->first_page = e->first_name = false;
  e->session_id = s.session_id;
  e->session_start_ms = s.start_ms;
  e->s_pageviews = s.pageviews;
  e->s_events = s.events;
  e->s_bounce = s.pageviews == 1 && s.interactive_custom == 0;
  e->s_duration_ms = s.last_ms - s.start_ms;
  const std::string_view exit = s.exit_page();
  e->s_exit_page.assign(exit.data(), exit.size());
  e->d_bounce = 0;
  e->d_duration_ms = 0;
}

void Sessionizer::Apply(State* s, bool fresh, Event* e, bool interactive) {
  int32_t prev_bounce = 0;
  int64_t prev_duration = 0;
  if (fresh) {
    e->visit.entry_page = e->page;
    s->visit = e->visit;
    e->first_in_session = true;
  } else {
    prev_bounce = (s->pageviews == 1 && s->interactive_custom == 0) ? 1 : 0;
    prev_duration = s->last_ms - s->start_ms;
    e->first_in_session = false;
    e->visit = s->visit;
  }
  s->events++;
  if (e->is_pageview()) {
    s->pageviews++;
    s->exit_page = e->page;
  } else if (interactive) {
    s->interactive_custom++;
  }
  s->last_ms = std::max(s->last_ms, e->ts_ms);
  s->live_ms = std::max(s->live_ms, e->ts_ms);
  e->first_page = s->seen.insert(SeenHash('p', e->page)).second;
  e->first_name = s->seen.insert(SeenHash('n', e->name)).second;

  e->session_id = s->session_id;
  e->session_start_ms = s->start_ms;
  e->s_pageviews = s->pageviews;
  e->s_events = s->events;
  const int32_t bounce = (s->pageviews == 1 && s->interactive_custom == 0);
  e->s_bounce = bounce;
  e->s_duration_ms = s->last_ms - s->start_ms;
  e->s_exit_page = s->exit_page;
  e->d_bounce = static_cast<int8_t>(bounce - prev_bounce);
  e->d_duration_ms = e->s_duration_ms - prev_duration;
}

void Sessionizer::Restore(const Event& last) {
  uint64_t key = Key(last.site_id, last.visitor_id);
  Shard& shard = ShardFor(key);
  ShardLock l(&shard.mu);
  LocalState* s = &shard.sessions[key];
  s->seen.Clear();
  s->session_id = last.session_id;
  s->visitor_id = last.visitor_id;
  s->start_ms = last.session_start_ms;
  s->last_ms = last.session_start_ms + last.s_duration_ms;
  s->live_ms = last.ts_ms;
  s->site_id = last.site_id;
  s->pageviews = last.s_pageviews;
  s->events = last.s_events;
  // Recover "interactive custom events happened" from the bounce flag.
  s->interactive_custom = (last.s_pageviews == 1 && !last.s_bounce) ? 1 : 0;
  s->visit.Set(last.visit);
  s->visit.SetExit(last.s_exit_page);
  // Seen: the last event's page and name only (not the entry page).
  s->flags = LocalState::kExitOwn;
  s->seen.Insert(SeenHash('p', last.page));
  if (last.is_pageview()) {
    s->flags |= LocalState::kPageviewSeen;
  } else {
    s->seen.Insert(SeenHash('n', last.name));
  }
  if (last.ts_ms > shard.watermark_ms.load(std::memory_order_relaxed)) {
    shard.watermark_ms.store(last.ts_ms, std::memory_order_relaxed);
  }
}

bool Sessionizer::Touch(int64_t site_id, uint64_t visitor_id,
                        uint64_t prev_visitor_id, int64_t ts_ms) {
  for (uint64_t id : {visitor_id, prev_visitor_id}) {
    if (id == 0) continue;
    const uint64_t key = Key(site_id, id);
    Shard& shard = ShardFor(key);
    ShardLock l(&shard.mu);
    auto it = shard.sessions.find(key);
    if (it != shard.sessions.end() &&
        ts_ms - it->second.last_ms <= timeout_ms_) {
      it->second.live_ms = std::max(it->second.live_ms, ts_ms);
      return true;
    }
  }
  return false;
}

int64_t Sessionizer::CountLive(int64_t site_id, int64_t since_ms) const {
  absl::flat_hash_set<uint64_t> visitors;
  for (const Shard& shard : shards_) {
    ShardLock l(&shard.mu);
    for (const auto& [key, s] : shard.sessions) {
      if (s.site_id == site_id && s.live_ms >= since_ms) {
        visitors.insert(s.visitor_id);
      }
    }
  }
  return static_cast<int64_t>(visitors.size());
}

size_t Sessionizer::Forget(const absl::flat_hash_set<uint64_t>& session_ids) {
  size_t dropped = 0;
  for (Shard& shard : shards_) {
    ShardLock l(&shard.mu);
    absl::erase_if(shard.sessions, [&](const auto& kv) {
      if (session_ids.contains(kv.second.session_id)) {
        ++dropped;
        return true;
      }
      return false;
    });
  }
  return dropped;
}

int64_t Sessionizer::Watermark() const {
  int64_t wm = 0;
  for (const Shard& shard : shards_) {
    wm = std::max(wm, shard.watermark_ms.load(std::memory_order_relaxed));
  }
  return wm;
}

size_t Sessionizer::Sweep() {
  return SweepAt(std::numeric_limits<int64_t>::min());
}

size_t Sessionizer::SweepAt(int64_t wm) {
  const int64_t cutoff = std::max(wm, Watermark()) - timeout_ms_;
  size_t evicted = 0;
  for (Shard& shard : shards_) {
    ShardLock l(&shard.mu);
    absl::erase_if(shard.sessions, [&](auto& kv) {
      if (kv.second.last_ms < cutoff) {
        ++evicted;
        return true;
      }
      return false;
    });
  }
  return evicted;
}

size_t Sessionizer::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    ShardLock l(&shard.mu);
    n += shard.sessions.size();
  }
  return n;
}

// ---- Shared state (a Coordinator) ----

namespace {

constexpr char kStateFormat = 1;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutSigned(std::string* out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^
                     static_cast<uint64_t>(v >> 63));  // zigzag
}
void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      const uint8_t b = static_cast<uint8_t>(in[0]);
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  int64_t Signed() {
    const uint64_t v = Varint();
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  uint64_t Fixed64() {
    if (in.size() < 8) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
    }
    in.remove_prefix(8);
    return v;
  }
  std::string String() {
    const uint64_t n = Varint();
    if (!ok || n > in.size()) {
      ok = false;
      return "";
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

template <typename F>
void ForEachVisitField(F&& f, VisitAttrs& v) {
  for (std::string* s :
       {&v.entry_page, &v.source, &v.referrer, &v.utm_source, &v.utm_medium,
        &v.utm_campaign, &v.utm_term, &v.utm_content, &v.country, &v.browser,
        &v.browser_version, &v.os, &v.os_version, &v.device, &v.screen,
        &v.locale}) {
    f(s);
  }
}

}  // namespace

std::string EncodeSessionState(const SessionState& s) {
  std::string out;
  out.reserve(64 + s.exit_page.size() + 8 * s.seen.size());
  out.push_back(kStateFormat);
  PutFixed64(&out, s.session_id);
  PutFixed64(&out, s.visitor_id);
  PutSigned(&out, s.site_id);
  PutSigned(&out, s.start_ms);
  PutSigned(&out, s.last_ms - s.start_ms);
  PutSigned(&out, s.live_ms - s.start_ms);
  PutVarint(&out, static_cast<uint32_t>(s.pageviews));
  PutVarint(&out, static_cast<uint32_t>(s.events));
  PutVarint(&out, static_cast<uint32_t>(s.interactive_custom));
  PutString(&out, s.exit_page);
  VisitAttrs visit = s.visit;
  ForEachVisitField([&](std::string* f) { PutString(&out, *f); }, visit);
  PutVarint(&out, s.seen.size());
  for (uint64_t h : s.seen) PutFixed64(&out, h);
  return out;
}

absl::StatusOr<SessionState> DecodeSessionState(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != kStateFormat) {
    return absl::InvalidArgumentError("session state: unknown format");
  }
  Reader r{bytes.substr(1)};
  SessionState s;
  s.session_id = r.Fixed64();
  s.visitor_id = r.Fixed64();
  s.site_id = r.Signed();
  s.start_ms = r.Signed();
  s.last_ms = s.start_ms + r.Signed();
  s.live_ms = s.start_ms + r.Signed();
  s.pageviews = static_cast<int32_t>(r.Varint());
  s.events = static_cast<int32_t>(r.Varint());
  s.interactive_custom = static_cast<int32_t>(r.Varint());
  s.exit_page = r.String();
  ForEachVisitField([&](std::string* f) { *f = r.String(); }, s.visit);
  const uint64_t n = r.Varint();
  if (!r.ok || n > r.in.size() / 8) {
    return absl::InvalidArgumentError("session state: truncated");
  }
  s.seen.reserve(n);
  for (uint64_t i = 0; i < n; ++i) s.seen.insert(r.Fixed64());
  if (!r.ok || !r.in.empty()) {
    return absl::InvalidArgumentError("session state: malformed");
  }
  return s;
}

absl::StatusOr<std::vector<bool>> Sessionizer::AssignBatch(
    absl::Span<Event> events, absl::Span<const uint64_t> prev_visitor_ids,
    const std::vector<bool>& interactive) {
  if (shared_ != nullptr) {
    return AssignShared(events, prev_visitor_ids, interactive);
  }
  std::vector<bool> kept(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    kept[i] = Assign(&events[i], prev_visitor_ids[i], interactive[i]);
  }
  return kept;
}

absl::StatusOr<std::vector<bool>> Sessionizer::AssignShared(
    absl::Span<Event> events, absl::Span<const uint64_t> prev_visitor_ids,
    const std::vector<bool>& interactive) {
  const size_t n = events.size();
  std::vector<bool> kept(n, false);
  if (n == 0) return kept;
  // What Apply() overwrites, to redo an event after a lost race.
  std::vector<uint64_t> orig_visitor(n);
  std::vector<VisitAttrs> orig_visit(n);
  for (size_t i = 0; i < n; ++i) {
    orig_visitor[i] = events[i].visitor_id;
    orig_visit[i] = events[i].visit;
  }
  std::vector<uint64_t> applied_key(n, 0);  // 0: not applied to a state

  struct Slot {
    SessionKey key;
    int64_t version = 0;
    std::optional<State> state;
    bool dirty = false;
  };
  const absl::Duration ttl = absl::Milliseconds(timeout_ms_) + kSharedTtlMargin;

  // Writers of one process take turns per key stripe (locked in order), so
  // compare-and-set races are only between workers.
  std::vector<size_t> stripes;
  for (size_t i = 0; i < n; ++i) {
    stripes.push_back(Key(events[i].site_id, events[i].visitor_id) % kStripes);
    if (prev_visitor_ids[i] != 0) {
      stripes.push_back(Key(events[i].site_id, prev_visitor_ids[i]) % kStripes);
    }
  }
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  for (size_t st : stripes) stripes_[st].Lock();
  struct Unlock {
    std::array<absl::Mutex, kStripes>& mu;
    const std::vector<size_t>& held;
    ~Unlock() {
      for (auto it = held.rbegin(); it != held.rend(); ++it) mu[*it].Unlock();
    }
  } unlock{stripes_, stripes};

  std::vector<size_t> todo(n);
  for (size_t i = 0; i < n; ++i) todo[i] = i;
  for (int attempt = 0; attempt < kMaxCasAttempts && !todo.empty(); ++attempt) {
    if (attempt > 0) {
      // Jittered, growing backoff: writers racing on one visitor spread out.
      thread_local std::minstd_rand rng(static_cast<uint32_t>(
          absl::HashOf(std::this_thread::get_id(), absl::Now())));
      absl::SleepFor(
          absl::Microseconds(rng() % (200u << std::min(attempt, 6))));
    }
    // One load for every distinct key of the events still to do.
    absl::flat_hash_map<uint64_t, Slot> slots;
    std::vector<SessionKey> keys;
    auto want = [&](int64_t site, uint64_t visitor) {
      if (visitor == 0) return;
      auto [it, added] = slots.try_emplace(Key(site, visitor));
      if (added) {
        it->second.key = SessionKey{site, visitor};
        keys.push_back(it->second.key);
      }
    };
    for (size_t i : todo) {
      want(events[i].site_id, orig_visitor[i]);
      want(events[i].site_id, prev_visitor_ids[i]);
    }
    absl::StatusOr<std::vector<SessionRecord>> loaded =
        Trip()->LoadSessions(keys);
    if (!loaded.ok()) return loaded.status();
    if (loaded->size() != keys.size()) {
      return absl::InternalError("sessions: coordinator answered short");
    }
    for (const SessionRecord& rec : *loaded) {
      Slot& slot = slots[Key(rec.key.site_id, rec.key.visitor_id)];
      slot.version = rec.version;
      if (rec.version != 0 && !rec.value.empty()) {
        absl::StatusOr<State> st = DecodeSessionState(rec.value);
        // An undecodable record is treated as absent (and overwritten).
        if (st.ok()) slot.state = *std::move(st);
      }
    }
    // Apply in order, with the rules of Assign().
    for (size_t i : todo) {
      Event* e = &events[i];
      e->visitor_id = orig_visitor[i];
      e->visit = orig_visit[i];
      applied_key[i] = 0;
      kept[i] = false;
      uint64_t key = Key(e->site_id, e->visitor_id);
      Slot* slot = &slots[key];
      State* s = nullptr;
      if (slot->state && e->ts_ms - slot->state->last_ms <= timeout_ms_) {
        s = &*slot->state;
      } else if (prev_visitor_ids[i] != 0) {
        const uint64_t pkey = Key(e->site_id, prev_visitor_ids[i]);
        Slot* pslot = &slots[pkey];
        if (pslot->state && e->ts_ms - pslot->state->last_ms <= timeout_ms_) {
          slot = pslot;
          key = pkey;
          s = &*pslot->state;
          e->visitor_id = prev_visitor_ids[i];
        }
      }
      if (e->is_engagement()) {
        if (s == nullptr) continue;  // dropped; liveness comes from MarkLive
        StampEngagement(*s, e);
        kept[i] = true;
        continue;  // applied_key stays 0: nothing to write for it
      }
      const bool fresh = s == nullptr;
      if (fresh) {
        slot->state = NewState(key, *e);
        s = &*slot->state;
      }
      Apply(s, fresh, e, interactive[i]);
      slot->dirty = true;
      applied_key[i] = key;
      kept[i] = true;
    }
    if (attempt == 0) {
      // Live marks before the session writes: should they fail, no session
      // has moved past events that will not be stored.
      std::vector<LiveMark> marks;
      marks.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        if (kept[i]) {
          marks.push_back(
              {events[i].site_id, events[i].visitor_id, events[i].ts_ms});
        }
      }
      if (!marks.empty()) {
        absl::Status s = Trip()->MarkLive(marks);
        if (!s.ok()) return s;
      }
    }
    if (before_store_for_test_) before_store_for_test_();
    std::vector<SessionWrite> writes;
    std::vector<uint64_t> write_keys;
    for (auto& [key, slot] : slots) {
      if (!slot.dirty) continue;
      writes.push_back(SessionWrite{.key = slot.key,
                                    .expected_version = slot.version,
                                    .value = EncodeSessionState(*slot.state),
                                    .ttl = ttl});
      write_keys.push_back(key);
    }
    absl::flat_hash_set<uint64_t> lost;
    if (!writes.empty()) {
      absl::StatusOr<std::vector<bool>> stored = Trip()->StoreSessions(writes);
      if (!stored.ok()) return stored.status();
      for (size_t w = 0; w < writes.size(); ++w) {
        if (w >= stored->size() || !(*stored)[w]) lost.insert(write_keys[w]);
      }
    }
    // Redo the events whose session lost a race (and engagement events that
    // read one, so that they carry the winner's state).
    std::vector<size_t> redo;
    for (size_t i : todo) {
      if (applied_key[i] != 0 && lost.contains(applied_key[i])) {
        redo.push_back(i);
      }
    }
    todo = std::move(redo);
  }
  if (!todo.empty()) {
    return absl::AbortedError(
        absl::StrCat("sessions: ", todo.size(),
                     " events lost the compare-and-set race ", kMaxCasAttempts,
                     " times (too many concurrent updates of one visitor)"));
  }
  return kept;
}

absl::Status Sessionizer::ForgetEvents(absl::Span<const Event> events) {
  if (shared_ == nullptr) {
    absl::flat_hash_set<uint64_t> ids;
    for (const Event& e : events) ids.insert(e.session_id);
    Forget(ids);
    return absl::OkStatus();
  }
  absl::flat_hash_set<uint64_t> seen;
  std::vector<SessionKey> keys;
  for (const Event& e : events) {
    if (seen.insert(Key(e.site_id, e.visitor_id)).second) {
      keys.push_back({e.site_id, e.visitor_id});
    }
  }
  return Trip()->DeleteSessions(keys);
}

absl::StatusOr<bool> Sessionizer::TouchShared(int64_t site_id,
                                              uint64_t visitor_id,
                                              uint64_t prev_visitor_id,
                                              int64_t ts_ms) {
  if (shared_ == nullptr) {
    return Touch(site_id, visitor_id, prev_visitor_id, ts_ms);
  }
  std::vector<SessionKey> keys;
  for (uint64_t id : {visitor_id, prev_visitor_id}) {
    if (id != 0) keys.push_back({site_id, id});
  }
  absl::StatusOr<std::vector<SessionRecord>> loaded =
      Trip()->LoadSessions(keys);
  if (!loaded.ok()) return loaded.status();
  for (const SessionRecord& rec : *loaded) {
    if (rec.version == 0) continue;
    absl::StatusOr<State> st = DecodeSessionState(rec.value);
    if (!st.ok() || ts_ms - st->last_ms > timeout_ms_) continue;
    LiveMark mark{site_id, rec.key.visitor_id, ts_ms};
    absl::Status s = Trip()->MarkLive(absl::MakeConstSpan(&mark, 1));
    if (!s.ok()) return s;
    return true;
  }
  return false;
}

absl::StatusOr<int64_t> Sessionizer::CountLiveShared(int64_t site_id,
                                                     int64_t since_ms) {
  if (shared_ == nullptr) return CountLive(site_id, since_ms);
  return Trip()->CountLive(site_id, since_ms);
}

}  // namespace analytics
