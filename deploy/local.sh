#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine: installs dependencies (deploy/install-deps.sh),
# configures and builds into build/, then runs what was asked for.
#
#   deploy/local.sh train [convoy train flags...]   train fashion_cnn on Fashion-MNIST with 2 MPI
#                                                   ranks (CONVOY_RANKS) under `convoy launch`
#                                                   (restarts, checkpoints in ./convoy-state; run
#                                                   again to continue) and print the report
#   deploy/local.sh test                            run the whole test suite (what CI runs)
#   deploy/local.sh build                           only install and build
#
# CONVOY_SANITIZE=address,undefined (or thread) builds with those sanitizers into build-<names>/
# instead (RelWithDebInfo), e.g. `CONVOY_SANITIZE=address,undefined deploy/local.sh test`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sanitize="${CONVOY_SANITIZE:-}"
build_type=Release
if [[ -n $sanitize ]]; then
  build_type=RelWithDebInfo
fi
build="${CONVOY_BUILD_DIR:-$root/build${sanitize:+-${sanitize//,/-}}}"
jobs="${CONVOY_JOBS:-$(nproc)}"

mode="${1:-}"
case "$mode" in
  train | test | build) shift ;;
  *)
    echo "usage: deploy/local.sh train|test|build [convoy train flags...]" >&2
    exit 2
    ;;
esac

"$root/deploy/install-deps.sh"

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="$build_type" -DCONVOY_SANITIZE="$sanitize" \
  "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$jobs"

case "$mode" in
  train)
    exec "$build/launcher/convoy" launch -np "${CONVOY_RANKS:-2}" -- \
      train --model fashion_cnn --checkpoint-every 200 "$@"
    ;;
  test)
    cd "$build"
    exec ctest --output-on-failure -j "$jobs"
    ;;
esac
