// The coordinator's state directory as a damaged disk, an older version or a hostile hand leaves
// it, read back as the coordinator does when it starts. The first byte chooses the file the rest
// of the input becomes:
//   0  a job's checkpoints/<job>/manifest.pbtxt, beside one intact checkpoint file and one that
//      is not a checkpoint: the store opens (re-verifying, adopting, ignoring) and serves
//   1  a job's metrics/<job>/steps.log      } RecordLog files: replayed by the metrics store,
//   2  a job's metrics/<job>/evaluations.log } then queried and charted
//   3  registrations.log: replayed and compacted by the job registry, then its status read
// Whatever the bytes, opening either works (damage noted, skipped or cut off) or is refused with
// convoy::Error; and what opens must serve only what verifies.
#include <filesystem>

#include "dist/checkpoint_store.h"
#include "dist/clock.h"
#include "dist/job_registry.h"
#include "dist/metrics_store.h"
#include "dist/sha256.h"
#include "fuzz_support.h"

namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  convoy::fuzz::write_scratch("staging", bytes);
  fs::rename(convoy::fuzz::scratch_path("staging"), path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const fs::path state = convoy::fuzz::scratch_path("state");
  fs::remove_all(state);
  switch (data[0] % 4) {
    case 0: {
      const fs::path dir = state / "checkpoints" / "job";
      static const std::string checkpoint = convoy::fuzz::tiny_checkpoint_bytes();
      write(dir / "step-000000001.ckpt", checkpoint);
      write(dir / "notes.ckpt", "not a checkpoint");
      write(dir / "manifest.pbtxt", rest);
      convoy::fuzz::refused_or_accepted([&] {
        const convoy::CheckpointStore store(
            dir.string(), {.file_system = &convoy::fuzz::file_system_without_sync()});
        for (const convoy::pb::CheckpointInfo& info : store.list()) {
          if (info.corrupt()) continue;
          // Served means verified: the file is what the listing says.
          if (convoy::sha256_of_file(store.path(info.name())) != info.sha256()) std::abort();
          if (store.find(info.name()).name() != info.name()) std::abort();
        }
        convoy::fuzz::refused_or_accepted([&] { store.find("latest"); });
      });
      break;
    }
    case 1:
    case 2: {
      const fs::path dir = state / "metrics" / "job";
      write(dir / (data[0] % 4 == 1 ? "steps.log" : "evaluations.log"), rest);
      convoy::fuzz::refused_or_accepted([&] {
        convoy::MetricsStore store((state / "metrics").string(), 100,
                                   convoy::fuzz::file_system_without_sync());
        convoy::pb::MetricsQuery query;
        query.set_job_id("job");
        const convoy::pb::MetricsPage page = store.query(query, 1000);
        if (page.ByteSizeLong() > convoy::MetricsStore::kMaxPageBytes + 1024) std::abort();
        store.series("job");
        store.evaluation_points("job");
        store.append("job", std::vector<convoy::pb::StepRecord>(1));  // appends still work
      });
      break;
    }
    default: {
      write(state / "registrations.log", rest);
      convoy::fuzz::refused_or_accepted([&] {
        const convoy::FakeClock clock;
        const convoy::JobRegistry registry(clock, 60, 30, (state / "registrations.log").string(),
                                           convoy::fuzz::file_system_without_sync());
        for (const std::string& job : registry.jobs()) {
          convoy::pb::JobStatus status;
          if (!registry.status(job, &status)) std::abort();
          if (status.rank_size() > convoy::JobRegistry::kMaxWorldSize) std::abort();
        }
      });
    }
  }
  return 0;
}
