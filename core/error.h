// Errors that reach the user.
//
// Recoverable problems caused by what the user gave us -- a flag, a file, a model description, a
// data set -- are thrown as InputError with a one-line message that names the flag, file or field.
// The command boundary (launcher/) turns an InputError into that line on stderr and exit code 2.
// Anything else that escapes is a failure of convoy or of the machine (exit code 1). Broken
// internal invariants are not errors: they abort through CONVOY_CHECK.
#pragma once

#include <stdexcept>
#include <string>

namespace convoy {

class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& message) : std::runtime_error(message) {}
};

// An InputError that every process of a data-parallel job raises at the same point, from the same
// (shared or summed) data: a configuration mismatch between ranks, a loss that became NaN. The
// processes can stop together: one reports it, none needs to abort the others.
class JobWideInputError : public InputError {
 public:
  using InputError::InputError;
};

[[noreturn]] void check_failed(const char* condition, const char* file, int line);

}  // namespace convoy

// Aborts with the file and line when an internal invariant does not hold (never for user input).
#define CONVOY_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::convoy::check_failed(#cond, __FILE__, __LINE__))
