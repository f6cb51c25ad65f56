// Checkpoint files (proto/checkpoint.proto): the model spec, every parameter in plain layout, the
// optimizer's state, and where training stood. Saved atomically (atomic_file.h); loading checks the
// magic, version and CRC-32 before using anything, so a truncated or corrupted file is refused.
#pragma once

#include <string>

#include "core/model.h"
#include "core/optimizer.h"
#include "core/weight_average.h"
#include "proto/checkpoint.pb.h"

namespace convoy {

// Where training stands (see proto/checkpoint.proto): enough to resume exactly.
struct TrainingPosition {
  int64_t epoch = 0;          // the epoch of the last step, 0-based
  int64_t step_in_epoch = 0;  // steps of that epoch done
  int64_t step = 0;           // optimizer steps taken in all
  uint64_t seed = 0;
  int32_t batch_size = 0;  // per process
  int32_t world_size = 1;
  std::string dataset;
};

// Captures the model's parameters and, when given, the optimizer's state and the average of the
// weights.
pb::Checkpoint make_checkpoint(Model& model, const Optimizer* optimizer,
                               const TrainingPosition& position,
                               const WeightAverage* average = nullptr);

// The bytes of a checkpoint file, and back. parse_checkpoint throws Error naming `source`.
std::string serialize_checkpoint(const pb::Checkpoint& checkpoint);
pb::Checkpoint parse_checkpoint(const std::string& bytes, const std::string& source);

// Protocol Buffers cannot parse a message above 2 GiB: no checkpoint file can be larger.
inline constexpr uint64_t kMaxCheckpointBytes = uint64_t{2} << 30;

// Writes atomically (core/atomic_file.h), after checking that the bytes parse back: a checkpoint
// that could not be read is never written (Error, internal).
void save_checkpoint(const pb::Checkpoint& checkpoint, const std::string& path);
// Refuses what is not a regular file or exceeds kMaxCheckpointBytes before reading it.
pb::Checkpoint load_checkpoint(const std::string& path);

// Copies parameter values (and, when `optimizer` is given, momentum buffers) into a model built
// from the checkpoint's spec. When `average` is given it takes the checkpoint's average, or, when
// the checkpoint has none (averaging switched on later), starts afresh (updates() 0). Throws
// Error naming `source` when names or shapes disagree.
void restore_checkpoint(const pb::Checkpoint& checkpoint, Model& model, Optimizer* optimizer,
                        const std::string& source, WeightAverage* average = nullptr);

// For evaluating and exporting: the checkpoint with its average (if it has one) in place of its
// parameters and buffers, the model the run reported on. Throws Error (corruption) naming
// `source` when the average's tensors are not named and counted as the parameters and buffers.
pb::Checkpoint with_averaged_weights(pb::Checkpoint checkpoint, const std::string& source);

}  // namespace convoy
