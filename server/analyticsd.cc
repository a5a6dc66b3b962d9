// analyticsd: a thin HTTP server around libanalytics.
//
//   analyticsd --listen 127.0.0.1:8000 --store sqlite://./data/analytics.db
//              [--geoip third_party/mmdb/geo-whois-asn-country.mmdb]
//
// Routes (JSON in, JSON out):
//   POST /api/track     one canonical event   -> 202 {"accepted":…}
//   POST /api/v2/query  Stats API v2 query    -> 200 results
//   POST /api/sites     {"domain","timezone"} -> 201 site
//   GET  /api/sites                           -> 200 [site…]
//   GET  /health                              -> 200 {"status":"ok"}
//
// This file is HTTP glue only: every analytics decision is the engine's.
// Logs go to stderr, one line per notable event, never with IPs or user
// agents.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "analytics/event.h"
#include "rapidjson/document.h"
#include "server/common.h"

ABSL_FLAG(std::string, listen,
          analytics::server::EnvOr("ANALYTICS_LISTEN", "127.0.0.1:8000"),
          "HOST:PORT to listen on ($ANALYTICS_LISTEN); port 0 picks a free "
          "port");
ABSL_FLAG(std::string, store,
          analytics::server::EnvOr("ANALYTICS_STORE",
                                   analytics::server::kDefaultStore),
          "store URL ($ANALYTICS_STORE): sqlite://PATH or memory://");
ABSL_FLAG(std::string, geoip, analytics::server::EnvOr("ANALYTICS_GEOIP", ""),
          "MaxMind-format country database, .mmdb ($ANALYTICS_GEOIP)");
ABSL_FLAG(int, threads, 16, "HTTP worker threads");

namespace analytics::server {
namespace {

constexpr size_t kMaxBody = 64 * 1024;
constexpr char kJson[] = "application/json";

// One line on stderr with a UTC timestamp.
template <typename... Args>
void Log(const absl::FormatSpec<Args...>& format, const Args&... args) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ ", absl::Now(),
                                    absl::UTCTimeZone()),
                   absl::StrFormat(format, args...), "\n");
  std::fputs(line.c_str(), stderr);
}

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
    Log("%s %s -> %d: %s", req.method, req.path, code, status.ToString());
  }
  ReplyJson(res, code, ErrorJson(status.message()));
}

// Reason phrases for the errors httplib answers on its own.
absl::string_view ReasonPhrase(int code) {
  switch (code) {
    case 400:
      return "bad request";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 413:
      return "payload too large (limit 64 KiB)";
    case 414:
      return "URI too long";
    case 416:
      return "range not satisfiable";
    case 431:
      return "request header fields too large";
    default:
      return code >= 500 ? "internal server error" : "request failed";
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
<p>The dashboard is not built into this server yet. API:</p>
<ul>
<li><code>POST /api/track</code> one JSON event</li>
<li><code>POST /api/v2/query</code> Stats API v2 query</li>
<li><code>GET|POST /api/sites</code></li>
<li><code>GET /health</code></li>
</ul>
)";

void AddRoutes(httplib::Server& svr, Engine& engine) {
  svr.Post("/api/track", [&engine](const httplib::Request& req,
                                   httplib::Response& res) {
    absl::StatusOr<EventInput> event = ParseEventJson(req.body);
    if (!event.ok()) return ReplyError(req, res, event.status());
    if (event->ip.empty()) event->ip = req.remote_addr;
    if (event->user_agent.empty()) {
      event->user_agent = req.get_header_value("User-Agent");
    }
    absl::StatusOr<TrackResult> result = engine.Track(*event);
    if (!result.ok()) return ReplyError(req, res, result.status());
    if (result->accepted) {
      return ReplyJson(res, 202, R"({"accepted":true})");
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("accepted");
    w.Bool(false);
    w.Key("dropped");
    w.String(result->dropped_reason.data(), result->dropped_reason.size());
    w.EndObject();
    ReplyJson(res, 202, buf.GetString());
  });

  svr.Post("/api/v2/query",
           [&engine](const httplib::Request& req, httplib::Response& res) {
             absl::StatusOr<std::string> result = engine.Query(req.body);
             if (!result.ok()) return ReplyError(req, res, result.status());
             ReplyJson(res, 200, *std::move(result));
           });

  svr.Post("/api/sites", [&engine](const httplib::Request& req,
                                   httplib::Response& res) {
    rapidjson::Document doc;
    doc.Parse(req.body.data(), req.body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return ReplyError(req, res,
                        absl::InvalidArgumentError("body: want a JSON object"));
    }
    Site site;
    auto domain = doc.FindMember("domain");
    if (domain == doc.MemberEnd() || !domain->value.IsString()) {
      return ReplyError(req, res,
                        absl::InvalidArgumentError("domain: want a string"));
    }
    site.domain.assign(domain->value.GetString(),
                       domain->value.GetStringLength());
    auto tz = doc.FindMember("timezone");
    if (tz != doc.MemberEnd() && !tz->value.IsNull()) {
      if (!tz->value.IsString()) {
        return ReplyError(
            req, res, absl::InvalidArgumentError("timezone: want a string"));
      }
      if (tz->value.GetStringLength() > 0) {
        site.timezone.assign(tz->value.GetString(),
                             tz->value.GetStringLength());
      }
    }
    absl::StatusOr<Site> added = engine.AddSite(site);
    if (!added.ok()) return ReplyError(req, res, added.status());
    Log("site added: %s (%s)", added->domain, added->short_id);
    ReplyJson(res, 201, SiteJson(*added));
  });

  svr.Get("/api/sites",
          [&engine](const httplib::Request& req, httplib::Response& res) {
            absl::StatusOr<std::vector<Site>> sites = engine.ListSites();
            if (!sites.ok()) return ReplyError(req, res, sites.status());
            ReplyJson(res, 200, SitesJson(*sites));
          });

  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    ReplyJson(res, 200, R"({"status":"ok"})");
  });

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kIndexHtml, "text/html; charset=utf-8");
  });

  // Errors produced by httplib itself (unknown route 404, body too large 413,
  // bad request 400) get a JSON body too.
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        res.set_content(ErrorJson(ReasonPhrase(res.status)), kJson);
        return httplib::Server::HandlerResponse::Handled;
      }));

  svr.set_exception_handler([](const httplib::Request& req,
                               httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    ReplyError(req, res, absl::InternalError(what));
  });
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "analyticsd --listen HOST:PORT --store URL [--geoip PATH] "
      "[--threads N]\nA thin HTTP server around libanalytics.");
  absl::ParseCommandLine(argc, argv);

  absl::StatusOr<HostPort> listen = ParseListen(absl::GetFlag(FLAGS_listen));
  if (!listen.ok()) {
    Log("analyticsd: %s", listen.status().message());
    return 2;
  }
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 1) {
    Log("analyticsd: --threads must be at least 1");
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

  EnsureStoreDir(store_url);
  Options options;
  options.store_url = store_url;
  options.geoip_path = absl::GetFlag(FLAGS_geoip);
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(options);
  if (!engine.ok()) {
    Log("analyticsd: cannot open store %s: %s", RedactUrl(store_url),
        engine.status().ToString());
    return 1;
  }

  httplib::Server svr;
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(10000);
  svr.set_payload_max_length(kMaxBody);
  svr.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  AddRoutes(svr, **engine);

  int port = listen->port;
  bool bound;
  if (port == 0) {
    port = svr.bind_to_any_port(listen->host);
    bound = port > 0;
  } else {
    bound = svr.bind_to_port(listen->host, port);
  }
  if (!bound) {
    Log("analyticsd: cannot listen on %s", absl::GetFlag(FLAGS_listen));
    (*engine)->Close().IgnoreError();
    return 1;
  }

  std::atomic<bool> stopping{false};
  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    int sig = 0;
    if (sigwait(&stop_signals, &sig) != 0 || done) return;
    Log("analyticsd: %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    stopping = true;
    // stop() only acts once listen_after_bind() runs; retry until it ended.
    while (!done) {
      svr.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  std::string base = absl::StrCat("http://", UrlHost(listen->host), ":", port);
  absl::PrintF("analyticsd listening on %s (store: %s)\nDashboard: %s/\n", base,
               RedactUrl(store_url), base);
  std::fflush(stdout);

  svr.listen_after_bind();
  done = true;
  absl::Status closed = (*engine)->Close();
  if (!closed.ok()) Log("analyticsd: close: %s", closed.ToString());

  if (!stopping) {
    // The server ended on its own: wake the signal thread and fail.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    Log("analyticsd: server stopped unexpectedly");
    return 1;
  }
  signal_thread.join();
  Log("analyticsd: stopped");
  return closed.ok() ? 0 : 1;
}

}  // namespace
}  // namespace analytics::server

int main(int argc, char** argv) { return analytics::server::Main(argc, argv); }
