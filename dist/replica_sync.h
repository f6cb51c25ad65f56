// Keeping the replicas of a model identical across ranks (PyTorch c10d's habit of verifying that
// every rank starts from the same parameters).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/model.h"
#include "dist/communicator.h"

namespace convoy {

// Copies rank 0's parameter values to every rank (in plain layout, so ranks whose CPUs chose
// different blocked layouts still agree).
void broadcast_parameters(Communicator& comm, Model& model);

// CRC-32 of every parameter value in plain layout, in parameter order.
uint32_t parameters_digest(Model& model);

// Throws Error (internal) on every rank, naming the ranks whose parameters differ from rank
// 0's, if they are not bit-identical. `when` goes into the message ("after broadcast").
void verify_identical_parameters(Communicator& comm, Model& model, const std::string& when);

// Rank 0's `text` on every rank.
void broadcast_string(Communicator& comm, std::string& text);

// Settings every rank must share before training, as (name, value) text pairs.
using JobFingerprint = std::vector<std::pair<std::string, std::string>>;

// Gathers every rank's fingerprint; when any differs from rank 0's, throws a job-wide Error
// (invalid input) on every rank naming the field and the differing ranks with their values.
void check_same_configuration(Communicator& comm, const JobFingerprint& mine);

}  // namespace convoy
