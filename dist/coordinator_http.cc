#include "dist/coordinator_http.h"

#include <fmt/format.h>
#include <httplib.h>

#include <charconv>

#include "core/error.h"
#include "core/stopwatch.h"
#include "dist/coordinator_service.h"

namespace convoy {

namespace {

// The same token check as the gRPC side: equal length and bytes, in time independent of where
// they differ.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

CoordinatorHttp::CoordinatorHttp(CoordinatorService& service,
                                 const CoordinatorHttpOptions& options) {
  const size_t colon = options.listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const char* first = options.listen.data() + colon + 1;
    const char* last = options.listen.data() + options.listen.size();
    if (std::from_chars(first, last, port).ptr != last || first == last) port = -1;
  }
  if (port < 0 || port > 65535 || colon == 0) {
    throw Error::invalid_input(fmt::format("expected host:port, got '{}'", options.listen));
  }
  const std::string host = options.listen.substr(0, colon);
  if (!options.tls_cert_file.empty()) {
    server_ = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                   options.tls_key_file.c_str());
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  if (!server_->is_valid()) throw Error::invalid_input("cannot use the TLS certificate or key");
  const std::string token = options.auth_token;
  server_->set_pre_routing_handler(
      [token](const httplib::Request& request, httplib::Response& response) {
        response.set_header("Cache-Control", "no-store");
        response.set_header("X-Content-Type-Options", "nosniff");
        if (request.path == "/healthz" || token.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        const std::string header = request.get_header_value("Authorization");
        if (header.rfind("Bearer ", 0) == 0 && same_secret(header.substr(7), token)) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        response.status = 401;
        response.set_header("WWW-Authenticate", "Bearer");
        response.set_content("a bearer token is required\n", "text/plain; charset=utf-8");
        return httplib::Server::HandlerResponse::Handled;
      });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain; charset=utf-8");
  });
  server_->Get("/metrics", [&service](const httplib::Request&, httplib::Response& response) {
    response.set_content(prometheus_metrics(service.snapshot(), wall_seconds()),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) throw Error::invalid_input(fmt::format("cannot listen on '{}'", options.listen));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

CoordinatorHttp::~CoordinatorHttp() {
  server_->stop();
  thread_.join();
}

}  // namespace convoy
