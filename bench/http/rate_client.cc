// Open-loop, fixed-rate HTTP/1.1 load for latency at a given request rate
// (wrk2 is not packaged in Debian). C connections (keep-alive), each a thread
// sending POST PATH at RATE/C per second on a fixed schedule; a request's
// latency runs from its *scheduled* send time to the end of its response, so
// a stalled server is not hidden (no coordinated omission). Prints
//   sent=N errors=N achieved_rps=X p50_ms=X p90_ms=X p99_ms=X max_ms=X
// Usage: rate_client HOST PORT PATH RATE SECONDS CONNECTIONS
// Bodies: Plausible pageviews with varying URLs, as bench/http/post.lua.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

int Connect(const char* host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host, &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads one response (headers + Content-Length body); false on error.
bool ReadResponse(int fd, std::string& buf) {
  for (;;) {
    size_t end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t len = 0;
      std::string head = buf.substr(0, end);
      for (auto& c : head) c = static_cast<char>(std::tolower(c));
      size_t cl = head.find("content-length:");
      if (cl != std::string::npos)
        len = std::strtoul(head.c_str() + cl + 15, nullptr, 10);
      if (buf.size() >= end + 4 + len) {
        bool ok = buf.compare(0, 10, "HTTP/1.1 2") == 0;
        buf.erase(0, end + 4 + len);
        return ok;
      }
    }
    char tmp[4096];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s HOST PORT PATH RATE SECONDS CONNECTIONS\n",
                 argv[0]);
    return 2;
  }
  const char* host = argv[1];
  const int port = std::atoi(argv[2]);
  const std::string path = argv[3];
  const double rate = std::atof(argv[4]);
  const double seconds = std::atof(argv[5]);
  const int conns = std::atoi(argv[6]);
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(conns / rate));
  // Connect first (a SYN dropped by a full listen backlog costs a 1 s
  // retransmit, which is not what is being measured).
  std::vector<int> fds(conns);
  for (int c = 0; c < conns; ++c) fds[c] = Connect(host, port);
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto stop = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(seconds));
  std::vector<std::vector<double>> lat(conns);
  std::atomic<long> errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      int fd = fds[c];
      std::string buf;
      // Connections are staggered over one period.
      auto next = start + period * c / conns;
      for (long i = 0; next < stop; ++i, next += period) {
        std::this_thread::sleep_until(next);
        if (fd < 0) fd = Connect(host, port);
        if (fd < 0) {
          ++errors;
          continue;
        }
        std::string body =
            "{\"n\":\"pageview\",\"u\":\"https://bench.test/blog/post-" +
            std::to_string((c * 7919 + i) % 500) +
            "?utm_source=newsletter\",\"d\":\"bench.test\",\"r\":"
            "\"https://www.google.com/\",\"w\":1440}";
        std::string req =
            "POST " + path + " HTTP/1.1\r\nHost: " + host +
            "\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
            "AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
            "Content-Type: text/plain\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
        if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) !=
                static_cast<ssize_t>(req.size()) ||
            !ReadResponse(fd, buf)) {
          ++errors;
          close(fd);
          fd = -1;
          buf.clear();
          continue;
        }
        lat[c].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - next)
                .count());
      }
      if (fd >= 0) close(fd);
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto q = [&](double p) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1,
                                      static_cast<size_t>(p * all.size()))];
  };
  std::printf(
      "sent=%zu errors=%ld achieved_rps=%.0f p50_ms=%.2f p90_ms=%.2f "
      "p99_ms=%.2f max_ms=%.2f\n",
      all.size(), errors.load(), all.size() / seconds, q(0.50), q(0.90),
      q(0.99), all.empty() ? 0.0 : all.back());
  return errors.load() > 0 ? 1 : 0;
}
