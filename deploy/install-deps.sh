#!/usr/bin/env bash
# Installs every Debian 12 package convoy needs to build, test and run. Idempotent: packages that
# are already installed are skipped, and nothing is downloaded when all of them are present.
#
#   deploy/install-deps.sh          build + test dependencies and the Fashion-MNIST data set, and the
#                                   npm packages the manifest validation uses (deploy/k8s/validate,
#                                   from its package-lock.json)
#   deploy/install-deps.sh --bench  also PyTorch, for the side-by-side benchmarks in tests/bench/
#   deploy/install-deps.sh --image  also mmdebstrap, podman and skopeo, for deploy/image/build.sh
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
  libssl-dev openssl libcpp-httplib-dev
  # the coordinator's /metrics checked with the real Prometheus (promtool, prometheus)
  prometheus
  # data, and Python used by tests to read what convoy writes
  dataset-fashion-mnist python3-numpy python3-grpcio
  # the Kubernetes manifests' checks (kubectl and Node.js come with the machine)
  yamllint openssl
)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(python3-torch) ;;
    --image) packages+=(mmdebstrap podman skopeo runc uidmap) ;;
    *)
      echo "install-deps.sh: unknown argument '$arg' (expected --bench, --image or nothing)" >&2
      exit 2
      ;;
  esac
done

# The manifest validation's npm packages, exactly as locked; again only when the lock changed.
validate="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/k8s/validate"
npm_ci() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps.sh: npm is missing (Node.js 20 with npm is needed for deploy/k8s/validate)" >&2
    exit 1
  fi
  if ! cmp -s "$validate/package-lock.json" "$validate/node_modules/.installed-lock.json"; then
    (cd "$validate" && npm ci --no-audit --no-fund --loglevel=error &&
      cp package-lock.json node_modules/.installed-lock.json)
  fi
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  npm_ci
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "install-deps.sh: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
npm_ci
