#include "dist/replica_sync.h"

#include <fmt/format.h>

#include <sstream>
#include <stdexcept>

#include "core/crc32.h"
#include "core/error.h"

namespace convoy {

namespace {

// Parameters and buffers (batch norm's running statistics): the whole state of a replica.
std::vector<Tensor*> model_state(Model& model) {
  std::vector<Tensor*> state;
  for (Parameter* p : model.parameters()) state.push_back(&p->value);
  for (Buffer* b : model.buffers()) state.push_back(&b->value);
  return state;
}

}  // namespace

void broadcast_parameters(Communicator& comm, Model& model) {
  for (Tensor* t : model_state(model)) {
    std::vector<float> values = t->to_plain();
    comm.broadcast(std::as_writable_bytes(std::span<float>(values)), 0);
    t->copy_from_plain(values);
  }
}

void broadcast_string(Communicator& comm, std::string& text) {
  uint64_t size = text.size();
  comm.broadcast(std::as_writable_bytes(std::span<uint64_t>(&size, 1)), 0);
  text.resize(size);
  comm.broadcast(std::as_writable_bytes(std::span<char>(text)), 0);
}

uint32_t parameters_digest(Model& model) {
  uint32_t crc = 0;
  for (Tensor* t : model_state(model)) {
    const std::vector<float> values = t->to_plain();
    crc = crc32({reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)}, crc);
  }
  return crc;
}

void verify_identical_parameters(Communicator& comm, Model& model, const std::string& when) {
  const std::vector<std::string> digests =
      comm.allgather(fmt::format("{:08x}", parameters_digest(model)));
  std::string differing;
  for (size_t r = 1; r < digests.size(); ++r) {
    if (digests[r] != digests[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!differing.empty()) {
    throw Error::internal(fmt::format(
        "model replicas differ {}: the parameters of rank(s) {} are not those of rank 0", when,
        differing));
  }
}

namespace {

std::string encode(const JobFingerprint& fields) {
  std::string text;
  for (const auto& [name, value] : fields) text += name + '\t' + value + '\n';
  return text;
}

JobFingerprint decode(const std::string& text) {
  JobFingerprint fields;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t tab = line.find('\t');
    fields.emplace_back(line.substr(0, tab), tab == std::string::npos ? "" : line.substr(tab + 1));
  }
  return fields;
}

}  // namespace

void check_same_configuration(Communicator& comm, const JobFingerprint& mine) {
  const std::vector<std::string> all = comm.allgather(encode(mine));
  const JobFingerprint reference = decode(all[0]);
  for (size_t field = 0; field < reference.size(); ++field) {
    std::string differing;
    for (size_t r = 1; r < all.size(); ++r) {
      const JobFingerprint theirs = decode(all[r]);
      const std::string value = field < theirs.size() ? theirs[field].second : "(missing)";
      if (value != reference[field].second) {
        differing += fmt::format("{}rank {} has {}", differing.empty() ? "" : ", ", r, value);
      }
    }
    if (!differing.empty()) {
      throw Error::invalid_input(fmt::format("ranks disagree on {}: rank 0 has {}, {}",
                                             reference[field].first, reference[field].second,
                                             differing))
          .set_job_wide();
    }
  }
}

}  // namespace convoy
