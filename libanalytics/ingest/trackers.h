// Tracker protocol adapters: the request bodies that existing trackers send,
// turned into canonical EventInputs. Pure functions, no I/O.
//
// Owns: the wire formats of Plausible's `POST /api/event`, Swetrix's
// `POST /log`, `/log/custom`, `/log/hb`, `/log/error` and
// `GET /log/noscript`, and Umami's `POST /api/send` and `/api/batch`.
// Errors are InvalidArgument naming the field ("u: required", "pid: must be
// 12 characters of [a-zA-Z0-9-]"). Every EventInput returned is validated
// with ValidateEventInput.
//
// `site` of each returned event is what the tracker identifies the site by:
// the domain for Plausible, the site's short id for Swetrix (`pid`) and Umami
// (`website`); the server resolves short ids with Engine::FindSite.
#ifndef ANALYTICS_INGEST_TRACKERS_H_
#define ANALYTICS_INGEST_TRACKERS_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/event.h"

namespace analytics {

// What the HTTP layer knows about the request, copied into every event.
struct RequestInfo {
  std::string ip;            // client IP (after trusted-proxy handling)
  std::string user_agent;    // User-Agent header
  std::string country_hint;  // e.g. CF-IPCountry, optional
  absl::Time now;            // event time (trackers send none)
};

// Plausible: JSON object (sent as text/plain or application/json) with
// n|name, u|url, d|domain (comma-separated: one event per domain; trimmed,
// "www." stripped; when absent, the URL's host, as Plausible's server does),
// r|referrer, m|meta|p|props (object or JSON string; as in Plausible, "",
// null, list and map values are dropped and an unparsable props value is
// ignored), h|hashMode (the tracker sends 1; keeps the URL fragment in the
// page: the url becomes "https://host/path%23frag?query", which the engine's
// NormalizePath decodes to the page "/path#frag"), i|interactive, w (screen
// width). A "data:" URL is rejected ("u: scheme is not allowed"). An
// "engagement" event (with sd, e) becomes an event named "engagement",
// non-interactive, with props "sd" and "e" — see the engine for how they are
// counted.
absl::StatusOr<std::vector<EventInput>> ParsePlausibleEvent(
    std::string_view body, const RequestInfo& req);

enum class SwetrixKind { kPageview, kCustom, kHeartbeat, kError };

// Swetrix: JSON bodies as its tracker (npm `swetrix`) sends them.
// kPageview: pid, lc, tz, ref, so, me, ca, te, co, qs, pg, prev, unique,
//   perf, meta (props) -> a pageview whose url is the path pg ("/" when
//   null) plus qs and utm_source/medium/campaign/term/content parameters
//   rebuilt from so/me/ca/te/co; prev, unique and profileId are ignored.
//   When perf is a non-empty object (the tracker sends {} after the first
//   page), also a non-interactive event "perf" with props dns, tls, conn,
//   response, render, dom_load, page_load, ttfb (rounded milliseconds as
//   text).
// kCustom: pid, ev, pg, lc, tz, ref, so, me, ca, unique, meta -> custom event.
// kHeartbeat: pid -> one EventInput (name "heartbeat", url "/") used only
//   for Engine::Heartbeat.
// kError: pid, name, message, lineno, colno, filename, stackTrace, pg, lc,
//   tz, meta -> a non-interactive event "error" with those as props
//   (values truncated to the prop limit).
absl::StatusOr<std::vector<EventInput>> ParseSwetrix(SwetrixKind kind,
                                                     std::string_view body,
                                                     const RequestInfo& req);
// Swetrix's noscript pixel: query parameters pid, pg (page path), ...
absl::StatusOr<std::vector<EventInput>> ParseSwetrixNoscript(
    const std::multimap<std::string, std::string>& query,
    const RequestInfo& req);

// Umami: {"type":"event","payload":{website, hostname, screen ("1920x1080"),
// language, url (path or full URL), referrer, title, name, data}}; a payload
// without name is a pageview. A path url (or path referrer) is resolved
// against "https://<hostname>", as Umami's server does; data is flattened
// one level (objects and arrays as JSON text). type "identify" (and the newer
// "performance" and "error") are accepted and yield no events. /api/batch
// takes a JSON array of such objects; errors there are prefixed "[i].".
absl::StatusOr<std::vector<EventInput>> ParseUmamiSend(std::string_view body,
                                                       const RequestInfo& req);
absl::StatusOr<std::vector<EventInput>> ParseUmamiBatch(std::string_view body,
                                                        const RequestInfo& req);

}  // namespace analytics

#endif  // ANALYTICS_INGEST_TRACKERS_H_
