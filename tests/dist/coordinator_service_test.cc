// The coordinator service, in process: a real gRPC server on 127.0.0.1 (a port the OS picks)
// and a real client, with an injectable clock for stall detection.
#include "dist/coordinator_service.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "dist/coordinator_client.h"
#include "dist/grpc_status.h"
#include "dist/sha256.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

class Coordinator : public ::testing::Test {
 protected:
  void start(CoordinatorOptions options = {}) {
    options.state_dir = dir_.file("state");
    options.stall_after_seconds = 60;
    options.gone_after_seconds = 30;
    options.checkpoints.max_bytes = 4 << 20;
    options_ = options;
    server_ = std::make_unique<CoordinatorServer>(options, "127.0.0.1:0", clock_);
  }
  void restart() {
    server_.reset();
    server_ = std::make_unique<CoordinatorServer>(options_, "127.0.0.1:0", clock_);
  }
  CoordinatorClient client(const std::string& token = "") {
    return CoordinatorClient({"127.0.0.1:" + std::to_string(server_->port()), token, ""});
  }
  // The raw gRPC stub and call preparation, for tests of the wire protocol itself (streams cut
  // short, headers that lie): CoordinatorClient never sends those.
  static std::unique_ptr<pb::Coordinator::Stub> stub_for(const CoordinatorClient& c) {
    return pb::Coordinator::NewStub(
        grpc::CreateChannel(c.address().target, grpc::InsecureChannelCredentials()));
  }
  static void prepare(grpc::ClientContext& context, double seconds, const CoordinatorClient& c) {
    if (!c.address().token.empty()) {
      context.AddMetadata("authorization", "Bearer " + c.address().token);
    }
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  }
  // A raw upload stream on a call context of its own (raw_context_, for cancelling it).
  std::unique_ptr<grpc::ClientWriter<pb::CheckpointChunk>> raw_upload(const CoordinatorClient& c) {
    raw_context_ = std::make_unique<grpc::ClientContext>();
    prepare(*raw_context_, 5, c);
    raw_stub_ = stub_for(c);  // they live as long as the test
    return raw_stub_->UploadCheckpoint(raw_context_.get(), &raw_info_);
  }
  // The first chunk of an upload: `header` announcing `announced` (its size and SHA-256), carrying
  // `data`.
  static pb::CheckpointChunk first_chunk(pb::CheckpointInfo header, const std::string& announced,
                                         const std::string& data) {
    pb::CheckpointChunk chunk;
    header.set_size(announced.size());
    header.set_sha256(sha256_hex(announced));
    *chunk.mutable_header() = header;
    chunk.set_data(data);
    return chunk;
  }
  // The status a call of the client ended with (OK when it did not throw).
  template <typename F>
  static grpc::Status status_of(F&& call) {
    try {
      call();
      return grpc::Status::OK;
    } catch (const Error& e) {
      return to_status(e);
    }
  }
  grpc::Status register_rank(CoordinatorClient& c, int rank, int world = 2) {
    pb::RegisterRequest r;
    r.set_job_id("job1");
    r.set_rank(rank);
    r.set_world_size(world);
    r.set_host("host" + std::to_string(rank));
    r.set_pid(1000 + rank);
    return status_of([&] { c.register_rank(r, 5); });
  }
  grpc::Status heartbeat(CoordinatorClient& c, int rank, int64_t step) {
    pb::HeartbeatRequest r;
    r.set_job_id("job1");
    r.set_rank(rank);
    r.set_step(step);
    return status_of([&] { c.heartbeat(r, 5); });
  }
  pb::JobStatus status(CoordinatorClient& c) { return c.job_status("job1", 5); }
  grpc::Status report(CoordinatorClient& c, int rank, int64_t from, int64_t to) {
    pb::MetricsBatch batch;
    batch.set_job_id("job1");
    for (int64_t s = from; s <= to; ++s) {
      pb::StepRecord* r = batch.add_record();
      r->set_rank(rank);
      r->set_step(s);
      r->set_loss(1.0 / double(s));
      r->set_images_per_second(100);
    }
    return status_of([&] { c.report_metrics(batch, 5); });
  }
  pb::MetricsPage query(CoordinatorClient& c, int64_t from, int64_t to, int32_t limit = 0) {
    pb::MetricsQuery q;
    q.set_job_id("job1");
    q.set_from_step(from);
    q.set_to_step(to);
    q.set_limit(limit);
    return c.query_metrics(q, 5);
  }
  std::vector<pb::CheckpointInfo> list(CoordinatorClient& c) {
    const pb::CheckpointList list = c.list_checkpoints("job1", 5);
    return {list.checkpoint().begin(), list.checkpoint().end()};
  }
  static pb::CheckpointInfo header(int64_t step, double accuracy = -1, std::string name = "") {
    pb::CheckpointInfo h;
    h.set_job_id("job1");
    h.set_step(step);
    h.set_epoch(step / 10);
    h.set_name(std::move(name));
    if (accuracy >= 0) {
      h.set_test_accuracy(accuracy);
      h.set_has_test_accuracy(true);
    }
    return h;
  }
  static std::string payload(size_t n, char seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 31);
    return s;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  CoordinatorOptions options_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<pb::Coordinator::Stub> raw_stub_;
  std::unique_ptr<grpc::ClientContext> raw_context_;
  pb::CheckpointInfo raw_info_;
};

TEST_F(Coordinator, RegisterHeartbeatAndStallDetection) {
  start();
  CoordinatorClient c = client();
  EXPECT_EQ(heartbeat(c, 0, 1).error_code(), grpc::StatusCode::NOT_FOUND);  // not registered
  ASSERT_TRUE(register_rank(c, 0).ok());
  ASSERT_TRUE(register_rank(c, 1).ok());
  EXPECT_EQ(register_rank(c, 2).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(heartbeat(c, 0, 5).ok());
  ASSERT_TRUE(heartbeat(c, 1, 5).ok());
  pb::JobStatus s = status(c);
  ASSERT_EQ(s.rank_size(), 2);
  EXPECT_EQ(s.world_size(), 2);
  EXPECT_EQ(s.rank(1).host(), "host1");
  EXPECT_EQ(s.rank(0).state(), pb::RankStatus::ALIVE);
  EXPECT_EQ(s.rank(1).state(), pb::RankStatus::ALIVE);
  EXPECT_EQ(s.rank(1).records_dropped(), 0u);
  {
    // What a rank dropped travels with its heartbeats; only rank 0's command line is kept.
    pb::HeartbeatRequest r;
    r.set_job_id("job1");
    r.set_rank(1);
    r.set_step(5);
    r.set_records_dropped(7);
    c.heartbeat(r, 5);
    EXPECT_EQ(status(c).rank(1).records_dropped(), 7u);
    pb::RegisterRequest again;
    again.set_job_id("job1");
    again.set_rank(0);
    again.set_world_size(2);
    again.set_host("host0");
    again.add_command_line("convoy");
    again.add_command_line("train");
    ASSERT_TRUE(status_of([&] { c.register_rank(again, 5); }).ok());
    again.set_rank(1);
    again.add_command_line("--other");
    ASSERT_TRUE(status_of([&] { c.register_rank(again, 5); }).ok());
    again.set_rank(0);
    again.add_command_line(std::string(64 << 10, 'x'));  // over 64 KiB in all
    EXPECT_EQ(status_of([&] { c.register_rank(again, 5); }).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    ASSERT_TRUE(heartbeat(c, 0, 5).ok());
    ASSERT_TRUE(heartbeat(c, 1, 5).ok());
  }
  s = status(c);
  EXPECT_EQ(s.rank(1).records_dropped(), 0u);  // registered again: a new process
  EXPECT_EQ(std::vector<std::string>(s.command_line().begin(), s.command_line().end()),
            (std::vector<std::string>{"convoy", "train"}));

  // Rank 1 keeps sending heartbeats at step 5 while rank 0 moves on: after 60 s, stalled.
  for (int i = 1; i <= 7; ++i) {
    clock_.advance(10);
    ASSERT_TRUE(heartbeat(c, 0, 5 + i).ok());
    ASSERT_TRUE(heartbeat(c, 1, 5).ok());
  }
  s = status(c);
  EXPECT_EQ(s.rank(0).state(), pb::RankStatus::ALIVE);
  EXPECT_EQ(s.rank(1).state(), pb::RankStatus::STALLED);
  EXPECT_EQ(s.rank(1).step(), 5);
  EXPECT_NEAR(s.rank(1).seconds_since_progress(), 70, 1e-6);

  // Rank 1 moves again: alive. Then rank 0 goes silent for more than 30 s: gone.
  ASSERT_TRUE(heartbeat(c, 1, 12).ok());
  EXPECT_EQ(status(c).rank(1).state(), pb::RankStatus::ALIVE);
  clock_.advance(31);
  ASSERT_TRUE(heartbeat(c, 1, 13).ok());
  s = status(c);
  EXPECT_EQ(s.rank(0).state(), pb::RankStatus::GONE);
  EXPECT_EQ(s.rank(1).state(), pb::RankStatus::ALIVE);
}

TEST_F(Coordinator, RegistrationsAreBoundedAndASmallerRestartForgetsRanks) {
  start();
  CoordinatorClient c = client();
  EXPECT_EQ(register_rank(c, 0, 5000).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  pb::RegisterRequest huge_host;
  huge_host.set_job_id("job1");
  huge_host.set_world_size(1);
  huge_host.set_host(std::string(100'000, 'h'));
  EXPECT_EQ(status_of([&] { c.register_rank(huge_host, 5); }).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  for (int rank = 0; rank < 8; ++rank) ASSERT_TRUE(register_rank(c, rank, 8).ok());
  EXPECT_EQ(status(c).rank_size(), 8);
  ASSERT_TRUE(register_rank(c, 0, 2).ok());  // the job restarted with 2 ranks
  const pb::JobStatus s = status(c);
  EXPECT_EQ(s.world_size(), 2);
  ASSERT_EQ(s.rank_size(), 2) << "ranks 2 to 7 of the old job are forgotten";
  EXPECT_EQ(s.rank(1).rank(), 1);
}

// A job its launcher started again: each registration starts the rank afresh (a resumed run's
// steps are below the old ones, and are progress all the same), and the restarts are counted.
TEST_F(Coordinator, ARestartedJobIsNotStalledAndItsRestartsAreCounted) {
  start();
  CoordinatorClient c = client();
  ASSERT_TRUE(register_rank(c, 0).ok());
  ASSERT_TRUE(heartbeat(c, 0, 500).ok());
  EXPECT_EQ(status(c).restarts(), 0);
  EXPECT_FALSE(status(c).has_last_restart());
  pb::RestartRecord restart;
  restart.set_job_id("job1");
  restart.set_restart(1);
  restart.set_rank(0);
  restart.set_host("host0");
  restart.set_cause("killed by signal 9 (Killed)");
  c.report_restart(restart);
  clock_.advance(100);
  ASSERT_TRUE(register_rank(c, 0).ok());  // the new process, resuming at step 475
  ASSERT_TRUE(heartbeat(c, 0, 475).ok());
  clock_.advance(5);
  pb::JobStatus s = status(c);
  EXPECT_EQ(s.rank(0).step(), 475);
  EXPECT_NEAR(s.rank(0).seconds_since_progress(), 5, 1e-6);
  EXPECT_NEAR(s.rank(0).seconds_since_registration(), 5, 1e-6);
  EXPECT_EQ(s.restarts(), 1);
  EXPECT_EQ(s.last_restart().cause(), "killed by signal 9 (Killed)");
  restart.set_restart(2);
  restart.set_cause(std::string(2000, 'x'));
  EXPECT_EQ(status_of([&] { c.report_restart(restart); }).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  restart.set_job_id("../escape");
  restart.set_cause("x");
  EXPECT_EQ(status_of([&] { c.report_restart(restart); }).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status(c).restarts(), 1);
}

// Stall detection with many ranks: one stuck rank among 1,000 that move is the only one stalled.
TEST_F(Coordinator, OneStuckRankAmongManyIsTheOnlyStall) {
  start();
  CoordinatorClient c = client();
  constexpr int kRanks = 1000;
  for (int rank = 0; rank < kRanks; ++rank) ASSERT_TRUE(register_rank(c, rank, kRanks).ok());
  for (int i = 1; i <= 8; ++i) {  // rank 500's last progress is at the first round: 70 s ago
    clock_.advance(10);
    for (int rank = 0; rank < kRanks; ++rank) {
      ASSERT_TRUE(heartbeat(c, rank, rank == 500 ? 1 : i + 1).ok());
    }
  }
  const pb::JobStatus s = status(c);
  ASSERT_EQ(s.rank_size(), kRanks);
  int stalled = 0;
  for (const pb::RankStatus& r : s.rank()) stalled += r.state() == pb::RankStatus::STALLED;
  EXPECT_EQ(stalled, 1);
  EXPECT_EQ(s.rank(500).state(), pb::RankStatus::STALLED);
}

TEST_F(Coordinator, AllRanksWaitingIsNotAStall) {
  start();
  CoordinatorClient c = client();
  ASSERT_TRUE(register_rank(c, 0).ok());
  ASSERT_TRUE(register_rank(c, 1).ok());
  for (int i = 0; i < 10; ++i) {
    clock_.advance(10);
    ASSERT_TRUE(heartbeat(c, 0, 3).ok());
    ASSERT_TRUE(heartbeat(c, 1, 3).ok());
  }
  const pb::JobStatus s = status(c);
  EXPECT_EQ(s.rank(0).state(), pb::RankStatus::ALIVE);  // nobody moved: an evaluation, say
  EXPECT_EQ(s.rank(1).state(), pb::RankStatus::ALIVE);
}

TEST_F(Coordinator, MetricsRoundTripQueryAndPaging) {
  start();
  CoordinatorClient c = client();
  ASSERT_TRUE(register_rank(c, 0).ok());
  ASSERT_TRUE(report(c, 0, 1, 100).ok());
  ASSERT_TRUE(report(c, 0, 101, 150).ok());
  pb::MetricsPage page = query(c, 40, 60);
  ASSERT_EQ(page.record_size(), 21);
  EXPECT_EQ(page.record(0).step(), 40);
  EXPECT_DOUBLE_EQ(page.record(20).loss(), 1.0 / 60);
  page = query(c, 1, 0, 30);
  EXPECT_EQ(page.record_size(), 30);
  EXPECT_TRUE(page.truncated());
  page = query(c, 31, 0, 200);
  EXPECT_EQ(page.record_size(), 120);
  EXPECT_FALSE(page.truncated());
  const pb::JobStatus s = status(c);
  EXPECT_EQ(s.records(), 150);
  EXPECT_EQ(s.rank(0).latest().step(), 150);
  EXPECT_DOUBLE_EQ(s.images_per_second(), 100);
}

// 30 evaluations of 10,000 classes (about 160 KB each, 4.8 MB together) used to make every query
// of the job fail (the page exceeded the 4 MiB message limit). Now pages are cut to fit.
TEST_F(Coordinator, LargeEvaluationsArePagedAndBounded) {
  start();
  CoordinatorClient c = client();
  ASSERT_TRUE(report(c, 0, 1, 30).ok());
  pb::EvaluationRecord e;
  e.set_job_id("job1");
  for (int k = 0; k < 10000; ++k) {
    e.add_precision(0.5);
    e.add_recall(0.5);
  }
  for (int step = 1; step <= 30; ++step) {
    e.set_step(step);
    ASSERT_TRUE(status_of([&] { c.report_evaluation(e, 10); }).ok()) << step;
  }
  e.add_precision(0.5);  // 10,001 classes
  EXPECT_EQ(status_of([&] { c.report_evaluation(e, 10); }).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  int64_t from = 1, pages = 0, records = 0, evaluations = 0;
  for (bool more = true; more && pages < 100; ++pages) {
    pb::MetricsQuery q;
    q.set_job_id("job1");
    q.set_from_step(from);
    pb::MetricsPage page;
    ASSERT_TRUE(status_of([&] { page = c.query_metrics(q, 10); }).ok()) << "from " << from;
    int64_t last = 0;
    for (const pb::StepRecord& r : page.record()) last = std::max(last, r.step());
    for (const pb::StepRecord& r : page.record()) records += r.step() < last || !page.truncated();
    for (const pb::EvaluationRecord& v : page.evaluation()) {
      evaluations += v.step() < last || !page.truncated();
    }
    more = page.truncated();
    from = last;
  }
  EXPECT_GT(pages, 1);
  EXPECT_EQ(records, 30);
  EXPECT_EQ(evaluations, 30);
}

TEST_F(Coordinator, WatchStreamsNewRecords) {
  start();
  CoordinatorClient c = client();
  ASSERT_TRUE(register_rank(c, 0).ok());
  ASSERT_TRUE(report(c, 0, 1, 5).ok());  // before the watch: not streamed
  grpc::ClientContext context;
  prepare(context, 30, c);
  pb::WatchRequest request;
  request.set_job_id("job1");
  const auto stub = stub_for(c);
  std::unique_ptr<grpc::ClientReader<pb::MetricsBatch>> reader =
      stub->WatchMetrics(&context, request);
  std::vector<int64_t> seen;
  std::thread watcher([&] {
    pb::MetricsBatch batch;
    while (seen.size() < 10 && reader->Read(&batch)) {
      for (const pb::StepRecord& r : batch.record()) seen.push_back(r.step());
    }
  });
  // The watch is registered asynchronously: report new steps until the watcher has seen 10 (a
  // slow, sanitized build may register it after the first reports).
  std::atomic<bool> done{false};
  std::thread reporter([&] {
    for (int64_t step = 6; !done && step < 6 + 5 * 400; step += 5) {
      ASSERT_TRUE(report(c, 0, step, step + 4).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  watcher.join();
  done = true;
  reporter.join();
  context.TryCancel();
  ASSERT_EQ(seen.size(), 10u);
  // Streamed in order, without gaps, none from before the watch.
  EXPECT_GE(seen.front(), 6);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_EQ(seen[i], seen[i - 1] + 1);
}

TEST_F(Coordinator, CheckpointUploadListDownloadAndLatest) {
  start();
  CoordinatorClient c = client();
  const std::string a = payload(3'000'000, 1), b = payload(1234, 2);  // a spans three chunks
  const pb::CheckpointInfo ia = c.upload(header(10, 0.8), a);
  EXPECT_EQ(ia.name(), "step-000000010");
  EXPECT_EQ(ia.sha256(), sha256_hex(a));
  const pb::CheckpointInfo ib = c.upload(header(20, 0.7, "named.one"), b);
  EXPECT_EQ(ib.name(), "named.one");
  const std::vector<pb::CheckpointInfo> l = list(c);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].step(), 10);
  EXPECT_EQ(l[1].size(), 1234u);
  pb::CheckpointInfo h;
  EXPECT_EQ(c.download("job1", "step-000000010", &h), a);
  EXPECT_EQ(h.step(), 10);
  EXPECT_EQ(c.download("job1", "latest", &h), b);
  EXPECT_EQ(h.name(), "named.one");
  EXPECT_EQ(status_of([&] { c.download("job1", "nope", &h); }).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(Coordinator, RetentionKeepsTheNewestAndTheMostAccurate) {
  start();
  CoordinatorClient c = client();
  const double accuracy[] = {0.5, 0.9, 0.6, 0.7, 0.65, 0.66};
  for (int i = 0; i < 6; ++i) c.upload(header(10 * (i + 1), accuracy[i]), payload(100, char(i)));
  std::vector<int64_t> steps;
  for (const pb::CheckpointInfo& i : list(c)) steps.push_back(i.step());
  EXPECT_EQ(steps, (std::vector<int64_t>{20, 40, 50, 60}));  // best (20) + newest three
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir_.file("state/checkpoints/job1"))) {
    files += entry.path().extension() == ".ckpt";
  }
  EXPECT_EQ(files, 4);
}

TEST_F(Coordinator, BadUploadsAreRefusedAndLeaveNothing) {
  start();
  CoordinatorClient c = client();
  // A header whose hash does not match the bytes.
  auto writer = raw_upload(c);
  writer->Write(first_chunk(header(5), "abcd", "abce"));
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(status.error_message().find("sha256 mismatch"), std::string::npos);
  // Over the size limit (4 MiB here).
  EXPECT_EQ(status_of([&] { c.upload(header(6), payload((4 << 20) + 1, 3)); }).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Names that would escape the directory, and bad job ids.
  for (const std::string name : {"../evil", "a/b", ".hidden", "x\\y"}) {
    EXPECT_EQ(status_of([&] { c.upload(header(7, -1, name), "data"); }).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << name;
  }
  pb::CheckpointInfo bad_job = header(8);
  bad_job.set_job_id("../../etc");
  EXPECT_EQ(status_of([&] { c.upload(bad_job, "data"); }).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(list(c).empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("state/evil.ckpt")));
}

TEST_F(Coordinator, ASecondHeaderAndLongJobIdsAreRefusedAsBadInput) {
  start();
  CoordinatorClient c = client();
  {
    auto writer = raw_upload(c);
    const std::string bytes = payload(2000, 7);
    pb::CheckpointChunk first = first_chunk(header(5), bytes, bytes.substr(0, 1000));
    ASSERT_TRUE(writer->Write(first));
    first.set_data(bytes.substr(1000));  // still carrying a header
    writer->Write(first);
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find("first chunk only"), std::string::npos);
  }
  EXPECT_TRUE(list(c).empty());
  // A 10 KB job id: refused as what it is, its echo cut short (not RESOURCE_EXHAUSTED for the
  // size of the error's metadata).
  pb::CheckpointInfo long_id = header(6);
  long_id.set_job_id(std::string(10000, 'x') + "/");
  const grpc::Status status = status_of([&] { c.upload(long_id, "data"); });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(status.error_message().size(), 300u);
}

TEST_F(Coordinator, ACheckpointDamagedWhileServingIsNotServed) {
  start();
  CoordinatorClient c = client();
  c.upload(header(10), payload(5000, 5));
  c.upload(header(20), payload(5000, 6));
  {
    std::fstream f(dir_.file("state/checkpoints/job1/step-000000020.ckpt"),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('X');
  }
  pb::CheckpointInfo h;
  EXPECT_EQ(c.download("job1", "latest", &h), payload(5000, 5)) << "the newest intact one";
  EXPECT_EQ(h.name(), "step-000000010");
  EXPECT_EQ(status_of([&] { c.download("job1", "step-000000020", &h); }).error_code(),
            grpc::StatusCode::NOT_FOUND);
  const std::vector<pb::CheckpointInfo> l = list(c);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_TRUE(l[1].corrupt());
}

TEST_F(Coordinator, ADamagedManifestStopsNoOtherJob) {
  CoordinatorOptions options;
  start(options);
  CoordinatorClient c = client();
  c.upload(header(10), payload(5000, 5));
  server_.reset();
  std::filesystem::create_directories(dir_.file("state/checkpoints/other"));
  std::ofstream(dir_.file("state/checkpoints/other/manifest.pbtxt")) << "checkpoint { {{ garbage";
  std::ofstream(dir_.file("state/checkpoints/job1/manifest.pbtxt")) << "\x01\x02 not text";
  restart();  // starts, with both jobs: job1's manifest rebuilt from what is intact (nothing
              // verifies as a convoy checkpoint here: the payloads are not checkpoints)
  CoordinatorClient again = client();
  EXPECT_TRUE(list(again).empty());
  EXPECT_TRUE(std::filesystem::exists(dir_.file("state/checkpoints/job1/step-000000010.ckpt")))
      << "an unlisted file is left alone, never deleted";
  again.upload(header(20), payload(5000, 6));
  EXPECT_EQ(list(again).size(), 1u);
}

// Every job's metrics used to keep two files open for good: with 256 descriptors, the ~120th job
// failed and the coordinator then crashed. Now 600 jobs report, the coordinator restarts on that
// state with the same limit, and every job's records are still there.
TEST_F(Coordinator, ManyJobsNeedNoFileDescriptorsOfTheirOwn) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  struct Restore {
    rlimit limit;
    ~Restore() { setrlimit(RLIMIT_NOFILE, &limit); }
  } restore{saved};
  rlimit low = saved;
  low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 256);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  start();
  const auto batch = [](int job) {
    pb::MetricsBatch b;
    b.set_job_id("ng" + std::to_string(job));
    pb::StepRecord* r = b.add_record();
    r->set_step(job + 1);
    r->set_loss(1.0);
    return b;
  };
  {
    CoordinatorClient c = client();
    for (int job = 0; job < 600; ++job) {
      ASSERT_TRUE(status_of([&] { c.report_metrics(batch(job), 5); }).ok()) << "job " << job;
    }
  }
  restart();
  CoordinatorClient c = client();
  for (const int job : {0, 299, 599}) {
    pb::MetricsQuery q;
    q.set_job_id("ng" + std::to_string(job));
    const pb::MetricsPage page = c.query_metrics(q, 5);
    ASSERT_EQ(page.record_size(), 1) << job;
    EXPECT_EQ(page.record(0).step(), job + 1);
  }
}

// Uploads that send a first chunk and then nothing: at most two at once here, and both ended
// once the clock passes the idle limit, leaving no temporary file.
TEST_F(Coordinator, IdleUploadsEndAndTheirNumberIsCapped) {
  CoordinatorOptions options;
  options.max_concurrent_uploads = 2;
  options.upload_idle_seconds = 60;
  start(options);
  CoordinatorClient c = client();
  const auto stub = stub_for(c);
  const std::string bytes = payload(300'000, 8);
  grpc::ClientContext contexts[2];
  pb::CheckpointInfo infos[2];
  std::unique_ptr<grpc::ClientWriter<pb::CheckpointChunk>> stalled[2];
  for (int i = 0; i < 2; ++i) {
    prepare(contexts[i], 60, c);
    stalled[i] = stub->UploadCheckpoint(&contexts[i], &infos[i]);
    ASSERT_TRUE(stalled[i]->Write(first_chunk(header(30 + i), bytes, bytes.substr(0, 1000))));
  }
  // A third is turned away while both are in progress (they register as their calls start).
  grpc::StatusCode third = grpc::StatusCode::OK;
  for (int attempt = 0; attempt < 100 && third != grpc::StatusCode::UNAVAILABLE; ++attempt) {
    third = status_of([&] {
              c.upload(header(40 + attempt, -1, "third-" + std::to_string(attempt)), "x");
            }).error_code();
    if (third != grpc::StatusCode::UNAVAILABLE) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_EQ(third, grpc::StatusCode::UNAVAILABLE) << "a busy coordinator: try again later";
  // Idle past the limit, then a write: the server checks ten times a second, so within the 200 ms
  // after each advance it ends the stream (a write before its check would count as activity,
  // hence the loop).
  pb::CheckpointChunk more;
  more.set_data(std::string(1000, 'x'));
  for (int i = 0; i < 2; ++i) {
    bool open = true;
    for (int attempt = 0; attempt < 50 && open; ++attempt) {
      clock_.advance(61);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      open = stalled[i]->Write(more);
    }
    EXPECT_FALSE(open) << "upload " << i << " was not ended";
    EXPECT_EQ(stalled[i]->Finish().error_code(), grpc::StatusCode::CANCELLED) << i;
  }
  const auto temporaries = [&] {
    int n = 0;
    for (const auto& entry :
         std::filesystem::directory_iterator(dir_.file("state/checkpoints/job1"))) {
      n += entry.path().filename().string().find(".upload-") != std::string::npos;
    }
    return n;
  };
  for (int attempt = 0; attempt < 100 && temporaries() > 0; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(temporaries(), 0);
  EXPECT_TRUE(status_of([&] { c.upload(header(50), bytes); }).ok()) << "room again";
}

TEST_F(Coordinator, UploadKilledHalfWayIsNotListed) {
  start();
  CoordinatorClient c = client();
  {
    auto writer = raw_upload(c);
    const std::string bytes = payload(500'000, 4);
    ASSERT_TRUE(writer->Write(first_chunk(header(9), bytes, bytes.substr(0, 200'000))));
    raw_context_->TryCancel();  // the uploader dies half-way
    writer->Finish();
  }
  EXPECT_TRUE(list(c).empty());
  // Nothing left behind once the server has noticed (and none after a restart either).
  restart();
  CoordinatorClient again = client();
  EXPECT_TRUE(list(again).empty());
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir_.file("state/checkpoints/job1"))) {
    files += entry.path().filename() != "manifest.pbtxt";
  }
  EXPECT_EQ(files, 0);
}

TEST_F(Coordinator, RestartKeepsHistoryAndRefusesCorruptCheckpoints) {
  start();
  {
    CoordinatorClient c = client();
    ASSERT_TRUE(register_rank(c, 0).ok());
    ASSERT_TRUE(report(c, 0, 1, 40).ok());
    c.upload(header(10), payload(5000, 5));
    c.upload(header(20), payload(5000, 6));
  }
  server_.reset();
  // While it is down, a checkpoint file is damaged on disk.
  {
    std::fstream f(dir_.file("state/checkpoints/job1/step-000000020.ckpt"),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('X');
  }
  restart();
  CoordinatorClient c = client();
  EXPECT_EQ(query(c, 1, 0).record_size(), 40);
  const std::vector<pb::CheckpointInfo> l = list(c);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_FALSE(l[0].corrupt());
  EXPECT_TRUE(l[1].corrupt());
  pb::CheckpointInfo h;
  try {
    c.download("job1", "step-000000020", &h);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(to_status(e).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("corrupt"), std::string::npos);
  }
  EXPECT_EQ(c.download("job1", "latest", &h), payload(5000, 5));  // the newest valid one
  // The registration survived the restart: the rank's next heartbeat is accepted as it is.
  EXPECT_EQ(heartbeat(c, 0, 41).error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(heartbeat(c, 1, 41).error_code(), grpc::StatusCode::NOT_FOUND);  // never registered
}

TEST_F(Coordinator, RegistrationsAndRestartCountsSurviveARestartAndTheLogStaysCompact) {
  start();
  {
    CoordinatorClient c = client();
    // Twenty restarts of a 2-rank job: 40 registrations and 20 restarts appended.
    for (int restart = 1; restart <= 20; ++restart) {
      pb::RestartRecord r;
      r.set_job_id("job1");
      r.set_restart(restart);
      r.set_cause("killed by signal 9 (Killed)");
      c.report_restart(r);
      ASSERT_TRUE(register_rank(c, 0).ok());
      ASSERT_TRUE(register_rank(c, 1).ok());
    }
  }
  const auto log_size = [&] {
    return std::filesystem::file_size(dir_.file("state/registrations.log"));
  };
  const uintmax_t before = log_size();
  for (int i = 0; i < 2; ++i) {
    restart();
    CoordinatorClient c = client();
    const pb::JobStatus s = status(c);
    EXPECT_EQ(s.world_size(), 2);
    ASSERT_EQ(s.rank_size(), 2);
    EXPECT_EQ(s.rank(1).host(), "host1");
    EXPECT_EQ(s.rank(0).state(), pb::RankStatus::ALIVE);
    EXPECT_EQ(s.restarts(), 20);
    EXPECT_EQ(heartbeat(c, 1, 5).error_code(), grpc::StatusCode::OK);
  }
  EXPECT_LT(log_size() * 10, before);  // two registrations and one restart record are left
  // Ranks that stop calling are gone after gone_after seconds, as before a restart.
  clock_.advance(31);
  CoordinatorClient c = client();
  EXPECT_EQ(status(c).rank(0).state(), pb::RankStatus::GONE);
}

TEST_F(Coordinator, TokenRequiredForEveryCall) {
  CoordinatorOptions options;
  options.auth_token = "s3cret-token";
  start(options);
  for (const std::string token : {"", "wrong"}) {
    CoordinatorClient c = client(token);
    EXPECT_EQ(register_rank(c, 0).error_code(), grpc::StatusCode::UNAUTHENTICATED) << token;
    EXPECT_EQ(report(c, 0, 1, 2).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(status_of([&] { c.list_checkpoints(""); }).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(status_of([&] { c.upload(header(1), "x"); }).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    pb::CheckpointInfo h;
    EXPECT_EQ(status_of([&] { c.download("job1", "latest", &h); }).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  CoordinatorClient c = client("s3cret-token");
  EXPECT_TRUE(register_rank(c, 0).ok());
  EXPECT_TRUE(report(c, 0, 1, 2).ok());
}

TEST_F(Coordinator, Tls) {
  const std::string cert = dir_.file("cert.pem"), key = dir_.file("key.pem");
  const testing::CommandResult made = testing::make_self_signed_certificate(cert, key);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  CoordinatorOptions options;
  options.tls_cert_file = cert;
  options.tls_key_file = key;
  start(options);
  std::ifstream in(cert);
  const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CoordinatorClient secure({"127.0.0.1:" + std::to_string(server_->port()), "", pem});
  EXPECT_TRUE(register_rank(secure, 0).ok());
  secure.upload(header(3), payload(70'000, 7));
  pb::CheckpointInfo h;
  EXPECT_EQ(secure.download("job1", "latest", &h), payload(70'000, 7));
  // A plaintext client cannot talk to it.
  CoordinatorClient plain = client();
  EXPECT_NE(register_rank(plain, 0).error_code(), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace convoy
