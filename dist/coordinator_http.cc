#include "dist/coordinator_http.h"

#include <fmt/format.h>
#include <httplib.h>
#include <openssl/rand.h>

#include <charconv>
#include <chrono>

#include "core/error.h"
#include "core/stopwatch.h"
#include "dist/coordinator_address.h"
#include "dist/coordinator_service.h"
#include "dist/dashboard_api.h"
#include "dist/dashboard_files.h"
#include "dist/prometheus_metrics.h"

namespace convoy {

namespace {

constexpr const char* kCookie = "convoy_session";
// Pages may load only the dashboard's own files and talk only to this server.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const EmbeddedFile& embedded(std::string_view path) {
  for (const EmbeddedFile& f : dashboard_files()) {
    if (f.path == path) return f;
  }
  throw Error::internal(fmt::format("the dashboard has no file '{}'", path));
}

void serve(httplib::Response& response, const EmbeddedFile& file, int status = 200) {
  response.status = status;
  response.set_content(file.body.data(), file.body.size(), std::string(file.content_type).c_str());
}

// The session id in the request's cookie, or "".
std::string session_of(const httplib::Request& request) {
  const std::string cookies = request.get_header_value("Cookie");
  const std::string key = std::string(kCookie) + "=";
  for (size_t at = 0; at < cookies.size();) {
    while (at < cookies.size() && (cookies[at] == ' ' || cookies[at] == ';')) ++at;
    const size_t end = std::min(cookies.find(';', at), cookies.size());
    if (cookies.compare(at, key.size(), key) == 0) {
      return cookies.substr(at + key.size(), end - at - key.size());
    }
    at = end;
  }
  return "";
}

void send_json(httplib::Response& response, const nlohmann::json& body, int status = 200) {
  response.status = status;
  // Strings from workers (hosts, causes, command lines) need not be UTF-8: replaced, never thrown.
  response.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                       "application/json");
}

// Runs an API handler; what it throws becomes a JSON error with the matching HTTP status.
template <typename F>
void api(httplib::Response& response, F&& body) {
  try {
    body();
  } catch (const Error& e) {
    const int status = e.kind() == ErrorKind::kInvalidInput ? 400
                       : e.kind() == ErrorKind::kNotFound   ? 404
                                                            : 500;
    send_json(response, {{"error", e.what()}}, status);
  } catch (const std::exception&) {
    send_json(response, {{"error", "internal error"}}, 500);
  }
}

}  // namespace

bool CoordinatorHttp::authorized(const httplib::Request& request) {
  if (options_.auth_token.empty()) return true;
  const std::string header = request.get_header_value("Authorization");
  if (header.rfind("Bearer ", 0) == 0 && same_secret(header.substr(7), options_.auth_token)) {
    return true;
  }
  const std::string session = session_of(request);
  if (session.empty()) return false;
  std::lock_guard lock(sessions_mutex_);
  const auto it = sessions_.find(session);
  if (it == sessions_.end()) return false;
  if (wall_seconds() - it->second > kSessionSeconds) {
    sessions_.erase(it);
    return false;
  }
  return true;
}

std::string CoordinatorHttp::new_session() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw Error::internal("no random bytes for a session");
  std::string id;
  for (const unsigned char b : bytes) id += fmt::format("{:02x}", b);
  std::lock_guard lock(sessions_mutex_);
  if (sessions_.size() >= kMaxSessions) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second < oldest->second) oldest = it;
    }
    sessions_.erase(oldest);
  }
  sessions_[id] = wall_seconds();
  return id;
}

void CoordinatorHttp::end_session(const httplib::Request& request) {
  std::lock_guard lock(sessions_mutex_);
  sessions_.erase(session_of(request));
}

CoordinatorHttp::CoordinatorHttp(CoordinatorService& service, const CoordinatorHttpOptions& options)
    : options_(options) {
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
  const bool tls = !options.tls_cert_file.empty();
  if (tls) {
    server_ = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                   options.tls_key_file.c_str());
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  if (!server_->is_valid()) throw Error::invalid_input("cannot use the TLS certificate or key");
  server_->set_payload_max_length(8 << 10);  // a sign-in form is all anyone may send
  // Responses go out in several writes: without this, Nagle's algorithm and the client's delayed
  // acknowledgement held a 44 KB /metrics back by 40 ms (measured: 44 ms a scrape, 1-2 ms with).
  server_->set_tcp_nodelay(true);
  // Anything but convoy::Error (caught by the handlers) becomes a plain 500, without its text.
  server_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
        response.status = 500;
        response.set_content("internal error\n", "text/plain; charset=utf-8");
      });

  server_->set_pre_routing_handler([this](const httplib::Request& request,
                                          httplib::Response& response) {
    response.set_header("Cache-Control", "no-store");
    response.set_header("X-Content-Type-Options", "nosniff");
    response.set_header("Content-Security-Policy", kContentSecurityPolicy);
    response.set_header("Referrer-Policy", "no-referrer");
    response.set_header("X-Frame-Options", "DENY");
    // Bodies are read before handlers run, and cpp-httplib bounds them only by a numeric
    // Content-Length: refuse chunked or compressed bodies and bodies without a length, so
    // that no one (the sign-in form is open to all) can make the server read without end.
    const bool has_body =
        request.has_header("Content-Length") && request.get_header_value("Content-Length") != "0";
    if (request.has_header("Transfer-Encoding") || request.has_header("Content-Encoding") ||
        (request.method == "POST" && !request.has_header("Content-Length")) ||
        (has_body && request.method != "POST")) {
      response.status = 400;
      response.set_content("bodies are taken only on POST, with a Content-Length, uncompressed\n",
                           "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (request.path == "/healthz" || (request.path == "/signin" && request.method == "POST") ||
        authorized(request)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    response.set_header("WWW-Authenticate", "Bearer");
    // A browser asking for a page gets the sign-in form; programs get a plain refusal.
    const bool page = request.method == "GET" &&
                      request.get_header_value("Accept").find("text/html") != std::string::npos;
    if (page) {
      serve(response, embedded("/signin.html"), 401);
    } else {
      response.status = 401;
      response.set_content("a bearer token is required\n", "text/plain; charset=utf-8");
    }
    return httplib::Server::HandlerResponse::Handled;
  });

  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain; charset=utf-8");
  });
  server_->Get("/metrics", [&service](const httplib::Request&, httplib::Response& response) {
    response.set_content(prometheus_metrics(service.snapshot(), wall_seconds()),
                         "text/plain; version=0.0.4; charset=utf-8");
  });

  // The page and its files.
  server_->Get("/", [](const httplib::Request&, httplib::Response& response) {
    serve(response, embedded("/index.html"));
  });
  for (const EmbeddedFile& file : dashboard_files()) {
    server_->Get(
        std::string(file.path),
        [&file](const httplib::Request&, httplib::Response& response) { serve(response, file); });
  }
  server_->Post(
      "/signin", [this, tls](const httplib::Request& request, httplib::Response& response) {
        // The token only in the form's body: a query string ends up in logs.
        const bool in_query = request.target.find('?') != std::string::npos;
        if (options_.auth_token.empty() ||
            (!in_query && same_secret(request.get_param_value("token"), options_.auth_token))) {
          if (!options_.auth_token.empty()) {
            response.set_header("Set-Cookie",
                                fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict{}", kCookie,
                                            new_session(), tls ? "; Secure" : ""));
          }
          response.status = 303;
          response.set_header("Location", "/");
          return;
        }
        serve(response, embedded("/signin.html"), 401);
      });
  server_->Post("/signout", [this](const httplib::Request& request, httplib::Response& response) {
    end_session(request);
    response.set_header("Set-Cookie",
                        fmt::format("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", kCookie));
    response.status = 303;
    response.set_header("Location", "/");
  });

  // The data.
  server_->Get("/api/jobs", [&service](const httplib::Request&, httplib::Response& response) {
    api(response, [&] { send_json(response, dashboard_jobs(service)); });
  });
  server_->Get(R"(/api/jobs/([^/]+))",
               [&service](const httplib::Request& request, httplib::Response& response) {
                 api(response, [&] {
                   const nlohmann::json job = dashboard_job(service, request.matches[1]);
                   if (job.is_null()) {
                     throw Error::not_found(fmt::format("no job '{}'", request.matches[1].str()));
                   }
                   send_json(response, job);
                 });
               });
  server_->Get(R"(/api/jobs/([^/]+)/checkpoints/([^/]+))",
               [&service](const httplib::Request& request, httplib::Response& response) {
                 api(response, [&] {
                   pb::JobStatus known;
                   if (!service.job_status(request.matches[1], &known)) {
                     throw Error::not_found(fmt::format("no job '{}'", request.matches[1].str()));
                   }
                   std::shared_ptr<OpenCheckpoint> file =
                       service.open_checkpoint(request.matches[1], request.matches[2]);
                   response.set_header("Content-Disposition",
                                       fmt::format("attachment; filename=\"{}-{}.ckpt\"",
                                                   file->info.job_id(), file->info.name()));
                   response.set_content_provider(
                       file->info.size(), "application/octet-stream",
                       [file](size_t offset, size_t length, httplib::DataSink& sink) {
                         // Runs outside cpp-httplib's exception handling: nothing may escape.
                         // A failed or short read ends the response early.
                         try {
                           std::string buffer(std::min<size_t>(length, 1 << 20), '\0');
                           const size_t n = file->read(offset, buffer.data(), buffer.size());
                           return n > 0 && sink.write(buffer.data(), n);
                         } catch (const std::exception&) {
                           return false;
                         }
                       });
                 });
               });

  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) throw Error::invalid_input(fmt::format("cannot listen on '{}'", options.listen));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() does nothing to a server that is not running yet: wait for it, so that the destructor
  // cannot miss it (and wait forever in join()).
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

CoordinatorHttp::~CoordinatorHttp() {
  server_->stop();
  thread_.join();
}

}  // namespace convoy
