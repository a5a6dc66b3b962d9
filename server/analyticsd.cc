// analyticsd: a thin HTTP server around libanalytics.
//
//   analyticsd --listen 127.0.0.1:8000 --store sqlite://./data/analytics.db
//
// Routes: see README.md (section analyticsd) and kIndexHtml below.
// Ingestion: Plausible (POST /api/event), Swetrix (POST /log…, GET
// /log/noscript), Umami (POST /api/send, /api/batch), canonical events
// (POST /api/track). Stats: POST /api/v2/query (JSON or CSV), GET
// /api/v1/stats/…. Management (admin token): /api/v1/sites, /api/v1/keys.
// Operations: /health, /ready, /metrics.
//
// This file is HTTP glue only: every analytics decision is the engine's.
// Logs go to stderr, one structured line per notable event, never with IPs,
// user agents, tokens or keys.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "analytics/event.h"
#include "libanalytics/ingest/trackers.h"
#include "libanalytics/jobs/jobs.h"
#include "libanalytics/query/goals.h"
#include "libanalytics/query/goals_cache.h"
#include "libanalytics/query/v1.h"
#include "rapidjson/document.h"
#include "server/common.h"
#include "server/dashboard/dashboard.h"
#include "server/http_support.h"
#include "server/static/script.js.h"  // generated: kScriptJs

namespace {
// Handlers block in Engine::Track until the group commit that holds their
// event is durable (a few ms), and an idle keep-alive connection holds a
// worker until its timeout: so many more workers than cores.
int DefaultThreads() {
  const int cores =
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(32, 16 * cores);
}
int64_t EnvInt(const char* name, int64_t fallback) {
  int64_t v = 0;
  std::string s = analytics::server::EnvOr(name, "");
  return (!s.empty() && absl::SimpleAtoi(s, &v)) ? v : fallback;
}
}  // namespace

ABSL_FLAG(std::string, listen,
          analytics::server::EnvOr("ANALYTICS_LISTEN", "127.0.0.1:8000"),
          "HOST:PORT to listen on ($ANALYTICS_LISTEN); port 0 picks a free "
          "port");
ABSL_FLAG(std::string, store,
          analytics::server::EnvOr("ANALYTICS_STORE",
                                   analytics::server::kDefaultStore),
          "store URL ($ANALYTICS_STORE): sqlite://PATH or memory://");
ABSL_FLAG(std::string, coord,
          analytics::server::EnvOr("ANALYTICS_COORD", "local://"),
          "coordinator URL ($ANALYTICS_COORD): local:// for one process, or "
          "redis://HOST:PORT[/DB] or postgres://… shared by every worker of "
          "the store (sessions, salts, leases, rate limits)");
ABSL_FLAG(int, worker_id, static_cast<int>(EnvInt("ANALYTICS_WORKER_ID", 0)),
          "--worker-id: this worker's number, unique among the workers "
          "sharing the store ($ANALYTICS_WORKER_ID)");
ABSL_FLAG(std::string, geoip, analytics::server::EnvOr("ANALYTICS_GEOIP", ""),
          "MaxMind-format country database, .mmdb ($ANALYTICS_GEOIP)");
ABSL_FLAG(int, threads,
          static_cast<int>(EnvInt("ANALYTICS_THREADS", DefaultThreads())),
          "HTTP worker threads ($ANALYTICS_THREADS; default max(32, 16 x "
          "cores): handlers wait for the group commit)");
ABSL_FLAG(std::string, admin_token,
          analytics::server::EnvOr("ANALYTICS_ADMIN_TOKEN", ""),
          "sets the admin token, at least 16 characters "
          "($ANALYTICS_ADMIN_TOKEN; prefer the variable: flags show in ps)");
ABSL_FLAG(std::string, trusted_proxies,
          analytics::server::EnvOr("ANALYTICS_TRUSTED_PROXIES", ""),
          "comma-separated IPs/CIDRs (v4, v6) whose X-Forwarded-For / "
          "Forwarded headers are believed ($ANALYTICS_TRUSTED_PROXIES)");
ABSL_FLAG(int64_t, rate_limit, EnvInt("ANALYTICS_RATE_LIMIT", 600),
          "events per minute per client IP, 0 = off ($ANALYTICS_RATE_LIMIT)");
ABSL_FLAG(int64_t, site_rate_limit, EnvInt("ANALYTICS_SITE_RATE_LIMIT", 60000),
          "events per minute per site, 0 = off ($ANALYTICS_SITE_RATE_LIMIT)");
ABSL_FLAG(int64_t, max_queued, EnvInt("ANALYTICS_MAX_QUEUED", 256),
          "load shedding: when more accepted connections than this wait for "
          "a worker thread, ingestion answers 503 with Retry-After (and "
          "accepting pauses at 4x); 0 = never shed ($ANALYTICS_MAX_QUEUED)");
ABSL_FLAG(std::string, public_url,
          analytics::server::EnvOr("ANALYTICS_PUBLIC_URL", ""),
          "public base URL for printed URLs, e.g. https://stats.example.com "
          "($ANALYTICS_PUBLIC_URL)");
// Funnel and goal segments (libanalytics/query/goals_cache.h) built in the
// background at start, one day per step. Off by default: the segments are an
// in-memory copy of the events (~20 bytes each, kept up to date as events
// arrive), so a worker that never answers goal queries should not pay for
// them; the first goal query builds the days it needs.
ABSL_FLAG(int64_t, warm_segment_days, EnvInt("ANALYTICS_WARM_SEGMENT_DAYS", 0),
          "days of funnel/goal segments to build in the background at start "
          "($ANALYTICS_WARM_SEGMENT_DAYS; 0 turns off)");
// Scheduled jobs (libanalytics/jobs, docs/JOBS.md). The SMTP password is read
// from $ANALYTICS_SMTP_PASSWORD only, never from a flag.
ABSL_FLAG(bool, jobs, EnvInt("ANALYTICS_JOBS", 1) != 0,
          "run the scheduled jobs (reports, alerts, retention, salt rotation) "
          "while this worker is the leader ($ANALYTICS_JOBS=0 turns off)");
ABSL_FLAG(int64_t, jobs_tick_seconds, EnvInt("ANALYTICS_JOBS_TICK", 30),
          "how often the leader looks for due jobs ($ANALYTICS_JOBS_TICK)");
ABSL_FLAG(int64_t, jobs_retry_seconds, EnvInt("ANALYTICS_JOBS_RETRY", 60),
          "first retry delay of a failed delivery, doubled per attempt "
          "($ANALYTICS_JOBS_RETRY)");
ABSL_FLAG(std::string, smtp_url,
          analytics::server::EnvOr("ANALYTICS_SMTP_URL", ""),
          "SMTP server for email reports and alerts, smtp://HOST:PORT or "
          "smtps://HOST:PORT ($ANALYTICS_SMTP_URL); empty: no email");
ABSL_FLAG(bool, smtp_starttls, EnvInt("ANALYTICS_SMTP_STARTTLS", 0) != 0,
          "require STARTTLS on an smtp:// URL ($ANALYTICS_SMTP_STARTTLS=1)");
ABSL_FLAG(std::string, smtp_user,
          analytics::server::EnvOr("ANALYTICS_SMTP_USER", ""),
          "SMTP user; the password comes from $ANALYTICS_SMTP_PASSWORD "
          "($ANALYTICS_SMTP_USER)");
ABSL_FLAG(std::string, smtp_ca_file,
          analytics::server::EnvOr("ANALYTICS_SMTP_CA_FILE", ""),
          "PEM CA bundle for the SMTP server's certificate; default: the "
          "system's CAs ($ANALYTICS_SMTP_CA_FILE)");
ABSL_FLAG(std::string, smtp_from,
          analytics::server::EnvOr("ANALYTICS_SMTP_FROM",
                                   "analytics@localhost"),
          "sender address of reports and alerts ($ANALYTICS_SMTP_FROM)");

namespace analytics::server {
namespace {

constexpr size_t kMaxBody = 64 * 1024;
constexpr char kJson[] = "application/json";

// The one mapping from engine status codes to HTTP status codes.
int HttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

void ReplyJson(httplib::Response& res, int code, std::string body) {
  res.status = code;
  res.set_content(std::move(body), kJson);
}

// Answers with the status's HTTP code and {"error": message}. Server-side
// failures are logged (the route only, never request data).
void ReplyError(const httplib::Request& req, httplib::Response& res,
                const absl::Status& status) {
  int code = HttpStatus(status);
  if (code >= 500) {
    LogLine("error", "request failed",
            {{"method", req.method},
             {"path", req.path.substr(0, 100)},
             {"code", absl::StrCat(code)},
             {"error", std::string(status.message())}});
  }
  ReplyJson(res, code, ErrorJson(status.message()));
}

// Reason phrases for the errors httplib answers on its own.
absl::string_view ReasonPhrase(int code) {
  switch (code) {
    case 400:
      return "request: malformed HTTP request";
    case 404:
      return "route: not found";
    case 405:
      return "method: not allowed on this route";
    case 413:
      return "body: payload too large (limit 64 KiB)";
    case 414:
      return "uri: too long";
    case 416:
      return "range: not satisfiable";
    case 431:
      return "headers: too large";
    default:
      return code >= 500 ? "server: internal error" : "request: failed";
  }
}

struct HostPort {
  std::string host;
  int port = 0;
};

absl::StatusOr<HostPort> ParseListen(absl::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--listen %s: want HOST:PORT", s));
  }
  HostPort hp;
  hp.host = std::string(s.substr(0, colon));
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (hp.host.empty()) hp.host = "0.0.0.0";
  if (!absl::SimpleAtoi(s.substr(colon + 1), &hp.port) || hp.port < 0 ||
      hp.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--listen %s: bad port", s));
  }
  return hp;
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]")
                                             : host;
}

constexpr char kIndexHtml[] = R"(<!doctype html>
<meta charset="utf-8"><title>analyticsd</title>
<h1>analyticsd</h1>
<p><a href="/dashboard">Dashboard</a>. API:</p>
<ul>
<li><code>POST /api/event</code> Plausible tracker events</li>
<li><code>POST /log</code>, <code>/log/custom</code>, <code>/log/hb</code>,
<code>/log/error</code>, <code>GET /log/noscript</code> Swetrix tracker</li>
<li><code>POST /api/send</code>, <code>/api/batch</code> Umami tracker</li>
<li><code>POST /api/track</code> one canonical JSON event</li>
<li><code>GET /js/script.js</code> our tracker</li>
<li><code>POST /api/v2/query</code> Stats API v2 (<code>?format=csv</code>)</li>
<li><code>GET /api/v1/stats/{realtime/visitors,aggregate,timeseries,breakdown}</code></li>
<li><code>/api/v1/sites</code>, <code>/api/v1/keys</code> (admin token)</li>
<li><code>/api/v1/reports</code>, <code>/api/v1/alerts</code>,
<code>/api/v1/jobs</code> scheduled jobs (admin token)</li>
<li><code>GET /health</code>, <code>/ready</code>, <code>/metrics</code></li>
</ul>
)";

// A 1x1 transparent GIF.
constexpr unsigned char kPixelGif[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

// Exact routes and the methods they take (for 405 and the metrics label).
const std::map<std::string, std::string, std::less<>>& KnownRoutes() {
  static const auto* routes =
      new std::map<std::string, std::string, std::less<>>{
          {"/api/event", "POST OPTIONS"},
          {"/log", "POST OPTIONS"},
          {"/log/custom", "POST OPTIONS"},
          {"/log/hb", "POST OPTIONS"},
          {"/log/error", "POST OPTIONS"},
          {"/log/noscript", "GET"},
          {"/api/send", "POST OPTIONS"},
          {"/api/batch", "POST OPTIONS"},
          {"/api/track", "POST OPTIONS"},
          {"/js/script.js", "GET"},
          {"/api/v2/query", "POST"},
          {"/api/v1/stats/realtime/visitors", "GET"},
          {"/api/v1/stats/aggregate", "GET"},
          {"/api/v1/stats/timeseries", "GET"},
          {"/api/v1/stats/breakdown", "GET"},
          {"/api/v1/sites", "GET POST"},
          {"/api/sites", "GET POST"},
          {"/api/v1/keys", "GET POST"},
          {"/health", "GET"},
          {"/ready", "GET"},
          {"/metrics", "GET"},
          {"/", "GET"},
          {"/dashboard", "GET"},
          {"/dashboard/login", "GET POST"},
          {"/dashboard/logout", "POST"},
          {"/dashboard/api/session", "GET"},
          {"/api/v1/shares", "GET POST"},
          {"/api/v1/reports", "GET POST"},
          {"/api/v1/reports/unsubscribe", "GET POST"},
          {"/api/v1/alerts", "GET POST"},
          {"/api/v1/jobs", "GET"},
      };
  return *routes;
}

// The route label for metrics: a fixed set, never request data.
std::string RouteLabel(absl::string_view path) {
  if (path.size() > 1 && path.back() == '/' && absl::StartsWith(path, "/log")) {
    path.remove_suffix(1);
  }
  if (KnownRoutes().count(path)) return std::string(path);
  if (absl::StartsWith(path, "/api/v1/sites/")) return "/api/v1/sites/:domain";
  if (absl::StartsWith(path, "/api/v1/keys/")) return "/api/v1/keys/:id";
  if (absl::StartsWith(path, "/api/v1/reports/")) return "/api/v1/reports/:id";
  if (absl::StartsWith(path, "/api/v1/alerts/")) return "/api/v1/alerts/:id";
  if (absl::StartsWith(path, "/api/v1/jobs/")) return "/api/v1/jobs/:name/run";
  return "other";
}

bool IsIngestion(absl::string_view path) {
  return absl::StartsWith(path, "/log") || path == "/api/event" ||
         path == "/api/send" || path == "/api/batch" || path == "/api/track";
}

// Counters kept by the server (the engine keeps its own).
class Metrics {
 public:
  void Request(const std::string& route, int code) {
    std::lock_guard<std::mutex> l(mu_);
    ++requests_[{route, code}];
  }
  void Dropped(const std::string& reason, int64_t n) {
    std::lock_guard<std::mutex> l(mu_);
    dropped_[reason] += n;
  }
  std::string Render(Engine& engine) {
    EngineStats s = engine.Stats();
    std::string out;
    out +=
        "# HELP analytics_http_requests_total HTTP requests by route and "
        "status code.\n# TYPE analytics_http_requests_total counter\n";
    std::map<std::string, int64_t> dropped = s.dropped;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [k, n] : requests_) {
        absl::StrAppend(&out, "analytics_http_requests_total{route=\"",
                        Label(k.first), "\",code=\"", k.second, "\"} ", n,
                        "\n");
      }
      for (const auto& [reason, n] : dropped_) dropped[reason] += n;
    }
    absl::StrAppend(
        &out,
        "# HELP analytics_events_accepted_total Events durably stored.\n"
        "# TYPE analytics_events_accepted_total counter\n"
        "analytics_events_accepted_total ",
        s.accepted,
        "\n# HELP analytics_events_dropped_total Events not stored, by "
        "reason.\n# TYPE analytics_events_dropped_total counter\n");
    for (const auto& [reason, n] : dropped) {
      absl::StrAppend(&out, "analytics_events_dropped_total{reason=\"",
                      Label(reason), "\"} ", n, "\n");
    }
    out +=
        "# HELP analytics_commit_latency_seconds Store commit latency.\n"
        "# TYPE analytics_commit_latency_seconds histogram\n";
    int64_t cumulative = 0;
    for (size_t i = 0; i < s.commit_latency_counts.size(); ++i) {
      cumulative += s.commit_latency_counts[i];
      std::string le = i < s.commit_latency_bounds_ms.size()
                           ? absl::StrCat(s.commit_latency_bounds_ms[i] / 1000)
                           : "+Inf";
      absl::StrAppend(&out, "analytics_commit_latency_seconds_bucket{le=\"", le,
                      "\"} ", cumulative, "\n");
    }
    if (s.commit_latency_counts.size() <= s.commit_latency_bounds_ms.size()) {
      absl::StrAppend(&out,
                      "analytics_commit_latency_seconds_bucket{le=\"+Inf\"} ",
                      cumulative, "\n");
    }
    absl::StrAppend(
        &out, "analytics_commit_latency_seconds_sum ",
        s.commit_latency_sum_ms / 1000,
        "\nanalytics_commit_latency_seconds_count ", cumulative,
        "\n# HELP analytics_queue_depth Events waiting for the committer.\n"
        "# TYPE analytics_queue_depth gauge\nanalytics_queue_depth ",
        s.queue_depth,
        "\n# HELP analytics_live_sessions Sessions held in memory.\n"
        "# TYPE analytics_live_sessions gauge\nanalytics_live_sessions ",
        s.live_sessions,
        "\n# HELP analytics_coordinator_round_trips_total Round trips to a "
        "shared coordinator for session state.\n"
        "# TYPE analytics_coordinator_round_trips_total counter\n"
        "analytics_coordinator_round_trips_total ",
        s.coord_round_trips,
        "\n# HELP analytics_leader 1 while this worker holds the leader "
        "lease.\n# TYPE analytics_leader gauge\nanalytics_leader ",
        engine.IsLeader() ? 1 : 0, "\n");
    return out;
  }

 private:
  static std::string Label(absl::string_view v) {
    std::string out;
    for (char c : v) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out;
  }
  std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, int64_t> dropped_;
};

struct Config {
  ProxyList trusted;
  int64_t rate_limit = 600;
  int64_t site_rate_limit = 60000;
  // Requests without an Authorization header: the dashboard's session
  // cookie or shared link (server/dashboard/), when set.
  std::function<absl::StatusOr<Principal>(const httplib::Request&)>
      session_auth;
  // Scheduled jobs and their management routes; null when off.
  jobs::Jobs* jobs = nullptr;
  // Load shedding (--max-queued): connections waiting for a thread.
  std::function<size_t()> backlog;
  int64_t max_queued = 0;
};

class Server {
 public:
  Server(Engine& engine, Config config)
      : engine_(engine),
        config_(std::move(config)),
        ip_limiter_(config_.rate_limit, SharedCoordinator(engine), "rl:ip:"),
        site_limiter_(config_.site_rate_limit, SharedCoordinator(engine),
                      "rl:site:") {}

  void AddRoutes(httplib::Server& svr);

 private:
  // The coordinator when workers share it (rate limits across workers).
  static Coordinator* SharedCoordinator(Engine& engine) {
    Coordinator* c = engine.coordinator();
    return c != nullptr && c->kind() != "local" ? c : nullptr;
  }

  // ------------------------------------------------------------ helpers --
  std::string ClientIpOf(const httplib::Request& req) const {
    // Forwarding headers count only from a trusted proxy: without one
    // configured (the default) they are not even looked up.
    if (config_.trusted.empty())
      return ClientIp(config_.trusted, req.remote_addr, {}, {});
    std::vector<std::string> xff = HeaderValues(req, "X-Forwarded-For");
    std::vector<std::string> fwd = HeaderValues(req, "Forwarded");
    return ClientIp(config_.trusted, req.remote_addr, xff, fwd);
  }

  RequestInfo InfoOf(const httplib::Request& req) const {
    RequestInfo info;
    info.ip = ClientIpOf(req);
    info.user_agent = HeaderValue(req, "User-Agent");
    const std::string& country = HeaderValue(req, "CF-IPCountry");
    if (country.size() == 2 && absl::ascii_isalpha(country[0]) &&
        absl::ascii_isalpha(country[1])) {
      info.country_hint = absl::AsciiStrToUpper(country);
    }
    info.now = absl::Now();
    return info;
  }

  // The Origin of a browser request (else the origin of its Referer), "" if
  // none. Lower case, no trailing slash.
  static std::string RequestOrigin(const httplib::Request& req) {
    std::string origin = HeaderValue(req, "Origin");
    if (origin.empty() || origin == "null") {
      const std::string& ref = HeaderValue(req, "Referer");
      size_t scheme = ref.find("://");
      if (scheme != std::string::npos) {
        size_t end = ref.find('/', scheme + 3);
        origin = ref.substr(0, end);
      }
    }
    origin = absl::AsciiStrToLower(origin);
    while (!origin.empty() && origin.back() == '/') origin.pop_back();
    return origin;
  }

  static bool OriginAllowed(const Site& site, const std::string& origin) {
    if (site.allowed_origins.empty()) return true;
    if (origin.empty()) return false;
    for (absl::string_view allowed :
         absl::StrSplit(site.allowed_origins, ',', absl::SkipWhitespace())) {
      std::string a =
          absl::AsciiStrToLower(absl::StripAsciiWhitespace(allowed));
      while (!a.empty() && a.back() == '/') a.pop_back();
      if (a == origin) return true;
    }
    return false;
  }

  static void Cors(const httplib::Request& req, httplib::Response& res) {
    const std::string& origin = HeaderValue(req, "Origin");
    bool ok = !origin.empty() && origin.size() < 512 &&
              origin.find_first_of("\r\n") == std::string::npos;
    res.set_header("Access-Control-Allow-Origin", ok ? origin : "*");
    if (ok) res.set_header("Vary", "Origin");
  }

  // What happened to a set of events, for the protocol's answer.
  struct Delivered {
    int64_t accepted = 0;
    int64_t dropped = 0;
    std::string first_drop_reason;
  };

  // Resolves each event's site (domain or short id), checks the allowed
  // origins and the rate limits, then tracks (or, for heartbeats, touches)
  // the events. On a 429 *retry_after is set.
  absl::StatusOr<Delivered> Deliver(const httplib::Request& req,
                                    std::vector<EventInput> events,
                                    const RequestInfo& info, bool heartbeat,
                                    int* retry_after) {
    if (events.empty()) {
      return absl::InvalidArgumentError("body: no events");
    }
    if (int retry =
            ip_limiter_.Take(info.ip, static_cast<int64_t>(events.size()));
        retry > 0) {
      *retry_after = retry;
      metrics_.Dropped("rate_limited", static_cast<int64_t>(events.size()));
      return absl::ResourceExhaustedError(
          "rate limit: too many events from this client, retry later");
    }
    // The request's origin, worked out only for a site that restricts
    // origins.
    std::optional<std::string> origin;
    // Events per site, for the site rate limit: a request is nearly always
    // of one site (a flat list then, not a map).
    std::vector<std::pair<std::string, int64_t>> per_site;
    for (EventInput& e : events) {
      absl::StatusOr<Site> site = engine_.FindSite(e.site);
      if (!site.ok()) {
        if (absl::IsNotFound(site.status())) {
          return absl::NotFoundError(
              absl::StrCat("site: unknown site '", e.site.substr(0, 200), "'"));
        }
        return site.status();
      }
      if (!site->allowed_origins.empty() && !origin) {
        origin = RequestOrigin(req);
      }
      if (!site->allowed_origins.empty() && !OriginAllowed(*site, *origin)) {
        metrics_.Dropped("origin_denied", static_cast<int64_t>(events.size()));
        return absl::PermissionDeniedError(
            absl::StrCat("origin: not allowed for site '", site->domain, "'"));
      }
      auto it =
          std::find_if(per_site.begin(), per_site.end(),
                       [&](const auto& p) { return p.first == site->domain; });
      if (it == per_site.end()) {
        per_site.emplace_back(site->domain, 1);
      } else {
        ++it->second;
      }
      e.site = std::move(site->domain);
    }
    std::sort(per_site.begin(), per_site.end());  // (domain order, as before)
    for (const auto& [domain, n] : per_site) {
      if (int retry = site_limiter_.Take(domain, n); retry > 0) {
        *retry_after = retry;
        metrics_.Dropped("rate_limited", static_cast<int64_t>(events.size()));
        return absl::ResourceExhaustedError(
            absl::StrCat("rate limit: too many events for site '", domain,
                         "', retry later"));
      }
    }
    Delivered out;
    if (heartbeat) {
      for (const EventInput& e : events) {
        absl::Status s = engine_.Heartbeat(e);
        if (!s.ok()) return s;
      }
      return out;
    }
    if (events.size() == 1) {
      absl::StatusOr<TrackResult> r = engine_.Track(events[0]);
      if (!r.ok()) return r.status();
      if (r->accepted) {
        out.accepted = 1;
      } else {
        out.dropped = 1;
        out.first_drop_reason = r->dropped_reason;
      }
      return out;
    }
    absl::StatusOr<BatchResult> r = engine_.TrackBatch(events);
    if (!r.ok()) return r.status();
    if (!r->rejected.empty()) return r->rejected.front().second;
    out.accepted = r->accepted;
    for (const auto& [reason, n] : r->dropped) {
      out.dropped += n;
      if (out.first_drop_reason.empty()) out.first_drop_reason = reason;
    }
    return out;
  }

  // Parse with `parse`, deliver, and on failure answer the error (with
  // Retry-After on 429). Returns the outcome on success.
  template <typename ParseFn>
  std::optional<Delivered> Ingest(const httplib::Request& req,
                                  httplib::Response& res, ParseFn parse,
                                  bool heartbeat = false) {
    RequestInfo info = InfoOf(req);
    absl::StatusOr<std::vector<EventInput>> events = parse(info);
    if (!events.ok()) {
      ReplyError(req, res, events.status());
      return std::nullopt;
    }
    int retry_after = 0;
    absl::StatusOr<Delivered> d =
        Deliver(req, *std::move(events), info, heartbeat, &retry_after);
    if (!d.ok()) {
      if (retry_after > 0) {
        res.set_header("Retry-After", absl::StrCat(retry_after));
      }
      ReplyError(req, res, d.status());
      return std::nullopt;
    }
    return *d;
  }

  // Bearer token -> principal (401 on missing/invalid/revoked).
  absl::StatusOr<Principal> Auth(const httplib::Request& req) {
    std::string h = req.get_header_value("Authorization");
    absl::string_view v = absl::StripAsciiWhitespace(h);
    if (v.empty()) {
      if (config_.session_auth) return config_.session_auth(req);
      return absl::UnauthenticatedError("authorization: missing bearer token");
    }
    if (v.size() < 7 || !absl::EqualsIgnoreCase(v.substr(0, 7), "Bearer ")) {
      return absl::UnauthenticatedError("authorization: want 'Bearer TOKEN'");
    }
    absl::string_view token = absl::StripAsciiWhitespace(v.substr(7));
    if (token.empty() || token.size() > 512) {
      return absl::UnauthenticatedError("authorization: invalid token");
    }
    return engine_.Authenticate(std::string_view(token.data(), token.size()));
  }

  // The site (domain or short id) if the principal may read it.
  // Authenticates a stats request whose JSON body names the site
  // ("site_id") and checks that the caller may read that site.
  absl::StatusOr<Site> ReadableFromBody(const httplib::Request& req);

  absl::StatusOr<Site> Readable(const Principal& p, absl::string_view id) {
    if (id.empty()) return absl::InvalidArgumentError("site_id: required");
    absl::StatusOr<Site> site =
        engine_.FindSite(std::string_view(id.data(), id.size()));
    if (!site.ok()) {
      if (!p.admin && absl::IsNotFound(site.status())) {
        return absl::PermissionDeniedError(
            "authorization: this key may not read that site");
      }
      return site.status();
    }
    if (!p.admin && site->id != p.site_id) {
      return absl::PermissionDeniedError(
          "authorization: this key may not read that site");
    }
    return site;
  }

  absl::Status RequireAdmin(const httplib::Request& req) {
    absl::StatusOr<Principal> p = Auth(req);
    if (!p.ok()) return p.status();
    if (!p->admin) {
      return absl::PermissionDeniedError("authorization: admin token required");
    }
    return absl::OkStatus();
  }

  // ------------------------------------------------------------- routes --
  void AddIngestion(httplib::Server& svr);
  void AddStats(httplib::Server& svr);
  void AddManagement(httplib::Server& svr);
  void AddOperations(httplib::Server& svr);
  void AddJobs(httplib::Server& svr);

  Engine& engine_;
  const Config config_;
  RateLimiter ip_limiter_;
  RateLimiter site_limiter_;
  Metrics metrics_;
};

using Req = const httplib::Request&;
using Res = httplib::Response&;

absl::Status ParseJsonObject(const std::string& body,
                             rapidjson::Document* doc) {
  doc->Parse(body.data(), body.size());
  if (doc->HasParseError() || !doc->IsObject()) {
    return absl::InvalidArgumentError("body: want a JSON object");
  }
  return absl::OkStatus();
}

// Optional string member: absent/null -> nullopt; not a string -> error.
absl::StatusOr<std::optional<std::string>> StringMember(
    const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  if (!it->value.IsString()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": want a string"));
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// allowed_origins: a comma-separated string or an array of strings; each
// must be an http(s) origin without path.
absl::StatusOr<std::optional<std::string>> OriginsMember(
    const rapidjson::Value& obj) {
  auto it = obj.FindMember("allowed_origins");
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::nullopt;
  std::vector<std::string> items;
  if (it->value.IsString()) {
    for (absl::string_view s :
         absl::StrSplit(absl::string_view(it->value.GetString(),
                                          it->value.GetStringLength()),
                        ',', absl::SkipWhitespace())) {
      items.emplace_back(absl::StripAsciiWhitespace(s));
    }
  } else if (it->value.IsArray()) {
    for (const auto& v : it->value.GetArray()) {
      if (!v.IsString()) {
        return absl::InvalidArgumentError(
            "allowed_origins: want strings like https://example.com");
      }
      items.emplace_back(v.GetString(), v.GetStringLength());
    }
  } else {
    return absl::InvalidArgumentError(
        "allowed_origins: want an array of origins or a comma-separated "
        "string");
  }
  if (items.size() > 50) {
    return absl::InvalidArgumentError("allowed_origins: at most 50 origins");
  }
  for (std::string& o : items) {
    while (!o.empty() && o.back() == '/') o.pop_back();
    o = absl::AsciiStrToLower(o);
    absl::string_view rest = o;
    bool ok = absl::ConsumePrefix(&rest, "https://") ||
              absl::ConsumePrefix(&rest, "http://");
    ok = ok && !rest.empty() && o.size() <= 300 &&
         rest.find_first_of("/?#, \t\r\n\"\\") == absl::string_view::npos;
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("allowed_origins: '", o.substr(0, 100),
                       "' is not an origin like https://example.com"));
    }
  }
  return absl::StrJoin(items, ",");
}

std::string KeyJson(const ApiKey& k, const std::string* secret) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("id");
  w.Int64(k.id);
  w.Key("site");
  w.String(k.site.data(), k.site.size());
  w.Key("name");
  w.String(k.name.data(), k.name.size());
  w.Key("prefix");
  w.String(k.prefix.data(), k.prefix.size());
  w.Key("created_ms");
  w.Int64(k.created_ms);
  w.Key("revoked");
  w.Bool(k.revoked);
  if (secret != nullptr) {
    w.Key("key");
    w.String(secret->data(), secret->size());
  }
  w.EndObject();
  return buf.GetString();
}

void Server::AddIngestion(httplib::Server& svr) {
  // CORS preflight for every browser ingestion route.
  // (Access-Control-Allow-Origin is set by the pre-routing handler.)
  auto preflight = [](Req req, Res res) {
    res.set_header("Access-Control-Allow-Methods", "POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Content-Type");
    res.set_header("Access-Control-Max-Age", "86400");
    res.status = 204;
  };
  svr.Options(R"(/api/(event|send|batch|track)|/log(/(custom|hb|error))?/?)",
              preflight);

  // Plausible.
  svr.Post("/api/event", [this](Req req, Res res) {
    std::optional<Delivered> d = Ingest(req, res, [&](const RequestInfo& info) {
      return ParsePlausibleEvent(req.body, info);
    });
    if (!d) return;
    if (d->dropped > 0) {
      res.set_header("x-plausible-dropped", absl::StrCat(d->dropped));
    }
    res.status = 202;
    res.set_content("ok", "text/plain; charset=utf-8");
  });

  // Swetrix.
  auto swetrix = [this](SwetrixKind kind) {
    return [this, kind](Req req, Res res) {
      std::optional<Delivered> d = Ingest(
          req, res,
          [&](const RequestInfo& info) {
            return ParseSwetrix(kind, req.body, info);
          },
          kind == SwetrixKind::kHeartbeat);
      if (!d) return;
      ReplyJson(res, 201, "{}");
    };
  };
  svr.Post(R"(/log/?)", swetrix(SwetrixKind::kPageview));
  svr.Post(R"(/log/custom/?)", swetrix(SwetrixKind::kCustom));
  svr.Post(R"(/log/hb/?)", swetrix(SwetrixKind::kHeartbeat));
  svr.Post(R"(/log/error/?)", swetrix(SwetrixKind::kError));
  svr.Get(R"(/log/noscript/?)", [this](Req req, Res res) {
    std::multimap<std::string, std::string> query(req.params.begin(),
                                                  req.params.end());
    std::optional<Delivered> d = Ingest(req, res, [&](const RequestInfo& info) {
      return ParseSwetrixNoscript(query, info);
    });
    if (!d) return;
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_content(reinterpret_cast<const char*>(kPixelGif), sizeof(kPixelGif),
                    "image/gif");
  });

  // Umami.
  svr.Post("/api/send", [this](Req req, Res res) {
    std::optional<Delivered> d = Ingest(req, res, [&](const RequestInfo& info) {
      return ParseUmamiSend(req.body, info);
    });
    if (!d) return;
    ReplyJson(res, 200, R"({"ok":true})");
  });
  svr.Post("/api/batch", [this](Req req, Res res) {
    std::optional<Delivered> d = Ingest(req, res, [&](const RequestInfo& info) {
      return ParseUmamiBatch(req.body, info);
    });
    if (!d) return;
    ReplyJson(res, 200,
              absl::StrCat(R"({"ok":true,"accepted":)", d->accepted,
                           R"(,"dropped":)", d->dropped, "}"));
  });

  // Canonical events. The body's ip and user_agent are believed only with
  // the admin token (server-side tracking); otherwise the request's are used.
  svr.Post("/api/track", [this](Req req, Res res) {
    bool admin = false;
    if (req.has_header("Authorization")) {
      absl::StatusOr<Principal> p = Auth(req);
      if (!p.ok()) return ReplyError(req, res, p.status());
      admin = p->admin;
    }
    std::optional<Delivered> d = Ingest(req, res, [&](const RequestInfo& info) {
      absl::StatusOr<EventInput> e = ParseEventJson(req.body);
      if (!e.ok()) return absl::StatusOr<std::vector<EventInput>>(e.status());
      if (!admin || e->ip.empty()) e->ip = info.ip;
      if (!admin || e->user_agent.empty()) e->user_agent = info.user_agent;
      if (e->country_hint.empty()) e->country_hint = info.country_hint;
      return absl::StatusOr<std::vector<EventInput>>(
          std::vector<EventInput>{*std::move(e)});
    });
    if (!d) return;
    if (d->accepted > 0) return ReplyJson(res, 202, R"({"accepted":true})");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("accepted");
    w.Bool(false);
    w.Key("dropped");
    w.String(d->first_drop_reason.data(), d->first_drop_reason.size());
    w.EndObject();
    ReplyJson(res, 202, buf.GetString());
  });

  // Our tracker script, embedded at build time.
  svr.Get("/js/script.js", [](Req, Res res) {
    res.set_header("Cache-Control", "public, max-age=3600");
    res.set_content(kScriptJs, sizeof(kScriptJs) - 1,
                    "application/javascript; charset=utf-8");
  });
}

absl::StatusOr<Site> Server::ReadableFromBody(const httplib::Request& req) {
  absl::StatusOr<Principal> p = Auth(req);
  if (!p.ok()) return p.status();
  rapidjson::Document doc;
  if (absl::Status s = ParseJsonObject(req.body, &doc); !s.ok()) return s;
  absl::StatusOr<std::optional<std::string>> site_id =
      StringMember(doc, "site_id");
  if (!site_id.ok()) return site_id.status();
  return Readable(*p, site_id->value_or(""));
}

void Server::AddStats(httplib::Server& svr) {
  svr.Post("/api/v2/query", [this](Req req, Res res) {
    absl::StatusOr<Site> site = ReadableFromBody(req);
    if (!site.ok()) return ReplyError(req, res, site.status());
    absl::StatusOr<std::string> result = engine_.Query(req.body);
    if (!result.ok()) return ReplyError(req, res, result.status());
    const bool csv =
        req.get_param_value("format") == "csv" ||
        absl::StrContains(req.get_header_value("Accept"), "text/csv");
    if (!csv) return ReplyJson(res, 200, *std::move(result));
    absl::StatusOr<std::string> table = V2ResponseToCsv(*result, req.body);
    if (!table.ok()) return ReplyError(req, res, table.status());
    res.status = 200;
    res.set_header("Content-Disposition",
                   "attachment; filename=\"analytics.csv\"");
    res.set_content(*std::move(table), "text/csv; charset=utf-8");
  });

  // Funnel evaluation (query form in docs/API.md).
  svr.Post("/api/v2/funnel", [this](Req req, Res res) {
    absl::StatusOr<Site> site = ReadableFromBody(req);
    if (!site.ok()) return ReplyError(req, res, site.status());
    absl::StatusOr<std::string> result = QueryFunnel(
        req.body, [this](std::string_view id) { return engine_.FindSite(id); },
        absl::Now(), QuerySources{engine_.store(), nullptr});
    if (!result.ok()) return ReplyError(req, res, result.status());
    ReplyJson(res, 200, *std::move(result));
  });

  svr.Get("/api/v1/stats/realtime/visitors", [this](Req req, Res res) {
    absl::StatusOr<Principal> p = Auth(req);
    if (!p.ok()) return ReplyError(req, res, p.status());
    absl::StatusOr<Site> site = Readable(*p, req.get_param_value("site_id"));
    if (!site.ok()) return ReplyError(req, res, site.status());
    absl::StatusOr<int64_t> n = engine_.LiveVisitors(site->domain);
    if (!n.ok()) return ReplyError(req, res, n.status());
    ReplyJson(res, 200, absl::StrCat(*n));
  });

  auto v1 = [this](V1Endpoint endpoint) {
    return [this, endpoint](Req req, Res res) {
      absl::StatusOr<Principal> p = Auth(req);
      if (!p.ok()) return ReplyError(req, res, p.status());
      V1Params params;
      for (const auto& [k, v] : req.params) params.emplace(k, v);  // first wins
      absl::StatusOr<Site> site = Readable(*p, params["site_id"]);
      if (!site.ok()) return ReplyError(req, res, site.status());
      absl::StatusOr<std::string> v2 = V1ToV2Query(endpoint, params);
      if (!v2.ok()) return ReplyError(req, res, v2.status());
      absl::StatusOr<std::string> result = engine_.Query(*v2);
      if (!result.ok()) return ReplyError(req, res, result.status());
      absl::StatusOr<std::string> out =
          V2ToV1Response(endpoint, params, *result);
      if (!out.ok()) return ReplyError(req, res, out.status());
      ReplyJson(res, 200, *std::move(out));
    };
  };
  svr.Get("/api/v1/stats/aggregate", v1(V1Endpoint::kAggregate));
  svr.Get("/api/v1/stats/timeseries", v1(V1Endpoint::kTimeseries));
  svr.Get("/api/v1/stats/breakdown", v1(V1Endpoint::kBreakdown));
}

void Server::AddManagement(httplib::Server& svr) {
  auto add_site = [this](Req req, Res res) {
    if (absl::Status s = RequireAdmin(req); !s.ok()) {
      return ReplyError(req, res, s);
    }
    rapidjson::Document doc;
    if (absl::Status s = ParseJsonObject(req.body, &doc); !s.ok()) {
      return ReplyError(req, res, s);
    }
    Site site;
    absl::StatusOr<std::optional<std::string>> domain =
        StringMember(doc, "domain");
    if (!domain.ok()) return ReplyError(req, res, domain.status());
    if (!domain->has_value()) {
      return ReplyError(req, res,
                        absl::InvalidArgumentError("domain: want a string"));
    }
    site.domain = **domain;
    absl::StatusOr<std::optional<std::string>> tz =
        StringMember(doc, "timezone");
    if (!tz.ok()) return ReplyError(req, res, tz.status());
    if (tz->has_value() && !(*tz)->empty()) site.timezone = **tz;
    absl::StatusOr<std::optional<std::string>> origins = OriginsMember(doc);
    if (!origins.ok()) return ReplyError(req, res, origins.status());
    if (origins->has_value()) site.allowed_origins = **origins;
    absl::StatusOr<Site> added = engine_.AddSite(site);
    if (!added.ok()) return ReplyError(req, res, added.status());
    LogLine("info", "site added",
            {{"domain", added->domain}, {"short_id", added->short_id}});
    ReplyJson(res, 201, SiteJson(*added));
  };
  auto list_sites = [this](Req req, Res res) {
    if (absl::Status s = RequireAdmin(req); !s.ok()) {
      return ReplyError(req, res, s);
    }
    absl::StatusOr<std::vector<Site>> sites = engine_.ListSites();
    if (!sites.ok()) return ReplyError(req, res, sites.status());
    ReplyJson(res, 200, SitesJson(*sites));
  };
  svr.Post("/api/v1/sites", add_site);
  svr.Get("/api/v1/sites", list_sites);
  svr.Post("/api/sites", add_site);  // alias (older clients)
  svr.Get("/api/sites", list_sites);

  svr.Put(R"(/api/v1/sites/([^/]+))", [this](Req req, Res res) {
    if (absl::Status s = RequireAdmin(req); !s.ok()) {
      return ReplyError(req, res, s);
    }
    rapidjson::Document doc;
    if (absl::Status s = ParseJsonObject(req.body, &doc); !s.ok()) {
      return ReplyError(req, res, s);
    }
    absl::StatusOr<Site> site = engine_.FindSite(req.matches[1].str());
    if (!site.ok()) return ReplyError(req, res, site.status());
    Site update = *site;
    absl::StatusOr<std::optional<std::string>> tz =
        StringMember(doc, "timezone");
    if (!tz.ok()) return ReplyError(req, res, tz.status());
    if (tz->has_value() && !(*tz)->empty()) update.timezone = **tz;
    absl::StatusOr<std::optional<std::string>> origins = OriginsMember(doc);
    if (!origins.ok()) return ReplyError(req, res, origins.status());
    if (origins->has_value()) update.allowed_origins = **origins;
    // retention_days: raw events older than this are deleted by the
    // retention job (docs/JOBS.md); 0 keeps them.
    std::optional<int32_t> retention;
    if (auto it = doc.FindMember("retention_days");
        it != doc.MemberEnd() && !it->value.IsNull()) {
      if (!it->value.IsInt() || it->value.GetInt() < 0 ||
          it->value.GetInt() > 36500) {
        return ReplyError(req, res,
                          absl::InvalidArgumentError(
                              "retention_days: want an integer from 0 to "
                              "36500 (0 keeps raw events forever)"));
      }
      retention = it->value.GetInt();
      update.retention_days = *retention;
    }
    absl::StatusOr<Site> updated = engine_.UpdateSite(update);
    if (!updated.ok()) return ReplyError(req, res, updated.status());
    LogLine("info", "site updated", {{"domain", updated->domain}});
    ReplyJson(res, 200, SiteJson(*updated));
  });

  svr.Delete(R"(/api/v1/sites/([^/]+))", [this](Req req, Res res) {
    if (absl::Status s = RequireAdmin(req); !s.ok()) {
      return ReplyError(req, res, s);
    }
    absl::StatusOr<Site> site = engine_.FindSite(req.matches[1].str());
    if (!site.ok()) return ReplyError(req, res, site.status());
    absl::Status s = engine_.RemoveSite(site->domain);
    if (!s.ok()) return ReplyError(req, res, s);
    LogLine("info", "site removed", {{"domain", site->domain}});
    ReplyJson(res, 200, R"({"deleted":true})");
  });

  svr.Post("/api/v1/keys", [this](Req req, Res res) {
    if (absl::Status s = RequireAdmin(req); !s.ok()) {
      return ReplyError(req, res, s);
    }
    rapidjson::Document doc;
    if (absl::Status s = ParseJsonObject(req.body, &doc); !s.ok()) {
      return ReplyError(req, res, s);
    }
    absl::StatusOr<std::optional<std::string>> site = StringMember(doc, "site");
    if (!site.ok()) return ReplyError(req, res, site.status());
    if (!site->has_value() || (*site)->empty()) {
      return ReplyError(req, res,
                        absl::InvalidArgumentError("site: want a string"));
    }
    absl::StatusOr<std::optional<std::string>> name = StringMember(doc, "name");
    if (!name.ok()) return ReplyError(req, res, name.status());
    absl::StatusOr<Site> found = engine_.FindSite(**site);
    if (!found.ok()) return ReplyError(req, res, found.status());
    absl::StatusOr<std::pair<ApiKey, std::string>> key =
        engine_.CreateApiKey(found->domain, name->value_or(""));
    if (!key.ok()) return ReplyError(req, res, key.status());
    LogLine("info", "api key created",
            {{"id", absl::StrCat(key->first.id)}, {"site", key->first.site}});
    ReplyJson(res, 201, KeyJson(key->first, &key->second));
  });

  svr.Get("/api/v1/keys", [this](Req req, Res res) {
    if (absl::Status s = RequireAdmin(req); !s.ok()) {
      return ReplyError(req, res, s);
    }
    absl::StatusOr<std::vector<ApiKey>> keys = engine_.ListApiKeys();
    if (!keys.ok()) return ReplyError(req, res, keys.status());
    std::string out = "[";
    for (size_t i = 0; i < keys->size(); ++i) {
      absl::StrAppend(&out, i ? "," : "", KeyJson((*keys)[i], nullptr));
    }
    out += "]";
    ReplyJson(res, 200, std::move(out));
  });

  svr.Delete(R"(/api/v1/keys/([^/]+))", [this](Req req, Res res) {
    if (absl::Status s = RequireAdmin(req); !s.ok()) {
      return ReplyError(req, res, s);
    }
    int64_t id = 0;
    if (!absl::SimpleAtoi(req.matches[1].str(), &id) || id <= 0) {
      return ReplyError(
          req, res, absl::InvalidArgumentError("id: want a positive integer"));
    }
    absl::Status s = engine_.RevokeApiKey(id);
    if (!s.ok()) return ReplyError(req, res, s);
    LogLine("info", "api key revoked", {{"id", absl::StrCat(id)}});
    ReplyJson(res, 200, R"({"revoked":true})");
  });

  // Goals and funnels (libanalytics/query/goals.h), per site, admin token:
  // POST {"site_id":…, …document} -> 201, GET ?site_id=…, DELETE
  // /<id>?site_id=…
  auto config_routes = [this, &svr](const std::string& base, bool goal) {
    svr.Post(base, [this, goal](Req req, Res res) {
      if (absl::Status s = RequireAdmin(req); !s.ok()) {
        return ReplyError(req, res, s);
      }
      rapidjson::Document doc;
      if (absl::Status s = ParseJsonObject(req.body, &doc); !s.ok()) {
        return ReplyError(req, res, s);
      }
      absl::StatusOr<std::optional<std::string>> id =
          StringMember(doc, "site_id");
      if (!id.ok()) return ReplyError(req, res, id.status());
      if (!id->has_value() || (*id)->empty()) {
        return ReplyError(req, res,
                          absl::InvalidArgumentError("site_id: want a string"));
      }
      absl::StatusOr<Site> site = engine_.FindSite(**id);
      if (!site.ok()) return ReplyError(req, res, site.status());
      if (goal) {
        absl::StatusOr<Goal> g = AddGoal(engine_.store(), site->id, req.body);
        if (!g.ok()) return ReplyError(req, res, g.status());
        ReplyJson(res, 201, g->ToJson());
      } else {
        absl::StatusOr<Funnel> f =
            AddFunnel(engine_.store(), site->id, req.body);
        if (!f.ok()) return ReplyError(req, res, f.status());
        ReplyJson(res, 201, f->ToJson());
      }
    });
    svr.Get(base, [this, goal](Req req, Res res) {
      if (absl::Status s = RequireAdmin(req); !s.ok()) {
        return ReplyError(req, res, s);
      }
      absl::StatusOr<Site> site =
          engine_.FindSite(req.get_param_value("site_id"));
      if (!site.ok()) return ReplyError(req, res, site.status());
      if (goal) {
        absl::StatusOr<std::vector<Goal>> g =
            ListGoals(engine_.store(), site->id);
        if (!g.ok()) return ReplyError(req, res, g.status());
        ReplyJson(res, 200, GoalsJson(*g));
      } else {
        absl::StatusOr<std::vector<Funnel>> f =
            ListFunnels(engine_.store(), site->id);
        if (!f.ok()) return ReplyError(req, res, f.status());
        ReplyJson(res, 200, FunnelsJson(*f));
      }
    });
    svr.Delete(base + R"(/([^/]+))", [this, goal](Req req, Res res) {
      if (absl::Status s = RequireAdmin(req); !s.ok()) {
        return ReplyError(req, res, s);
      }
      int64_t id = 0;
      if (!absl::SimpleAtoi(req.matches[1].str(), &id) || id <= 0) {
        return ReplyError(
            req, res,
            absl::InvalidArgumentError("id: want a positive integer"));
      }
      absl::StatusOr<Site> site =
          engine_.FindSite(req.get_param_value("site_id"));
      if (!site.ok()) return ReplyError(req, res, site.status());
      absl::Status s = goal ? DeleteGoal(engine_.store(), site->id, id)
                            : DeleteFunnel(engine_.store(), site->id, id);
      if (!s.ok()) return ReplyError(req, res, s);
      ReplyJson(res, 200, R"({"deleted":true})");
    });
  };
  config_routes("/api/v1/goals", true);
  config_routes("/api/v1/funnels", false);
}

void Server::AddOperations(httplib::Server& svr) {
  svr.Get("/health",
          [](Req, Res res) { ReplyJson(res, 200, R"({"status":"ok"})"); });
  svr.Get("/ready", [this](Req, Res res) {
    absl::Status ready = engine_.Ready();
    if (!ready.ok()) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      w.StartObject();
      w.Key("status");
      w.String("unavailable");
      w.Key("error");
      w.String(ready.message().data(),
               static_cast<rapidjson::SizeType>(ready.message().size()));
      w.EndObject();
      return ReplyJson(res, 503, buf.GetString());
    }
    const std::string name = engine_.WorkerName();
    ReplyJson(
        res, 200,
        absl::StrCat(R"({"status":"ready","role":")",
                     engine_.IsLeader() ? "leader" : "follower",
                     R"(","worker":)", name.substr(name.rfind(':') + 1), "}"));
  });
  svr.Get("/metrics", [this](Req, Res res) {
    std::string text = metrics_.Render(engine_);
    if (config_.jobs != nullptr) text += config_.jobs->RenderMetrics();
    res.set_content(std::move(text),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/", [](Req, Res res) {
    res.set_content(kIndexHtml, "text/html; charset=utf-8");
  });
}

// Report subscriptions, alert rules, the job ledger and manual runs (admin
// token), and the public unsubscribe link. The logic is libanalytics/jobs'.
void Server::AddJobs(httplib::Server& svr) {
  if (config_.jobs == nullptr) return;
  jobs::Jobs& jobs = *config_.jobs;
  auto admin = [this](Req req, Res res) {
    absl::Status s = RequireAdmin(req);
    if (!s.ok()) ReplyError(req, res, s);
    return s.ok();
  };
  auto reply = [](Req req, Res res, int code,
                  const absl::StatusOr<std::string>& out) {
    if (!out.ok()) return ReplyError(req, res, out.status());
    ReplyJson(res, code, *out);
  };
  auto id_of = [](Req req) {
    int64_t id = 0;
    (void)absl::SimpleAtoi(req.matches[1].str(), &id);
    return id;
  };
  for (const bool reports : {true, false}) {
    const std::string base = reports ? "/api/v1/reports" : "/api/v1/alerts";
    svr.Post(base, [=, &jobs](Req req, Res res) {
      if (!admin(req, res)) return;
      reply(req, res, 201,
            reports ? jobs.CreateReport(req.body) : jobs.CreateAlert(req.body));
    });
    svr.Get(base, [=, &jobs](Req req, Res res) {
      if (!admin(req, res)) return;
      std::string site = req.get_param_value("site");
      reply(req, res, 200,
            reports ? jobs.ListReports(site) : jobs.ListAlerts(site));
    });
    svr.Put(base + R"(/(\d+))", [=, &jobs](Req req, Res res) {
      if (!admin(req, res)) return;
      reply(req, res, 200,
            reports ? jobs.UpdateReport(id_of(req), req.body)
                    : jobs.UpdateAlert(id_of(req), req.body));
    });
    svr.Delete(base + R"(/(\d+))", [=, &jobs](Req req, Res res) {
      if (!admin(req, res)) return;
      absl::Status s = reports ? jobs.DeleteReport(id_of(req))
                               : jobs.DeleteAlert(id_of(req));
      if (!s.ok()) return ReplyError(req, res, s);
      ReplyJson(res, 200, R"({"deleted":true})");
    });
  }
  svr.Post(R"(/api/v1/sites/([^/]+)/erase)", [=, &jobs](Req req, Res res) {
    if (!admin(req, res)) return;
    absl::StatusOr<std::string> out = jobs.EraseSite(req.matches[1].str());
    if (out.ok()) {
      LogLine("info", "site data erased", {{"domain", req.matches[1].str()}});
    }
    reply(req, res, 200, out);
  });
  svr.Get("/api/v1/jobs", [=, &jobs](Req req, Res res) {
    if (!admin(req, res)) return;
    int64_t limit = 100;
    if (req.has_param("limit") &&
        !absl::SimpleAtoi(req.get_param_value("limit"), &limit)) {
      return ReplyError(req, res,
                        absl::InvalidArgumentError("limit: want an integer"));
    }
    reply(req, res, 200, jobs.ListRuns(req.get_param_value("job"), limit));
  });
  svr.Post(R"(/api/v1/jobs/([^/]+)/run)", [=, &jobs](Req req, Res res) {
    if (!admin(req, res)) return;
    reply(req, res, 200, jobs.RunNow(req.matches[1].str(), req.body));
  });
  // Public: the token is the credential. GET shows a confirmation form (link
  // scanners must not unsubscribe anyone); POST unsubscribes (also the
  // RFC 8058 one-click POST of mail clients).
  svr.Get("/api/v1/reports/unsubscribe", [](Req req, Res res) {
    std::string token = req.get_param_value("token");
    bool ok = !token.empty() && token.size() <= 128 &&
              std::all_of(token.begin(), token.end(), absl::ascii_isxdigit);
    res.status = ok ? 200 : 400;
    res.set_header("Cache-Control", "no-store");
    res.set_content(
        ok ? absl::StrCat("<!doctype html><meta charset=\"utf-8\"><title>"
                          "Unsubscribe</title><form method=\"post\" "
                          "action=\"?token=",
                          token,
                          "\"><p>Stop these email reports?</p><button>"
                          "Unsubscribe</button></form>\n")
           : std::string("<!doctype html><p>This unsubscribe link is not "
                         "valid.</p>\n"),
        "text/html; charset=utf-8");
  });
  svr.Post("/api/v1/reports/unsubscribe", [&jobs](Req req, Res res) {
    absl::Status s = jobs.Unsubscribe(req.get_param_value("token"));
    if (!s.ok() && !absl::IsNotFound(s)) return ReplyError(req, res, s);
    res.status = s.ok() ? 200 : 404;
    res.set_content(s.ok() ? "<!doctype html><p>You are unsubscribed.</p>\n"
                           : "<!doctype html><p>This unsubscribe link is not "
                             "valid or was already used.</p>\n",
                    "text/html; charset=utf-8");
  });
}

void Server::AddRoutes(httplib::Server& svr) {
  // CORS headers on every ingestion answer, including the errors httplib
  // produces before routing (413).
  svr.set_pre_routing_handler([this](Req req, Res res) {
    res.set_header("X-Content-Type-Options", "nosniff");
    if (IsIngestion(req.path)) Cors(req, res);
    // Load shedding: nothing of this request is stored, so the 503 is safe
    // to retry; closing the connection lets waiting clients get a thread.
    if (IsIngestion(req.path) && req.method != "OPTIONS" &&
        config_.max_queued > 0 && config_.backlog &&
        config_.backlog() > static_cast<size_t>(config_.max_queued)) {
      metrics_.Dropped("overloaded", 1);
      res.set_header("Retry-After", "1");
      res.set_header("Connection", "close");
      ReplyJson(
          res, 503,
          ErrorJson("overloaded: too many requests waiting, retry later"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  AddIngestion(svr);
  AddStats(svr);
  AddManagement(svr);
  AddOperations(svr);
  AddJobs(svr);

  // Errors produced by httplib itself (unknown route 404, body too large 413,
  // bad request 400) get a JSON body too; a known route with the wrong
  // method is a 405.
  svr.set_error_handler(
      httplib::Server::HandlerWithResponse([](Req req, Res res) {
        if (!res.body.empty()) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        if (res.status == 404) {
          std::string route = RouteLabel(req.path);
          auto it = KnownRoutes().find(route);
          bool known = it != KnownRoutes().end() || route != "other";
          if (known) {
            res.status = 405;
            std::string allow =
                it != KnownRoutes().end() ? it->second : "PUT DELETE";
            absl::StrReplaceAll({{" ", ", "}}, &allow);
            res.set_header("Allow", allow);
          }
        }
        res.set_content(ErrorJson(ReasonPhrase(res.status)), kJson);
        return httplib::Server::HandlerResponse::Handled;
      }));

  svr.set_exception_handler([](Req req, Res res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    ReplyError(req, res, absl::InternalError(what));
  });

  svr.set_logger([this](Req req, const httplib::Response& res) {
    metrics_.Request(RouteLabel(req.path), res.status);
  });
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "analyticsd [--listen HOST:PORT] [--store URL] [flags]\n"
      "A thin HTTP server around libanalytics. Every flag can also be set by\n"
      "the environment variable named in its help ($ANALYTICS_…).");
  // --worker-id is the documented spelling of the flag worker_id.
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--worker-id" || a.rfind("--worker-id=", 0) == 0) {
      argv[i][8] = '_';
    }
  }
  absl::ParseCommandLine(argc, argv);

  absl::StatusOr<HostPort> listen = ParseListen(absl::GetFlag(FLAGS_listen));
  if (!listen.ok()) {
    LogLine("error", "bad flag",
            {{"error", std::string(listen.status().message())}});
    return 2;
  }
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 1 || threads > 4096) {
    LogLine("error", "bad flag", {{"error", "--threads must be in [1, 4096]"}});
    return 2;
  }
  Config config;
  absl::StatusOr<ProxyList> trusted =
      ProxyList::Parse(absl::GetFlag(FLAGS_trusted_proxies));
  if (!trusted.ok()) {
    LogLine("error", "bad flag",
            {{"error", std::string(trusted.status().message())}});
    return 2;
  }
  config.trusted = *std::move(trusted);
  config.rate_limit = std::max<int64_t>(0, absl::GetFlag(FLAGS_rate_limit));
  config.site_rate_limit =
      std::max<int64_t>(0, absl::GetFlag(FLAGS_site_rate_limit));
  const std::string admin_token = absl::GetFlag(FLAGS_admin_token);
  if (!admin_token.empty() && admin_token.size() < 16) {
    LogLine("error", "bad flag",
            {{"error", "admin token: must be at least 16 characters"}});
    return 2;
  }
  const std::string store_url = absl::GetFlag(FLAGS_store);

  // SIGTERM/SIGINT are taken by one thread (sigwait), so block them before
  // any other thread (engine committer, HTTP workers) starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Over a file size limit (RLIMIT_FSIZE), a write fails with EFBIG and the
  // store reports it (503), instead of the process being killed.
  signal(SIGXFSZ, SIG_IGN);

  EnsureStoreDir(store_url);
  Options options;
  options.store_url = store_url;
  options.geoip_path = absl::GetFlag(FLAGS_geoip);
  options.coord_url = absl::GetFlag(FLAGS_coord);
  options.worker = absl::GetFlag(FLAGS_worker_id);
  if (options.worker < 0) {
    LogLine("error", "bad flag", {{"error", "--worker-id must be >= 0"}});
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(options);
  if (!engine.ok()) {
    LogLine("error", "cannot open store",
            {{"store", RedactUrl(store_url)},
             {"coord", RedactUrl(options.coord_url)},
             {"error", engine.status().ToString()}});
    return 1;
  }

  if (!admin_token.empty()) {
    absl::Status s = (*engine)->SetAdminToken(admin_token);
    if (!s.ok()) {
      LogLine("error", "cannot set admin token", {{"error", s.ToString()}});
      return 1;
    }
    LogLine("info", "admin token set from configuration");
  } else {
    absl::StatusOr<std::optional<std::string>> created =
        (*engine)->EnsureAdminToken();
    if (!created.ok()) {
      LogLine("error", "cannot create admin token",
              {{"error", created.status().ToString()}});
      return 1;
    }
    if (created->has_value()) {
      absl::PrintF("Admin token (shown once, stored hashed): %s\n", **created);
      std::fflush(stdout);
      LogLine("info", "admin token created (printed once on stdout)");
    }
  }

  httplib::Server svr;
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(10000);
  svr.set_keep_alive_timeout(5);
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  svr.set_payload_max_length(kMaxBody);
  const int64_t max_queued =
      std::max<int64_t>(0, absl::GetFlag(FLAGS_max_queued));
  std::atomic<BoundedThreadPool*> pool{nullptr};
  svr.new_task_queue = [threads, max_queued, &pool] {
    auto* p = new BoundedThreadPool(
        static_cast<size_t>(threads),
        max_queued > 0 ? static_cast<size_t>(4 * max_queued) : SIZE_MAX);
    pool = p;
    return p;
  };
  config.max_queued = max_queued;
  config.backlog = [&pool]() -> size_t {
    BoundedThreadPool* p = pool.load();
    return p != nullptr ? p->queued() : 0;
  };
  Dashboard::Options dashboard_options;
  dashboard_options.public_url = absl::GetFlag(FLAGS_public_url);
  dashboard_options.reply_error = ReplyError;
  dashboard_options.trusted = config.trusted;
  dashboard_options.login_rate_limit =
      std::max<int64_t>(0, EnvInt("ANALYTICS_LOGIN_RATE_LIMIT", 20));
  absl::StatusOr<std::unique_ptr<Dashboard>> dashboard =
      Dashboard::Create(**engine, std::move(dashboard_options));
  if (!dashboard.ok()) {
    LogLine("error", "cannot start the dashboard",
            {{"error", dashboard.status().ToString()}});
    (*engine)->Close().IgnoreError();
    return 1;
  }
  config.session_auth = [d = dashboard->get()](const httplib::Request& req) {
    return d->Authenticate(req);
  };
  jobs::JobsOptions jobs_options;
  jobs_options.smtp.url = absl::GetFlag(FLAGS_smtp_url);
  jobs_options.smtp.starttls = absl::GetFlag(FLAGS_smtp_starttls);
  jobs_options.smtp.user = absl::GetFlag(FLAGS_smtp_user);
  jobs_options.smtp.password = EnvOr("ANALYTICS_SMTP_PASSWORD", "");
  jobs_options.smtp.from = absl::GetFlag(FLAGS_smtp_from);
  jobs_options.smtp.ca_file = absl::GetFlag(FLAGS_smtp_ca_file);
  jobs_options.public_url = absl::GetFlag(FLAGS_public_url);
  if (jobs_options.public_url.empty()) {
    jobs_options.public_url =
        absl::StrCat("http://", UrlHost(listen->host), ":", listen->port);
  }
  jobs_options.tick = absl::Seconds(
      std::max<int64_t>(1, absl::GetFlag(FLAGS_jobs_tick_seconds)));
  jobs_options.retry_base = absl::Seconds(
      std::max<int64_t>(1, absl::GetFlag(FLAGS_jobs_retry_seconds)));
  jobs_options.stale_after = options.leader_lease;
  // Tests only: a pause between claiming a ledger row and sending, to kill
  // the worker in between (tests/jobs/).
  jobs_options.pause_after_claim =
      absl::Milliseconds(EnvInt("ANALYTICS_JOBS_TEST_PAUSE_MS", 0));
  absl::StatusOr<std::unique_ptr<jobs::Jobs>> scheduled =
      jobs::Jobs::Create(**engine, std::move(jobs_options));
  if (!scheduled.ok()) {
    LogLine("error", "cannot set up the jobs",
            {{"error", scheduled.status().ToString()}});
    return 1;
  }
  config.jobs = scheduled->get();
  Server server(**engine, std::move(config));
  server.AddRoutes(svr);
  (*dashboard)->AddRoutes(svr);

  int port = listen->port;
  bool bound;
  if (port == 0) {
    port = svr.bind_to_any_port(listen->host);
    bound = port > 0;
  } else {
    bound = svr.bind_to_port(listen->host, port);
  }
  if (!bound) {
    LogLine("error", "cannot listen",
            {{"listen", absl::GetFlag(FLAGS_listen)}});
    (*engine)->Close().IgnoreError();
    return 1;
  }

  std::atomic<bool> stopping{false};
  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    int sig = 0;
    if (sigwait(&stop_signals, &sig) != 0 || done) return;
    LogLine("info", "shutting down",
            {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    stopping = true;
    // stop() only acts once listen_after_bind() runs; retry until it ended.
    while (!done) {
      svr.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  std::string base = absl::StrCat("http://", UrlHost(listen->host), ":", port);
  std::string public_url = absl::GetFlag(FLAGS_public_url);
  while (!public_url.empty() && public_url.back() == '/') public_url.pop_back();
  absl::PrintF("analyticsd listening on %s (store: %s)\nDashboard: %s/\n", base,
               RedactUrl(store_url), public_url.empty() ? base : public_url);
  std::fflush(stdout);
  LogLine("info", "listening",
          {{"addr", base},
           {"store", RedactUrl(store_url)},
           {"coord", RedactUrl(absl::GetFlag(FLAGS_coord))},
           {"worker", (*engine)->WorkerName()},
           {"threads", absl::StrCat(threads)}});

  // Returns after stop(), once in-flight requests have finished (the task
  // queue is shut down and joined).
  if (absl::GetFlag(FLAGS_jobs)) (*scheduled)->Start();
  std::unique_ptr<SegmentWarmer> warmer;
  if (absl::GetFlag(FLAGS_warm_segment_days) > 0) {
    SegmentWarmer::Options wo;
    wo.days = absl::GetFlag(FLAGS_warm_segment_days);
    warmer = std::make_unique<SegmentWarmer>((*engine)->store(), wo);
    warmer->Start();
  }
  svr.listen_after_bind();
  done = true;
  if (warmer) warmer->Stop();
  (*scheduled)->Stop();
  absl::Status flushed = (*engine)->Flush();
  if (!flushed.ok())
    LogLine("error", "flush failed", {{"error", flushed.ToString()}});
  absl::Status closed = (*engine)->Close();
  if (!closed.ok())
    LogLine("error", "close failed", {{"error", closed.ToString()}});

  if (!stopping) {
    // The server ended on its own: wake the signal thread and fail.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    LogLine("error", "server stopped unexpectedly");
    return 1;
  }
  signal_thread.join();
  LogLine("info", "stopped");
  return closed.ok() && flushed.ok() ? 0 : 1;
}

}  // namespace
}  // namespace analytics::server

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, which leaves absl::Mutex's
  // deadlock detection on: ~25 ns of bookkeeping under a global lock per
  // lock/unlock. The locking order is checked by the TSan build instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return analytics::server::Main(argc, argv);
}
