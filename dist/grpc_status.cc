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
    {ErrorKind::kInvalidInput, grpc::StatusCode::UNIMPLEMENTED},  // not a coordinator, or too old
    {ErrorKind::kUnavailable, grpc::StatusCode::DEADLINE_EXCEEDED},
    {ErrorKind::kUnavailable, grpc::StatusCode::CANCELLED},
    {ErrorKind::kUnauthenticated, grpc::StatusCode::PERMISSION_DENIED},
};

static_assert(kCodes[6].first == ErrorKind::kInternal &&
              kCodes[6].second == grpc::StatusCode::INTERNAL);

// The first row that `matches`, or the internal-error row.
template <typename Match>
const std::pair<ErrorKind, grpc::StatusCode>& row(Match matches) {
  for (const auto& r : kCodes) {
    if (matches(r)) return r;
  }
  return kCodes[6];  // kInternal, INTERNAL: UNKNOWN, ABORTED (and OK: a caller's bug)
}

}  // namespace

grpc::Status to_status(const Error& error) {
  return {row([&](const auto& r) { return r.first == error.kind(); }).second, error.what()};
}

Error error_from_status(const grpc::Status& status, std::string_view what) {
  return {row([&](const auto& r) { return r.second == status.error_code(); }).first,
          std::string(what) + ": " + status.error_message()};
}

}  // namespace convoy
