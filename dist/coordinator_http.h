// The coordinator's HTTP side (cpp-httplib), beside its gRPC port: `convoy coordinator
// --http-listen HOST:PORT`.
//
//   /healthz                          "ok", open to all (probes carry no token)
//   /metrics                          Prometheus' text format (dist/prometheus_metrics.h)
//   /                                 the dashboard (dist/dashboard/, embedded in the binary)
//   /api/jobs, /api/jobs/<id>         its data as JSON (dist/dashboard_api.h)
//   /api/jobs/<id>/checkpoints/<name> a stored checkpoint's bytes ("latest": the newest valid)
//   POST /signin, POST /signout       the browser's sign-in with the token
//
// With a token, every path but /healthz needs it: `Authorization: Bearer <token>` (programs,
// Prometheus) or a session cookie that POST /signin sets for the right token (browsers; the cookie
// lasts until the browser closes, at most 12 hours; HttpOnly, SameSite=Strict, Secure under TLS).
// Without either, a browser asking for a page gets the sign-in form, anything else 401. With a
// certificate and key, HTTPS with the gRPC port's certificate. Read-only: nothing here changes a
// job. Data is never cached; pages carry a Content-Security-Policy that allows only the
// dashboard's own script and style files (no inline script).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

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

  static constexpr size_t kMaxSessions = 1024;  // the oldest goes first
  static constexpr double kSessionSeconds = 12 * 3600;

 private:
  bool authorized(const httplib::Request& request);
  std::string new_session();
  void end_session(const httplib::Request& request);

  CoordinatorHttpOptions options_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::mutex sessions_mutex_;
  std::map<std::string, double> sessions_;  // id -> when it was opened (wall seconds)
  std::thread thread_;
};

}  // namespace convoy
