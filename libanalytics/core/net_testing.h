// Test helper: a loopback TCP port that is free now (for tests that start a
// server of their own). Owns nothing else.
#ifndef ANALYTICS_CORE_NET_TESTING_H_
#define ANALYTICS_CORE_NET_TESTING_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace analytics {

// A port the kernel just handed out for 127.0.0.1 (0 if none): unlike a
// random one, never a port in use (e.g. a client's ephemeral port).
inline int FreeLoopbackPort() {
  int port = 0;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace analytics

#endif  // ANALYTICS_CORE_NET_TESTING_H_
