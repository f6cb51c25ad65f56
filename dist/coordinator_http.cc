#include "dist/coordinator_http.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/read_file.h"
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

}  // namespace

// What a handler sends: a status, headers and a body -- text built here, one of the dashboard's
// files (never freed), or a stored checkpoint read from its open file as it is sent.
struct CoordinatorHttp::Reply {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;
  std::string body;
  std::string_view static_body;
  std::shared_ptr<OpenCheckpoint> file;

  void text(unsigned code, std::string content, std::string type = "text/plain; charset=utf-8") {
    status = code;
    body = std::move(content);
    content_type = std::move(type);
    static_body = {};
    file.reset();
  }
  void header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

struct CoordinatorHttp::Request {
  MHD_Connection* connection;
  std::string method;  // HEAD is answered as GET (the server leaves the body out)
  std::string path;    // percent-decoded, without the query
  std::string body;

  // A header's value (names in any case), or nullptr.
  const char* header(const char* name) const {
    return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
  }
  std::string header_value(const char* name) const {
    const char* value = header(name);
    return value == nullptr ? "" : value;
  }
  bool has_query() const {
    return MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, nullptr, nullptr) > 0;
  }
  // A field of an application/x-www-form-urlencoded body (the first of that name), or "".
  std::string form_value(std::string_view name) const {
    for (size_t at = 0; at <= body.size();) {
      const size_t end = std::min(body.find('&', at), body.size());
      const std::string_view field = std::string_view(body).substr(at, end - at);
      const size_t equals = field.find('=');
      if (field.substr(0, equals) == name && equals != std::string_view::npos) {
        std::string value(field.substr(equals + 1));
        std::replace(value.begin(), value.end(), '+', ' ');
        value.resize(MHD_http_unescape(value.data()));
        return value;
      }
      at = end + 1;
    }
    return "";
  }
};

namespace {

void serve(CoordinatorHttp::Reply& reply, const EmbeddedFile& file, unsigned status = 200) {
  reply.status = status;
  reply.static_body = file.body;
  reply.content_type = std::string(file.content_type);
}

// The session id in the request's cookie, or "".
std::string session_of(const CoordinatorHttp::Request& request) {
  const std::string cookies = request.header_value("Cookie");
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

void send_json(CoordinatorHttp::Reply& reply, const nlohmann::json& body, unsigned status = 200) {
  // Strings from workers (hosts, causes, command lines) need not be UTF-8: replaced, never thrown.
  reply.text(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
             "application/json");
}

// Runs an API handler; what it throws becomes a JSON error with the matching HTTP status.
template <typename F>
void api(CoordinatorHttp::Reply& reply, F&& body) {
  try {
    body();
  } catch (const Error& e) {
    const unsigned status = e.kind() == ErrorKind::kInvalidInput ? 400
                            : e.kind() == ErrorKind::kNotFound   ? 404
                                                                 : 500;
    send_json(reply, {{"error", e.what()}}, status);
  } catch (const std::exception&) {
    send_json(reply, {{"error", "internal error"}}, 500);
  }
}

// Why a request's body is refused before a byte of it is read (a status and its text), or
// nullopt. Bodies are taken only
// on POST, with a Content-Length of at most kMaxBodyBytes, neither chunked nor compressed, so
// that no one (the sign-in form is open to all) can make the server read without end.
std::optional<std::pair<unsigned, std::string>> refused_body(
    const CoordinatorHttp::Request& request) {
  const char* length = request.header("Content-Length");
  const bool has_body = length != nullptr && std::string_view(length) != "0";
  if (request.header("Transfer-Encoding") != nullptr ||
      request.header("Content-Encoding") != nullptr ||
      (request.method == "POST" && length == nullptr) || (has_body && request.method != "POST")) {
    return std::pair(400u, std::string("bodies are taken only on POST, with a Content-Length, "
                                       "uncompressed\n"));
  }
  if (has_body) {
    uint64_t bytes = 0;
    const std::string_view text(length);
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bytes);
    if (error != std::errc() || end != text.data() + text.size() ||
        bytes > CoordinatorHttp::kMaxBodyBytes) {
      return std::pair(413u, fmt::format("a request body may have at most {} bytes\n",
                                         CoordinatorHttp::kMaxBodyBytes));
    }
  }
  return std::nullopt;
}

// A listening TCP socket on host:port (port 0: one the system picks), or -1. Bound here rather
// than by the server so that the address is resolved once and the port read back.
int listen_on(std::string host, int port, int* bound_port, bool* ipv6) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints,
                    &found) != 0) {
    return -1;
  }
  int fd = -1;
  for (const addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
      ::close(fd);
      fd = -1;
      continue;
    }
    *ipv6 = a->ai_family == AF_INET6;
  }
  ::freeaddrinfo(found);
  if (fd < 0) return -1;
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  *bound_port = ntohs(address.ss_family == AF_INET6
                          ? reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port
                          : reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  return fd;
}

// A stored checkpoint's bytes, as the server asks for them.
ssize_t read_checkpoint(void* file, uint64_t offset, char* out, size_t bytes) {
  try {
    const size_t n =
        (*static_cast<std::shared_ptr<OpenCheckpoint>*>(file))->read(offset, out, bytes);
    return n > 0 ? static_cast<ssize_t>(n) : MHD_CONTENT_READER_END_WITH_ERROR;
  } catch (const std::exception&) {
    return MHD_CONTENT_READER_END_WITH_ERROR;  // a failed or short read ends the response early
  }
}

void free_checkpoint(void* file) {
  delete static_cast<std::shared_ptr<OpenCheckpoint>*>(file);
}

MHD_Result queue(MHD_Connection* connection, const CoordinatorHttp::Reply& reply) {
  MHD_Response* response = nullptr;
  if (reply.file != nullptr) {
    auto* file = new std::shared_ptr<OpenCheckpoint>(reply.file);
    response = MHD_create_response_from_callback(reply.file->info.size(), 64 << 10,
                                                 &read_checkpoint, file, &free_checkpoint);
    if (response == nullptr) delete file;
  } else if (!reply.static_body.empty()) {
    response = MHD_create_response_from_buffer(reply.static_body.size(),
                                               const_cast<char*>(reply.static_body.data()),
                                               MHD_RESPMEM_PERSISTENT);
  } else {
    response = MHD_create_response_from_buffer(
        reply.body.size(), const_cast<char*>(reply.body.data()), MHD_RESPMEM_MUST_COPY);
  }
  if (response == nullptr) return MHD_NO;  // out of memory: the connection is closed
  MHD_add_response_header(response, "Cache-Control", "no-store");
  MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(response, "Content-Security-Policy", kContentSecurityPolicy);
  MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(response, "X-Frame-Options", "DENY");
  if (!reply.content_type.empty()) {
    MHD_add_response_header(response, "Content-Type", reply.content_type.c_str());
  }
  for (const auto& [name, value] : reply.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  const MHD_Result queued = MHD_queue_response(connection, reply.status, response);
  MHD_destroy_response(response);
  return queued;
}

// A request while its body arrives (libmicrohttpd's per-request pointer).
struct Pending {
  std::string body;
  bool answered = false;  // refused before its body was read
};

}  // namespace

bool CoordinatorHttp::authorized(const Request& request) {
  if (options_.auth_token.empty()) return true;
  const std::string header = request.header_value("Authorization");
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

void CoordinatorHttp::end_session(const Request& request) {
  std::lock_guard lock(sessions_mutex_);
  sessions_.erase(session_of(request));
}

void CoordinatorHttp::answer(const Request& request, Reply& reply) {
  const std::string& path = request.path;
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (!(path == "/healthz" || (path == "/signin" && post) || authorized(request))) {
    reply.header("WWW-Authenticate", "Bearer");
    // A browser asking for a page gets the sign-in form; programs get a plain refusal.
    if (get && request.header_value("Accept").find("text/html") != std::string::npos) {
      serve(reply, embedded("/signin.html"), 401);
    } else {
      reply.text(401, "a bearer token is required\n");
    }
    return;
  }
  if (get && path == "/healthz") return reply.text(200, "ok\n");
  if (get && path == "/metrics") {
    return reply.text(200, prometheus_metrics(service_.snapshot(), wall_seconds()),
                      "text/plain; version=0.0.4; charset=utf-8");
  }
  // The page and its files.
  if (get && path == "/") return serve(reply, embedded("/index.html"));
  for (const EmbeddedFile& file : dashboard_files()) {
    if (get && path == file.path) return serve(reply, file);
  }
  if (post && path == "/signin") {
    // The token only in the form's body: a query string ends up in logs.
    if (options_.auth_token.empty() ||
        (!request.has_query() && same_secret(request.form_value("token"), options_.auth_token))) {
      if (!options_.auth_token.empty()) {
        reply.header("Set-Cookie", fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict{}",
                                               kCookie, new_session(), tls_ ? "; Secure" : ""));
      }
      reply.text(303, "");
      reply.header("Location", "/");
      return;
    }
    return serve(reply, embedded("/signin.html"), 401);
  }
  if (post && path == "/signout") {
    end_session(request);
    reply.header("Set-Cookie",
                 fmt::format("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", kCookie));
    reply.text(303, "");
    reply.header("Location", "/");
    return;
  }
  // The data: /api/jobs, /api/jobs/<id>, /api/jobs/<id>/checkpoints/<name>.
  constexpr std::string_view kJobs = "/api/jobs";
  if (get && path == kJobs) return api(reply, [&] { send_json(reply, dashboard_jobs(service_)); });
  std::vector<std::string> parts;
  if (get && path.starts_with(std::string(kJobs) + "/")) {
    for (size_t at = kJobs.size() + 1; at <= path.size();) {
      const size_t end = std::min(path.find('/', at), path.size());
      parts.push_back(path.substr(at, end - at));
      at = end + 1;
    }
  }
  const bool named = std::none_of(parts.begin(), parts.end(), [](auto& p) { return p.empty(); });
  if (named && parts.size() == 1) {
    return api(reply, [&] {
      const nlohmann::json job = dashboard_job(service_, parts[0]);
      if (job.is_null()) throw Error::not_found(fmt::format("no job '{}'", parts[0]));
      send_json(reply, job);
    });
  }
  if (named && parts.size() == 3 && parts[1] == "checkpoints") {
    return api(reply, [&] {
      pb::JobStatus known;
      if (!service_.job_status(parts[0], &known)) {
        throw Error::not_found(fmt::format("no job '{}'", parts[0]));
      }
      reply.file = service_.open_checkpoint(parts[0], parts[2]);
      reply.content_type = "application/octet-stream";
      reply.header("Content-Disposition",
                   fmt::format("attachment; filename=\"{}-{}.ckpt\"", reply.file->info.job_id(),
                               reply.file->info.name()));
    });
  }
  reply.text(404, "not found\n");
}

// libmicrohttpd calls these, from its threads.
struct HttpCallbacks {
  static MHD_Result on_request(void* http, MHD_Connection* connection, const char* url,
                               const char* method, const char*, const char* upload_data,
                               size_t* upload_data_size, void** state) noexcept {
    try {
      return handle(*static_cast<CoordinatorHttp*>(http), connection, url, method, upload_data,
                    upload_data_size, state);
    } catch (...) {  // out of memory: nothing may escape into C; the connection is closed
      return MHD_NO;
    }
  }

  static MHD_Result handle(CoordinatorHttp& self, MHD_Connection* connection, const char* url,
                           const char* method, const char* upload_data, size_t* upload_data_size,
                           void** state) {
    CoordinatorHttp::Request request{connection, method, url, ""};
    if (request.method == "HEAD") request.method = "GET";
    if (*state == nullptr) {  // the headers are in, the body (if any) is not
      auto* pending = new Pending;
      *state = pending;  // freed by on_completed, whatever happens next
      if (const auto refused = refused_body(request)) {
        pending->answered = true;
        CoordinatorHttp::Reply reply;
        reply.text(refused->first, refused->second);
        return queue(connection, reply);
      }
      return MHD_YES;
    }
    auto* pending = static_cast<Pending*>(*state);
    if (*upload_data_size > 0) {  // at most Content-Length bytes, checked above
      if (!pending->answered) pending->body.append(upload_data, *upload_data_size);
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (pending->answered) return MHD_YES;
    pending->answered = true;
    request.body = std::move(pending->body);
    CoordinatorHttp::Reply reply;
    try {
      self.answer(request, reply);
    } catch (const std::exception&) {
      reply = CoordinatorHttp::Reply();
      reply.text(500, "internal error\n");  // its text may say more than a client should see
    }
    return queue(connection, reply);
  }

  // libmicrohttpd's messages: why starting failed (the last one, for the error), then nothing (a
  // client's protocol errors are answered, not logged).
  static void on_log(void* http, const char* format, va_list args) noexcept {
    auto& self = *static_cast<CoordinatorHttp*>(http);
    if (self.started_) return;
    char line[512];
    std::vsnprintf(line, sizeof line, format, args);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '.')) text.pop_back();
    std::lock_guard lock(self.start_errors_mutex_);
    self.start_errors_ = std::move(text);
  }

  static void on_completed(void*, MHD_Connection*, void** state,
                           MHD_RequestTerminationCode) noexcept {
    delete static_cast<Pending*>(*state);
    *state = nullptr;
  }
};

CoordinatorHttp::CoordinatorHttp(CoordinatorService& service, const CoordinatorHttpOptions& options)
    : service_(service), options_(options) {
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
  tls_ = !options.tls_cert_file.empty();
  // Read by libmicrohttpd while it starts (GnuTLS keeps its own copy).
  const std::string cert = tls_ ? read_file(options.tls_cert_file) : "";
  const std::string key = tls_ ? read_file(options.tls_key_file) : "";

  bool ipv6 = false;
  struct OwnedFd {
    int fd;
    ~OwnedFd() {
      if (fd >= 0) ::close(fd);
    }
  } listening{listen_on(options.listen.substr(0, colon), port, &port_, &ipv6)};
  if (listening.fd < 0) {
    throw Error::invalid_input(fmt::format("cannot listen on '{}'", options.listen));
  }
  // The server gets a copy of the socket: it closes that one when it stops, and on some of the
  // ways starting can fail; this one is closed here in every case.
  const int served = ::fcntl(listening.fd, F_DUPFD_CLOEXEC, 0);
  if (served < 0) throw Error::from_errno(errno, "cannot serve HTTP");
  std::vector<MHD_OptionItem> settings = {
      {MHD_OPTION_LISTEN_SOCKET, served, nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, nullptr},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxConnectionsPerAddress, nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, kIdleSeconds, nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(kHeaderBytes), nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&HttpCallbacks::on_completed),
       nullptr},
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&HttpCallbacks::on_log), this},
  };
  if (tls_) {
    settings.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(key.c_str())});
    settings.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(cert.c_str())});
  }
  settings.push_back({MHD_OPTION_END, 0, nullptr});
  // A thread per connection, none pooled: a slow client holds its own thread only, and a long
  // answer (a checkpoint hashed before it is served) keeps no one else waiting. poll(2), not
  // select: a coordinator with many gRPC clients has descriptors beyond select's 1,024.
  const unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
                         MHD_USE_ERROR_LOG | (tls_ ? MHD_USE_TLS : 0) | (ipv6 ? MHD_USE_IPv6 : 0);
  daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &HttpCallbacks::on_request, this,
                             MHD_OPTION_ARRAY, settings.data(), MHD_OPTION_END);
  started_ = true;
  if (daemon_ == nullptr) {
    std::lock_guard lock(start_errors_mutex_);
    throw Error::invalid_input(fmt::format("cannot serve HTTP{} on '{}'{}", tls_ ? "S" : "",
                                           options.listen,
                                           start_errors_.empty() ? "" : ": " + start_errors_));
  }
}

CoordinatorHttp::~CoordinatorHttp() {
  MHD_stop_daemon(daemon_);  // closes the connections and the listening socket
}

}  // namespace convoy
