// Disk faults at every call site: each action that writes (an atomic file, a checkpoint stored
// with retention, a batch of metrics) runs once to count its file operations, then once per
// operation with that one failing -- a full disk for creations and writes (writes half done), EIO
// for fsync, close, rename, truncate and the directory's fsync, a failed removal. Then again with
// the disk failing from that operation on and staying so: full (creations, writes, fsyncs,
// renames and links fail; removals and truncations still work) or broken (everything fails). The
// second kind reaches the code that runs only after a failure: removing a temporary, putting a
// replaced file back, cutting off half a record. After each: one clear line of the I/O kind (exit
// code 1), what was there before intact and served, no temporary file after the next start, and
// the same object keeps working once the disk does.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "dist/checkpoint_store.h"
#include "dist/coordinator_client.h"
#include "dist/coordinator_service.h"
#include "dist/job_registry.h"
#include "dist/metrics_store.h"
#include "dist/record_log.h"
#include "dist/sha256.h"
#include "testing/fault_injecting_file_system.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;
using testing::FaultInjectingFileSystem;
using testing::TempDir;
using Op = FaultInjectingFileSystem::Op;

// How the disk fails at the chosen operation.
enum class Disk {
  kOneFault,  // that operation only (testing::typical_fault)
  kFillsUp,   // ENOSPC from that operation on; removals and truncations still work
  kBreaks,    // EIO from that operation on, removals included (they return false)
};

const char* disk_name(Disk disk) {
  switch (disk) {
    case Disk::kOneFault:
      return "one operation fails";
    case Disk::kFillsUp:
      return "the disk fills up";
    case Disk::kBreaks:
      return "the disk breaks";
  }
  return "?";
}

// The fault a run had: the kind of the first failed operation, and how the disk went on.
struct Injected {
  Op op;
  Disk disk;
};

// Runs `action` in a fresh directory prepared by `setup`, once without faults (it must succeed)
// and then, for each way the disk can fail, once per file operation it made, with the disk failing
// there. An action that goes on after an Error calls file_system.clear() first: the disk works
// again. `check` sees each run: the directory, the fault and the Error the action threw, if any.
// Returns the number of operations (the runs with a fault are up to three times as many).
size_t with_each_operation_failing(
    const std::function<void(const std::string& dir)>& setup,
    const std::function<void(const std::string& dir, FaultInjectingFileSystem& file_system)>&
        action,
    const std::function<void(const std::string& dir, Injected fault,
                             const std::optional<Error>& error)>& check) {
  std::vector<Op> operations;
  {
    TempDir dir;
    setup(dir.path());
    FaultInjectingFileSystem counting;
    action(dir.path(), counting);
    operations = counting.operations();
  }
  size_t runs = 0;
  for (const Disk disk : {Disk::kOneFault, Disk::kFillsUp, Disk::kBreaks}) {
    for (size_t i = 0; i < operations.size(); ++i) {
      const Op op = operations[i];
      const bool frees_space = op == Op::kRemove || op == Op::kTruncate;
      if (disk == Disk::kFillsUp && frees_space) continue;  // a disk fills up at a write
      SCOPED_TRACE(::testing::Message()
                   << disk_name(disk) << " at operation " << i << " of " << operations.size()
                   << ": " << FaultInjectingFileSystem::op_name(op));
      TempDir dir;
      setup(dir.path());
      FaultInjectingFileSystem faulty;
      switch (disk) {
        case Disk::kOneFault:
          faulty.fail_at(i, testing::typical_fault(op));
          break;
        case Disk::kFillsUp:
          faulty.fail_from(i, {.err = ENOSPC, .short_write = true}, {Op::kRemove, Op::kTruncate});
          break;
        case Disk::kBreaks:
          faulty.fail_from(i, {.err = EIO, .short_write = true});
          break;
      }
      std::optional<Error> error;
      try {
        action(dir.path(), faulty);
      } catch (const Error& e) {
        error = e;
      }
      if (disk == Disk::kOneFault) {
        EXPECT_EQ(faulty.injected(), 1u);
      } else {
        EXPECT_GE(faulty.injected(), 1u);
      }
      check(dir.path(), {op, disk}, error);
      ++runs;
    }
  }
  // For the record (README, "Reliability"): how many faults this action was put through.
  std::printf("%zu file operations, each failed in turn; %zu runs with a failing disk\n",
              operations.size(), runs);
  return operations.size();
}

// A failure the user sees: the I/O kind (exit code 1, not 2), one line, naming `path`.
void expect_io_error(const std::optional<Error>& error, const std::string& path) {
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->kind(), ErrorKind::kIo) << error->what();
  const std::string message = error->what();
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

// What a store's caller is told: an I/O error, unless the disk failed at cleanup first (a removal,
// or the directory's fsync after the manifest's rename, which stores the checkpoint and says so
// on stderr). Then it is told nothing when that was the only fault, and an I/O error or nothing
// when the disk went on failing.
void expect_told(const std::optional<Error>& error, const std::string& dir, Injected fault) {
  const bool cleanup = fault.op == Op::kRemove || fault.op == Op::kSyncDir;
  if (!cleanup || error) expect_io_error(error, dir);
  if (cleanup && fault.disk == Disk::kOneFault) {
    EXPECT_FALSE(error.has_value()) << error->what();
  }
}

// Files in `dir` whose names mark them as temporaries (atomic writes, uploads).
std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp.") != std::string::npos || name.find(".upload-") != std::string::npos) {
      found.push_back(name);
    }
  }
  return found;
}

TEST(StorageFaults, AtomicWriteLeavesTheOldFileOrTheWholeNewOne) {
  const size_t operations = with_each_operation_failing(
      [](const std::string& dir) { testing::write_file(dir + "/model.ckpt", "old"); },
      [](const std::string& dir, FaultInjectingFileSystem& file_system) {
        write_file_atomically(dir + "/model.ckpt", "the new contents", file_system);
      },
      [](const std::string& dir, Injected fault, const std::optional<Error>& error) {
        const std::string path = dir + "/model.ckpt";
        if (fault.op == Op::kRemove && fault.disk == Disk::kOneFault) {
          EXPECT_FALSE(error.has_value());  // removing is cleanup: nothing to report
        } else {
          expect_io_error(error, path);
        }
        // Before the rename the old file stands; the directory's fsync comes after it.
        const bool replaced = !error || fault.op == Op::kSyncDir;
        EXPECT_EQ(testing::read_file(path), replaced ? "the new contents" : "old");
        // A broken disk cannot remove the temporary; the next write of the file does.
        if (fault.disk != Disk::kBreaks) {
          EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
        }
        write_file_atomically(path, "later");  // the disk works again
        EXPECT_EQ(testing::read_file(path), "later");
        EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
      });
  EXPECT_GE(operations, 6u);  // create, write, fsync, close, rename, fsync the directory
}

TEST(StorageFaults, AtomicWriteOfAFileWrittenByALibrary) {
  with_each_operation_failing(
      [](const std::string& dir) { testing::write_file(dir + "/out.npz", "old"); },
      [](const std::string& dir, FaultInjectingFileSystem& file_system) {
        write_file_atomically_with(
            dir + "/out.npz", [](const std::string& temp) { testing::write_file(temp, "archive"); },
            file_system);
      },
      [](const std::string& dir, Injected fault, const std::optional<Error>& error) {
        if (fault.op != Op::kRemove || fault.disk != Disk::kOneFault) {
          expect_io_error(error, dir + "/out.npz");
        }
        const bool replaced = !error || fault.op == Op::kSyncDir;
        EXPECT_EQ(testing::read_file(dir + "/out.npz"), replaced ? "archive" : "old");
        if (fault.disk != Disk::kBreaks) {
          EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
        }
        write_file_atomically(dir + "/out.npz", "later");
        EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
      });
}

std::string checkpoint_bytes(int64_t step) {
  pb::Checkpoint checkpoint;
  checkpoint.set_step(step);
  checkpoint.set_epoch(step / 10);
  return serialize_checkpoint(checkpoint);
}

pb::CheckpointInfo at_step(int64_t step) {
  pb::CheckpointInfo info;
  info.set_step(step);
  return info;
}

// The checkpoints a store opened on `dir` serves, as step -> verified bytes match.
void expect_served(const CheckpointStore& store, const std::vector<int64_t>& steps) {
  for (const int64_t step : steps) {
    const pb::CheckpointInfo info = store.find(fmt::format("step-{:09}", step));
    EXPECT_EQ(testing::read_file(store.path(info.name())), checkpoint_bytes(step));
  }
}

TEST(StorageFaults, ACheckpointStoredWithRetentionLeavesThePreviousOnesServed) {
  const CheckpointStore::Options kLocal{.keep_last = 2, .max_bytes = 1 << 20};
  const size_t operations = with_each_operation_failing(
      [&](const std::string& dir) {
        CheckpointStore store(dir, kLocal);
        store.put(at_step(10), checkpoint_bytes(10));
        store.put(at_step(20), checkpoint_bytes(20));
      },
      [&](const std::string& dir, FaultInjectingFileSystem& file_system) {
        CheckpointStore::Options options = kLocal;
        options.file_system = &file_system;
        CheckpointStore store(dir, options);
        std::optional<Error> error;
        try {
          store.put(at_step(30), checkpoint_bytes(30));  // retention then drops step 10
        } catch (const Error& e) {
          error = e;
        }
        if (error) {
          // The same store still serves what it had, and stores once the disk works again.
          EXPECT_EQ(store.find("latest").step(), 20);
          expect_served(store, {10, 20});
          file_system.clear();
          EXPECT_EQ(store.put(at_step(40), checkpoint_bytes(40)).step(), 40);
          throw *error;
        }
      },
      [](const std::string& dir, Injected fault, const std::optional<Error>& error) {
        expect_told(error, dir, fault);
        // The next start: nothing half-written served, no temporaries, the earlier ones intact.
        const CheckpointStore reopened(dir, {.keep_last = 2, .max_bytes = 1 << 20});
        EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
        for (const pb::CheckpointInfo& info : reopened.list()) {
          if (info.corrupt()) continue;
          EXPECT_EQ(sha256_of_file(reopened.path(info.name())), info.sha256()) << info.name();
        }
        if (error) {
          expect_served(reopened, {40});
          EXPECT_EQ(reopened.find("latest").step(), 40);
        } else {
          expect_served(reopened, {20, 30});
        }
      });
  EXPECT_GE(operations, 11u);  // the upload's five, the manifest's six, removals
}

TEST(StorageFaults, ReplacingACheckpointOfTheSameNameKeepsTheOldOneUntilItIsDone) {
  const CheckpointStore::Options kLocal{.keep_last = 3, .max_bytes = 1 << 20};
  const auto named = [](int64_t step) {
    pb::CheckpointInfo info = at_step(step);
    info.set_name("same");
    return info;
  };
  with_each_operation_failing(
      [&](const std::string& dir) {
        CheckpointStore(dir, kLocal).put(named(10), checkpoint_bytes(10));
      },
      [&](const std::string& dir, FaultInjectingFileSystem& file_system) {
        CheckpointStore::Options options = kLocal;
        options.file_system = &file_system;
        CheckpointStore(dir, options).put(named(20), checkpoint_bytes(20));
      },
      [](const std::string& dir, Injected fault, const std::optional<Error>& error) {
        expect_told(error, dir, fault);
        const CheckpointStore reopened(dir, {.keep_last = 3, .max_bytes = 1 << 20});
        const pb::CheckpointInfo info = reopened.find("same");
        // The old one until the manifest names the new one.
        const bool stored = !error;
        EXPECT_EQ(testing::read_file(reopened.path("same")), checkpoint_bytes(stored ? 20 : 10));
        EXPECT_EQ(info.step(), stored ? 20 : 10);
        EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
      });
}

// The index of the last operation of `kind` that `action` makes on a fresh disk.
size_t last_operation(Op kind, const std::function<void(FileSystem&)>& action) {
  FaultInjectingFileSystem counting;
  action(counting);
  const std::vector<Op> operations = counting.operations();
  const auto it = std::find(operations.rbegin(), operations.rend(), kind);
  EXPECT_NE(it, operations.rend());
  return static_cast<size_t>(operations.rend() - it) - 1;
}

TEST(StorageFaults, AReplacementThatCannotBeUndoneIsServedUntilTheDiskWorks) {
  const auto named = [](const std::string& name, int64_t step) {
    pb::CheckpointInfo info = at_step(step);
    info.set_name(name);
    return info;
  };
  // The disk breaks at the manifest's rename, after the new file took the old one's name: putting
  // the old file back fails too.
  const size_t manifest_rename = last_operation(Op::kRename, [&](FileSystem& file_system) {
    TempDir dir;
    CheckpointStore::Options options{.keep_last = 3, .max_bytes = 1 << 20};
    CheckpointStore(dir.path(), options).put(named("same", 10), checkpoint_bytes(10));
    options.file_system = &file_system;
    CheckpointStore(dir.path(), options).put(named("same", 20), checkpoint_bytes(20));
  });
  for (const bool same_name_next : {true, false}) {
    SCOPED_TRACE(same_name_next ? "replaced again" : "another one stored");
    TempDir dir;
    CheckpointStore::Options options{.keep_last = 3, .max_bytes = 1 << 20};
    CheckpointStore(dir.path(), options).put(named("same", 10), checkpoint_bytes(10));
    FaultInjectingFileSystem disk;
    options.file_system = &disk;
    CheckpointStore store(dir.path(), options);
    disk.fail_from(manifest_rename, {.err = EIO});
    EXPECT_THROW(store.put(named("same", 20), checkpoint_bytes(20)), Error);
    EXPECT_GE(disk.injected(), 2u);  // the manifest's rename and the one putting the file back
    // Still served as listed, from where the old file is, while the disk is broken.
    pb::CheckpointInfo info = store.find("same");
    EXPECT_EQ(info.step(), 10);
    EXPECT_EQ(testing::read_file(store.path("same")), checkpoint_bytes(10));
    EXPECT_EQ(sha256_of_file(store.path("same")), info.sha256());
    // A store while the disk is still broken fails and changes nothing.
    EXPECT_THROW(store.put(named("other", 5), checkpoint_bytes(5)), Error);
    EXPECT_EQ(testing::read_file(store.path("same")), checkpoint_bytes(10));
    // The disk works again: the next store puts the old file back first.
    disk.clear();
    if (same_name_next) {
      store.put(named("same", 30), checkpoint_bytes(30));
    } else {
      store.put(named("other", 5), checkpoint_bytes(5));
    }
    const int64_t expected = same_name_next ? 30 : 10;
    EXPECT_EQ(store.find("same").step(), expected);
    EXPECT_EQ(store.path("same"), dir.file("same.ckpt"));
    EXPECT_EQ(testing::read_file(store.path("same")), checkpoint_bytes(expected));
    const CheckpointStore reopened(dir.path(), {.keep_last = 3, .max_bytes = 1 << 20});
    EXPECT_EQ(reopened.find("same").step(), expected);
    EXPECT_EQ(testing::read_file(reopened.path("same")), checkpoint_bytes(expected));
    EXPECT_EQ(temporaries(dir.path()), std::vector<std::string>{});
  }
}

TEST(StorageFaults, AReplacementCutShortByACrashIsUndoneWhenTheStoreOpens) {
  TempDir dir;
  const CheckpointStore::Options options{.keep_last = 3, .max_bytes = 1 << 20};
  pb::CheckpointInfo info = at_step(10);
  info.set_name("same");
  CheckpointStore(dir.path(), options).put(info, checkpoint_bytes(10));
  // What a kill between the rename and the manifest leaves: the new file under the name, the
  // old one beside it, the manifest still describing the old one.
  const std::string path = dir.file("same.ckpt");
  std::filesystem::copy_file(path, path + ".tmp.previous");
  testing::write_file(path, checkpoint_bytes(20));
  const CheckpointStore reopened(dir.path(), options);
  EXPECT_EQ(testing::read_file(path), checkpoint_bytes(10));
  EXPECT_FALSE(reopened.find("same").corrupt());
  EXPECT_EQ(temporaries(dir.path()), std::vector<std::string>{});
}

std::vector<int64_t> stored_steps(const std::string& dir, const std::string& job) {
  MetricsStore store(dir, 100);
  pb::MetricsQuery query;
  query.set_job_id(job);
  std::vector<int64_t> steps;
  const pb::MetricsPage page = store.query(query, 1000);
  for (const pb::StepRecord& r : page.record()) steps.push_back(r.step());
  return steps;
}

std::vector<pb::StepRecord> steps(int64_t from, int64_t to) {
  std::vector<pb::StepRecord> records;
  for (int64_t s = from; s <= to; ++s) {
    records.emplace_back().set_step(s);
    records.back().set_loss(1.0 / double(s));
  }
  return records;
}

TEST(StorageFaults, AFailedMetricsAppendLosesNothingElse) {
  std::vector<int64_t> acknowledged;  // the steps of every append that returned
  const size_t operations = with_each_operation_failing(
      [&](const std::string& dir) {
        MetricsStore(dir, 100).append("job", steps(1, 3));
        acknowledged = {1, 2, 3};
      },
      [&](const std::string& dir, FaultInjectingFileSystem& file_system) {
        MetricsStore store(dir, 100, file_system);
        std::optional<Error> error;
        // A batch that fails is not acknowledged; the one after it (the disk works again) is.
        for (const auto& [from, to] : {std::pair{4, 5}, std::pair{6, 6}}) {
          try {
            store.append("job", steps(from, to));
            for (int64_t s = from; s <= to; ++s) acknowledged.push_back(s);
          } catch (const Error& e) {
            error = e;
            file_system.clear();
          }
          store.sync();  // reports a failed fsync on stderr; the next sync tries again
        }
        if (error) throw *error;
      },
      [&](const std::string& dir, Injected, const std::optional<Error>& error) {
        if (error) {
          expect_io_error(error, dir);
        } else {
          EXPECT_EQ(acknowledged, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
        }
        // Exactly what was acknowledged: the failed batch is not half there, and what came after
        // it is not hidden behind a damaged record.
        EXPECT_EQ(stored_steps(dir, "job"), acknowledged);
      });
  EXPECT_GE(operations, 18u);  // opening both logs, two appends and syncs, the closing sync
}

pb::RegisterRequest registration(int rank) {
  pb::RegisterRequest r;
  r.set_job_id("a");
  r.set_rank(rank);
  r.set_world_size(2);
  r.set_host("host");
  return r;
}

TEST(StorageFaults, RegistrationsAlreadyKeptSurviveAFailingDisk) {
  const FakeClock clock;
  const auto log = [](const std::string& dir) { return dir + "/registrations.log"; };
  const size_t operations = with_each_operation_failing(
      [&](const std::string& dir) {
        JobRegistry(clock, 60, 30, log(dir)).register_rank(registration(0));
      },
      [&](const std::string& dir, FaultInjectingFileSystem& file_system) {
        JobRegistry registry(clock, 60, 30, log(dir), file_system);  // compacts the log
        registry.register_rank(registration(1));                     // a failed append only warns
        pb::JobStatus status;
        ASSERT_TRUE(registry.status("a", &status));
        EXPECT_EQ(status.rank_size(), 2);  // in memory, whatever the disk did
      },
      [&](const std::string& dir, Injected, const std::optional<Error>& error) {
        EXPECT_FALSE(error.has_value()) << error->what();  // the disk never stops a registration
        const JobRegistry reopened(clock, 60, 30, log(dir));
        pb::JobStatus status;
        ASSERT_TRUE(reopened.status("a", &status));
        ASSERT_GE(status.rank_size(), 1);
        EXPECT_EQ(status.rank(0).rank(), 0);
        EXPECT_EQ(status.world_size(), 2);
        EXPECT_EQ(temporaries(dir), std::vector<std::string>{});
      });
  EXPECT_GE(operations, 9u);  // the compaction's atomic write, opening the log, one append
}

TEST(StorageFaults, ALogWhoseFailedAppendCannotBeCutIsCutBeforeTheNextAppend) {
  TempDir dir;
  const std::string path = dir.file("steps.log");
  FaultInjectingFileSystem faulty;
  std::vector<std::string> seen;
  {
    RecordLog log(
        path, [](std::string_view) {}, faulty);
    log.append({"one", "two"});
    const uintmax_t size = std::filesystem::file_size(path);
    // The append writes half its record and fails, and cutting it off fails too.
    faulty.fail_kinds({Op::kAppend, Op::kTruncate}, {.err = ENOSPC, .short_write = true});
    EXPECT_THROW(log.append({std::string(1000, 'x')}), Error);
    EXPECT_GT(std::filesystem::file_size(path), size);  // the damaged part is there
    faulty.clear();
    log.append({"three"});  // cuts it first
  }
  RecordLog::read(path, [&](std::string_view r) { seen.emplace_back(r); });
  EXPECT_EQ(seen, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(StorageFaults, AJobOnAFullDiskStopsNoOtherJob) {
  TempDir dir;
  FakeClock clock;
  FaultInjectingFileSystem disk;
  CoordinatorOptions options;
  options.state_dir = dir.file("state");
  options.file_system = &disk;
  CoordinatorServer server(options, "127.0.0.1:0", clock);
  CoordinatorClient client({"127.0.0.1:" + std::to_string(server.port()), "", ""});
  const auto upload = [&](const std::string& job, int64_t step) {
    pb::CheckpointInfo header = at_step(step);
    header.set_job_id(job);
    return client.upload(header, checkpoint_bytes(step));
  };
  const auto report = [&](const std::string& job, int64_t step) {
    pb::MetricsBatch batch;
    batch.set_job_id(job);
    batch.add_record()->set_step(step);
    client.report_metrics(batch, 5);
  };
  upload("full", 10);
  report("full", 1);
  // Every write under the job's directories now fails as on a full disk.
  disk.fail_paths("/full", {.err = ENOSPC, .short_write = true});
  for (int i = 0; i < 3; ++i) {
    try {
      upload("full", 20 + i);
      ADD_FAILURE() << "an upload to a full disk succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInternal) << e.what();  // gRPC INTERNAL: the server's disk
      EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(report("full", 2 + i), Error);
  }
  // The other job is served as before, and the full one still serves what it had.
  EXPECT_EQ(upload("other", 10).step(), 10);
  report("other", 1);
  pb::CheckpointInfo info;
  EXPECT_EQ(client.download("full", "latest", &info), checkpoint_bytes(10));
  EXPECT_EQ(info.step(), 10);
  pb::MetricsQuery query;
  query.set_job_id("full");
  EXPECT_EQ(client.query_metrics(query, 5).record_size(), 1);
  EXPECT_GT(disk.injected(), 6u);
  disk.clear();
  EXPECT_EQ(upload("full", 30).step(), 30);  // space again: the job goes on
  server.shutdown();
  EXPECT_EQ(temporaries(dir.path()), std::vector<std::string>{});
}

}  // namespace
}  // namespace convoy
