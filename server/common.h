// Small helpers shared by analyticsd and the analytics CLI (glue only).
#ifndef ANALYTICS_SERVER_COMMON_H_
#define ANALYTICS_SERVER_COMMON_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "analytics/store.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics::server {

inline constexpr char kDefaultStore[] = "sqlite://./data/analytics.db";

// The environment variable's value, or `fallback` when unset or empty.
inline std::string EnvOr(const char* name, absl::string_view fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
}

// The store URL for logs: no user info (credentials) and no query string.
inline std::string RedactUrl(absl::string_view url) {
  absl::string_view rest = url;
  std::string scheme;
  if (size_t p = url.find("://"); p != absl::string_view::npos) {
    scheme = std::string(url.substr(0, p + 3));
    rest = url.substr(p + 3);
  }
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos
                               ? absl::string_view()
                               : rest.substr(slash);
  if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string out = scheme + std::string(authority) + std::string(path);
  if (size_t q = out.find('?'); q != std::string::npos) out.resize(q);
  return out;
}

// For "sqlite://" URLs, creates the database file's parent directory so the
// default ./data/analytics.db works on a fresh checkout. Best effort.
inline void EnsureStoreDir(absl::string_view url) {
  constexpr absl::string_view kSqlite = "sqlite://";
  if (!absl::StartsWith(url, kSqlite)) return;
  std::filesystem::path file(std::string(url.substr(kSqlite.size())));
  if (file.empty() || file.string() == ":memory:") return;
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
}

template <typename Writer>
void WriteSite(Writer& w, const Site& s) {
  w.StartObject();
  w.Key("id");
  w.Int64(s.id);
  w.Key("domain");
  w.String(s.domain.data(), s.domain.size());
  w.Key("short_id");
  w.String(s.short_id.data(), s.short_id.size());
  w.Key("timezone");
  w.String(s.timezone.data(), s.timezone.size());
  w.Key("retention_days");
  w.Int(s.retention_days);
  w.Key("allowed_origins");
  w.StartArray();
  for (absl::string_view o :
       absl::StrSplit(s.allowed_origins, ',', absl::SkipWhitespace())) {
    w.String(o.data(), o.size());
  }
  w.EndArray();
  w.EndObject();
}

inline std::string SiteJson(const Site& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  WriteSite(w, s);
  return buf.GetString();
}

template <typename Sites>
std::string SitesJson(const Sites& sites) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const Site& s : sites) WriteSite(w, s);
  w.EndArray();
  return buf.GetString();
}

// {"error":"<message>"} with proper escaping.
inline std::string ErrorJson(absl::string_view message) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("error");
  w.String(message.data(), message.size());
  w.EndObject();
  return buf.GetString();
}

}  // namespace analytics::server

#endif  // ANALYTICS_SERVER_COMMON_H_
