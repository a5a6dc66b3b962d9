// PostgreSQL Coordinator (see postgres_coordinator.h). Owns: the coord_*
// tables, their statements and a small connection pool. Result ownership,
// password redaction and error description are net/pg_conn.h, shared with
// store/postgres_store.cc.
#include "libanalytics/coord/postgres_coordinator.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libanalytics/coord/coord_common.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/net/idle_pool.h"
#include "libanalytics/net/pg_conn.h"

namespace analytics {
namespace {

// The server's wall clock in Unix milliseconds.
#define NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

// Serializes schema set-up between processes (the Store uses
// 0x616e616c79746963 + 0..2).
constexpr int64_t kSchemaLock = 0x616e616c79746963 + 0x100;
constexpr size_t kMaxIdle = 8;
constexpr absl::Duration kSweepEvery = absl::Minutes(1);

// (client_min_messages: no "already exists, skipping" notices on stderr.)
constexpr char kSchemaSql[] = R"sql(
SET LOCAL client_min_messages = warning;
CREATE UNLOGGED TABLE IF NOT EXISTS coord_salts(
  day bigint PRIMARY KEY, salt bytea NOT NULL, expires_ms bigint NOT NULL);
CREATE UNLOGGED TABLE IF NOT EXISTS coord_sessions(
  site_id bigint NOT NULL, visitor_id bigint NOT NULL,
  version bigint NOT NULL, value bytea NOT NULL, expires_ms bigint NOT NULL,
  PRIMARY KEY (site_id, visitor_id));
CREATE UNLOGGED TABLE IF NOT EXISTS coord_live(
  site_id bigint NOT NULL, visitor_id bigint NOT NULL, ts_ms bigint NOT NULL,
  PRIMARY KEY (site_id, visitor_id));
CREATE INDEX IF NOT EXISTS coord_live_site_ts ON coord_live(site_id, ts_ms);
CREATE UNLOGGED TABLE IF NOT EXISTS coord_leases(
  name text PRIMARY KEY, holder text NOT NULL, expires_ms bigint NOT NULL);
CREATE UNLOGGED TABLE IF NOT EXISTS coord_counters(
  key text NOT NULL, window_ms bigint NOT NULL, window_no bigint NOT NULL,
  count bigint NOT NULL, expires_ms bigint NOT NULL,
  PRIMARY KEY (key, window_ms, window_no));
)sql";

constexpr char kSaltSql[] =
    "WITH n AS (SELECT " NOW_MS
    " AS now), "
    "ins AS (INSERT INTO coord_salts AS s (day, salt, expires_ms) "
    "  SELECT $1::bigint, $2::bytea, n.now + $3::bigint FROM n "
    "  ON CONFLICT (day) DO UPDATE SET salt = EXCLUDED.salt, "
    "    expires_ms = EXCLUDED.expires_ms "
    "  WHERE s.expires_ms <= EXCLUDED.expires_ms - $3::bigint "
    "  RETURNING salt) "
    "SELECT salt FROM ins UNION ALL "
    "SELECT salt FROM coord_salts, n WHERE day = $1::bigint "
    "  AND expires_ms > n.now AND NOT EXISTS (SELECT 1 FROM ins)";

constexpr char kLoadSql[] =
    "SELECT k.i, s.version, s.value "
    "FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS k(site, vis, "
    "i) "
    "JOIN coord_sessions s ON s.site_id = k.site AND s.visitor_id = k.vis "
    "WHERE s.expires_ms > " NOW_MS;

// Inserts only rows that may succeed (expected 0, or a live row at the
// expected version); the conflict clause re-checks the version on the row's
// latest version under its lock. An expired row counts as absent.
constexpr char kStoreSql[] =
    "WITH n AS (SELECT " NOW_MS
    " AS now), "
    "w AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], "
    "  $4::bytea[], $5::bigint[]) AS w(site, vis, expected, value, ttl)) "
    "INSERT INTO coord_sessions AS s "
    "  (site_id, visitor_id, version, value, expires_ms) "
    "SELECT w.site, w.vis, w.expected + 1, w.value, n.now + w.ttl FROM w, n "
    "WHERE w.expected = 0 OR EXISTS (SELECT 1 FROM coord_sessions c "
    "  WHERE c.site_id = w.site AND c.visitor_id = w.vis "
    "  AND c.version = w.expected AND c.expires_ms > n.now) "
    "ORDER BY w.site, w.vis "
    "ON CONFLICT (site_id, visitor_id) DO UPDATE SET "
    "  version = EXCLUDED.version, value = EXCLUDED.value, "
    "  expires_ms = EXCLUDED.expires_ms "
    "WHERE (s.expires_ms > " NOW_MS
    " AND s.version = EXCLUDED.version - 1) "
    "   OR (s.expires_ms <= " NOW_MS
    " AND EXCLUDED.version = 1) "
    "RETURNING site_id, visitor_id";

constexpr char kDeleteSql[] =
    "DELETE FROM coord_sessions s "
    "USING unnest($1::bigint[], $2::bigint[]) AS k(site, vis) "
    "WHERE s.site_id = k.site AND s.visitor_id = k.vis";

constexpr char kMarkLiveSql[] =
    "INSERT INTO coord_live AS l (site_id, visitor_id, ts_ms) "
    "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) "
    "ON CONFLICT (site_id, visitor_id) DO UPDATE SET ts_ms = EXCLUDED.ts_ms "
    "WHERE l.ts_ms < EXCLUDED.ts_ms";

constexpr char kCountLiveSql[] =
    "SELECT count(*) FROM coord_live WHERE site_id = $1::bigint "
    "AND ts_ms >= $2::bigint";

constexpr char kLeaseSql[] =
    "INSERT INTO coord_leases AS l (name, holder, expires_ms) "
    "VALUES ($1::text, $2::text, " NOW_MS
    " + $3::bigint) "
    "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
    "  expires_ms = EXCLUDED.expires_ms "
    "WHERE l.holder = EXCLUDED.holder OR l.expires_ms <= " NOW_MS
    " RETURNING 1";

constexpr char kReleaseSql[] =
    "DELETE FROM coord_leases WHERE name = $1::text AND holder = $2::text";

constexpr char kHolderSql[] =
    "SELECT holder FROM coord_leases WHERE name = $1::text "
    "AND expires_ms > " NOW_MS;

constexpr char kCountersSql[] =
    "INSERT INTO coord_counters AS c "
    "  (key, window_ms, window_no, count, expires_ms) "
    "SELECT k.key, $3::bigint, $4::bigint, k.cost, "
    "  " NOW_MS
    " + 2 * $3::bigint "
    "FROM unnest($1::text[], $2::bigint[]) AS k(key, cost) ORDER BY k.key "
    "ON CONFLICT (key, window_ms, window_no) DO UPDATE SET "
    "  count = c.count + EXCLUDED.count, expires_ms = EXCLUDED.expires_ms "
    "RETURNING key, count";

// Live marks are kept coord::kLiveKeep behind each site's newest ($1 ms).
constexpr char kSweepSql[] =
    "WITH a AS (DELETE FROM coord_sessions WHERE expires_ms <= " NOW_MS
    "), "
    "b AS (DELETE FROM coord_salts WHERE expires_ms <= " NOW_MS
    "), "
    "c AS (DELETE FROM coord_leases WHERE expires_ms <= " NOW_MS
    "), "
    "d AS (DELETE FROM coord_counters WHERE expires_ms <= " NOW_MS
    ") "
    "DELETE FROM coord_live l USING (SELECT site_id, max(ts_ms) AS m "
    "  FROM coord_live GROUP BY site_id) x "
    "WHERE l.site_id = x.site_id AND l.ts_ms < x.m - $1::bigint";

#undef NOW_MS

// ---------------------------------------------------------------------------
// Parameters and values.

using Result = net::PgResult;

// Statement parameters: text, or one binary bytea.
class Params {
 public:
  Params& Int(int64_t v) { return Add(absl::StrCat(v), 0); }
  Params& Text(std::string v) { return Add(std::move(v), 0); }
  Params& Bytea(std::string_view v) { return Add(std::string(v), 1); }

  int size() const { return static_cast<int>(values_.size()); }
  std::vector<const char*> values() const {
    std::vector<const char*> out;
    for (const std::string& v : values_) out.push_back(v.c_str());
    return out;
  }
  std::vector<int> lengths() const {
    std::vector<int> out;
    for (const std::string& v : values_)
      out.push_back(static_cast<int>(v.size()));
    return out;
  }
  const int* formats() const { return formats_.data(); }

 private:
  Params& Add(std::string v, int format) {
    values_.push_back(std::move(v));
    formats_.push_back(format);
    return *this;
  }
  std::vector<std::string> values_;
  std::vector<int> formats_;
};

// Array literals ("{…}") for array parameters sent as text.
class ArrayLiteral {
 public:
  ArrayLiteral() : s_("{") {}
  void Int(int64_t v) {
    Sep();
    absl::StrAppend(&s_, v);
  }
  // A quoted element; the text must hold no NUL.
  void Text(std::string_view v) {
    Sep();
    s_.push_back('"');
    for (char ch : v) {
      if (ch == '"' || ch == '\\') s_.push_back('\\');
      s_.push_back(ch);
    }
    s_.push_back('"');
  }
  // A bytea element in hex ("\\x…" inside quotes reads as \x…).
  void Bytea(std::string_view v) {
    static constexpr char kHex[] = "0123456789abcdef";
    Sep();
    s_.append("\"\\\\x");
    for (unsigned char ch : v) {
      s_.push_back(kHex[ch >> 4]);
      s_.push_back(kHex[ch & 15]);
    }
    s_.push_back('"');
  }
  std::string Done() && {
    s_.push_back('}');
    return std::move(s_);
  }

 private:
  void Sep() {
    if (s_.size() > 1) s_.push_back(',');
  }
  std::string s_;
};

constexpr auto* Int = &net::PgInt;

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A bytea column in text format (bytea_output = hex: "\x…").
absl::StatusOr<std::string> ByteaValue(const PGresult* r, int row, int col) {
  std::string_view v(PQgetvalue(r, row, col), PQgetlength(r, row, col));
  if (v.size() < 2 || v[0] != '\\' || v[1] != 'x' || v.size() % 2 != 0) {
    return absl::DataLossError("coordinator: postgres: bad bytea value");
  }
  std::string out;
  out.reserve(v.size() / 2 - 1);
  for (size_t i = 2; i < v.size(); i += 2) {
    int hi = Hex(v[i]), lo = Hex(v[i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::DataLossError("coordinator: postgres: bad bytea value");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

absl::Status CheckNoNul(std::string_view s, absl::string_view what) {
  if (s.find('\0') == std::string_view::npos) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("coordinator: postgres: ", what, " holds a NUL byte"));
}

// coord::CheckLease, and no NUL in the name or holder (text columns).
absl::Status CheckLeaseArgs(std::string_view name, std::string_view holder) {
  absl::Status st = coord::CheckLease(name, holder);
  if (st.ok()) st = CheckNoNul(name, "lease name");
  if (st.ok()) st = CheckNoNul(holder, "lease holder");
  return st;
}

// ---------------------------------------------------------------------------
// Connections.

using net::UrlPassword;

class Conn : public net::PgConn {
 public:
  using PgConn::PgConn;

  absl::StatusOr<Result> Exec(const char* sql, const Params& p,
                              absl::string_view what) {
    std::vector<const char*> values = p.values();
    std::vector<int> lengths = p.lengths();
    Result r(PQexecParams(c_, sql, p.size(), nullptr, values.data(),
                          lengths.data(), p.formats(), 0));
    return Check(std::move(r), what);
  }
  // Constant SQL, possibly several statements.
  absl::Status ExecScript(const char* sql, absl::string_view what) {
    return Check(Result(PQexec(c_, sql)), what).status();
  }

  absl::StatusOr<Result> Check(Result r, absl::string_view what) {
    ExecStatusType st =
        r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r.get());
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    net::PgError e = Describe(r.get(), "coordinator", SV(what));
    if (e.transient) return absl::UnavailableError(e.message);
    // Data exceptions (e.g. text that is not valid UTF-8) are the caller's.
    if (e.sqlstate.rfind("22", 0) == 0) {
      return absl::InvalidArgumentError(e.message);
    }
    return absl::InternalError(e.message);
  }
};

class PostgresCoordinator : public Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(
      std::string_view url) {
    auto c = std::unique_ptr<PostgresCoordinator>(
        new PostgresCoordinator(std::string(url)));
    absl::Status st = c->CreateSchema();
    if (!st.ok()) return st;
    return std::unique_ptr<Coordinator>(std::move(c));
  }

  std::string_view kind() const override { return "postgres"; }

  absl::Status Ping() override {
    return Run("SELECT 1", Params(), "ping").status();
  }

  absl::StatusOr<std::string> SaltIfAbsent(int64_t day, std::string candidate,
                                           absl::Duration ttl) override {
    Params p;
    p.Int(day).Bytea(candidate).Int(coord::TtlMs(ttl));
    // No row only when another worker's insert committed after this
    // statement's snapshot: the next attempt sees it.
    for (int attempt = 0; attempt < 5; ++attempt) {
      absl::StatusOr<Result> r = Run(kSaltSql, p, "salt");
      if (!r.ok()) return r.status();
      if (PQntuples(r->get()) > 0) return ByteaValue(r->get(), 0, 0);
    }
    return absl::UnavailableError(
        "coordinator: postgres: salt could not be read back");
  }

  absl::StatusOr<std::vector<SessionRecord>> LoadSessions(
      absl::Span<const SessionKey> keys) override {
    std::vector<SessionRecord> out(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) out[i].key = keys[i];
    if (keys.empty()) return out;
    ArrayLiteral sites, visitors;
    for (const SessionKey& k : keys) {
      sites.Int(k.site_id);
      visitors.Int(static_cast<int64_t>(k.visitor_id));
    }
    Params p;
    p.Text(std::move(sites).Done()).Text(std::move(visitors).Done());
    absl::StatusOr<Result> r = Run(kLoadSql, p, "load sessions");
    if (!r.ok()) return r.status();
    for (int row = 0; row < PQntuples(r->get()); ++row) {
      int64_t i = Int(r->get(), row, 0) - 1;
      if (i < 0 || i >= static_cast<int64_t>(keys.size())) continue;
      out[i].version = Int(r->get(), row, 1);
      absl::StatusOr<std::string> v = ByteaValue(r->get(), row, 2);
      if (!v.ok()) return v.status();
      out[i].value = *std::move(v);
    }
    return out;
  }

  absl::StatusOr<std::vector<bool>> StoreSessions(
      absl::Span<const SessionWrite> writes) override {
    absl::Status st = coord::CheckDistinctKeys(writes);
    if (!st.ok()) return st;
    std::vector<bool> out(writes.size(), false);
    if (writes.empty()) return out;
    ArrayLiteral sites, visitors, expected, values, ttls;
    for (const SessionWrite& w : writes) {
      sites.Int(w.key.site_id);
      visitors.Int(static_cast<int64_t>(w.key.visitor_id));
      expected.Int(w.expected_version);
      values.Bytea(w.value);
      ttls.Int(coord::TtlMs(w.ttl));
    }
    Params p;
    p.Text(std::move(sites).Done())
        .Text(std::move(visitors).Done())
        .Text(std::move(expected).Done())
        .Text(std::move(values).Done())
        .Text(std::move(ttls).Done());
    absl::StatusOr<Result> r =
        Run(kStoreSql, p, "store sessions", Retry::kNever);
    if (!r.ok()) return r.status();
    absl::flat_hash_map<std::pair<int64_t, int64_t>, size_t> index;
    for (size_t i = 0; i < writes.size(); ++i) {
      index[{writes[i].key.site_id,
             static_cast<int64_t>(writes[i].key.visitor_id)}] = i;
    }
    for (int row = 0; row < PQntuples(r->get()); ++row) {
      auto it = index.find({Int(r->get(), row, 0), Int(r->get(), row, 1)});
      if (it != index.end()) out[it->second] = true;
    }
    return out;
  }

  absl::Status DeleteSessions(absl::Span<const SessionKey> keys) override {
    if (keys.empty()) return absl::OkStatus();
    ArrayLiteral sites, visitors;
    for (const SessionKey& k : keys) {
      sites.Int(k.site_id);
      visitors.Int(static_cast<int64_t>(k.visitor_id));
    }
    Params p;
    p.Text(std::move(sites).Done()).Text(std::move(visitors).Done());
    return Run(kDeleteSql, p, "delete sessions").status();
  }

  absl::Status MarkLive(absl::Span<const LiveMark> marks) override {
    if (marks.empty()) return absl::OkStatus();
    // One row per (site, visitor), the max ts, in key order (lock order).
    std::map<std::pair<int64_t, int64_t>, int64_t> rows;
    for (const LiveMark& m : marks) {
      auto [it, added] = rows.try_emplace(
          {m.site_id, static_cast<int64_t>(m.visitor_id)}, m.ts_ms);
      if (!added) it->second = std::max(it->second, m.ts_ms);
    }
    ArrayLiteral sites, visitors, ts;
    for (const auto& [k, t] : rows) {
      sites.Int(k.first);
      visitors.Int(k.second);
      ts.Int(t);
    }
    Params p;
    p.Text(std::move(sites).Done())
        .Text(std::move(visitors).Done())
        .Text(std::move(ts).Done());
    return Run(kMarkLiveSql, p, "mark live").status();
  }

  absl::StatusOr<int64_t> CountLive(int64_t site_id,
                                    int64_t since_ms) override {
    Params p;
    p.Int(site_id).Int(since_ms);
    absl::StatusOr<Result> r = Run(kCountLiveSql, p, "count live");
    if (!r.ok()) return r.status();
    return Int(r->get(), 0, 0);
  }

  absl::StatusOr<bool> TryLease(std::string_view name, std::string_view holder,
                                absl::Duration ttl) override {
    if (absl::Status st = CheckLeaseArgs(name, holder); !st.ok()) return st;
    Params p;
    p.Text(std::string(name)).Text(std::string(holder)).Int(coord::TtlMs(ttl));
    absl::StatusOr<Result> r = Run(kLeaseSql, p, "lease");
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) == 1;
  }

  absl::Status ReleaseLease(std::string_view name,
                            std::string_view holder) override {
    if (absl::Status st = CheckLeaseArgs(name, holder); !st.ok()) return st;
    Params p;
    p.Text(std::string(name)).Text(std::string(holder));
    return Run(kReleaseSql, p, "release lease").status();
  }

  absl::StatusOr<std::string> LeaseHolder(std::string_view name) override {
    absl::Status st = CheckNoNul(name, "lease name");
    if (!st.ok()) return st;
    Params p;
    p.Text(std::string(name));
    absl::StatusOr<Result> r = Run(kHolderSql, p, "lease holder");
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::string();
    return std::string(PQgetvalue(r->get(), 0, 0), PQgetlength(r->get(), 0, 0));
  }

  absl::StatusOr<std::vector<int64_t>> AddToCounters(
      absl::Span<const std::string> keys, absl::Span<const int64_t> costs,
      absl::Duration window, int64_t now_ms) override {
    absl::Status st = coord::CheckCounterArgs(keys.size(), costs.size());
    if (!st.ok()) return st;
    std::vector<int64_t> out(keys.size());
    if (keys.empty()) return out;
    // One row per key (an upsert may touch a row once): sum the costs.
    absl::flat_hash_map<std::string, int64_t> total;
    for (size_t i = 0; i < keys.size(); ++i) {
      st = CheckNoNul(keys[i], "counter key");
      if (!st.ok()) return st;
      total[keys[i]] += costs[i];
    }
    ArrayLiteral names, sums;
    for (const auto& [k, c] : total) {
      names.Text(k);
      sums.Int(c);
    }
    int64_t window_ms = coord::WindowMs(window);
    Params p;
    p.Text(std::move(names).Done())
        .Text(std::move(sums).Done())
        .Int(window_ms)
        .Int(coord::WindowIndex(now_ms, window_ms));
    absl::StatusOr<Result> r =
        Run(kCountersSql, p, "add to counters", Retry::kNever);
    if (!r.ok()) return r.status();
    absl::flat_hash_map<std::string, int64_t> after;
    for (int row = 0; row < PQntuples(r->get()); ++row) {
      after[std::string(PQgetvalue(r->get(), row, 0),
                        PQgetlength(r->get(), row, 0))] = Int(r->get(), row, 1);
    }
    // As if added one by one: a key's i-th occurrence sees the counter
    // without the costs of its later occurrences.
    for (size_t i = keys.size(); i-- > 0;) {
      int64_t& v = after[keys[i]];
      out[i] = v;
      v -= costs[i];
    }
    return out;
  }

 private:
  explicit PostgresCoordinator(std::string url)
      : url_(std::move(url)), password_(UrlPassword(url_)) {}

  absl::Status CreateSchema() {
    absl::StatusOr<std::unique_ptr<Conn>> c = Acquire();
    if (!c.ok()) return c.status();
    absl::Status st = (*c)->ExecScript("BEGIN", "begin");
    if (st.ok()) {
      Params p;
      p.Int(kSchemaLock);
      st = (*c)->Exec("SELECT pg_advisory_xact_lock($1::bigint)", p,
                      "lock schema")
               .status();
    }
    if (st.ok()) st = (*c)->ExecScript(kSchemaSql, "create tables");
    if (st.ok()) st = (*c)->ExecScript("COMMIT", "commit");
    if (!st.ok()) {
      if (!(*c)->broken()) PQclear(PQexec((*c)->get(), "ROLLBACK"));
      return st;
    }
    Release(*std::move(c));
    return absl::OkStatus();
  }

  // Runs one statement on a pooled connection. When a pooled connection
  // turns out broken (server restarted, backend terminated) an idempotent
  // statement runs once more on a fresh connection; a non-idempotent one
  // (session CAS, counter additions: it may have run before the connection
  // died) returns Unavailable, and the next call connects again.
  enum class Retry { kIdempotent, kNever };
  absl::StatusOr<Result> Run(const char* sql, const Params& p,
                             absl::string_view what,
                             Retry retry = Retry::kIdempotent) {
    MaybeSweep();
    for (int attempt = 0;; ++attempt) {
      bool fresh = false;
      absl::StatusOr<std::unique_ptr<Conn>> c = Acquire(&fresh);
      if (!c.ok()) return c.status();
      absl::StatusOr<Result> r = (*c)->Exec(sql, p, what);
      if (r.ok() || !(*c)->broken()) {
        Release(*std::move(c));
        return r;
      }
      if (fresh || attempt > 0 || retry == Retry::kNever) return r;
    }
  }

  // Deletes expired rows, at most once per kSweepEvery per coordinator.
  // Failures are ignored (the next sweep tries again).
  void MaybeSweep() {
    absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&pool_mu_);
      if (now - last_sweep_ < kSweepEvery) return;
      last_sweep_ = now;
    }
    absl::StatusOr<std::unique_ptr<Conn>> c = Acquire();
    if (!c.ok()) return;
    Params p;
    p.Int(absl::ToInt64Milliseconds(coord::kLiveKeep));
    (void)(*c)->Exec(kSweepSql, p, "sweep");
    Release(*std::move(c));
  }

  absl::StatusOr<std::unique_ptr<Conn>> Acquire(bool* fresh = nullptr) {
    // Reads what the server sent meanwhile (e.g. the FATAL message of a
    // terminated backend): a dead connection is dropped here.
    std::unique_ptr<Conn> c = idle_.Take([](const Conn& conn) {
      return PQconsumeInput(conn.get()) != 0 && !conn.broken();
    });
    if (c != nullptr) {
      if (fresh != nullptr) *fresh = false;
      return c;
    }
    if (fresh != nullptr) *fresh = true;
    return Connect();
  }

  void Release(std::unique_ptr<Conn> c) {
    if (c == nullptr || c->broken() ||
        PQtransactionStatus(c->get()) != PQTRANS_IDLE) {
      return;
    }
    idle_.Put(std::move(c));
  }

  absl::StatusOr<std::unique_ptr<Conn>> Connect() {
    absl::StatusOr<PGconn*> pg =
        net::ConnectPg(url_, "analytics-coord", "coordinator", password_);
    if (!pg.ok()) return pg.status();
    auto c = std::make_unique<Conn>(*pg, &password_);
    absl::Status st =
        c->ExecScript("SET bytea_output = 'hex'; SET client_encoding = 'UTF8'",
                      "configure session");
    if (!st.ok()) return st;
    return c;
  }

  const std::string url_;
  const std::string password_;
  absl::Mutex pool_mu_;
  net::IdlePool<Conn> idle_{kMaxIdle};
  absl::Time last_sweep_ ABSL_GUARDED_BY(pool_mu_) = absl::Now();
};

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> OpenPostgresCoordinator(
    std::string_view url) {
  return PostgresCoordinator::Open(url);
}

}  // namespace analytics
