// net/redis_conn: the Redis client plumbing shared by the Redis store
// (store/redis_store.cc) and the Redis coordinator
// (coord/redis_coordinator.cc). Owns: parsing the common part of a redis://
// URL, reply ownership and decoding (ReplyPtr, Str, ReplyInt), SIGPIPE
// suppression around socket I/O, one pipelining connection (RedisConn),
// opening it (TCP connect + I/O timeout) and the AUTH command. It knows no
// key layout, URL parameters, pooling or retry policy: those stay with each
// backend (pooling: net/idle_pool.h). Its messages start with the caller's
// `who` ("store" or "coordinator").
#ifndef LIBANALYTICS_NET_REDIS_CONN_H_
#define LIBANALYTICS_NET_REDIS_CONN_H_

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace analytics::net {

using RedisArgs = std::vector<std::string>;

// A whole decimal int64 (no sign slack, no trailing bytes).
bool ParseInt(std::string_view s, int64_t* v);

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// The string of a reply ("" for none).
std::string Str(const redisReply* r);

// An integer reply (or a decimal string reply) as int64.
bool ReplyInt(const redisReply* r, int64_t* v);

// Blocks SIGPIPE in this thread while writing to a socket whose peer may be
// gone (hiredis writes with send(…, 0)), and discards a SIGPIPE raised
// meanwhile, so that an embedding program that does not ignore SIGPIPE is not
// killed; the write error itself is reported as Unavailable.
class ScopedNoSigpipe {
 public:
  ScopedNoSigpipe();
  ~ScopedNoSigpipe();
  ScopedNoSigpipe(const ScopedNoSigpipe&) = delete;
  ScopedNoSigpipe& operator=(const ScopedNoSigpipe&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

// One connection (owns the redisContext). Not thread-safe.
class RedisConn {
 public:
  RedisConn(redisContext* c, std::string_view who) : c_(c), who_(who) {}
  ~RedisConn() { redisFree(c_); }
  RedisConn(const RedisConn&) = delete;
  RedisConn& operator=(const RedisConn&) = delete;

  bool broken() const { return broken_ || c_->err != 0; }

  // True when an idle connection looks usable: nothing is readable on it (a
  // closed or killed connection reads EOF).
  bool LooksAlive() const;

  // Queues a command (sent by Flush).
  void Append(const RedisArgs& args);

  // Sends the appended commands and reads all their replies. Error replies
  // are returned as replies; I/O errors as Unavailable (and the connection
  // is then broken for good).
  absl::StatusOr<std::vector<ReplyPtr>> Flush();

  // Append + Flush of one command, or of several in one round trip.
  absl::StatusOr<ReplyPtr> Command(const RedisArgs& args);
  absl::StatusOr<std::vector<ReplyPtr>> Pipeline(
      const std::vector<RedisArgs>& cmds);

  // Marks the connection broken; "<who>: redis: connection error: …".
  absl::Status IoError();

 private:
  redisContext* c_;
  std::string who_;
  bool broken_ = false;
  int pending_ = 0;
};

// Connects to host:port and sets the I/O timeout. Errors (Unavailable):
// "<who>: redis: out of memory connecting",
// "<who>: redis: cannot connect to HOST:PORT: <reason>".
absl::StatusOr<std::unique_ptr<RedisConn>> ConnectRedis(const std::string& host,
                                                        int port,
                                                        timeval connect_timeout,
                                                        timeval io_timeout,
                                                        std::string_view who);

// "[[user]:password@]host[:port][/db]" (host may be "[v6]"), without any
// "?query" (each backend reads its own parameters).
struct RedisUrl {
  std::string host;
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
};
// What is wrong with a URL; `piece` is the offending part (kBadDb: the
// database, kBadHost/kUnclosedBracket: the host part, kBadPort: the port).
// Each backend words its own message from it.
struct RedisUrlError {
  enum Kind { kNone, kBadDb, kUnclosedBracket, kBadHost, kBadPort, kNoHost };
  Kind kind = kNone;
  std::string piece;
};
RedisUrlError ParseRedisUrl(std::string_view s, RedisUrl* out);

// {"AUTH", [user,] password}.
RedisArgs RedisAuthArgs(const std::string& user, const std::string& password);

}  // namespace analytics::net

#endif  // LIBANALYTICS_NET_REDIS_CONN_H_
