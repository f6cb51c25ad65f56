// The error vocabulary: which failures are the user's input and which are the machine's, and the
// two mappings (exit codes, gRPC status codes) that must agree with each other.
#include "core/error.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "dist/grpc_status.h"
#include "launcher/exit_code.h"

namespace convoy {
namespace {

TEST(Error, AFullDiskIsAnIoErrorAndAMissingDirectoryTheUsersInput) {
  EXPECT_EQ(Error::from_errno(ENOSPC, "'m.ckpt': cannot write").kind(), ErrorKind::kIo);
  EXPECT_EQ(Error::from_errno(EDQUOT, "x").kind(), ErrorKind::kIo);
  EXPECT_EQ(Error::from_errno(EIO, "x").kind(), ErrorKind::kIo);
  EXPECT_EQ(Error::from_errno(ENOENT, "x").kind(), ErrorKind::kInvalidInput);
  EXPECT_EQ(Error::from_errno(EACCES, "x").kind(), ErrorKind::kInvalidInput);
  EXPECT_STREQ(Error::from_errno(ENOSPC, "'m.ckpt': cannot write").what(),
               "'m.ckpt': cannot write: No space left on device");
  EXPECT_EQ(exit_code(ErrorKind::kIo), 1);
  EXPECT_EQ(exit_code(ErrorKind::kInvalidInput), 2);
}

TEST(Error, ContextGoesInFrontAndKeepsKindAndScope) {
  Error e = Error::corruption("'a.ckpt': corrupt checkpoint");
  e.set_job_wide();
  const Error flagged = e.with_context("--checkpoint");
  EXPECT_STREQ(flagged.what(), "--checkpoint: 'a.ckpt': corrupt checkpoint");
  EXPECT_EQ(flagged.kind(), ErrorKind::kCorruption);
  EXPECT_TRUE(flagged.job_wide());
}

TEST(Error, GrpcStatusRoundTripKeepsTheKindAndTheExitCode) {
  for (const ErrorKind kind :
       {ErrorKind::kInvalidInput, ErrorKind::kNotFound, ErrorKind::kCorruption,
        ErrorKind::kLimitExceeded, ErrorKind::kIo, ErrorKind::kUnavailable,
        ErrorKind::kUnauthenticated, ErrorKind::kInternal}) {
    const Error sent(kind, "m");
    const Error received = error_from_status(to_status(sent), "call");
    EXPECT_EQ(exit_code(received.kind()), exit_code(kind)) << kind_name(kind);
    // I/O failures of the server reach the client as internal errors; every other kind survives.
    EXPECT_EQ(received.kind(), kind == ErrorKind::kIo ? ErrorKind::kInternal : kind)
        << kind_name(kind);
    EXPECT_STREQ(received.what(), "call: m");
  }
}

}  // namespace
}  // namespace convoy
