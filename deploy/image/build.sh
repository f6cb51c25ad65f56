#!/usr/bin/env bash
# Builds the convoy container image offline, from Debian packages only, and writes it as an OCI
# archive any cluster's runtime can load:
#
#   1. a Debian 12 root file system made with mmdebstrap from this machine's configured Debian
#      mirrors (cached in <out>/rootfs-bookworm.tar; delete it to refresh), imported as the base;
#   2. deploy/image/Containerfile on top: runtime libraries, Open MPI, OpenSSH, Fashion-MNIST and
#      the convoy binary of the build tree (see below);
#   3. the image, with gzip-compressed layers, as <out>/convoy-<version>.oci.tar.
#
# The binary comes from the build tree (cmake --build build) rather than from a compiler stage in
# the image: the image's base is the same Debian release with the same package versions the binary
# was built and tested against (the security and updates suites included), so the result is the
# same binary a builder stage would produce, without a second 25-minute build on 2 cores. build.sh
# checks that every library the binary needs resolves inside the image, and runs it there.
#
#   deploy/image/build.sh [--out DIR]     (default DIR: build/image)
#
# Prints the image name and the archive path. Needs mmdebstrap, podman and skopeo
# (deploy/install-deps.sh --image); uses podman's vfs storage driver and chroot isolation, which
# work without a container runtime's cgroup support.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="${CONVOY_BUILD_DIR:-$root/build}"
out="$build/image"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    *) echo "build.sh: unknown argument '$1' (expected --out DIR)" >&2; exit 2 ;;
  esac
done
for tool in mmdebstrap podman skopeo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build.sh: $tool is missing (run deploy/install-deps.sh --image)" >&2
    exit 2
  fi
done
binary="$build/launcher/convoy"
if [[ ! -x "$binary" ]]; then
  echo "build.sh: $binary is missing (build first: cmake --build $build)" >&2
  exit 2
fi
version=$("$binary" --version | awk '{print $2}')
image="localhost/convoy:$version"
podman=(podman --storage-driver vfs)
mkdir -p "$out"
start=$(date +%s)

# This machine's Debian sources (deb822 or one-line), as one-line entries for mmdebstrap.
sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] && grep -E '^\s*deb\s' "$f" || true
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uris != "")
          for (u in U) for (s in S) print "deb " U[u] " " S[s] " " comps
        types = uris = suites = comps = ""; delete U; delete S
      }
      /^[[:space:]]*$/ { flush(); next }
      /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
      /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); split($0, U, /[[:space:]]+/); uris = $0 }
      /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); split($0, S, /[[:space:]]+/) }
      /^Components:/ { sub(/^Components:[[:space:]]*/, ""); comps = $0 }
      END { flush() }' "$f"
  done
}

rootfs="$out/rootfs-bookworm.tar"
if [[ ! -s "$rootfs" ]]; then
  mapfile -t mirrors < <(sources | grep -E ' bookworm(-updates|-security)? ' | sort -u)
  if [[ ${#mirrors[@]} -eq 0 ]]; then mirrors=("deb http://deb.debian.org/debian bookworm main"); fi
  # No documentation, manual pages or translations in the image.
  mmdebstrap --quiet --variant=apt \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm "$out/rootfs-bookworm.partial.tar" "${mirrors[@]}"
  mv "$out/rootfs-bookworm.partial.tar" "$rootfs"
fi
"${podman[@]}" import --quiet "$rootfs" localhost/convoy-base:bookworm >/dev/null

# The packages holding the libraries the binary loads, as this machine resolves them.
# (dpkg knows a library by the path its package installed, /lib or /usr/lib: both are asked.)
runtime_packages=""
for lib in $(ldd "$binary" | awk '/=> \//{print $3}'); do
  package=""
  for path in "$lib" "$(readlink -f "$lib")" "${lib/#\/usr\/lib\//\/lib\/}" "${lib/#\/lib\//\/usr\/lib\/}"; do
    package=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) && [[ -n "$package" ]] && break
  done
  if [[ -z "$package" ]]; then
    echo "build.sh: no Debian package holds $lib, which $binary needs" >&2
    exit 1
  fi
  runtime_packages+="$package "
done
runtime_packages=$(tr ' ' '\n' <<<"$runtime_packages" | sort -u | tr '\n' ' ')

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$root/deploy/image/Containerfile" "$root/deploy/image/sshd_config" "$context/"
cp "$binary" "$context/convoy"
"${podman[@]}" build --quiet --isolation chroot --layers=false -f "$context/Containerfile" \
  --build-arg "RUNTIME_PACKAGES=$runtime_packages" -t "$image" "$context" >/dev/null

# Every library resolves, and the binary runs, inside the image.
run=("${podman[@]}" run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
     --network none "$image")
if "${run[@]}" sh -c 'ldd /usr/local/bin/convoy' | grep -q 'not found'; then
  "${run[@]}" sh -c 'ldd /usr/local/bin/convoy' | grep 'not found' >&2
  echo "build.sh: libraries missing in $image" >&2
  exit 1
fi
"${run[@]}" convoy --version >/dev/null

archive="$out/convoy-$version.oci.tar"
rm -f "$archive"
skopeo copy --quiet --dest-compress --dest-compress-format gzip \
  "containers-storage:[vfs@/var/lib/containers/storage+/run/containers/storage]$image" \
  "oci-archive:$archive.partial:$image"
mv "$archive.partial" "$archive"
echo "build.sh: built in $(( $(date +%s) - start )) s, archive $(( $(stat -c %s "$archive") / 1048576 )) MiB" >&2
echo "image: $image"
echo "archive: $archive"
