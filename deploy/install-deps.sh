#!/usr/bin/env bash
# Installs every Debian 12 package convoy needs to build, test and run. Idempotent: packages that
# are already installed are skipped, and nothing is downloaded when all of them are present.
#
#   deploy/install-deps.sh          build + test dependencies and the Fashion-MNIST data set, and the
#                                   npm packages the manifest validation and the browser test use
#                                   (deploy/k8s/validate, tests/browser; from their package-lock.json)
#   deploy/install-deps.sh --bench  also PyTorch, for the side-by-side benchmarks in tests/bench/
#   deploy/install-deps.sh --image  also mmdebstrap, podman and skopeo, for deploy/image/build.sh
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config ccache clang-format
  # the sanitized build and its fuzz targets (clang, libFuzzer)
  clang libclang-rt-dev
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
  libssl-dev openssl libmicrohttpd-dev
  # the tests' HTTP client
  libcpp-httplib-dev
  # the coordinator's /metrics checked with the real Prometheus (promtool, prometheus)
  prometheus
  # data, and Python used by tests to read what convoy writes (TensorBoard files: crcmod, protobuf)
  dataset-fashion-mnist python3-numpy python3-grpcio python3-crcmod python3-protobuf
  # the dashboard tested in a real browser (driven by playwright-core from tests/browser)
  chromium
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

# The npm packages of the manifest validation and the browser test, exactly as locked; again only
# when a lock changed.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
npm_ci() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps.sh: npm is missing (Node.js 20 with npm is needed for deploy/k8s/validate" \
      "and tests/browser)" >&2
    exit 1
  fi
  for dir in "$root/deploy/k8s/validate" "$root/tests/browser"; do
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-lock.json"; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error &&
        cp package-lock.json node_modules/.installed-lock.json)
    fi
  done
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
