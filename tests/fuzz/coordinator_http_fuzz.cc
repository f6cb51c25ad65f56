// The coordinator's HTTP side (dashboard, JSON API, checkpoint downloads, sign-in, /metrics):
// each input is the raw bytes a client sends on one connection, paths, query strings, headers,
// cookies and bodies alike. The server is the real one, on 127.0.0.1 with a token, over a
// coordinator that already holds a job (seeded_coordinator.h). The input is sent, the sending
// side closed, and the answer read to its end: a server that never answers fails the target.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dist/coordinator_http.h"
#include "seeded_coordinator.h"

namespace {

convoy::CoordinatorHttpOptions http_options() {
  convoy::CoordinatorHttpOptions options;
  options.listen = "127.0.0.1:0";
  options.auth_token = convoy::fuzz::kToken;
  return options;
}

struct Target {
  convoy::fuzz::SeededCoordinator coordinator{"http"};
  convoy::CoordinatorHttp http{coordinator.server->service(), http_options()};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target* const target = new Target;  // never destroyed, like the process's threads
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(target->http.port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The server must answer and close within this; longer is a finding.
  const timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  // libFuzzer's timer signal can interrupt connect, which then completes in the background.
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    pollfd writable{fd, POLLOUT, 0};
    int error = errno;
    if (error == EINTR) {
      while (::poll(&writable, 1, 10000) < 0 && errno == EINTR) {
      }
      socklen_t length = sizeof error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    }
    if (error != 0) {
      std::fprintf(stderr, "connect: %s\n", std::strerror(error));
      std::abort();
    }
  }
  // The server may answer and close before reading everything (a refused body): a failed send is
  // not a finding, a missing answer is.
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      std::fprintf(stderr, "the HTTP server held the connection open for 10 s\n");
      std::abort();
    }
    break;  // closed (or reset after refusing the rest)
  }
  ::close(fd);
  return 0;
}
