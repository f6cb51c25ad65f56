#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine: installs dependencies (deploy/install-deps.sh),
# configures and builds into build/, then runs what was asked for.
#
#   deploy/local.sh train [convoy train flags...]   train fashion_cnn on Fashion-MNIST with 2 MPI
#                                                   ranks (CONVOY_RANKS) under `convoy launch`
#                                                   (restarts, checkpoints in ./convoy-state; run
#                                                   again to continue) and print the report
#   deploy/local.sh test [ctest flags...]           run the whole test suite (what CI runs), or
#                                                   what the flags select (e.g. -LE '^io$')
#   deploy/local.sh build                           only install and build
#   deploy/local.sh fuzz [SECONDS]                  build the fuzz targets with clang, ASan, UBSan
#                                                   and libFuzzer (build-address-undefined/) and
#                                                   run each for SECONDS (default 60), two at a time
#
# CONVOY_SANITIZE=address,undefined (or thread) builds with those sanitizers into build-<names>/
# instead (RelWithDebInfo), e.g. `CONVOY_SANITIZE=address,undefined deploy/local.sh test`.
# address,undefined is built with clang and libFuzzer's instrumentation, so the suite and the fuzz
# targets share one build (CI builds it once for both); address or undefined alone build with GCC;
# thread (GCC) builds and runs only the tests of convoy's threaded parts (labelled tsan).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode="${1:-}"
sanitize="${CONVOY_SANITIZE:-}"
if [[ $sanitize == undefined,address ]]; then sanitize=address,undefined; fi
extra=()
targets=()
if [[ $mode == fuzz ]]; then
  sanitize=address,undefined
  targets=(--target fuzzers)
fi
if [[ $sanitize == address,undefined ]]; then
  extra=(-DCMAKE_CXX_COMPILER=clang++ -DCONVOY_FUZZ=ON)
fi
build_type=Release
if [[ -n $sanitize ]]; then
  build_type=RelWithDebInfo
fi
default_build=$root/build${sanitize:+-${sanitize//,/-}}
build="${CONVOY_BUILD_DIR:-$default_build}"
jobs="${CONVOY_JOBS:-$(nproc)}"

case "$mode" in
  train | test | build | fuzz) shift ;;
  *)
    echo "usage: deploy/local.sh train|test|build|fuzz [convoy train flags... | seconds]" >&2
    exit 2
    ;;
esac

"$root/deploy/install-deps.sh"

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# A build directory configured with the other compiler starts afresh: CMake would otherwise drop
# its cache on the compiler's change and, with it, the options given here (the sanitizers).
fresh=()
if [[ -f $build/CMakeCache.txt ]]; then
  cached=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
  want_clang=false
  if [[ ${#extra[@]} -gt 0 ]]; then want_clang=true; fi
  has_clang=false
  if [[ $cached == *clang* ]]; then has_clang=true; fi
  if [[ $want_clang != "$has_clang" ]]; then fresh=(--fresh); fi
fi
cmake "${fresh[@]}" -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="$build_type" \
  -DCONVOY_SANITIZE="$sanitize" "${extra[@]}" "${launcher[@]}" >/dev/null
if ! grep -qx "CONVOY_SANITIZE:STRING=$sanitize" "$build/CMakeCache.txt"; then
  echo "deploy/local.sh: $build is not configured with CONVOY_SANITIZE='$sanitize'" >&2
  exit 1
fi
cmake --build "$build" -j "$jobs" "${targets[@]}"

case "$mode" in
  train)
    exec "$build/launcher/convoy" launch -np "${CONVOY_RANKS:-2}" -- \
      train --model fashion_cnn --checkpoint-every 200 "$@"
    ;;
  test)
    cd "$build"
    if [[ $sanitize == thread ]]; then
      exec ctest --output-on-failure -j "$jobs" -L tsan "$@"
    fi
    exec ctest --output-on-failure -j "$jobs" "$@"
    ;;
  fuzz)
    exec "$root/tests/fuzz/run.sh" "$build" "${1:-60}" "$jobs"
    ;;
esac
