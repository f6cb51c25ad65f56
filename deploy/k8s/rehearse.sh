#!/usr/bin/env bash
# The Kubernetes rehearsal: plays the rendered manifests of an overlay (default: rehearsal) as
# containers of the built image, each in a network namespace of its own, without a cluster.
# See deploy/k8s/validate/rehearse.mjs for what it does and checks.
#
#   deploy/k8s/rehearse.sh [--overlay NAME] [--image NAME]
#
# Needs root (network namespaces), podman, the image (deploy/image/build.sh), Node.js and
# deploy/install-deps.sh's npm packages.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec node "$here/validate/rehearse.mjs" "$@"
