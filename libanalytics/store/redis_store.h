// Redis Store (hiredis, C API). Owns: the Redis key layout below, the binary
// event encoding, URL parsing and a small connection pool.
//
// URL: redis://[[user]:password@]host:port[/db][?allow_no_aof=1]
//      [&timeout_ms=N]  (socket timeout of each command, default 60000)
//
// Durability. store.h requires that acknowledged writes survive a crash of
// analyticsd. Redis itself survives a kill -9 of analyticsd, but its data
// survives a crash of Redis (or of the machine) only with the append-only file
// (AOF). Open() therefore runs `CONFIG GET appendonly` (falling back to
// `INFO persistence` where CONFIG is disabled) and fails with
// FailedPrecondition when AOF is off, unless the URL has ?allow_no_aof=1 (then
// it warns on stderr). Enable it with `appendonly yes` and `appendfsync
// everysec` (default) or `appendfsync always`. With everysec a power loss or
// OS crash can lose up to about one second of acknowledged writes (a crash of
// the redis-server process alone does not: the data is in the OS page cache);
// only `always` gives the guarantee SQLite's WAL gives.
//
// Key layout (one logical database, selected by /db):
//   seq                    counter: last event seq (INCRBY; never reused)
//   ev:{site}              STREAM, the primary record of raw events: entry id
//                          "<seq>-0", fields "ts" (ts_ms), "w" (Event::worker;
//                          absent = 0) and "e" (the event, binary encoded, see
//                          redis_store.cc)
//   evts:{site}            ZSET score ts_ms, member seq as 20 zero-padded
//                          digits: ZRANGEBYSCORE yields (ts_ms, seq) order
//   evss:{site}            ZSET score session_start_ms, member "<seq20>:<ts>"
//                          (for EventScan::include_session_starts)
//   evseq, evseq:{worker}  ZSET score seq, member "<site>:<seq20>": the events
//                          of worker 0 (evseq) or of another worker, for
//                          ScanEventsAfter(after, worker) across sites;
//                          evworkers: SET of the workers other than 0
//   site_id, apikey_id     counters for ids
//   site:{id}              HASH domain short_id timezone created_ms
//                          allowed_origins;  sites: ZSET of ids (score id)
//   site_domain, site_short HASH domain/short_id -> id (unique constraints)
//   apikey:{id}            HASH of the record; apikeys: ZSET of ids;
//   apikey_hash            HASH secret_hash -> id; site_apikeys:{site}: SET
//   meta                   HASH of user meta (internal keys live elsewhere)
//   salts                  HASH day -> salt
//   rui:{site}:{level}:{len(dim)}:{dim}
//                          ZSET score bucket, member "<bucket>:<value>": the
//                          cells of one (site, level, dim); ruidx: SET of them
//   ru:{same suffix}:{member}
//                          HASH of one rollup cell: pv ev vi bo du sp (metrics)
//                          and v (the serialized sketch/hll.h sketch), n
//                          (version of v: a value of the counter ruver)
//   atok:{token}           STRING first seq of an appended batch (1 h TTL)
//   doc:{id}               HASH kind site_id json updated_ms of a config doc;
//                          docs: ZSET of ids; site_docs:{site}: SET of ids;
//                          doc_id: counter
//   jr:{len(job)}:{job}:{site}:{period}
//                          HASH of a job ledger row (JobRun fields); jrz and
//                          jrz:{job}: ZSET score updated_ms, member the row key
//   rollup_checkpoints     HASH worker -> seq (per-worker checkpoints); the
//                          STRING rollup_checkpoint of older databases is read
//                          as worker 0's until worker 0 writes its own
//
// Atomicity. Every multi-key write is one Lua script (AppendEvents: INCRBY seq
// then XADD/ZADD for the whole batch, one round trip; AddSite, AddApiKey,
// RemoveSite, EraseSiteData, config docs, ClaimJobRun, UpdateJobRun, ...), so
// it is all-or-nothing and unique constraints and claims hold across
// processes. DeleteEventsBefore deletes in scripts of 5000 events each. (Redis
// does not roll a script back when a command in it fails, so the append script
// checks key types and stream tops before its first write.) ApplyRollups is
// optimistic: read the touched cells' sketches and versions (one pipelined
// round trip), merge in C++, then one script call that checks the versions
// and writes the metrics (HINCRBY), the merged sketches, the index updates and
// the checkpoint, or writes nothing when another writer changed a cell
// (retried). Not WATCH: on Redis 7.0 WATCH of n keys costs O(n^2) and a
// rollup of 40k cells blocked the server for over a minute.
//
// Timeouts. Each command has a socket timeout (?timeout_ms, default 60 s).
// A timeout is reported as Unavailable (never acknowledged). AppendEvents
// sends a random token with each batch and resends it once on a fresh
// connection after an I/O error; the script returns the first seq already
// given to that token (atok:{token}), so a batch whose first send did reach
// Redis is not written twice. ApplyRollups' script also checks the worker's
// checkpoint as read; a call whose reply was lost is remembered, and when
// the engine sends its deltas again (merged with newer ones) and the stored
// checkpoint shows it landed, its metrics are subtracted from the resend.
//
// Deviation from the issue: unique visitors are kept in our own sketch format
// (sketch/hll.h), not in Redis's HyperLogLog (PFADD/PFMERGE): RollupRow carries
// a serialized sketch that the query layer merges, and a Redis HLL would need
// the raw visitor hashes, which rollup deltas do not carry.
//
// Errors: absl::Status; Unavailable for connection and I/O errors. A broken
// connection is dropped and the next call connects again; idle pooled
// connections are checked (poll) before reuse, so a server-side CLIENT KILL or
// timeout costs no failed call.
//
// Limits: a single Redis instance or a primary (scripts build key names, so
// not Redis Cluster). An ApplyRollups script holds Redis for ~15 us per cell
// (0.6 s for a 40,000-cell bulk-load checkpoint); past Redis's 5 s busy
// threshold (~300,000 cells) other clients get BUSY errors until it ends.
// ScanEvents first reads the (ts, seq) ids of all matching events (about 30
// bytes each), then the events in pipelined chunks of 512.
//
// Thread-safe: each call takes a connection from the pool (new ones are made
// on demand; up to 8 idle ones are kept). Scan callbacks run while the scan
// holds its connection, so they may call the store.
#ifndef ANALYTICS_STORE_REDIS_STORE_H_
#define ANALYTICS_STORE_REDIS_STORE_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "analytics/store.h"

namespace analytics {

// `rest` is the URL after "redis://".
absl::StatusOr<std::unique_ptr<Store>> OpenRedisStore(std::string_view rest);

}  // namespace analytics

#endif  // ANALYTICS_STORE_REDIS_STORE_H_
