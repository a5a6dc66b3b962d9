// See pg_conn.h.
#include "libanalytics/net/pg_conn.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "libanalytics/core/strings.h"

namespace analytics::net {

int64_t PgInt(const PGresult* r, int row, int col) {
  return std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}

std::string Redact(std::string msg, const std::string& password) {
  if (password.empty()) return msg;
  return absl::StrReplaceAll(msg, {{password, "***"}});
}

std::string UrlPassword(std::string_view url) {
  size_t start = url.find("://");
  if (start == std::string_view::npos) return "";
  start += 3;
  size_t at = url.find('@', start);
  if (at == std::string_view::npos) return "";
  std::string_view userinfo = url.substr(start, at - start);
  size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) return "";
  return std::string(userinfo.substr(colon + 1));
}

absl::StatusOr<PGconn*> ConnectPg(const std::string& url,
                                  const char* application_name,
                                  std::string_view who,
                                  const std::string& password) {
  const char* keys[] = {"connect_timeout", "application_name", "dbname",
                        nullptr};
  const char* values[] = {"10", application_name, url.c_str(), nullptr};
  PGconn* pg = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (pg == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(AV(who), ": postgres: out of memory"));
  }
  if (PQstatus(pg) != CONNECTION_OK) {
    std::string detail = PQerrorMessage(pg);
    PQfinish(pg);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) {
      detail.pop_back();
    }
    return absl::UnavailableError(
        Redact(absl::StrCat(AV(who), ": postgres: cannot connect to '",
                            Redact(url, password), "': ", detail),
               password));
  }
  return pg;
}

PgError DescribePgError(PGconn* c, const PGresult* r, std::string_view who,
                        std::string_view what, const std::string& password) {
  PgError e;
  const char* state =
      r == nullptr ? nullptr : PQresultErrorField(r, PG_DIAG_SQLSTATE);
  e.sqlstate = state == nullptr ? "" : state;
  std::string detail = r != nullptr && PQresultErrorMessage(r)[0] != '\0'
                           ? PQresultErrorMessage(r)
                           : PQerrorMessage(c);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) {
    detail.pop_back();
  }
  e.message = Redact(
      absl::StrCat(AV(who), ": postgres: ", AV(what), ": ", detail), password);
  const std::string& s = e.sqlstate;
  e.transient = PQstatus(c) != CONNECTION_OK || s.rfind("08", 0) == 0 ||
                s.rfind("57P", 0) == 0 || s.rfind("53", 0) == 0 ||
                s == "40001" || s == "40P01";
  return e;
}

}  // namespace analytics::net
