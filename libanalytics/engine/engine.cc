// EngineImpl: the pipeline behind the public Engine.
//
// Owns: the order of the stages (validate -> drop bots -> enrich -> visitor
// id -> session -> group commit -> rollup fold -> checkpoint; with a shared
// coordinator the committer sessionizes each group commit at once), the site
// and salt caches, the committer and folder threads, the free list of folded
// event vectors that TrackBatch enriches into in place, and, when workers share
// the dataset through a remote coordinator, the worker and leader leases
// (renewed by a lease thread) and orphan adoption (the leader folds the events
// of a worker that is gone). No backend header is included here; the store
// comes from OpenStore(), the coordinator from OpenCoordinator().
#include "analytics/engine.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libanalytics/core/dimensions.h"
#include "libanalytics/core/secrets.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/engine/engine_testing.h"
#include "libanalytics/enrich/bots.h"
#include "libanalytics/enrich/country.h"
#include "libanalytics/enrich/enricher.h"
#include "libanalytics/enrich/referrer.h"
#include "libanalytics/enrich/url.h"
#include "libanalytics/enrich/user_agent.h"
#include "libanalytics/enrich/visitor_id.h"
#include "libanalytics/query/query.h"
#include "libanalytics/rollup/rollup_builder.h"
#include "libanalytics/session/sessionizer.h"

namespace analytics {
namespace {

// SetStoreWrapperForTest (engine_testing.h).
StoreWrapper& TestStoreWrapper() {
  static StoreWrapper* wrap = new StoreWrapper();
  return *wrap;
}

// SetEventRecyclingForTest (engine_testing.h).
std::atomic<bool> recycle_events{true};

constexpr int64_t kDayMs = 86400000;

int64_t FloorDiv(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

absl::Status ValidateDomain(std::string_view d) {
  if (d.empty() || d.size() > 253) {
    return absl::InvalidArgumentError("domain: must be 1 to 253 characters");
  }
  for (char c : d) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '-')) {
      return absl::InvalidArgumentError(
          absl::StrCat("domain: invalid character '", std::string(1, c),
                       "' (expected a host name such as example.com)"));
    }
  }
  return absl::OkStatus();
}

// A random secret: prefix + 32 characters of [A-Za-z0-9] (190 bits).
std::string NewSecret(std::string_view prefix) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string bytes = NewSalt() + NewSalt();
  std::string out(prefix);
  for (size_t i = 0; i < 32; ++i) {
    out.push_back(kAlphabet[static_cast<uint8_t>(bytes[i]) % 62]);
  }
  return out;
}

std::string NewShortId() {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string bytes = NewSalt() + NewSalt();
  std::string id;
  for (size_t i = 0; i < 12; ++i) {
    id.push_back(kAlphabet[static_cast<uint8_t>(bytes[i]) % 62]);
  }
  return id;
}

std::atomic<int64_t> next_instance{1};

class EngineImpl : public Engine {
 public:
  explicit EngineImpl(const Options& o)
      : opts_(o),
        clock_(o.clock ? o.clock : RealClock()),
        worker_name_(MakeWorkerName(o.worker)),
        holder_(absl::StrCat(worker_name_, "#", next_instance.fetch_add(1))),
        recycle_(recycle_events.load()) {}

  ~EngineImpl() override { (void)Close(); }

  absl::Status Init() {
    if (opts_.worker < 0) {
      return absl::InvalidArgumentError("worker: must be >= 0");
    }
    if (opts_.leader_lease < absl::Seconds(1)) {
      return absl::InvalidArgumentError("leader_lease: must be >= 1s");
    }
    absl::StatusOr<std::unique_ptr<Coordinator>> coord =
        OpenCoordinator(opts_.coord_url);
    if (!coord.ok()) {
      return absl::Status(
          coord.status().code(),
          absl::StrCat("coordinator: ", coord.status().message()));
    }
    coord_ = *std::move(coord);
    remote_ = coord_->kind() != "local";
    sessions_ = std::make_unique<Sessionizer>(opts_.session_timeout,
                                              remote_ ? coord_.get() : nullptr);
    if (remote_) {
      // The worker number is this process's while it renews the lease.
      const std::string lease = WorkerLease(opts_.worker);
      absl::StatusOr<bool> got =
          coord_->TryLease(lease, holder_, opts_.leader_lease);
      if (!got.ok()) return got.status();
      if (!*got) {
        // A process of this host that died (kill -9) keeps the lease until
        // it expires: take it over at once (restarts need not wait).
        absl::StatusOr<std::string> holder = coord_->LeaseHolder(lease);
        if (holder.ok() && IsDeadLocalHolder(*holder)) {
          (void)coord_->ReleaseLease(lease, *holder);
          got = coord_->TryLease(lease, holder_, opts_.leader_lease);
          if (!got.ok()) return got.status();
        }
      }
      if (!*got) {
        absl::StatusOr<std::string> holder = coord_->LeaseHolder(lease);
        return absl::FailedPreconditionError(absl::StrCat(
            "worker: worker id ", opts_.worker, " is in use by ",
            holder.ok() ? *holder : std::string("another worker"),
            " (each worker sharing a store needs its own --worker-id)"));
      }
      holds_worker_lease_.store(true);
    }
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(opts_.store_url);
    if (!store.ok()) {
      ReleaseLeases();
      return store.status();
    }
    store_ = *std::move(store);
    if (const StoreWrapper& wrap = TestStoreWrapper(); wrap) {
      store_ = wrap(std::move(store_));
    }
    absl::StatusOr<std::unique_ptr<CountryResolver>> geo =
        CountryResolver::Create(opts_.geoip_path);
    if (!geo.ok()) return geo.status();
    geo_ = *std::move(geo);
    enricher_ = std::make_unique<Enricher>(
        geo_.get(), [this](int64_t day) { return SaltFor(day); });
    absl::Status s = ReloadSites();
    if (!s.ok()) return s;
    // Rebuild rollups past the checkpoint from the durable raw events.
    absl::StatusOr<int64_t> cp = store_->RollupCheckpoint(opts_.worker);
    if (!cp.ok()) return cp.status();
    if (*cp == 0) {
      // Register the worker's checkpoint, so that the leader can adopt its
      // events even if it dies before its first checkpoint.
      s = store_->ApplyRollups({}, opts_.worker, 0);
      if (!s.ok()) return s;
    }
    rollups_.set_last_seq(*cp);
    std::vector<Event> chunk;
    s = store_->ScanEventsAfter(*cp, opts_.worker, [&](const Event& e) {
      chunk.push_back(e);
      if (chunk.size() >= 10000) {
        rollups_.Add(chunk);
        chunk.clear();
      }
      return true;
    });
    if (!s.ok()) return s;
    rollups_.Add(chunk);
    s = Checkpoint();
    if (!s.ok()) return s;
    if (!remote_) {
      // Shared session state lives in the coordinator instead.
      s = RestoreSessions();
      if (!s.ok()) return s;
    }
    committer_ = std::thread([this] { CommitLoop(); });
    folder_ = std::thread([this] { FoldLoop(); });
    if (remote_) {
      RenewLeases();
      lease_thread_ = std::thread([this] { LeaseLoop(); });
      adopter_ = std::thread([this] { AdoptLoop(); });
    }
    return absl::OkStatus();
  }

  absl::Status Ready() override {
    if (closed_.load()) return absl::UnavailableError("engine: closed");
    absl::StatusOr<int64_t> cp = store_->RollupCheckpoint(opts_.worker);
    if (!cp.ok()) {
      return absl::UnavailableError(
          absl::StrCat("store: not answering: ", cp.status().message()));
    }
    absl::Status s = coord_->Ping();
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("coordinator (", AV(coord_->kind()),
                       "): not answering: ", s.message()));
    }
    if (remote_ && !holds_worker_lease_.load()) {
      return absl::UnavailableError(
          absl::StrCat("coordinator: worker lease '", WorkerLease(opts_.worker),
                       "' is not held by this process"));
    }
    return absl::OkStatus();
  }

  bool IsLeader() override { return !remote_ || is_leader_.load(); }
  std::string WorkerName() override { return worker_name_; }
  Coordinator* coordinator() override { return coord_.get(); }

  // Test-only (engine_testing.h): stops like a crash, without folding or
  // checkpointing what is pending and without releasing the leases.
  void Abandon() {
    crashed_.store(true);
    (void)Close();
  }

  absl::StatusOr<TrackResult> Track(const EventInput& in) override {
    absl::StatusOr<BatchResult> r = TrackBatch(absl::MakeConstSpan(&in, 1));
    if (!r.ok()) return r.status();
    if (!r->rejected.empty()) return r->rejected[0].second;
    TrackResult t;
    t.accepted = r->accepted == 1;
    if (!r->dropped.empty()) t.dropped_reason = r->dropped.begin()->first;
    return t;
  }

  absl::StatusOr<BatchResult> TrackBatch(
      absl::Span<const EventInput> inputs) override {
    BatchResult result;
    std::shared_ptr<Pending> pending;
    bool queued = false;
    absl::Status s = Prepare(inputs, &result, &pending, &queued);
    if (!s.ok()) return s;
    if (queued) pending->done.WaitForNotification();
    return Finish(*pending, std::move(result));
  }

  absl::Status SubmitBatch(
      absl::Span<const EventInput> inputs,
      std::function<void(absl::StatusOr<BatchResult>)> done) override {
    auto result = std::make_shared<BatchResult>();
    std::shared_ptr<Pending> pending;
    bool queued = false;
    absl::Status s = Prepare(inputs, result.get(), &pending, &queued,
                             [this, result, done](const Pending& p) {
                               done(Finish(p, std::move(*result)));
                             });
    if (!s.ok()) return s;
    if (!queued) done(Finish(*pending, std::move(*result)));
    return absl::OkStatus();
  }

 private:
  struct Pending;

  // TrackBatch up to the group commit: validates, enriches and (locally)
  // sessionizes `inputs` into *result_out and *out, and queues *out for the
  // committer (*queued false when no event is left to store). `on_commit`,
  // if set, runs on the committer thread once the commit is done. Not OK:
  // nothing was queued.
  absl::Status Prepare(
      absl::Span<const EventInput> inputs, BatchResult* result_out,
      std::shared_ptr<Pending>* out, bool* queued,
      std::function<void(const Pending&)> on_commit = nullptr) {
    if (closed_.load()) {
      return absl::FailedPreconditionError("engine: closed");
    }
    BatchResult& result = *result_out;
    auto pending = std::make_shared<Pending>();
    // Events are enriched in place into a folded vector's Events (see
    // TakeSpare): into slots [base, base + inputs.size()), growing it if
    // short. A slot is kept (`used` advances) only for an event to store;
    // Enrich overwrites every field, so nothing of a slot's previous event
    // or of a rejected input remains.
    std::vector<Event> events = TakeSpare(inputs.size());
    const size_t had = events.size();
    const size_t base =
        events.size() > inputs.size() ? events.size() - inputs.size() : 0;
    size_t used = base;
    if (base == 0) events.reserve(inputs.size());
    std::string bot;
    // The site of the previous input: batches are mostly of one site, and a
    // lookup copies the Site (four strings).
    std::optional<absl::StatusOr<Site>> site;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const EventInput& in = inputs[i];
      absl::Status v = ValidateEventInput(in);
      if (!v.ok()) {
        result.rejected.emplace_back(i, v);
        continue;
      }
      if (!site.has_value() || !site->ok() || (*site)->domain != in.site) {
        site = SiteFor(in.site);
      }
      if (!site->ok()) {
        result.rejected.emplace_back(i, site->status());
        continue;
      }
      if (used == events.size()) events.emplace_back();
      Event& e = events[used];
      uint64_t prev_id = 0;
      bot.clear();
      absl::Status es =
          enricher_->Enrich(in, **site, clock_->Now(), &e, &prev_id, &bot);
      if (!es.ok()) {
        result.rejected.emplace_back(i, es);
        continue;
      }
      if (!bot.empty()) {
        result.dropped[absl::StrCat("bot:", bot)]++;
        continue;
      }
      e.worker = opts_.worker;
      pending->prev_ids.push_back(prev_id);
      pending->interactive.push_back(in.interactive);
      ++used;
    }
    if (recycle_) {
      recycled_events_.fetch_add(
          static_cast<int64_t>(std::min(used, had) - base));
    }
    if (base == 0) {
      events.resize(used);  // drops the slots of rejected inputs
      pending->events = std::move(events);
    } else {
      // The filled tail moves out (with its strings); the head goes back.
      pending->events.reserve(used - base);
      for (size_t i = base; i < used; ++i) {
        pending->events.push_back(std::move(events[i]));
      }
      events.resize(base);
      Recycle(events);
    }
    if (remote_ && !pending->events.empty() && !holds_worker_lease_.load()) {
      return absl::UnavailableError(absl::StrCat(
          "coordinator: this process does not hold the lease '",
          WorkerLease(opts_.worker), "' (events refused until it is renewed)"));
    }
    // Sessionize in input order (stamps depend on the session's history).
    // Locally here; with a shared coordinator the committer sessionizes the
    // whole group commit at once (one AssignBatch, ~3 round trips per group).
    if (!remote_) {
      absl::StatusOr<std::vector<bool>> assigned =
          sessions_->AssignBatch(absl::MakeSpan(pending->events),
                                 pending->prev_ids, pending->interactive);
      if (!assigned.ok()) return assigned.status();
      pending->no_session = DropUnassigned(*assigned, &pending->events);
    }
    *queued = false;
    *out = pending;
    if (!pending->events.empty()) {
      pending->on_commit = std::move(on_commit);
      absl::MutexLock l(&queue_mu_);
      if (stopping_) return absl::FailedPreconditionError("engine: closed");
      pending->count = pending->events.size();
      queued_events_ += static_cast<int64_t>(pending->count);
      queue_.push_back(std::move(pending));
      *queued = true;
    }
    return absl::OkStatus();
  }

  // A vector of spare Events for Prepare to fill in place (empty when there
  // is none): the smallest of at least `n` events, else the largest.
  std::vector<Event> TakeSpare(size_t n) {
    if (!recycle_) return {};
    absl::MutexLock l(&spare_mu_);
    if (spare_.empty()) return {};
    size_t best = 0;
    for (size_t i = 1; i < spare_.size(); ++i) {
      const size_t have = spare_[i].events.size();
      const size_t cur = spare_[best].events.size();
      if (cur >= n ? (have >= n && have < cur) : have > cur) best = i;
    }
    if (best + 1 != spare_.size()) std::swap(spare_[best], spare_.back());
    std::vector<Event> v = std::move(spare_.back().events);
    spare_bytes_ -= spare_.back().bytes;
    spare_.pop_back();
    return v;
  }

  // Hands folded (or failed) events back for TakeSpare while the free list
  // holds less than kMaxSpareBytes (with these); otherwise leaves *events as
  // it is (to be freed). Events keep the capacity of the largest strings and
  // props they held, so the bound is on bytes, not on events.
  void Recycle(std::vector<Event>& events) {
    if (!recycle_ || events.empty()) return;
    size_t bytes = 0;
    for (const Event& e : events) bytes += RetainedBytes(e);
    absl::MutexLock l(&spare_mu_);
    if (spare_bytes_ + bytes > kMaxSpareBytes) return;
    spare_bytes_ += bytes;
    spare_.push_back({std::move(events), bytes});
  }

  // About the memory an Event holds: itself, its strings' capacity (inline
  // ones count as their inline capacity) and its props.
  static size_t RetainedBytes(const Event& e) {
    const VisitAttrs& v = e.visit;
    size_t n =
        sizeof(Event) + e.name.capacity() + e.hostname.capacity() +
        e.page.capacity() + e.s_exit_page.capacity() + v.entry_page.capacity() +
        v.source.capacity() + v.referrer.capacity() + v.utm_source.capacity() +
        v.utm_medium.capacity() + v.utm_campaign.capacity() +
        v.utm_term.capacity() + v.utm_content.capacity() +
        v.country.capacity() + v.browser.capacity() +
        v.browser_version.capacity() + v.os.capacity() +
        v.os_version.capacity() + v.device.capacity() + v.screen.capacity() +
        v.locale.capacity() + e.props.capacity() * sizeof(Props::value_type);
    for (const auto& [key, value] : e.props) {
      n += key.capacity() + value.capacity();
    }
    return n;
  }

  // TrackBatch after the group commit of `pending` (if it was queued):
  // counts and returns the result.
  absl::StatusOr<BatchResult> Finish(const Pending& pending,
                                     BatchResult result) {
    if (pending.no_session > 0) {
      result.dropped["engagement_without_session"] += pending.no_session;
    }
    {
      absl::MutexLock l(&stats_mu_);
      for (const auto& [reason, n] : result.dropped) dropped_[reason] += n;
    }
    if (!pending.status.ok()) return pending.status;
    result.accepted = static_cast<int64_t>(pending.accepted);
    accepted_.fetch_add(result.accepted);
    return result;
  }

 public:
  // Events enriched into a recycled Event so far (engine_testing.h).
  int64_t recycled_events() const { return recycled_events_.load(); }

  // Removes the events AssignBatch did not keep (engagement without a live
  // session) from `events`, in place. Returns how many were removed.
  static int64_t DropUnassigned(const std::vector<bool>& assigned,
                                std::vector<Event>* events) {
    size_t kept = 0;
    for (size_t i = 0; i < events->size(); ++i) {
      if (!assigned[i]) continue;
      if (kept != i) (*events)[kept] = std::move((*events)[i]);
      ++kept;
    }
    const int64_t dropped = static_cast<int64_t>(events->size() - kept);
    events->resize(kept);
    return dropped;
  }

  absl::StatusOr<std::string> Query(std::string_view json) override {
    if (closed_.load()) return absl::FailedPreconditionError("engine: closed");
    absl::StatusOr<QuerySpec> spec = ParseQuery(
        json, [this](std::string_view id) { return FindSite(id); },
        clock_->Now());
    if (!spec.ok()) return spec.status();
    AwaitFolded();
    absl::ReaderMutexLock l(&checkpoint_mu_);
    // Long rollup breakdowns use a second core when there is one.
    static const int64_t split =
        std::thread::hardware_concurrency() > 1 ? 8 : 0;
    return ExecuteQuery(*spec, QuerySources{.store = store_.get(),
                                            .pending = &rollups_,
                                            .split_scan_buckets = split});
  }

  absl::StatusOr<Site> AddSite(const Site& in) override {
    Site site = in;
    site.domain = absl::AsciiStrToLower(site.domain);
    absl::Status v = ValidateDomain(site.domain);
    if (!v.ok()) return v;
    if (site.timezone.empty()) site.timezone = "UTC";
    absl::TimeZone tz;
    if (!absl::LoadTimeZone(site.timezone, &tz)) {
      return absl::InvalidArgumentError(
          absl::StrCat("timezone: unknown time zone '", site.timezone, "'"));
    }
    if (site.short_id.empty()) {
      site.short_id = NewShortId();
    } else if (site.short_id.size() != 12 ||
               site.short_id.find_first_not_of(
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789-") != std::string::npos) {
      return absl::InvalidArgumentError(
          "short_id: must be 12 characters of [a-zA-Z0-9-]");
    }
    if (site.created_ms == 0)
      site.created_ms = absl::ToUnixMillis(clock_->Now());
    absl::StatusOr<Site> added = store_->AddSite(site);
    if (!added.ok()) return added.status();
    CacheSite(*added);
    return added;
  }

  absl::StatusOr<std::vector<Site>> ListSites() override {
    return store_->ListSites();
  }

  absl::StatusOr<Site> FindSite(std::string_view id) override {
    {
      absl::MutexLock l(&sites_mu_);
      auto it = by_domain_.find(absl::AsciiStrToLower(AV(id)));
      if (it != by_domain_.end()) return it->second;
      auto sit = by_short_.find(AV(id));
      if (sit != by_short_.end()) return sit->second;
    }
    // Another worker may have added it: reload, but at most once a second
    // per unknown id and at most kReloadsPerSecond (bursts of kReloadBurst)
    // in all, so that requests for unknown sites cannot hammer the store.
    // One reload at a time; concurrent callers wait for it and then look
    // again (so a burst of a new site's first events is not answered
    // NotFound).
    {
      absl::MutexLock r(&reload_mu_);
      {
        absl::MutexLock l(&sites_mu_);
        auto it = by_domain_.find(absl::AsciiStrToLower(AV(id)));
        if (it != by_domain_.end()) return it->second;
        auto sit = by_short_.find(AV(id));
        if (sit != by_short_.end()) return sit->second;
      }
      const absl::Time now = absl::Now();
      reload_tokens_ = std::min(
          kReloadBurst,
          reload_tokens_ + kReloadsPerSecond *
                               absl::ToDoubleSeconds(now - last_site_reload_));
      last_site_reload_ = now;
      if (missed_sites_.size() > 4096) missed_sites_.clear();
      absl::Time& missed = missed_sites_[absl::AsciiStrToLower(AV(id))];
      if (now - missed < absl::Seconds(1) || reload_tokens_ < 1) {
        return absl::NotFoundError(
            absl::StrCat("site_id: unknown site '", AV(id), "'"));
      }
      missed = now;
      reload_tokens_ -= 1;
      absl::Status s = ReloadSites();
      if (!s.ok()) return s;
    }
    absl::MutexLock l(&sites_mu_);
    auto it = by_domain_.find(absl::AsciiStrToLower(AV(id)));
    if (it != by_domain_.end()) return it->second;
    auto sit = by_short_.find(AV(id));
    if (sit != by_short_.end()) return sit->second;
    return absl::NotFoundError(
        absl::StrCat("site_id: unknown site '", AV(id), "'"));
  }

  absl::Status RemoveSite(std::string_view domain) override {
    absl::StatusOr<Site> site = FindSite(domain);
    if (!site.ok()) return site.status();
    absl::Status s = Flush();
    if (!s.ok()) return s;
    s = store_->RemoveSite(site->id);
    if (!s.ok()) return s;
    absl::MutexLock l(&sites_mu_);
    by_domain_.erase(site->domain);
    by_short_.erase(site->short_id);
    return absl::OkStatus();
  }

  absl::StatusOr<Site> UpdateSite(const Site& in) override {
    absl::StatusOr<Site> site = FindSite(in.domain);
    if (!site.ok()) return site.status();
    Site updated = *site;
    if (!in.timezone.empty()) {
      absl::TimeZone tz;
      if (!absl::LoadTimeZone(in.timezone, &tz)) {
        return absl::InvalidArgumentError(
            absl::StrCat("timezone: unknown time zone '", in.timezone, "'"));
      }
      if (in.timezone != updated.timezone) {
        // Day buckets already written stay in the old zone; new events use
        // the new one (documented in docs/ARCHITECTURE.md).
        updated.timezone = in.timezone;
      }
    }
    updated.allowed_origins = in.allowed_origins;
    if (in.retention_days < 0) {
      return absl::InvalidArgumentError(
          "retention_days: want 0 (keep forever) or a number of days");
    }
    updated.retention_days = in.retention_days;
    absl::Status s = store_->UpdateSite(updated);
    if (!s.ok()) return s;
    CacheSite(updated);
    return updated;
  }

  absl::Status Heartbeat(const EventInput& in) override {
    absl::StatusOr<Site> site = SiteFor(in.site);
    if (!site.ok()) return site.status();
    if (!DetectBot(in.user_agent).empty()) return absl::OkStatus();
    const int64_t ts = absl::ToUnixMillis(in.ts.value_or(clock_->Now()));
    const int64_t day = FloorDiv(ts, kDayMs);
    absl::StatusOr<std::string> salt = SaltFor(day);
    if (!salt.ok()) return salt.status();
    absl::StatusOr<std::string> prev = SaltFor(day - 1);
    if (!prev.ok()) return prev.status();
    uint64_t id = 0, prev_id = 0;
    VisitorIds(*salt, *prev, site->id, in.ip, in.user_agent, &id, &prev_id);
    absl::StatusOr<bool> touched =
        sessions_->TouchShared(site->id, id, prev_id, ts);
    if (!touched.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "coordinator: heartbeat not recorded: ", touched.status().message()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> LiveVisitors(std::string_view domain,
                                       absl::Duration window) override {
    absl::StatusOr<Site> site = FindSite(domain);
    if (!site.ok()) return site.status();
    absl::StatusOr<int64_t> n = sessions_->CountLiveShared(
        site->id, absl::ToUnixMillis(clock_->Now() - window));
    if (!n.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "coordinator: live visitors unknown: ", n.status().message()));
    }
    return n;
  }

  absl::StatusOr<std::optional<std::string>> EnsureAdminToken() override {
    absl::StatusOr<std::optional<std::string>> have =
        store_->GetMeta(kAdminTokenMetaKey);
    if (!have.ok()) return have.status();
    if (have->has_value()) return std::optional<std::string>();
    std::string token = NewSecret("adm_");
    const std::string hash = Sha256Hex(token);
    absl::StatusOr<std::string> stored =
        store_->PutMetaIfAbsent(kAdminTokenMetaKey, hash);
    if (!stored.ok()) return stored.status();
    if (*stored != hash) return std::optional<std::string>();  // lost a race
    return std::optional<std::string>(token);
  }

  absl::Status SetAdminToken(std::string_view token) override {
    if (token.size() < 16) {
      return absl::InvalidArgumentError(
          "admin token: must be at least 16 characters");
    }
    return store_->PutMeta(kAdminTokenMetaKey, Sha256Hex(token));
  }

  absl::StatusOr<std::pair<ApiKey, std::string>> CreateApiKey(
      std::string_view domain, std::string_view name) override {
    absl::StatusOr<Site> site = FindSite(domain);
    if (!site.ok()) return site.status();
    if (name.size() > 200) {
      return absl::InvalidArgumentError("name: longer than 200 bytes");
    }
    const std::string secret = NewSecret("key_");
    ApiKeyRecord rec;
    rec.site_id = site->id;
    rec.name = std::string(name);
    rec.prefix = secret.substr(0, 8);
    rec.secret_hash = Sha256Hex(secret);
    rec.created_ms = absl::ToUnixMillis(clock_->Now());
    absl::StatusOr<ApiKeyRecord> added = store_->AddApiKey(rec);
    if (!added.ok()) return added.status();
    return std::make_pair(ToApiKey(*added, site->domain), secret);
  }

  absl::StatusOr<std::vector<ApiKey>> ListApiKeys() override {
    absl::StatusOr<std::vector<ApiKeyRecord>> recs = store_->ListApiKeys();
    if (!recs.ok()) return recs.status();
    absl::StatusOr<std::vector<Site>> sites = store_->ListSites();
    if (!sites.ok()) return sites.status();
    std::vector<ApiKey> out;
    for (const ApiKeyRecord& r : *recs) {
      std::string domain;
      for (const Site& s : *sites) {
        if (s.id == r.site_id) domain = s.domain;
      }
      out.push_back(ToApiKey(r, domain));
    }
    return out;
  }

  absl::Status RevokeApiKey(int64_t id) override {
    return store_->RevokeApiKey(id, absl::ToUnixMillis(clock_->Now()));
  }

  absl::StatusOr<Principal> Authenticate(std::string_view token) override {
    if (token.empty()) {
      return absl::UnauthenticatedError("authorization: missing bearer token");
    }
    const std::string hash = Sha256Hex(token);
    absl::StatusOr<std::optional<std::string>> admin =
        store_->GetMeta(kAdminTokenMetaKey);
    if (!admin.ok()) return admin.status();
    if (admin->has_value() && ConstantTimeEqual(**admin, hash)) {
      return Principal{.admin = true};
    }
    absl::StatusOr<ApiKeyRecord> key = store_->FindApiKeyByHash(hash);
    if (!key.ok() || key->revoked_ms != 0 ||
        !ConstantTimeEqual(key->secret_hash, hash)) {
      if (!key.ok() && !absl::IsNotFound(key.status())) return key.status();
      return absl::UnauthenticatedError(
          "authorization: invalid or revoked token");
    }
    return Principal{.site_id = key->site_id, .key_id = key->id};
  }

  absl::Status Flush() override {
    if (closed_.load()) return absl::FailedPreconditionError("engine: closed");
    AwaitFolded();
    return Checkpoint();
  }

  absl::Status Close() override {
    if (closed_.exchange(true)) return absl::OkStatus();
    {
      absl::MutexLock l(&queue_mu_);
      stopping_ = true;
    }
    if (committer_.joinable()) committer_.join();
    if (folder_.joinable()) folder_.join();
    {
      absl::MutexLock l(&lease_mu_);
      lease_stopping_ = true;
    }
    if (lease_thread_.joinable()) lease_thread_.join();
    if (adopter_.joinable()) adopter_.join();
    if (!store_) return absl::OkStatus();
    absl::Status s = Checkpoint();
    // A crash keeps its leases until they expire (as a dead process would).
    if (!crashed_.load()) ReleaseLeases();
    return s;
  }

  EngineStats Stats() override {
    EngineStats s;
    s.accepted = accepted_.load();
    {
      absl::MutexLock l(&stats_mu_);
      s.dropped = dropped_;
      s.commit_latency_bounds_ms.assign(std::begin(kLatencyBoundsMs),
                                        std::end(kLatencyBoundsMs));
      s.commit_latency_counts.assign(std::begin(latency_counts_),
                                     std::end(latency_counts_));
      s.commit_latency_sum_ms = latency_sum_ms_;
    }
    s.live_sessions = sessions_ ? static_cast<int64_t>(sessions_->size()) : 0;
    s.pending_rollup_events = rollups_.pending_events();
    s.commits = commits_.load();
    s.coord_round_trips = sessions_ ? sessions_->coord_round_trips() : 0;
    absl::MutexLock l(&queue_mu_);
    s.queue_depth = queued_events_;
    return s;
  }

  Store* store() override { return store_.get(); }

 private:
  static ApiKey ToApiKey(const ApiKeyRecord& r, std::string domain) {
    return ApiKey{.id = r.id,
                  .site = std::move(domain),
                  .name = r.name,
                  .prefix = r.prefix,
                  .created_ms = r.created_ms,
                  .revoked = r.revoked_ms != 0};
  }

  struct Pending {
    std::vector<Event> events;
    std::vector<uint64_t> prev_ids;
    std::vector<bool> interactive;
    size_t count = 0;        // events.size() before the committer takes them
    int64_t no_session = 0;  // engagement events dropped by the sessionizer
    size_t accepted = 0;     // events stored (set before `done`)
    absl::Status status;
    // Set by SubmitBatch: runs (on the committer) before `done` is notified.
    std::function<void(const Pending&)> on_commit;
    absl::Notification done;
  };

  absl::Status ReloadSites() {
    absl::StatusOr<std::vector<Site>> sites = store_->ListSites();
    if (!sites.ok()) return sites.status();
    for (const Site& s : *sites) CacheSite(s);
    return absl::OkStatus();
  }

  void CacheSite(const Site& s) {
    absl::TimeZone tz;
    if (!absl::LoadTimeZone(s.timezone, &tz)) tz = absl::UTCTimeZone();
    rollups_.SetSiteTimezone(s.id, tz);
    absl::MutexLock l(&sites_mu_);
    by_domain_[s.domain] = s;
    by_short_[s.short_id] = s;
  }

  absl::StatusOr<Site> SiteFor(std::string_view domain) {
    {
      absl::MutexLock l(&sites_mu_);
      auto it = by_domain_.find(AV(domain));
      if (it != by_domain_.end()) return it->second;
    }
    absl::StatusOr<Site> found = FindSite(domain);
    if (found.ok() || !absl::IsNotFound(found.status()) ||
        !opts_.auto_create_sites) {
      if (!found.ok() && absl::IsNotFound(found.status())) {
        return absl::NotFoundError(
            absl::StrCat("site: unknown site '", AV(domain), "'"));
      }
      return found;
    }
    Site s;
    s.domain = std::string(domain);
    absl::StatusOr<Site> added = AddSite(s);
    if (absl::IsAlreadyExists(added.status())) return FindSite(domain);
    return added;
  }

  // The salt for a UTC day. Today's and yesterday's are shared through the
  // store (all workers hash alike); others (imports of old logs, clock skew)
  // are kept only in memory, so no old salt is ever persisted.
  absl::StatusOr<std::string> SaltFor(int64_t day) {
    {
      absl::MutexLock l(&salt_mu_);
      auto it = salts_.find(day);
      if (it != salts_.end()) return it->second;
    }
    const int64_t today = FloorDiv(absl::ToUnixMillis(clock_->Now()), kDayMs);
    std::string salt;
    if (remote_ && (day == today || day == today - 1)) {
      // Shared through the coordinator (first writer wins; expires).
      absl::StatusOr<std::string> got =
          coord_->SaltIfAbsent(day, NewSalt(), kSaltTtl);
      if (!got.ok()) {
        return absl::UnavailableError(absl::StrCat(
            "coordinator: daily salt unavailable: ", got.status().message()));
      }
      salt = *std::move(got);
    } else if (day == today || day == today - 1) {
      absl::StatusOr<std::optional<std::string>> got = store_->GetSalt(day);
      if (!got.ok()) return got.status();
      if (got->has_value()) {
        salt = **got;
      } else {
        absl::StatusOr<std::string> put =
            store_->PutSaltIfAbsent(day, NewSalt());
        if (!put.ok()) return put.status();
        salt = *put;
        (void)store_->DeleteSaltsBefore(today - 1);
      }
    } else {
      salt = NewSalt();
    }
    absl::MutexLock l(&salt_mu_);
    if (salts_.size() > 4096) salts_.clear();
    return salts_.emplace(day, salt).first->second;
  }

  // The committer: takes queued events (from many callers) in one durable
  // transaction, acknowledges them, and hands them to the folder.
  void CommitLoop() {
    for (;;) {
      std::vector<std::shared_ptr<Pending>> batch;
      bool stop = false;
      {
        absl::MutexLock l(&queue_mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
          return !queue_.empty() || stopping_;
        };
        queue_mu_.Await(absl::Condition(&ready));
        size_t n = 0;
        while (!queue_.empty() &&
               (batch.empty() || n + queue_.front()->count <=
                                     static_cast<size_t>(opts_.max_batch))) {
          n += queue_.front()->count;
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        queued_events_ -= static_cast<int64_t>(n);
        stop = stopping_ && queue_.empty() && batch.empty();
      }
      if (!batch.empty()) CommitBatch(batch);
      if (stop) break;
    }
    absl::MutexLock l(&fold_mu_);
    fold_stopping_ = true;
  }

  // Shared mode: sessionizes the events of a whole group commit with one
  // AssignBatch, in queue order (which keeps each caller's order), and drops
  // those without a live session from their Pending. Not OK: nothing of the
  // group is stamped; its callers get Unavailable.
  absl::Status SessionizeGroup(
      const std::vector<std::shared_ptr<Pending>>& batch) {
    if (!holds_worker_lease_.load()) {
      return absl::UnavailableError(absl::StrCat(
          "coordinator: this process does not hold the lease '",
          WorkerLease(opts_.worker), "' (events refused until it is renewed)"));
    }
    std::vector<Event> all;
    std::vector<uint64_t> prev_ids;
    std::vector<bool> interactive;
    for (const auto& p : batch) {
      for (Event& e : p->events) all.push_back(std::move(e));
      prev_ids.insert(prev_ids.end(), p->prev_ids.begin(), p->prev_ids.end());
      interactive.insert(interactive.end(), p->interactive.begin(),
                         p->interactive.end());
    }
    absl::StatusOr<std::vector<bool>> assigned =
        sessions_->AssignBatch(absl::MakeSpan(all), prev_ids, interactive);
    size_t at = 0;
    for (const auto& p : batch) {
      const size_t n = p->events.size();
      for (size_t i = 0; i < n; ++i) p->events[i] = std::move(all[at + i]);
      if (assigned.ok()) {
        std::vector<bool> mine(assigned->begin() + at,
                               assigned->begin() + at + n);
        p->no_session = DropUnassigned(mine, &p->events);
      }
      at += n;
    }
    if (!assigned.ok()) {
      return absl::UnavailableError(
          absl::StrCat("coordinator: session state not shared, events not "
                       "stored: ",
                       assigned.status().message()));
    }
    return absl::OkStatus();
  }

  void CommitBatch(const std::vector<std::shared_ptr<Pending>>& batch) {
    if (remote_) {
      absl::Status s = SessionizeGroup(batch);
      if (!s.ok()) {
        for (const auto& p : batch) {
          p->status = s;
          Complete(*p);
        }
        return;
      }
    }
    for (const auto& p : batch) p->accepted = p->events.size();
    std::vector<Event> all;
    if (batch.size() == 1) {
      all = std::move(batch[0]->events);
    } else {
      size_t n = 0;
      for (const auto& p : batch) n += p->events.size();
      all.reserve(n);
      for (const auto& p : batch) {
        for (Event& e : p->events) all.push_back(std::move(e));
      }
    }
    if (all.empty()) {  // every event was an engagement without session
      for (const auto& p : batch) Complete(*p);
      return;
    }
    const absl::Time t0 = absl::Now();
    absl::Status s = store_->AppendEvents(absl::MakeSpan(all));
    RecordCommitLatency(absl::ToDoubleMilliseconds(absl::Now() - t0));
    if (s.ok()) {
      commits_.fetch_add(1);
      const int64_t seq = all.back().seq;
      absl::MutexLock l(&fold_mu_);
      // Backpressure: the folder may lag by a bounded number of events.
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fold_mu_) {
        return fold_queued_ < kMaxFoldLag;
      };
      fold_mu_.Await(absl::Condition(&room));
      fold_queued_ += static_cast<int64_t>(all.size());
      fold_queue_.push_back(std::move(all));
      committed_seq_ = seq;
    } else {
      s = absl::UnavailableError(
          absl::StrCat("store: events not stored: ", s.message()));
      // The sessions counted these events; start them afresh so that later
      // events do not carry deltas built on events that were never stored.
      (void)sessions_->ForgetEvents(all);
      Recycle(all);
    }
    for (const auto& p : batch) {
      p->status = s;
      Complete(*p);
    }
  }

  // Acknowledges a committed (or failed) Pending to its caller.
  static void Complete(Pending& p) {
    if (p.on_commit) p.on_commit(p);
    p.done.Notify();
  }

  void RecordCommitLatency(double ms) {
    absl::MutexLock l(&stats_mu_);
    size_t i = 0;
    while (i < std::size(kLatencyBoundsMs) && ms > kLatencyBoundsMs[i]) ++i;
    latency_counts_[i]++;
    latency_sum_ms_ += ms;
  }

  // The folder: folds committed events into pending rollups, off the
  // committer's path, and checkpoints them periodically: every
  // checkpoint_interval or checkpoint_events, but never sooner than
  // kCheckpointSpacing times the last checkpoint's duration after it, unless
  // kMaxPendingCells cells are pending (memory). A checkpoint costs per
  // distinct cell, not per event (SQLite: a stored sketch merged per row),
  // so under heavy ingestion spacing them out keeps the folder's time spent
  // writing rollups to a few percent; the price is more events to replay
  // after a crash, and queries see pending cells anyway.
  void FoldLoop() {
    absl::Time last_checkpoint = absl::Now();
    absl::Duration last_took = absl::ZeroDuration();
    for (;;) {
      std::deque<std::vector<Event>> vectors;
      bool stop = false;
      {
        absl::MutexLock l(&fold_mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fold_mu_) {
          return !fold_queue_.empty() || fold_stopping_;
        };
        fold_mu_.AwaitWithTimeout(absl::Condition(&ready),
                                  opts_.checkpoint_interval);
        // Let commits gather for up to kFoldDelay before folding them: a
        // wakeup per group commit costs more than the fold of its events.
        // A waiting reader (AwaitFolded) or a full batch ends the wait.
        auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fold_mu_) {
          return fold_queued_ >= kFoldBatchEvents || fold_wanted_ > 0 ||
                 fold_stopping_;
        };
        if (!fold_queue_.empty()) {
          fold_mu_.AwaitWithTimeout(absl::Condition(&full), kFoldDelay);
        }
        vectors.swap(fold_queue_);
        stop = fold_stopping_ && vectors.empty();
      }
      for (std::vector<Event>& events : vectors) {
        if (events.empty()) continue;
        rollups_.Add(events);
        const int64_t n = static_cast<int64_t>(events.size());
        const int64_t seq = events.back().seq;
        Recycle(events);  // before AwaitFolded returns (tests rely on it)
        absl::MutexLock l(&fold_mu_);
        fold_queued_ -= n;
        folded_seq_ = seq;
      }
      const absl::Duration since = absl::Now() - last_checkpoint;
      if (stop || rollups_.pending_cells() >= kMaxPendingCells ||
          ((rollups_.pending_events() >= opts_.checkpoint_events ||
            since >= opts_.checkpoint_interval) &&
           since >= kCheckpointSpacing * last_took)) {
        const absl::Time t0 = absl::Now();
        (void)Checkpoint();
        last_checkpoint = absl::Now();
        last_took = last_checkpoint - t0;
      }
      if (stop) return;
    }
  }

  // Waits until every event acknowledged so far is folded (read-your-writes
  // for queries).
  void AwaitFolded() {
    absl::MutexLock l(&fold_mu_);
    const int64_t target = committed_seq_;
    auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fold_mu_) {
      return folded_seq_ >= target || fold_stopping_;
    };
    if (done()) return;
    ++fold_wanted_;  // the folder stops gathering (see FoldLoop)
    fold_mu_.Await(absl::Condition(&done));
    --fold_wanted_;
  }

  // Moves pending rollups into the store. Holds checkpoint_mu_ exclusively so
  // that no query sees the rows neither pending nor stored.
  //
  // A failed ApplyRollups may still have committed: e.g. PostgreSQL commits
  // and the connection drops before the answer arrives (a restart). Putting
  // those rows back would fold them into the store twice. So they are kept
  // aside "in doubt", and the next checkpoint first reads this worker's
  // stored checkpoint: at or past the failed apply's seq, the apply (or an
  // adopting worker that folded the same events) committed and the rows are
  // dropped; before it, they are put back and applied again. Until then
  // queries see neither (a store outage, during which they fail anyway).
  absl::Status Checkpoint() {
    if (crashed_.load()) return absl::OkStatus();
    absl::MutexLock l(&checkpoint_mu_);
    if (in_doubt_seq_ >= 0) {
      absl::StatusOr<int64_t> stored = store_->RollupCheckpoint(opts_.worker);
      if (!stored.ok()) return stored.status();
      if (*stored < in_doubt_seq_) rollups_.PutBack(in_doubt_rows_);
      in_doubt_rows_.clear();
      in_doubt_seq_ = -1;
    }
    int64_t seq = 0;
    std::vector<RollupRow> rows = rollups_.Take(&seq);
    if (rows.empty()) return absl::OkStatus();
    absl::Status s = store_->ApplyRollups(rows, opts_.worker, seq);
    if (!s.ok()) {
      in_doubt_rows_ = std::move(rows);
      in_doubt_seq_ = seq;
    }
    return s;
  }

  static std::string MakeWorkerName(int32_t worker) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
      std::snprintf(host, sizeof(host), "unknown");
    }
    return absl::StrCat(host, ":", getpid(), ":", worker);
  }
  // Whether `holder` ("host:pid:N#k") names a process of this host that no
  // longer exists.
  bool IsDeadLocalHolder(std::string_view holder) const {
    const size_t host_end = worker_name_.find(':');
    if (host_end == std::string::npos ||
        holder.substr(0, host_end + 1) !=
            std::string_view(worker_name_).substr(0, host_end + 1)) {
      return false;
    }
    std::string_view rest = holder.substr(host_end + 1);
    int64_t pid = 0;
    if (!absl::SimpleAtoi(AV(rest.substr(0, rest.find(':'))), &pid) ||
        pid <= 1 || pid == getpid()) {
      return false;
    }
    return kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
  }

  static std::string WorkerLease(int32_t worker) {
    return absl::StrCat("worker:", worker);
  }

  // Renews this worker's lease and tries for the leader lease (lease thread,
  // every leader_lease / 5). A coordinator error keeps the worker lease
  // believed held until it would have expired, and gives up leadership at
  // once (never two leaders).
  void RenewLeases() {
    const absl::Time now = absl::Now();
    absl::StatusOr<bool> w = coord_->TryLease(WorkerLease(opts_.worker),
                                              holder_, opts_.leader_lease);
    if (w.ok()) {
      holds_worker_lease_.store(*w);
      if (*w) last_worker_renewal_ = now;
    } else if (now - last_worker_renewal_ >= opts_.leader_lease) {
      holds_worker_lease_.store(false);
    }
    bool leader = false;
    if (holds_worker_lease_.load()) {
      absl::StatusOr<bool> l =
          coord_->TryLease(kLeaderLease, holder_, opts_.leader_lease);
      leader = l.ok() && *l;
    }
    if (leader && !is_leader_.exchange(true)) {
      absl::MutexLock l(&lease_mu_);
      adopt_now_ = true;  // adopt orphans once at becoming leader
    } else if (!leader) {
      is_leader_.store(false);
    }
  }

  void ReleaseLeases() {
    if (!remote_ || !coord_) return;
    if (is_leader_.exchange(false)) {
      (void)coord_->ReleaseLease(kLeaderLease, holder_);
    }
    if (holds_worker_lease_.exchange(false)) {
      (void)coord_->ReleaseLease(WorkerLease(opts_.worker), holder_);
    }
  }

  void LeaseLoop() {
    for (;;) {
      {
        absl::MutexLock l(&lease_mu_);
        lease_mu_.AwaitWithTimeout(absl::Condition(&lease_stopping_),
                                   opts_.leader_lease / 5);
        if (lease_stopping_) return;
      }
      RenewLeases();
    }
  }

  // The leader adopts orphans every kAdoptInterval and at becoming leader.
  void AdoptLoop() {
    for (;;) {
      {
        absl::MutexLock l(&lease_mu_);
        auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lease_mu_) {
          return lease_stopping_ || adopt_now_;
        };
        lease_mu_.AwaitWithTimeout(absl::Condition(&wake), kAdoptInterval);
        if (lease_stopping_) return;
        adopt_now_ = false;
      }
      if (IsLeader()) (void)AdoptOrphans();
    }
  }

 public:
  // For every other worker whose lease is free and whose events go beyond
  // its checkpoint: takes its lease, folds those events with a builder of
  // its own and checkpoints them as that worker's. Returns how many workers
  // were adopted.
  absl::StatusOr<int> AdoptOrphans() {
    if (!remote_) return 0;
    absl::MutexLock adopting(&adopt_mu_);
    absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> cps =
        store_->ListRollupCheckpoints();
    if (!cps.ok()) return cps.status();
    int adopted = 0;
    for (const auto& [w, cp] : *cps) {
      if (w == opts_.worker) continue;
      absl::StatusOr<std::string> holder = coord_->LeaseHolder(WorkerLease(w));
      if (!holder.ok()) return holder.status();
      if (!holder->empty()) continue;  // alive: it folds its own events
      bool unfolded = false;
      absl::Status s = store_->ScanEventsAfter(cp, w, [&](const Event&) {
        unfolded = true;
        return false;
      });
      if (!s.ok()) return s;
      if (!unfolded) continue;
      absl::StatusOr<bool> got =
          coord_->TryLease(WorkerLease(w), holder_, kAdoptLease);
      if (!got.ok()) return got.status();
      if (!*got) continue;
      s = AdoptWorker(w);
      (void)coord_->ReleaseLease(WorkerLease(w), holder_);
      if (!s.ok()) return s;
      ++adopted;
    }
    return adopted;
  }

 private:
  absl::Status AdoptWorker(int32_t w) {
    absl::StatusOr<int64_t> cp = store_->RollupCheckpoint(w);  // under lease
    if (!cp.ok()) return cp.status();
    absl::StatusOr<std::vector<Site>> sites = store_->ListSites();
    if (!sites.ok()) return sites.status();
    RollupBuilder orphan;
    for (const Site& site : *sites) {
      absl::TimeZone tz;
      if (!absl::LoadTimeZone(site.timezone, &tz)) tz = absl::UTCTimeZone();
      orphan.SetSiteTimezone(site.id, tz);
    }
    orphan.set_last_seq(*cp);
    std::vector<Event> chunk;
    absl::Status s = store_->ScanEventsAfter(*cp, w, [&](const Event& e) {
      chunk.push_back(e);
      if (chunk.size() >= 10000) {
        orphan.Add(chunk);
        chunk.clear();
      }
      return true;
    });
    if (!s.ok()) return s;
    orphan.Add(chunk);
    int64_t seq = 0;
    std::vector<RollupRow> rows = orphan.Take(&seq);
    if (rows.empty()) return absl::OkStatus();
    return store_->ApplyRollups(rows, w, seq);
  }

  // Rebuilds live sessions from the last `session_timeout` of stored events.
  absl::Status RestoreSessions() {
    const int64_t now = absl::ToUnixMillis(clock_->Now());
    const int64_t from = now - absl::ToInt64Milliseconds(opts_.session_timeout);
    absl::StatusOr<std::vector<Site>> sites = store_->ListSites();
    if (!sites.ok()) return sites.status();
    for (const Site& site : *sites) {
      absl::flat_hash_map<uint64_t, Event> last;
      EventScan scan{site.id, from, now + kDayMs, false};
      absl::Status s = store_->ScanEvents(scan, [&](const Event& e) {
        Event& l = last[e.session_id];
        if (e.s_events >= l.s_events) l = e;
        return true;
      });
      if (!s.ok()) return s;
      for (const auto& [id, e] : last) sessions_->Restore(e);
    }
    return absl::OkStatus();
  }

  static constexpr char kLeaderLease[] = "leader";
  static constexpr absl::Duration kSaltTtl = absl::Hours(48);
  static constexpr absl::Duration kAdoptInterval = absl::Seconds(30);
  // Held while adopting a worker; a restarting worker is refused meanwhile.
  static constexpr absl::Duration kAdoptLease = absl::Minutes(10);

  const Options opts_;
  Clock* const clock_;
  const std::string worker_name_;
  // Lease holder token: the worker name plus this instance's number in the
  // process (two engines of one process never share a token).
  const std::string holder_;
  std::unique_ptr<Coordinator> coord_;
  bool remote_ = false;  // set once in Init()
  std::unique_ptr<Store> store_;
  std::unique_ptr<CountryResolver> geo_;
  std::unique_ptr<Enricher> enricher_;
  std::unique_ptr<Sessionizer> sessions_;
  RollupBuilder rollups_;

  std::atomic<bool> holds_worker_lease_{false};
  std::atomic<bool> is_leader_{false};
  absl::Time last_worker_renewal_ = absl::Now();  // lease thread only
  absl::Mutex lease_mu_;
  bool lease_stopping_ ABSL_GUARDED_BY(lease_mu_) = false;
  bool adopt_now_ ABSL_GUARDED_BY(lease_mu_) = false;
  std::thread lease_thread_;
  std::thread adopter_;
  absl::Mutex adopt_mu_;
  std::atomic<bool> crashed_{false};

  absl::Mutex sites_mu_;
  absl::flat_hash_map<std::string, Site> by_domain_ ABSL_GUARDED_BY(sites_mu_);
  absl::flat_hash_map<std::string, Site> by_short_ ABSL_GUARDED_BY(sites_mu_);
  absl::Mutex reload_mu_ ABSL_ACQUIRED_BEFORE(sites_mu_);
  static constexpr double kReloadsPerSecond = 20;
  static constexpr double kReloadBurst = 10;
  absl::Time last_site_reload_ ABSL_GUARDED_BY(reload_mu_) = absl::Now();
  double reload_tokens_ ABSL_GUARDED_BY(reload_mu_) = kReloadBurst;
  absl::flat_hash_map<std::string, absl::Time> missed_sites_
      ABSL_GUARDED_BY(reload_mu_);

  absl::Mutex salt_mu_;
  absl::flat_hash_map<int64_t, std::string> salts_ ABSL_GUARDED_BY(salt_mu_);

  absl::Mutex queue_mu_;
  std::deque<std::shared_ptr<Pending>> queue_ ABSL_GUARDED_BY(queue_mu_);
  int64_t queued_events_ ABSL_GUARDED_BY(queue_mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread committer_;

  // Event vectors handed back by the folder, whose Events Prepare fills in
  // place: their strings keep their capacity, so an event costs no malloc
  // and free per string (frees that would run on the folder thread, for
  // memory the callers' threads allocated: glibc's slow path). Bounded in
  // bytes (see Recycle): ~16K typical events, a few batches in flight.
  static constexpr size_t kMaxSpareBytes = 16 << 20;
  const bool recycle_;  // SetEventRecyclingForTest
  struct Spare {
    std::vector<Event> events;
    size_t bytes = 0;  // RetainedBytes of the events
  };
  absl::Mutex spare_mu_;
  std::vector<Spare> spare_ ABSL_GUARDED_BY(spare_mu_);
  size_t spare_bytes_ ABSL_GUARDED_BY(spare_mu_) = 0;
  std::atomic<int64_t> recycled_events_{0};

  // Queued events cost ~1 KB each (an Event and its strings).
  static constexpr int64_t kMaxFoldLag = 65536;
  // The folder folds once kFoldBatchEvents are queued or kFoldDelay after
  // the first of them was (sooner when a query waits): see FoldLoop.
  static constexpr int64_t kFoldBatchEvents = 4096;
  static constexpr absl::Duration kFoldDelay = absl::Milliseconds(10);
  static constexpr int kCheckpointSpacing = 20;  // see FoldLoop
  // Pending rollup cells that force a checkpoint whatever the spacing: the
  // bound on the folder's memory (a cell's sketch takes up to 16 KiB).
  static constexpr int64_t kMaxPendingCells = 16384;
  absl::Mutex fold_mu_;
  std::deque<std::vector<Event>> fold_queue_ ABSL_GUARDED_BY(fold_mu_);
  int64_t fold_queued_ ABSL_GUARDED_BY(fold_mu_) = 0;
  int64_t committed_seq_ ABSL_GUARDED_BY(fold_mu_) = 0;
  int64_t folded_seq_ ABSL_GUARDED_BY(fold_mu_) = 0;
  bool fold_stopping_ ABSL_GUARDED_BY(fold_mu_) = false;
  // Callers of AwaitFolded waiting now.
  int fold_wanted_ ABSL_GUARDED_BY(fold_mu_) = 0;
  std::thread folder_;
  absl::Mutex checkpoint_mu_;
  // Rows of a failed ApplyRollups whose commit is unknown, and its seq (-1:
  // none). See Checkpoint().
  std::vector<RollupRow> in_doubt_rows_ ABSL_GUARDED_BY(checkpoint_mu_);
  int64_t in_doubt_seq_ ABSL_GUARDED_BY(checkpoint_mu_) = -1;

  std::atomic<bool> closed_{false};
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> commits_{0};
  absl::Mutex stats_mu_;
  std::map<std::string, int64_t> dropped_ ABSL_GUARDED_BY(stats_mu_);
  static constexpr double kLatencyBoundsMs[] = {0.5, 1,  2,   5,   10,
                                                25,  50, 100, 250, 1000};
  int64_t latency_counts_[std::size(kLatencyBoundsMs) + 1] ABSL_GUARDED_BY(
      stats_mu_) = {};
  double latency_sum_ms_ ABSL_GUARDED_BY(stats_mu_) = 0;
};

}  // namespace

void AbandonEngineForTest(Engine* engine) {
  dynamic_cast<EngineImpl&>(*engine).Abandon();
}

absl::StatusOr<int> AdoptOrphansForTest(Engine* engine) {
  return dynamic_cast<EngineImpl&>(*engine).AdoptOrphans();
}

void SetStoreWrapperForTest(StoreWrapper wrap) {
  TestStoreWrapper() = std::move(wrap);
}

void SetEventRecyclingForTest(bool enabled) { recycle_events.store(enabled); }

int64_t RecycledEventsForTest(Engine* engine) {
  return dynamic_cast<EngineImpl&>(*engine).recycled_events();
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const Options& options) {
  auto engine = std::make_unique<EngineImpl>(options);
  absl::Status s = engine->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace analytics
