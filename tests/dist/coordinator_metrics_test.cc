// The coordinator's HTTP side as Prometheus uses it: `convoy coordinator --http-listen` with a
// token, a real training job reporting to it, `promtool check metrics` on what /metrics says, and
// Debian's `prometheus` scraping it and answering a query with the job's own numbers.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "dist/prometheus_metrics.h"
#include "testing/error_of.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::CommandResult;

constexpr const char* kToken = "a-token-for-the-test";

std::string field(const std::string& text, const std::string& pattern) {
  std::smatch m;
  return std::regex_search(text, m, std::regex(pattern)) ? m[1].str() : "";
}

// The exposition of known values, line by line: histogram buckets are cumulative and end in +Inf,
// counters end in _total, label values are escaped.
TEST(CoordinatorMetrics, ExpositionOfKnownValues) {
  CoordinatorSnapshot snapshot;
  CoordinatorSnapshot::Job& job = snapshot.jobs.emplace_back();
  job.status.set_job_id("a\"b");
  pb::RankStatus* rank = job.status.add_rank();
  rank->set_rank(1);
  rank->set_host("h");
  rank->set_records_dropped(7);
  for (const double s : {0.0005, 0.003, 0.003, 0.7, 100.0}) job.step_seconds.observe(s);
  const std::string text = prometheus_metrics(snapshot, 1000);
  for (const char* line : {
           "# TYPE convoy_step_duration_seconds histogram\n",
           "convoy_step_duration_seconds_bucket{job_id=\"a\\\"b\",le=\"0.001\"} 1\n",
           "convoy_step_duration_seconds_bucket{job_id=\"a\\\"b\",le=\"0.0025\"} 1\n",
           "convoy_step_duration_seconds_bucket{job_id=\"a\\\"b\",le=\"0.005\"} 3\n",
           "convoy_step_duration_seconds_bucket{job_id=\"a\\\"b\",le=\"1\"} 4\n",
           "convoy_step_duration_seconds_bucket{job_id=\"a\\\"b\",le=\"60\"} 4\n",
           "convoy_step_duration_seconds_bucket{job_id=\"a\\\"b\",le=\"+Inf\"} 5\n",
           "convoy_step_duration_seconds_sum{job_id=\"a\\\"b\"} 100.7065\n",
           "convoy_step_duration_seconds_count{job_id=\"a\\\"b\"} 5\n",
           "convoy_allreduce_wait_seconds_count{job_id=\"a\\\"b\"} 0\n",
           "# TYPE convoy_records_dropped_total counter\n",
           "convoy_records_dropped_total{job_id=\"a\\\"b\",rank=\"1\",host=\"h\"} 7\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;
  }
}

TEST(CoordinatorMetrics, PrometheusScrapesTheJobsNumbers) {
  testing::TempDir dir;
  std::ofstream(dir.file("token")) << kToken << "\n";
  const int grpc_port = testing::free_port(), http_port = testing::free_port();
  testing::ChildProcess coordinator(
      {testing::convoy_binary(), "coordinator", "--listen", fmt::format("127.0.0.1:{}", grpc_port),
       "--http-listen", fmt::format("127.0.0.1:{}", http_port), "--state-dir", dir.file("state"),
       "--auth-token-file", dir.file("token")},
      dir.file("c.out"), dir.file("c.err"));
  for (int i = 0; i < 400 && testing::read_file(dir.file("c.out")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(testing::read_file(dir.file("c.out")).find(fmt::format("HTTP on port {}", http_port)),
            std::string::npos)
      << testing::read_file(dir.file("c.err"));

  // A job reports; its final JSON line is the reference.
  const CommandResult job = testing::run_convoy({"train",
                                                 "--model",
                                                 "lenet5",
                                                 "--epochs",
                                                 "1",
                                                 "--limit-train",
                                                 "3200",
                                                 "--limit-test",
                                                 "500",
                                                 "--coordinator",
                                                 fmt::format("127.0.0.1:{}", grpc_port),
                                                 "--auth-token-file",
                                                 dir.file("token"),
                                                 "--job-id",
                                                 "metrics-job",
                                                 "--checkpoint-every",
                                                 "20",
                                                 "--log-json",
                                                 "--progress",
                                                 "none"},
                                                1, 300);
  ASSERT_EQ(job.exit_code, 0) << job.err;
  const nlohmann::json final = testing::last_json_line(job.out);

  httplib::Client http("127.0.0.1", http_port);
  auto open = http.Get("/healthz");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->status, 200);
  auto refused = http.Get("/metrics");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto wrong = http.Get("/metrics", httplib::Headers{{"Authorization", "Bearer wrong"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto metrics =
      http.Get("/metrics", httplib::Headers{{"Authorization", fmt::format("Bearer {}", kToken)}});
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics->get_header_value("Cache-Control"), "no-store");
  const std::string& text = metrics->body;
  EXPECT_EQ(field(text, R"re(convoy_training_step\{job_id="metrics-job"\} (\d+))re"),
            std::to_string(final["steps"].get<int64_t>()))
      << text;
  EXPECT_NEAR(std::stod(field(text, R"re(convoy_test_accuracy\{job_id="metrics-job"\} (\S+))re")),
              final["test_accuracy"].get<double>(), 1e-9);
  // As many as the coordinator lists (3 when every upload got through; a fast CPU can outrun the
  // uploader, whose queue keeps only the newest checkpoint waiting, and then 2 are kept).
  const CommandResult listing =
      testing::run_convoy({"monitor", fmt::format("127.0.0.1:{}", grpc_port), "--auth-token-file",
                           dir.file("token"), "--job", "metrics-job", "checkpoints"},
                          1, 60);
  ASSERT_EQ(listing.exit_code, 0) << listing.err;
  int64_t listed = 0;
  for (size_t at = listing.out.find("step-"); at != std::string::npos;
       at = listing.out.find("step-", at + 1)) {
    ++listed;
  }
  EXPECT_GE(listed, 2) << listing.out;
  EXPECT_EQ(field(text, R"re(convoy_checkpoints_stored\{job_id="metrics-job"\} (\d+))re"),
            std::to_string(listed))
      << listing.out;
  EXPECT_NE(text.find("convoy_rpc_requests_total{method=\"Register\",code=\"OK\"} 1\n"),
            std::string::npos)
      << text;
  // One rank: the histograms hold exactly its steps, and it dropped no record.
  const std::string steps = std::to_string(final["steps"].get<int64_t>());
  EXPECT_EQ(field(text, R"re(convoy_step_duration_seconds_count\{job_id="metrics-job"\} (\d+))re"),
            steps);
  EXPECT_EQ(
      field(text,
            R"re(convoy_step_duration_seconds_bucket\{job_id="metrics-job",le="\+Inf"\} (\d+))re"),
      steps);
  EXPECT_GT(std::stod(field(
                text, R"re(convoy_step_duration_seconds_sum\{job_id="metrics-job"\} (\S+))re")),
            0);
  EXPECT_EQ(field(text, R"re(convoy_allreduce_wait_seconds_count\{job_id="metrics-job"\} (\d+))re"),
            steps);
  EXPECT_EQ(
      field(
          text,
          R"re(convoy_records_dropped_total\{job_id="metrics-job",rank="0",host="[^"]*"\} (\d+))re"),
      "0");

  // promtool, the format's own checker: no problems.
  std::ofstream(dir.file("metrics.txt")) << text;
  const CommandResult lint = testing::run_command(
      {"/bin/sh", "-c", fmt::format("promtool check metrics < {}", dir.file("metrics.txt"))}, 60);
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
  EXPECT_EQ(lint.out + lint.err, "");

  // Prometheus itself scrapes the coordinator (with the token) and answers a query.
  const int prometheus_port = testing::free_port();
  std::ofstream(dir.file("prometheus.yml"))
      << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: convoy\n"
      << "    authorization:\n      credentials_file: " << dir.file("token") << "\n"
      << "    static_configs:\n      - targets: ['127.0.0.1:" << http_port << "']\n";
  testing::ChildProcess prometheus(
      {"/usr/bin/prometheus", "--config.file=" + dir.file("prometheus.yml"),
       "--storage.tsdb.path=" + dir.file("tsdb"),
       fmt::format("--web.listen-address=127.0.0.1:{}", prometheus_port)},
      dir.file("p.out"), dir.file("p.err"));
  httplib::Client query("127.0.0.1", prometheus_port);
  std::string answer;
  for (int i = 0; i < 600 && answer.find("metrics-job") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = query.Get("/api/v1/query?query=convoy_training_step");
    if (r && r->status == 200) answer = r->body;
  }
  ASSERT_NE(answer.find("metrics-job"), std::string::npos)
      << answer << testing::read_file(dir.file("p.err")).substr(0, 3000);
  const nlohmann::json parsed = nlohmann::json::parse(answer);
  const nlohmann::json& sample = parsed["data"]["result"][0];
  EXPECT_EQ(sample["metric"]["job_id"], "metrics-job");
  EXPECT_EQ(sample["metric"]["job"], "convoy");  // Prometheus' own label, not renamed
  EXPECT_FALSE(sample["metric"].contains("exported_job"));
  EXPECT_EQ(sample["value"][1], std::to_string(final["steps"].get<int64_t>()));

  // Every query of the Grafana dashboard in deploy/ is valid PromQL with data for the job (the
  // rate windows stand in for Grafana's $__rate_interval). Rates need a few scrapes first.
  for (int i = 0; i < 100; ++i) {
    auto r = query.Get(
        "/api/v1/query?query=count_over_time(convoy_training_step%7Bjob_id%3D%22metrics-job%22%7D"
        "%5B1m%5D)%20%3E%3D%203");
    if (r && r->status == 200 && r->body.find("metrics-job") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::ifstream grafana_file(CONVOY_SOURCE_DIR "/deploy/grafana/convoy-dashboard.json");
  const nlohmann::json grafana = nlohmann::json::parse(grafana_file);
  int queries = 0;
  for (const nlohmann::json& panel : grafana["panels"]) {
    for (const nlohmann::json& target : panel["targets"]) {
      std::string expr = target["expr"];
      for (const auto& [from, to] : {std::pair<std::string, std::string>{"$job_id", "metrics-job"},
                                     {"$__rate_interval", "1m"}}) {
        for (size_t at; (at = expr.find(from)) != std::string::npos;)
          expr.replace(at, from.size(), to);
      }
      httplib::Params params{{"query", expr}};
      auto r = query.Post("/api/v1/query", params);
      ASSERT_TRUE(r) << expr;
      EXPECT_EQ(r->status, 200) << expr << ": " << r->body;
      const nlohmann::json result = nlohmann::json::parse(r->body);
      EXPECT_EQ(result["status"], "success") << expr;
      EXPECT_FALSE(result["data"]["result"].empty()) << panel["title"] << ": no data for " << expr;
      ++queries;
    }
  }
  EXPECT_GE(queries, 12);
}

}  // namespace
}  // namespace convoy
