// SQLite Store: the default durable implementation of store.h.
//
// Owns: the SQLite schema of analytics data (sites, api keys, salts, events,
// rollups, per-worker rollup checkpoints, meta, configuration documents, job
// ledger) and its versioned migrations, and the mapping of Store calls to SQL.
// ClaimJobRun runs in one BEGIN IMMEDIATE transaction, which holds the
// database's write lock, so it is atomic across processes sharing the file.
//
// Durability: the database runs in WAL mode with synchronous=NORMAL. A commit
// appends to the WAL file through write() before COMMIT returns, so whatever a
// call that returned OK wrote survives a crash of the process (kill -9), which
// is what store.h promises. It is NOT guaranteed to survive a power loss or an
// OS crash: the last transactions may be lost then (the database stays
// consistent), because the WAL is fsync'ed only at checkpoints.
//
// Concurrency: one write connection guarded by a mutex; reads use a small pool
// of read connections so queries do not wait for the writer (WAL readers see
// the last committed snapshot). busy_timeout is 5000 ms for other processes.
//
// Schema migrations: table schema_version holds the versions applied; each
// migration runs in its own transaction. Opening a database whose version is
// newer than this build knows fails with FailedPrecondition.
#ifndef ANALYTICS_STORE_SQLITE_STORE_H_
#define ANALYTICS_STORE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "analytics/store.h"

namespace analytics {

// Opens (creating it and its parent directory when missing) the SQLite
// database at `path` and brings its schema up to date.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

// The schema version this build creates and understands.
int SqliteStoreSchemaVersion();

// The SQL of the migration that brings a database to `version` (1-based), or
// nullptr when there is no such migration. For tests of old databases.
const char* SqliteStoreMigrationSql(int version);

}  // namespace analytics

#endif  // ANALYTICS_STORE_SQLITE_STORE_H_
