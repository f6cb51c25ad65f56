// The coordinator's HTTP side (GNU libmicrohttpd), beside its gRPC port: `convoy coordinator
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
//
// Each connection is served by a thread of its own, none pooled, so a slow or idle client holds
// only its own: a few clients sending their headers a byte at a time cannot keep the others
// waiting (cpp-httplib, used before, gave each connection one of its 8 threads, and 8 such clients
// held the whole port). At most kMaxConnections at once (more wait to be accepted) and
// kMaxConnectionsPerAddress from one address (more are closed at once); a connection that sends
// and receives nothing for kIdleSeconds is closed; headers are at most kHeaderBytes; request
// bodies only on POST, with a Content-Length of at most kMaxBodyBytes.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

struct MHD_Daemon;

namespace convoy {

class CoordinatorService;

struct CoordinatorHttpOptions {
  std::string listen;                       // host:port; port 0 picks a free one
  std::string auth_token;                   // empty: open
  std::string tls_cert_file, tls_key_file;  // both set: HTTPS
};

class CoordinatorHttp {
 public:
  // Serves from threads of its own until destroyed. Throws Error (invalid input) when `listen`
  // cannot be bound or the server cannot start (with libmicrohttpd's reason).
  CoordinatorHttp(CoordinatorService& service, const CoordinatorHttpOptions& options);
  ~CoordinatorHttp();
  CoordinatorHttp(const CoordinatorHttp&) = delete;
  CoordinatorHttp& operator=(const CoordinatorHttp&) = delete;

  int port() const { return port_; }

  static constexpr size_t kMaxSessions = 1024;  // the oldest goes first
  static constexpr double kSessionSeconds = 12 * 3600;
  static constexpr unsigned kMaxConnections = 512;
  static constexpr unsigned kMaxConnectionsPerAddress = 64;
  static constexpr unsigned kIdleSeconds = 30;
  static constexpr size_t kHeaderBytes = 64 << 10;
  static constexpr size_t kMaxBodyBytes = 8 << 10;  // a sign-in form is all anyone may send

  // One request and its answer, as the handlers see them (coordinator_http.cc).
  struct Request;
  struct Reply;

 private:
  friend struct HttpCallbacks;  // libmicrohttpd's C callbacks
  // Answers a whole request (the server's threads call it; any of them at once).
  void answer(const Request& request, Reply& reply);
  bool authorized(const Request& request);
  std::string new_session();
  void end_session(const Request& request);

  CoordinatorService& service_;
  CoordinatorHttpOptions options_;
  bool tls_ = false;
  MHD_Daemon* daemon_ = nullptr;
  std::atomic<bool> started_{false};  // MHD_start_daemon returned
  std::mutex start_errors_mutex_;
  std::string start_errors_;  // what libmicrohttpd said while starting
  int port_ = 0;
  std::mutex sessions_mutex_;
  std::map<std::string, double> sessions_;  // id -> when it was opened (wall seconds)
};

}  // namespace convoy
