// Public event types of libanalytics.
//
// EventInput is the one canonical shape an event arrives in (from a library
// call, a tracker protocol adapter, a JSON line of the CLI). Event is what the
// pipeline makes of it after enrichment and sessionization: the row that is
// stored durably and from which every rollup and every answer derives.
//
// Privacy: EventInput carries the client IP and user agent; Event never does.
// Only their keyed, daily-salted hash (visitor_id) and the parsed browser/OS
// fields survive enrichment.
#ifndef ANALYTICS_EVENT_H_
#define ANALYTICS_EVENT_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace analytics {

using Props = std::vector<std::pair<std::string, std::string>>;

// Limits enforced on every EventInput (errors name the field).
inline constexpr size_t kMaxNameLength = 120;  // characters
inline constexpr size_t kMaxUrlBytes = 2000;   // url and referrer
inline constexpr size_t kMaxProps = 30;
inline constexpr size_t kMaxPropKeyBytes = 300;
inline constexpr size_t kMaxPropValueBytes = 2000;

struct EventInput {
  std::string site;               // the site's domain, e.g. "example.com"
  std::string name = "pageview";  // "pageview" or a custom event name
  std::string url;                // full URL of the page
  std::string referrer;           // full referrer URL, may be empty
  std::optional<absl::Time> ts;   // missing: the engine clock's now
  std::string ip;                 // client IP, used only for hashing/geo
  std::string user_agent;         // used only for hashing/parsing
  Props props;                    // custom properties
  int screen_width = 0;           // px, 0 = unknown
  std::string locale;             // e.g. "en-US"
  std::string timezone;           // IANA zone of the browser
  std::string country_hint;       // ISO code from a CDN header, optional
  bool interactive = true;        // false: does not affect bounce
  bool imported = false;          // came from a log import
};

// Checks the limits above and UTF-8 validity. InvalidArgument names the field.
absl::Status ValidateEventInput(const EventInput& in);

// Parses one canonical JSON object, e.g.
// {"site":"example.com","name":"pageview","url":"https://example.com/a",
//  "referrer":"…","ts":1790812840.5,"ip":"203.0.113.9","user_agent":"…",
//  "props":{"plan":"pro"},"screen_width":1440,"locale":"en-US",
//  "timezone":"Europe/Berlin"}
// `ts` is seconds since the epoch (number) or an ISO 8601 string.
// Validates like ValidateEventInput.
absl::StatusOr<EventInput> ParseEventJson(std::string_view json);
// The same into *out, which is overwritten entirely (every field as a fresh
// EventInput would have it, then the parsed members) while its strings and
// props keep their capacity: parsing many lines into one EventInput
// allocates little. On error the status is the one above, and *out holds
// unspecified valid values (parse into it again, or assign it).
absl::Status ParseEventJson(std::string_view json, EventInput* out);

// Session-level attributes fixed at the session's first event.
struct VisitAttrs {
  std::string entry_page;
  std::string source;
  std::string referrer;  // referrer host + path, no query
  std::string utm_source, utm_medium, utm_campaign, utm_term, utm_content;
  std::string country;  // ISO 3166-1 alpha-2, "" unknown
  std::string browser, browser_version, os, os_version, device;
  std::string screen;  // "Desktop" | "Laptop" | "Tablet" | "Mobile" | ""
  std::string locale;
  bool operator==(const VisitAttrs&) const = default;
};

// A stored event: enriched, sessionized, with the session's state after it.
// Every rollup is a fold over these rows, so replaying them rebuilds rollups.
struct Event {
  int64_t seq = 0;  // assigned by the store, increasing in commit order
  int64_t site_id = 0;
  int64_t ts_ms = 0;
  std::string name;
  std::string hostname;
  std::string page;  // URL path, no query or fragment
  Props props;
  uint64_t visitor_id = 0;
  uint64_t session_id = 0;
  int64_t session_start_ms = 0;
  VisitAttrs visit;
  // Session state stamped at ingestion (after this event).
  bool first_in_session = false;  // this event opened the session
  bool first_page = false;        // first event of this page in the session
  bool first_name = false;        // first event of this name in the session
  int32_t s_pageviews = 0;        // session pageviews so far
  int32_t s_events = 0;           // session events so far
  bool s_bounce = false;          // session is a bounce so far
  int64_t s_duration_ms = 0;      // session duration so far
  std::string s_exit_page;        // last pageview's page so far
  int8_t d_bounce = 0;            // s_bounce minus its value before this event
  int64_t d_duration_ms = 0;      // s_duration_ms minus its value before
  bool imported = false;
  // The worker (Options::worker) that ingested the event: each worker folds
  // its own events into rollups (per-worker checkpoints).
  int32_t worker = 0;

  // Size, then a fixed-length compare (inlined to word compares; the
  // std::string == const char* form called strlen and memcmp, per event in
  // the sessionizer and the rollup fold).
  bool is_pageview() const {
    return name.size() == 8 && std::memcmp(name.data(), "pageview", 8) == 0;
  }
  // Plausible's engagement events (props "sd" scroll depth %, "e" engaged
  // ms): stored, but not events of their own; they feed the scroll_depth and
  // time_on_page metrics only.
  bool is_engagement() const {
    return name.size() == 10 && std::memcmp(name.data(), "engagement", 10) == 0;
  }
};

}  // namespace analytics

#endif  // ANALYTICS_EVENT_H_
