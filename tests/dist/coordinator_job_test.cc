// The coordinator as people run it: the `convoy coordinator` binary on a port of 127.0.0.1,
// training jobs under mpirun reporting to it, `convoy monitor` reading from it, and an
// independent client (Python's grpcio) checking its health.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "core/checkpoint.h"
#include "dist/coordinator_client.h"
#include "testing/error_of.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::CommandResult;

constexpr const char* kData = testing::kFashionMnistDir;

// A `convoy coordinator` process; stopped (killed) when destroyed.
class Coordinator {
 public:
  Coordinator(const testing::TempDir& dir, int port, const std::string& name = "coordinator",
              const std::vector<std::string>& extra = {})
      : out_(dir.file(name + ".out")) {
    std::vector<std::string> argv = {testing::convoy_binary(),
                                     "coordinator",
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port),
                                     "--state-dir",
                                     dir.file("state")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<testing::ChildProcess>(argv, out_, dir.file(name + ".err"));
    // Ready once it says which port it listens on.
    for (int i = 0; i < 200 && testing::read_file(out_).find("listening") == std::string::npos;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    EXPECT_NE(testing::read_file(out_).find("listening on port " + std::to_string(port)),
              std::string::npos)
        << testing::read_file(dir.file(name + ".err"));
  }
  void kill() {
    process_->kill_group();
    process_->wait_for(10);
  }
  int pid() const { return process_->pid(); }

 private:
  std::string out_;
  std::unique_ptr<testing::ChildProcess> process_;
};

class CoordinatorJob : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kData)) << kData << " is missing";
    port_ = testing::free_port();
    address_ = "127.0.0.1:" + std::to_string(port_);
  }
  std::vector<std::string> train(const std::string& job, std::vector<std::string> extra) {
    std::vector<std::string> args = {
        "train", "--model",       "lenet5", "--limit-train", "6000", "--limit-test",
        "500",   "--epochs",      "3",      "--threads",     "1",    "--progress",
        "none",  "--coordinator", address_, "--job-id",      job};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  CommandResult monitor(std::vector<std::string> args) {
    args.insert(args.begin(), {"monitor", address_});
    return testing::run_convoy(args, 1, 60);
  }
  int64_t stored_records(const std::string& job) {
    const CommandResult r = monitor({"--job", job, "status", "--json"});
    if (r.exit_code != 0) return -1;
    const nlohmann::json status = nlohmann::json::parse(r.out);
    return status.contains("records") ? std::stoll(status["records"].get<std::string>()) : 0;
  }
  testing::TempDir dir_;
  int port_ = 0;
  std::string address_;
};

TEST_F(CoordinatorJob, HealthAndReflectionAnswerAnIndependentClient) {
  Coordinator coordinator(dir_, port_);
  const CommandResult r = testing::run_command(
      {"/usr/bin/python3", "-c",
       "import grpc, sys\n"
       "channel = grpc.insecure_channel(sys.argv[1])\n"
       "check = channel.unary_unary('/grpc.health.v1.Health/Check',\n"
       "    request_serializer=lambda m: m, response_deserializer=lambda m: m)\n"
       "reply = check(b'', timeout=10)\n"
       "# HealthCheckResponse: field 1 (status) varint; SERVING is 1.\n"
       "assert reply == b'\\x08\\x01', reply\n"
       "print('SERVING')\n"
       "# Server reflection: ServerReflectionRequest{list_services (field 7) = ''}.\n"
       "info = channel.stream_stream(\n"
       "    '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',\n"
       "    request_serializer=lambda m: m, response_deserializer=lambda m: m)\n"
       "answer = next(info(iter([b'\\x3a\\x00']), timeout=10))\n"
       "assert b'convoy.pb.Coordinator' in answer, answer\n"
       "print('REFLECTION')\n",
       address_},
      60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\nREFLECTION\n");
}

TEST_F(CoordinatorJob, MonitorWithAWrongTokenOrNameIsRefused) {
  std::ofstream(dir_.file("token")) << "the-right-token\n";
  std::ofstream(dir_.file("wrong")) << "a-wrong-token\n";
  testing::ChildProcess process(
      {testing::convoy_binary(), "coordinator", "--listen", address_, "--state-dir",
       dir_.file("state"), "--auth-token-file", dir_.file("token")},
      dir_.file("c.out"), dir_.file("c.err"));
  for (int i = 0; i < 200 && testing::read_file(dir_.file("c.out")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  CommandResult r = monitor({"--auth-token-file", dir_.file("wrong"), "status"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("refused the token"), std::string::npos) << r.err;
  r = monitor({"status"});  // no token at all
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = monitor({"--auth-token-file", dir_.file("token"), "--job", "nope", "download", "latest",
               "--out", dir_.file("x.ckpt")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no valid checkpoint"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("x.ckpt")));
  // Health stays open for probes without a token; reflection wants the token like the rest.
  const CommandResult probe = testing::run_command(
      {"/usr/bin/python3", "-c",
       "import grpc, sys\n"
       "channel = grpc.insecure_channel(sys.argv[1])\n"
       "check = channel.unary_unary('/grpc.health.v1.Health/Check',\n"
       "    request_serializer=lambda m: m, response_deserializer=lambda m: m)\n"
       "assert check(b'', timeout=10) == b'\\x08\\x01'\n"
       "info = channel.stream_stream(\n"
       "    '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',\n"
       "    request_serializer=lambda m: m, response_deserializer=lambda m: m)\n"
       "for metadata in [(), (('authorization', 'Bearer the-right-token'),)]:\n"
       "    try:\n"
       "        answers = list(info(iter([b'\\x3a\\x00']), timeout=10, metadata=metadata))\n"
       "        print('convoy.pb.Coordinator' if b'convoy.pb.Coordinator' in answers[0] else "
       "answers)\n"
       "    except grpc.RpcError as e:\n"
       "        print(e.code().name)\n",
       address_},
      60);
  EXPECT_EQ(probe.exit_code, 0) << probe.err;
  EXPECT_EQ(probe.out, "UNAUTHENTICATED\nconvoy.pb.Coordinator\n");
}

TEST_F(CoordinatorJob, KilledJobResumesToTheSameParameters) {
  Coordinator coordinator(dir_, port_);
  // The uninterrupted run.
  CommandResult full = testing::run_command(
      testing::mpirun_convoy(
          2, train("full", {"--limit-train", "9600", "--save", dir_.file("full.ckpt")})),
      600);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  // The same run, killed once a checkpoint is stored (any: which ones are still kept when the
  // listing is taken depends on how fast the machine is), then resumed.
  const std::vector<std::string> args =
      train("interrupted", {"--limit-train", "9600", "--checkpoint-every", "20"});
  const auto newest_stored = [&] {
    const std::string listing = monitor({"--job", "interrupted", "checkpoints"}).out;
    int64_t newest = -1;
    for (size_t at = listing.find("step-"); at != std::string::npos;
         at = listing.find("step-", at + 1)) {
      newest = std::max<int64_t>(newest, std::strtoll(listing.c_str() + at + 5, nullptr, 10));
    }
    return newest;
  };
  {
    testing::ChildProcess job(testing::mpirun_convoy(2, args), dir_.file("job.out"),
                              dir_.file("job.err"));
    bool stored = false;
    // A generous deadline: under the sanitizers on a slow machine the first checkpoint can take
    // tens of seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (!stored && std::chrono::steady_clock::now() < deadline) {
      stored = newest_stored() >= 0;
      if (!stored) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(stored) << testing::read_file(dir_.file("job.err"));
    job.kill_group();
    ASSERT_TRUE(job.wait_for(30));
  }
  // Killed before its end, so the resumed run repeats the rest.
  const int64_t killed_after = newest_stored();
  ASSERT_LT(killed_after, load_checkpoint(dir_.file("full.ckpt")).step())
      << "the first attempt ended before it was killed";
  std::vector<std::string> again = args;
  again.insert(again.end(), {"--resume", "--save", dir_.file("resumed.ckpt")});
  const CommandResult resumed = testing::run_command(testing::mpirun_convoy(2, again), 600);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming job 'interrupted' from coordinator"), std::string::npos)
      << resumed.err;
  const pb::Checkpoint a = load_checkpoint(dir_.file("full.ckpt"));
  const pb::Checkpoint b = load_checkpoint(dir_.file("resumed.ckpt"));
  ASSERT_EQ(a.parameter_size(), b.parameter_size());
  EXPECT_EQ(a.step(), b.step());
  for (int i = 0; i < a.parameter_size(); ++i) {
    EXPECT_EQ(a.parameter(i).SerializeAsString(), b.parameter(i).SerializeAsString())
        << a.parameter(i).name() << " differs: the resumed run is not bitwise the same";
  }
  // And the monitor can fetch what was stored.
  const CommandResult download =
      monitor({"--job", "interrupted", "download", "latest", "--out", dir_.file("latest.ckpt")});
  ASSERT_EQ(download.exit_code, 0) << download.err;
  EXPECT_NO_THROW(load_checkpoint(dir_.file("latest.ckpt")));
}

TEST_F(CoordinatorJob, TrainingOutlivesTheCoordinatorAndReportingResumes) {
  auto coordinator = std::make_unique<Coordinator>(dir_, port_);
  // 10 epochs: still running when the coordinator goes, however fast the machine.
  testing::ChildProcess job(testing::mpirun_convoy(2, train("outage", {"--epochs", "10"})),
                            dir_.file("job.out"), dir_.file("job.err"));
  int64_t before = 0;
  for (int i = 0; i < 400 && before <= 0; ++i) {
    before = stored_records("outage");
    if (before <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_GT(before, 0);
  ASSERT_FALSE(job.wait_for(0)) << "the job ended before the coordinator was killed";
  coordinator->kill();  // the coordinator dies mid-training
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  coordinator = std::make_unique<Coordinator>(dir_, port_, "restarted");  // back on the same port
  ASSERT_TRUE(job.wait_for(300));
  EXPECT_EQ(job.exit_code(), 0) << testing::read_file(dir_.file("job.err"));
  const std::string err = testing::read_file(dir_.file("job.err"));
  EXPECT_NE(err.find("unreachable"), std::string::npos) << err;
  EXPECT_NE(err.find("resumed"), std::string::npos) << err;
  // Every step of both ranks arrived: 10 epochs x 46 steps (6000 / 128) x 2 ranks. The job waited
  // for its reporters to deliver before it ended.
  const CommandResult csv = monitor({"--job", "outage", "metrics", "--out", dir_.file("m.csv")});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const std::string text = testing::read_file(dir_.file("m.csv"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 921);  // header + 920 rows
}

// The durability promise (README, "Reliability"): a record the coordinator acknowledged is in the
// operating system's hands, so a SIGKILL of the coordinator loses none of them (a crash of the
// machine can lose the last second: the logs are fsynced about once a second).
TEST_F(CoordinatorJob, AcknowledgedRecordsAndRegistrationsSurviveASigkill) {
  auto coordinator = std::make_unique<Coordinator>(dir_, port_);
  int64_t acknowledged = 0;
  {  // a client of its own: the restarted coordinator gets a fresh connection
    CoordinatorClient client({address_, "", ""});
    pb::RegisterRequest registration;
    registration.set_job_id("durable");
    registration.set_world_size(2);
    registration.set_host("worker-a");
    for (int rank = 0; rank < 2; ++rank) {
      registration.set_rank(rank);
      client.register_rank(registration, 10);
    }
    for (int batch = 0; batch < 200; ++batch) {
      pb::MetricsBatch records;
      records.set_job_id("durable");
      for (int i = 0; i < 10; ++i) {
        pb::StepRecord* r = records.add_record();
        r->set_rank(i % 2);
        r->set_step(batch * 5 + i / 2 + 1);
        r->set_loss(1.0 / (batch + 1));
      }
      client.report_metrics(records, 10);
      acknowledged += records.record_size();
    }
    pb::EvaluationRecord evaluation;
    evaluation.set_job_id("durable");
    evaluation.set_step(1000);
    evaluation.set_test_accuracy(0.875);
    client.report_evaluation(evaluation, 10);
  }
  coordinator->kill();  // SIGKILL right after the last acknowledgement
  coordinator = std::make_unique<Coordinator>(dir_, port_, "restarted");
  CoordinatorClient again({address_, "", ""});
  pb::MetricsQuery query;
  query.set_job_id("durable");
  const pb::MetricsPage page = again.query_metrics(query);
  EXPECT_EQ(page.record_size(), acknowledged);
  ASSERT_EQ(page.evaluation_size(), 1);
  EXPECT_EQ(page.evaluation(0).test_accuracy(), 0.875);
  const pb::JobStatus status = again.job_status("durable");
  EXPECT_EQ(status.world_size(), 2);
  EXPECT_EQ(status.rank_size(), 2);
  pb::HeartbeatRequest heartbeat;
  heartbeat.set_job_id("durable");
  heartbeat.set_rank(1);
  EXPECT_NO_THROW(again.heartbeat(heartbeat, 10));  // no need to register again
}

TEST_F(CoordinatorJob, AFinalCheckpointTheCoordinatorRefusesFailsTheJob) {
  // A limit of 10 KB: lenet5's checkpoints (about 0.5 MB) are all refused.
  Coordinator coordinator(dir_, port_, "coordinator", {"--max-checkpoint-mb", "0.01"});
  const CommandResult r = testing::run_convoy(
      train("refused", {"--epochs", "1", "--limit-train", "640", "--limit-test", "100"}), 1, 300);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("refused by the coordinator"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the last checkpoint could not be stored at coordinator " + address_),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << "the report comes first";
}

// Resident memory of a process, in KiB.
int64_t resident_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// A hostile client: 100 watchers, then two batches of 50,000 records each (3 MB apiece). Every
// watcher gets the newest records in messages inside the 4 MiB limit (none is ended with
// RESOURCE_EXHAUSTED), and once they are gone the coordinator's resident memory returns to within
// 20% of where it was.
TEST_F(CoordinatorJob, WatchersAndLargeBatchesLeaveMemoryBounded) {
#if defined(CONVOY_ASAN) || defined(CONVOY_TSAN)
  GTEST_SKIP() << "resident memory means nothing under a sanitizer's allocator (it holds freed "
                  "memory in quarantine on purpose)";
#endif
  Coordinator coordinator(dir_, port_);
  const CoordinatorAddress address{address_, "", ""};
  CoordinatorClient reporter(address);
  pb::RegisterRequest hello;
  hello.set_job_id("flood");
  hello.set_world_size(1);
  reporter.register_rank(hello, 10);
  const auto batch = [](int64_t first) {
    pb::MetricsBatch b;
    b.set_job_id("flood");
    for (int64_t s = first; s < first + 50000; ++s) {
      pb::StepRecord* r = b.add_record();
      r->set_step(s);
      r->set_loss(1.0 / double(s));
      r->set_images_per_second(1000);
      r->set_wall_time(1.7e9);
    }
    return b;
  };
  // The newest 100,000 records of a job stay in memory by design: fill that first, so that the
  // comparison is of the same state before and after.
  reporter.report_metrics(batch(1), 30);
  reporter.report_metrics(batch(50001), 30);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int64_t before = resident_kib(coordinator.pid());
  ASSERT_GT(before, 0);

  constexpr int kWatchers = 100;
  std::vector<std::unique_ptr<CoordinatorClient>> clients;
  std::vector<std::thread> watchers;
  std::vector<int64_t> received(kWatchers, 0), last(kWatchers, 0);
  std::vector<std::string> errors(kWatchers);
  for (int w = 0; w < kWatchers; ++w) {
    clients.push_back(std::make_unique<CoordinatorClient>(address));
    watchers.emplace_back([&, w] {
      try {
        clients[static_cast<size_t>(w)]->watch_metrics(
            "flood",
            [&](const pb::MetricsBatch& b) {
              received[static_cast<size_t>(w)] += b.record_size();
              if (b.record_size() > 0)
                last[static_cast<size_t>(w)] = b.record(b.record_size() - 1).step();
            },
            60);
      } catch (const Error& e) {
        errors[static_cast<size_t>(w)] = e.what();
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the watches are open
  reporter.report_metrics(batch(100001), 30);
  reporter.report_metrics(batch(150001), 30);
  int64_t peak = 0;
  for (int i = 0; i < 100; ++i) {
    peak = std::max(peak, resident_kib(coordinator.pid()));
    bool all = true;
    for (int w = 0; w < kWatchers; ++w) all = all && last[static_cast<size_t>(w)] == 200000;
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& c : clients) c->cancel_all();
  for (std::thread& t : watchers) t.join();
  for (int w = 0; w < kWatchers; ++w) {
    EXPECT_EQ(errors[static_cast<size_t>(w)], "") << "watcher " << w;
    EXPECT_EQ(last[static_cast<size_t>(w)], 200000) << "watcher " << w;
    EXPECT_GE(received[static_cast<size_t>(w)], 10000) << "watcher " << w;
  }
  clients.clear();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // trimmed about once a second
  const int64_t after = resident_kib(coordinator.pid());
  RecordProperty("resident_kib_before", std::to_string(before));
  RecordProperty("resident_kib_peak", std::to_string(peak));
  RecordProperty("resident_kib_after", std::to_string(after));
  std::printf("coordinator resident memory: before %lld KiB, peak %lld KiB, after %lld KiB\n",
              static_cast<long long>(before), static_cast<long long>(peak),
              static_cast<long long>(after));
  EXPECT_LT(after, before * 12 / 10) << "more than 20% above where it was";
}

}  // namespace
}  // namespace convoy
