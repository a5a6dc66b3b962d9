// HTTP-layer helpers of analyticsd: trusted proxies and client IPs, rate
// limiting, CSV rendering of query results, structured logs. Glue only: no
// analytics decisions here.
#ifndef ANALYTICS_SERVER_HTTP_SUPPORT_H_
#define ANALYTICS_SERVER_HTTP_SUPPORT_H_

#include <arpa/inet.h>
#include <httplib.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "analytics/coordinator.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace analytics::server {

// ---------------------------------------------------------------- logging --

// One structured line on stderr:
//   ts=2026-01-01T00:00:00.000Z level=info msg="site added" domain=a.com
// Callers never pass IPs, user agents, tokens or keys.
using LogFields =
    std::initializer_list<std::pair<absl::string_view, std::string>>;

inline std::string LogValue(absl::string_view v) {
  bool plain = !v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' ||
        static_cast<unsigned char>(c) < 0x20) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

inline void LogLine(absl::string_view level, absl::string_view msg,
                    LogFields fields = {}) {
  std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " level=", level, " msg=", LogValue(msg));
  for (const auto& [k, v] : fields)
    absl::StrAppend(&line, " ", k, "=", LogValue(v));
  line += '\n';
  std::fputs(line.c_str(), stderr);
}

// ---------------------------------------------------------------- headers --

// What req.get_header_value(name) answers (the first value, in the header
// multimap's order, of a header named `name` in any ASCII case; "" if none),
// without its case-insensitive tree search, which calls libc tolower per
// character compared: a request has a handful of headers, and those whose
// name has another length are skipped at once. Per ingestion request these
// lookups were ~3,000 instructions.
inline const std::string& HeaderValue(const httplib::Request& req,
                                      absl::string_view name) {
  static const std::string* const kEmpty = new std::string();
  for (const auto& [key, value] : req.headers) {
    if (key.size() == name.size() && absl::EqualsIgnoreCase(key, name)) {
      return value;
    }
  }
  return *kEmpty;
}

// Every value of the headers named `name` (any case), in the multimap's
// order: what get_header_value(name, i) answers for i < its count.
inline std::vector<std::string> HeaderValues(const httplib::Request& req,
                                             absl::string_view name) {
  std::vector<std::string> out;
  for (const auto& [key, value] : req.headers) {
    if (key.size() == name.size() && absl::EqualsIgnoreCase(key, name)) {
      out.push_back(value);
    }
  }
  return out;
}

// -------------------------------------------------------- trusted proxies --

// A parsed IPv4 or IPv6 address (IPv4-mapped IPv6 addresses become IPv4).
struct IpAddr {
  bool v6 = false;
  std::array<uint8_t, 16> b{};
};

inline std::optional<IpAddr> ParseIp(absl::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  std::string str(s);
  IpAddr a;
  if (inet_pton(AF_INET, str.c_str(), a.b.data()) == 1) return a;
  if (inet_pton(AF_INET6, str.c_str(), a.b.data()) == 1) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.b.data(), kMapped, 12) == 0) {
      std::array<uint8_t, 16> v4{};
      std::memcpy(v4.data(), a.b.data() + 12, 4);
      a.b = v4;
      return a;
    }
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

// A list of IPs and CIDR ranges ("10.0.0.0/8,::1,fd00::/8").
class ProxyList {
 public:
  static absl::StatusOr<ProxyList> Parse(absl::string_view spec) {
    ProxyList list;
    for (absl::string_view item :
         absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
      item = absl::StripAsciiWhitespace(item);
      absl::string_view addr = item;
      int bits = -1;
      if (size_t slash = item.find('/'); slash != absl::string_view::npos) {
        addr = item.substr(0, slash);
        if (!absl::SimpleAtoi(item.substr(slash + 1), &bits)) bits = -2;
      }
      std::optional<IpAddr> ip = ParseIp(addr);
      const int max_bits = ip && ip->v6 ? 128 : 32;
      if (!ip || bits == -2 || bits > max_bits || bits < -1) {
        return absl::InvalidArgumentError(
            absl::StrCat("trusted proxies: '", item,
                         "' is not an IP address or CIDR range"));
      }
      list.ranges_.push_back({*ip, bits == -1 ? max_bits : bits});
    }
    return list;
  }

  bool empty() const { return ranges_.empty(); }

  bool Contains(absl::string_view ip_text) const {
    if (ranges_.empty()) return false;
    std::optional<IpAddr> ip = ParseIp(ip_text);
    if (!ip) return false;
    for (const Range& r : ranges_) {
      if (r.net.v6 != ip->v6) continue;
      int bits = r.bits;
      bool match = true;
      for (int i = 0; bits > 0; ++i, bits -= 8) {
        const uint8_t mask =
            bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
        if ((ip->b[i] & mask) != (r.net.b[i] & mask)) {
          match = false;
          break;
        }
      }
      if (match) return true;
    }
    return false;
  }

 private:
  struct Range {
    IpAddr net;
    int bits;
  };
  std::vector<Range> ranges_;
};

// One hop of X-Forwarded-For or a Forwarded "for=" value, without quotes,
// brackets or port; "" when it is not an IP address.
inline std::string CleanHop(absl::string_view hop) {
  hop = absl::StripAsciiWhitespace(hop);
  if (hop.size() >= 2 && hop.front() == '"' && hop.back() == '"') {
    hop = hop.substr(1, hop.size() - 2);
  }
  if (ParseIp(hop)) return std::string(hop);
  if (!hop.empty() && hop.front() == '[') {  // [v6] or [v6]:port
    size_t end = hop.find(']');
    if (end != absl::string_view::npos && ParseIp(hop.substr(1, end - 1))) {
      return std::string(hop.substr(1, end - 1));
    }
    return "";
  }
  if (size_t colon = hop.find(':');
      colon != absl::string_view::npos &&
      hop.find(':', colon + 1) == absl::string_view::npos) {
    if (ParseIp(hop.substr(0, colon))) return std::string(hop.substr(0, colon));
  }
  return "";
}

// The hops of a Forwarded header (RFC 7239), left to right.
inline std::vector<std::string> ForwardedFor(absl::string_view header) {
  std::vector<std::string> out;
  for (absl::string_view elem : absl::StrSplit(header, ',')) {
    for (absl::string_view pair : absl::StrSplit(elem, ';')) {
      pair = absl::StripAsciiWhitespace(pair);
      if (pair.size() > 4 &&
          absl::EqualsIgnoreCase(pair.substr(0, 4), "for=")) {
        out.emplace_back(pair.substr(4));
      }
    }
  }
  return out;
}

// The client IP: the socket peer, unless the peer is a trusted proxy, then
// the rightmost hop of X-Forwarded-For (or Forwarded) that is not trusted.
// Unparseable hops stop the walk (the last good address wins).
inline std::string ClientIp(const ProxyList& trusted, const std::string& peer,
                            const std::vector<std::string>& xff_headers,
                            const std::vector<std::string>& forwarded_headers) {
  std::string ip = peer;
  if (std::optional<IpAddr> p = ParseIp(peer);
      p && !p->v6 && peer.find(':') != std::string::npos) {
    ip = peer.substr(peer.rfind(':') + 1);  // ::ffff:1.2.3.4 -> 1.2.3.4
  }
  if (!trusted.Contains(peer)) return ip;
  std::vector<std::string> hops;
  if (!xff_headers.empty()) {
    for (const std::string& h : xff_headers) {
      for (absl::string_view hop : absl::StrSplit(h, ','))
        hops.emplace_back(hop);
    }
  } else {
    for (const std::string& h : forwarded_headers) {
      for (std::string& hop : ForwardedFor(h)) hops.push_back(std::move(hop));
    }
  }
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    std::string hop = CleanHop(*it);
    if (hop.empty()) break;
    ip = hop;
    if (!trusted.Contains(hop)) break;
  }
  return ip;
}

// ------------------------------------------------------------ rate limits --

// Fixed one-minute windows per key, in this process's memory. The map is
// cleared when the window turns, so memory is bounded by one minute's keys.
class RateLimiter {
 public:
  // `shared` (not owned, may be null): count in the coordinator's counters,
  // so that the limit holds across workers; keys are `prefix` plus a hash of
  // the key (no raw IP leaves the process). Null: in this process.
  explicit RateLimiter(int64_t per_minute,
                       analytics::Coordinator* shared = nullptr,
                       std::string prefix = "")
      : limit_(per_minute), shared_(shared), prefix_(std::move(prefix)) {}

  bool enabled() const { return limit_ > 0; }

  // Takes `n` units for `key`: 0 when allowed, else the seconds until the
  // window resets (for Retry-After).
  int Take(absl::string_view key, int64_t n) {
    if (limit_ <= 0) return 0;
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    const int64_t window = now / 60;
    const int retry = static_cast<int>(60 - now % 60);
    if (shared_ != nullptr) return TakeShared(key, n, now, retry);
    Shard& shard = shards_[std::hash<std::string_view>{}(
                               std::string_view(key.data(), key.size())) %
                           kShards];
    absl::MutexLock l(&shard.mu);
    if (shard.window != window) {
      shard.counts.clear();
      shard.window = window;
    }
    int64_t& used = shard.counts[key];
    if (used + n > limit_) return retry;
    used += n;
    return 0;
  }

 private:
  // One round trip; a denied take is given back (like the local path, which
  // does not count it). An unreachable coordinator lets events through: the
  // engine then refuses them itself (503).
  int TakeShared(absl::string_view key, int64_t n, int64_t now_s, int retry) {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a: a stable key hash
    for (char c : key) {
      h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
    }
    const std::string k = absl::StrCat(prefix_, absl::Hex(h));
    absl::StatusOr<std::vector<int64_t>> after =
        shared_->AddToCounters({k}, {n}, absl::Minutes(1), now_s * 1000);
    if (!after.ok() || after->empty()) return 0;
    if ((*after)[0] <= limit_) return 0;
    (void)shared_->AddToCounters({k}, {-n}, absl::Minutes(1), now_s * 1000);
    return retry;
  }

  static constexpr size_t kShards = 16;
  struct Shard {
    absl::Mutex mu;
    int64_t window = 0;
    absl::flat_hash_map<std::string, int64_t> counts;
  };
  const int64_t limit_;
  analytics::Coordinator* const shared_;
  const std::string prefix_;
  std::array<Shard, kShards> shards_;
};

// -------------------------------------------------------------------- CSV --

inline std::string CsvField(absl::string_view v) {
  if (v.find_first_of(",\"\r\n") == absl::string_view::npos) {
    return std::string(v);
  }
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

inline std::string CsvValue(const rapidjson::Value& v) {
  if (v.IsNull()) return "";
  if (v.IsString())
    return CsvField(absl::string_view(v.GetString(), v.GetStringLength()));
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return CsvField(buf.GetString());
}

// A v2 query response as CSV (RFC 4180, CRLF): a header row of the
// dimension names then the metric names (from the response's "query",
// else from the request), then one row per result.
inline absl::StatusOr<std::string> V2ResponseToCsv(absl::string_view response,
                                                   absl::string_view request) {
  rapidjson::Document resp, q;
  resp.Parse(response.data(), response.size());
  if (resp.HasParseError() || !resp.IsObject()) {
    return absl::InternalError("query: response is not a JSON object");
  }
  const rapidjson::Value* query = nullptr;
  if (auto it = resp.FindMember("query");
      it != resp.MemberEnd() && it->value.IsObject()) {
    query = &it->value;
  } else {
    q.Parse(request.data(), request.size());
    if (q.IsObject()) query = &q;
  }
  std::vector<std::string> header;
  for (const char* key : {"dimensions", "metrics"}) {
    if (query == nullptr) break;
    auto it = query->FindMember(key);
    if (it == query->MemberEnd() || !it->value.IsArray()) continue;
    for (const auto& name : it->value.GetArray())
      header.push_back(CsvValue(name));
  }
  std::string out;
  for (size_t i = 0; i < header.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", header[i]);
  }
  out += "\r\n";
  auto results = resp.FindMember("results");
  if (results == resp.MemberEnd() || !results->value.IsArray()) return out;
  for (const auto& row : results->value.GetArray()) {
    std::vector<std::string> cells;
    for (const char* key : {"dimensions", "metrics"}) {
      if (!row.IsObject()) break;
      auto it = row.FindMember(key);
      if (it == row.MemberEnd() || !it->value.IsArray()) continue;
      for (const auto& v : it->value.GetArray()) cells.push_back(CsvValue(v));
    }
    for (size_t i = 0; i < cells.size(); ++i) {
      absl::StrAppend(&out, i ? "," : "", cells[i]);
    }
    out += "\r\n";
  }
  return out;
}

// httplib's task queue with a bounded backlog of accepted connections waiting
// for a worker thread (httplib::ThreadPool's is unbounded). queued() is what
// the server sheds load on (503 + Retry-After, --max-queued); when
// `hard_limit` connections wait, enqueue() blocks the accept loop, so further
// clients wait in the kernel's listen backlog instead of in our memory.
class BoundedThreadPool : public httplib::TaskQueue {
 public:
  BoundedThreadPool(size_t threads, size_t hard_limit)
      : hard_limit_(hard_limit < 1 ? 1 : hard_limit) {
    for (size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  ~BoundedThreadPool() override = default;

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return jobs_.size() < hard_limit_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    queued_.store(jobs_.size(), std::memory_order_relaxed);
    not_empty_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      shutdown_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Connections accepted but not yet picked up by a worker thread.
  size_t queued() const { return queued_.load(std::memory_order_relaxed); }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> l(mu_);
        not_empty_.wait(l, [&] { return !jobs_.empty() || shutdown_; });
        if (shutdown_ && jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        queued_.store(jobs_.size(), std::memory_order_relaxed);
      }
      not_full_.notify_one();
      fn();
    }
  }

  const size_t hard_limit_;
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<std::function<void()>> jobs_;
  std::atomic<size_t> queued_{0};
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace analytics::server

#endif  // ANALYTICS_SERVER_HTTP_SUPPORT_H_
