// The coordinator's HTTP side (cpp-httplib), beside its gRPC port: `convoy coordinator
// --http-listen HOST:PORT`.
//
//   /healthz   "ok", open to all (probes carry no token)
//   /metrics   Prometheus' text format (dist/prometheus_metrics.h)
//
// With a token, every other path needs `Authorization: Bearer <token>` (401 otherwise); with a
// certificate and key, HTTPS with the gRPC port's certificate. Read-only: only GET is served.
// Responses are never cached.
#pragma once

#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace convoy {

class CoordinatorService;

struct CoordinatorHttpOptions {
  std::string listen;                       // host:port; port 0 picks a free one
  std::string auth_token;                   // empty: open
  std::string tls_cert_file, tls_key_file;  // both set: HTTPS
};

class CoordinatorHttp {
 public:
  // Serves in a thread of its own until destroyed. Throws Error (invalid input) when `listen`
  // cannot be bound.
  CoordinatorHttp(CoordinatorService& service, const CoordinatorHttpOptions& options);
  ~CoordinatorHttp();
  CoordinatorHttp(const CoordinatorHttp&) = delete;
  CoordinatorHttp& operator=(const CoordinatorHttp&) = delete;

  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace convoy
