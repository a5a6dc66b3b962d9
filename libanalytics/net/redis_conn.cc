// See redis_conn.h.
#include "libanalytics/net/redis_conn.h"

#include <poll.h>
#include <pthread.h>

#include <charconv>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libanalytics/core/strings.h"

namespace analytics::net {

bool ParseInt(std::string_view s, int64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string Str(const redisReply* r) {
  if (r == nullptr || r->str == nullptr) return "";
  return std::string(r->str, r->len);
}

bool ReplyInt(const redisReply* r, int64_t* v) {
  if (r == nullptr) return false;
  if (r->type == REDIS_REPLY_INTEGER) {
    *v = r->integer;
    return true;
  }
  if (r->type == REDIS_REPLY_STRING) {
    return ParseInt(std::string_view(r->str, r->len), v);
  }
  return false;
}

ScopedNoSigpipe::ScopedNoSigpipe() {
  sigemptyset(&pipe_);
  sigaddset(&pipe_, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
}

ScopedNoSigpipe::~ScopedNoSigpipe() {
  if (!was_pending_) {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

bool RedisConn::LooksAlive() const {
  if (broken()) return false;
  pollfd p{c_->fd, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

void RedisConn::Append(const RedisArgs& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAppendCommandArgv(c_, static_cast<int>(argv.size()), argv.data(),
                             lens.data()) != REDIS_OK) {
    broken_ = true;
  }
  ++pending_;
}

absl::StatusOr<std::vector<ReplyPtr>> RedisConn::Flush() {
  std::vector<ReplyPtr> out;
  out.reserve(pending_);
  int n = pending_;
  pending_ = 0;
  if (broken()) return IoError();
  ScopedNoSigpipe no_sigpipe;
  for (int i = 0; i < n; ++i) {
    void* r = nullptr;
    if (redisGetReply(c_, &r) != REDIS_OK || r == nullptr) return IoError();
    out.emplace_back(static_cast<redisReply*>(r));
  }
  return out;
}

absl::StatusOr<ReplyPtr> RedisConn::Command(const RedisArgs& args) {
  Append(args);
  absl::StatusOr<std::vector<ReplyPtr>> r = Flush();
  if (!r.ok()) return r.status();
  return std::move((*r)[0]);
}

absl::StatusOr<std::vector<ReplyPtr>> RedisConn::Pipeline(
    const std::vector<RedisArgs>& cmds) {
  if (broken()) return IoError();
  for (const RedisArgs& args : cmds) Append(args);
  return Flush();
}

absl::Status RedisConn::IoError() {
  broken_ = true;
  return absl::UnavailableError(
      absl::StrCat(who_, ": redis: connection error: ",
                   c_->err != 0 ? c_->errstr : "connection lost"));
}

absl::StatusOr<std::unique_ptr<RedisConn>> ConnectRedis(const std::string& host,
                                                        int port,
                                                        timeval connect_timeout,
                                                        timeval io_timeout,
                                                        std::string_view who) {
  redisContext* ctx =
      redisConnectWithTimeout(host.c_str(), port, connect_timeout);
  if (ctx == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(AV(who), ": redis: out of memory connecting"));
  }
  auto conn = std::make_unique<RedisConn>(ctx, who);
  if (ctx->err != 0) {
    return absl::UnavailableError(
        absl::StrCat(AV(who), ": redis: cannot connect to ", host, ":", port,
                     ": ", ctx->errstr));
  }
  redisSetTimeout(ctx, io_timeout);
  return conn;
}

RedisUrlError ParseRedisUrl(std::string_view s, RedisUrl* c) {
  auto fail = [](RedisUrlError::Kind kind, std::string_view piece) {
    return RedisUrlError{kind, std::string(piece)};
  };
  size_t at = s.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view cred = s.substr(0, at);
    s = s.substr(at + 1);
    size_t colon = cred.find(':');
    if (colon == std::string_view::npos) {
      c->password = std::string(cred);
    } else {
      c->user = std::string(cred.substr(0, colon));
      c->password = std::string(cred.substr(colon + 1));
    }
  }
  size_t slash = s.find('/');
  if (slash != std::string_view::npos) {
    std::string_view db = s.substr(slash + 1);
    s = s.substr(0, slash);
    int64_t v = 0;
    if (!db.empty()) {
      if (!ParseInt(db, &v) || v < 0 || v > 1000000) {
        return fail(RedisUrlError::kBadDb, db);
      }
      c->db = static_cast<int>(v);
    }
  }
  // host, host:port, [v6], [v6]:port
  std::string_view port_str;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) {
      return fail(RedisUrlError::kUnclosedBracket, s);
    }
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return fail(RedisUrlError::kBadHost, s);
      port_str = s.substr(close + 2);
    }
    s = s.substr(1, close - 1);
  } else {
    size_t colon = s.rfind(':');
    if (colon != std::string_view::npos) {
      port_str = s.substr(colon + 1);
      s = s.substr(0, colon);
    }
  }
  if (!port_str.empty()) {
    int64_t port = 0;
    if (!ParseInt(port_str, &port) || port <= 0 || port > 65535) {
      return fail(RedisUrlError::kBadPort, port_str);
    }
    c->port = static_cast<int>(port);
  }
  if (s.empty()) return fail(RedisUrlError::kNoHost, s);
  c->host = std::string(s);
  return {};
}

RedisArgs RedisAuthArgs(const std::string& user, const std::string& password) {
  RedisArgs auth = {"AUTH"};
  if (!user.empty()) auth.push_back(user);
  auth.push_back(password);
  return auth;
}

}  // namespace analytics::net
