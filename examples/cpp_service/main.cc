// cpp_service: a small web service that embeds libanalytics to record its
// own traffic, and serves its own stats.
//
//   example_cpp_service [--listen HOST:PORT] [--store URL] [--site DOMAIN]
//
// Every request (except /stats) is tracked as a pageview of the request's
// path, with the client IP and User-Agent. GET /stats answers today's top
// pages as the engine's Stats API v2 response JSON. PORT 0 picks a free port;
// the service prints "listening on http://HOST:PORT" once it accepts
// connections.
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analytics/engine.h"
#include "analytics/event.h"
#include "analytics/store.h"

namespace {

struct Flags {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string store = "memory://";
  std::string site = "service.example";
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    const char* v = nullptr;
    if (a == "--listen" && (v = value()) != nullptr) {
      std::string s = v;
      size_t colon = s.rfind(':');
      if (colon == std::string::npos) return false;
      f->host = s.substr(0, colon);
      f->port = std::atoi(s.c_str() + colon + 1);
    } else if (a == "--store" && (v = value()) != nullptr) {
      f->store = v;
    } else if (a == "--site" && (v = value()) != nullptr) {
      f->site = v;
    } else {
      return false;
    }
  }
  return true;
}

// Tracks one request. Failures are logged, never shown to the visitor.
void TrackRequest(analytics::Engine& engine, const std::string& site,
                  const httplib::Request& req) {
  analytics::EventInput e;
  e.site = site;
  e.url = "https://" + site + req.path;
  e.referrer = req.get_header_value("Referer");
  e.ip = req.remote_addr;
  e.user_agent = req.get_header_value("User-Agent");
  absl::StatusOr<analytics::TrackResult> r = engine.Track(e);
  if (!r.ok()) {
    std::fprintf(stderr, "track %s: %s\n", req.path.c_str(),
                 std::string(r.status().message()).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: example_cpp_service [--listen HOST:PORT] "
                 "[--store URL] [--site DOMAIN]\n");
    return 2;
  }

  absl::StatusOr<std::unique_ptr<analytics::Engine>> opened =
      analytics::Engine::Open({.store_url = flags.store});
  if (!opened.ok()) {
    std::fprintf(stderr, "open %s: %s\n", flags.store.c_str(),
                 std::string(opened.status().message()).c_str());
    return 1;
  }
  analytics::Engine& engine = **opened;
  if (absl::StatusOr<analytics::Site> s = engine.FindSite(flags.site);
      !s.ok()) {
    absl::StatusOr<analytics::Site> added =
        engine.AddSite({.domain = flags.site, .timezone = "UTC"});
    if (!added.ok()) {
      std::fprintf(stderr, "add site: %s\n",
                   std::string(added.status().message()).c_str());
      return 1;
    }
  }

  httplib::Server server;

  // The service's own stats: today's top pages.
  server.Get("/stats", [&](const httplib::Request&, httplib::Response& res) {
    const std::string query = R"({"site_id":")" + flags.site +
                              R"(","date_range":"day",)"
                              R"("metrics":["visitors","pageviews"],)"
                              R"("dimensions":["event:page"],)"
                              R"("order_by":[["pageviews","desc"]],)"
                              R"("pagination":{"limit":10}})";
    absl::StatusOr<std::string> answer = engine.Query(query);
    if (!answer.ok()) {
      res.status = 500;
      res.set_content(std::string(answer.status().message()), "text/plain");
      return;
    }
    res.set_content(*answer, "application/json");
  });

  // The service's "real" pages: every other GET.
  server.Get(R"(/.*)",
             [&](const httplib::Request& req, httplib::Response& res) {
               TrackRequest(engine, flags.site, req);
               res.set_content("hello from " + req.path + "\n", "text/plain");
             });

  int port = flags.port;
  if (port == 0) {
    port = server.bind_to_any_port(flags.host);
  } else if (!server.bind_to_port(flags.host, port)) {
    port = -1;
  }
  if (port < 0) {
    std::fprintf(stderr, "cannot listen on %s:%d\n", flags.host.c_str(),
                 flags.port);
    return 1;
  }
  std::printf("listening on http://%s:%d\n", flags.host.c_str(), port);
  std::fflush(stdout);
  server.listen_after_bind();
  return engine.Close().ok() ? 0 : 1;
}
