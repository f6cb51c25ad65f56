#include "command_support.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "cifar10.h"
#include "error.h"
#include "npy_dataset.h"

namespace convoy {

Dataset load_split(const DataOptions& data, Split split, const ModelPlan& plan,
                   const std::string& model_name) {
  std::string dir = data.dir;
  if (dir.empty()) {
    if (data.dataset != "fashion-mnist") {
      throw InputError(fmt::format("--data: required with --dataset {}", data.dataset));
    }
    dir = kDefaultDataDir;
  }
  Dataset d = data.dataset == "cifar10" ? load_cifar10(dir, split)
              : data.dataset == "npy"   ? load_npy_dataset(dir, split, plan.num_classes)
                                        : load_mnist(dir, data.dataset, split);
  const int64_t limit = split == Split::kTrain ? data.limit_train : data.limit_test;
  if (limit > 0) d = d.head(limit);
  if (!(d.shape == plan.input)) {
    throw InputError(fmt::format("--data: '{}' holds {} samples but model '{}' expects {}", dir,
                                 d.shape.str(), model_name, plan.input.str()));
  }
  if (d.num_classes() != plan.num_classes) {
    throw InputError(fmt::format("--data: '{}' has {} classes but model '{}' has {}", dir,
                                 d.num_classes(), model_name, plan.num_classes));
  }
  return d;
}

void check_writable(const std::string& path, const std::string& flag) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  if (!std::filesystem::is_directory(dir)) {
    throw InputError(fmt::format("{}: directory '{}' does not exist", flag, dir));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw InputError(fmt::format("{}: directory '{}' is not writable", flag, dir));
  }
  if (std::filesystem::is_directory(path)) {
    throw InputError(fmt::format("{}: '{}' is a directory", flag, path));
  }
}

}  // namespace convoy
