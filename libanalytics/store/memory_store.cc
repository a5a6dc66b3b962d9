// In-memory Store (see memory_store.h). Owns: the in-memory representation of
// sites, api keys, meta, salts, events (a vector ordered by seq), rollups (a
// hash map keyed by site, level, bucket, dim and value), per-worker
// checkpoints, configuration documents and the job ledger.
#include "libanalytics/store/memory_store.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libanalytics/sketch/hll.h"
#include "libanalytics/store/store_checks.h"

namespace analytics {
namespace {

struct RollupKey {
  int64_t site_id;
  int level;
  int64_t bucket;
  std::string dim;
  std::string value;

  bool operator==(const RollupKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const RollupKey& k) {
    return H::combine(std::move(h), k.site_id, k.level, k.bucket, k.dim,
                      k.value);
  }
};

struct RollupCell {
  RollupMetrics m;
  std::string visitors;
};

// Merges two serialized sketches; an empty string is an empty sketch.
absl::StatusOr<std::string> MergeSketches(const std::string& a,
                                          const std::string& b) {
  if (b.empty()) return a;
  if (a.empty()) {
    // Validate b so that a bad delta is rejected consistently.
    absl::StatusOr<HyperLogLog> hb = HyperLogLog::Deserialize(b);
    if (!hb.ok()) return hb.status();
    return b;
  }
  absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(a);
  if (!h.ok()) return h.status();
  absl::Status s = h->MergeSerialized(b);
  if (!s.ok()) return s;
  return h->Serialize();
}

class MemoryStore : public Store {
 public:
  absl::StatusOr<Site> AddSite(const Site& site) override {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, s] : sites_) {
      if (s.domain == site.domain) {
        return absl::AlreadyExistsError(absl::StrCat(
            "store: site domain '", site.domain, "' already exists"));
      }
      if (s.short_id == site.short_id) {
        return absl::AlreadyExistsError(absl::StrCat(
            "store: site short_id '", site.short_id, "' already exists"));
      }
    }
    Site out = site;
    out.id = next_site_id_++;
    if (out.created_ms == 0) out.created_ms = absl::ToUnixMillis(absl::Now());
    sites_[out.id] = out;
    return out;
  }

  absl::StatusOr<std::vector<Site>> ListSites() override {
    absl::MutexLock lock(&mu_);
    std::vector<Site> out;
    out.reserve(sites_.size());
    for (const auto& [id, s] : sites_) out.push_back(s);
    return out;
  }

  absl::Status RemoveSite(int64_t site_id) override {
    absl::MutexLock lock(&mu_);
    if (sites_.erase(site_id) == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", site_id));
    }
    std::erase_if(events_,
                  [&](const Event& e) { return e.site_id == site_id; });
    absl::erase_if(rollups_,
                   [&](const auto& kv) { return kv.first.site_id == site_id; });
    std::erase_if(api_keys_,
                  [&](const auto& kv) { return kv.second.site_id == site_id; });
    std::erase_if(docs_,
                  [&](const auto& kv) { return kv.second.site_id == site_id; });
    return absl::OkStatus();
  }

  absl::Status UpdateSite(const Site& site) override {
    absl::MutexLock lock(&mu_);
    auto it = sites_.find(site.id);
    if (it == sites_.end()) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", site.id));
    }
    it->second.timezone = site.timezone;
    it->second.allowed_origins = site.allowed_origins;
    it->second.retention_days = site.retention_days;
    return absl::OkStatus();
  }

  // ---- API keys.

  absl::StatusOr<ApiKeyRecord> AddApiKey(const ApiKeyRecord& key) override {
    absl::MutexLock lock(&mu_);
    if (!sites_.contains(key.site_id)) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", key.site_id));
    }
    for (const auto& [id, k] : api_keys_) {
      if (k.secret_hash == key.secret_hash) {
        return absl::AlreadyExistsError(
            "store: an api key with this secret hash already exists");
      }
    }
    ApiKeyRecord out = key;
    out.id = next_api_key_id_++;
    api_keys_[out.id] = out;
    return out;
  }

  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() override {
    absl::MutexLock lock(&mu_);
    std::vector<ApiKeyRecord> out;
    out.reserve(api_keys_.size());
    for (const auto& [id, k] : api_keys_) out.push_back(k);
    return out;
  }

  absl::Status RevokeApiKey(int64_t id, int64_t revoked_ms) override {
    absl::MutexLock lock(&mu_);
    auto it = api_keys_.find(id);
    if (it == api_keys_.end()) {
      return absl::NotFoundError(
          absl::StrCat("store: no api key with id ", id));
    }
    it->second.revoked_ms = revoked_ms;
    return absl::OkStatus();
  }

  absl::StatusOr<ApiKeyRecord> FindApiKeyByHash(
      std::string_view secret_hash) override {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, k] : api_keys_) {
      if (k.secret_hash == secret_hash) return k;
    }
    return absl::NotFoundError("store: no api key with this secret hash");
  }

  // ---- Meta.

  absl::StatusOr<std::optional<std::string>> GetMeta(
      std::string_view key) override {
    absl::MutexLock lock(&mu_);
    auto it = meta_.find(std::string(key));
    if (it == meta_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  absl::StatusOr<std::string> PutMetaIfAbsent(std::string_view key,
                                              std::string value) override {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = meta_.try_emplace(std::string(key), std::move(value));
    return it->second;
  }

  absl::Status PutMeta(std::string_view key, std::string value) override {
    absl::MutexLock lock(&mu_);
    meta_[std::string(key)] = std::move(value);
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<std::string>> GetSalt(int64_t day) override {
    absl::MutexLock lock(&mu_);
    auto it = salts_.find(day);
    if (it == salts_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  absl::StatusOr<std::string> PutSaltIfAbsent(int64_t day,
                                              std::string salt) override {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = salts_.try_emplace(day, std::move(salt));
    return it->second;
  }

  absl::Status DeleteSaltsBefore(int64_t day) override {
    absl::MutexLock lock(&mu_);
    salts_.erase(salts_.begin(), salts_.lower_bound(day));
    return absl::OkStatus();
  }

  absl::Status AppendEvents(absl::Span<Event> events) override {
    absl::MutexLock lock(&mu_);
    for (Event& e : events) {
      e.seq = next_seq_++;
      events_.push_back(e);
    }
    return absl::OkStatus();
  }

  absl::Status ScanEvents(
      const EventScan& scan,
      const std::function<bool(const Event&)>& fn) override {
    std::vector<Event> matches;
    {
      absl::MutexLock lock(&mu_);
      for (const Event& e : events_) {
        if (e.site_id != scan.site_id) continue;
        bool in_range = e.ts_ms >= scan.from_ms && e.ts_ms < scan.to_ms;
        if (!in_range && scan.include_session_starts) {
          in_range = e.session_start_ms >= scan.from_ms &&
                     e.session_start_ms < scan.to_ms;
        }
        if (in_range) matches.push_back(e);
      }
    }
    std::sort(matches.begin(), matches.end(),
              [](const Event& a, const Event& b) {
                return std::tie(a.ts_ms, a.seq) < std::tie(b.ts_ms, b.seq);
              });
    for (const Event& e : matches) {
      if (!fn(e)) break;
    }
    return absl::OkStatus();
  }

  absl::Status ScanEventsAfter(
      int64_t after_seq, int32_t worker,
      const std::function<bool(const Event&)>& fn) override {
    std::vector<Event> matches;
    {
      absl::MutexLock lock(&mu_);
      auto it = std::upper_bound(
          events_.begin(), events_.end(), after_seq,
          [](int64_t seq, const Event& e) { return seq < e.seq; });
      for (; it != events_.end(); ++it) {
        if (it->worker == worker) matches.push_back(*it);
      }
    }
    for (const Event& e : matches) {
      if (!fn(e)) break;
    }
    return absl::OkStatus();
  }

  absl::Status ApplyRollups(absl::Span<const RollupRow> deltas, int32_t worker,
                            int64_t checkpoint_seq) override {
    absl::MutexLock lock(&mu_);
    // Compute every merged cell first so that a bad sketch leaves the store
    // unchanged (all or nothing, like the durable stores).
    absl::flat_hash_map<RollupKey, RollupCell> staged;
    for (const RollupRow& d : deltas) {
      RollupKey key{d.site_id, static_cast<int>(d.level), d.bucket, d.dim,
                    d.value};
      auto sit = staged.find(key);
      if (sit == staged.end()) {
        auto rit = rollups_.find(key);
        RollupCell base = rit == rollups_.end() ? RollupCell{} : rit->second;
        sit = staged.emplace(std::move(key), std::move(base)).first;
      }
      RollupCell& cell = sit->second;
      absl::StatusOr<std::string> merged =
          MergeSketches(cell.visitors, d.visitors);
      if (!merged.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("store: bad visitors sketch in rollup delta: ",
                         merged.status().message()));
      }
      cell.visitors = *std::move(merged);
      cell.m += d.m;
    }
    for (auto& [key, cell] : staged) rollups_[key] = std::move(cell);
    checkpoints_[worker] = checkpoint_seq;
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> RollupCheckpoint(int32_t worker) override {
    absl::MutexLock lock(&mu_);
    auto it = checkpoints_.find(worker);
    return it == checkpoints_.end() ? int64_t{0} : it->second;
  }

  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>>
  ListRollupCheckpoints() override {
    absl::MutexLock lock(&mu_);
    return std::vector<std::pair<int32_t, int64_t>>(checkpoints_.begin(),
                                                    checkpoints_.end());
  }

  absl::Status ScanRollups(
      int64_t site_id, RollupLevel level, int64_t from_bucket,
      int64_t to_bucket, absl::Span<const std::string> dims,
      const std::function<void(const RollupRow&)>& fn) override {
    absl::flat_hash_set<std::string> dim_set(dims.begin(), dims.end());
    std::vector<RollupRow> rows;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [k, cell] : rollups_) {
        if (k.site_id != site_id || k.level != static_cast<int>(level) ||
            k.bucket < from_bucket || k.bucket >= to_bucket ||
            !dim_set.contains(k.dim)) {
          continue;
        }
        RollupRow r;
        r.site_id = k.site_id;
        r.level = level;
        r.bucket = k.bucket;
        r.dim = k.dim;
        r.value = k.value;
        r.m = cell.m;
        r.visitors = cell.visitors;
        rows.push_back(std::move(r));
      }
    }
    // Same order as the SQLite store's primary key: (dim, bucket, value).
    std::sort(rows.begin(), rows.end(),
              [](const RollupRow& a, const RollupRow& b) {
                return std::tie(a.dim, a.bucket, a.value) <
                       std::tie(b.dim, b.bucket, b.value);
              });
    for (const RollupRow& r : rows) fn(r);
    return absl::OkStatus();
  }

  absl::Status ClearRollups() override {
    absl::MutexLock lock(&mu_);
    rollups_.clear();
    checkpoints_.clear();
    return absl::OkStatus();
  }

  // ---- Retention.

  absl::StatusOr<int64_t> DeleteEventsBefore(int64_t site_id,
                                             int64_t before_ms) override {
    absl::MutexLock lock(&mu_);
    return static_cast<int64_t>(std::erase_if(events_, [&](const Event& e) {
      return e.site_id == site_id && e.ts_ms < before_ms;
    }));
  }

  absl::Status EraseSiteData(int64_t site_id) override {
    absl::MutexLock lock(&mu_);
    if (!sites_.contains(site_id)) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", site_id));
    }
    std::erase_if(events_,
                  [&](const Event& e) { return e.site_id == site_id; });
    absl::erase_if(rollups_,
                   [&](const auto& kv) { return kv.first.site_id == site_id; });
    return absl::OkStatus();
  }

  // ---- Configuration documents.

  absl::StatusOr<ConfigDoc> AddConfigDoc(const ConfigDoc& doc) override {
    absl::Status st = CheckConfigDoc(doc);
    if (!st.ok()) return st;
    absl::MutexLock lock(&mu_);
    if (doc.site_id != 0 && !sites_.contains(doc.site_id)) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", doc.site_id));
    }
    ConfigDoc out = doc;
    out.id = next_doc_id_++;
    if (out.updated_ms == 0) out.updated_ms = absl::ToUnixMillis(absl::Now());
    docs_[out.id] = out;
    return out;
  }

  absl::StatusOr<std::vector<ConfigDoc>> ListConfigDocs(
      std::string_view kind, int64_t site_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<ConfigDoc> out;
    for (const auto& [id, d] : docs_) {
      if ((kind.empty() || d.kind == kind) &&
          (site_id == 0 || d.site_id == site_id)) {
        out.push_back(d);
      }
    }
    return out;
  }

  absl::Status UpdateConfigDoc(const ConfigDoc& doc) override {
    absl::Status st = CheckConfigDocJson(doc.json);
    if (!st.ok()) return st;
    absl::MutexLock lock(&mu_);
    auto it = docs_.find(doc.id);
    if (it == docs_.end()) {
      return absl::NotFoundError(
          absl::StrCat("store: no config doc with id ", doc.id));
    }
    it->second.json = doc.json;
    it->second.updated_ms =
        doc.updated_ms != 0 ? doc.updated_ms : absl::ToUnixMillis(absl::Now());
    return absl::OkStatus();
  }

  absl::Status DeleteConfigDoc(int64_t id) override {
    absl::MutexLock lock(&mu_);
    if (docs_.erase(id) == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no config doc with id ", id));
    }
    return absl::OkStatus();
  }

  // ---- Job ledger.

  absl::StatusOr<JobRun> ClaimJobRun(const JobRun& want,
                                     int64_t stale_before_ms) override {
    absl::Status st = CheckJobRun(want);
    if (!st.ok()) return st;
    absl::MutexLock lock(&mu_);
    auto [it, inserted] =
        job_runs_.try_emplace(JobKey{want.job, want.site_id, want.period});
    JobRun& row = it->second;
    if (inserted) {
      row = want;
      row.state = kJobClaimed;
      row.attempts = 1;
      row.error.clear();
    } else if (JobRunTakeable(row, stale_before_ms)) {
      row.state = kJobClaimed;
      row.holder = want.holder;
      row.attempts += 1;
      row.updated_ms = want.updated_ms;
    }
    return row;
  }

  absl::Status UpdateJobRun(const JobRun& run) override {
    absl::MutexLock lock(&mu_);
    auto it = job_runs_.find(JobKey{run.job, run.site_id, run.period});
    if (it == job_runs_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("store: job run ", run.job, "/", run.site_id, "/",
                       run.period, " was never claimed"));
    }
    JobRun& row = it->second;
    if (row.holder != run.holder) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store: job run ", run.job, "/", run.site_id, "/", run.period,
          " is held by ", row.holder, ", not ", run.holder));
    }
    row.state = run.state;
    row.error = run.error;
    row.attempts = run.attempts;
    row.updated_ms = run.updated_ms;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<JobRun>> ListJobRuns(std::string_view job,
                                                  int64_t limit) override {
    std::vector<JobRun> out;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [key, row] : job_runs_) {
        if (job.empty() || row.job == job) out.push_back(row);
      }
    }
    // Newest first; ties in key order.
    std::stable_sort(out.begin(), out.end(),
                     [](const JobRun& a, const JobRun& b) {
                       return a.updated_ms > b.updated_ms;
                     });
    if (limit > 0 && out.size() > static_cast<size_t>(limit)) {
      out.resize(static_cast<size_t>(limit));
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::map<int64_t, Site> sites_ ABSL_GUARDED_BY(mu_);
  int64_t next_site_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, ApiKeyRecord> api_keys_ ABSL_GUARDED_BY(mu_);
  int64_t next_api_key_id_ ABSL_GUARDED_BY(mu_) = 1;
  // User meta; rollup checkpoints are a separate member, so no collision.
  std::map<std::string, std::string> meta_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::string> salts_ ABSL_GUARDED_BY(mu_);
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);  // ascending seq
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<RollupKey, RollupCell> rollups_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, int64_t> checkpoints_ ABSL_GUARDED_BY(mu_);  // by worker
  std::map<int64_t, ConfigDoc> docs_ ABSL_GUARDED_BY(mu_);
  int64_t next_doc_id_ ABSL_GUARDED_BY(mu_) = 1;
  using JobKey = std::tuple<std::string, int64_t, std::string>;
  std::map<JobKey, JobRun> job_runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() {
  return std::make_unique<MemoryStore>();
}

}  // namespace analytics
