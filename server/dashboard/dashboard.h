// The web dashboard of analyticsd: its pages and assets, login and logout
// (signed session cookies, see session.h), public read-only shared links,
// and the authentication of stats requests made by the dashboard's browser
// code (session cookie or shared-link token).
//
// Routes:
//   GET  /dashboard                  the app (redirects to the login page
//                                    without a session)
//   GET  /dashboard/login            login form; POST: token -> cookie
//   POST /dashboard/logout           clears the cookie
//   GET  /dashboard/assets/{app.js,app.css}
//   GET  /dashboard/api/session      who is logged in and the readable sites
//   GET  /share/<token>              the app for one site, no login
//   POST/GET /api/v1/shares, DELETE /api/v1/shares/<id>
//                                    shared links (admin token or the site's
//                                    API key, Bearer or cookie)
// The data itself comes from the public Stats API (/api/v2/query,
// /api/v1/stats/realtime/visitors), called by the browser.
//
// HTTP glue only: no analytics decisions here. Thread-safe after Create().
#ifndef ANALYTICS_SERVER_DASHBOARD_DASHBOARD_H_
#define ANALYTICS_SERVER_DASHBOARD_DASHBOARD_H_

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "server/http_support.h"

namespace analytics::server {

class Dashboard {
 public:
  struct Options {
    // Public base URL (--public_url); https:// makes cookies Secure.
    std::string public_url;
    // Session lifetime.
    absl::Duration session_ttl = absl::Hours(24 * 7);
    // Proxies whose X-Forwarded-For / Forwarded are believed (for the
    // per-client limit on login attempts).
    ProxyList trusted;
    // Login attempts per client IP per minute (0 = no limit).
    int64_t login_rate_limit = 20;
    // Answers an error as JSON with the server's one Status -> HTTP mapping.
    std::function<void(const httplib::Request&, httplib::Response&,
                       const absl::Status&)>
        reply_error;
  };

  // Loads (or creates, once per store) the cookie signing secret.
  static absl::StatusOr<std::unique_ptr<Dashboard>> Create(Engine& engine,
                                                           Options options);

  void AddRoutes(httplib::Server& svr);

  // For requests without an Authorization header: the principal of the
  // session cookie (which must come with the X-Analytics-Dashboard header or
  // a JSON body: CSRF) or of a shared-link token (X-Analytics-Share header,
  // read-only access to one site). Unauthenticated when neither is present
  // or valid; PermissionDenied when the CSRF header is missing.
  absl::StatusOr<Principal> Authenticate(const httplib::Request& req);

 private:
  Dashboard(Engine& engine, Options options, std::string secret)
      : engine_(engine),
        options_(std::move(options)),
        secret_(std::move(secret)),
        login_limiter_(options_.login_rate_limit) {}

  // The session cookie's principal (no CSRF check).
  absl::StatusOr<Principal> SessionPrincipal(const httplib::Request& req);
  // Bearer token or session cookie (with CSRF check), never a share.
  absl::StatusOr<Principal> Owner(const httplib::Request& req);
  // The shared link with this token: its site id and doc id.
  absl::StatusOr<std::pair<int64_t, int64_t>> FindShare(std::string_view token);
  bool Secure(const httplib::Request& req) const;

  Engine& engine_;
  const Options options_;
  const std::string secret_;
  RateLimiter login_limiter_;
};

}  // namespace analytics::server

#endif  // ANALYTICS_SERVER_DASHBOARD_DASHBOARD_H_
