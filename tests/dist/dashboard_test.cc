// The coordinator's dashboard: its JSON API and headers checked directly with an HTTP client
// against a real job, and the page itself in Debian's chromium (tests/browser/dashboard.mjs),
// which saves a screenshot to <build>/artifacts/dashboard.png.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "dist/coordinator_http.h"
#include "dist/sha256.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

constexpr const char* kToken = "a-token-for-the-dashboard";

// A TCP connection to 127.0.0.1:port, or -1.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
  ::close(fd);
  return -1;
}

// Sends `request` as it is on a connection of its own (for what an HTTP client library would not
// send) and returns the answer's status line ("" if none came within `seconds`).
std::string raw_status(int port, const std::string& request, int seconds = 10) {
  const int fd = connect_to(port);
  std::string answer;
  if (fd >= 0 && ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                     static_cast<ssize_t>(request.size())) {
    timeval timeout{.tv_sec = seconds, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char buffer[512];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) answer.assign(buffer, static_cast<size_t>(n));
  }
  if (fd >= 0) ::close(fd);
  return answer.substr(0, answer.find("\r\n"));
}

class Dashboard : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.file("token")) << kToken << "\n";
    grpc_port_ = testing::free_port();
    http_port_ = testing::free_port();
    coordinator_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{testing::convoy_binary(), "coordinator", "--listen",
                                 fmt::format("127.0.0.1:{}", grpc_port_), "--http-listen",
                                 fmt::format("127.0.0.1:{}", http_port_), "--state-dir",
                                 dir_.file("state"), "--auth-token-file", dir_.file("token")},
        dir_.file("c.out"), dir_.file("c.err"));
    for (int i = 0; i < 400 && testing::read_file(dir_.file("c.out")).empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ASSERT_NE(testing::read_file(dir_.file("c.out")).find("HTTP on port"), std::string::npos)
        << testing::read_file(dir_.file("c.err"));
  }
  // A 2-rank job that runs until the test ends (it is killed then): short epochs, so that
  // evaluations and checkpoints (after each epoch) come every few seconds, yet not so often that
  // retention retires a listed checkpoint before the page can fetch it.
  void start_job(const std::string& job) {
    job_ = std::make_unique<testing::ChildProcess>(
        testing::mpirun_convoy(
            2, {"train", "--model", "lenet5", "--epochs", "1000", "--limit-train", "20000",
                "--limit-test", "500", "--threads", "1", "--coordinator",
                fmt::format("127.0.0.1:{}", grpc_port_), "--auth-token-file", dir_.file("token"),
                "--job-id", job, "--progress", "none"}),
        dir_.file("job.out"), dir_.file("job.err"));
  }
  httplib::Headers bearer() const { return {{"Authorization", fmt::format("Bearer {}", kToken)}}; }
  nlohmann::json get_json(httplib::Client& http, const std::string& path) {
    auto r = http.Get(path.c_str(), bearer());
    if (!r || r->status != 200) return nullptr;
    return nlohmann::json::parse(r->body);
  }

  testing::TempDir dir_;
  int grpc_port_ = 0, http_port_ = 0;
  std::unique_ptr<testing::ChildProcess> coordinator_, job_;
};

TEST_F(Dashboard, ApiAnswersWhatTheJobReported) {
  start_job("api-job");
  httplib::Client http("127.0.0.1", http_port_);
  nlohmann::json job;
  for (int i = 0; i < 1200; ++i) {
    job = get_json(http, "/api/jobs/api-job");
    if (!job.is_null() && !job["evaluation"].is_null() && !job["checkpoints"].empty() &&
        job["ranks"].size() == 2) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(job.is_null()) << testing::read_file(dir_.file("job.err"));
  ASSERT_FALSE(job["evaluation"].is_null()) << job.dump();
  EXPECT_EQ(job["state"], "running");
  EXPECT_EQ(job["world_size"], 2);
  // 1000 epochs of 20000 / (2 x 64) = 156 steps.
  EXPECT_EQ(job["total_steps"], 156000);
  const nlohmann::json& command = job["command_line"];
  ASSERT_GE(command.size(), 3u);
  EXPECT_EQ(command[1], "train");
  EXPECT_NE(std::find(command.begin(), command.end(), "api-job"), command.end());
  for (const nlohmann::json& r : job["ranks"]) {
    EXPECT_EQ(r["state"], "alive");
    EXPECT_EQ(r["records_dropped"], 0);
    EXPECT_GE(r["allreduce_share"].get<double>(), 0.0);
    EXPECT_LE(r["allreduce_share"].get<double>(), 1.0);
  }
  // The series: steps increasing, the default schedule's rate (0.05 at the start, decaying).
  const nlohmann::json& series = job["series"];
  ASSERT_FALSE(series["step"].empty());
  EXPECT_EQ(series["step"].size(), series["loss"].size());
  for (size_t i = 1; i < series["step"].size(); ++i) {
    EXPECT_GT(series["step"][i].get<int64_t>(), series["step"][i - 1].get<int64_t>());
  }
  EXPECT_NEAR(series["learning_rate"][0].get<double>(), 0.05, 1e-6);
  // The evaluation: a 10 x 10 confusion matrix over the 500 test images; F1 from P and R.
  const nlohmann::json& e = job["evaluation"];
  ASSERT_EQ(e["confusion"].size(), 10u);
  int64_t total = 0, correct = 0;
  for (size_t t = 0; t < 10; ++t) {
    ASSERT_EQ(e["confusion"][t].size(), 10u);
    for (size_t p = 0; p < 10; ++p) {
      total += e["confusion"][t][p].get<int64_t>();
      if (t == p) correct += e["confusion"][t][p].get<int64_t>();
    }
  }
  EXPECT_EQ(total, 500);
  EXPECT_NEAR(double(correct) / 500, e["test_accuracy"].get<double>(), 1e-9);
  for (const nlohmann::json& c : e["per_class"]) {
    const double p = c["precision"], r = c["recall"];
    EXPECT_NEAR(c["f1"].get<double>(), p + r > 0 ? 2 * p * r / (p + r) : 0, 1e-12);
  }

  // A checkpoint through its link: the listed bytes (size and SHA-256). Retention may retire the
  // listed one before it is fetched (the job keeps storing new ones): then list again.
  nlohmann::json listed;
  auto fetch = [&] {
    listed = get_json(http, "/api/jobs/api-job")["checkpoints"].back();
    return http.Get(
        fmt::format("/api/jobs/api-job/checkpoints/{}", listed["name"].get<std::string>()).c_str(),
        bearer());
  };
  auto file = fetch();
  for (int attempt = 0; attempt < 10 && file && file->status == 404; ++attempt) file = fetch();
  ASSERT_TRUE(file);
  ASSERT_EQ(file->status, 200);
  EXPECT_EQ(file->body.size(), listed["size"].get<uint64_t>());
  Sha256 hash;
  hash.update(file->body);
  EXPECT_EQ(hash.hex(), listed["sha256"]);
  EXPECT_EQ(file->get_header_value("Content-Type"), "application/octet-stream");

  // The list agrees.
  const nlohmann::json jobs = get_json(http, "/api/jobs");
  ASSERT_EQ(jobs["jobs"].size(), 1u);
  EXPECT_EQ(jobs["jobs"][0]["job_id"], "api-job");

  // Refusals: no token, an unknown job, a job id that is not one, a checkpoint that is not there.
  auto none = http.Get("/api/jobs");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  auto page = http.Get("/", httplib::Headers{{"Accept", "text/html"}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 401);
  EXPECT_NE(page->body.find("name=\"token\""), std::string::npos);  // the sign-in form
  auto unknown = http.Get("/api/jobs/nobody", bearer());
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(nlohmann::json::parse(unknown->body)["error"], "no job 'nobody'");
  auto missing = http.Get("/api/jobs/api-job/checkpoints/step-999", bearer());
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto post = http.Post("/api/jobs", bearer(), "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200);  // read-only

  // Headers: the page's policy allows no inline script; data is never cached.
  auto index = http.Get("/", bearer());
  ASSERT_TRUE(index);
  ASSERT_EQ(index->status, 200);
  EXPECT_EQ(index->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const std::string csp = index->get_header_value("Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(index->body.find("<script>"), std::string::npos);  // no inline script in the page
  auto api = http.Get("/api/jobs", bearer());
  ASSERT_TRUE(api);
  EXPECT_EQ(api->get_header_value("Cache-Control"), "no-store");
  EXPECT_EQ(api->get_header_value("Content-Type"), "application/json");

  // The browser's sign-in: a wrong token is refused, the right one gives a session cookie that
  // opens the data, and signing out closes it.
  auto wrong = http.Post("/signin", "token=nope", "application/x-www-form-urlencoded");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->get_header_value("Set-Cookie"), "");
  auto right =
      http.Post("/signin", fmt::format("token={}", kToken), "application/x-www-form-urlencoded");
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 303);
  const std::string cookie = right->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  const std::string session = cookie.substr(0, cookie.find(';'));
  auto with_cookie = http.Get("/api/jobs", httplib::Headers{{"Cookie", session}});
  ASSERT_TRUE(with_cookie);
  EXPECT_EQ(with_cookie->status, 200);
  auto forged = http.Get("/api/jobs", httplib::Headers{{"Cookie", "convoy_session=00ff"}});
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 401);
  auto out = http.Post("/signout", httplib::Headers{{"Cookie", session}}, "", "text/plain");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 303);
  auto after = http.Get("/api/jobs", httplib::Headers{{"Cookie", session}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 401);
  // The token is not taken from a query string (it would end up in logs).
  auto query = http.Post(fmt::format("/signin?token={}", kToken).c_str(), "",
                         "application/x-www-form-urlencoded");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->status, 401);
}

// The sign-in form is open to all: no body may make the server read without end.
TEST_F(Dashboard, BodiesThatCouldExhaustTheServerAreRefused) {
  const std::string form = "Content-Type: application/x-www-form-urlencoded\r\n";
  EXPECT_EQ(raw_status(http_port_, "POST /signin HTTP/1.1\r\nHost: x\r\n" + form +
                                       "Transfer-Encoding: chunked\r\n\r\n"),
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(raw_status(http_port_, "POST /signin HTTP/1.1\r\nHost: x\r\n" + form +
                                       "Content-Encoding: gzip\r\nContent-Length: 10\r\n\r\n"),
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(raw_status(http_port_, "POST /signin HTTP/1.1\r\nHost: x\r\n" + form + "\r\n"),
            "HTTP/1.1 400 Bad Request");  // no length: it would read until the connection closes
  EXPECT_EQ(raw_status(http_port_, "POST /signin HTTP/1.1\r\nHost: x\r\n" + form +
                                       "Content-Length: 1000000000\r\n\r\n"),
            "HTTP/1.1 413 Content Too Large");
  EXPECT_EQ(
      raw_status(http_port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
      "HTTP/1.1 400 Bad Request");
  // And the server still answers.
  EXPECT_EQ(raw_status(http_port_, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK");
}

// Clients that send their headers a byte at a time (slowloris) hold connections, not the server:
// others are answered meanwhile, and one address gets at most kMaxConnectionsPerAddress.
TEST_F(Dashboard, SlowClientsDoNotKeepOthersWaiting) {
  struct Connections {
    std::vector<int> fds;
    ~Connections() {
      for (const int fd : fds) ::close(fd);
    }
  } slow;
  const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string start = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  for (int i = 0; i < 40; ++i) {
    slow.fds.push_back(connect_to(http_port_));
    ASSERT_GE(slow.fds.back(), 0);
    ASSERT_EQ(::send(slow.fds.back(), start.data(), start.size(), MSG_NOSIGNAL),
              ssize_t(start.size()));
  }
  // Longer than a read timeout of a few seconds, which would have freed a thread-pool server's
  // threads between the bytes.
  for (int round = 0; round < 4; ++round) {
    for (const int fd : slow.fds) ::send(fd, "a", 1, MSG_NOSIGNAL);
    // 3 s is no speed target: a server whose threads the slow clients hold never answers.
    EXPECT_EQ(raw_status(http_port_, healthz, 3), "HTTP/1.1 200 OK") << "round " << round;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  // The slow ones are still being waited for (none was answered or closed)...
  for (const int fd : slow.fds) {
    char byte;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
    EXPECT_EQ(n, -1);
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
    }
  }
  // ...and more from the same address than it may hold are closed without an answer. (The
  // probes' connections, closed above, must have left the server's count first.)
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const size_t extra = 8;
  while (slow.fds.size() < CoordinatorHttp::kMaxConnectionsPerAddress + extra) {
    slow.fds.push_back(connect_to(http_port_));
    ASSERT_GE(slow.fds.back(), 0);
  }
  size_t closed = 0;
  for (int i = 0; i < 100 && closed < extra; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    closed = 0;
    for (const int fd : slow.fds) {
      char byte;
      if (::recv(fd, &byte, 1, MSG_DONTWAIT) == 0) ++closed;
    }
  }
  EXPECT_EQ(closed, extra);
  for (const int fd : slow.fds) ::close(fd);
  slow.fds.clear();
  // Once they are gone, everyone is served again (as soon as the server has counted them out).
  std::string status;
  for (int i = 0; i < 50 && status != "HTTP/1.1 200 OK"; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = raw_status(http_port_, healthz, 3);
  }
  EXPECT_EQ(status, "HTTP/1.1 200 OK");
}

// With --tls-cert/--tls-key the HTTP side is HTTPS with the gRPC port's certificate, and the
// session cookie is marked Secure.
TEST(DashboardTls, ServesHttpsWithTheGrpcCertificate) {
  testing::TempDir dir;
  const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
  const testing::CommandResult made = testing::make_self_signed_certificate(cert, key);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::ofstream(dir.file("token")) << kToken << "\n";
  const int http_port = testing::free_port();
  testing::ChildProcess coordinator(
      {testing::convoy_binary(), "coordinator", "--listen",
       fmt::format("127.0.0.1:{}", testing::free_port()), "--http-listen",
       fmt::format("127.0.0.1:{}", http_port), "--state-dir", dir.file("state"),
       "--auth-token-file", dir.file("token"), "--tls-cert", cert, "--tls-key", key},
      dir.file("c.out"), dir.file("c.err"));
  for (int i = 0; i < 400 && testing::read_file(dir.file("c.out")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(testing::read_file(dir.file("c.out")).find("TLS"), std::string::npos)
      << testing::read_file(dir.file("c.err"));

  httplib::SSLClient https("127.0.0.1", http_port);
  https.set_ca_cert_path(cert.c_str());
  https.enable_server_certificate_verification(true);
  auto health = https.Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  auto jobs =
      https.Get("/api/jobs", httplib::Headers{{"Authorization", fmt::format("Bearer {}", kToken)}});
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->status, 200);
  EXPECT_EQ(nlohmann::json::parse(jobs->body)["jobs"].size(), 0u);
  auto signin =
      https.Post("/signin", fmt::format("token={}", kToken), "application/x-www-form-urlencoded");
  ASSERT_TRUE(signin);
  EXPECT_EQ(signin->status, 303);
  EXPECT_NE(signin->get_header_value("Set-Cookie").find("; Secure"), std::string::npos);
  // Plain HTTP gets no answer from it.
  httplib::Client plain("127.0.0.1", http_port);
  plain.set_connection_timeout(5);
  plain.set_read_timeout(5);
  auto refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST_F(Dashboard, ChromiumShowsTheLiveJob) {
  start_job("browser-job");
  std::filesystem::create_directories(CONVOY_ARTIFACTS_DIR);
  const testing::CommandResult browser = testing::run_command(
      {CONVOY_NODE, CONVOY_SOURCE_DIR "/tests/browser/dashboard.mjs", "--url",
       fmt::format("http://127.0.0.1:{}", http_port_), "--token-file", dir_.file("token"), "--job",
       "browser-job", "--ranks", "2", "--screenshot", CONVOY_ARTIFACTS_DIR "/dashboard.png"},
      240);
  EXPECT_EQ(browser.exit_code, 0) << browser.out << browser.err
                                  << testing::read_file(dir_.file("job.err"));
  EXPECT_NE(browser.out.find("\"signed_out\":true"), std::string::npos) << browser.out;
  EXPECT_TRUE(std::filesystem::file_size(CONVOY_ARTIFACTS_DIR "/dashboard.png") > 10000);
}

}  // namespace
}  // namespace convoy
