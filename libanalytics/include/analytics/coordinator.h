// Coordinator: the seam for state that every worker sharing one dataset must
// agree on, and that is not analytics data (that lives in the Store).
//
// Owns: daily salts, live session state (opaque, versioned records with a
// TTL), live visitors, leases (leader election, worker-id uniqueness) and
// rate-limit counters. Implementations, chosen by URL through
// OpenCoordinator():
//   "local://"            one process (in-memory; the default)
//   "redis://host:port[/db]"   Redis: SET NX, Lua compare-and-set, sorted
//                              sets, token-checked lease renewal, INCR
//   "postgres://…" / "postgresql://…"  PostgreSQL: unlogged tables, upserts
//                              with version checks, token-checked leases,
//                              schema set-up under an advisory lock
// Every batch method costs one round trip (pipelined) on the remote ones.
//
// The session *logic* (timeouts, bounce, deltas) is not here: it lives in
// session/ and uses these records as its shared memory, so that a visitor
// whose pageviews land on different workers stays one visitor in one session.
//
// Thread-safety: every method may be called from any thread.
// Failure: a remote coordinator that is unreachable returns Unavailable; the
// engine then refuses events (503) rather than acknowledging ones whose
// session state could not be shared.
#ifndef ANALYTICS_COORDINATOR_H_
#define ANALYTICS_COORDINATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace analytics {

// Identifies one visitor's session state.
struct SessionKey {
  int64_t site_id = 0;
  uint64_t visitor_id = 0;
  bool operator==(const SessionKey&) const = default;
};

// A stored session record. version 0 means "absent".
struct SessionRecord {
  SessionKey key;
  int64_t version = 0;
  std::string value;  // opaque bytes owned by session/
};

// A compare-and-set write: succeeds only when the stored version equals
// `expected_version` (0: the key must be absent); the stored version becomes
// expected_version + 1 and the record expires `ttl` after the write.
struct SessionWrite {
  SessionKey key;
  int64_t expected_version = 0;
  std::string value;
  absl::Duration ttl = absl::Minutes(30);
};

// A visitor seen (event or heartbeat) at ts_ms.
struct LiveMark {
  int64_t site_id = 0;
  uint64_t visitor_id = 0;
  int64_t ts_ms = 0;
};

class Coordinator {
 public:
  virtual ~Coordinator() = default;

  // "local", "redis" or "postgres".
  virtual std::string_view kind() const = 0;
  // OK when the backing service answers (for /ready).
  virtual absl::Status Ping() = 0;

  // Salts: returns the salt stored for `day` after the call; `candidate` is
  // stored only when none is (first writer wins across workers). Salts expire
  // after `ttl` (so no old salt is kept).
  virtual absl::StatusOr<std::string> SaltIfAbsent(int64_t day,
                                                   std::string candidate,
                                                   absl::Duration ttl) = 0;

  // Sessions. LoadSessions returns one record per key, in order (version 0
  // and empty value when absent or expired). StoreSessions applies the
  // compare-and-set writes and returns, per write in order, whether it
  // succeeded. A batch may hold several keys but at most one write per key
  // (else InvalidArgument).
  virtual absl::StatusOr<std::vector<SessionRecord>> LoadSessions(
      absl::Span<const SessionKey> keys) = 0;
  virtual absl::StatusOr<std::vector<bool>> StoreSessions(
      absl::Span<const SessionWrite> writes) = 0;
  // Removes the records (whatever their version).
  virtual absl::Status DeleteSessions(absl::Span<const SessionKey> keys) = 0;

  // Live visitors: marks keep the latest ts per (site, visitor); CountLive
  // counts the site's visitors marked at or after since_ms. A site's marks
  // may be discarded once they are more than an hour behind its newest mark,
  // or once the site has had no mark for an hour (so since_ms should lie
  // within the last hour). Several marks of one visitor in a batch
  // are fine (the latest counts).
  virtual absl::Status MarkLive(absl::Span<const LiveMark> marks) = 0;
  virtual absl::StatusOr<int64_t> CountLive(int64_t site_id,
                                            int64_t since_ms) = 0;

  // Leases (leader election, worker-id uniqueness). TryLease acquires the
  // lease `name` for `holder` when it is free or expired, or renews it when
  // `holder` already holds it (token-checked: another holder's lease is never
  // extended or stolen before it expires). Returns whether `holder` holds it
  // after the call. ReleaseLease frees it only if `holder` holds it. Names
  // and holders must be non-empty (else InvalidArgument).
  virtual absl::StatusOr<bool> TryLease(std::string_view name,
                                        std::string_view holder,
                                        absl::Duration ttl) = 0;
  virtual absl::Status ReleaseLease(std::string_view name,
                                    std::string_view holder) = 0;
  // The current holder of the lease ("" when free or expired).
  virtual absl::StatusOr<std::string> LeaseHolder(std::string_view name) = 0;

  // Rate limits: fixed windows of `window` aligned to the epoch. Adds
  // costs[i] to keys[i]'s counter in the window containing now_ms and
  // returns the counters after the additions, in order (a key given twice is
  // added to in order: its first result excludes its second cost). Counters
  // of different window lengths are independent. keys and costs must have
  // the same length (else InvalidArgument).
  virtual absl::StatusOr<std::vector<int64_t>> AddToCounters(
      absl::Span<const std::string> keys, absl::Span<const int64_t> costs,
      absl::Duration window, int64_t now_ms) = 0;
};

// Opens a coordinator by URL (see the header comment). InvalidArgument for
// an unknown scheme; Unavailable when the service cannot be reached.
absl::StatusOr<std::unique_ptr<Coordinator>> OpenCoordinator(
    std::string_view url);

}  // namespace analytics

#endif  // ANALYTICS_COORDINATOR_H_
