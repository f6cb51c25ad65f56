#include "dist/grpc_status.h"

#include <string>

namespace convoy {

grpc::Status to_status(const Error& error) {
  switch (error.kind()) {
    case ErrorKind::kInvalidInput:
      return {grpc::StatusCode::INVALID_ARGUMENT, error.what()};
    case ErrorKind::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, error.what()};
    case ErrorKind::kCorruption:
      return {grpc::StatusCode::DATA_LOSS, error.what()};
    case ErrorKind::kLimitExceeded:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, error.what()};
    case ErrorKind::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, error.what()};
    case ErrorKind::kUnauthenticated:
      return {grpc::StatusCode::UNAUTHENTICATED, error.what()};
    case ErrorKind::kIo:
    case ErrorKind::kInternal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, error.what()};
}

Error error_from_status(const grpc::Status& status, std::string_view what) {
  const std::string message = std::string(what) + ": " + status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS:
      return Error::invalid_input(message);
    case grpc::StatusCode::NOT_FOUND:
      return Error::not_found(message);
    case grpc::StatusCode::DATA_LOSS:
      return Error::corruption(message);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Error::limit_exceeded(message);
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return Error::unavailable(message);
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return Error::unauthenticated(message);
    default:  // UNKNOWN, INTERNAL, ABORTED, UNIMPLEMENTED, OK (not a failure: a caller's bug)
      return Error::internal(message);
  }
}

}  // namespace convoy
