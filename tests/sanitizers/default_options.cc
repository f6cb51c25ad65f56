// Options and suppressions that sanitized builds (CONVOY_SANITIZE) carry in every program: the
// sanitizer runtimes call these hooks at start-up, so the convoy processes and MPI ranks that tests
// start behave alike without any environment. Suppressions are for third-party code only, each
// with the reason; convoy's own findings are fixed, never suppressed.
extern "C" {

const char* __asan_default_options() {
  return "detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1";
}

const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1";
}

// Quiet about the suppressions it used: tests compare what programs print.
const char* __lsan_default_options() {
  return "print_suppressions=0";
}

const char* __lsan_default_suppressions() {
  // Open MPI's event thread (libevent, started by MPI_Init for PMIx) keeps small buffers it never
  // frees; what MPI_Init and MPI_Finalize themselves allocate is excluded at the call
  // (dist/mpi_communicator.cc). Open MPI's components have no frame pointers: only the slow
  // unwinder reaches event_base_loop, which the tests ask for (tests/testing/run_command.cc).
  return "leak:event_base_loop\n";
}

// Interceptors (memcpy, locks, ...) called from libraries not built with ThreadSanitizer
// (gRPC, Abseil, OpenSSL, oneDNN, libgomp) check nothing: ThreadSanitizer cannot see those
// libraries' own synchronization, and would report their internals as races.
const char* __tsan_default_options() {
  return "halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1";
}

const char* __tsan_default_suppressions() {
  // Inline code of those libraries' C++ headers, compiled into convoy, reading what the library
  // built on another thread under its own locks: the status of a finished gRPC call, and memory
  // descriptors that oneDNN's primitive cache holds. Each names the one function.
  return "race:grpc::internal::CallOpClientRecvStatus::FinishOp\n"
         "race_top:dnnl::memory::desc::desc\n";
}

}  // extern "C"
