// Redis Coordinator (see redis_coordinator.h). Owns: the "an:c:" key layout,
// the Lua scripts, URL parsing and a small connection pool. The connection
// itself, reply helpers and SIGPIPE handling are net/redis_conn.h, shared with
// store/redis_store.cc.
#include "libanalytics/coord/redis_coordinator.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libanalytics/coord/coord_common.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/net/idle_pool.h"
#include "libanalytics/net/redis_conn.h"

namespace analytics {
namespace {

using Args = net::RedisArgs;

// KEYS[1]: session hash. ARGV: expected version, value, ttl_ms, new version.
// Versions are decimal strings written only by this script, so they compare
// as strings.
constexpr char kCasLua[] = R"lua(
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[4], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
)lua";

// KEYS[1]: lease. ARGV: holder, ttl_ms. Acquires a free lease or renews the
// holder's own; returns 1 when `holder` holds it after the call.
constexpr char kLeaseLua[] = R"lua(
local h = redis.call('GET', KEYS[1])
if not h then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if h == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
)lua";

// KEYS[1]: lease. ARGV: holder. Deletes it only when `holder` holds it.
constexpr char kReleaseLua[] = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

using net::ParseInt;
using net::ReplyInt;
using net::ReplyPtr;
using net::Str;
using Conn = net::RedisConn;

constexpr size_t kMaxIdle = 8;
constexpr absl::Duration kTrimEvery = absl::Seconds(10);

// An error reply (or an unexpected reply) as a Status. Errors that mean "the
// server cannot serve now" are Unavailable.
absl::Status ReplyError(const redisReply* r, absl::string_view what) {
  std::string msg =
      r != nullptr && r->type == REDIS_REPLY_ERROR
          ? Str(r)
          : absl::StrCat("unexpected reply type ", r == nullptr ? -1 : r->type);
  std::string full = absl::StrCat("coordinator: redis: ", what, ": ", msg);
  for (absl::string_view busy : {"LOADING", "BUSY", "MASTERDOWN", "READONLY",
                                 "TRYAGAIN", "CLUSTERDOWN"}) {
    if (absl::StartsWith(msg, busy)) return absl::UnavailableError(full);
  }
  if (absl::StartsWith(msg, "NOAUTH") || absl::StartsWith(msg, "WRONGPASS")) {
    return absl::PermissionDeniedError(absl::StrCat(
        full, " (redis://[user]:PASSWORD@host:port/db gives the password)"));
  }
  return absl::InternalError(full);
}

using Config = net::RedisUrl;

absl::StatusOr<Config> ParseUrl(std::string_view rest) {
  if (rest.find('?') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "coordinator: redis URL takes no parameters "
        "(redis://[[user]:password@]host[:port][/db])");
  }
  Config c;
  net::RedisUrlError e = net::ParseRedisUrl(rest, &c);
  switch (e.kind) {
    case net::RedisUrlError::kNone:
      return c;
    case net::RedisUrlError::kBadDb:
      return absl::InvalidArgumentError(absl::StrCat(
          "coordinator: redis URL: bad database number '", e.piece, "'"));
    case net::RedisUrlError::kUnclosedBracket:
    case net::RedisUrlError::kBadHost:
      return absl::InvalidArgumentError(
          absl::StrCat("coordinator: redis URL: bad host '", e.piece, "'"));
    case net::RedisUrlError::kBadPort:
      return absl::InvalidArgumentError(
          absl::StrCat("coordinator: redis URL: bad port '", e.piece, "'"));
    case net::RedisUrlError::kNoHost:
      break;
  }
  return absl::InvalidArgumentError(
      "coordinator: redis URL has no host (redis://host[:port][/db])");
}

struct Script {
  const char* text;
  std::string sha;
};

std::string SessionKeyName(const SessionKey& k) {
  return absl::StrCat("an:c:s:", k.site_id, ":", k.visitor_id);
}
std::string LiveKeyName(int64_t site) {
  return absl::StrCat("an:c:live:", site);
}
std::string LeaseKeyName(std::string_view name) {
  return absl::StrCat("an:c:lease:", AV(name));
}

class RedisCoordinator : public Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(
      std::string_view rest) {
    absl::StatusOr<Config> cfg = ParseUrl(rest);
    if (!cfg.ok()) return cfg.status();
    auto c = std::unique_ptr<RedisCoordinator>(new RedisCoordinator(*cfg));
    for (Script* s : {&c->cas_, &c->lease_, &c->release_}) {
      absl::StatusOr<std::vector<ReplyPtr>> r =
          c->Run({{"SCRIPT", "LOAD", s->text}});
      if (!r.ok()) return r.status();
      if ((*r)[0]->type != REDIS_REPLY_STRING) {
        return ReplyError((*r)[0].get(), "SCRIPT LOAD");
      }
      s->sha = Str((*r)[0].get());
    }
    absl::Status st = c->CheckVersion();
    if (!st.ok()) return st;
    return std::unique_ptr<Coordinator>(std::move(c));
  }

  std::string_view kind() const override { return "redis"; }

  absl::Status Ping() override {
    absl::StatusOr<std::vector<ReplyPtr>> r = Run({{"PING"}});
    if (!r.ok()) return r.status();
    if ((*r)[0]->type == REDIS_REPLY_ERROR) {
      return ReplyError((*r)[0].get(), "PING");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> SaltIfAbsent(int64_t day, std::string candidate,
                                           absl::Duration ttl) override {
    std::string key = absl::StrCat("an:c:salt:", day);
    std::string ttl_ms = absl::StrCat(coord::TtlMs(ttl));
    // The GET can only miss when the salt expired in between (tiny TTLs).
    for (int attempt = 0; attempt < 5; ++attempt) {
      absl::StatusOr<std::vector<ReplyPtr>> r =
          Run({{"SET", key, candidate, "NX", "PX", ttl_ms}, {"GET", key}});
      if (!r.ok()) return r.status();
      if ((*r)[0]->type == REDIS_REPLY_ERROR) {
        return ReplyError((*r)[0].get(), "SET salt");
      }
      const redisReply* got = (*r)[1].get();
      if (got->type == REDIS_REPLY_STRING) return Str(got);
      if (got->type != REDIS_REPLY_NIL) return ReplyError(got, "GET salt");
    }
    return absl::UnavailableError(
        "coordinator: redis: salt expired while it was being read");
  }

  absl::StatusOr<std::vector<SessionRecord>> LoadSessions(
      absl::Span<const SessionKey> keys) override {
    std::vector<SessionRecord> out(keys.size());
    if (keys.empty()) return out;
    std::vector<Args> cmds;
    cmds.reserve(keys.size());
    for (const SessionKey& k : keys) {
      cmds.push_back({"HMGET", SessionKeyName(k), "v", "d"});
    }
    absl::StatusOr<std::vector<ReplyPtr>> r = Run(cmds);
    if (!r.ok()) return r.status();
    for (size_t i = 0; i < keys.size(); ++i) {
      out[i].key = keys[i];
      const redisReply* rep = (*r)[i].get();
      if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        return ReplyError(rep, "HMGET session");
      }
      if (rep->element[0]->type == REDIS_REPLY_NIL) continue;
      if (!ReplyInt(rep->element[0], &out[i].version)) {
        return absl::DataLossError(absl::StrCat(
            "coordinator: redis: bad version in ", SessionKeyName(keys[i])));
      }
      out[i].value = Str(rep->element[1]);
    }
    return out;
  }

  absl::StatusOr<std::vector<bool>> StoreSessions(
      absl::Span<const SessionWrite> writes) override {
    absl::Status st = coord::CheckDistinctKeys(writes);
    if (!st.ok()) return st;
    std::vector<bool> out(writes.size(), false);
    if (writes.empty()) return out;
    std::vector<Args> cmds;
    cmds.reserve(writes.size());
    for (const SessionWrite& w : writes) {
      cmds.push_back({"EVALSHA", cas_.sha, "1", SessionKeyName(w.key),
                      absl::StrCat(w.expected_version), w.value,
                      absl::StrCat(coord::TtlMs(w.ttl)),
                      absl::StrCat(w.expected_version + 1)});
    }
    absl::StatusOr<std::vector<ReplyPtr>> r = Run(cmds);
    if (!r.ok()) return r.status();
    for (size_t i = 0; i < writes.size(); ++i) {
      int64_t v = 0;
      if (!ReplyInt((*r)[i].get(), &v)) {
        return ReplyError((*r)[i].get(), "session compare-and-set");
      }
      out[i] = v == 1;
    }
    return out;
  }

  absl::Status DeleteSessions(absl::Span<const SessionKey> keys) override {
    if (keys.empty()) return absl::OkStatus();
    Args del = {"DEL"};
    for (const SessionKey& k : keys) del.push_back(SessionKeyName(k));
    absl::StatusOr<std::vector<ReplyPtr>> r = Run({del});
    if (!r.ok()) return r.status();
    if ((*r)[0]->type != REDIS_REPLY_INTEGER) {
      return ReplyError((*r)[0].get(), "DEL sessions");
    }
    return absl::OkStatus();
  }

  absl::Status MarkLive(absl::Span<const LiveMark> marks) override {
    if (marks.empty()) return absl::OkStatus();
    // One ZADD GT per site (pairs apply in order, so a visitor twice in the
    // batch keeps its max), its expiry, and now and then a trim.
    absl::flat_hash_map<int64_t, size_t> site_cmd;
    absl::flat_hash_map<int64_t, int64_t> newest;
    std::vector<Args> cmds;
    for (const LiveMark& m : marks) {
      auto [it, added] = site_cmd.try_emplace(m.site_id, cmds.size());
      if (added) cmds.push_back({"ZADD", LiveKeyName(m.site_id), "GT"});
      Args& zadd = cmds[it->second];
      zadd.push_back(absl::StrCat(m.ts_ms));
      zadd.push_back(absl::StrCat(m.visitor_id));
      auto [n, fresh] = newest.try_emplace(m.site_id, m.ts_ms);
      if (!fresh) n->second = std::max(n->second, m.ts_ms);
    }
    const int64_t keep_ms = absl::ToInt64Milliseconds(coord::kLiveKeep);
    const absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&trim_mu_);
      for (const auto& [site, ts] : newest) {
        std::string key = LiveKeyName(site);
        cmds.push_back({"PEXPIRE", key, absl::StrCat(keep_ms)});
        absl::Time& last = last_trim_[site];
        if (now - last >= kTrimEvery) {
          last = now;
          cmds.push_back({"ZREMRANGEBYSCORE", key, "-inf",
                          absl::StrCat("(", ts - keep_ms)});
        }
      }
      if (last_trim_.size() > 100000) last_trim_.clear();
    }
    absl::StatusOr<std::vector<ReplyPtr>> r = Run(cmds);
    if (!r.ok()) return r.status();
    for (const ReplyPtr& rep : *r) {
      if (rep->type == REDIS_REPLY_ERROR) return ReplyError(rep.get(), "ZADD");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> CountLive(int64_t site_id,
                                    int64_t since_ms) override {
    absl::StatusOr<std::vector<ReplyPtr>> r =
        Run({{"ZCOUNT", LiveKeyName(site_id), absl::StrCat(since_ms), "+inf"}});
    if (!r.ok()) return r.status();
    int64_t n = 0;
    if (!ReplyInt((*r)[0].get(), &n))
      return ReplyError((*r)[0].get(), "ZCOUNT");
    return n;
  }

  absl::StatusOr<bool> TryLease(std::string_view name, std::string_view holder,
                                absl::Duration ttl) override {
    if (absl::Status st = coord::CheckLease(name, holder); !st.ok()) {
      return st;
    }
    absl::StatusOr<std::vector<ReplyPtr>> r =
        Run({{"EVALSHA", lease_.sha, "1", LeaseKeyName(name),
              std::string(holder), absl::StrCat(coord::TtlMs(ttl))}});
    if (!r.ok()) return r.status();
    int64_t v = 0;
    if (!ReplyInt((*r)[0].get(), &v)) return ReplyError((*r)[0].get(), "lease");
    return v == 1;
  }

  absl::Status ReleaseLease(std::string_view name,
                            std::string_view holder) override {
    if (absl::Status st = coord::CheckLease(name, holder); !st.ok()) {
      return st;
    }
    absl::StatusOr<std::vector<ReplyPtr>> r =
        Run({{"EVALSHA", release_.sha, "1", LeaseKeyName(name),
              std::string(holder)}});
    if (!r.ok()) return r.status();
    int64_t v = 0;
    if (!ReplyInt((*r)[0].get(), &v)) {
      return ReplyError((*r)[0].get(), "release lease");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> LeaseHolder(std::string_view name) override {
    absl::StatusOr<std::vector<ReplyPtr>> r =
        Run({{"GET", LeaseKeyName(name)}});
    if (!r.ok()) return r.status();
    const redisReply* rep = (*r)[0].get();
    if (rep->type == REDIS_REPLY_NIL) return std::string();
    if (rep->type != REDIS_REPLY_STRING) return ReplyError(rep, "GET lease");
    return Str(rep);
  }

  absl::StatusOr<std::vector<int64_t>> AddToCounters(
      absl::Span<const std::string> keys, absl::Span<const int64_t> costs,
      absl::Duration window, int64_t now_ms) override {
    absl::Status st = coord::CheckCounterArgs(keys.size(), costs.size());
    if (!st.ok()) return st;
    std::vector<int64_t> out(keys.size());
    if (keys.empty()) return out;
    int64_t window_ms = coord::WindowMs(window);
    std::string prefix =
        absl::StrCat("an:c:ctr:", window_ms, ":",
                     coord::WindowIndex(now_ms, window_ms), ":");
    // The key names the window, so expiry only reclaims memory: keep each
    // counter two windows after its last addition.
    std::string expire_ms = absl::StrCat(2 * window_ms);
    std::vector<Args> cmds;
    cmds.reserve(2 * keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string key = prefix + keys[i];
      cmds.push_back({"INCRBY", key, absl::StrCat(costs[i])});
      cmds.push_back({"PEXPIRE", std::move(key), expire_ms});
    }
    absl::StatusOr<std::vector<ReplyPtr>> r = Run(cmds);
    if (!r.ok()) return r.status();
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!ReplyInt((*r)[2 * i].get(), &out[i])) {
        return ReplyError((*r)[2 * i].get(), "INCRBY");
      }
    }
    return out;
  }

 private:
  explicit RedisCoordinator(Config cfg) : cfg_(std::move(cfg)) {
    cas_.text = kCasLua;
    lease_.text = kLeaseLua;
    release_.text = kReleaseLua;
  }

  // ZADD GT needs Redis 6.2. (Skipped where INFO is disabled.)
  absl::Status CheckVersion() {
    absl::StatusOr<std::vector<ReplyPtr>> r = Run({{"INFO", "server"}});
    if (!r.ok()) return r.status();
    std::string info = Str((*r)[0].get());
    size_t at = info.find("redis_version:");
    if ((*r)[0]->type == REDIS_REPLY_ERROR || at == std::string::npos) {
      return absl::OkStatus();
    }
    int major = 0, minor = 0;
    if (std::sscanf(info.c_str() + at, "redis_version:%d.%d", &major, &minor) ==
            2 &&
        (major < 6 || (major == 6 && minor < 2))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "coordinator: redis at ", cfg_.host, ":", cfg_.port, " is version ",
          major, ".", minor, "; the coordinator needs Redis 6.2 or newer"));
    }
    return absl::OkStatus();
  }

  // Runs the commands in one round trip on a pooled connection. An EVALSHA
  // answered NOSCRIPT (the server's script cache was flushed, or this is
  // another server now) loads its script and runs again: NOSCRIPT means it
  // did not run.
  absl::StatusOr<std::vector<ReplyPtr>> Run(const std::vector<Args>& cmds) {
    absl::StatusOr<std::unique_ptr<Conn>> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<std::vector<ReplyPtr>> r = (*c)->Pipeline(cmds);
    if (!r.ok()) return r.status();  // the broken connection is dropped
    std::vector<size_t> redo;
    for (size_t i = 0; i < cmds.size(); ++i) {
      const redisReply* rep = (*r)[i].get();
      if (rep->type == REDIS_REPLY_ERROR && cmds[i][0] == "EVALSHA" &&
          absl::StartsWith(absl::string_view(rep->str, rep->len), "NOSCRIPT")) {
        redo.push_back(i);
      }
    }
    if (!redo.empty()) {
      std::vector<Args> again = {{"SCRIPT", "LOAD", cas_.text},
                                 {"SCRIPT", "LOAD", lease_.text},
                                 {"SCRIPT", "LOAD", release_.text}};
      for (size_t i : redo) again.push_back(cmds[i]);
      absl::StatusOr<std::vector<ReplyPtr>> r2 = (*c)->Pipeline(again);
      if (!r2.ok()) return r2.status();
      for (size_t j = 0; j < 3; ++j) {
        if ((*r2)[j]->type != REDIS_REPLY_STRING) {
          return ReplyError((*r2)[j].get(), "SCRIPT LOAD");
        }
      }
      for (size_t j = 0; j < redo.size(); ++j) {
        (*r)[redo[j]] = std::move((*r2)[3 + j]);
      }
    }
    Release(*std::move(c));
    return r;
  }

  absl::StatusOr<std::unique_ptr<Conn>> Acquire() {
    std::unique_ptr<Conn> c =
        idle_.Take([](const Conn& conn) { return conn.LooksAlive(); });
    if (c != nullptr) return c;
    return Connect();
  }

  void Release(std::unique_ptr<Conn> c) {
    if (c == nullptr || c->broken()) return;
    idle_.Put(std::move(c));
  }

  absl::StatusOr<std::unique_ptr<Conn>> Connect() {
    absl::StatusOr<std::unique_ptr<Conn>> conn = net::ConnectRedis(
        cfg_.host, cfg_.port, timeval{3, 0}, timeval{10, 0}, "coordinator");
    if (!conn.ok()) return conn.status();
    std::vector<Args> setup;
    if (!cfg_.password.empty()) {
      setup.push_back(net::RedisAuthArgs(cfg_.user, cfg_.password));
    }
    if (cfg_.db != 0) setup.push_back({"SELECT", absl::StrCat(cfg_.db)});
    if (setup.empty()) return conn;
    absl::StatusOr<std::vector<ReplyPtr>> r = (*conn)->Pipeline(setup);
    if (!r.ok()) return r.status();
    for (const ReplyPtr& rep : *r) {
      if (rep->type == REDIS_REPLY_ERROR) {
        // Never echo the password: name the step only.
        return absl::PermissionDeniedError(
            absl::StrCat("coordinator: redis at ", cfg_.host, ":", cfg_.port,
                         " refused AUTH/SELECT: ",
                         absl::string_view(rep->str, rep->len).substr(0, 80)));
      }
    }
    return conn;
  }

  const Config cfg_;
  Script cas_, lease_, release_;
  net::IdlePool<Conn> idle_{kMaxIdle};
  absl::Mutex trim_mu_;
  absl::flat_hash_map<int64_t, absl::Time> last_trim_ ABSL_GUARDED_BY(trim_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> OpenRedisCoordinator(
    std::string_view rest) {
  return RedisCoordinator::Open(rest);
}

}  // namespace analytics
