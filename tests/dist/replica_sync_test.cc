// Keeping replicas identical, and catching ranks that were started differently.
#include "dist/replica_sync.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/model_spec.h"
#include "dist/fake_communicator.h"

namespace convoy {
namespace {

TEST(ReplicaSync, BroadcastMakesEveryRankEqualToRankZero) {
  FakeWorld world(3);
  std::vector<uint32_t> digests(3);
  world.run([&](Communicator& comm) {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    Model model(load_model_spec("lenet5"), 2, engine, Model::Mode::kInference, "lenet5");
    model.initialize(100 + static_cast<uint64_t>(comm.rank()));  // different on every rank
    EXPECT_THROW(verify_identical_parameters(comm, model, "before"), std::runtime_error);
    broadcast_parameters(comm, model);
    verify_identical_parameters(comm, model, "after");
    digests[static_cast<size_t>(comm.rank())] = parameters_digest(model);
  });
  EXPECT_EQ(digests[0], digests[1]);
  EXPECT_EQ(digests[0], digests[2]);
}

TEST(ReplicaSync, DifferingReplicasAreNamed) {
  FakeWorld world(3);
  world.run([&](Communicator& comm) {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    Model model(load_model_spec("lenet5"), 2, engine, Model::Mode::kInference, "lenet5");
    model.initialize(comm.rank() == 2 ? 9 : 1);
    try {
      verify_identical_parameters(comm, model, "after training");
      ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(),
                   "model replicas differ after training: the parameters of rank(s) 2 are not "
                   "those of rank 0");
    }
  });
}

TEST(ReplicaSync, ConfigurationMismatchNamesFieldAndRanks) {
  FakeWorld world(3);
  world.run([&](Communicator& comm) {
    const JobFingerprint mine = {
        {"--batch-size", "64"}, {"--lr", comm.rank() == 0 ? "0.05" : "0.1"}, {"--seed", "1"}};
    try {
      check_same_configuration(comm, mine);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(),
                   "ranks disagree on --lr: rank 0 has 0.05, rank 1 has 0.1, rank 2 has 0.1");
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
      EXPECT_TRUE(e.job_wide()) << "every rank stops by itself; none needs to abort the others";
    }
  });
  world.run([&](Communicator& comm) {
    EXPECT_NO_THROW(check_same_configuration(comm, {{"--lr", "0.05"}}));
  });
}

}  // namespace
}  // namespace convoy
