#!/usr/bin/env bash
# Installs every Debian 12 package convoy needs to build, test and run. Idempotent: packages that
# are already installed are skipped, and nothing is downloaded when all of them are present.
#
#   deploy/install-deps.sh          build + test dependencies and the Fashion-MNIST data set
#   deploy/install-deps.sh --bench  also PyTorch, for the side-by-side benchmarks in tests/bench/
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config ccache clang-format
  # oneDNN (its CMake config also needs the OpenCL ICD loader headers)
  libdnnl-dev ocl-icd-opencl-dev
  # MPI, gRPC, Protocol Buffers
  libopenmpi-dev openmpi-bin
  # convoy launch: stack traces of hung ranks
  gdb
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc grpc-proto
  libprotobuf-dev protobuf-compiler
  # libraries that save hand-written code
  libgtest-dev libgmock-dev zlib1g-dev libzip-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  libssl-dev openssl
  # data, and Python used by tests to read what convoy writes
  dataset-fashion-mnist python3-numpy python3-grpcio
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch)
elif [[ $# -gt 0 ]]; then
  echo "install-deps.sh: unknown argument '$1' (expected --bench or nothing)" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "install-deps.sh: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
