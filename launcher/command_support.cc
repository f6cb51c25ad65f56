#include "launcher/command_support.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

#include "core/cifar10.h"
#include "core/error.h"
#include "core/npy_dataset.h"
#include "core/read_file.h"
#include "dist/metrics_store.h"

namespace convoy {

namespace {

Dataset load_split_of(const DataOptions& data, Split split, const ModelPlan& plan,
                      const std::string& model_name) {
  std::string dir = data.dir;
  if (dir.empty()) {
    if (data.dataset != "fashion-mnist") {
      throw Error::invalid_input(fmt::format("required with --dataset {}", data.dataset));
    }
    dir = kDefaultDataDir;
  }
  Dataset d = data.dataset == "cifar10" ? load_cifar10(dir, split)
              : data.dataset == "npy"   ? load_npy_dataset(dir, split, plan.num_classes)
                                        : load_mnist(dir, data.dataset, split);
  const int64_t limit = split == Split::kTrain ? data.limit_train : data.limit_test;
  if (limit > 0) d = d.head(limit);
  if (!(d.shape == plan.input)) {
    throw Error::invalid_input(fmt::format("'{}' holds {} samples but model '{}' expects {}", dir,
                                           d.shape.str(), model_name, plan.input.str()));
  }
  if (d.num_classes() != plan.num_classes) {
    throw Error::invalid_input(fmt::format("'{}' has {} classes but model '{}' has {}", dir,
                                           d.num_classes(), model_name, plan.num_classes));
  }
  return d;
}

}  // namespace

Precision precision_flag(const std::string& text) {
  if (text == "auto") return preferred_precision();
  const Precision precision = parse_precision(text, "--precision");
  const std::string unsupported = precision_unsupported(precision);
  if (!unsupported.empty()) throw Error::invalid_input("--precision: " + unsupported);
  return precision;
}

Dataset load_split(const DataOptions& data, Split split, const ModelPlan& plan,
                   const std::string& model_name) {
  return for_flag("--data", [&] { return load_split_of(data, split, plan, model_name); });
}

CoordinatorAddress coordinator_address(const std::string& target, const std::string& token_file,
                                       const std::string& tls_ca_file) {
  CoordinatorAddress address{target, {}, {}};
  if (!token_file.empty()) {
    address.token = for_flag("--auth-token-file", [&] { return read_token_file(token_file); });
  }
  if (!tls_ca_file.empty()) {
    address.tls_ca_pem = for_flag("--tls-ca", [&] { return read_file(tls_ca_file); });
    if (address.tls_ca_pem.empty()) {  // gRPC would quietly fall back to plaintext
      throw Error::invalid_input(fmt::format("--tls-ca: '{}' is empty", tls_ca_file));
    }
  }
  return address;
}

void check_writable(const std::string& path, const std::string& flag) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  if (!std::filesystem::is_directory(dir)) {
    throw Error::invalid_input(fmt::format("{}: directory '{}' does not exist", flag, dir));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw Error::invalid_input(fmt::format("{}: directory '{}' is not writable", flag, dir));
  }
  if (std::filesystem::is_directory(path)) {
    throw Error::invalid_input(fmt::format("{}: '{}' is a directory", flag, path));
  }
}

void check_job_id(const std::string& job_id) {
  if (!valid_job_id(job_id)) {
    throw Error::invalid_input(fmt::format(
        "--job-id: '{}' is not allowed (1-64 of [A-Za-z0-9._-], not starting with '.')", job_id));
  }
}

Error state_dir_error(const std::filesystem::filesystem_error& e, const std::string& flag) {
  return Error::invalid_input(
      fmt::format("{}: '{}': {}", flag, e.path1().string(), e.code().message()));
}

StateDirLock::StateDirLock(const std::string& dir, const std::string& flag) {
  const std::string path = (std::filesystem::path(dir) / "LOCK").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error::from_errno(errno, fmt::format("{}: cannot open '{}'", flag, path));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char owner[32] = {};
    const ssize_t n = ::pread(fd_, owner, sizeof owner - 1, 0);
    ::close(fd_);
    throw Error::invalid_input(fmt::format("{}: '{}' is in use by another convoy process{}", flag,
                                           dir, n > 0 ? fmt::format(" (pid {})", owner) : ""));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

StateDirLock::~StateDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

void prepare_state_dir(const std::string& dir, const std::string& flag) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error || !std::filesystem::is_directory(dir)) {
    throw Error::invalid_input(fmt::format("{}: cannot create '{}'", flag, dir));
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    throw Error::invalid_input(fmt::format("{}: '{}' is not writable", flag, dir));
  }
}

}  // namespace convoy
