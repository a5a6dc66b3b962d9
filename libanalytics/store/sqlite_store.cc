// SQLite Store (see sqlite_store.h). Owns: the schema and its migrations,
// connection handling (one writer, a pool of readers), the event blocks
// (event_codec.h blocks, one row per site, worker and append, found by site
// and time range or by seq; scans merge blocks in order), the rollups (day
// cells a row each; hour cells one rollup_codec.h block per site and hour,
// merged in C++) and the hll_merge() SQL function used to merge the sketches
// of day rows.
#include "libanalytics/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libanalytics/core/visit_fields.h"
#include "libanalytics/sketch/hll.h"
#include "libanalytics/store/event_codec.h"
#include "libanalytics/store/lz4_codec.h"
#include "libanalytics/store/props_codec.h"
#include "libanalytics/store/rollup_codec.h"
#include "libanalytics/store/store_checks.h"
#include "libanalytics/store/varint.h"
#include "rapidjson/document.h"

namespace analytics {
namespace {

// ---------------------------------------------------------------------------
// Schema. Append new migrations at the end; never edit an applied one.

constexpr const char* kMigrations[] = {
    // Version 1: the initial schema.
    R"sql(
CREATE TABLE sites(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  domain TEXT NOT NULL UNIQUE,
  short_id TEXT NOT NULL UNIQUE,
  timezone TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE salts(
  day INTEGER PRIMARY KEY,
  salt BLOB NOT NULL);
CREATE TABLE events(
  seq INTEGER PRIMARY KEY,
  site_id INTEGER NOT NULL,
  ts_ms INTEGER NOT NULL,
  name TEXT NOT NULL,
  hostname TEXT NOT NULL,
  page TEXT NOT NULL,
  props TEXT,
  visitor_id INTEGER NOT NULL,
  session_id INTEGER NOT NULL,
  session_start_ms INTEGER NOT NULL,
  entry_page TEXT,
  source TEXT,
  referrer TEXT,
  utm_source TEXT,
  utm_medium TEXT,
  utm_campaign TEXT,
  utm_term TEXT,
  utm_content TEXT,
  country TEXT,
  browser TEXT,
  browser_version TEXT,
  os TEXT,
  os_version TEXT,
  device TEXT,
  screen TEXT,
  locale TEXT,
  first_in_session INTEGER NOT NULL,
  first_page INTEGER NOT NULL,
  first_name INTEGER NOT NULL,
  s_pageviews INTEGER NOT NULL,
  s_events INTEGER NOT NULL,
  s_bounce INTEGER NOT NULL,
  s_duration_ms INTEGER NOT NULL,
  s_exit_page TEXT NOT NULL,
  d_bounce INTEGER NOT NULL,
  d_duration_ms INTEGER NOT NULL,
  imported INTEGER NOT NULL);
CREATE INDEX events_site_ts ON events(site_id, ts_ms);
CREATE INDEX events_site_session_start ON events(site_id, session_start_ms);
CREATE TABLE rollups(
  site_id INTEGER NOT NULL,
  level INTEGER NOT NULL,
  dim TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  value TEXT NOT NULL,
  pageviews INTEGER NOT NULL,
  events INTEGER NOT NULL,
  visits INTEGER NOT NULL,
  bounces INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  session_pageviews INTEGER NOT NULL,
  visitors BLOB,
  PRIMARY KEY(site_id, level, dim, bucket, value)) WITHOUT ROWID;
CREATE TABLE meta(
  key TEXT PRIMARY KEY,
  value) WITHOUT ROWID;
)sql",
    // Version 2: allowed origins of sites, API keys.
    R"sql(
ALTER TABLE sites ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';
CREATE TABLE api_keys(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  site_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX api_keys_site ON api_keys(site_id);
)sql",
    // Version 3: per-worker rollup checkpoints (the old single checkpoint
    // becomes worker 0's), retention, configuration documents, job ledger.
    R"sql(
ALTER TABLE events ADD COLUMN worker INTEGER NOT NULL DEFAULT 0;
CREATE TABLE rollup_checkpoints(
  worker INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL);
INSERT INTO rollup_checkpoints(worker, seq)
  SELECT 0, CAST(value AS INTEGER) FROM meta WHERE key = 'rollup_checkpoint';
DELETE FROM meta WHERE key = 'rollup_checkpoint';
ALTER TABLE sites ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 0;
CREATE TABLE config_docs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  site_id INTEGER NOT NULL,
  json TEXT NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE INDEX config_docs_kind_site ON config_docs(kind, site_id);
CREATE INDEX config_docs_site ON config_docs(site_id);
CREATE TABLE job_runs(
  job TEXT NOT NULL,
  site_id INTEGER NOT NULL,
  period TEXT NOT NULL,
  state TEXT NOT NULL,
  holder TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(job, site_id, period));
CREATE INDEX job_runs_updated ON job_runs(updated_ms);
)sql",
    // Version 4: events stored as blocks (event_codec.h), one row per site,
    // worker and append: a row per event cost ~3 us of insert and index
    // upkeep, most of the durable ingestion cost. Rows of `events` are moved
    // into blocks by ConvertEventRows (C++, same transaction), then dropped.
    // min_time/max_time span both ts_ms and session_start_ms.
    R"sql(
CREATE TABLE event_blocks(
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  site_id INTEGER NOT NULL,
  worker INTEGER NOT NULL,
  n INTEGER NOT NULL,
  min_ts INTEGER NOT NULL,
  max_ts INTEGER NOT NULL,
  min_time INTEGER NOT NULL,
  max_time INTEGER NOT NULL,
  data BLOB NOT NULL);
CREATE INDEX event_blocks_site_time
  ON event_blocks(site_id, max_time, min_time);
CREATE INDEX event_blocks_last_seq ON event_blocks(last_seq);
)sql",
    // Version 5: hour rollups as one block per site and hour
    // (rollup_codec.h) instead of a row per cell: upserting a cell row cost
    // ~7 us, and an hour has hundreds of cells (a log import spent a third
    // of its CPU there). Day rollups stay a row per cell (long ranges read
    // only the dimensions they ask for). Hour rows of `rollups` are moved by
    // ConvertHourRollups (C++, same transaction).
    R"sql(
CREATE TABLE rollup_hours(
  site_id INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  n INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY(site_id, bucket));
)sql",
};
constexpr int kEventBlocksVersion = 4;
constexpr int kRollupHoursVersion = 5;
// Events per block at most: a scan decodes a whole block at a time.
constexpr size_t kMaxBlockEvents = 2048;
constexpr int kSchemaVersion =
    static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

// The highest seq ever deleted (RemoveSite): new events get larger seqs even
// when the newest rows were deleted, so a seq is never reused and rollup
// checkpoints stay valid. (Cheaper than AUTOINCREMENT, which costs ~15% of
// AppendEvents.)
constexpr char kSeqFloorKey[] = "seq_floor";
// Keys of GetMeta/PutMeta are stored with this prefix, so that they never
// collide with the internal keys above.
constexpr char kUserMetaPrefix[] = "user:";

// Columns of the `events` table of schema versions 1-4, read only to move
// its rows into blocks (ConvertEventRows).
#define ANALYTICS_EVENT_COLUMNS                                              \
  "site_id, ts_ms, name, hostname, page, props, visitor_id, session_id, "    \
  "session_start_ms, entry_page, source, referrer, utm_source, utm_medium, " \
  "utm_campaign, utm_term, utm_content, country, browser, browser_version, " \
  "os, os_version, device, screen, locale, first_in_session, first_page, "   \
  "first_name, s_pageviews, s_events, s_bounce, s_duration_ms, "             \
  "s_exit_page, d_bounce, d_duration_ms, imported, worker"

constexpr char kSelectEvents[] =
    "SELECT seq, " ANALYTICS_EVENT_COLUMNS " FROM events ";
#undef ANALYTICS_EVENT_COLUMNS

// VisitAttrs fields, in column order (entry_page .. locale = 10 .. 25).
constexpr int kFirstVisitColumn = 10;

// ---------------------------------------------------------------------------
// Errors.

absl::Status SqlError(sqlite3* db, int rc, absl::string_view what) {
  std::string msg =
      absl::StrCat("store: sqlite: ", what, ": ",
                   db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// ---------------------------------------------------------------------------
// Statement helpers.

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data() != nullptr ? v.data() : "",
                    static_cast<int>(v.size()), SQLITE_STATIC);
}
void BindTextOrNull(sqlite3_stmt* s, int i, std::string_view v) {
  if (v.empty()) {
    sqlite3_bind_null(s, i);
  } else {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
  }
}
void BindBlobOrNull(sqlite3_stmt* s, int i, std::string_view v) {
  if (v.empty()) {
    sqlite3_bind_null(s, i);
  } else {
    sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
  }
}
void ColumnString(sqlite3_stmt* s, int i, std::string* out) {
  const unsigned char* p = sqlite3_column_text(s, i);
  int n = sqlite3_column_bytes(s, i);
  if (p == nullptr) {
    out->clear();
  } else {
    out->assign(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
}
std::string ColumnString(sqlite3_stmt* s, int i) {
  std::string out;
  ColumnString(s, i, &out);
  return out;
}
std::string ColumnBlob(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  if (p == nullptr) return std::string();
  return std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}
// Into *out, reusing its buffer (scans that read a blob per row).
void ColumnBlob(sqlite3_stmt* s, int i, std::string* out) {
  const void* p = sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  if (p == nullptr) {
    out->clear();
  } else {
    out->assign(static_cast<const char*>(p), static_cast<size_t>(n));
  }
}

// A rollup cell's metrics and sketch from columns first.. (pageviews,
// events, visits, bounces, duration_ms, session_pageviews, visitors), the
// order of `rollups`.
void ColumnRollupCell(sqlite3_stmt* s, int first, RollupRow* r) {
  r->m.pageviews = sqlite3_column_int64(s, first);
  r->m.events = sqlite3_column_int64(s, first + 1);
  r->m.visits = sqlite3_column_int64(s, first + 2);
  r->m.bounces = sqlite3_column_int64(s, first + 3);
  r->m.duration_ms = sqlite3_column_int64(s, first + 4);
  r->m.session_pageviews = sqlite3_column_int64(s, first + 5);
  ColumnBlob(s, first + 6, &r->visitors);
}

// Resets a statement when leaving a scope, so that no statement keeps a read
// transaction open or refers to bound buffers that went away.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* s) : s_(s) {}
  ~ResetOnExit() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* s_;
};

// hll_merge(a, b): the serialized union of two serialized sketches. NULL (or
// an empty blob) is the empty sketch; the result is NULL only when both are.
void HllMergeFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto arg = [&](int i) -> std::string_view {
    if (i >= argc || sqlite3_value_type(argv[i]) == SQLITE_NULL) return {};
    const void* p = sqlite3_value_blob(argv[i]);
    int n = sqlite3_value_bytes(argv[i]);
    if (p == nullptr || n <= 0) return {};
    return std::string_view(static_cast<const char*>(p),
                            static_cast<size_t>(n));
  };
  std::string_view a = arg(0);
  std::string_view b = arg(1);
  if (a.empty() && b.empty()) {
    sqlite3_result_null(ctx);
    return;
  }
  if (a.empty() || b.empty()) {
    std::string_view one = a.empty() ? b : a;
    sqlite3_result_blob64(ctx, one.data(), one.size(), SQLITE_TRANSIENT);
    return;
  }
  try {
    absl::StatusOr<std::string> out = MergeSerializedSketches(a, b);
    if (!out.ok()) {
      std::string msg = absl::StrCat("hll_merge: ", out.status().message());
      sqlite3_result_error(ctx, msg.c_str(), static_cast<int>(msg.size()));
      return;
    }
    sqlite3_result_blob64(ctx, out->data(), out->size(), SQLITE_TRANSIENT);
  } catch (const std::exception& e) {
    sqlite3_result_error(ctx, e.what(), -1);
  }
}

// ---------------------------------------------------------------------------
// A connection with a cache of prepared statements. Used by one thread at a
// time (the owner serializes), so it is opened with SQLITE_OPEN_NOMUTEX.

class Conn {
 public:
  static absl::StatusOr<std::unique_ptr<Conn>> Open(const std::string& path,
                                                    bool writer) {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (writer) flags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      absl::Status st =
          SqlError(db, rc, absl::StrCat("cannot open '", path, "'"));
      sqlite3_close_v2(db);
      return absl::UnavailableError(st.message());
    }
    auto conn = std::unique_ptr<Conn>(new Conn(db));
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);
    // Durability: in WAL mode, synchronous=NORMAL writes each commit's WAL
    // frames with write() before COMMIT returns (no fsync per commit; fsync
    // only at WAL checkpoints). A committed transaction therefore survives
    // kill -9 or a crash of this process (the OS holds the pages), which is
    // what a 2xx promises (tests/reliability); it may be lost on power
    // failure or a kernel crash, where FULL would be needed (an fsync per
    // group commit).
    absl::Status st = conn->Exec("PRAGMA synchronous=NORMAL");
    if (st.ok()) st = conn->Exec("PRAGMA temp_store=MEMORY");
    if (st.ok() && writer) st = conn->Exec("PRAGMA cache_size=-16384");
    if (st.ok() && !writer) st = conn->Exec("PRAGMA query_only=1");
    // Readers pread() pages (no mmap_size): mapping the file made the
    // dashboard's queries ~18 % faster, but every page they touched (and
    // the kernel's fault-around neighbours) then counted in the process's
    // RSS and OOM score: 500 MiB instead of 36 MiB on the 10M-event
    // benchmark (BENCHMARKS.md).
    if (!st.ok()) return st;
    return conn;
  }

  ~Conn() {
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* db() const { return db_; }

  // Runs constant SQL (no parameters) that may hold several statements.
  absl::Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      absl::Status st = SqlError(db_, rc, err != nullptr ? err : sql);
      sqlite3_free(err);
      return st;
    }
    return absl::OkStatus();
  }

  // A cached prepared statement for sql; it stays owned by the connection.
  absl::StatusOr<sqlite3_stmt*> Prepare(absl::string_view sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqlError(db_, rc, absl::StrCat("prepare '", sql, "'"));
    }
    stmts_.emplace(std::string(sql), stmt);
    return stmt;
  }

  // Steps a statement that returns no rows.
  absl::Status Run(sqlite3_stmt* s, absl::string_view what) {
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return SqlError(db_, rc, what);
    return absl::OkStatus();
  }

 private:
  explicit Conn(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  absl::flat_hash_map<std::string, sqlite3_stmt*> stmts_;
};

// A write transaction (BEGIN IMMEDIATE); rolled back unless committed.
class Txn {
 public:
  explicit Txn(Conn* c) : c_(c) {}
  ~Txn() {
    if (active_) sqlite3_exec(c_->db(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  absl::Status Begin() { return Step("BEGIN IMMEDIATE", /*begin=*/true); }
  absl::Status Commit() { return Step("COMMIT", /*begin=*/false); }

 private:
  absl::Status Step(const char* sql, bool begin) {
    absl::StatusOr<sqlite3_stmt*> s = c_->Prepare(sql);
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    absl::Status st = c_->Run(*s, sql);
    if (st.ok()) active_ = begin;
    return st;
  }
  Conn* c_;
  bool active_ = false;
};

// ---------------------------------------------------------------------------

// Reads a row of kSelectEvents into e (reusing e's buffers).
absl::Status ReadEvent(sqlite3_stmt* s, Event* e) {
  e->seq = sqlite3_column_int64(s, 0);
  e->site_id = sqlite3_column_int64(s, 1);
  e->ts_ms = sqlite3_column_int64(s, 2);
  ColumnString(s, 3, &e->name);
  ColumnString(s, 4, &e->hostname);
  ColumnString(s, 5, &e->page);
  if (sqlite3_column_type(s, 6) == SQLITE_NULL) {
    e->props.clear();
  } else {
    const unsigned char* p = sqlite3_column_text(s, 6);
    int n = sqlite3_column_bytes(s, 6);
    absl::Status st =
        DecodeProps(std::string_view(reinterpret_cast<const char*>(p),
                                     static_cast<size_t>(n)),
                    &e->props, "sqlite");
    if (!st.ok()) {
      return absl::DataLossError(
          absl::StrCat(st.message(), " (seq ", e->seq, ")"));
    }
  }
  e->visitor_id = std::bit_cast<uint64_t>(sqlite3_column_int64(s, 7));
  e->session_id = std::bit_cast<uint64_t>(sqlite3_column_int64(s, 8));
  e->session_start_ms = sqlite3_column_int64(s, 9);
  int col = kFirstVisitColumn;
  for (auto field : kVisitFields) ColumnString(s, col++, &(e->visit.*field));
  e->first_in_session = sqlite3_column_int(s, 26) != 0;
  e->first_page = sqlite3_column_int(s, 27) != 0;
  e->first_name = sqlite3_column_int(s, 28) != 0;
  e->s_pageviews = sqlite3_column_int(s, 29);
  e->s_events = sqlite3_column_int(s, 30);
  e->s_bounce = sqlite3_column_int(s, 31) != 0;
  e->s_duration_ms = sqlite3_column_int64(s, 32);
  ColumnString(s, 33, &e->s_exit_page);
  e->d_bounce = static_cast<int8_t>(sqlite3_column_int(s, 34));
  e->d_duration_ms = sqlite3_column_int64(s, 35);
  e->imported = sqlite3_column_int(s, 36) != 0;
  e->worker = sqlite3_column_int(s, 37);
  return absl::OkStatus();
}

// Steps a kSelectEvents statement, calling fn per row until it returns false.
absl::Status StepEvents(Conn* c, sqlite3_stmt* s,
                        const std::function<bool(const Event&)>& fn) {
  Event e;
  while (true) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return absl::OkStatus();
    if (rc != SQLITE_ROW) return SqlError(c->db(), rc, "scan events");
    absl::Status st = ReadEvent(s, &e);
    if (!st.ok()) return st;
    if (!fn(e)) return absl::OkStatus();
  }
}

// ---------------------------------------------------------------------------
// Event blocks (schema version 4).

// Writes one block row of `evs` (non-empty, in seq order, one site and
// worker), keyed by `key` (default: the first event's seq; a rewritten block
// keeps its key, which its seqs are encoded against). `replace` replaces the
// row with that key.
absl::Status WriteBlock(Conn* c, absl::Span<const Event* const> evs,
                        bool replace, std::string* buf, int64_t key = 0) {
  if (key == 0) key = evs.front()->seq;
  int64_t min_ts = evs.front()->ts_ms, max_ts = min_ts;
  int64_t min_time = min_ts, max_time = max_ts;
  for (const Event* e : evs) {
    min_ts = std::min(min_ts, e->ts_ms);
    max_ts = std::max(max_ts, e->ts_ms);
    min_time = std::min({min_time, e->ts_ms, e->session_start_ms});
    max_time = std::max({max_time, e->ts_ms, e->session_start_ms});
  }
  EncodeEventBlock(evs, key, buf);
  absl::StatusOr<sqlite3_stmt*> s = c->Prepare(
      replace ? "INSERT OR REPLACE INTO event_blocks(first_seq, last_seq, "
                "site_id, worker, n, min_ts, max_ts, min_time, max_time, data) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
              : "INSERT INTO event_blocks(first_seq, last_seq, site_id, "
                "worker, n, min_ts, max_ts, min_time, max_time, data) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  sqlite3_bind_int64(*s, 1, key);
  sqlite3_bind_int64(*s, 2, evs.back()->seq);
  sqlite3_bind_int64(*s, 3, evs.front()->site_id);
  sqlite3_bind_int(*s, 4, evs.front()->worker);
  sqlite3_bind_int64(*s, 5, static_cast<int64_t>(evs.size()));
  sqlite3_bind_int64(*s, 6, min_ts);
  sqlite3_bind_int64(*s, 7, max_ts);
  sqlite3_bind_int64(*s, 8, min_time);
  sqlite3_bind_int64(*s, 9, max_time);
  sqlite3_bind_blob(*s, 10, buf->data(), static_cast<int>(buf->size()),
                    SQLITE_STATIC);
  return c->Run(*s, "append events");
}

// Streams the events of block rows in key order: (ts_ms, seq) when by_time,
// else seq. `s` yields rows (first_seq, worker, data, lower) ordered by
// `lower`, a lower bound of the key (ts_ms or seq) of every event of the
// row's block. A block is decoded when the merge reaches its lower bound, so
// only blocks whose spans overlap are held at once (appends come in time
// order, so that is a few). Events failing `keep` are skipped.
absl::Status MergeBlocks(Conn* c, sqlite3_stmt* s,
                         const std::function<bool(const Event&)>& keep,
                         bool by_time,
                         const std::function<bool(const Event&)>& fn) {
  struct Cursor {
    std::vector<Event> ev;
    size_t pos = 0;
    const Event& top() const { return ev[pos]; }
  };
  auto less = [by_time](const Event& a, const Event& b) {
    if (by_time && a.ts_ms != b.ts_ms) return a.ts_ms < b.ts_ms;
    return a.seq < b.seq;
  };
  auto key = [by_time](const Event& e) { return by_time ? e.ts_ms : e.seq; };
  // A min-heap of cursors by their current event.
  std::vector<std::unique_ptr<Cursor>> heap;
  auto heap_less = [&](const std::unique_ptr<Cursor>& a,
                       const std::unique_ptr<Cursor>& b) {
    return less(b->top(), a->top());
  };
  bool have_row = false;
  auto step = [&]() -> absl::Status {
    int rc = sqlite3_step(s);
    have_row = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) return absl::OkStatus();
    return SqlError(c->db(), rc, "scan events");
  };
  absl::Status st = step();
  if (!st.ok()) return st;
  while (true) {
    while (have_row && (heap.empty() || sqlite3_column_int64(s, 3) <=
                                            key(heap.front()->top()))) {
      auto cur = std::make_unique<Cursor>();
      const void* p = sqlite3_column_blob(s, 2);
      const int bytes = sqlite3_column_bytes(s, 2);
      st = DecodeEventBlock(std::string_view(static_cast<const char*>(p),
                                             static_cast<size_t>(bytes)),
                            sqlite3_column_int64(s, 0),
                            sqlite3_column_int(s, 1), &cur->ev);
      if (!st.ok()) {
        return absl::DataLossError(absl::StrCat(
            st.message(), " (block ", sqlite3_column_int64(s, 0), ")"));
      }
      std::erase_if(cur->ev, [&](const Event& e) { return !keep(e); });
      if (by_time) std::sort(cur->ev.begin(), cur->ev.end(), less);
      if (!cur->ev.empty()) {
        heap.push_back(std::move(cur));
        std::push_heap(heap.begin(), heap.end(), heap_less);
      }
      st = step();
      if (!st.ok()) return st;
    }
    if (heap.empty()) {
      if (!have_row) return absl::OkStatus();
      continue;
    }
    std::pop_heap(heap.begin(), heap.end(), heap_less);
    Cursor& cur = *heap.back();
    if (!fn(cur.top())) return absl::OkStatus();
    if (++cur.pos < cur.ev.size()) {
      std::push_heap(heap.begin(), heap.end(), heap_less);
    } else {
      heap.pop_back();
    }
  }
}

// Schema version 4: moves the rows of the old `events` table into blocks
// (per site and worker, in seq order) and drops the table.
absl::Status ConvertEventRows(Conn* w) {
  absl::StatusOr<sqlite3_stmt*> s =
      w->Prepare(std::string(kSelectEvents) + "ORDER BY seq");
  if (!s.ok()) return s.status();
  absl::flat_hash_map<std::pair<int64_t, int32_t>, std::vector<Event>> pending;
  std::string buf;
  auto flush = [&](std::vector<Event>* evs) {
    std::vector<const Event*> ptrs;
    for (const Event& e : *evs) ptrs.push_back(&e);
    absl::Status st = WriteBlock(w, ptrs, /*replace=*/false, &buf);
    evs->clear();
    return st;
  };
  {
    ResetOnExit reset(*s);
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqlError(w->db(), rc, "read event rows");
      Event e;
      absl::Status st = ReadEvent(*s, &e);
      if (!st.ok()) return st;
      std::vector<Event>& evs = pending[std::make_pair(e.site_id, e.worker)];
      evs.push_back(std::move(e));
      if (evs.size() == kMaxBlockEvents) {
        st = flush(&evs);
        if (!st.ok()) return st;
      }
    }
  }
  for (auto& [k, evs] : pending) {
    if (evs.empty()) continue;
    absl::Status st = flush(&evs);
    if (!st.ok()) return st;
  }
  return w->Exec("DROP TABLE events");
}

// Writes the block of one site's hour (cells in (dim, value) order).
// rollup_hours.data is a rollup block (rollup_codec.h) or (written since
// event blocks went to format 2) one LZ4-compressed: kLz4HourBlock, the block's
// size (varint), its LZ4 bytes. A rollup block repeats each visitor hash in
// every dimension's cell of the hour, so LZ4 takes it to about a third: the
// bytes a checkpoint writes and fsyncs. The marker is not a rollup block
// format byte (those count up from 1), so older rows read as they are.
constexpr uint8_t kLz4HourBlock = 0xF4;

void CompressHourBlock(std::string_view block, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kLz4HourBlock));
  codec::PutVar(out, block.size());
  codec::AppendLz4(block, out);
}

// The rollup block of a stored rollup_hours.data (decompressed into *buf
// when compressed).
absl::StatusOr<std::string_view> HourBlockOf(std::string_view stored,
                                             std::string* buf) {
  if (stored.empty() || static_cast<uint8_t>(stored[0]) != kLz4HourBlock) {
    return stored;
  }
  codec::Reader r(stored.substr(1));
  uint64_t raw_size = 0;
  if (!r.Var(&raw_size) || !codec::DecompressLz4(r.Rest(), raw_size, buf)) {
    return absl::DataLossError("damaged hour block (LZ4)");
  }
  return std::string_view(*buf);
}

absl::Status WriteHourBlock(Conn* w, int64_t site_id, int64_t bucket,
                            std::string_view block, int64_t cells) {
  thread_local std::string compressed;
  CompressHourBlock(block, &compressed);
  const std::string_view data = compressed;
  absl::StatusOr<sqlite3_stmt*> s = w->Prepare(
      "INSERT OR REPLACE INTO rollup_hours(site_id, bucket, n, data) "
      "VALUES(?1, ?2, ?3, ?4)");
  if (!s.ok()) return s.status();
  ResetOnExit reset(*s);
  sqlite3_bind_int64(*s, 1, site_id);
  sqlite3_bind_int64(*s, 2, bucket);
  sqlite3_bind_int64(*s, 3, cells);
  sqlite3_bind_blob64(*s, 4, data.data(), data.size(), SQLITE_STATIC);
  return w->Run(*s, "write rollup hour");
}

// Schema version 5: moves the hour rows of `rollups` into one block per site
// and hour, and deletes them.
absl::Status ConvertHourRollups(Conn* w) {
  absl::StatusOr<sqlite3_stmt*> s = w->Prepare(
      "SELECT site_id, bucket, dim, value, pageviews, events, visits, "
      "bounces, duration_ms, session_pageviews, visitors FROM rollups "
      "WHERE level = 0 ORDER BY site_id, bucket, dim, value");
  if (!s.ok()) return s.status();
  std::vector<RollupRow> cells;
  std::string buf;
  auto flush = [&]() -> absl::Status {
    if (cells.empty()) return absl::OkStatus();
    EncodeRollupBlock(cells, &buf);
    absl::Status st = WriteHourBlock(w, cells[0].site_id, cells[0].bucket, buf,
                                     static_cast<int64_t>(cells.size()));
    cells.clear();
    return st;
  };
  {
    ResetOnExit reset(*s);
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqlError(w->db(), rc, "read hour rollups");
      RollupRow r;
      r.site_id = sqlite3_column_int64(*s, 0);
      r.bucket = sqlite3_column_int64(*s, 1);
      if (!cells.empty() &&
          (cells[0].site_id != r.site_id || cells[0].bucket != r.bucket)) {
        absl::Status st = flush();
        if (!st.ok()) return st;
      }
      ColumnString(*s, 2, &r.dim);
      ColumnString(*s, 3, &r.value);
      ColumnRollupCell(*s, 4, &r);
      cells.push_back(std::move(r));
    }
  }
  absl::Status st = flush();
  if (!st.ok()) return st;
  return w->Exec("DELETE FROM rollups WHERE level = 0");
}

// Reads a row of "SELECT id, site_id, name, prefix, secret_hash, created_ms,
// revoked_ms FROM api_keys".
ApiKeyRecord ReadApiKey(sqlite3_stmt* s) {
  ApiKeyRecord k;
  k.id = sqlite3_column_int64(s, 0);
  k.site_id = sqlite3_column_int64(s, 1);
  ColumnString(s, 2, &k.name);
  ColumnString(s, 3, &k.prefix);
  ColumnString(s, 4, &k.secret_hash);
  k.created_ms = sqlite3_column_int64(s, 5);
  k.revoked_ms = sqlite3_column_int64(s, 6);
  return k;
}

std::string UserMetaKey(std::string_view key) {
  std::string k = kUserMetaPrefix;
  k.append(key);
  return k;
}

constexpr char kSelectConfigDocs[] =
    "SELECT id, kind, site_id, json, updated_ms FROM config_docs ";

ConfigDoc ReadConfigDoc(sqlite3_stmt* s) {
  ConfigDoc d;
  d.id = sqlite3_column_int64(s, 0);
  ColumnString(s, 1, &d.kind);
  d.site_id = sqlite3_column_int64(s, 2);
  ColumnString(s, 3, &d.json);
  d.updated_ms = sqlite3_column_int64(s, 4);
  return d;
}

constexpr char kSelectJobRuns[] =
    "SELECT job, site_id, period, state, holder, attempts, updated_ms, error "
    "FROM job_runs ";

JobRun ReadJobRun(sqlite3_stmt* s) {
  JobRun r;
  ColumnString(s, 0, &r.job);
  r.site_id = sqlite3_column_int64(s, 1);
  ColumnString(s, 2, &r.period);
  ColumnString(s, 3, &r.state);
  ColumnString(s, 4, &r.holder);
  r.attempts = sqlite3_column_int(s, 5);
  r.updated_ms = sqlite3_column_int64(s, 6);
  ColumnString(s, 7, &r.error);
  return r;
}

// Event blocks deleted or rewritten per transaction by DeleteEventsBefore,
// so that the writer is not held for long.
constexpr int kDeleteBlocks = 64;

// Runs the WAL checkpoints on a thread of its own. SQLite's default
// auto-checkpoint runs inside the commit that takes the WAL past 1,000 pages
// and fsyncs the database file there, on the writer's path: the committer
// and the rollup folder (whose checkpoints share the writer) then waited for
// the disk; in a 1M-line import a third of the folder's switches were that
// fsync. The writer's WAL hook only wakes this thread, which copies the WAL
// back with PASSIVE checkpoints (never waiting for the writer or readers)
// through its own connection. Durability is unchanged: a commit is in the
// WAL (synchronous=NORMAL) whoever checkpoints it later.
//
// The WAL only starts over when a writer begins after a checkpoint that
// copied every frame, which a checkpointer racing a busy writer rarely
// manages: past kWriterPages the writer checkpoints itself after its commit
// (the frames are mostly copied by then, so it copies the rest and fsyncs),
// as SQLite's auto-checkpoint would, 4 times less often.
class WalCheckpointer {
 public:
  // WAL pages (4 KiB) after which this thread checkpoints (SQLite's
  // auto-checkpoint default), and after which the writer does.
  static constexpr int kPages = 1000;
  static constexpr int kWriterPages = 4 * kPages;

  static absl::StatusOr<std::unique_ptr<WalCheckpointer>> Start(
      const std::string& path, sqlite3* writer) {
    absl::StatusOr<std::unique_ptr<Conn>> conn = Conn::Open(path, false);
    if (!conn.ok()) return conn.status();
    auto c =
        std::unique_ptr<WalCheckpointer>(new WalCheckpointer(*std::move(conn)));
    // Replaces the auto-checkpoint hook (sqlite3_wal_autocheckpoint).
    sqlite3_wal_hook(writer, &WalCheckpointer::Hook, c.get());
    return c;
  }
  // The writer must no longer commit (its hook points here).
  ~WalCheckpointer() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

 private:
  explicit WalCheckpointer(std::unique_ptr<Conn> conn)
      : conn_(std::move(conn)), thread_([this] { Run(); }) {}

  // Called by SQLite on the writer's thread after each commit.
  static int Hook(void* self, sqlite3* db, const char*, int pages) {
    if (pages >= kWriterPages) {
      // SQLITE_BUSY when this thread is checkpointing: the next commit
      // tries again.
      (void)sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                      nullptr, nullptr);
    } else if (pages >= kPages) {
      auto* c = static_cast<WalCheckpointer*>(self);
      absl::MutexLock l(&c->mu_);
      c->wake_ = true;
    }
    return SQLITE_OK;
  }

  void Run() {
    while (true) {
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(
            +[](WalCheckpointer* c) { return c->wake_ || c->stop_; }, this));
        if (stop_) return;
        wake_ = false;
      }
      int log = 0, copied = 0;
      const int rc = sqlite3_wal_checkpoint_v2(
          conn_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        // At most one line a minute (a full disk fails every attempt).
        ++failures_;
        const absl::Time now = absl::Now();
        if (now - last_report_ >= absl::Minutes(1)) {
          fprintf(stderr,
                  "store: sqlite: WAL checkpoint failed (%lld times since the "
                  "last report): %s\n",
                  static_cast<long long>(failures_),
                  sqlite3_errmsg(conn_->db()));
          failures_ = 0;
          last_report_ = now;
        }
      }
      // At most ~500 checkpoints a second while the WAL stays long (a
      // reader's snapshot can keep a checkpoint from finishing).
      absl::SleepFor(absl::Milliseconds(2));
    }
  }

  absl::Mutex mu_;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t failures_ = 0;  // the thread's own
  absl::Time last_report_ = absl::InfinitePast();
  std::unique_ptr<Conn> conn_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------

class SqliteStore : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path) {
    if (path.empty()) {
      return absl::InvalidArgumentError("store: sqlite: empty database path");
    }
    std::error_code ec;
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return absl::UnavailableError(
            absl::StrCat("store: sqlite: cannot create directory '",
                         parent.string(), "': ", ec.message()));
      }
    }
    absl::StatusOr<std::unique_ptr<Conn>> writer =
        Conn::Open(path, /*writer=*/true);
    if (!writer.ok()) return writer.status();
    Conn* w = writer->get();

    // journal_mode answers with the mode now in force.
    {
      absl::StatusOr<sqlite3_stmt*> s = w->Prepare("PRAGMA journal_mode=WAL");
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      int rc = sqlite3_step(*s);
      if (rc != SQLITE_ROW) return SqlError(w->db(), rc, "set WAL mode");
      std::string mode = ColumnString(*s, 0);
      if (mode != "wal") {
        return absl::UnavailableError(
            absl::StrCat("store: sqlite: cannot use WAL mode for '", path,
                         "' (got '", mode, "')"));
      }
    }
    absl::Status st = Migrate(w, path);
    if (!st.ok()) return st;
    int rc = sqlite3_create_function_v2(
        w->db(), "hll_merge", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
        &HllMergeFunc, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqlError(w->db(), rc, "register hll_merge");
    absl::StatusOr<std::unique_ptr<WalCheckpointer>> ckpt =
        WalCheckpointer::Start(path, w->db());
    if (!ckpt.ok()) return ckpt.status();
    return std::unique_ptr<Store>(
        new SqliteStore(path, *std::move(writer), *std::move(ckpt)));
  }

  ~SqliteStore() override {
    {
      absl::MutexLock lock(&write_mu_);
      checkpointer_.reset();  // before the writer (its WAL hook) closes
    }
    absl::MutexLock lock(&pool_mu_);
    readers_.clear();
  }

  // ---- Sites.

  absl::StatusOr<Site> AddSite(const Site& site) override {
    Site out = site;
    if (out.created_ms == 0) out.created_ms = absl::ToUnixMillis(absl::Now());
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
        "INSERT INTO sites(domain, short_id, timezone, created_ms, "
        "allowed_origins, retention_days) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, out.domain);
    BindText(*s, 2, out.short_id);
    BindText(*s, 3, out.timezone);
    sqlite3_bind_int64(*s, 4, out.created_ms);
    BindText(*s, 5, out.allowed_origins);
    sqlite3_bind_int(*s, 6, out.retention_days);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return absl::AlreadyExistsError(absl::StrCat(
          "store: site domain '", out.domain, "' or short_id '", out.short_id,
          "' already exists (", sqlite3_errmsg(writer_->db()), ")"));
    }
    if (rc != SQLITE_DONE) return SqlError(writer_->db(), rc, "add site");
    out.id = sqlite3_last_insert_rowid(writer_->db());
    return out;
  }

  absl::StatusOr<std::vector<Site>> ListSites() override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(
        "SELECT id, domain, short_id, timezone, created_ms, allowed_origins, "
        "retention_days FROM sites ORDER BY id");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    std::vector<Site> out;
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqlError(r->conn->db(), rc, "list sites");
      Site site;
      site.id = sqlite3_column_int64(*s, 0);
      site.domain = ColumnString(*s, 1);
      site.short_id = ColumnString(*s, 2);
      site.timezone = ColumnString(*s, 3);
      site.created_ms = sqlite3_column_int64(*s, 4);
      site.allowed_origins = ColumnString(*s, 5);
      site.retention_days = sqlite3_column_int(*s, 6);
      out.push_back(std::move(site));
    }
    return out;
  }

  absl::Status RemoveSite(int64_t site_id) override {
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    st = RaiseSeqFloorLocked();
    if (!st.ok()) return st;
    int64_t removed = 0;
    for (const char* sql : {"DELETE FROM sites WHERE id = ?1",
                            "DELETE FROM event_blocks WHERE site_id = ?1",
                            "DELETE FROM rollups WHERE site_id = ?1",
                            "DELETE FROM rollup_hours WHERE site_id = ?1",
                            "DELETE FROM api_keys WHERE site_id = ?1",
                            "DELETE FROM config_docs WHERE site_id = ?1"}) {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(sql);
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      sqlite3_bind_int64(*s, 1, site_id);
      st = writer_->Run(*s, "remove site");
      if (!st.ok()) return st;
      if (removed == 0) removed = sqlite3_changes64(writer_->db());
      if (removed == 0) {
        return absl::NotFoundError(
            absl::StrCat("store: no site with id ", site_id));
      }
    }
    return txn.Commit();
  }

  absl::Status UpdateSite(const Site& site) override {
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
        "UPDATE sites SET timezone = ?2, allowed_origins = ?3, "
        "retention_days = ?4 WHERE id = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, site.id);
    BindText(*s, 2, site.timezone);
    BindText(*s, 3, site.allowed_origins);
    sqlite3_bind_int(*s, 4, site.retention_days);
    return RunOnExistingRow(*s, "update site",
                            absl::StrCat("store: no site with id ", site.id));
  }

  // ---- API keys.

  absl::StatusOr<ApiKeyRecord> AddApiKey(const ApiKeyRecord& key) override {
    ApiKeyRecord out = key;
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    {
      absl::StatusOr<sqlite3_stmt*> s =
          writer_->Prepare("SELECT 1 FROM sites WHERE id = ?1");
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      sqlite3_bind_int64(*s, 1, key.site_id);
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) {
        return absl::NotFoundError(
            absl::StrCat("store: no site with id ", key.site_id));
      }
      if (rc != SQLITE_ROW) return SqlError(writer_->db(), rc, "find site");
    }
    {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
          "INSERT INTO api_keys(site_id, name, prefix, secret_hash, "
          "created_ms, revoked_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      sqlite3_bind_int64(*s, 1, out.site_id);
      BindText(*s, 2, out.name);
      BindText(*s, 3, out.prefix);
      BindText(*s, 4, out.secret_hash);
      sqlite3_bind_int64(*s, 5, out.created_ms);
      sqlite3_bind_int64(*s, 6, out.revoked_ms);
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        return absl::AlreadyExistsError(
            "store: an api key with this secret hash already exists");
      }
      if (rc != SQLITE_DONE) return SqlError(writer_->db(), rc, "add api key");
      out.id = sqlite3_last_insert_rowid(writer_->db());
    }
    st = txn.Commit();
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(
        "SELECT id, site_id, name, prefix, secret_hash, created_ms, "
        "revoked_ms FROM api_keys ORDER BY id");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    std::vector<ApiKeyRecord> out;
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        return SqlError(r->conn->db(), rc, "list api keys");
      }
      out.push_back(ReadApiKey(*s));
    }
    return out;
  }

  // Runs a prepared write on the writer (the caller holds write_mu_):
  // NotFound(not_found) when it changed no row.
  absl::Status RunOnExistingRow(sqlite3_stmt* s, const char* what,
                                std::string not_found) {
    absl::Status st = writer_->Run(s, what);
    if (!st.ok()) return st;
    if (sqlite3_changes64(writer_->db()) == 0) {
      return absl::NotFoundError(std::move(not_found));
    }
    return absl::OkStatus();
  }

  absl::Status RevokeApiKey(int64_t id, int64_t revoked_ms) override {
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<sqlite3_stmt*> s =
        writer_->Prepare("UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, id);
    sqlite3_bind_int64(*s, 2, revoked_ms);
    return RunOnExistingRow(*s, "revoke api key",
                            absl::StrCat("store: no api key with id ", id));
  }

  absl::StatusOr<ApiKeyRecord> FindApiKeyByHash(
      std::string_view secret_hash) override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(
        "SELECT id, site_id, name, prefix, secret_hash, created_ms, "
        "revoked_ms FROM api_keys WHERE secret_hash = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, secret_hash);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError("store: no api key with this secret hash");
    }
    if (rc != SQLITE_ROW) {
      return SqlError(r->conn->db(), rc, "find api key");
    }
    return ReadApiKey(*s);
  }

  // ---- Meta (user keys, prefixed with kUserMetaPrefix).

  absl::StatusOr<std::optional<std::string>> GetMeta(
      std::string_view key) override {
    const std::string k = UserMetaKey(key);
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s =
        r->conn->Prepare("SELECT value FROM meta WHERE key = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, k);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return SqlError(r->conn->db(), rc, "get meta");
    return std::optional<std::string>(ColumnBlob(*s, 0));
  }

  absl::StatusOr<std::string> PutMetaIfAbsent(std::string_view key,
                                              std::string value) override {
    const std::string k = UserMetaKey(key);
    return InsertIfAbsentAndRead(
        "INSERT INTO meta(key, value) VALUES(?1, ?2) "
        "ON CONFLICT(key) DO NOTHING",
        "SELECT value FROM meta WHERE key = ?1",
        [&](sqlite3_stmt* st) { BindText(st, 1, k); },
        [&](sqlite3_stmt* st) { BindText(st, 2, value); }, "meta");
  }

  absl::Status PutMeta(std::string_view key, std::string value) override {
    const std::string k = UserMetaKey(key);
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
        "INSERT INTO meta(key, value) VALUES(?1, ?2) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, k);
    BindText(*s, 2, value);
    return writer_->Run(*s, "put meta");
  }

  // ---- Salts.

  absl::StatusOr<std::optional<std::string>> GetSalt(int64_t day) override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s =
        r->conn->Prepare("SELECT salt FROM salts WHERE day = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, day);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return SqlError(r->conn->db(), rc, "get salt");
    return std::optional<std::string>(ColumnBlob(*s, 0));
  }

  absl::StatusOr<std::string> PutSaltIfAbsent(int64_t day,
                                              std::string salt) override {
    return InsertIfAbsentAndRead(
        "INSERT INTO salts(day, salt) VALUES(?1, ?2) "
        "ON CONFLICT(day) DO NOTHING",
        "SELECT salt FROM salts WHERE day = ?1",
        [&](sqlite3_stmt* st) { sqlite3_bind_int64(st, 1, day); },
        [&](sqlite3_stmt* st) {
          sqlite3_bind_blob(st, 2, salt.data(), static_cast<int>(salt.size()),
                            SQLITE_STATIC);
        },
        "salt");
  }

  // Put-if-absent for a keyed row: runs `insert_sql` (ON CONFLICT DO NOTHING)
  // and reads back the stored value with `select_sql`, in one transaction.
  // bind_key binds parameter 1 of both; bind_value parameter 2 of the insert.
  absl::StatusOr<std::string> InsertIfAbsentAndRead(
      const char* insert_sql, const char* select_sql,
      const std::function<void(sqlite3_stmt*)>& bind_key,
      const std::function<void(sqlite3_stmt*)>& bind_value, const char* what) {
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(insert_sql);
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      bind_key(*s);
      bind_value(*s);
      st = writer_->Run(*s, absl::StrCat("put ", what));
      if (!st.ok()) return st;
    }
    std::string stored;
    {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(select_sql);
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      bind_key(*s);
      int rc = sqlite3_step(*s);
      if (rc != SQLITE_ROW) {
        return SqlError(writer_->db(), rc, absl::StrCat("read ", what));
      }
      stored = ColumnBlob(*s, 0);
    }
    st = txn.Commit();
    if (!st.ok()) return st;
    return stored;
  }

  absl::Status DeleteSaltsBefore(int64_t day) override {
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<sqlite3_stmt*> s =
        writer_->Prepare("DELETE FROM salts WHERE day < ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, day);
    return writer_->Run(*s, "delete salts");
  }

  // ---- Events.

  absl::Status AppendEvents(absl::Span<Event> events) override {
    if (events.empty()) return absl::OkStatus();
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    absl::StatusOr<int64_t> next = NextSeqLocked();
    if (!next.ok()) return next.status();
    // Seqs in the order given; one block per (site, worker) of the append
    // (split at kMaxBlockEvents), each in seq order.
    std::vector<int64_t> old_seqs(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      old_seqs[i] = events[i].seq;
      events[i].seq = *next + static_cast<int64_t>(i);
    }
    absl::flat_hash_map<std::pair<int64_t, int32_t>, size_t> group_of;
    std::vector<std::vector<const Event*>> groups;
    for (const Event& e : events) {
      auto [it, added] =
          group_of.try_emplace(std::make_pair(e.site_id, e.worker), 0);
      if (added) {
        it->second = groups.size();
        groups.emplace_back();
      }
      groups[it->second].push_back(&e);
    }
    for (const std::vector<const Event*>& g : groups) {
      for (size_t at = 0; at < g.size() && st.ok(); at += kMaxBlockEvents) {
        const size_t n = std::min(kMaxBlockEvents, g.size() - at);
        st = WriteBlock(writer_.get(), absl::MakeConstSpan(g).subspan(at, n),
                        /*replace=*/false, &block_buf_);
      }
    }
    if (st.ok()) st = txn.Commit();
    if (!st.ok()) {
      for (size_t i = 0; i < events.size(); ++i) events[i].seq = old_seqs[i];
      return st;
    }
    return absl::OkStatus();
  }

  absl::Status ScanEvents(
      const EventScan& scan,
      const std::function<bool(const Event&)>& fn) override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    // Blocks whose time span meets the range (the covering index finds them
    // by site and max_time), in order of their first event time.
    std::string sql =
        "SELECT first_seq, worker, data, min_ts FROM event_blocks "
        "WHERE site_id = ?1 AND max_time >= ?2 AND min_time < ?3 ";
    if (!scan.include_session_starts)
      sql += "AND max_ts >= ?2 AND min_ts < ?3 ";
    sql += "ORDER BY min_ts, first_seq";
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(sql);
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, scan.site_id);
    sqlite3_bind_int64(*s, 2, scan.from_ms);
    sqlite3_bind_int64(*s, 3, scan.to_ms);
    auto in = [&](int64_t t) { return t >= scan.from_ms && t < scan.to_ms; };
    return MergeBlocks(
        r->conn.get(), *s,
        [&](const Event& e) {
          return in(e.ts_ms) ||
                 (scan.include_session_starts && in(e.session_start_ms));
        },
        /*by_time=*/true, fn);
  }

  absl::Status ScanEventsAfter(
      int64_t after_seq, int32_t worker,
      const std::function<bool(const Event&)>& fn) override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(
        "SELECT first_seq, worker, data, first_seq FROM event_blocks "
        "WHERE last_seq > ?1 AND worker = ?2 ORDER BY first_seq");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, after_seq);
    sqlite3_bind_int(*s, 2, worker);
    return MergeBlocks(
        r->conn.get(), *s, [&](const Event& e) { return e.seq > after_seq; },
        /*by_time=*/false, fn);
  }

  // ---- Rollups.

  absl::Status ApplyRollups(absl::Span<const RollupRow> deltas, int32_t worker,
                            int64_t checkpoint_seq) override {
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    // Hour cells: one block per (site, hour), read, merged and rewritten.
    absl::btree_map<std::pair<int64_t, int64_t>, std::vector<const RollupRow*>>
        hours;
    size_t day_rows = 0;
    for (const RollupRow& d : deltas) {
      if (d.level == RollupLevel::kHour) {
        hours[{d.site_id, d.bucket}].push_back(&d);
      } else {
        ++day_rows;
      }
    }
    for (const auto& [key, cells] : hours) {
      st = ApplyHourBlockLocked(key.first, key.second, cells);
      if (!st.ok()) return st;
    }
    if (day_rows > 0) {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
          "INSERT INTO rollups(site_id, level, dim, bucket, value, pageviews, "
          "events, visits, bounces, duration_ms, session_pageviews, visitors) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
          "ON CONFLICT(site_id, level, dim, bucket, value) DO UPDATE SET "
          "pageviews = pageviews + excluded.pageviews, "
          "events = events + excluded.events, "
          "visits = visits + excluded.visits, "
          "bounces = bounces + excluded.bounces, "
          "duration_ms = duration_ms + excluded.duration_ms, "
          "session_pageviews = session_pageviews + excluded.session_pageviews, "
          "visitors = hll_merge(visitors, excluded.visitors)");
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      for (const RollupRow& d : deltas) {
        if (d.level == RollupLevel::kHour) continue;
        sqlite3_bind_int64(*s, 1, d.site_id);
        sqlite3_bind_int(*s, 2, static_cast<int>(d.level));
        BindText(*s, 3, d.dim);
        sqlite3_bind_int64(*s, 4, d.bucket);
        BindText(*s, 5, d.value);
        sqlite3_bind_int64(*s, 6, d.m.pageviews);
        sqlite3_bind_int64(*s, 7, d.m.events);
        sqlite3_bind_int64(*s, 8, d.m.visits);
        sqlite3_bind_int64(*s, 9, d.m.bounces);
        sqlite3_bind_int64(*s, 10, d.m.duration_ms);
        sqlite3_bind_int64(*s, 11, d.m.session_pageviews);
        BindBlobOrNull(*s, 12, d.visitors);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) {
          return SqlError(writer_->db(), rc, "apply rollups");
        }
        sqlite3_reset(*s);
      }
    }
    {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
          "INSERT INTO rollup_checkpoints(worker, seq) VALUES(?1, ?2) "
          "ON CONFLICT(worker) DO UPDATE SET seq = excluded.seq");
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      sqlite3_bind_int(*s, 1, worker);
      sqlite3_bind_int64(*s, 2, checkpoint_seq);
      st = writer_->Run(*s, "write rollup checkpoint");
      if (!st.ok()) return st;
    }
    return txn.Commit();
  }

  // Merges `deltas` (all of one site and hour) into the hour's block.
  absl::Status ApplyHourBlockLocked(int64_t site_id, int64_t bucket,
                                    absl::Span<const RollupRow* const> deltas)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
        "SELECT data FROM rollup_hours WHERE site_id = ?1 AND bucket = ?2");
    if (!s.ok()) return s.status();
    std::string old;
    {
      ResetOnExit reset(*s);
      sqlite3_bind_int64(*s, 1, site_id);
      sqlite3_bind_int64(*s, 2, bucket);
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_ROW) {
        old = ColumnBlob(*s, 0);
      } else if (rc != SQLITE_DONE) {
        return SqlError(writer_->db(), rc, "read rollup hour");
      }
    }
    absl::StatusOr<std::string_view> old_block = HourBlockOf(old, &unpacked_);
    if (!old_block.ok()) {
      return absl::Status(
          old_block.status().code(),
          absl::StrCat("apply rollups: site ", site_id, " hour ", bucket, ": ",
                       old_block.status().message()));
    }
    int64_t cells = 0;
    absl::Status st =
        ApplyToRollupBlock(*old_block, deltas, &hour_buf_, &cells);
    if (!st.ok()) {
      return absl::Status(
          st.code(), absl::StrCat("apply rollups: site ", site_id, " hour ",
                                  bucket, ": ", st.message()));
    }
    return WriteHourBlock(writer_.get(), site_id, bucket, hour_buf_, cells);
  }

  absl::StatusOr<int64_t> RollupCheckpoint(int32_t worker) override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(
        "SELECT seq FROM rollup_checkpoints WHERE worker = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int(*s, 1, worker);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_DONE) return int64_t{0};
    if (rc != SQLITE_ROW) {
      return SqlError(r->conn->db(), rc, "read rollup checkpoint");
    }
    return static_cast<int64_t>(sqlite3_column_int64(*s, 0));
  }

  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>>
  ListRollupCheckpoints() override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(
        "SELECT worker, seq FROM rollup_checkpoints ORDER BY worker");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    std::vector<std::pair<int32_t, int64_t>> out;
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) {
        return SqlError(r->conn->db(), rc, "list rollup checkpoints");
      }
      out.emplace_back(sqlite3_column_int(*s, 0), sqlite3_column_int64(*s, 1));
    }
  }

  absl::Status ScanRollups(
      int64_t site_id, RollupLevel level, int64_t from_bucket,
      int64_t to_bucket, absl::Span<const std::string> dims,
      const std::function<void(const RollupRow&)>& fn) override {
    if (dims.empty() || from_bucket >= to_bucket) return absl::OkStatus();
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    if (level == RollupLevel::kHour) {
      return ScanHourBlocks(r->conn.get(), site_id, from_bucket, to_bucket,
                            dims, fn);
    }
    // The SQL text depends only on the number of dims (placeholders).
    std::string sql =
        "SELECT dim, bucket, value, pageviews, events, visits, bounces, "
        "duration_ms, session_pageviews, visitors FROM rollups "
        "WHERE site_id = ?1 AND level = ?2 AND bucket >= ?3 AND bucket < ?4 "
        "AND dim IN (";
    for (size_t i = 0; i < dims.size(); ++i) {
      absl::StrAppend(&sql, i == 0 ? "?" : ", ?", i + 5);
    }
    sql += ") ORDER BY dim, bucket, value";
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(sql);
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, site_id);
    sqlite3_bind_int(*s, 2, static_cast<int>(level));
    sqlite3_bind_int64(*s, 3, from_bucket);
    sqlite3_bind_int64(*s, 4, to_bucket);
    for (size_t i = 0; i < dims.size(); ++i) {
      BindText(*s, static_cast<int>(i) + 5, dims[i]);
    }
    RollupRow row;
    row.site_id = site_id;
    row.level = level;
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) return absl::OkStatus();
      if (rc != SQLITE_ROW) {
        return SqlError(r->conn->db(), rc, "scan rollups");
      }
      ColumnString(*s, 0, &row.dim);
      row.bucket = sqlite3_column_int64(*s, 1);
      ColumnString(*s, 2, &row.value);
      ColumnRollupCell(*s, 3, &row);
      fn(row);
    }
  }

  // ScanRollups of hours: the cells of the wanted dims from each hour's
  // block, in (dim, bucket, value) order like the rows of `rollups`.
  static absl::Status ScanHourBlocks(
      Conn* conn, int64_t site_id, int64_t from_bucket, int64_t to_bucket,
      absl::Span<const std::string> dims,
      const std::function<void(const RollupRow&)>& fn) {
    absl::StatusOr<sqlite3_stmt*> s = conn->Prepare(
        "SELECT bucket, data FROM rollup_hours WHERE site_id = ?1 AND "
        "bucket >= ?2 AND bucket < ?3 ORDER BY bucket");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, site_id);
    sqlite3_bind_int64(*s, 2, from_bucket);
    sqlite3_bind_int64(*s, 3, to_bucket);
    const absl::flat_hash_set<std::string_view> want(dims.begin(), dims.end());
    std::vector<RollupRow> rows;
    std::string unpacked;
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqlError(conn->db(), rc, "scan rollups");
      const int64_t bucket = sqlite3_column_int64(*s, 0);
      const void* p = sqlite3_column_blob(*s, 1);
      const int n = sqlite3_column_bytes(*s, 1);
      absl::StatusOr<std::string_view> block = HourBlockOf(
          std::string_view(static_cast<const char*>(p),
                           p == nullptr ? 0 : static_cast<size_t>(n)),
          &unpacked);
      absl::Status st = block.status();
      if (st.ok()) {
        st = DecodeRollupBlock(
            *block, site_id, RollupLevel::kHour, bucket,
            [&](std::string_view dim) { return want.contains(dim); },
            [&](const RollupRow& c) { rows.push_back(c); });
      }
      if (!st.ok()) {
        return absl::Status(
            st.code(), absl::StrCat("scan rollups: site ", site_id, " hour ",
                                    bucket, ": ", st.message()));
      }
    }
    // Blocks come in bucket order and cells in (dim, value) order, so a
    // stable sort by dim gives (dim, bucket, value).
    std::stable_sort(
        rows.begin(), rows.end(),
        [](const RollupRow& a, const RollupRow& b) { return a.dim < b.dim; });
    for (const RollupRow& row : rows) fn(row);
    return absl::OkStatus();
  }

  absl::Status ClearRollups() override {
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    for (const char* sql : {"DELETE FROM rollups", "DELETE FROM rollup_hours",
                            "DELETE FROM rollup_checkpoints"}) {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(sql);
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      st = writer_->Run(*s, "clear rollups");
      if (!st.ok()) return st;
    }
    return txn.Commit();
  }

  // ---- Retention.

  absl::StatusOr<int64_t> DeleteEventsBefore(int64_t site_id,
                                             int64_t before_ms) override {
    int64_t total = 0;
    while (true) {
      absl::MutexLock lock(&write_mu_);
      Txn txn(writer_.get());
      absl::Status st = txn.Begin();
      if (!st.ok()) return st;
      st = RaiseSeqFloorLocked();
      if (!st.ok()) return st;
      // Blocks holding events before the cut: whole ones are deleted, the
      // others rewritten without those events.
      struct Old {
        int64_t first_seq, n, max_ts;
        int32_t worker;
        std::string data;
      };
      std::vector<Old> old;
      {
        absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
            "SELECT first_seq, n, max_ts, worker, data FROM event_blocks "
            "WHERE site_id = ?1 AND min_ts < ?2 LIMIT ?3");
        if (!s.ok()) return s.status();
        ResetOnExit reset(*s);
        sqlite3_bind_int64(*s, 1, site_id);
        sqlite3_bind_int64(*s, 2, before_ms);
        sqlite3_bind_int(*s, 3, kDeleteBlocks);
        while (true) {
          int rc = sqlite3_step(*s);
          if (rc == SQLITE_DONE) break;
          if (rc != SQLITE_ROW) {
            return SqlError(writer_->db(), rc, "find old event blocks");
          }
          Old o{sqlite3_column_int64(*s, 0), sqlite3_column_int64(*s, 1),
                sqlite3_column_int64(*s, 2), sqlite3_column_int(*s, 3), ""};
          if (o.max_ts >= before_ms) o.data = ColumnBlob(*s, 4);
          old.push_back(std::move(o));
        }
      }
      int64_t n = 0;
      for (const Old& o : old) {
        std::vector<Event> keep;
        if (o.max_ts >= before_ms) {
          st = DecodeEventBlock(o.data, o.first_seq, o.worker, &keep);
          if (!st.ok()) return st;
          std::erase_if(keep,
                        [&](const Event& e) { return e.ts_ms < before_ms; });
        }
        n += o.n - static_cast<int64_t>(keep.size());
        if (keep.empty()) {
          absl::StatusOr<sqlite3_stmt*> d =
              writer_->Prepare("DELETE FROM event_blocks WHERE first_seq = ?1");
          if (!d.ok()) return d.status();
          ResetOnExit reset(*d);
          sqlite3_bind_int64(*d, 1, o.first_seq);
          st = writer_->Run(*d, "delete event block");
        } else {
          std::vector<const Event*> ptrs;
          for (const Event& e : keep) ptrs.push_back(&e);
          st = WriteBlock(writer_.get(), ptrs, /*replace=*/true, &block_buf_,
                          o.first_seq);
        }
        if (!st.ok()) return st;
      }
      st = txn.Commit();
      if (!st.ok()) return st;
      total += n;
      if (old.size() < static_cast<size_t>(kDeleteBlocks)) return total;
    }
  }

  absl::Status EraseSiteData(int64_t site_id) override {
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    st = CheckSiteLocked(site_id);
    if (!st.ok()) return st;
    st = RaiseSeqFloorLocked();
    if (!st.ok()) return st;
    for (const char* sql : {"DELETE FROM event_blocks WHERE site_id = ?1",
                            "DELETE FROM rollups WHERE site_id = ?1",
                            "DELETE FROM rollup_hours WHERE site_id = ?1"}) {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(sql);
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      sqlite3_bind_int64(*s, 1, site_id);
      st = writer_->Run(*s, "erase site data");
      if (!st.ok()) return st;
    }
    return txn.Commit();
  }

  // ---- Configuration documents.

  absl::StatusOr<ConfigDoc> AddConfigDoc(const ConfigDoc& doc) override {
    absl::Status st = CheckConfigDoc(doc);
    if (!st.ok()) return st;
    ConfigDoc out = doc;
    if (out.updated_ms == 0) out.updated_ms = absl::ToUnixMillis(absl::Now());
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    st = txn.Begin();
    if (!st.ok()) return st;
    if (out.site_id != 0) {
      st = CheckSiteLocked(out.site_id);
      if (!st.ok()) return st;
    }
    {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
          "INSERT INTO config_docs(kind, site_id, json, updated_ms) "
          "VALUES(?1, ?2, ?3, ?4)");
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      BindText(*s, 1, out.kind);
      sqlite3_bind_int64(*s, 2, out.site_id);
      BindText(*s, 3, out.json);
      sqlite3_bind_int64(*s, 4, out.updated_ms);
      st = writer_->Run(*s, "add config doc");
      if (!st.ok()) return st;
      out.id = sqlite3_last_insert_rowid(writer_->db());
    }
    st = txn.Commit();
    if (!st.ok()) return st;
    return out;
  }

  absl::StatusOr<std::vector<ConfigDoc>> ListConfigDocs(
      std::string_view kind, int64_t site_id) override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s =
        r->conn->Prepare(std::string(kSelectConfigDocs) +
                         "WHERE (?1 = '' OR kind = ?1) AND "
                         "(?2 = 0 OR site_id = ?2) ORDER BY id");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, kind);
    sqlite3_bind_int64(*s, 2, site_id);
    std::vector<ConfigDoc> out;
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) {
        return SqlError(r->conn->db(), rc, "list config docs");
      }
      out.push_back(ReadConfigDoc(*s));
    }
  }

  absl::Status UpdateConfigDoc(const ConfigDoc& doc) override {
    absl::Status st = CheckConfigDocJson(doc.json);
    if (!st.ok()) return st;
    const int64_t updated_ms =
        doc.updated_ms != 0 ? doc.updated_ms : absl::ToUnixMillis(absl::Now());
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
        "UPDATE config_docs SET json = ?2, updated_ms = ?3 WHERE id = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, doc.id);
    BindText(*s, 2, doc.json);
    sqlite3_bind_int64(*s, 3, updated_ms);
    return RunOnExistingRow(
        *s, "update config doc",
        absl::StrCat("store: no config doc with id ", doc.id));
  }

  absl::Status DeleteConfigDoc(int64_t id) override {
    absl::MutexLock lock(&write_mu_);
    absl::StatusOr<sqlite3_stmt*> s =
        writer_->Prepare("DELETE FROM config_docs WHERE id = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, id);
    return RunOnExistingRow(*s, "delete config doc",
                            absl::StrCat("store: no config doc with id ", id));
  }

  // ---- Job ledger. BEGIN IMMEDIATE takes the database's write lock, so a
  // claim is atomic across processes sharing the file too.

  absl::StatusOr<JobRun> ClaimJobRun(const JobRun& want,
                                     int64_t stale_before_ms) override {
    absl::Status st = CheckJobRun(want);
    if (!st.ok()) return st;
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    st = txn.Begin();
    if (!st.ok()) return st;
    absl::StatusOr<std::optional<JobRun>> row = ReadJobRunLocked(want);
    if (!row.ok()) return row.status();
    const char* sql = nullptr;
    if (!row->has_value()) {
      sql =
          "INSERT INTO job_runs(job, site_id, period, state, holder, "
          "attempts, updated_ms, error) VALUES(?1, ?2, ?3, 'claimed', ?4, 1, "
          "?5, '')";
    } else if (JobRunTakeable(**row, stale_before_ms)) {
      sql =
          "UPDATE job_runs SET state = 'claimed', holder = ?4, "
          "attempts = attempts + 1, updated_ms = ?5 "
          "WHERE job = ?1 AND site_id = ?2 AND period = ?3";
    } else {
      st = txn.Commit();
      if (!st.ok()) return st;
      return **row;
    }
    {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(sql);
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      BindText(*s, 1, want.job);
      sqlite3_bind_int64(*s, 2, want.site_id);
      BindText(*s, 3, want.period);
      BindText(*s, 4, want.holder);
      sqlite3_bind_int64(*s, 5, want.updated_ms);
      st = writer_->Run(*s, "claim job run");
      if (!st.ok()) return st;
    }
    row = ReadJobRunLocked(want);
    if (!row.ok()) return row.status();
    if (!row->has_value()) {
      return absl::InternalError("store: sqlite: claimed job run vanished");
    }
    st = txn.Commit();
    if (!st.ok()) return st;
    return **row;
  }

  absl::Status UpdateJobRun(const JobRun& run) override {
    absl::MutexLock lock(&write_mu_);
    Txn txn(writer_.get());
    absl::Status st = txn.Begin();
    if (!st.ok()) return st;
    absl::StatusOr<std::optional<JobRun>> row = ReadJobRunLocked(run);
    if (!row.ok()) return row.status();
    if (!row->has_value() || (*row)->holder != run.holder) {
      return absl::FailedPreconditionError(absl::StrCat(
          "store: job run ", run.job, "/", run.site_id, "/", run.period,
          row->has_value() ? absl::StrCat(" is held by ", (*row)->holder,
                                          ", not ", run.holder)
                           : std::string(" was never claimed")));
    }
    {
      absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
          "UPDATE job_runs SET state = ?4, error = ?5, attempts = ?6, "
          "updated_ms = ?7 WHERE job = ?1 AND site_id = ?2 AND period = ?3");
      if (!s.ok()) return s.status();
      ResetOnExit reset(*s);
      BindText(*s, 1, run.job);
      sqlite3_bind_int64(*s, 2, run.site_id);
      BindText(*s, 3, run.period);
      BindText(*s, 4, run.state);
      BindText(*s, 5, run.error);
      sqlite3_bind_int(*s, 6, run.attempts);
      sqlite3_bind_int64(*s, 7, run.updated_ms);
      st = writer_->Run(*s, "update job run");
      if (!st.ok()) return st;
    }
    return txn.Commit();
  }

  absl::StatusOr<std::vector<JobRun>> ListJobRuns(std::string_view job,
                                                  int64_t limit) override {
    absl::StatusOr<Reader> r = AcquireReader();
    if (!r.ok()) return r.status();
    absl::StatusOr<sqlite3_stmt*> s = r->conn->Prepare(
        std::string(kSelectJobRuns) +
        "WHERE (?1 = '' OR job = ?1) "
        "ORDER BY updated_ms DESC, job, site_id, period LIMIT ?2");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, job);
    sqlite3_bind_int64(*s, 2, limit > 0 ? limit : -1);
    std::vector<JobRun> out;
    while (true) {
      int rc = sqlite3_step(*s);
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return SqlError(r->conn->db(), rc, "list job runs");
      out.push_back(ReadJobRun(*s));
    }
  }

 private:
  static constexpr size_t kMaxIdleReaders = 4;

  // A read connection borrowed from the pool; returned on destruction.
  struct Reader {
    SqliteStore* store = nullptr;
    std::unique_ptr<Conn> conn;
    Reader(SqliteStore* s, std::unique_ptr<Conn> c)
        : store(s), conn(std::move(c)) {}
    Reader(Reader&& o) noexcept
        : store(std::exchange(o.store, nullptr)), conn(std::move(o.conn)) {}
    Reader& operator=(Reader&&) = delete;
    ~Reader() {
      if (store != nullptr && conn != nullptr) {
        store->ReleaseReader(std::move(conn));
      }
    }
  };

  SqliteStore(std::string path, std::unique_ptr<Conn> writer,
              std::unique_ptr<WalCheckpointer> checkpointer)
      : path_(std::move(path)),
        writer_(std::move(writer)),
        checkpointer_(std::move(checkpointer)) {}

  absl::StatusOr<Reader> AcquireReader() {
    {
      absl::MutexLock lock(&pool_mu_);
      if (!readers_.empty()) {
        std::unique_ptr<Conn> c = std::move(readers_.back());
        readers_.pop_back();
        return Reader(this, std::move(c));
      }
    }
    absl::StatusOr<std::unique_ptr<Conn>> c = Conn::Open(path_, false);
    if (!c.ok()) return c.status();
    return Reader(this, *std::move(c));
  }

  void ReleaseReader(std::unique_ptr<Conn> c) {
    absl::MutexLock lock(&pool_mu_);
    if (readers_.size() < kMaxIdleReaders) readers_.push_back(std::move(c));
  }

  // Records the newest seq as the seq floor before events are deleted, so
  // that deleting the newest events never makes their seqs reusable.
  absl::Status RaiseSeqFloorLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
        "INSERT INTO meta(key, value) "
        "SELECT ?1, m FROM (SELECT MAX(last_seq) AS m FROM event_blocks) "
        "WHERE m IS NOT NULL "
        "ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, kSeqFloorKey);
    return writer_->Run(*s, "raise seq floor");
  }

  // NotFound unless the site exists.
  absl::Status CheckSiteLocked(int64_t site_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::StatusOr<sqlite3_stmt*> s =
        writer_->Prepare("SELECT 1 FROM sites WHERE id = ?1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    sqlite3_bind_int64(*s, 1, site_id);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", site_id));
    }
    if (rc != SQLITE_ROW) return SqlError(writer_->db(), rc, "find site");
    return absl::OkStatus();
  }

  // The job ledger row of (run.job, run.site_id, run.period), if any.
  absl::StatusOr<std::optional<JobRun>> ReadJobRunLocked(const JobRun& run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::StatusOr<sqlite3_stmt*> s =
        writer_->Prepare(std::string(kSelectJobRuns) +
                         "WHERE job = ?1 AND site_id = ?2 AND period = ?3");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, run.job);
    sqlite3_bind_int64(*s, 2, run.site_id);
    BindText(*s, 3, run.period);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_DONE) return std::optional<JobRun>();
    if (rc != SQLITE_ROW) return SqlError(writer_->db(), rc, "read job run");
    return std::optional<JobRun>(ReadJobRun(*s));
  }

  // The seq of the next event: above every stored seq and above the seq
  // floor (the newest seq ever deleted), so a seq is never reused.
  absl::StatusOr<int64_t> NextSeqLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::StatusOr<sqlite3_stmt*> s = writer_->Prepare(
        "SELECT MAX(COALESCE((SELECT MAX(last_seq) FROM event_blocks), 0), "
        "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1), "
        "0)) + 1");
    if (!s.ok()) return s.status();
    ResetOnExit reset(*s);
    BindText(*s, 1, kSeqFloorKey);
    int rc = sqlite3_step(*s);
    if (rc != SQLITE_ROW) return SqlError(writer_->db(), rc, "next seq");
    return static_cast<int64_t>(sqlite3_column_int64(*s, 0));
  }

  // Applies the migrations this database lacks, one transaction each.
  static absl::Status Migrate(Conn* w, const std::string& path) {
    absl::Status st = w->Exec(
        "CREATE TABLE IF NOT EXISTS schema_version("
        "version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)");
    if (!st.ok()) return st;
    while (true) {
      Txn txn(w);
      st = txn.Begin();
      if (!st.ok()) return st;
      int64_t version = 0;
      {
        absl::StatusOr<sqlite3_stmt*> s =
            w->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
        if (!s.ok()) return s.status();
        ResetOnExit reset(*s);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_ROW) return SqlError(w->db(), rc, "schema version");
        version = sqlite3_column_int64(*s, 0);
      }
      if (version > kSchemaVersion) {
        return absl::FailedPreconditionError(absl::StrCat(
            "store: sqlite: database '", path, "' has schema version ", version,
            ", newer than this build supports (", kSchemaVersion,
            "); upgrade the software"));
      }
      if (version == kSchemaVersion) return txn.Commit();
      st = w->Exec(kMigrations[version]);
      if (!st.ok()) {
        return absl::Status(
            st.code(), absl::StrCat("store: sqlite: migration to version ",
                                    version + 1, " failed: ", st.message()));
      }
      if (version + 1 == kEventBlocksVersion ||
          version + 1 == kRollupHoursVersion) {
        st = version + 1 == kEventBlocksVersion ? ConvertEventRows(w)
                                                : ConvertHourRollups(w);
        if (!st.ok()) {
          return absl::Status(
              st.code(), absl::StrCat("store: sqlite: migration to version ",
                                      version + 1, " failed: ", st.message()));
        }
      }
      absl::StatusOr<sqlite3_stmt*> s = w->Prepare(
          "INSERT INTO schema_version(version, applied_ms) VALUES(?1, ?2)");
      if (!s.ok()) return s.status();
      {
        ResetOnExit reset(*s);
        sqlite3_bind_int64(*s, 1, version + 1);
        sqlite3_bind_int64(*s, 2, absl::ToUnixMillis(absl::Now()));
        st = w->Run(*s, "record schema version");
        if (!st.ok()) return st;
      }
      st = txn.Commit();
      if (!st.ok()) return st;
    }
  }

  const std::string path_;
  absl::Mutex write_mu_;
  std::unique_ptr<Conn> writer_ ABSL_GUARDED_BY(write_mu_);
  std::unique_ptr<WalCheckpointer> checkpointer_ ABSL_GUARDED_BY(write_mu_);
  // Encoded block of AppendEvents (bound SQLITE_STATIC).
  std::string block_buf_ ABSL_GUARDED_BY(write_mu_);
  // Encoded hour block of ApplyRollups (bound SQLITE_STATIC).
  std::string hour_buf_ ABSL_GUARDED_BY(write_mu_);
  std::string unpacked_ ABSL_GUARDED_BY(write_mu_);  // see HourBlockOf
  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Conn>> readers_ ABSL_GUARDED_BY(pool_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path) {
  return SqliteStore::Open(path);
}

int SqliteStoreSchemaVersion() { return kSchemaVersion; }

const char* SqliteStoreMigrationSql(int version) {
  if (version < 1 || version > kSchemaVersion) return nullptr;
  return kMigrations[version - 1];
}

}  // namespace analytics
