#!/usr/bin/env bash
# Prints a value for ONEDNN_MAX_CPU_ISA one level below this CPU's best instruction set, so that
# oneDNN picks other kernels and blockings than it would here: AVX2 on an AVX-512 CPU, SSE41 on
# an AVX2-only one. With --native, prints the level this CPU has instead.
set -euo pipefail
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { [[ "$flags" == *" $1 "* ]]; }
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
  native=AVX512_CORE older=AVX2
elif has avx2; then
  native=AVX2 older=SSE41
elif has avx; then
  native=AVX older=SSE41
else
  native=SSE41 older=SSE41  # nothing older that oneDNN still optimizes for
fi
case "${1:-}" in
  --native) echo "$native" ;;
  "") echo "$older" ;;
  *) echo "older-isa.sh: unknown argument '$1' (expected --native or nothing)" >&2; exit 2 ;;
esac
