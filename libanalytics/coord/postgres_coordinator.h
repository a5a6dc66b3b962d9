// PostgreSQL Coordinator: coordinator.h on PostgreSQL 15+ through libpq.
//
// URL: "postgres://…" or "postgresql://…", given to libpq as a connection URI
// (connect_timeout 10 s unless the URL says otherwise).
//
// Tables (UNLOGGED: their content is not worth WAL and is lost on a server
// crash, like Redis without persistence; all named coord_*, next to the
// PostgreSQL Store's tables, see store/postgres_store.h):
//   coord_salts(day PK, salt bytea, expires_ms)
//   coord_sessions(site_id, visitor_id, version, value bytea, expires_ms),
//                  PK (site_id, visitor_id); visitor ids are stored as the
//                  bigint with the same bits
//   coord_live(site_id, visitor_id, ts_ms), PK (site_id, visitor_id), index
//                  (site_id, ts_ms)
//   coord_leases(name PK, holder, expires_ms)
//   coord_counters(key, window_ms, window, count, expires_ms),
//                  PK (key, window_ms, window)
// They are created with CREATE … IF NOT EXISTS in one transaction holding
// pg_advisory_xact_lock (a key of its own), so workers starting at once are
// safe. Expiry times follow the server's clock (clock_timestamp()), so workers
// with skewed clocks agree; an expired row counts as absent at once and is
// deleted by a sweep that each coordinator runs at most once a minute.
//
// Every batch method is one statement: keys travel as arrays and are
// unnest()ed. StoreSessions is one INSERT … ON CONFLICT DO UPDATE … WHERE
// version = expected RETURNING the keys written (rows ordered by key, so two
// batches lock rows in the same order). Known race: a CAS with
// expected_version > 0 racing with DeleteSessions of the same key may
// recreate the record.
//
// Connections: a mutex-protected pool like the Store's (up to 8 idle ones);
// an idle connection whose backend went away is dropped before use, and one
// that breaks during a statement is dropped too: idempotent statements run
// once more on a fresh connection, StoreSessions and AddToCounters (which may
// have run) return Unavailable. The next call connects again, so the
// coordinator recovers by itself when the server is back. Connection errors
// are Unavailable (libpq's message, password removed). Thread-safe.
#ifndef ANALYTICS_COORD_POSTGRES_COORDINATOR_H_
#define ANALYTICS_COORD_POSTGRES_COORDINATOR_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "analytics/coordinator.h"

namespace analytics {

// `url` is the whole URL. Connects and creates the tables when missing.
absl::StatusOr<std::unique_ptr<Coordinator>> OpenPostgresCoordinator(
    std::string_view url);

}  // namespace analytics

#endif  // ANALYTICS_COORD_POSTGRES_COORDINATOR_H_
