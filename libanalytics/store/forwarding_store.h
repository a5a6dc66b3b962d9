// A Store that forwards every call to another one: the base for test
// doubles that inject faults into one method (e.g. a commit that succeeds but
// reports an error, as when a connection drops before the answer) while the
// rest behaves as the real store.
#ifndef ANALYTICS_STORE_FORWARDING_STORE_H_
#define ANALYTICS_STORE_FORWARDING_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analytics/store.h"

namespace analytics {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(std::unique_ptr<Store> base)
      : base_(std::move(base)) {}
  Store* base() const { return base_.get(); }

  absl::StatusOr<Site> AddSite(const Site& site) override {
    return base_->AddSite(site);
  }
  absl::StatusOr<std::vector<Site>> ListSites() override {
    return base_->ListSites();
  }
  absl::Status RemoveSite(int64_t site_id) override {
    return base_->RemoveSite(site_id);
  }
  absl::Status UpdateSite(const Site& site) override {
    return base_->UpdateSite(site);
  }
  absl::StatusOr<ApiKeyRecord> AddApiKey(const ApiKeyRecord& key) override {
    return base_->AddApiKey(key);
  }
  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() override {
    return base_->ListApiKeys();
  }
  absl::Status RevokeApiKey(int64_t id, int64_t revoked_ms) override {
    return base_->RevokeApiKey(id, revoked_ms);
  }
  absl::StatusOr<ApiKeyRecord> FindApiKeyByHash(
      std::string_view secret_hash) override {
    return base_->FindApiKeyByHash(secret_hash);
  }
  absl::StatusOr<std::optional<std::string>> GetMeta(
      std::string_view key) override {
    return base_->GetMeta(key);
  }
  absl::StatusOr<std::string> PutMetaIfAbsent(std::string_view key,
                                              std::string value) override {
    return base_->PutMetaIfAbsent(key, std::move(value));
  }
  absl::Status PutMeta(std::string_view key, std::string value) override {
    return base_->PutMeta(key, std::move(value));
  }
  absl::StatusOr<std::optional<std::string>> GetSalt(int64_t day) override {
    return base_->GetSalt(day);
  }
  absl::StatusOr<std::string> PutSaltIfAbsent(int64_t day,
                                              std::string salt) override {
    return base_->PutSaltIfAbsent(day, std::move(salt));
  }
  absl::Status DeleteSaltsBefore(int64_t day) override {
    return base_->DeleteSaltsBefore(day);
  }
  absl::Status AppendEvents(absl::Span<Event> events) override {
    return base_->AppendEvents(events);
  }
  absl::Status ScanEvents(
      const EventScan& scan,
      const std::function<bool(const Event&)>& fn) override {
    return base_->ScanEvents(scan, fn);
  }
  absl::Status ScanEventsAfter(
      int64_t after_seq, int32_t worker,
      const std::function<bool(const Event&)>& fn) override {
    return base_->ScanEventsAfter(after_seq, worker, fn);
  }
  absl::Status ApplyRollups(absl::Span<const RollupRow> deltas, int32_t worker,
                            int64_t checkpoint_seq) override {
    return base_->ApplyRollups(deltas, worker, checkpoint_seq);
  }
  absl::StatusOr<int64_t> RollupCheckpoint(int32_t worker) override {
    return base_->RollupCheckpoint(worker);
  }
  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>>
  ListRollupCheckpoints() override {
    return base_->ListRollupCheckpoints();
  }
  absl::Status ScanRollups(
      int64_t site_id, RollupLevel level, int64_t from_bucket,
      int64_t to_bucket, absl::Span<const std::string> dims,
      const std::function<void(const RollupRow&)>& fn) override {
    return base_->ScanRollups(site_id, level, from_bucket, to_bucket, dims, fn);
  }
  absl::Status ClearRollups() override { return base_->ClearRollups(); }
  absl::StatusOr<int64_t> DeleteEventsBefore(int64_t site_id,
                                             int64_t before_ms) override {
    return base_->DeleteEventsBefore(site_id, before_ms);
  }
  absl::Status EraseSiteData(int64_t site_id) override {
    return base_->EraseSiteData(site_id);
  }
  absl::StatusOr<ConfigDoc> AddConfigDoc(const ConfigDoc& doc) override {
    return base_->AddConfigDoc(doc);
  }
  absl::StatusOr<std::vector<ConfigDoc>> ListConfigDocs(
      std::string_view kind, int64_t site_id) override {
    return base_->ListConfigDocs(kind, site_id);
  }
  absl::Status UpdateConfigDoc(const ConfigDoc& doc) override {
    return base_->UpdateConfigDoc(doc);
  }
  absl::Status DeleteConfigDoc(int64_t id) override {
    return base_->DeleteConfigDoc(id);
  }
  absl::StatusOr<JobRun> ClaimJobRun(const JobRun& want,
                                     int64_t stale_before_ms) override {
    return base_->ClaimJobRun(want, stale_before_ms);
  }
  absl::Status UpdateJobRun(const JobRun& run) override {
    return base_->UpdateJobRun(run);
  }
  absl::StatusOr<std::vector<JobRun>> ListJobRuns(std::string_view job,
                                                  int64_t limit) override {
    return base_->ListJobRuns(job, limit);
  }

 private:
  std::unique_ptr<Store> base_;
};

}  // namespace analytics

#endif  // ANALYTICS_STORE_FORWARDING_STORE_H_
