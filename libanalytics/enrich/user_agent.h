// User-agent parsing: browser, OS and device class from a User-Agent string.
//
// Owns: the UA rules and their cache. Hand-written because no maintained UA
// parser is packaged for Debian 12 (uap-cpp and its regex corpus are not);
// the rules follow the token order browsers actually emit.
#ifndef ANALYTICS_ENRICH_USER_AGENT_H_
#define ANALYTICS_ENRICH_USER_AGENT_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace analytics {

struct UserAgentInfo {
  std::string browser;          // "Chrome", "Firefox", "Safari", "Edge", ...
  std::string browser_version;  // major.minor, e.g. "120.0"
  std::string os;          // "Windows", "Mac", "iOS", "Android", "Linux", ...
  std::string os_version;  // e.g. "10", "14.2"
  std::string device;      // "Desktop" | "Mobile" | "Tablet" | ""
  // Set by UserAgentCache only: DetectBot()'s reason, "" for humans.
  std::string bot_reason;
  bool operator==(const UserAgentInfo&) const = default;
};

// Pure function; "" fields when unknown.
UserAgentInfo ParseUserAgent(std::string_view ua);

// Thread-safe bounded cache in front of ParseUserAgent (the same strings
// repeat). Cleared wholesale when it reaches capacity. Lookup() adds a small
// per-thread cache in front (no lock, no reference count per call).
class UserAgentCache {
 public:
  explicit UserAgentCache(size_t capacity = 10000) : capacity_(capacity) {}
  // The returned pointer stays valid for the cache's lifetime.
  std::shared_ptr<const UserAgentInfo> Get(std::string_view ua);
  // Get(ua)'s info, valid until this thread's next Lookup() (of any cache:
  // the per-thread entries are shared, as the info depends on `ua` alone).
  const UserAgentInfo& Lookup(std::string_view ua);

 private:
  size_t capacity_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const UserAgentInfo>> map_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_USER_AGENT_H_
