// Sessionizer: groups a visitor's events into sessions without cookies.
//
// Owns: live session state (in this process, or in a shared Coordinator)
// and the rules that stamp each
// Event with its session id, start, and the session's state after the event
// (see Event in analytics/event.h). A visitor's next event starts a new
// session after `timeout` of inactivity. Bounce: exactly one pageview and no
// interactive custom event. Duration: last event time minus start.
//
// Memory is bounded: sessions idle longer than `timeout` behind the newest
// event time seen are evicted by Sweep(), which Assign() calls periodically.
// In memory a session is a LocalState held in the shard's map itself, with
// its visit attributes in one inline buffer and the first page/name hashes
// inline: most sessions have 1-2 events, so starting one must be cheap (no
// allocation, a few cache lines).
//
// Shared state (several workers): constructed with a Coordinator, the
// sessionizer keeps no session in memory between calls. AssignBatch() loads
// the batch's sessions (one LoadSessions for every distinct key, previous-day
// ids included), applies the events in order with the same rules as the
// local path, marks the visitors live (one MarkLive), and writes the
// sessions back with compare-and-set (one StoreSessions); the events of keys
// whose write lost a race are redone on reloaded state (jittered backoff,
// bounded retries, then Aborted). Heartbeats and live visitors go through
// MarkLive / CountLive (TouchShared, CountLiveShared). States are serialized
// with EncodeSessionState (compact binary). Without a coordinator (one
// process) nothing is serialized and AssignBatch is Assign() per event.
//
// Thread-safety: every method may be called from many threads. Local state
// is sharded by visitor with a mutex per shard; in shared mode the callers
// of one process take turns per key stripe, so compare-and-set races are
// only between workers.
#ifndef ANALYTICS_SESSION_SESSIONIZER_H_
#define ANALYTICS_SESSION_SESSIONIZER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "analytics/coordinator.h"
#include "analytics/event.h"

namespace analytics {

// One visitor's live session (what a shared coordinator stores, encoded).
struct SessionState {
  uint64_t session_id = 0;
  uint64_t visitor_id = 0;
  int64_t start_ms = 0;
  int64_t last_ms = 0;
  int64_t live_ms = 0;  // last event or heartbeat
  int64_t site_id = 0;
  int32_t pageviews = 0;
  int32_t events = 0;
  int32_t interactive_custom = 0;
  std::string exit_page;
  VisitAttrs visit;
  absl::flat_hash_set<uint64_t> seen;  // hashes of pages and names
};

// Compact binary form (varints, length-prefixed strings, format byte first).
std::string EncodeSessionState(const SessionState& s);
// InvalidArgument for bytes EncodeSessionState did not produce.
absl::StatusOr<SessionState> DecodeSessionState(std::string_view bytes);

class Sessionizer {
 public:
  // `shared` (not owned, may be null): keep session state in this
  // coordinator instead of in memory (see the header comment).
  explicit Sessionizer(absl::Duration timeout = absl::Minutes(30),
                       Coordinator* shared = nullptr);

  // Assigns a batch in order, like Assign() on each event. Returns, per
  // event, whether it was kept (false: engagement without a session). With a
  // shared coordinator: Unavailable when it cannot be reached, Aborted when
  // the compare-and-set kept failing; the events then are not stamped.
  absl::StatusOr<std::vector<bool>> AssignBatch(
      absl::Span<Event> events, absl::Span<const uint64_t> prev_visitor_ids,
      const std::vector<bool>& interactive);

  // Drops the sessions of these events (after their commit failed), by
  // session id locally, by key in a shared coordinator.
  absl::Status ForgetEvents(absl::Span<const Event> events);

  // Shared mode: Touch and CountLive through the coordinator (errors are
  // returned instead of false / 0).
  absl::StatusOr<bool> TouchShared(int64_t site_id, uint64_t visitor_id,
                                   uint64_t prev_visitor_id, int64_t ts_ms);
  absl::StatusOr<int64_t> CountLiveShared(int64_t site_id, int64_t since_ms);

  bool shared() const { return shared_ != nullptr; }
  // Shared mode: coordinator calls made so far (each is one round trip).
  int64_t coord_round_trips() const {
    return round_trips_.load(std::memory_order_relaxed);
  }
  // Test-only: runs between the loads and the compare-and-set writes of
  // AssignBatch (to provoke conflicts). Not thread-safe to set.
  void set_before_store_for_test(std::function<void()> fn) {
    before_store_for_test_ = std::move(fn);
  }

  // `e` has site_id, ts_ms, name, page, visit (the attributes this event
  // would give a new session) and visitor_id set. `prev_visitor_id` is the
  // visitor's id under the previous day's salt (0 if none): a session found
  // under it continues, and e->visitor_id becomes that id. Fills the session
  // fields of `e`; for a continuing session, e->visit is replaced with the
  // session's attributes. `interactive` false: the event does not end a
  // bounce. An engagement event (Event::is_engagement) leaves the session's
  // counters alone and only refreshes its liveness; it is stamped with the
  // current state. Returns false (and stamps nothing) for an engagement
  // event of a visitor without a live session: the caller drops it.
  bool Assign(Event* e, uint64_t prev_visitor_id, bool interactive);

  // Evicts sessions whose last event is older than the watermark (newest
  // event time seen) minus the timeout. Returns how many were evicted.
  size_t Sweep();

  // Marks the visitor's current session (if any) live at ts_ms without an
  // event. Returns false when the visitor has no session.
  bool Touch(int64_t site_id, uint64_t visitor_id, uint64_t prev_visitor_id,
             int64_t ts_ms);
  // Distinct visitors of the site whose last event or Touch is >= since_ms.
  int64_t CountLive(int64_t site_id, int64_t since_ms) const;

  // Drops the given sessions (e.g. after their events failed to commit): the
  // visitors' next events start new sessions instead of building on events
  // that were never stored. Returns how many were dropped.
  size_t Forget(const absl::flat_hash_set<uint64_t>& session_ids);

  // Restores a session from its latest stored event (after a restart).
  void Restore(const Event& last_event);

  size_t size() const;

 private:
  using State = SessionState;
  // How long a shared record outlives its session timeout.
  static constexpr absl::Duration kSharedTtlMargin = absl::Minutes(5);
  static constexpr int kMaxCasAttempts = 12;
  static constexpr size_t kStripes = 1024;  // shared mode: per-key turns
  static constexpr int kShards = 64;
  // The 16 VisitAttrs strings in one buffer (copied in once per session;
  // inline up to 128 bytes, which most visits fit).
  class PackedVisit {
   public:
    void Set(const VisitAttrs& v);
    void CopyTo(VisitAttrs* v) const;

   private:
    absl::InlinedVector<char, 128> buf_;
    std::array<uint32_t, 16> len_{};
  };
  // Hashes of the pages and names seen in a session: inline for the first
  // few, a hash set beyond.
  class SeenSet {
   public:
    bool Insert(uint64_t h);  // true: not seen before
    void Clear();

   private:
    static constexpr int kInline = 6;
    std::array<uint64_t, kInline> inline_;
    int n_ = 0;
    bool spilled_ = false;
    std::unique_ptr<absl::flat_hash_set<uint64_t>> more_;
  };
  // A live session in memory: SessionState with a compact visit and seen.
  struct LocalState {
    uint64_t session_id = 0;
    uint64_t visitor_id = 0;
    int64_t start_ms = 0;
    int64_t last_ms = 0;
    int64_t live_ms = 0;
    int64_t site_id = 0;
    int32_t pageviews = 0;
    int32_t events = 0;
    int32_t interactive_custom = 0;
    std::string exit_page;
    PackedVisit visit;
    SeenSet seen;
  };
  // The shard lock: std::mutex, annotated for the thread-safety analysis.
  // (absl::Mutex::Lock costs ~4x more here: Debian's abseil is built
  // without NDEBUG, so every Lock does deadlock-detection bookkeeping.)
  class ABSL_LOCKABLE ShardMutex {
   public:
    void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
    void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

   private:
    std::mutex mu_;
  };
  class ABSL_SCOPED_LOCKABLE ShardLock {
   public:
    explicit ShardLock(ShardMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
        : mu_(mu) {
      mu_->Lock();
    }
    ~ShardLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

   private:
    ShardMutex* mu_;
  };
  struct Shard {
    mutable ShardMutex mu;
    absl::flat_hash_map<uint64_t, LocalState> sessions ABSL_GUARDED_BY(mu);
  };
  static uint64_t Key(int64_t site_id, uint64_t visitor_id);
  Shard& ShardFor(uint64_t key) { return shards_[key % kShards]; }

  // The stamping rules shared by both paths (S: State or LocalState).
  static State NewState(uint64_t key, const Event& e);
  // NewState() in place: *s as NewState(key, e) would make it, except that
  // `visit` is left for Apply() to overwrite.
  static void ResetState(LocalState* s, uint64_t key, const Event& e);
  template <typename S>
  static void StampEngagement(const S& s, Event* e);
  template <typename S>
  static void Apply(S* s, bool fresh, Event* e, bool interactive);
  absl::StatusOr<std::vector<bool>> AssignShared(
      absl::Span<Event> events, absl::Span<const uint64_t> prev_visitor_ids,
      const std::vector<bool>& interactive);

  const int64_t timeout_ms_;
  Coordinator* const shared_;
  std::function<void()> before_store_for_test_;
  std::atomic<int64_t> round_trips_{0};
  // shared_, counting one coordinator round trip.
  Coordinator* Trip() {
    round_trips_.fetch_add(1, std::memory_order_relaxed);
    return shared_;
  }
  std::array<absl::Mutex, kStripes> stripes_;
  std::array<Shard, kShards> shards_;
  std::atomic<int64_t> watermark_ms_{0};
  std::atomic<uint64_t> assigns_{0};
};

}  // namespace analytics

#endif  // ANALYTICS_SESSION_SESSIONIZER_H_
