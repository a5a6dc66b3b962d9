// The enrichment stage; see enricher.h.
#include "libanalytics/enrich/enricher.h"

#include <atomic>
#include <cstring>
#include <string_view>

#include "libanalytics/enrich/referrer.h"
#include "libanalytics/enrich/string_util.h"
#include "libanalytics/enrich/url.h"
#include "libanalytics/enrich/visitor_id.h"

namespace analytics {
namespace {

using enrich_internal::AssignShort;
constexpr int64_t kDayMs = 86400000;
int64_t FloorDiv(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// The salts of the last day a thread enriched an event of, for one Enricher:
// saves two SaltFn calls (each a locked lookup and a string copy) per event.
struct SaltCache {
  uint64_t owner = 0;  // Enricher::id_, 0 = empty
  int64_t day = 0;
  char salt[16];
  char prev[16];
};
thread_local SaltCache salt_cache;
std::atomic<uint64_t> next_enricher_id{1};

// absl::ToUnixMillis inline: it is an out-of-line call into Debian's shared
// abseil (~20 instructions per event). A finite Time is whole seconds (hi)
// and quarter-nanosecond ticks in [0, 4e9) (lo), so the floor of its
// milliseconds is hi * 1000 + lo / 4e6; infinite Times and seconds beyond
// what the product holds take absl's call.
int64_t UnixMillis(absl::Time t) {
  const absl::Duration d = absl::time_internal::ToUnixDuration(t);
  const int64_t hi = absl::time_internal::GetRepHi(d);
  const uint32_t lo = absl::time_internal::GetRepLo(d);
  constexpr int64_t kMaxSeconds = int64_t{1} << 52;
  if (lo == ~uint32_t{0} || hi >= kMaxSeconds || hi <= -kMaxSeconds) {
    return absl::ToUnixMillis(t);
  }
  return hi * 1000 + static_cast<int64_t>(
                         lo / (absl::time_internal::kTicksPerSecond / 1000));
}

// ScreenClass without building a string (assigned over the Event's).
std::string_view ScreenClassName(int width) {
  if (width <= 0) return "";
  if (width < 576) return "Mobile";
  if (width < 992) return "Tablet";
  if (width < 1440) return "Laptop";
  return "Desktop";
}
}  // namespace

uint64_t Enricher::NextId() {
  return next_enricher_id.fetch_add(1, std::memory_order_relaxed);
}

std::string ScreenClass(int width) {
  return std::string(ScreenClassName(width));
}

absl::Status Enricher::Enrich(const EventInput& in, const Site& site,
                              absl::Time now, Event* e,
                              uint64_t* prev_visitor_id,
                              std::string* bot_reason) {
  const UserAgentInfo* ua = &ua_cache_.Lookup(in.user_agent);
  if (!ua->bot_reason.empty()) {
    *bot_reason = ua->bot_reason;
    return absl::OkStatus();
  }
  // Every field is assigned (strings over their capacity), so that *e may be
  // a recycled Event: the session stamps, seq and worker get a fresh
  // Event's values for the Sessionizer and the store to fill.
  e->seq = 0;
  e->site_id = site.id;
  e->ts_ms = UnixMillis(in.ts.value_or(now));
  AssignShort(&e->name, in.name);
  e->imported = in.imported;
  const UrlParts url = SplitUrlNormalized(in.url, &e->hostname, &e->page);
  if (!in.props.empty() || !e->props.empty()) e->props = in.props;
  e->session_id = 0;
  e->session_start_ms = 0;
  e->first_in_session = e->first_page = e->first_name = false;
  e->s_pageviews = 0;
  e->s_events = 0;
  e->s_bounce = false;
  e->s_duration_ms = 0;
  e->s_exit_page.clear();
  e->d_bounce = 0;
  e->d_duration_ms = 0;
  e->worker = 0;
  VisitAttrs& v = e->visit;
  v.entry_page.clear();
  AssignShort(&v.browser, ua->browser);
  AssignShort(&v.browser_version, ua->browser_version);
  AssignShort(&v.os, ua->os);
  AssignShort(&v.os_version, ua->os_version);
  AssignShort(&v.device, ua->device);
  ParseAcquisition(url, in.referrer, site.domain, &v);
  geo_->Resolve(in.ip, in.country_hint, in.timezone, &v.country);
  AssignShort(&v.screen, ScreenClassName(in.screen_width));
  AssignShort(&v.locale, in.locale);
  const int64_t day = FloorDiv(e->ts_ms, kDayMs);
  SaltCache& cache = salt_cache;
  if (cache.owner != id_ || cache.day != day) {
    absl::StatusOr<std::string> salt = salts_(day);
    if (!salt.ok()) return salt.status();
    absl::StatusOr<std::string> prev = salts_(day - 1);
    if (!prev.ok()) return prev.status();
    if (salt->size() != sizeof(cache.salt) ||
        prev->size() != sizeof(cache.prev)) {
      VisitorIds(*salt, *prev, site.id, in.ip, in.user_agent, &e->visitor_id,
                 prev_visitor_id);
      return absl::OkStatus();
    }
    std::memcpy(cache.salt, salt->data(), sizeof(cache.salt));
    std::memcpy(cache.prev, prev->data(), sizeof(cache.prev));
    cache.owner = id_;
    cache.day = day;
  }
  VisitorIds(std::string_view(cache.salt, sizeof(cache.salt)),
             std::string_view(cache.prev, sizeof(cache.prev)), site.id, in.ip,
             in.user_agent, &e->visitor_id, prev_visitor_id);
  return absl::OkStatus();
}

}  // namespace analytics
