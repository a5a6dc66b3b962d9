// The floor for analyticsd's ingestion: a bare cpp-httplib server answering
// POST /api/event with 202 "ok" and doing nothing else, configured like
// analyticsd (same thread-pool size, TCP_NODELAY, keep-alive max count and
// timeouts, body limit). Used by bench/http/run.sh.
//   bare_server PORT THREADS
#include <httplib.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT THREADS\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const size_t threads = static_cast<size_t>(std::atoi(argv[2]));
  httplib::Server svr;
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(10000);
  svr.set_keep_alive_timeout(5);
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  svr.set_payload_max_length(64 * 1024);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.Post("/api/event", [](const httplib::Request&, httplib::Response& res) {
    res.status = 202;
    res.set_content("ok", "text/plain; charset=utf-8");
  });
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  if (!svr.listen("127.0.0.1", port)) {
    std::fprintf(stderr, "bare_server: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  return 0;
}
