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
// its visit attributes and exit page in one inline buffer, its entry page and
// the name "pageview" seen as flags and other seen pages/names as hashes
// inline: most sessions have 1-2 events, so starting one must be cheap (no
// allocation, no hashing of strings, 4 cache lines).
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
  // A live session's strings: the 16 VisitAttrs fields (entry visit) and
  // the exit page when it is a page of its own (see LocalState::kExit*), in
  // one buffer. Inline (lengths a byte each, chars in the state itself) when
  // they fit in kInlineChars, which most visits do: starting a session then
  // writes no memory outside its slot of the map. Otherwise a heap block
  // with 32-bit lengths.
  class PackedVisit {
   public:
    PackedVisit() = default;
    PackedVisit(PackedVisit&&) = default;
    PackedVisit& operator=(PackedVisit&&) = default;

    // Sets the visit and drops the exit page.
    void Set(const VisitAttrs& v);
    void SetExit(std::string_view page);
    void CopyTo(VisitAttrs* v) const;
    std::string_view entry_page() const;
    std::string_view exit_page() const;  // "" until SetExit()

   private:
    static constexpr int kFields = 17;  // 16 visit fields, then the exit page
    static constexpr size_t kInlineChars = 127;
    static_assert(kInlineChars < 255);  // so every inline length fits a byte
    struct Big {
      std::array<uint32_t, kFields> len{};
      std::string chars;
    };
    void SetBig(const VisitAttrs& v);
    std::unique_ptr<Big> big_;  // null: inline
    std::array<uint8_t, kFields> len_;
    char chars_[kInlineChars];
  };
  // Hashes (SeenHash) of the pages and names seen in a session, except the
  // entry page and the name "pageview", which LocalState keeps as flags:
  // inline for the first few, a hash set beyond.
  class SeenSet {
   public:
    bool Insert(uint64_t h);  // true: not seen before
    void Clear() {
      if (n_ < 0) ClearSpilled();
      n_ = 0;
    }

   private:
    static constexpr int kInline = 2;
    void ClearSpilled();
    std::unique_ptr<absl::flat_hash_set<uint64_t>> more_;  // when spilled
    std::array<uint64_t, kInline> inline_;
    int32_t n_ = 0;  // in inline_; -1: spilled into more_
  };
  // A live session in memory: SessionState in compact form (a slot of the
  // map is 256 bytes, 4 cache lines).
  struct LocalState {
    // flags: the first event's page and name are "seen" implicitly (the
    // entry page is in the visit, and most names are "pageview"); the exit
    // page is "", the entry page, or a page of its own in `visit`.
    static constexpr uint8_t kEntryPageSeen = 1;
    static constexpr uint8_t kPageviewSeen = 2;
    static constexpr uint8_t kExitEntry = 4;
    static constexpr uint8_t kExitOwn = 8;
    // Left uninitialized by construction (the map's try_emplace, which
    // would zero all 256 bytes for a defaulted constructor): set by
    // StartLocal() or Restore() right after, under the shard lock.
    LocalState() {}  // NOLINT(modernize-use-equals-default)
    uint64_t session_id;
    uint64_t visitor_id;
    int64_t start_ms;
    int64_t last_ms;
    int64_t live_ms;
    int64_t site_id;
    int32_t pageviews;
    int32_t events;
    int32_t interactive_custom;
    uint8_t flags;
    SeenSet seen;
    PackedVisit visit;
    std::string_view exit_page() const {
      return (flags & kExitOwn)     ? visit.exit_page()
             : (flags & kExitEntry) ? visit.entry_page()
                                    : std::string_view();
    }
  };
  // The shard lock: a futex lock, annotated for the thread-safety analysis.
  // Hand-written because both library locks cost too much per event here:
  // absl::Mutex::Lock ~4x std::mutex (Debian's abseil is built without
  // NDEBUG, so every Lock does deadlock-detection bookkeeping), and
  // std::mutex (pthread) ~55 instructions per lock/unlock pair, a tenth of
  // the Assign we want. This is the classic three-state futex mutex (Drepper,
  // "Futexes Are Tricky", mutex3) on C++20 atomic wait/notify, which libstdc++
  // implements with futex(2): uncontended, one compare-and-swap to lock and
  // one exchange to unlock.
  class ABSL_LOCKABLE ShardMutex {
   public:
    void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
      uint32_t c = 0;
      if (!state_.compare_exchange_strong(c, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
        LockSlow(c);
      }
    }
    void Unlock() ABSL_UNLOCK_FUNCTION() {
      if (state_.exchange(0, std::memory_order_release) == 2) {
        state_.notify_one();
      }
    }

   private:
    void LockSlow(uint32_t c);
    // 0 unlocked, 1 locked, 2 locked and maybe waited on.
    std::atomic<uint32_t> state_{0};
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
  // Keys are splitmix64 outputs (Key()): the maps take them as their hash
  // (absl's probing uses the low bits, ShardFor() the top ones).
  struct KeyHash {
    size_t operator()(uint64_t key) const { return key; }
  };
  struct alignas(64) Shard {  // a cache line of its own for mu
    mutable ShardMutex mu;
    absl::flat_hash_map<uint64_t, LocalState, KeyHash> sessions
        ABSL_GUARDED_BY(mu);
    // The newest event time seen by Assign/Restore calls that ended in this
    // shard (written under mu; the watermark is the maximum over shards).
    std::atomic<int64_t> watermark_ms{0};
  };
  static uint64_t Key(int64_t site_id, uint64_t visitor_id);
  Shard& ShardFor(uint64_t key) {
    static_assert(kShards == 64);
    return shards_[key >> 58];
  }

  // The stamping rules shared by both paths (S: State or LocalState).
  static State NewState(uint64_t key, const Event& e);
  // The rules again for LocalState (compact visit, seen flags): starts a
  // session in *s (new or expired) with `e`, or applies `e` to it.
  static void StartLocal(LocalState* s, uint64_t key, Event* e,
                         bool interactive);
  static void ApplyLocal(LocalState* s, Event* e, bool interactive);
  static void StampEngagement(const State& s, Event* e);
  static void StampEngagementLocal(const LocalState& s, Event* e);
  static void Apply(State* s, bool fresh, Event* e, bool interactive);
  // Sweep() with a watermark of at least `wm`.
  size_t SweepAt(int64_t wm);
  int64_t Watermark() const;
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
  std::atomic<uint64_t> assigns_{0};
};

}  // namespace analytics

#endif  // ANALYTICS_SESSION_SESSIONIZER_H_
