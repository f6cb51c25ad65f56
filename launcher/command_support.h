// Pieces several commands share: naming the flag behind an error, loading and checking data sets,
// reading the coordinator's address and credentials, checking that an output path can be written
// before spending time on work.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/dataset.h"
#include "core/error.h"
#include "core/mnist.h"
#include "core/model_spec.h"
#include "core/precision.h"
#include "dist/coordinator_address.h"
#include "launcher/commands.h"

namespace convoy {

// Runs `f`; an Error it throws gets `flag` in front of its message ("--data: ..."). Library code
// describes the thing; only the launcher knows which flag set it.
template <typename F>
auto for_flag(std::string_view flag, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw e.with_context(flag);
  }
}

// The --precision flag's value, refused (naming the flag and the missing CPU feature) where this
// CPU cannot compute in it.
Precision precision_flag(const std::string& text);

// Loads one split of the data set `data` describes; checks that its samples have the model's
// input shape and that its labels fit the model's classes. Errors name --data.
Dataset load_split(const DataOptions& data, Split split, const ModelPlan& plan,
                   const std::string& model_name);

// The coordinator at `target` with the token and CA certificate the files hold (empty names:
// none). Errors name --auth-token-file or --tls-ca.
CoordinatorAddress coordinator_address(const std::string& target, const std::string& token_file,
                                       const std::string& tls_ca_file);

// Throws Error (invalid input) naming `flag` when `path`'s directory does not exist or is not
// writable.
void check_writable(const std::string& path, const std::string& flag);

// Throws Error (invalid input) naming --job-id when `job_id` is not a valid job id.
void check_job_id(const std::string& job_id);

// Creates the directory `dir` if needed; Error (invalid input) naming `flag` when it cannot be
// created or written.
void prepare_state_dir(const std::string& dir, const std::string& flag);

// A file-system error met while opening a state directory (a file where a directory belongs), as
// an Error (invalid input) naming `flag`.
Error state_dir_error(const std::filesystem::filesystem_error& e, const std::string& flag);

// An exclusive lock on a state directory (flock on <dir>/LOCK, which holds the owner's pid), held
// while the object lives, so that two coordinators never share one. Error (invalid input) naming
// `flag` when another process holds it.
class StateDirLock {
 public:
  StateDirLock(const std::string& dir, const std::string& flag);
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace convoy
