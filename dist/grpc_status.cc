#include "dist/grpc_status.h"

#include <string>
#include <utility>

namespace convoy {

namespace {

// Each kind's status code. Read left to right by to_status(), right to left by
// error_from_status(); codes convoy never sends are mapped there.
constexpr std::pair<ErrorKind, grpc::StatusCode> kCodes[] = {
    {ErrorKind::kInvalidInput, grpc::StatusCode::INVALID_ARGUMENT},
    {ErrorKind::kNotFound, grpc::StatusCode::NOT_FOUND},
    {ErrorKind::kCorruption, grpc::StatusCode::DATA_LOSS},
    {ErrorKind::kLimitExceeded, grpc::StatusCode::RESOURCE_EXHAUSTED},
    {ErrorKind::kUnavailable, grpc::StatusCode::UNAVAILABLE},
    {ErrorKind::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
    {ErrorKind::kInternal, grpc::StatusCode::INTERNAL},
    {ErrorKind::kIo, grpc::StatusCode::INTERNAL},  // the server's disk: not the caller's fault
    {ErrorKind::kInvalidInput, grpc::StatusCode::FAILED_PRECONDITION},
    {ErrorKind::kInvalidInput, grpc::StatusCode::OUT_OF_RANGE},
    {ErrorKind::kInvalidInput, grpc::StatusCode::ALREADY_EXISTS},
    {ErrorKind::kUnavailable, grpc::StatusCode::DEADLINE_EXCEEDED},
    {ErrorKind::kUnavailable, grpc::StatusCode::CANCELLED},
    {ErrorKind::kUnauthenticated, grpc::StatusCode::PERMISSION_DENIED},
};

}  // namespace

grpc::Status to_status(const Error& error) {
  for (const auto& [kind, code] : kCodes) {
    if (kind == error.kind()) return {code, error.what()};
  }
  return {grpc::StatusCode::INTERNAL, error.what()};
}

Error error_from_status(const grpc::Status& status, std::string_view what) {
  const std::string message = std::string(what) + ": " + status.error_message();
  for (const auto& [kind, code] : kCodes) {
    if (code == status.error_code()) return Error(kind, message);
  }
  return Error::internal(message);  // UNKNOWN, ABORTED, UNIMPLEMENTED (and OK: a caller's bug)
}

}  // namespace convoy
