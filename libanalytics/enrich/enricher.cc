// The enrichment stage; see enricher.h.
#include "libanalytics/enrich/enricher.h"

#include "libanalytics/enrich/referrer.h"
#include "libanalytics/enrich/url.h"
#include "libanalytics/enrich/visitor_id.h"

namespace analytics {
namespace {
constexpr int64_t kDayMs = 86400000;
int64_t FloorDiv(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
}  // namespace

std::string ScreenClass(int width) {
  if (width <= 0) return "";
  if (width < 576) return "Mobile";
  if (width < 992) return "Tablet";
  if (width < 1440) return "Laptop";
  return "Desktop";
}

absl::Status Enricher::Enrich(const EventInput& in, const Site& site,
                              absl::Time now, Event* e,
                              uint64_t* prev_visitor_id,
                              std::string* bot_reason) {
  std::shared_ptr<const UserAgentInfo> ua = ua_cache_.Get(in.user_agent);
  if (!ua->bot_reason.empty()) {
    *bot_reason = ua->bot_reason;
    return absl::OkStatus();
  }
  e->site_id = site.id;
  e->ts_ms = absl::ToUnixMillis(in.ts.value_or(now));
  e->name = in.name;
  e->imported = in.imported;
  UrlParts url = SplitUrl(in.url);
  e->hostname = NormalizeHost(url.host);
  e->page = NormalizePath(url.path);
  e->props = in.props;
  VisitAttrs& v = e->visit;
  v.browser = ua->browser;
  v.browser_version = ua->browser_version;
  v.os = ua->os;
  v.os_version = ua->os_version;
  v.device = ua->device;
  Acquisition acq = ParseAcquisition(in.url, in.referrer, site.domain);
  v.source = std::move(acq.source);
  v.referrer = std::move(acq.referrer);
  v.utm_source = std::move(acq.utm_source);
  v.utm_medium = std::move(acq.utm_medium);
  v.utm_campaign = std::move(acq.utm_campaign);
  v.utm_term = std::move(acq.utm_term);
  v.utm_content = std::move(acq.utm_content);
  v.country = geo_->Resolve(in.ip, in.country_hint, in.timezone);
  v.screen = ScreenClass(in.screen_width);
  v.locale = in.locale;
  const int64_t day = FloorDiv(e->ts_ms, kDayMs);
  absl::StatusOr<std::string> salt = salts_(day);
  if (!salt.ok()) return salt.status();
  absl::StatusOr<std::string> prev = salts_(day - 1);
  if (!prev.ok()) return prev.status();
  e->visitor_id = VisitorId(*salt, site.id, in.ip, in.user_agent);
  *prev_visitor_id = VisitorId(*prev, site.id, in.ip, in.user_agent);
  return absl::OkStatus();
}

}  // namespace analytics
