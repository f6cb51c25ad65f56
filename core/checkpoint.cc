#include "core/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/atomic_file.h"
#include "core/crc32.h"
#include "core/error.h"

namespace convoy {

namespace {

constexpr const char* kMagic = "convoy-checkpoint";
constexpr uint32_t kFormatVersion = 1;

// `shape`: the logical shape (Parameter::logical_shape), with t's row-major order.
void fill_tensor(pb::TensorData* out, const std::string& name, const Tensor& t, const Dims& shape) {
  out->set_name(name);
  for (int64_t d : shape) out->add_shape(d);
  const std::vector<float> values = t.to_plain();
  out->mutable_data()->Assign(values.begin(), values.end());
}

void load_tensor(const pb::TensorData& in, const std::string& name, Tensor& t, const Dims& want,
                 const std::string& source) {
  const Dims shape(in.shape().begin(), in.shape().end());
  if (in.name() != name || shape != want) {
    throw Error::invalid_input(
        fmt::format("{}: tensor '{}' [{}] does not match the model's '{}' [{}]", source, in.name(),
                    fmt::join(shape, ","), name, fmt::join(want, ",")));
  }
  if (in.data_size() != t.size()) {
    throw Error::invalid_input(fmt::format("{}: tensor '{}' has {} values, expected {}", source,
                                           in.name(), in.data_size(), t.size()));
  }
  t.copy_from_plain({in.data().data(), static_cast<size_t>(in.data_size())});
}

}  // namespace

pb::Checkpoint make_checkpoint(Model& model, const Optimizer* optimizer,
                               const TrainingPosition& position, const WeightAverage* average) {
  pb::Checkpoint ck;
  *ck.mutable_model() = model.spec();
  for (const Parameter* p : model.parameters()) {
    fill_tensor(ck.add_parameter(), p->name, p->value, p->logical_shape());
  }
  for (const Buffer* b : model.buffers()) {
    fill_tensor(ck.add_buffer(), b->name, b->value, b->value.shape());
  }
  if (optimizer != nullptr) {
    const OptimizerConfig& c = optimizer->config();
    pb::OptimizerState* s = ck.mutable_optimizer();
    s->set_kind(OptimizerConfig::kind_name(c.kind));
    s->set_learning_rate(c.learning_rate);
    s->set_momentum(c.momentum);
    s->set_weight_decay(c.weight_decay);
    s->set_nesterov(c.nesterov);
    s->set_beta1(c.beta1);
    s->set_beta2(c.beta2);
    s->set_epsilon(c.epsilon);
    s->set_steps(optimizer->steps());
    for (size_t i = 0; i < optimizer->parameters().size(); ++i) {
      const Parameter& p = *optimizer->parameters()[i];
      fill_tensor(s->add_momentum_buffer(), p.name, optimizer->first_moment(i), p.logical_shape());
      if (optimizer->has_second_moment()) {
        fill_tensor(s->add_second_moment(), p.name, optimizer->second_moment(i), p.logical_shape());
      }
    }
  }
  if (average != nullptr && average->updates() > 0) {
    pb::WeightAverageState* a = ck.mutable_average();
    a->set_decay(average->decay());
    a->set_updates(average->updates());
    const std::vector<Parameter*> params = model.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      fill_tensor(a->add_parameter(), params[i]->name, average->parameter(i),
                  params[i]->logical_shape());
    }
    const std::vector<Buffer*> buffers = model.buffers();
    for (size_t i = 0; i < buffers.size(); ++i) {
      fill_tensor(a->add_buffer(), buffers[i]->name, average->buffer(i), buffers[i]->value.shape());
    }
  }
  ck.set_epoch(position.epoch);
  ck.set_step_in_epoch(position.step_in_epoch);
  ck.set_step(position.step);
  ck.set_world_size(position.world_size);
  ck.set_seed(position.seed);
  ck.set_batch_size(position.batch_size);
  ck.set_dataset(position.dataset);
  return ck;
}

std::string serialize_checkpoint(const pb::Checkpoint& checkpoint) {
  pb::CheckpointFile file;
  file.set_magic(kMagic);
  file.set_format_version(kFormatVersion);
  if (!checkpoint.SerializeToString(file.mutable_body())) {
    throw Error::limit_exceeded("cannot serialize checkpoint (larger than 2 GiB?)");
  }
  file.set_body_crc32(crc32(file.body()));
  return file.SerializeAsString();
}

pb::Checkpoint parse_checkpoint(const std::string& bytes, const std::string& source) {
  pb::CheckpointFile file;
  if (!file.ParseFromString(bytes) || file.magic() != kMagic) {
    throw Error::corruption(fmt::format("'{}': not a convoy checkpoint, or truncated", source));
  }
  if (file.format_version() != kFormatVersion) {
    throw Error::invalid_input(
        fmt::format("'{}': checkpoint format version {} is not supported (expected {})", source,
                    file.format_version(), kFormatVersion));
  }
  if (crc32(file.body()) != file.body_crc32()) {
    throw Error::corruption(fmt::format("'{}': corrupt checkpoint (checksum mismatch)", source));
  }
  pb::Checkpoint checkpoint;
  if (!checkpoint.ParseFromString(file.body())) {
    throw Error::corruption(fmt::format("'{}': corrupt checkpoint (body does not parse)", source));
  }
  // Counts a resuming run computes with: none may be negative or near overflow (2^53 steps are
  // more than any run takes).
  constexpr int64_t kMaxCount = int64_t{1} << 53;
  const std::pair<const char*, int64_t> counts[] = {
      {"epoch", checkpoint.epoch()},
      {"step_in_epoch", checkpoint.step_in_epoch()},
      {"step", checkpoint.step()},
      {"batch_size", checkpoint.batch_size()},
      {"world_size", checkpoint.world_size()},
      {"optimizer.steps", checkpoint.optimizer().steps()},
      {"average.updates", checkpoint.average().updates()}};
  for (const auto& [field, value] : counts) {
    if (value < 0 || value > kMaxCount) {
      throw Error::corruption(
          fmt::format("'{}': corrupt checkpoint ({} is {})", source, field, value));
    }
  }
  return checkpoint;
}

void save_checkpoint(const pb::Checkpoint& checkpoint, const std::string& path) {
  const std::string bytes = serialize_checkpoint(checkpoint);
  // A file that would not read back must never be reported as saved (nor replace a good one).
  try {
    parse_checkpoint(bytes, path);
  } catch (const Error& e) {
    throw Error::internal(
        fmt::format("'{}' not written: the checkpoint would not read back ({})", path, e.what()));
  }
  write_file_atomically(path, bytes);
}

pb::Checkpoint load_checkpoint(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    throw Error::invalid_input(fmt::format("'{}': not a regular file", path));
  }
  const uint64_t size = std::filesystem::file_size(path, error);
  if (!error && size > kMaxCheckpointBytes) {
    throw Error::limit_exceeded(fmt::format("'{}': {} bytes, more than a checkpoint can hold ({})",
                                            path, size, kMaxCheckpointBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error::invalid_input(fmt::format("'{}': cannot open checkpoint", path));
  std::stringstream bytes;
  bytes << in.rdbuf();
  return parse_checkpoint(bytes.str(), path);
}

void restore_checkpoint(const pb::Checkpoint& checkpoint, Model& model, Optimizer* optimizer,
                        const std::string& source, WeightAverage* average) {
  const std::vector<Parameter*> params = model.parameters();
  if (checkpoint.parameter_size() != static_cast<int>(params.size())) {
    throw Error::invalid_input(fmt::format("{}: holds {} parameters, the model has {}", source,
                                           checkpoint.parameter_size(), params.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    load_tensor(checkpoint.parameter(static_cast<int>(i)), params[i]->name, params[i]->value,
                params[i]->logical_shape(), source);
    params[i]->grad.zero();
  }
  const std::vector<Buffer*> buffers = model.buffers();
  if (checkpoint.buffer_size() != static_cast<int>(buffers.size())) {
    throw Error::invalid_input(
        fmt::format("{}: holds {} buffers (running statistics), the model has {}", source,
                    checkpoint.buffer_size(), buffers.size()));
  }
  for (size_t i = 0; i < buffers.size(); ++i) {
    load_tensor(checkpoint.buffer(static_cast<int>(i)), buffers[i]->name, buffers[i]->value,
                buffers[i]->value.shape(), source);
  }
  if (average != nullptr) {
    const pb::WeightAverageState& a = checkpoint.average();
    if (a.parameter_size() == 0) {
      average->set_updates(0);  // none kept: the next update starts it from the values
    } else {
      if (a.parameter_size() != static_cast<int>(params.size()) ||
          a.buffer_size() != static_cast<int>(buffers.size())) {
        throw Error::invalid_input(fmt::format(
            "{}: holds an average of {} parameters and {} buffers, the model has {} "
            "and {}",
            source, a.parameter_size(), a.buffer_size(), params.size(), buffers.size()));
      }
      for (size_t i = 0; i < params.size(); ++i) {
        load_tensor(a.parameter(static_cast<int>(i)), params[i]->name, average->parameter(i),
                    params[i]->logical_shape(), source);
      }
      for (size_t i = 0; i < buffers.size(); ++i) {
        load_tensor(a.buffer(static_cast<int>(i)), buffers[i]->name, average->buffer(i),
                    buffers[i]->value.shape(), source);
      }
      average->set_updates(a.updates());
    }
  }
  if (optimizer == nullptr || checkpoint.optimizer().momentum_buffer_size() == 0) return;
  const pb::OptimizerState& state = checkpoint.optimizer();
  const std::string kind = state.kind().empty() ? "sgd" : state.kind();
  const std::string wanted = OptimizerConfig::kind_name(optimizer->config().kind);
  if (kind != wanted) {
    throw Error::invalid_input(
        fmt::format("{}: was trained with the {} optimizer, not {}", source, kind, wanted));
  }
  const int expected_second = optimizer->has_second_moment() ? static_cast<int>(params.size()) : 0;
  if (state.momentum_buffer_size() != static_cast<int>(params.size()) ||
      state.second_moment_size() != expected_second) {
    throw Error::invalid_input(
        fmt::format("{}: holds optimizer state for {} parameters, the model has {}", source,
                    state.momentum_buffer_size(), params.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const int k = static_cast<int>(i);
    const Dims shape = params[i]->logical_shape();
    load_tensor(state.momentum_buffer(k), params[i]->name, optimizer->first_moment(i), shape,
                source);
    if (optimizer->has_second_moment()) {
      load_tensor(state.second_moment(k), params[i]->name, optimizer->second_moment(i), shape,
                  source);
    }
  }
  optimizer->set_steps(state.steps());
}

pb::Checkpoint with_averaged_weights(pb::Checkpoint checkpoint, const std::string& source) {
  const pb::WeightAverageState& a = checkpoint.average();
  if (a.parameter_size() > 0 || a.buffer_size() > 0) {
    // Named and counted as the values it stands for (restore_checkpoint checks the shapes).
    const auto same_names = [](const auto& x, const auto& y) {
      return x.size() == y.size() &&
             std::equal(x.begin(), x.end(), y.begin(),
                        [](const auto& u, const auto& v) { return u.name() == v.name(); });
    };
    if (a.updates() == 0 || !same_names(a.parameter(), checkpoint.parameter()) ||
        !same_names(a.buffer(), checkpoint.buffer())) {
      throw Error::corruption(fmt::format(
          "'{}': corrupt checkpoint (its average of the weights does not match its parameters)",
          source));
    }
    *checkpoint.mutable_parameter() = a.parameter();
    *checkpoint.mutable_buffer() = a.buffer();
  }
  checkpoint.clear_average();
  return checkpoint;
}

}  // namespace convoy
