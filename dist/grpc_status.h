// The one place where convoy's errors meet gRPC's status codes, in both directions: the
// coordinator service answers an Error with to_status(); a client turns a failed call's status
// back into an Error with error_from_status(), so code above dist/ never sees gRPC.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "core/error.h"

namespace convoy {

grpc::Status to_status(const Error& error);

// The Error a failed call's `status` stands for; its message is "<what>: <status message>".
Error error_from_status(const grpc::Status& status, std::string_view what);

}  // namespace convoy
