// The workers' reporter against an in-process coordinator: records queued while the coordinator
// is away are delivered once it is back (on the same port), a restarted coordinator gets a new
// registration, and recording never waits for the network.
#include "dist/coordinator_reporter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "dist/coordinator_service.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

pb::StepRecord record(int64_t step) {
  pb::StepRecord r;
  r.set_step(step);
  r.set_loss(1.0);
  return r;
}

uint64_t stored(CoordinatorClient& client) {
  pb::MetricsQuery q;
  q.set_job_id("j");
  q.set_limit(100000);
  try {
    return static_cast<uint64_t>(client.query_metrics(q, 5).record_size());
  } catch (const Error&) {
    return 0;
  }
}

TEST(CoordinatorReporter, QueuesWhileAwayAndDeliversEverythingAfterARestart) {
  testing::TempDir dir;
  SteadyClock clock;
  CoordinatorOptions options;
  options.state_dir = dir.file("state");
  const int port = testing::free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  auto server = std::make_unique<CoordinatorServer>(options, address, clock);
  ASSERT_EQ(server->port(), port);

  std::vector<std::string> warnings;
  std::mutex warnings_mutex;
  pb::RegisterRequest identity;
  identity.set_job_id("j");
  identity.set_world_size(1);
  CoordinatorReporter reporter({address, "", ""}, identity, {}, [&](const std::string& w) {
    std::lock_guard lock(warnings_mutex);
    warnings.push_back(w);
  });
  for (int64_t s = 1; s <= 100; ++s) reporter.record_step(record(s));
  ASSERT_TRUE(reporter.flush(10));

  server.reset();  // the coordinator goes away
  const auto start = std::chrono::steady_clock::now();
  for (int64_t s = 101; s <= 300; ++s) reporter.record_step(record(s));
  // Recording did not wait for the network.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_FALSE(reporter.stats().connected);

  server = std::make_unique<CoordinatorServer>(options, address, clock);  // back, same state
  ASSERT_TRUE(reporter.flush(30)) << "records were not delivered after the restart";
  CoordinatorClient client({address, "", ""});
  EXPECT_EQ(stored(client), 300u);  // none lost: 100 before, 200 queued during the outage
  const CoordinatorReporter::Stats stats = reporter.stats();
  EXPECT_EQ(stats.sent, 300u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_GT(stats.failures, 0u);
  std::lock_guard lock(warnings_mutex);
  ASSERT_EQ(warnings.size(), 2u);  // once when it went away, once when it came back
  EXPECT_NE(warnings[0].find("unreachable"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("resumed"), std::string::npos) << warnings[1];
}

TEST(CoordinatorReporter, RecordsPastTheJobsQuotaAreDroppedAndHeartbeatsGoOn) {
  testing::TempDir dir;
  SteadyClock clock;
  CoordinatorOptions options;
  options.state_dir = dir.file("state");
  options.max_job_records = 150;
  CoordinatorServer server(options, "127.0.0.1:0", clock);
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  std::vector<std::string> warnings;
  std::mutex warnings_mutex;
  pb::RegisterRequest identity;
  identity.set_job_id("j");
  identity.set_world_size(1);
  CoordinatorReporter::Options reporter_options;
  reporter_options.heartbeat_seconds = 0.05;
  CoordinatorReporter reporter({address, "", ""}, identity, reporter_options,
                               [&](const std::string& w) {
                                 std::lock_guard lock(warnings_mutex);
                                 warnings.push_back(w);
                               });
  for (int64_t s = 1; s <= 100; ++s) reporter.record_step(record(s));
  ASSERT_TRUE(reporter.flush(10));
  for (int64_t s = 101; s <= 300; ++s) reporter.record_step(record(s));
  // Delivered as far as the quota lets it; the rest is dropped, not sent again and again.
  ASSERT_TRUE(reporter.flush(10)) << "the reporter kept retrying refused records";
  CoordinatorClient client({address, "", ""});
  EXPECT_LE(stored(client), 150u);
  EXPECT_GE(stored(client), 100u);
  const CoordinatorReporter::Stats stats = reporter.stats();
  EXPECT_EQ(stats.sent + stats.dropped, 300u);
  EXPECT_GT(stats.dropped, 0u);
  // Heartbeats go on (the rank is not taken for gone), carrying the count of dropped records.
  uint64_t reported = 0;
  for (int i = 0; i < 100 && reported != stats.dropped; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reported = client.job_status("j").rank(0).records_dropped();
  }
  EXPECT_EQ(reported, stats.dropped);
  std::lock_guard lock(warnings_mutex);
  ASSERT_EQ(warnings.size(), 1u);  // said once
  EXPECT_NE(warnings[0].find("refused"), std::string::npos) << warnings[0];
}

TEST(CoordinatorReporter, BoundedQueueDropsTheOldest) {
  pb::RegisterRequest identity;
  identity.set_job_id("j");
  identity.set_world_size(1);
  CoordinatorReporter::Options options;
  options.queue_capacity = 50;
  // Nobody listens on this port.
  CoordinatorReporter reporter({"127.0.0.1:" + std::to_string(testing::free_port()), "", ""},
                               identity, options, [](const std::string&) {});
  for (int64_t s = 1; s <= 80; ++s) reporter.record_step(record(s));
  EXPECT_EQ(reporter.stats().dropped, 30u);
  EXPECT_FALSE(reporter.flush(0.5));
}

}  // namespace
}  // namespace convoy
