// net/pg_conn: the libpq plumbing shared by the PostgreSQL store
// (store/postgres_store.cc) and the PostgreSQL coordinator
// (coord/postgres_coordinator.cc). Owns: result ownership (PgResult), reading
// an integer column, password redaction, and describing a failed statement
// (message with the password removed, SQLSTATE, whether it is transient),
// and the connection object itself (PgConn).
// Each backend keeps its own Status mapping beyond the transient case, its
// parameter builder (their NUL handling differs), pool and retry policy.
#ifndef LIBANALYTICS_NET_PG_CONN_H_
#define LIBANALYTICS_NET_PG_CONN_H_

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace analytics::net {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// An integer column (text format).
int64_t PgInt(const PGresult* r, int row, int col);

// `msg` with every occurrence of `password` (when there is one) as "***".
std::string Redact(std::string msg, const std::string& password);

// The password of a URL ("scheme://user:pass@host..."), or "".
std::string UrlPassword(std::string_view url);

// Opens a connection to `url` (a libpq URL or conninfo; its parameters, e.g.
// connect_timeout, override the defaults: connect_timeout 10 s and
// `application_name`). The caller owns the result (PQfinish). Errors
// (Unavailable): "<who>: postgres: out of memory",
// "<who>: postgres: cannot connect to '<url>': <reason>", with `password`
// (the URL's) redacted everywhere.
absl::StatusOr<PGconn*> ConnectPg(const std::string& url,
                                  const char* application_name,
                                  std::string_view who,
                                  const std::string& password);

// A failed statement (r may be null: then the connection's error).
struct PgError {
  std::string sqlstate;  // "" when the server sent none
  // "<who>: postgres: <what>: <libpq message>", password redacted.
  std::string message;
  // The connection is broken, or the SQLSTATE means "try again later"
  // (class 08, 57P, 53, 40001, 40P01).
  bool transient = false;
};
PgError DescribePgError(PGconn* c, const PGresult* r, std::string_view who,
                        std::string_view what, const std::string& password);

// One owned libpq connection (closed by the destructor), and the password
// to redact from its messages (owned by the caller, outliving this). Each
// backend derives its statement helpers and Status mapping from it.
class PgConn {
 public:
  PgConn(PGconn* c, const std::string* password) : c_(c), password_(password) {}
  ~PgConn() { PQfinish(c_); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  PGconn* get() const { return c_; }
  bool broken() const { return PQstatus(c_) != CONNECTION_OK; }

 protected:
  PgError Describe(const PGresult* r, std::string_view who,
                   std::string_view what) const {
    return DescribePgError(c_, r, who, what, *password_);
  }

  PGconn* const c_;
  const std::string* const password_;
};

}  // namespace analytics::net

#endif  // LIBANALYTICS_NET_PG_CONN_H_
