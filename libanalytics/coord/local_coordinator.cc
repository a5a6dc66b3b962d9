// Local Coordinator (see local_coordinator.h). Owns the in-memory maps.
#include "libanalytics/coord/local_coordinator.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libanalytics/coord/coord_common.h"

namespace analytics {
namespace {

using SessionMapKey = std::pair<int64_t, uint64_t>;

struct Salt {
  std::string salt;
  absl::Time expires;
};
struct Session {
  int64_t version = 0;
  std::string value;
  absl::Time expires;
};
struct Lease {
  std::string holder;
  absl::Time expires;
};
struct Counter {
  int64_t window_ms = 0;
  int64_t window = 0;
  int64_t count = 0;
};
struct SiteLive {
  int64_t newest = INT64_MIN;
  absl::flat_hash_map<uint64_t, int64_t> ts;  // visitor -> latest ts_ms
};

constexpr absl::Duration kSweepEvery = absl::Minutes(1);

class LocalCoordinator : public Coordinator {
 public:
  std::string_view kind() const override { return "local"; }
  absl::Status Ping() override { return absl::OkStatus(); }

  absl::StatusOr<std::string> SaltIfAbsent(int64_t day, std::string candidate,
                                           absl::Duration ttl) override {
    absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    MaybeSweep(now);
    Salt& s = salts_[day];
    if (s.expires <= now) {
      s.salt = std::move(candidate);
      s.expires = now + absl::Milliseconds(coord::TtlMs(ttl));
    }
    return s.salt;
  }

  absl::StatusOr<std::vector<SessionRecord>> LoadSessions(
      absl::Span<const SessionKey> keys) override {
    absl::Time now = absl::Now();
    std::vector<SessionRecord> out(keys.size());
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      out[i].key = keys[i];
      auto it = sessions_.find({keys[i].site_id, keys[i].visitor_id});
      if (it != sessions_.end() && it->second.expires > now) {
        out[i].version = it->second.version;
        out[i].value = it->second.value;
      }
    }
    return out;
  }

  absl::StatusOr<std::vector<bool>> StoreSessions(
      absl::Span<const SessionWrite> writes) override {
    absl::Status st = coord::CheckDistinctKeys(writes);
    if (!st.ok()) return st;
    absl::Time now = absl::Now();
    std::vector<bool> out(writes.size(), false);
    absl::MutexLock lock(&mu_);
    MaybeSweep(now);
    for (size_t i = 0; i < writes.size(); ++i) {
      const SessionWrite& w = writes[i];
      SessionMapKey k{w.key.site_id, w.key.visitor_id};
      auto it = sessions_.find(k);
      int64_t current = 0;
      if (it != sessions_.end() && it->second.expires > now) {
        current = it->second.version;
      }
      if (current != w.expected_version) continue;
      Session& s = it != sessions_.end() ? it->second : sessions_[k];
      s.version = w.expected_version + 1;
      s.value = w.value;
      s.expires = now + absl::Milliseconds(coord::TtlMs(w.ttl));
      out[i] = true;
    }
    return out;
  }

  absl::Status DeleteSessions(absl::Span<const SessionKey> keys) override {
    absl::MutexLock lock(&mu_);
    for (const SessionKey& k : keys) {
      sessions_.erase(SessionMapKey{k.site_id, k.visitor_id});
    }
    return absl::OkStatus();
  }

  absl::Status MarkLive(absl::Span<const LiveMark> marks) override {
    absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    MaybeSweep(now);
    for (const LiveMark& m : marks) {
      SiteLive& site = live_[m.site_id];
      int64_t& ts = site.ts.try_emplace(m.visitor_id, m.ts_ms).first->second;
      ts = std::max(ts, m.ts_ms);
      site.newest = std::max(site.newest, m.ts_ms);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> CountLive(int64_t site_id,
                                    int64_t since_ms) override {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(site_id);
    if (it == live_.end()) return 0;
    int64_t n = 0;
    for (const auto& [visitor, ts] : it->second.ts) n += ts >= since_ms;
    return n;
  }

  absl::StatusOr<bool> TryLease(std::string_view name, std::string_view holder,
                                absl::Duration ttl) override {
    if (absl::Status st = coord::CheckLease(name, holder); !st.ok()) {
      return st;
    }
    absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    MaybeSweep(now);
    Lease& l = leases_[std::string(name)];
    if (l.expires > now && l.holder != holder) return false;
    l.holder = std::string(holder);
    l.expires = now + absl::Milliseconds(coord::TtlMs(ttl));
    return true;
  }

  absl::Status ReleaseLease(std::string_view name,
                            std::string_view holder) override {
    if (absl::Status st = coord::CheckLease(name, holder); !st.ok()) {
      return st;
    }
    absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(std::string(name));
    if (it != leases_.end() && it->second.expires > now &&
        it->second.holder == holder) {
      leases_.erase(it);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> LeaseHolder(std::string_view name) override {
    absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(std::string(name));
    if (it == leases_.end() || it->second.expires <= now) return std::string();
    return it->second.holder;
  }

  absl::StatusOr<std::vector<int64_t>> AddToCounters(
      absl::Span<const std::string> keys, absl::Span<const int64_t> costs,
      absl::Duration window, int64_t now_ms) override {
    absl::Status st = coord::CheckCounterArgs(keys.size(), costs.size());
    if (!st.ok()) return st;
    int64_t window_ms = coord::WindowMs(window);
    int64_t index = coord::WindowIndex(now_ms, window_ms);
    std::vector<int64_t> out(keys.size());
    absl::MutexLock lock(&mu_);
    MaybeSweep(absl::Now());
    for (size_t i = 0; i < keys.size(); ++i) {
      // One counter per (key, window length); a new window replaces it.
      Counter& c = counters_[std::make_pair(keys[i], window_ms)];
      if (c.window_ms != window_ms || c.window != index) {
        c = Counter{window_ms, index, 0};
      }
      c.count += costs[i];
      out[i] = c.count;
    }
    return out;
  }

 private:
  void MaybeSweep(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (now - last_sweep_ < kSweepEvery) return;
    last_sweep_ = now;
    absl::erase_if(salts_,
                   [&](const auto& e) { return e.second.expires <= now; });
    absl::erase_if(sessions_,
                   [&](const auto& e) { return e.second.expires <= now; });
    absl::erase_if(leases_,
                   [&](const auto& e) { return e.second.expires <= now; });
    int64_t keep_ms = absl::ToInt64Milliseconds(coord::kLiveKeep);
    for (auto& [site, live] : live_) {
      int64_t cutoff = live.newest - keep_ms;
      absl::erase_if(live.ts, [&](const auto& e) { return e.second < cutoff; });
    }
    absl::erase_if(live_, [](const auto& e) { return e.second.ts.empty(); });
    int64_t now_ms = absl::ToUnixMillis(now);
    absl::erase_if(counters_, [&](const auto& e) {
      // Windows that ended more than one window ago (by the wall clock).
      const Counter& c = e.second;
      return (c.window + 2) * c.window_ms < now_ms;
    });
  }

  absl::Mutex mu_;
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::Now();
  absl::flat_hash_map<int64_t, Salt> salts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SessionMapKey, Session> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, SiteLive> live_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Lease> leases_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<std::string, int64_t>, Counter> counters_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Coordinator> NewLocalCoordinator() {
  return std::make_unique<LocalCoordinator>();
}

}  // namespace analytics
