// PostgreSQL Store: store.h on a PostgreSQL server (15+), through libpq only.
//
// URL: "postgres://user:pass@host:port/db?param=..." (or "postgresql://"),
// given to libpq as a connection URI (connect_timeout defaults to 10 s).
//
// Schema (versioned migrations, table schema_version, like SQLite's):
//   sites, api_keys      identity ids, UNIQUE domain/short_id/secret_hash
//   salts(day, salt)     salt as bytea
//   meta(key, value)     user keys stored as "user:<key>", value bytea
//   rollup_checkpoints(worker, seq)   one row per worker (see below)
//   config_docs          identity ids, (kind, site_id) indexed, json as text
//   job_runs             PRIMARY KEY (job, site_id, period)
//   rollups              PRIMARY KEY (site_id, level, dim, bucket, value),
//                        metrics bigint, visitors bytea (sketch/hll.h format)
//   events               PARTITION BY RANGE (ts_ms), one partition per UTC
//                        month named events_YYYYMM, indexes on seq,
//                        (worker, seq), (site_id, ts_ms) and
//                        (site_id, session_start_ms).
//   events_seq           the sequence that numbers events.
//
// Partitioning: before a batch is inserted, the partitions of the months it
// touches are created when missing ("CREATE TABLE IF NOT EXISTS events_YYYYMM
// PARTITION OF events FOR VALUES FROM (start_ms) TO (end_ms)") in a short
// transaction of their own, serialized between processes by an advisory lock;
// the months known to exist are cached per store. There is no DEFAULT
// partition: an insert into a month without a partition is an error, never a
// silent misplacement. Retention can drop whole months.
//
// Group commit: AppendEvents() writes the whole batch in one transaction: it
// takes n values of events_seq ("SELECT nextval('events_seq') FROM
// generate_series(1, n)"), then streams the rows with COPY FROM STDIN (text
// format, escaped) with seq given explicitly, then commits. Seqs are unique
// across partitions and never reused (RemoveSite cannot make them reusable).
// With one appending process (the engine's committer thread) seqs increase in
// commit order. With several appending processes they do NOT: a sequence
// hands out values at nextval time, so a later-committed batch may hold
// smaller seqs than an earlier one, and a single global checkpoint could skip
// events. Checkpoints are therefore per worker: each worker (one process,
// whose appends are serialized) folds only the events it appended itself, and
// within one worker seqs do increase in commit order.
// ScanEventsAfter(after, worker) returns that worker's rows with seq > after
// in seq order.
//
// Rollups: ApplyRollups() merges deltas in one transaction. Metrics are added
// by "INSERT ... ON CONFLICT DO UPDATE SET x = rollups.x + EXCLUDED.x".
// Sketches cannot be merged in SQL, so they are read-modify-written: under a
// transaction-level advisory lock (rollup writers are serialized anyway by the
// checkpoint row), the existing sketches of the delta keys are read with one
// "SELECT ... FOR UPDATE" (keys passed as arrays and unnest()ed), merged in
// C++ with HyperLogLog::MergeSerialized, and written back as bytea with the
// same upsert. The checkpoint is written in the same transaction.
//
// Migrations: run in one transaction holding pg_advisory_xact_lock(constant),
// so several workers starting at once migrate safely (the others wait, then
// see the new version). A database newer than this build is
// FailedPrecondition.
//
// Connections: a mutex-protected pool (idle connections are reused, new ones
// opened on demand, at most kMaxIdle kept). A connection found broken (e.g.
// the backend was terminated) is dropped; a call whose first statement fails
// on a broken connection is retried once on a fresh one, so a restarted
// server or a killed backend is recovered on the next call. Scans read with a
// cursor in batches, so callbacks may call the store (on another connection).
//
// All statements are parameterised (PQexecParams); nothing is concatenated
// into SQL but constant text. Errors are absl::Status: UnavailableError for
// connection problems (the libpq message, password removed), AlreadyExists
// for unique violations, InternalError otherwise. Text must be valid UTF-8
// (the ingest layer checks it), else the call fails; NUL bytes, which
// PostgreSQL text cannot hold, are stored as U+FFFD. Binary values (salts,
// meta values, sketches) are bytea and kept exactly.
#ifndef ANALYTICS_STORE_POSTGRES_STORE_H_
#define ANALYTICS_STORE_POSTGRES_STORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "analytics/store.h"

namespace analytics {

// Connects to the database at `url` ("postgres://..." or "postgresql://...")
// and brings its schema up to date.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(std::string_view url);

// The schema version this build creates and understands.
int PostgresStoreSchemaVersion();

// The SQL of migration `version` (1..PostgresStoreSchemaVersion()), nullptr
// otherwise; for tests that build an older database.
const char* PostgresStoreMigrationSql(int version);

// Test hook: the next `n` event appends of any PostgreSQL store in this
// process lose the answer to their COMMIT, as when the connection drops
// before it arrives (a server restart): the transaction committed, or with
// committed=false it was rolled back; either way Unavailable comes back
// where the answer would have.
void DropPostgresAppendAnswersForTest(int n, bool committed = true);

}  // namespace analytics

#endif  // ANALYTICS_STORE_POSTGRES_STORE_H_
