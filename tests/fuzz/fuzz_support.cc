#include "fuzz_support.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/checkpoint.h"
#include "core/model.h"
#include "core/model_spec.h"

namespace convoy::fuzz {

namespace {

// Never destroyed: the handler that removes the directory at exit still needs its name.
const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path* const dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto* d = new std::filesystem::path(
        std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
        ("convoy-fuzz." + std::to_string(::getpid())));
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return d;
  }();
  return *dir;
}

}  // namespace

std::string scratch_path(const std::string& name) {
  return (scratch_dir() / name).string();
}

std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_path(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) std::abort();  // the scratch directory itself failed: not the input's fault
  return path;
}

bool small_enough_to_build(const ModelPlan& plan) {
  double bytes = 0;
  for (const LayerPlan& layer : plan.layers) bytes += estimated_bytes(layer, 2, /*training=*/true);
  return bytes <= (4 << 20) && plan.layers.size() <= 12;
}

const char* const kTinyModelText = R"(name: "tiny"
input { channels: 1 spatial: [28, 28] }
num_classes: 10
layer { name: "pool" type: "AvgPool2D" pool { kernel: 7 } }
layer { name: "fc" type: "Dense" dense { units: 10 } }
)";

std::string tiny_checkpoint_bytes() {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  Model model(parse_model_text(kTinyModelText, "tiny"), 2, engine, Model::Mode::kTrain, "tiny");
  OptimizerConfig config;
  config.momentum = 0.9f;
  Optimizer optimizer(model.parameters(), config);
  TrainingPosition position;
  position.step = 3;
  position.world_size = 1;
  position.batch_size = 2;
  position.dataset = "fashion-mnist";
  return serialize_checkpoint(make_checkpoint(model, &optimizer, position));
}

namespace {

class UnsyncedFile final : public WritableFile {
 public:
  explicit UnsyncedFile(std::unique_ptr<WritableFile> base) : base_(std::move(base)) {}
  void append(std::string_view data) override { base_->append(data); }
  void sync() override {}
  void close() override { base_->close(); }

 private:
  std::unique_ptr<WritableFile> base_;
};

class UnsyncedFileSystem final : public FileSystem {
 public:
  std::unique_ptr<WritableFile> open(const std::string& path, Mode mode) override {
    return std::make_unique<UnsyncedFile>(local().open(path, mode));
  }
  void rename(const std::string& from, const std::string& to) override { local().rename(from, to); }
  void link(const std::string& from, const std::string& to) override { local().link(from, to); }
  void truncate(const std::string& path, uint64_t size) override { local().truncate(path, size); }
  void sync_dir(const std::string&) override {}
  bool remove(const std::string& path) override { return local().remove(path); }
};

}  // namespace

FileSystem& file_system_without_sync() {
  static UnsyncedFileSystem* const file_system = new UnsyncedFileSystem;  // as local()
  return *file_system;
}

}  // namespace convoy::fuzz
