// Enricher: the enrichment stage as one call, from a validated EventInput to
// the enriched fields of an Event (page, hostname, browser, OS, device,
// source, UTM, country, screen class, visitor ids).
//
// Owns: the order of enrichment steps and the screen-size classes. Salts come
// from the caller (the engine shares them through the store).
// Thread-safe.
#ifndef ANALYTICS_ENRICH_ENRICHER_H_
#define ANALYTICS_ENRICH_ENRICHER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/event.h"
#include "analytics/store.h"
#include "libanalytics/enrich/country.h"
#include "libanalytics/enrich/user_agent.h"

namespace analytics {

// Plausible's screen classes by viewport width: Mobile < 576 <= Tablet < 992
// <= Laptop < 1440 <= Desktop; "" when unknown.
std::string ScreenClass(int width);

class Enricher {
 public:
  // Salt for a UTC day number (days since the epoch).
  using SaltFn = std::function<absl::StatusOr<std::string>(int64_t day)>;

  // `geo` is not owned and must outlive the Enricher. A day's salt must not
  // change once `salts` returned it: each thread keeps the last day's pair.
  Enricher(const CountryResolver* geo, SaltFn salts)
      : geo_(geo), salts_(std::move(salts)), id_(NextId()) {}

  // Fills site_id, ts_ms (in.ts or `now`), name, hostname, page, props,
  // visit (except entry_page), imported and visitor_id; *prev_visitor_id is
  // the id under the previous day's salt. Every other field of *e (seq,
  // worker, entry_page and the session stamps) gets a fresh Event's value,
  // so *e may be a recycled Event: strings are assigned over their capacity
  // and nothing of its previous contents remains. When the user agent is a
  // bot, sets *bot_reason (DetectBot's reason) and stops early, leaving *e
  // as it was: the event is to be dropped.
  absl::Status Enrich(const EventInput& in, const Site& site, absl::Time now,
                      Event* e, uint64_t* prev_visitor_id,
                      std::string* bot_reason);

 private:
  static uint64_t NextId();

  const CountryResolver* geo_;
  SaltFn salts_;
  const uint64_t id_;  // names this Enricher in the per-thread salt cache
  UserAgentCache ua_cache_;
};

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_ENRICHER_H_
