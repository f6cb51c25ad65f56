// Errors that reach the user: one type, convoy::Error, with a kind (in the spirit of LevelDB's
// Status) and a one-line message.
//
// Recoverable problems travel as a thrown Error: a file, a model description, a data set, a name,
// the network, the disk. Library code (core/, dist/) describes the thing itself -- the file, the
// field, the value, the limit -- and never a command-line flag: only launcher/ knows which flag
// set a value, and puts the flag name in front when it reports (Error::with_context). The kind
// decides what the outside world sees, each mapping written once:
//   exit codes    launcher/exit_code.h   (2 for the user's input, 1 otherwise)
//   gRPC status   dist/grpc_status.h     (both directions)
// Broken internal invariants are not errors: they abort through CONVOY_CHECK.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace convoy {

enum class ErrorKind {
  kInvalidInput,     // a value, file or description the user gave is wrong
  kNotFound,         // something asked for by name does not exist
  kCorruption,       // stored or received bytes fail their checks (checksum, size, format)
  kLimitExceeded,    // a well-formed request beyond a configured limit (size, count)
  kIo,               // the machine failed us: disk full, fsync failed, file vanished
  kUnavailable,      // a service could not be reached (may work if retried)
  kUnauthenticated,  // missing or wrong credentials
  kInternal,         // a failure inside convoy or a library it uses
};

// The kind's name in messages and logs ("invalid input", "I/O error", ...).
std::string_view kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  static Error invalid_input(const std::string& m) { return {ErrorKind::kInvalidInput, m}; }
  static Error not_found(const std::string& m) { return {ErrorKind::kNotFound, m}; }
  static Error corruption(const std::string& m) { return {ErrorKind::kCorruption, m}; }
  static Error limit_exceeded(const std::string& m) { return {ErrorKind::kLimitExceeded, m}; }
  static Error io(const std::string& m) { return {ErrorKind::kIo, m}; }
  static Error unavailable(const std::string& m) { return {ErrorKind::kUnavailable, m}; }
  static Error unauthenticated(const std::string& m) { return {ErrorKind::kUnauthenticated, m}; }
  static Error internal(const std::string& m) { return {ErrorKind::kInternal, m}; }

  // A failed system call on a file: kIo when the machine failed (disk full, quota, hardware),
  // kInvalidInput when the path itself cannot be used (missing, not a directory, no permission,
  // read-only). The message ends with strerror(err).
  static Error from_errno(int err, const std::string& message);

  ErrorKind kind() const { return kind_; }

  // An error every process of a data-parallel job raises at the same point, from the same (shared
  // or summed) data: a configuration mismatch between ranks, a loss that became NaN. The
  // processes can stop together: one reports it, none needs to abort the others.
  bool job_wide() const { return job_wide_; }
  Error& set_job_wide() {
    job_wide_ = true;
    return *this;
  }

  // The same error with `context` in front of its message: "<context>: <message>".
  Error with_context(std::string_view context) const;

 private:
  ErrorKind kind_;
  bool job_wide_ = false;
};

// Runs `body`; an Error it throws becomes one of kind kIo with the same message. For code writing
// its own files (a store, a log): failing there is the machine's fault, never the caller's
// input, even when errno says the path cannot be used (a read-only or vanished directory).
template <typename F>
void as_io_error(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kIo) throw;
    throw Error::io(e.what());
  }
}

[[noreturn]] void check_failed(const char* condition, const char* file, int line);

}  // namespace convoy

// Aborts with the file and line when an internal invariant does not hold (never for user input).
#define CONVOY_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::convoy::check_failed(#cond, __FILE__, __LINE__))
