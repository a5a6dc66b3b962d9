// The web dashboard's routes (see dashboard.h).
#include "server/dashboard/dashboard.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "libanalytics/core/strings.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "server/common.h"
#include "server/dashboard/session.h"
#include "server/http_support.h"
#include "server/static/dashboard/app.css.h"     // generated: kDashboardCss
#include "server/static/dashboard/app.js.h"      // generated: kDashboardJs
#include "server/static/dashboard/index.html.h"  // generated: kDashboardHtml
#include "server/static/dashboard/login.html.h"  // generated: kLoginHtml

namespace analytics::server {
namespace {

using Req = const httplib::Request&;
using Res = httplib::Response&;

constexpr char kCookie[] = "analytics_session";
constexpr char kSecretMeta[] = "dashboard_session_secret";
constexpr char kShareKind[] = "share";
constexpr char kCsrfHeader[] = "X-Analytics-Dashboard";
constexpr char kShareHeader[] = "X-Analytics-Share";
constexpr char kSharePrefix[] = "shr_";

constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'";

// Headers on every dashboard page, asset and API answer.
void SecurityHeaders(Res res) {
  res.set_header("Content-Security-Policy", kCsp);
  res.set_header("X-Frame-Options", "DENY");
  if (!res.has_header("X-Content-Type-Options")) {
    res.set_header("X-Content-Type-Options", "nosniff");
  }
  res.set_header("Referrer-Policy", "same-origin");
  res.set_header("Cross-Origin-Opener-Policy", "same-origin");
  res.set_header("Permissions-Policy", "interest-cohort=()");
}

void Html(Res res, int code, std::string body) {
  SecurityHeaders(res);
  res.status = code;
  res.set_header("Cache-Control", "no-store");
  res.set_content(std::move(body), "text/html; charset=utf-8");
}

std::string HtmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"},
                                 {"<", "&lt;"},
                                 {">", "&gt;"},
                                 {"\"", "&quot;"},
                                 {"'", "&#39;"}});
}

// A redirect target after login: only paths of the dashboard itself.
bool SafeNext(absl::string_view next) {
  return absl::StartsWith(next, "/dashboard") && next.size() < 2000 &&
         !absl::StrContains(next, "//") && !absl::StrContains(next, "\\") &&
         next.find_first_of("\r\n\t ") == absl::string_view::npos;
}

std::string LoginPage(absl::string_view error, absl::string_view next) {
  return absl::StrReplaceAll(
      kLoginHtml,
      {{"{{error}}", error.empty() ? ""
                                   : absl::StrCat("<p class=\"error\" "
                                                  "role=\"alert\">",
                                                  HtmlEscape(error), "</p>")},
       {"{{next}}", HtmlEscape(SafeNext(next) ? next : "/dashboard")}});
}

// A browser form post must come from our own origin (login CSRF): the Origin
// header, when sent, must name the Host the request was sent to.
bool SameOrigin(Req req) {
  std::string origin = req.get_header_value("Origin");
  if (origin.empty()) return true;  // not a browser, or same-origin GET
  size_t scheme = origin.find("://");
  if (scheme == std::string::npos) return false;
  return absl::EqualsIgnoreCase(origin.substr(scheme + 3),
                                req.get_header_value("Host"));
}

absl::Status Unauth(absl::string_view msg) {
  return absl::UnauthenticatedError(msg);
}

std::string ShareJson(const ConfigDoc& doc, const std::string& domain,
                      const std::string* token) {
  rapidjson::Document d;
  d.Parse(doc.json.data(), doc.json.size());
  auto str = [&](const char* k) -> std::string {
    if (!d.IsObject()) return "";
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsString()
               ? std::string(it->value.GetString(), it->value.GetStringLength())
               : "";
  };
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("id");
  w.Int64(doc.id);
  w.Key("site");
  w.String(domain.data(), domain.size());
  std::string name = str("name"), prefix = str("prefix");
  w.Key("name");
  w.String(name.data(), name.size());
  w.Key("prefix");
  w.String(prefix.data(), prefix.size());
  w.Key("created_ms");
  w.Int64(doc.updated_ms);
  if (token != nullptr) {
    w.Key("token");
    w.String(token->data(), token->size());
    std::string path = absl::StrCat("/share/", *token);
    w.Key("path");
    w.String(path.data(), path.size());
  }
  w.EndObject();
  return buf.GetString();
}

std::string ShareHash(const ConfigDoc& doc) {
  rapidjson::Document d;
  d.Parse(doc.json.data(), doc.json.size());
  if (!d.IsObject()) return "";
  auto it = d.FindMember("token_sha256");
  return it != d.MemberEnd() && it->value.IsString() ? it->value.GetString()
                                                     : "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dashboard>> Dashboard::Create(Engine& engine,
                                                             Options options) {
  absl::StatusOr<std::string> secret =
      engine.store()->PutMetaIfAbsent(kSecretMeta, RandomHex(32));
  if (!secret.ok()) return secret.status();
  if (secret->size() < 32) {
    return absl::FailedPreconditionError(
        "dashboard: stored session secret is too short");
  }
  if (!options.reply_error) {
    options.reply_error = [](Req, Res res, const absl::Status& s) {
      res.status = absl::IsUnauthenticated(s)    ? 401
                   : absl::IsPermissionDenied(s) ? 403
                   : absl::IsNotFound(s)         ? 404
                   : absl::IsInvalidArgument(s)  ? 400
                                                 : 500;
      res.set_content(ErrorJson(s.message()), "application/json");
    };
  }
  return std::unique_ptr<Dashboard>(
      new Dashboard(engine, std::move(options), *std::move(secret)));
}

bool Dashboard::Secure(Req req) const {
  if (absl::StartsWithIgnoreCase(options_.public_url, "https://")) return true;
  if (absl::EqualsIgnoreCase(req.get_header_value("X-Forwarded-Proto"),
                             "https")) {
    return true;
  }
  return absl::StrContains(
      absl::AsciiStrToLower(req.get_header_value("Forwarded")), "proto=https");
}

absl::StatusOr<Principal> Dashboard::SessionPrincipal(Req req) {
  std::string cookie = CookieValue(req.get_header_value("Cookie"), kCookie);
  if (cookie.empty()) {
    return Unauth("authorization: missing bearer token or session cookie");
  }
  absl::StatusOr<SessionClaims> claims = ParseSession(cookie);
  if (!claims.ok()) return Unauth("session: invalid cookie, log in again");
  Principal p;
  std::string binding;
  if (claims->admin) {
    absl::StatusOr<std::optional<std::string>> hash =
        engine_.store()->GetMeta(kAdminTokenMetaKey);
    if (!hash.ok()) return hash.status();
    if (!hash->has_value()) return Unauth("session: no admin token");
    binding = **hash;
    p.admin = true;
  } else {
    absl::StatusOr<std::vector<ApiKeyRecord>> keys =
        engine_.store()->ListApiKeys();
    if (!keys.ok()) return keys.status();
    auto it = std::find_if(keys->begin(), keys->end(), [&](const auto& k) {
      return k.id == claims->key_id;
    });
    if (it == keys->end() || it->revoked_ms != 0) {
      return Unauth("session: the API key was revoked, log in again");
    }
    binding = it->secret_hash;
    p.site_id = it->site_id;
    p.key_id = it->id;
  }
  absl::StatusOr<SessionClaims> ok =
      VerifySession(secret_, cookie, binding, absl::Now());
  if (!ok.ok()) return ok.status();
  return p;
}

absl::StatusOr<std::pair<int64_t, int64_t>> Dashboard::FindShare(
    std::string_view token) {
  if (!absl::StartsWith(AV(token), kSharePrefix) || token.size() > 200) {
    return Unauth("share: invalid or revoked link");
  }
  const std::string hash = Sha256Hex(token);
  absl::StatusOr<std::vector<ConfigDoc>> docs =
      engine_.store()->ListConfigDocs(kShareKind, 0);
  if (!docs.ok()) return docs.status();
  for (const ConfigDoc& d : *docs) {
    if (ConstantTimeEqual(ShareHash(d), hash)) {
      return std::make_pair(d.site_id, d.id);
    }
  }
  return Unauth("share: invalid or revoked link");
}

absl::StatusOr<Principal> Dashboard::Authenticate(Req req) {
  if (req.has_header(kShareHeader)) {
    absl::StatusOr<std::pair<int64_t, int64_t>> share =
        FindShare(SV(req.get_header_value(kShareHeader)));
    if (!share.ok()) return share.status();
    Principal p;
    p.site_id = share->first;
    return p;
  }
  absl::StatusOr<Principal> p = SessionPrincipal(req);
  if (!p.ok()) return p.status();
  // CSRF: SameSite=Strict keeps the cookie off cross-site requests; a
  // custom header or a JSON body also needs a CORS preflight, which the
  // stats routes never grant.
  if (!req.has_header(kCsrfHeader) &&
      !absl::StartsWith(req.get_header_value("Content-Type"),
                        "application/json")) {
    return absl::PermissionDeniedError(
        "csrf: cookie-authenticated requests need the X-Analytics-Dashboard "
        "header or a JSON body");
  }
  return p;
}

absl::StatusOr<Principal> Dashboard::Owner(Req req) {
  std::string h = req.get_header_value("Authorization");
  absl::string_view v = absl::StripAsciiWhitespace(h);
  if (v.empty()) {
    if (req.has_header(kShareHeader)) {
      return absl::PermissionDeniedError(
          "authorization: a shared link may only read statistics");
    }
    return Authenticate(req);
  }
  if (v.size() < 7 || !absl::EqualsIgnoreCase(v.substr(0, 7), "Bearer ")) {
    return Unauth("authorization: want 'Bearer TOKEN'");
  }
  absl::string_view token = absl::StripAsciiWhitespace(v.substr(7));
  if (token.empty() || token.size() > 512) {
    return Unauth("authorization: invalid token");
  }
  return engine_.Authenticate(SV(token));
}

void Dashboard::AddRoutes(httplib::Server& svr) {
  auto fail = [this](Req req, Res res, const absl::Status& s) {
    SecurityHeaders(res);
    options_.reply_error(req, res, s);
  };

  svr.Get(R"(/dashboard/?)", [this](Req req, Res res) {
    absl::StatusOr<Principal> p = SessionPrincipal(req);
    if (!p.ok()) {
      SecurityHeaders(res);
      res.set_header("Cache-Control", "no-store");
      std::string next = req.target.substr(0, 1900);
      res.set_redirect(absl::StrCat("/dashboard/login?next=",
                                    httplib::detail::encode_query_param(next)),
                       303);
      return;
    }
    Html(res, 200, kDashboardHtml);
  });

  svr.Get("/dashboard/login", [](Req req, Res res) {
    Html(res, 200, LoginPage("", req.get_param_value("next")));
  });

  svr.Post("/dashboard/login", [this](Req req, Res res) {
    httplib::Params form;
    httplib::detail::parse_query_text(req.body, form);
    auto field = [&](const char* k) {
      auto it = form.find(k);
      return it == form.end() ? std::string() : it->second;
    };
    const std::string next = field("next");
    if (!SameOrigin(req)) {
      return Html(res, 403,
                  LoginPage("This form was sent from another site.", next));
    }
    std::vector<std::string> xff, fwd;
    for (size_t i = 0; i < req.get_header_value_count("X-Forwarded-For"); ++i) {
      xff.push_back(req.get_header_value("X-Forwarded-For", i));
    }
    for (size_t i = 0; i < req.get_header_value_count("Forwarded"); ++i) {
      fwd.push_back(req.get_header_value("Forwarded", i));
    }
    if (int retry = login_limiter_.Take(
            ClientIp(options_.trusted, req.remote_addr, xff, fwd), 1);
        retry > 0) {
      res.set_header("Retry-After", absl::StrCat(retry));
      return Html(res, 429,
                  LoginPage("Too many login attempts: wait a minute.", next));
    }
    std::string token(absl::StripAsciiWhitespace(field("token")));
    absl::StatusOr<Principal> p =
        token.empty() || token.size() > 512
            ? absl::StatusOr<Principal>(Unauth("token: empty or too long"))
            : engine_.Authenticate(token);
    if (!p.ok()) {
      if (!absl::IsUnauthenticated(p.status())) {
        LogLine("error", "dashboard login failed",
                {{"error", std::string(p.status().message())}});
        return Html(
            res, 503,
            LoginPage("The server cannot check tokens right now.", next));
      }
      LogLine("info", "dashboard login refused");
      return Html(res, 401,
                  LoginPage("Wrong token: use the admin token or a site "
                            "API key.",
                            next));
    }
    SessionClaims claims;
    claims.admin = p->admin;
    claims.key_id = p->key_id;
    claims.expires_s = absl::ToUnixSeconds(absl::Now() + options_.session_ttl);
    std::string binding = Sha256Hex(token);  // what the store holds
    std::string cookie = absl::StrCat(
        kCookie, "=", SignSession(secret_, claims, binding),
        "; Path=/; Max-Age=", absl::ToInt64Seconds(options_.session_ttl),
        "; HttpOnly; SameSite=Strict", Secure(req) ? "; Secure" : "");
    SecurityHeaders(res);
    res.set_header("Set-Cookie", cookie);
    res.set_header("Cache-Control", "no-store");
    res.set_redirect(SafeNext(next) ? next : "/dashboard", 303);
    LogLine(
        "info", "dashboard login",
        {{"principal", p->admin ? "admin" : absl::StrCat("key:", p->key_id)}});
  });

  svr.Post("/dashboard/logout", [this](Req req, Res res) {
    SecurityHeaders(res);
    if (!SameOrigin(req)) {
      return options_.reply_error(
          req, res,
          absl::PermissionDeniedError("origin: logout from another site"));
    }
    res.set_header("Set-Cookie", absl::StrCat(kCookie,
                                              "=; Path=/; Max-Age=0; HttpOnly; "
                                              "SameSite=Strict",
                                              Secure(req) ? "; Secure" : ""));
    res.set_header("Cache-Control", "no-store");
    res.set_redirect("/dashboard/login", 303);
  });

  svr.Get("/dashboard/assets/app.js", [](Req, Res res) {
    SecurityHeaders(res);
    res.set_header("Cache-Control", "no-cache");
    res.set_content(kDashboardJs, sizeof(kDashboardJs) - 1,
                    "text/javascript; charset=utf-8");
  });
  svr.Get("/dashboard/assets/app.css", [](Req, Res res) {
    SecurityHeaders(res);
    res.set_header("Cache-Control", "no-cache");
    res.set_content(kDashboardCss, sizeof(kDashboardCss) - 1,
                    "text/css; charset=utf-8");
  });

  // Who is looking, and which sites they may read.
  svr.Get("/dashboard/api/session", [this, fail](Req req, Res res) {
    std::string kind = "key";
    absl::StatusOr<Principal> p;
    if (req.has_header("Authorization")) {
      p = Owner(req);
    } else {
      p = Authenticate(req);
      if (req.has_header(kShareHeader)) kind = "share";
    }
    if (!p.ok()) return fail(req, res, p.status());
    if (p->admin) kind = "admin";
    absl::StatusOr<std::vector<Site>> sites = engine_.ListSites();
    if (!sites.ok()) return fail(req, res, sites.status());
    std::vector<Site> readable;
    for (const Site& s : *sites) {
      if (p->admin || s.id == p->site_id) readable.push_back(s);
    }
    SecurityHeaders(res);
    res.set_header("Cache-Control", "no-store");
    res.set_content(absl::StrCat(R"({"kind":")", kind, R"(","sites":)",
                                 SitesJson(readable), "}"),
                    "application/json");
  });

  svr.Get(R"(/share/([^/]+)/?)", [this](Req req, Res res) {
    absl::StatusOr<std::pair<int64_t, int64_t>> share =
        FindShare(req.matches[1].str());
    if (!share.ok()) {
      if (!absl::IsUnauthenticated(share.status())) {
        LogLine("error", "share lookup failed",
                {{"error", std::string(share.status().message())}});
        return Html(res, 503,
                    "<!doctype html><meta charset=\"utf-8\"><title>Shared "
                    "dashboard</title><p>The server cannot check this link "
                    "right now.</p>");
      }
      return Html(res, 404,
                  "<!doctype html><meta charset=\"utf-8\"><title>Shared "
                  "dashboard</title><h1>Link not valid</h1><p>This shared "
                  "dashboard link does not exist or was revoked.</p>");
    }
    Html(res, 200, kDashboardHtml);
  });

  // ------------------------------------------------------- shared links --
  svr.Post("/api/v1/shares", [this, fail](Req req, Res res) {
    absl::StatusOr<Principal> p = Owner(req);
    if (!p.ok()) return fail(req, res, p.status());
    rapidjson::Document doc;
    doc.Parse(req.body.data(), req.body.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      return fail(req, res,
                  absl::InvalidArgumentError("body: want a JSON object"));
    }
    auto str = [&](const char* k) -> absl::StatusOr<std::string> {
      auto it = doc.FindMember(k);
      if (it == doc.MemberEnd() || it->value.IsNull()) return std::string();
      if (!it->value.IsString()) {
        return absl::InvalidArgumentError(absl::StrCat(k, ": want a string"));
      }
      return std::string(it->value.GetString(), it->value.GetStringLength());
    };
    absl::StatusOr<std::string> site_id = str("site");
    if (!site_id.ok()) return fail(req, res, site_id.status());
    absl::StatusOr<std::string> name = str("name");
    if (!name.ok()) return fail(req, res, name.status());
    if (site_id->empty()) {
      return fail(req, res, absl::InvalidArgumentError("site: required"));
    }
    if (name->size() > 200) {
      return fail(req, res,
                  absl::InvalidArgumentError("name: longer than 200 bytes"));
    }
    absl::StatusOr<Site> site = engine_.FindSite(*site_id);
    if (!site.ok() || (!p->admin && site->id != p->site_id)) {
      return fail(req, res,
                  !site.ok() && p->admin
                      ? site.status()
                      : absl::PermissionDeniedError(
                            "authorization: this key may not share that "
                            "site"));
    }
    std::string token = absl::StrCat(kSharePrefix, RandomHex(24));
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("token_sha256");
    std::string hash = Sha256Hex(token);
    w.String(hash.data(), hash.size());
    w.Key("prefix");
    w.String(token.data(), 8);
    w.Key("name");
    w.String(name->data(), name->size());
    w.Key("created_by");
    std::string by = p->admin ? "admin" : absl::StrCat("key:", p->key_id);
    w.String(by.data(), by.size());
    w.EndObject();
    ConfigDoc cd;
    cd.kind = kShareKind;
    cd.site_id = site->id;
    cd.json = buf.GetString();
    absl::StatusOr<ConfigDoc> added = engine_.store()->AddConfigDoc(cd);
    if (!added.ok()) return fail(req, res, added.status());
    LogLine("info", "shared link created",
            {{"id", absl::StrCat(added->id)}, {"site", site->domain}});
    SecurityHeaders(res);
    res.status = 201;
    res.set_content(ShareJson(*added, site->domain, &token),
                    "application/json");
  });

  svr.Get("/api/v1/shares", [this, fail](Req req, Res res) {
    absl::StatusOr<Principal> p = Owner(req);
    if (!p.ok()) return fail(req, res, p.status());
    int64_t only = p->admin ? 0 : p->site_id;
    absl::StatusOr<std::vector<Site>> sites = engine_.ListSites();
    if (!sites.ok()) return fail(req, res, sites.status());
    if (std::string s = req.get_param_value("site"); !s.empty()) {
      absl::StatusOr<Site> site = engine_.FindSite(s);
      if (!site.ok() || (!p->admin && site->id != p->site_id)) {
        return fail(req, res,
                    !site.ok() && p->admin
                        ? site.status()
                        : absl::PermissionDeniedError(
                              "authorization: this key may not read that "
                              "site"));
      }
      only = site->id;
    }
    absl::StatusOr<std::vector<ConfigDoc>> docs =
        engine_.store()->ListConfigDocs(kShareKind, only);
    if (!docs.ok()) return fail(req, res, docs.status());
    std::string out = "[";
    bool first = true;
    for (const ConfigDoc& d : *docs) {
      if (!p->admin && d.site_id != p->site_id) continue;
      std::string domain;
      for (const Site& s : *sites) {
        if (s.id == d.site_id) domain = s.domain;
      }
      absl::StrAppend(&out, first ? "" : ",", ShareJson(d, domain, nullptr));
      first = false;
    }
    out += "]";
    SecurityHeaders(res);
    res.set_content(out, "application/json");
  });

  svr.Delete(R"(/api/v1/shares/([^/]+))", [this, fail](Req req, Res res) {
    absl::StatusOr<Principal> p = Owner(req);
    if (!p.ok()) return fail(req, res, p.status());
    int64_t id = 0;
    if (!absl::SimpleAtoi(req.matches[1].str(), &id) || id <= 0) {
      return fail(req, res,
                  absl::InvalidArgumentError("id: want a positive integer"));
    }
    absl::StatusOr<std::vector<ConfigDoc>> docs =
        engine_.store()->ListConfigDocs(kShareKind, p->admin ? 0 : p->site_id);
    if (!docs.ok()) return fail(req, res, docs.status());
    auto it = std::find_if(docs->begin(), docs->end(),
                           [&](const ConfigDoc& d) { return d.id == id; });
    if (it == docs->end()) {
      return fail(req, res, absl::NotFoundError("id: no such shared link"));
    }
    absl::Status s = engine_.store()->DeleteConfigDoc(id);
    if (!s.ok()) return fail(req, res, s);
    LogLine("info", "shared link revoked", {{"id", absl::StrCat(id)}});
    SecurityHeaders(res);
    res.set_content(R"({"revoked":true})", "application/json");
  });
}

}  // namespace analytics::server
