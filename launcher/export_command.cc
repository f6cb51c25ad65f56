// convoy export: a checkpoint's parameters and buffers as a NumPy .npz ("conv1.weight",
// "conv1.bias", ..., "bn1.running_mean", ...).
#include <fmt/format.h>

#include "core/checkpoint.h"
#include "core/npz_writer.h"
#include "launcher/command_support.h"

namespace convoy {

int run_export(const ExportCommand& cmd) {
  check_writable(cmd.out, "--out");
  // With an average of the weights, that is what the run reported on, and what is exported.
  const pb::Checkpoint checkpoint =
      with_averaged_weights(load_checkpoint(cmd.checkpoint), cmd.checkpoint);
  std::vector<NpyArray> arrays;
  std::vector<const pb::TensorData*> tensors;
  for (const pb::TensorData& t : checkpoint.parameter()) tensors.push_back(&t);
  for (const pb::TensorData& t : checkpoint.buffer()) tensors.push_back(&t);
  for (const pb::TensorData* tp : tensors) {
    const pb::TensorData& t = *tp;
    arrays.push_back({t.name(),
                      {t.shape().begin(), t.shape().end()},
                      {t.data().data(), static_cast<size_t>(t.data_size())}});
  }
  write_npz(cmd.out, arrays);
  fmt::print("wrote {} arrays to {}\n", arrays.size(), cmd.out);
  return 0;
}

}  // namespace convoy
