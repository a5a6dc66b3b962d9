// Session assignment and stamping; see sessionizer.h.
#include "libanalytics/session/sessionizer.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "libanalytics/sketch/hll.h"

namespace analytics {

Sessionizer::Sessionizer(absl::Duration timeout)
    : timeout_ms_(absl::ToInt64Milliseconds(timeout)) {}

uint64_t Sessionizer::Key(int64_t site_id, uint64_t visitor_id) {
  return HyperLogLog::HashKey(
      visitor_id ^ (static_cast<uint64_t>(site_id) * 0x9E3779B97F4A7C15ULL));
}

namespace {
uint64_t SeenHash(char kind, std::string_view s) {
  return absl::HashOf(kind, s);
}
}  // namespace

bool Sessionizer::Assign(Event* e, uint64_t prev_visitor_id, bool interactive) {
  int64_t wm = watermark_ms_.load(std::memory_order_relaxed);
  while (e->ts_ms > wm && !watermark_ms_.compare_exchange_weak(
                              wm, e->ts_ms, std::memory_order_relaxed)) {
  }
  if ((assigns_.fetch_add(1, std::memory_order_relaxed) & 0xFFFF) == 0xFFFF) {
    Sweep();
  }

  const bool pageview = e->is_pageview();
  uint64_t key = Key(e->site_id, e->visitor_id);
  Shard* shard = &ShardFor(key);
  shard->mu.Lock();
  auto it = shard->sessions.find(key);
  State* s = nullptr;
  if (it != shard->sessions.end() &&
      e->ts_ms - it->second->last_ms <= timeout_ms_) {
    s = it->second.get();
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
        e->ts_ms - pit->second->last_ms <= timeout_ms_) {
      shard = pshard;
      key = pkey;
      it = pit;
      s = pit->second.get();
      e->visitor_id = prev_visitor_id;
    } else if (pshard != shard) {
      pshard->mu.Unlock();
      shard->mu.Lock();
      it = shard->sessions.find(key);
    }
  }

  int32_t prev_bounce = 0;
  int64_t prev_duration = 0;
  if (e->is_engagement()) {
    if (s == nullptr) {
      shard->mu.Unlock();
      return false;
    }
    s->live_ms = std::max(s->live_ms, e->ts_ms);
    e->visit = s->visit;
    e->first_in_session = e->first_page = e->first_name = false;
    e->session_id = s->session_id;
    e->session_start_ms = s->start_ms;
    e->s_pageviews = s->pageviews;
    e->s_events = s->events;
    e->s_bounce = s->pageviews == 1 && s->interactive_custom == 0;
    e->s_duration_ms = s->last_ms - s->start_ms;
    e->s_exit_page = s->exit_page;
    e->d_bounce = 0;
    e->d_duration_ms = 0;
    shard->mu.Unlock();
    return true;
  }
  if (s == nullptr) {
    auto fresh = std::make_unique<State>();
    s = fresh.get();
    s->visitor_id = e->visitor_id;
    s->start_ms = e->ts_ms;
    s->last_ms = e->ts_ms;
    s->site_id = e->site_id;
    s->session_id = HyperLogLog::HashKey(key ^ static_cast<uint64_t>(e->ts_ms));
    e->visit.entry_page = e->page;
    s->visit = e->visit;
    if (it != shard->sessions.end()) {
      it->second = std::move(fresh);
    } else {
      shard->sessions.emplace(key, std::move(fresh));
    }
    e->first_in_session = true;
  } else {
    prev_bounce = (s->pageviews == 1 && s->interactive_custom == 0) ? 1 : 0;
    prev_duration = s->last_ms - s->start_ms;
    e->first_in_session = false;
    e->visit = s->visit;
  }

  s->events++;
  if (pageview) {
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
  shard->mu.Unlock();
  return true;
}

void Sessionizer::Restore(const Event& last) {
  uint64_t key = Key(last.site_id, last.visitor_id);
  Shard& shard = ShardFor(key);
  absl::MutexLock l(&shard.mu);
  auto s = std::make_unique<State>();
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
  s->exit_page = last.s_exit_page;
  s->visit = last.visit;
  s->seen.insert(SeenHash('p', last.page));
  s->seen.insert(SeenHash('n', last.name));
  shard.sessions[key] = std::move(s);
  int64_t wm = watermark_ms_.load();
  while (last.ts_ms > wm &&
         !watermark_ms_.compare_exchange_weak(wm, last.ts_ms)) {
  }
}

bool Sessionizer::Touch(int64_t site_id, uint64_t visitor_id,
                        uint64_t prev_visitor_id, int64_t ts_ms) {
  for (uint64_t id : {visitor_id, prev_visitor_id}) {
    if (id == 0) continue;
    const uint64_t key = Key(site_id, id);
    Shard& shard = ShardFor(key);
    absl::MutexLock l(&shard.mu);
    auto it = shard.sessions.find(key);
    if (it != shard.sessions.end() &&
        ts_ms - it->second->last_ms <= timeout_ms_) {
      it->second->live_ms = std::max(it->second->live_ms, ts_ms);
      return true;
    }
  }
  return false;
}

int64_t Sessionizer::CountLive(int64_t site_id, int64_t since_ms) const {
  absl::flat_hash_set<uint64_t> visitors;
  for (const Shard& shard : shards_) {
    absl::MutexLock l(&shard.mu);
    for (const auto& [key, s] : shard.sessions) {
      if (s->site_id == site_id && s->live_ms >= since_ms) {
        visitors.insert(s->visitor_id);
      }
    }
  }
  return static_cast<int64_t>(visitors.size());
}

size_t Sessionizer::Forget(const absl::flat_hash_set<uint64_t>& session_ids) {
  size_t dropped = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock l(&shard.mu);
    absl::erase_if(shard.sessions, [&](const auto& kv) {
      if (session_ids.contains(kv.second->session_id)) {
        ++dropped;
        return true;
      }
      return false;
    });
  }
  return dropped;
}

size_t Sessionizer::Sweep() {
  const int64_t cutoff = watermark_ms_.load() - timeout_ms_;
  size_t evicted = 0;
  for (Shard& shard : shards_) {
    absl::MutexLock l(&shard.mu);
    absl::erase_if(shard.sessions, [&](const auto& kv) {
      if (kv.second->last_ms < cutoff) {
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
    absl::MutexLock l(&shard.mu);
    n += shard.sessions.size();
  }
  return n;
}

}  // namespace analytics
