// Redis Store (see redis_store.h). Owns: the key layout, the Lua scripts and
// the connection pool (events are stored as event_codec.h records).
#include "libanalytics/store/redis_store.h"

#include <hiredis/hiredis.h>
#include <sys/random.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/net/idle_pool.h"
#include "libanalytics/net/redis_conn.h"
#include "libanalytics/sketch/hll.h"
#include "libanalytics/store/event_codec.h"
#include "libanalytics/store/store_checks.h"

namespace analytics {
namespace {

using Args = net::RedisArgs;

// ---------------------------------------------------------------------------
// Lua scripts. Keys are built inside the scripts (single-instance Redis).

// Lua function prepended to the scripts that write several keys (see
// WithLuaFns): check(key, want) returns an error text when the key exists
// with another type than `want`, else nil.
constexpr char kCheckTypeLuaFn[] = R"lua(
local function check(key, want)
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= want then
    return 'key ' .. key .. ' holds a ' .. t .. ', not a ' .. want
  end
  return nil
end
)lua";

// ARGV: n, then n x (site, ts_ms, session_start_ms, worker, encoded event),
// then the batch's token. Returns the first seq of the batch. The token
// makes a resend idempotent: a batch sent again after its reply was lost (an
// I/O timeout while Redis was busy) returns the first seq it was given
// (kept 1 h in "atok:<token>") instead of being written twice. A script is not
// rolled back when a command in it fails, so everything that could fail (key
// types, a stream whose last id is not below the new seqs) is checked before
// the first write: the batch is written whole or not at all.
constexpr char kAppendLua[] = R"lua(
local n = tonumber(ARGV[1])
local tok = 'atok:' .. ARGV[2 + n * 5]
local done = redis.call('GET', tok)
if done then return tonumber(done) end
local first = tonumber(redis.call('GET', 'seq') or '0') + 1
local function seq_key(w)
  if w == '0' then return 'evseq' end
  return 'evseq:' .. w
end
local err = check('evworkers', 'set')
if err then return redis.error_reply(err) end
local seen = {}
local seen_w = {}
for i = 0, n - 1 do
  local site = ARGV[2 + i * 5]
  local w = ARGV[5 + i * 5]
  if not seen_w[w] then
    seen_w[w] = true
    err = check(seq_key(w), 'zset')
    if err then return redis.error_reply(err) end
  end
  if not seen[site] then
    seen[site] = true
    err = check('ev:' .. site, 'stream') or check('evts:' .. site, 'zset') or
          check('evss:' .. site, 'zset')
    if err then return redis.error_reply(err) end
    local top = redis.call('XREVRANGE', 'ev:' .. site, '+', '-', 'COUNT', 1)
    if #top > 0 then
      local top_seq = tonumber(string.match(top[1][1], '^(%d+)-'))
      if top_seq >= first then
        return redis.error_reply('stream ev:' .. site .. ' has id ' ..
                                 top[1][1] .. ' >= the next seq ' ..
                                 string.format('%d', first) ..
                                 ' (was the seq key reset?)')
      end
    end
  end
end
redis.call('INCRBY', 'seq', n)
for w, _ in pairs(seen_w) do
  if w ~= '0' then redis.call('SADD', 'evworkers', w) end
end
for i = 0, n - 1 do
  local site = ARGV[2 + i * 5]
  local ts = ARGV[3 + i * 5]
  local ss = ARGV[4 + i * 5]
  local w = ARGV[5 + i * 5]
  local seq = first + i
  local m = string.format('%020d', seq)
  redis.call('XADD', 'ev:' .. site, string.format('%d-0', seq),
             'ts', ts, 'w', w, 'e', ARGV[6 + i * 5])
  redis.call('ZADD', 'evts:' .. site, ts, m)
  redis.call('ZADD', 'evss:' .. site, ss, m .. ':' .. ts)
  redis.call('ZADD', seq_key(w), seq, site .. ':' .. m)
end
redis.call('SET', tok, first, 'EX', 3600)
return first
)lua";

// ARGV: domain, short_id, timezone, created_ms, allowed_origins,
// retention_days. Returns the new id, -1 (domain taken) or -2 (short_id
// taken).
constexpr char kAddSiteLua[] = R"lua(
if redis.call('HEXISTS', 'site_domain', ARGV[1]) == 1 then return -1 end
if redis.call('HEXISTS', 'site_short', ARGV[2]) == 1 then return -2 end
local id = redis.call('INCR', 'site_id')
redis.call('HSET', 'site:' .. id, 'domain', ARGV[1], 'short_id', ARGV[2],
           'timezone', ARGV[3], 'created_ms', ARGV[4],
           'allowed_origins', ARGV[5], 'retention_days', ARGV[6])
redis.call('HSET', 'site_domain', ARGV[1], id)
redis.call('HSET', 'site_short', ARGV[2], id)
redis.call('ZADD', 'sites', id, id)
return id
)lua";

// ARGV: id, timezone, allowed_origins, retention_days. Returns 1, or 0 when
// absent.
constexpr char kUpdateSiteLua[] = R"lua(
local k = 'site:' .. ARGV[1]
if redis.call('EXISTS', k) == 0 then return 0 end
redis.call('HSET', k, 'timezone', ARGV[2], 'allowed_origins', ARGV[3],
           'retention_days', ARGV[4])
return 1
)lua";

// Lua functions shared by scripts (prepended to their text).
//   seq_keys(): the per-worker seq index keys (evseq, evseq:{w}).
//   erase_site_data(id): deletes the site's events and rollups.
constexpr char kSiteDataLuaFns[] = R"lua(
local function seq_keys()
  local keys = {'evseq'}
  for _, w in ipairs(redis.call('SMEMBERS', 'evworkers')) do
    table.insert(keys, 'evseq:' .. w)
  end
  return keys
end
local function erase_site_data(id)
  local sks = seq_keys()
  for _, m in ipairs(redis.call('ZRANGE', 'evts:' .. id, 0, -1)) do
    for _, sk in ipairs(sks) do redis.call('ZREM', sk, id .. ':' .. m) end
  end
  redis.call('DEL', 'ev:' .. id, 'evts:' .. id, 'evss:' .. id)
  local prefix = 'rui:' .. id .. ':'
  for _, ik in ipairs(redis.call('SMEMBERS', 'ruidx')) do
    if string.sub(ik, 1, #prefix) == prefix then
      local cell = 'ru:' .. string.sub(ik, 5) .. ':'
      for _, m in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
        redis.call('DEL', cell .. m)
      end
      redis.call('DEL', ik)
      redis.call('SREM', 'ruidx', ik)
    end
  end
end
)lua";

// ARGV: id. Deletes the site, its events, rollups, api keys and config docs.
// Returns 1, or 0 when absent. The seq counter is untouched, so seqs are never
// reused. (After kSiteDataLuaFns.)
constexpr char kRemoveSiteLua[] = R"lua(
local id = ARGV[1]
local k = 'site:' .. id
if redis.call('EXISTS', k) == 0 then return 0 end
redis.call('HDEL', 'site_domain', redis.call('HGET', k, 'domain'))
redis.call('HDEL', 'site_short', redis.call('HGET', k, 'short_id'))
redis.call('DEL', k)
redis.call('ZREM', 'sites', id)
erase_site_data(id)
for _, did in ipairs(redis.call('SMEMBERS', 'site_docs:' .. id)) do
  redis.call('DEL', 'doc:' .. did)
  redis.call('ZREM', 'docs', did)
end
redis.call('DEL', 'site_docs:' .. id)
for _, kid in ipairs(redis.call('SMEMBERS', 'site_apikeys:' .. id)) do
  local h = redis.call('HGET', 'apikey:' .. kid, 'secret_hash')
  if h then redis.call('HDEL', 'apikey_hash', h) end
  redis.call('DEL', 'apikey:' .. kid)
  redis.call('ZREM', 'apikeys', kid)
end
redis.call('DEL', 'site_apikeys:' .. id)
return 1
)lua";

// ARGV: id. Deletes the site's events and rollups. Returns 1, or 0 when the
// site is absent. (After kSiteDataLuaFns.)
constexpr char kEraseSiteDataLua[] = R"lua(
if redis.call('EXISTS', 'site:' .. ARGV[1]) == 0 then return 0 end
erase_site_data(ARGV[1])
return 1
)lua";

// ARGV: site, before_ms, limit. Deletes up to `limit` of the site's events
// with ts_ms < before_ms; returns how many. (After kSiteDataLuaFns.)
constexpr char kDeleteEventsBeforeLua[] = R"lua(
local id = ARGV[1]
local items = redis.call('ZRANGEBYSCORE', 'evts:' .. id, '-inf',
                         '(' .. ARGV[2], 'WITHSCORES', 'LIMIT', 0,
                         tonumber(ARGV[3]))
local sks = seq_keys()
local n = 0
for i = 1, #items, 2 do
  local m = items[i]
  local ts = string.format('%d', tonumber(items[i + 1]))
  redis.call('XDEL', 'ev:' .. id, string.format('%d-0', tonumber(m)))
  redis.call('ZREM', 'evts:' .. id, m)
  redis.call('ZREM', 'evss:' .. id, m .. ':' .. ts)
  for _, sk in ipairs(sks) do redis.call('ZREM', sk, id .. ':' .. m) end
  n = n + 1
end
return n
)lua";

// ARGV: kind, site_id, json, updated_ms. Returns the new id, or -1 when
// site_id is not 0 and names no site.
constexpr char kAddDocLua[] = R"lua(
local site = ARGV[2]
if site ~= '0' and redis.call('EXISTS', 'site:' .. site) == 0 then
  return -1
end
local id = redis.call('INCR', 'doc_id')
redis.call('HSET', 'doc:' .. id, 'kind', ARGV[1], 'site_id', site,
           'json', ARGV[3], 'updated_ms', ARGV[4])
redis.call('ZADD', 'docs', id, id)
if site ~= '0' then redis.call('SADD', 'site_docs:' .. site, id) end
return id
)lua";

// ARGV: id, json, updated_ms. Returns 1, or 0 when absent.
constexpr char kUpdateDocLua[] = R"lua(
local k = 'doc:' .. ARGV[1]
if redis.call('EXISTS', k) == 0 then return 0 end
redis.call('HSET', k, 'json', ARGV[2], 'updated_ms', ARGV[3])
return 1
)lua";

// ARGV: id. Returns 1, or 0 when absent.
constexpr char kDeleteDocLua[] = R"lua(
local k = 'doc:' .. ARGV[1]
if redis.call('EXISTS', k) == 0 then return 0 end
local site = redis.call('HGET', k, 'site_id')
redis.call('DEL', k)
redis.call('ZREM', 'docs', ARGV[1])
if site and site ~= '0' then
  redis.call('SREM', 'site_docs:' .. site, ARGV[1])
end
return 1
)lua";

// KEYS: the run's hash, the ledger index, the job's index. ARGV: job,
// site_id, period, holder, updated_ms, stale_before_ms. Inserts or takes over
// the run as ClaimJobRun says; returns the stored row (HGETALL).
constexpr char kClaimJobLua[] = R"lua(
local k = KEYS[1]
local function index()
  redis.call('ZADD', KEYS[2], ARGV[5], k)
  redis.call('ZADD', KEYS[3], ARGV[5], k)
end
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, 'job', ARGV[1], 'site_id', ARGV[2],
             'period', ARGV[3], 'state', 'claimed', 'holder', ARGV[4],
             'attempts', 1, 'updated_ms', ARGV[5], 'error', '')
  index()
else
  local state = redis.call('HGET', k, 'state')
  local updated = tonumber(redis.call('HGET', k, 'updated_ms'))
  if (state == 'claimed' or state == 'failed') and
     updated < tonumber(ARGV[6]) then
    redis.call('HSET', k, 'state', 'claimed', 'holder', ARGV[4],
               'updated_ms', ARGV[5])
    redis.call('HINCRBY', k, 'attempts', 1)
    index()
  end
end
return redis.call('HGETALL', k)
)lua";

// KEYS as kClaimJobLua. ARGV: holder, state, error, attempts, updated_ms.
// Returns 1 when updated, else the current holder ("" when no such run).
constexpr char kUpdateJobLua[] = R"lua(
local k = KEYS[1]
local holder = redis.call('HGET', k, 'holder')
if not holder then return '' end
if holder ~= ARGV[1] then return holder end
redis.call('HSET', k, 'state', ARGV[2], 'error', ARGV[3],
           'attempts', ARGV[4], 'updated_ms', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], k)
redis.call('ZADD', KEYS[3], ARGV[5], k)
return 1
)lua";

// ARGV: site_id, name, prefix, secret_hash, created_ms, revoked_ms.
// Returns the new id, -1 (no such site) or -2 (secret_hash taken).
constexpr char kAddApiKeyLua[] = R"lua(
if redis.call('EXISTS', 'site:' .. ARGV[1]) == 0 then return -1 end
if redis.call('HEXISTS', 'apikey_hash', ARGV[4]) == 1 then return -2 end
local id = redis.call('INCR', 'apikey_id')
redis.call('HSET', 'apikey:' .. id, 'site_id', ARGV[1], 'name', ARGV[2],
           'prefix', ARGV[3], 'secret_hash', ARGV[4], 'created_ms', ARGV[5],
           'revoked_ms', ARGV[6])
redis.call('HSET', 'apikey_hash', ARGV[4], id)
redis.call('ZADD', 'apikeys', id, id)
redis.call('SADD', 'site_apikeys:' .. ARGV[1], id)
return id
)lua";

// ARGV: id, revoked_ms. Returns 1, or 0 when absent.
constexpr char kRevokeApiKeyLua[] = R"lua(
local k = 'apikey:' .. ARGV[1]
if redis.call('EXISTS', k) == 0 then return 0 end
redis.call('HSET', k, 'revoked_ms', ARGV[2])
return 1
)lua";

// KEYS[1]: a hash. ARGV: field, value. Returns the value stored after.
constexpr char kHashPutIfAbsentLua[] = R"lua(
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
)lua";

// ARGV: day. Deletes salts of days before it.
constexpr char kDeleteSaltsLua[] = R"lua(
local day = tonumber(ARGV[1])
for _, d in ipairs(redis.call('HKEYS', 'salts')) do
  if tonumber(d) < day then redis.call('HDEL', 'salts', d) end
end
return 1
)lua";

// Applies merged rollup deltas and the worker's checkpoint in one atomic
// step, as a compare-and-set on the cells' sketch versions (field "n").
// ARGV: worker, checkpoint, del_legacy (1: DEL rollup_checkpoint), n cells,
// m index keys, the worker's checkpoint as read ("" for none), then n x (cell
// key, index key, bucket, member, pv, ev, vi, bo, du, sp, expected version or
// "" when the delta has no sketch, merged sketch), then the m index keys.
// Returns 1, or 0 (nothing written) when the worker's checkpoint or a sketch
// cell's version is no longer the one read (the checkpoint check lets the
// store tell whether an earlier call whose reply was lost was applied: see
// RedisStore::in_doubt_).
// Every check runs before the first write (a script is not rolled back).
// Each sketch write stamps the cell with a new version from the counter
// "ruver", never reused, so a cell deleted and created again cannot match.
// (This replaced WATCH on every cell: Redis 7.0's WATCH scans the keys the
// client already watches for each new key, quadratic in the cell count,
// and blocked the server for minutes on bulk loads.)
constexpr char kApplyRollupsLua[] = R"lua(
local n = tonumber(ARGV[4])
local m = tonumber(ARGV[5])
local base = 7
local err = check('ruidx', 'set') or check('rollup_checkpoints', 'hash') or
            check('ruver', 'string')
if err then return redis.error_reply(err) end
local conflict =
    (redis.call('HGET', 'rollup_checkpoints', ARGV[1]) or '') ~= ARGV[6]
for i = 0, n - 1 do
  local o = base + i * 12
  err = check(ARGV[o], 'hash') or check(ARGV[o + 1], 'zset')
  if err then return redis.error_reply(err) end
  local expect = ARGV[o + 10]
  if expect ~= '' and (redis.call('HGET', ARGV[o], 'n') or '0') ~= expect then
    conflict = true
  end
end
if conflict then return 0 end
local ver = nil
local fields = {'pv', 'ev', 'vi', 'bo', 'du', 'sp'}
for i = 0, n - 1 do
  local o = base + i * 12
  local key = ARGV[o]
  for f = 1, 6 do
    local v = ARGV[o + 3 + f]
    if f == 1 or v ~= '0' then redis.call('HINCRBY', key, fields[f], v) end
  end
  if ARGV[o + 10] ~= '' then
    if not ver then ver = redis.call('INCR', 'ruver') end
    redis.call('HSET', key, 'v', ARGV[o + 11], 'n', ver)
  end
  redis.call('ZADD', ARGV[o + 1], ARGV[o + 2], ARGV[o + 3])
end
local first = base + n * 12
for i = 0, m - 1, 1000 do
  local last = first + math.min(i + 1000, m) - 1
  redis.call('SADD', 'ruidx', unpack(ARGV, first + i, last))
end
redis.call('HSET', 'rollup_checkpoints', ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('DEL', 'rollup_checkpoint') end
return 1
)lua";

constexpr char kClearRollupsLua[] = R"lua(
for _, ik in ipairs(redis.call('SMEMBERS', 'ruidx')) do
  local cell = 'ru:' .. string.sub(ik, 5) .. ':'
  for _, m in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
    redis.call('DEL', cell .. m)
  end
  redis.call('DEL', ik)
end
redis.call('DEL', 'ruidx', 'rollup_checkpoint', 'rollup_checkpoints')
return 1
)lua";

// ---------------------------------------------------------------------------
// Small helpers.

std::string Seq20(int64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(seq));
  return buf;
}

using net::ParseInt;
using net::ReplyInt;
using net::ReplyPtr;
using net::Str;
using Conn = net::RedisConn;

int64_t ParseIntOr0(std::string_view s) {
  int64_t v = 0;
  return ParseInt(s, &v) ? v : 0;
}

// HGETALL reply -> field map.
std::map<std::string, std::string> HashMap(const redisReply* r) {
  std::map<std::string, std::string> out;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    out[Str(r->element[i])] = Str(r->element[i + 1]);
  }
  return out;
}

// 16 random bytes as hex: a batch's idempotency token (see kAppendLua).
std::string BatchToken() {
  unsigned char b[16] = {};
  size_t filled = 0;
  while (filled < sizeof(b)) {
    ssize_t n = getrandom(b + filled, sizeof(b) - filled, 0);
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  if (filled < sizeof(b)) {  // getrandom unavailable: time and address
    uint64_t t = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
    uint64_t a = reinterpret_cast<uintptr_t>(&t) ^ (t * 0x9e3779b97f4a7c15u);
    std::memcpy(b, &t, 8);
    std::memcpy(b + 8, &a, 8);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

absl::Status ReplyError(const redisReply* r, absl::string_view what) {
  return absl::InternalError(
      absl::StrCat("store: redis: ", what, ": ", Str(r)));
}

struct Config : net::RedisUrl {
  bool allow_no_aof = false;
  // Socket read/write timeout of each command (?timeout_ms=N).
  int64_t timeout_ms = 60000;
};

absl::StatusOr<Config> ParseUrl(std::string_view rest) {
  Config c;
  std::string_view s = rest;
  size_t q = s.find('?');
  if (q != std::string_view::npos) {
    std::string_view query = s.substr(q + 1);
    s = s.substr(0, q);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view kv = query.substr(0, amp);
      query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
      if (kv == "allow_no_aof=1" || kv == "allow_no_aof=true") {
        c.allow_no_aof = true;
      } else if (kv == "allow_no_aof=0" || kv.empty()) {
      } else if (kv.rfind("timeout_ms=", 0) == 0) {
        int64_t v = 0;
        if (!net::ParseInt(kv.substr(11), &v) || v < 1 || v > 3600000) {
          return absl::InvalidArgumentError(
              absl::StrCat("store: redis URL: bad timeout_ms '",
                           AV(kv.substr(11)), "' (milliseconds, 1..3600000)"));
        }
        c.timeout_ms = v;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("store: redis URL: unknown parameter '", AV(kv),
                         "' (known: allow_no_aof=1, timeout_ms=N)"));
      }
    }
  }
  net::RedisUrlError e = net::ParseRedisUrl(s, &c);
  switch (e.kind) {
    case net::RedisUrlError::kNone:
      return c;
    case net::RedisUrlError::kBadDb:
      return absl::InvalidArgumentError(absl::StrCat(
          "store: redis URL: bad database number '", e.piece, "'"));
    case net::RedisUrlError::kUnclosedBracket:
      return absl::InvalidArgumentError(
          absl::StrCat("store: redis URL: unclosed '[' in '", AV(rest), "'"));
    case net::RedisUrlError::kBadHost:
      return absl::InvalidArgumentError(
          absl::StrCat("store: redis URL: bad host in '", AV(rest), "'"));
    case net::RedisUrlError::kBadPort:
      return absl::InvalidArgumentError(
          absl::StrCat("store: redis URL: bad port in '", AV(rest), "'"));
    case net::RedisUrlError::kNoHost:
      break;
  }
  return absl::InvalidArgumentError(
      "store: redis URL has no host (redis://host:port[/db])");
}

// ---------------------------------------------------------------------------
// Connections.

struct Script {
  const char* text;
  std::string sha;  // filled at Open (SCRIPT LOAD)
};

class RedisStore;

// A connection borrowed from the pool; returned on destruction unless broken.
class Lease {
 public:
  Lease(RedisStore* store, std::unique_ptr<Conn> c)
      : store_(store), c_(std::move(c)) {}
  Lease(Lease&&) = default;
  ~Lease();
  Conn* operator->() { return c_.get(); }
  Conn& operator*() { return *c_; }

 private:
  RedisStore* store_;
  std::unique_ptr<Conn> c_;
};

constexpr size_t kMaxIdle = 8;
// Events or rollup cells read per pipelined round trip (512: measured as
// fast as 256 and faster than 2,048 or 16,384 for a 12,000-cell top-N).
constexpr size_t kFetchChunk = 512;
// Events deleted per DeleteEventsBefore script call.
constexpr size_t kDeleteChunk = 5000;

// The text of a script that uses shared Lua functions (kSiteDataLuaFns,
// kCheckTypeLuaFn): the functions, then the script. Built once per script and
// kept for the life of the process.
template <const char* kFns, const char* kBody>
const char* WithLuaFns() {
  static const std::string* const text =
      new std::string(absl::StrCat(kFns, kBody));
  return text->c_str();
}
constexpr int kRollupRetries = 200;

// Metric fields of a rollup cell hash.
constexpr const char* kMetricFields[] = {"pv", "ev", "vi", "bo", "du", "sp"};
int64_t RollupMetrics::*const kMetricMembers[] = {
    &RollupMetrics::pageviews,   &RollupMetrics::events,
    &RollupMetrics::visits,      &RollupMetrics::bounces,
    &RollupMetrics::duration_ms, &RollupMetrics::session_pageviews,
};

// Merges two serialized sketches; an empty string is an empty sketch.
absl::StatusOr<std::string> MergeSketches(const std::string& a,
                                          const std::string& b) {
  if (b.empty()) return a;
  if (a.empty()) {
    absl::StatusOr<HyperLogLog> hb = HyperLogLog::Deserialize(b);
    if (!hb.ok()) return hb.status();
    return b;
  }
  absl::StatusOr<HyperLogLog> h = HyperLogLog::Deserialize(a);
  if (!h.ok()) return h.status();
  absl::Status s = h->MergeSerialized(b);
  if (!s.ok()) return s;
  return h->Serialize();
}

// The ZSET of a worker's events by seq ("evseq" for worker 0, the key of
// databases written before per-worker checkpoints).
std::string SeqIndexKey(int32_t worker) {
  return worker == 0 ? std::string("evseq") : absl::StrCat("evseq:", worker);
}

std::string IndexKey(int64_t site, RollupLevel level, const std::string& dim) {
  return absl::StrCat("rui:", site, ":", static_cast<int>(level), ":",
                      dim.size(), ":", dim);
}
// Cell key from its index key ("rui:" + suffix) and member.
std::string CellKey(const std::string& index_key, const std::string& member) {
  return absl::StrCat("ru:", absl::string_view(index_key).substr(4), ":",
                      member);
}

class RedisStore : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(std::string_view rest) {
    absl::StatusOr<Config> cfg = ParseUrl(rest);
    if (!cfg.ok()) return cfg.status();
    auto store = std::unique_ptr<RedisStore>(new RedisStore(*cfg));
    absl::StatusOr<Lease> c = store->Acquire();
    if (!c.ok()) return c.status();
    absl::Status st = store->CheckAof(**c);
    if (!st.ok()) return st;
    for (Script* s : store->scripts()) {
      absl::StatusOr<ReplyPtr> r = (*c)->Command({"SCRIPT", "LOAD", s->text});
      if (!r.ok()) return r.status();
      if ((*r)->type != REDIS_REPLY_STRING) {
        return ReplyError(r->get(), "SCRIPT LOAD");
      }
      s->sha = Str(r->get());
    }
    return std::unique_ptr<Store>(std::move(store));
  }

  ~RedisStore() override { idle_.Clear(); }

  void Release(std::unique_ptr<Conn> c) {
    if (c == nullptr || c->broken()) return;
    idle_.Put(std::move(c));
  }

  // ---- Sites.

  absl::StatusOr<Site> AddSite(const Site& site) override {
    Site out = site;
    if (out.created_ms == 0) out.created_ms = absl::ToUnixMillis(absl::Now());
    absl::StatusOr<int64_t> id =
        EvalInt(add_site_, {out.domain, out.short_id, out.timezone,
                            absl::StrCat(out.created_ms), out.allowed_origins,
                            absl::StrCat(out.retention_days)});
    if (!id.ok()) return id.status();
    if (*id == -1) {
      return absl::AlreadyExistsError(
          absl::StrCat("store: site domain '", out.domain, "' already exists"));
    }
    if (*id == -2) {
      return absl::AlreadyExistsError(absl::StrCat(
          "store: site short_id '", out.short_id, "' already exists"));
    }
    out.id = *id;
    return out;
  }

  absl::StatusOr<std::vector<Site>> ListSites() override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<std::vector<std::string>> ids = ZRangeAll(**c, "sites");
    if (!ids.ok()) return ids.status();
    for (const std::string& id : *ids) (*c)->Append({"HGETALL", "site:" + id});
    absl::StatusOr<std::vector<ReplyPtr>> rs = (*c)->Flush();
    if (!rs.ok()) return rs.status();
    std::vector<Site> out;
    for (size_t i = 0; i < ids->size(); ++i) {
      std::map<std::string, std::string> h = HashMap((*rs)[i].get());
      if (h.empty()) continue;  // removed meanwhile
      Site s;
      s.id = ParseIntOr0((*ids)[i]);
      s.domain = h["domain"];
      s.short_id = h["short_id"];
      s.timezone = h["timezone"];
      s.created_ms = ParseIntOr0(h["created_ms"]);
      s.allowed_origins = h["allowed_origins"];
      s.retention_days = static_cast<int32_t>(ParseIntOr0(h["retention_days"]));
      out.push_back(std::move(s));
    }
    return out;
  }

  absl::Status RemoveSite(int64_t site_id) override {
    absl::StatusOr<int64_t> r = EvalInt(remove_site_, {absl::StrCat(site_id)});
    if (!r.ok()) return r.status();
    if (*r == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", site_id));
    }
    return absl::OkStatus();
  }

  absl::Status UpdateSite(const Site& site) override {
    absl::StatusOr<int64_t> r =
        EvalInt(update_site_,
                {absl::StrCat(site.id), site.timezone, site.allowed_origins,
                 absl::StrCat(site.retention_days)});
    if (!r.ok()) return r.status();
    if (*r == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", site.id));
    }
    return absl::OkStatus();
  }

  // ---- API keys.

  absl::StatusOr<ApiKeyRecord> AddApiKey(const ApiKeyRecord& key) override {
    absl::StatusOr<int64_t> id =
        EvalInt(add_api_key_, {absl::StrCat(key.site_id), key.name, key.prefix,
                               key.secret_hash, absl::StrCat(key.created_ms),
                               absl::StrCat(key.revoked_ms)});
    if (!id.ok()) return id.status();
    if (*id == -1) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", key.site_id));
    }
    if (*id == -2) {
      return absl::AlreadyExistsError(
          "store: an api key with this secret hash already exists");
    }
    ApiKeyRecord out = key;
    out.id = *id;
    return out;
  }

  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<std::vector<std::string>> ids = ZRangeAll(**c, "apikeys");
    if (!ids.ok()) return ids.status();
    for (const std::string& id : *ids) {
      (*c)->Append({"HGETALL", "apikey:" + id});
    }
    absl::StatusOr<std::vector<ReplyPtr>> rs = (*c)->Flush();
    if (!rs.ok()) return rs.status();
    std::vector<ApiKeyRecord> out;
    for (size_t i = 0; i < ids->size(); ++i) {
      std::optional<ApiKeyRecord> k =
          KeyFromHash(ParseIntOr0((*ids)[i]), (*rs)[i].get());
      if (k.has_value()) out.push_back(*std::move(k));
    }
    return out;
  }

  absl::Status RevokeApiKey(int64_t id, int64_t revoked_ms) override {
    absl::StatusOr<int64_t> r =
        EvalInt(revoke_api_key_, {absl::StrCat(id), absl::StrCat(revoked_ms)});
    if (!r.ok()) return r.status();
    if (*r == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no api key with id ", id));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ApiKeyRecord> FindApiKeyByHash(
      std::string_view secret_hash) override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<ReplyPtr> r =
        (*c)->Command({"HGET", "apikey_hash", std::string(secret_hash)});
    if (!r.ok()) return r.status();
    int64_t id = 0;
    if ((*r)->type == REDIS_REPLY_NIL || !ReplyInt(r->get(), &id)) {
      if ((*r)->type == REDIS_REPLY_ERROR) return ReplyError(r->get(), "HGET");
      return absl::NotFoundError("store: no api key with this secret hash");
    }
    r = (*c)->Command({"HGETALL", absl::StrCat("apikey:", id)});
    if (!r.ok()) return r.status();
    std::optional<ApiKeyRecord> k = KeyFromHash(id, r->get());
    if (!k.has_value() || k->secret_hash != secret_hash) {
      return absl::NotFoundError("store: no api key with this secret hash");
    }
    return *std::move(k);
  }

  // ---- Meta and salts.

  absl::StatusOr<std::optional<std::string>> GetMeta(
      std::string_view key) override {
    return HashGet("meta", std::string(key));
  }

  absl::StatusOr<std::string> PutMetaIfAbsent(std::string_view key,
                                              std::string value) override {
    return HashPutIfAbsent("meta", std::string(key), std::move(value));
  }

  absl::Status PutMeta(std::string_view key, std::string value) override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<ReplyPtr> r =
        (*c)->Command({"HSET", "meta", std::string(key), std::move(value)});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) return ReplyError(r->get(), "HSET");
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<std::string>> GetSalt(int64_t day) override {
    return HashGet("salts", absl::StrCat(day));
  }

  absl::StatusOr<std::string> PutSaltIfAbsent(int64_t day,
                                              std::string salt) override {
    return HashPutIfAbsent("salts", absl::StrCat(day), std::move(salt));
  }

  absl::Status DeleteSaltsBefore(int64_t day) override {
    return EvalInt(delete_salts_, {absl::StrCat(day)}).status();
  }

  // ---- Events.

  absl::Status AppendEvents(absl::Span<Event> events) override {
    if (events.empty()) return absl::OkStatus();
    Args args;
    args.reserve(4 + events.size() * 5);
    args.push_back("EVALSHA");
    args.push_back(append_.sha);
    args.push_back("0");
    args.push_back(absl::StrCat(events.size()));
    std::string buf;
    for (const Event& e : events) {
      args.push_back(absl::StrCat(e.site_id));
      args.push_back(absl::StrCat(e.ts_ms));
      args.push_back(absl::StrCat(e.session_start_ms));
      args.push_back(absl::StrCat(e.worker));
      EncodeEvent(e, &buf);
      args.push_back(buf);
    }
    args.push_back(BatchToken());
    absl::StatusOr<ReplyPtr> r = absl::UnavailableError("");
    // One resend on a fresh connection after an I/O error: the token makes
    // it a no-op when the first send was applied (see kAppendLua).
    for (int attempt = 0; attempt < 2; ++attempt) {
      absl::StatusOr<Lease> c = Acquire();
      if (!c.ok()) return c.status();
      Args sent = args;
      r = EvalArgs(**c, append_, sent);
      if (r.ok() || !absl::IsUnavailable(r.status())) break;
    }
    if (!r.ok()) return r.status();
    int64_t first = 0;
    if (!ReplyInt(r->get(), &first)) return ReplyError(r->get(), "append");
    for (size_t i = 0; i < events.size(); ++i) {
      events[i].seq = first + static_cast<int64_t>(i);
    }
    return absl::OkStatus();
  }

  absl::Status ScanEvents(
      const EventScan& scan,
      const std::function<bool(const Event&)>& fn) override {
    if (scan.from_ms >= scan.to_ms) return absl::OkStatus();
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    const std::string site = absl::StrCat(scan.site_id);
    const std::string from = absl::StrCat(scan.from_ms);
    const std::string to = absl::StrCat("(", scan.to_ms);
    (*c)->Append({"ZRANGEBYSCORE", "evts:" + site, from, to, "WITHSCORES"});
    if (scan.include_session_starts) {
      (*c)->Append({"ZRANGEBYSCORE", "evss:" + site, from, to});
    }
    absl::StatusOr<std::vector<ReplyPtr>> rs = (*c)->Flush();
    if (!rs.ok()) return rs.status();
    for (const ReplyPtr& r : *rs) {
      if (r->type != REDIS_REPLY_ARRAY) return ReplyError(r.get(), "scan");
    }
    // (ts_ms, seq) of every match, in that order.
    std::vector<std::pair<int64_t, int64_t>> keys;
    const redisReply* ts_set = (*rs)[0].get();
    for (size_t i = 0; i + 1 < ts_set->elements; i += 2) {
      int64_t seq = ParseIntOr0(Str(ts_set->element[i]));
      int64_t ts = static_cast<int64_t>(
          std::strtod(Str(ts_set->element[i + 1]).c_str(), nullptr));
      keys.emplace_back(ts, seq);
    }
    if (scan.include_session_starts) {
      bool extra = false;
      const redisReply* ss_set = (*rs)[1].get();
      for (size_t i = 0; i < ss_set->elements; ++i) {
        std::string m = Str(ss_set->element[i]);
        size_t colon = m.find(':');
        if (colon == std::string::npos) continue;
        int64_t seq = ParseIntOr0(std::string_view(m).substr(0, colon));
        int64_t ts = ParseIntOr0(std::string_view(m).substr(colon + 1));
        if (ts >= scan.from_ms && ts < scan.to_ms) continue;  // in keys
        keys.emplace_back(ts, seq);
        extra = true;
      }
      if (extra) std::sort(keys.begin(), keys.end());
    }
    std::vector<std::pair<std::string, int64_t>> refs;
    refs.reserve(keys.size());
    for (const auto& [ts, seq] : keys) refs.emplace_back(site, seq);
    return FetchAndCall(**c, refs, fn);
  }

  absl::Status ScanEventsAfter(
      int64_t after_seq, int32_t worker,
      const std::function<bool(const Event&)>& fn) override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    const std::string key = SeqIndexKey(worker);
    int64_t after = after_seq;
    while (true) {
      absl::StatusOr<ReplyPtr> r =
          (*c)->Command({"ZRANGEBYSCORE", key, absl::StrCat("(", after), "+inf",
                         "LIMIT", "0", absl::StrCat(kFetchChunk)});
      if (!r.ok()) return r.status();
      if ((*r)->type != REDIS_REPLY_ARRAY) return ReplyError(r->get(), "scan");
      std::vector<std::pair<std::string, int64_t>> refs;
      for (size_t i = 0; i < (*r)->elements; ++i) {
        std::string m = Str((*r)->element[i]);
        size_t colon = m.find(':');
        if (colon == std::string::npos) continue;
        refs.emplace_back(m.substr(0, colon),
                          ParseIntOr0(std::string_view(m).substr(colon + 1)));
      }
      if (refs.empty()) return absl::OkStatus();
      after = refs.back().second;
      bool stopped = false;
      absl::Status st = FetchAndCall(**c, refs, fn, &stopped);
      if (!st.ok() || stopped) return st;
      if ((*r)->elements < kFetchChunk) return absl::OkStatus();
    }
  }

  // ---- Rollups.

  absl::Status ApplyRollups(absl::Span<const RollupRow> deltas, int32_t worker,
                            int64_t checkpoint_seq) override {
    struct Staged {
      std::string index_key;
      std::string member;
      int64_t bucket = 0;
      RollupMetrics m;
      std::string sketch;  // merged deltas
    };
    // Merge the deltas per cell first; a bad sketch changes nothing.
    std::map<std::string, Staged> cells;
    for (const RollupRow& d : deltas) {
      std::string index_key = IndexKey(d.site_id, d.level, d.dim);
      std::string member = absl::StrCat(d.bucket, ":", d.value);
      std::string key = CellKey(index_key, member);
      auto [it, inserted] = cells.try_emplace(std::move(key));
      Staged& s = it->second;
      if (inserted) {
        s.index_key = std::move(index_key);
        s.member = std::move(member);
        s.bucket = d.bucket;
      }
      absl::StatusOr<std::string> merged = MergeSketches(s.sketch, d.visitors);
      if (!merged.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("store: bad visitors sketch in rollup delta: ",
                         merged.status().message()));
      }
      s.sketch = *std::move(merged);
      for (int64_t RollupMetrics::*f : kMetricMembers) s.m.*f += d.m.*f;
    }
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    Conn& conn = **c;
    const std::string cp = absl::StrCat(checkpoint_seq);
    // The index keys (for SADD ruidx), once each.
    std::vector<std::string> indexes;
    for (const auto& [key, s] : cells) indexes.push_back(s.index_key);
    std::sort(indexes.begin(), indexes.end());
    indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
    // The full metrics of this call, kept if its outcome becomes unknown.
    std::map<std::string, RollupMetrics> full;
    for (const auto& [key, s] : cells) full[key] = s.m;
    for (int attempt = 0; attempt < kRollupRetries; ++attempt) {
      // 1. Read the worker's checkpoint and the sketches to merge into, with
      // their versions (one round trip, no WATCH: see kApplyRollupsLua).
      conn.Append({"HGET", "rollup_checkpoints", absl::StrCat(worker)});
      std::vector<const std::string*> need_read;
      for (const auto& [key, s] : cells) {
        if (!s.sketch.empty()) {
          conn.Append({"HMGET", key, "v", "n"});
          need_read.push_back(&key);
        }
      }
      // cell key -> (version read, merged sketch)
      std::map<std::string, std::pair<std::string, std::string>> merged;
      absl::StatusOr<std::vector<ReplyPtr>> rs = conn.Flush();
      if (!rs.ok()) return rs.status();
      const redisReply* cp_reply = (*rs)[0].get();
      if (cp_reply->type != REDIS_REPLY_STRING &&
          cp_reply->type != REDIS_REPLY_NIL) {
        return ReplyError(cp_reply, "read rollup checkpoint");
      }
      const std::string cp_read = Str(cp_reply);
      // An earlier call of this worker whose reply was lost, and that did
      // land (the checkpoint is its): its metrics are already stored, and
      // the engine has put them back into these deltas; send the rest.
      std::optional<std::map<std::string, RollupMetrics>> landed;
      {
        absl::MutexLock l(&in_doubt_mu_);
        auto w = in_doubt_.find(worker);
        if (w != in_doubt_.end()) {
          for (const InDoubt& d : w->second) {
            if (d.checkpoint == cp_read) landed = d.metrics;
          }
        }
      }
      for (size_t i = 0; i < need_read.size(); ++i) {
        const redisReply* r = (*rs)[i + 1].get();
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
          return ReplyError(r, "read rollups");
        }
        const std::string& key = *need_read[i];
        absl::StatusOr<std::string> m =
            MergeSketches(Str(r->element[0]), cells[key].sketch);
        if (!m.ok()) {
          return absl::DataLossError(
              absl::StrCat("store: redis: bad stored sketch in ", key, ": ",
                           m.status().message()));
        }
        std::string version = Str(r->element[1]);
        if (version.empty()) version = "0";
        merged[key] = {std::move(version), *std::move(m)};
      }
      // 2. One script call: check the versions, write everything and the
      // checkpoint, or nothing.
      Args args;
      args.reserve(8 + cells.size() * 12 + indexes.size());
      args.push_back("EVALSHA");
      args.push_back(apply_rollups_.sha);
      args.push_back("0");
      args.push_back(absl::StrCat(worker));
      args.push_back(cp);
      // The checkpoint of a database written before per-worker checkpoints
      // was worker 0's.
      args.push_back(worker == 0 ? "1" : "0");
      args.push_back(absl::StrCat(cells.size()));
      args.push_back(absl::StrCat(indexes.size()));
      args.push_back(cp_read);
      for (const auto& [key, s] : cells) {
        args.push_back(key);
        args.push_back(s.index_key);
        args.push_back(absl::StrCat(s.bucket));
        args.push_back(s.member);
        const RollupMetrics* done = nullptr;
        if (landed.has_value()) {
          auto it = landed->find(key);
          if (it != landed->end()) done = &it->second;
        }
        for (int64_t RollupMetrics::*f : kMetricMembers) {
          args.push_back(
              absl::StrCat(s.m.*f - (done != nullptr ? done->*f : 0)));
        }
        auto mit = merged.find(key);
        if (mit == merged.end()) {
          args.push_back("");
          args.push_back("");
        } else {
          args.push_back(mit->second.first);
          args.push_back(std::move(mit->second.second));
        }
      }
      args.insert(args.end(), indexes.begin(), indexes.end());
      absl::StatusOr<ReplyPtr> r = EvalArgs(conn, apply_rollups_, args);
      if (!r.ok()) {
        if (absl::IsUnavailable(r.status())) {
          // Sent, but whether Redis ran it is unknown (e.g. a timeout while
          // Redis was busy): remember it, see in_doubt_.
          absl::MutexLock l(&in_doubt_mu_);
          in_doubt_[worker].push_back({cp, full});
        }
        return r.status();
      }
      int64_t applied = 0;
      if (!ReplyInt(r->get(), &applied)) {
        return ReplyError(r->get(), "apply rollups");
      }
      if (applied == 1) {
        // The checkpoint moved on: no earlier lost call can land any more
        // (each checks the checkpoint it read).
        absl::MutexLock l(&in_doubt_mu_);
        in_doubt_.erase(worker);
        return absl::OkStatus();
      }
      // A sketch cell changed since it was read: back off a little (with
      // jitter) and retry.
      int64_t jitter = absl::ToUnixNanos(absl::Now()) % 200;
      absl::SleepFor(absl::Microseconds(20 * std::min(attempt, 50) + jitter));
    }
    return absl::AbortedError(
        "store: redis: apply rollups: too many concurrent conflicts");
  }

  absl::StatusOr<int64_t> RollupCheckpoint(int32_t worker) override {
    absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> all =
        ListRollupCheckpoints();
    if (!all.ok()) return all.status();
    for (const auto& [w, seq] : *all) {
      if (w == worker) return seq;
    }
    return 0;
  }

  // HGETALL rollup_checkpoints, plus the pre-per-worker "rollup_checkpoint"
  // string as worker 0's when the hash has no 0 yet.
  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>>
  ListRollupCheckpoints() override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    (*c)->Append({"HGETALL", "rollup_checkpoints"});
    (*c)->Append({"GET", "rollup_checkpoint"});
    absl::StatusOr<std::vector<ReplyPtr>> rs = (*c)->Flush();
    if (!rs.ok()) return rs.status();
    const redisReply* h = (*rs)[0].get();
    const redisReply* legacy = (*rs)[1].get();
    if (h->type != REDIS_REPLY_ARRAY) return ReplyError(h, "checkpoints");
    std::map<int32_t, int64_t> by_worker;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
      int64_t w = 0, seq = 0;
      if (!ReplyInt(h->element[i], &w) || !ReplyInt(h->element[i + 1], &seq)) {
        return ReplyError(h, "checkpoints");
      }
      by_worker[static_cast<int32_t>(w)] = seq;
    }
    if (legacy->type != REDIS_REPLY_NIL && !by_worker.contains(0)) {
      int64_t seq = 0;
      if (!ReplyInt(legacy, &seq)) return ReplyError(legacy, "checkpoint");
      by_worker[0] = seq;
    }
    return std::vector<std::pair<int32_t, int64_t>>(by_worker.begin(),
                                                    by_worker.end());
  }

  absl::Status ScanRollups(
      int64_t site_id, RollupLevel level, int64_t from_bucket,
      int64_t to_bucket, absl::Span<const std::string> dims_in,
      const std::function<void(const RollupRow&)>& fn) override {
    if (dims_in.empty() || from_bucket >= to_bucket) return absl::OkStatus();
    std::vector<std::string> dims(dims_in.begin(), dims_in.end());
    std::sort(dims.begin(), dims.end());
    dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    std::vector<std::string> index_keys;
    for (const std::string& dim : dims) {
      index_keys.push_back(IndexKey(site_id, level, dim));
      (*c)->Append({"ZRANGEBYSCORE", index_keys.back(),
                    absl::StrCat(from_bucket), absl::StrCat("(", to_bucket)});
    }
    absl::StatusOr<std::vector<ReplyPtr>> idx = (*c)->Flush();
    if (!idx.ok()) return idx.status();
    struct Ref {
      size_t dim;
      std::string member;
    };
    std::vector<Ref> refs;
    for (size_t d = 0; d < dims.size(); ++d) {
      const redisReply* r = (*idx)[d].get();
      if (r->type != REDIS_REPLY_ARRAY) return ReplyError(r, "scan rollups");
      for (size_t i = 0; i < r->elements; ++i) {
        refs.push_back({d, Str(r->element[i])});
      }
    }
    std::vector<RollupRow> rows;
    for (size_t start = 0; start < refs.size(); start += kFetchChunk) {
      size_t end = std::min(refs.size(), start + kFetchChunk);
      // HMGET of the fixed fields: no field names on the wire, no map.
      for (size_t i = start; i < end; ++i) {
        (*c)->Append({"HMGET", CellKey(index_keys[refs[i].dim], refs[i].member),
                      "pv", "ev", "vi", "bo", "du", "sp", "v"});
      }
      absl::StatusOr<std::vector<ReplyPtr>> rs = (*c)->Flush();
      if (!rs.ok()) return rs.status();
      for (size_t i = start; i < end; ++i) {
        const redisReply* h = (*rs)[i - start].get();
        if (h->type != REDIS_REPLY_ARRAY || h->elements != 7) {
          return ReplyError(h, "scan rollups");
        }
        bool present = false;  // all nil: removed meanwhile
        for (size_t f = 0; f < 7; ++f) {
          present = present || h->element[f]->type != REDIS_REPLY_NIL;
        }
        if (!present) continue;
        const std::string& m = refs[i].member;
        size_t colon = m.find(':');
        if (colon == std::string::npos) continue;
        RollupRow row;
        row.site_id = site_id;
        row.level = level;
        row.bucket = ParseIntOr0(std::string_view(m).substr(0, colon));
        row.dim = dims[refs[i].dim];
        row.value = m.substr(colon + 1);
        for (size_t f = 0; f < 6; ++f) {
          const redisReply* e = h->element[f];
          int64_t v = 0;
          if (e->type == REDIS_REPLY_STRING &&
              net::ParseInt(std::string_view(e->str, e->len), &v)) {
            row.m.*kMetricMembers[f] = v;
          }
        }
        row.visitors = Str(h->element[6]);
        rows.push_back(std::move(row));
      }
    }
    {
      Lease done = *std::move(c);  // release the connection before calling back
    }
    for (const RollupRow& r : rows) fn(r);
    return absl::OkStatus();
  }

  absl::Status ClearRollups() override {
    return EvalInt(clear_rollups_, {}).status();
  }

  // ---- Retention.

  absl::StatusOr<int64_t> DeleteEventsBefore(int64_t site_id,
                                             int64_t before_ms) override {
    // Chunks of kDeleteChunk events, each one script call (atomic), so that
    // Redis is never blocked for long.
    int64_t total = 0;
    while (true) {
      absl::StatusOr<int64_t> n =
          EvalInt(delete_events_before_,
                  {absl::StrCat(site_id), absl::StrCat(before_ms),
                   absl::StrCat(kDeleteChunk)});
      if (!n.ok()) return n.status();
      total += *n;
      if (*n < static_cast<int64_t>(kDeleteChunk)) return total;
    }
  }

  absl::Status EraseSiteData(int64_t site_id) override {
    absl::StatusOr<int64_t> r =
        EvalInt(erase_site_data_, {absl::StrCat(site_id)});
    if (!r.ok()) return r.status();
    if (*r == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", site_id));
    }
    return absl::OkStatus();
  }

  // ---- Configuration documents.

  absl::StatusOr<ConfigDoc> AddConfigDoc(const ConfigDoc& doc) override {
    absl::Status st = CheckConfigDoc(doc);
    if (!st.ok()) return st;
    ConfigDoc out = doc;
    if (out.updated_ms == 0) out.updated_ms = absl::ToUnixMillis(absl::Now());
    absl::StatusOr<int64_t> id =
        EvalInt(add_doc_, {out.kind, absl::StrCat(out.site_id), out.json,
                           absl::StrCat(out.updated_ms)});
    if (!id.ok()) return id.status();
    if (*id == -1) {
      return absl::NotFoundError(
          absl::StrCat("store: no site with id ", out.site_id));
    }
    out.id = *id;
    return out;
  }

  absl::StatusOr<std::vector<ConfigDoc>> ListConfigDocs(
      std::string_view kind, int64_t site_id) override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    std::vector<int64_t> ids;
    if (site_id == 0) {
      absl::StatusOr<std::vector<std::string>> all = ZRangeAll(**c, "docs");
      if (!all.ok()) return all.status();
      for (const std::string& id : *all) ids.push_back(ParseIntOr0(id));
    } else {
      absl::StatusOr<ReplyPtr> r =
          (*c)->Command({"SMEMBERS", absl::StrCat("site_docs:", site_id)});
      if (!r.ok()) return r.status();
      if ((*r)->type != REDIS_REPLY_ARRAY) {
        return ReplyError(r->get(), "SMEMBERS");
      }
      for (size_t i = 0; i < (*r)->elements; ++i) {
        ids.push_back(ParseIntOr0(Str((*r)->element[i])));
      }
      std::sort(ids.begin(), ids.end());
    }
    for (int64_t id : ids) (*c)->Append({"HGETALL", absl::StrCat("doc:", id)});
    absl::StatusOr<std::vector<ReplyPtr>> rs = (*c)->Flush();
    if (!rs.ok()) return rs.status();
    std::vector<ConfigDoc> out;
    for (size_t i = 0; i < ids.size(); ++i) {
      std::map<std::string, std::string> h = HashMap((*rs)[i].get());
      if (h.empty()) continue;  // removed meanwhile
      if (!kind.empty() && h["kind"] != kind) continue;
      ConfigDoc d;
      d.id = ids[i];
      d.kind = h["kind"];
      d.site_id = ParseIntOr0(h["site_id"]);
      d.json = h["json"];
      d.updated_ms = ParseIntOr0(h["updated_ms"]);
      out.push_back(std::move(d));
    }
    return out;
  }

  absl::Status UpdateConfigDoc(const ConfigDoc& doc) override {
    absl::Status st = CheckConfigDocJson(doc.json);
    if (!st.ok()) return st;
    const int64_t updated_ms =
        doc.updated_ms != 0 ? doc.updated_ms : absl::ToUnixMillis(absl::Now());
    absl::StatusOr<int64_t> r =
        EvalInt(update_doc_,
                {absl::StrCat(doc.id), doc.json, absl::StrCat(updated_ms)});
    if (!r.ok()) return r.status();
    if (*r == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no config doc with id ", doc.id));
    }
    return absl::OkStatus();
  }

  absl::Status DeleteConfigDoc(int64_t id) override {
    absl::StatusOr<int64_t> r = EvalInt(delete_doc_, {absl::StrCat(id)});
    if (!r.ok()) return r.status();
    if (*r == 0) {
      return absl::NotFoundError(
          absl::StrCat("store: no config doc with id ", id));
    }
    return absl::OkStatus();
  }

  // ---- Job ledger (one script call each: atomic across workers).

  absl::StatusOr<JobRun> ClaimJobRun(const JobRun& want,
                                     int64_t stale_before_ms) override {
    absl::Status st = CheckJobRun(want);
    if (!st.ok()) return st;
    Args args = {"EVALSHA", claim_job_.sha, "3"};
    AppendJobKeys(want, &args);
    for (std::string a :
         {want.job, absl::StrCat(want.site_id), want.period, want.holder,
          absl::StrCat(want.updated_ms), absl::StrCat(stale_before_ms)}) {
      args.push_back(std::move(a));
    }
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<ReplyPtr> r = EvalArgs(**c, claim_job_, args);
    if (!r.ok()) return r.status();
    std::optional<JobRun> run = JobRunFromHash(r->get());
    if (!run.has_value()) return ReplyError(r->get(), "claim job run");
    return *std::move(run);
  }

  absl::Status UpdateJobRun(const JobRun& run) override {
    Args args = {"EVALSHA", update_job_.sha, "3"};
    AppendJobKeys(run, &args);
    for (std::string a :
         {run.holder, run.state, run.error, absl::StrCat(run.attempts),
          absl::StrCat(run.updated_ms)}) {
      args.push_back(std::move(a));
    }
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<ReplyPtr> r = EvalArgs(**c, update_job_, args);
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_INTEGER && (*r)->integer == 1) {
      return absl::OkStatus();
    }
    if ((*r)->type != REDIS_REPLY_STRING) {
      return ReplyError(r->get(), "update job run");
    }
    const std::string holder = Str(r->get());
    return absl::FailedPreconditionError(absl::StrCat(
        "store: job run ", run.job, "/", run.site_id, "/", run.period,
        holder.empty()
            ? std::string(" was never claimed")
            : absl::StrCat(" is held by ", holder, ", not ", run.holder)));
  }

  absl::StatusOr<std::vector<JobRun>> ListJobRuns(std::string_view job,
                                                  int64_t limit) override {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    const std::string index =
        job.empty() ? std::string("jrz") : absl::StrCat("jrz:", AV(job));
    absl::StatusOr<ReplyPtr> r = (*c)->Command(
        {"ZREVRANGE", index, "0", absl::StrCat(limit > 0 ? limit - 1 : -1)});
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_ARRAY) return ReplyError(r->get(), "ZRANGE");
    std::vector<std::string> keys;
    for (size_t i = 0; i < (*r)->elements; ++i) {
      keys.push_back(Str((*r)->element[i]));
    }
    for (const std::string& k : keys) (*c)->Append({"HGETALL", k});
    absl::StatusOr<std::vector<ReplyPtr>> rs = (*c)->Flush();
    if (!rs.ok()) return rs.status();
    std::vector<JobRun> out;
    for (const ReplyPtr& h : *rs) {
      std::optional<JobRun> run = JobRunFromHash(h.get());
      if (run.has_value()) out.push_back(*std::move(run));
    }
    return out;
  }

  // Used by Lease.
  absl::StatusOr<Lease> Acquire() {
    std::unique_ptr<Conn> c =
        idle_.Take([](const Conn& conn) { return conn.LooksAlive(); });
    if (c != nullptr) return Lease(this, std::move(c));
    return Connect();
  }

 private:
  explicit RedisStore(Config cfg) : cfg_(std::move(cfg)) {}

  std::vector<Script*> scripts() {
    return {&append_,        &add_site_,        &update_site_,
            &remove_site_,   &add_api_key_,     &revoke_api_key_,
            &put_if_absent_, &delete_salts_,    &clear_rollups_,
            &apply_rollups_, &erase_site_data_, &delete_events_before_,
            &add_doc_,       &update_doc_,      &delete_doc_,
            &claim_job_,     &update_job_};
  }

  // KEYS of the job scripts: the run's hash "jr:{len(job)}:{job}:{site}:
  // {period}", the ledger index "jrz" and the job's index "jrz:{job}".
  static void AppendJobKeys(const JobRun& run, Args* args) {
    args->push_back(absl::StrCat("jr:", run.job.size(), ":", run.job, ":",
                                 run.site_id, ":", run.period));
    args->push_back("jrz");
    args->push_back(absl::StrCat("jrz:", run.job));
  }

  static std::optional<JobRun> JobRunFromHash(const redisReply* r) {
    std::map<std::string, std::string> h = HashMap(r);
    if (h.empty()) return std::nullopt;
    JobRun run;
    run.job = h["job"];
    run.site_id = ParseIntOr0(h["site_id"]);
    run.period = h["period"];
    run.state = h["state"];
    run.holder = h["holder"];
    run.attempts = static_cast<int32_t>(ParseIntOr0(h["attempts"]));
    run.updated_ms = ParseIntOr0(h["updated_ms"]);
    run.error = h["error"];
    return run;
  }

  absl::StatusOr<Lease> Connect() {
    absl::StatusOr<std::unique_ptr<Conn>> c = net::ConnectRedis(
        cfg_.host, cfg_.port, timeval{5, 0},
        timeval{static_cast<time_t>(cfg_.timeout_ms / 1000),
                static_cast<suseconds_t>(cfg_.timeout_ms % 1000 * 1000)},
        "store");
    if (!c.ok()) return c.status();
    std::unique_ptr<Conn> conn = *std::move(c);
    if (!cfg_.password.empty()) {
      absl::StatusOr<ReplyPtr> r =
          conn->Command(net::RedisAuthArgs(cfg_.user, cfg_.password));
      if (!r.ok()) return r.status();
      if ((*r)->type == REDIS_REPLY_ERROR) {
        return absl::PermissionDeniedError(
            absl::StrCat("store: redis: AUTH failed: ", Str(r->get())));
      }
    }
    if (cfg_.db != 0) {
      absl::StatusOr<ReplyPtr> r =
          conn->Command({"SELECT", absl::StrCat(cfg_.db)});
      if (!r.ok()) return r.status();
      if ((*r)->type == REDIS_REPLY_ERROR) {
        return absl::InvalidArgumentError(absl::StrCat(
            "store: redis: SELECT ", cfg_.db, " failed: ", Str(r->get())));
      }
    }
    return Lease(this, std::move(conn));
  }

  absl::Status CheckAof(Conn& c) {
    std::string value;
    absl::StatusOr<ReplyPtr> r = c.Command({"PING"});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) {
      std::string err = Str(r->get());
      if (err.rfind("NOAUTH", 0) == 0) {
        return absl::PermissionDeniedError(absl::StrCat(
            "store: redis at ", cfg_.host, ":", cfg_.port,
            " needs a password: redis://[user]:PASSWORD@host:port/db (", err,
            ")"));
      }
      return ReplyError(r->get(), "PING");
    }
    r = c.Command({"CONFIG", "GET", "appendonly"});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ARRAY && (*r)->elements == 2) {
      value = Str((*r)->element[1]);
    } else {
      // CONFIG may be disabled (managed Redis): ask INFO instead.
      r = c.Command({"INFO", "persistence"});
      if (!r.ok()) return r.status();
      std::string info = Str(r->get());
      if (info.find("aof_enabled:1") != std::string::npos) value = "yes";
      if (info.find("aof_enabled:0") != std::string::npos) value = "no";
    }
    if (value == "yes") return absl::OkStatus();
    std::string msg = absl::StrCat(
        "store: redis at ", cfg_.host, ":", cfg_.port,
        value.empty() ? " does not say whether" : " does not have",
        " the append-only file enabled (appendonly ",
        value.empty() ? "unknown" : value,
        "): acknowledged events would not survive a crash of Redis. Enable "
        "it with `CONFIG SET appendonly yes` (and `appendonly yes` in "
        "redis.conf) with `appendfsync everysec` (may lose up to 1 s on "
        "power loss or OS crash) or `appendfsync always`, or add "
        "?allow_no_aof=1 to the URL to accept the risk");
    if (cfg_.allow_no_aof) {
      std::fprintf(stderr, "warning: %s\n", msg.c_str());
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(msg);
  }

  // Runs a script by sha (args[1]); loads it again after a SCRIPT FLUSH or a
  // server restart (NOSCRIPT).
  absl::StatusOr<ReplyPtr> EvalArgs(Conn& c, const Script& s, Args& args) {
    absl::StatusOr<ReplyPtr> r = c.Command(args);
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR &&
        Str(r->get()).rfind("NOSCRIPT", 0) == 0) {
      args[0] = "EVAL";
      args[1] = s.text;
      r = c.Command(args);
      if (!r.ok()) return r.status();
    }
    if ((*r)->type == REDIS_REPLY_ERROR) return ReplyError(r->get(), "script");
    return r;
  }

  absl::StatusOr<int64_t> EvalInt(const Script& s, Args argv,
                                  std::vector<std::string> keys = {}) {
    Args args = {"EVALSHA", s.sha, absl::StrCat(keys.size())};
    args.insert(args.end(), keys.begin(), keys.end());
    args.insert(args.end(), std::make_move_iterator(argv.begin()),
                std::make_move_iterator(argv.end()));
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<ReplyPtr> r = EvalArgs(**c, s, args);
    if (!r.ok()) return r.status();
    int64_t v = 0;
    if (!ReplyInt(r->get(), &v)) return ReplyError(r->get(), "script result");
    return v;
  }

  absl::StatusOr<std::optional<std::string>> HashGet(const char* hash,
                                                     std::string field) {
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<ReplyPtr> r = (*c)->Command({"HGET", hash, field});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_NIL) return std::optional<std::string>();
    if ((*r)->type != REDIS_REPLY_STRING) return ReplyError(r->get(), "HGET");
    return std::optional<std::string>(Str(r->get()));
  }

  absl::StatusOr<std::string> HashPutIfAbsent(const char* hash,
                                              std::string field,
                                              std::string value) {
    Args args = {"EVALSHA", put_if_absent_.sha, "1",
                 hash,      std::move(field),   std::move(value)};
    absl::StatusOr<Lease> c = Acquire();
    if (!c.ok()) return c.status();
    absl::StatusOr<ReplyPtr> r = EvalArgs(**c, put_if_absent_, args);
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_STRING) {
      return ReplyError(r->get(), "put if absent");
    }
    return Str(r->get());
  }

  absl::StatusOr<std::vector<std::string>> ZRangeAll(Conn& c,
                                                     const std::string& key) {
    absl::StatusOr<ReplyPtr> r = c.Command({"ZRANGE", key, "0", "-1"});
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_ARRAY) return ReplyError(r->get(), "ZRANGE");
    std::vector<std::string> out;
    for (size_t i = 0; i < (*r)->elements; ++i) {
      out.push_back(Str((*r)->element[i]));
    }
    return out;
  }

  static std::optional<ApiKeyRecord> KeyFromHash(int64_t id,
                                                 const redisReply* r) {
    std::map<std::string, std::string> h = HashMap(r);
    if (h.empty()) return std::nullopt;
    ApiKeyRecord k;
    k.id = id;
    k.site_id = ParseIntOr0(h["site_id"]);
    k.name = h["name"];
    k.prefix = h["prefix"];
    k.secret_hash = h["secret_hash"];
    k.created_ms = ParseIntOr0(h["created_ms"]);
    k.revoked_ms = ParseIntOr0(h["revoked_ms"]);
    return k;
  }

  // Fetches the stream entries (site, seq) in order, in pipelined chunks, and
  // calls fn for each; entries removed meanwhile are skipped.
  absl::Status FetchAndCall(
      Conn& c, const std::vector<std::pair<std::string, int64_t>>& refs,
      const std::function<bool(const Event&)>& fn, bool* stopped = nullptr) {
    for (size_t start = 0; start < refs.size(); start += kFetchChunk) {
      size_t end = std::min(refs.size(), start + kFetchChunk);
      for (size_t i = start; i < end; ++i) {
        std::string id = absl::StrCat(refs[i].second, "-0");
        c.Append({"XRANGE", "ev:" + refs[i].first, id, id});
      }
      absl::StatusOr<std::vector<ReplyPtr>> rs = c.Flush();
      if (!rs.ok()) return rs.status();
      std::vector<Event> events;
      events.reserve(end - start);
      for (size_t i = start; i < end; ++i) {
        const redisReply* r = (*rs)[i - start].get();
        if (r->type != REDIS_REPLY_ARRAY) return ReplyError(r, "XRANGE");
        if (r->elements == 0) continue;
        const redisReply* entry = r->element[0];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
        const redisReply* fields = entry->element[1];
        const redisReply* blob = nullptr;
        int64_t worker = 0;  // absent in entries written before workers
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
          const std::string name = Str(fields->element[f]);
          if (name == "e") blob = fields->element[f + 1];
          if (name == "w") worker = ParseIntOr0(Str(fields->element[f + 1]));
        }
        if (blob == nullptr) continue;
        Event e;
        absl::Status st =
            DecodeEvent(std::string_view(blob->str, blob->len), &e);
        if (!st.ok()) return st;
        e.seq = refs[i].second;
        e.worker = static_cast<int32_t>(worker);
        events.push_back(std::move(e));
      }
      for (const Event& e : events) {
        if (!fn(e)) {
          if (stopped != nullptr) *stopped = true;
          return absl::OkStatus();
        }
      }
    }
    return absl::OkStatus();
  }

  const Config cfg_;
  net::IdlePool<Conn> idle_{kMaxIdle};
  Script append_{WithLuaFns<kCheckTypeLuaFn, kAppendLua>(), ""};
  Script add_site_{kAddSiteLua, ""};
  Script update_site_{kUpdateSiteLua, ""};
  Script remove_site_{WithLuaFns<kSiteDataLuaFns, kRemoveSiteLua>(), ""};
  Script add_api_key_{kAddApiKeyLua, ""};
  Script revoke_api_key_{kRevokeApiKeyLua, ""};
  Script put_if_absent_{kHashPutIfAbsentLua, ""};
  Script delete_salts_{kDeleteSaltsLua, ""};
  Script clear_rollups_{kClearRollupsLua, ""};
  Script apply_rollups_{WithLuaFns<kCheckTypeLuaFn, kApplyRollupsLua>(), ""};
  // ApplyRollups calls per worker whose reply was lost since the worker's
  // last successful one: (checkpoint sent, full metrics per cell). The engine
  // puts a failed call's deltas back and sends them again with later ones;
  // if the lost call did land (the stored checkpoint is its), its metrics
  // are subtracted from the resend, so no counter is applied twice (sketch
  // merges are idempotent). A lost call that has not landed cannot land
  // after a later call succeeds: each checks the checkpoint it read.
  struct InDoubt {
    std::string checkpoint;
    std::map<std::string, RollupMetrics> metrics;
  };
  absl::Mutex in_doubt_mu_;
  std::map<int32_t, std::vector<InDoubt>> in_doubt_
      ABSL_GUARDED_BY(in_doubt_mu_);
  Script erase_site_data_{WithLuaFns<kSiteDataLuaFns, kEraseSiteDataLua>(), ""};
  Script delete_events_before_{
      WithLuaFns<kSiteDataLuaFns, kDeleteEventsBeforeLua>(), ""};
  Script add_doc_{kAddDocLua, ""};
  Script update_doc_{kUpdateDocLua, ""};
  Script delete_doc_{kDeleteDocLua, ""};
  Script claim_job_{kClaimJobLua, ""};
  Script update_job_{kUpdateJobLua, ""};
};

Lease::~Lease() {
  if (c_ != nullptr) store_->Release(std::move(c_));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenRedisStore(std::string_view rest) {
  return RedisStore::Open(rest);
}

}  // namespace analytics
