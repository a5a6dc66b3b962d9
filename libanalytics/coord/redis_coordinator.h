// Redis Coordinator: coordinator.h on Redis 6.2+ through hiredis.
//
// URL: redis://[[user]:password@]host[:port][/db]   (port 6379, db 0)
//
// Key layout: every key starts with "an:c:", a prefix no key of the Redis
// Store (store/redis_store.h) uses, so both may share one database.
//   an:c:salt:{day}             STRING salt; SET NX PX then GET (pipelined)
//   an:c:s:{site}:{visitor}     HASH v (version), d (value); PEXPIRE ttl.
//                               Written by a compare-and-set Lua script
//                               (EVALSHA; NOSCRIPT reloads it and retries)
//   an:c:live:{site}            ZSET member visitor, score ts_ms (ZADD GT);
//                               trimmed to coord::kLiveKeep behind the newest
//                               mark at most every 10 s per site and process
//   an:c:lease:{name}           STRING holder, PX ttl; acquired/renewed and
//                               released by token-checking Lua scripts
//   an:c:ctr:{window_ms}:{window index}:{key}
//                               counter, INCRBY + PEXPIRE (two windows)
// Every batch method is one pipelined round trip. TTLs follow Redis's clock.
//
// Durability: none is needed (sessions, salts of the day and leases are
// rebuilt or re-elected after a Redis restart), so AOF is not required,
// unlike the Store.
//
// Connections: a mutex-protected pool (new connections on demand, up to 8
// idle ones kept; an idle one found closed is dropped before use). An I/O
// error drops the connection and returns Unavailable naming the cause; the
// next call connects again, so the coordinator recovers by itself when Redis
// is back. Thread-safe.
#ifndef ANALYTICS_COORD_REDIS_COORDINATOR_H_
#define ANALYTICS_COORD_REDIS_COORDINATOR_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "analytics/coordinator.h"

namespace analytics {

// `rest` is the URL after "redis://". Unavailable when Redis cannot be
// reached.
absl::StatusOr<std::unique_ptr<Coordinator>> OpenRedisCoordinator(
    std::string_view rest);

}  // namespace analytics

#endif  // ANALYTICS_COORD_REDIS_COORDINATOR_H_
