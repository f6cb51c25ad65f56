#!/usr/bin/env bash
# Runs every libFuzzer target of a CONVOY_FUZZ build for a bounded time (deploy/local.sh fuzz).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [PARALLEL]
#
# Each target starts from its seed corpus and regression inputs (tests/fuzz/corpus/<name>,
# regressions/<name>), copied to BUILD_DIR/tests/fuzz/work/<name>, where what it finds
# accumulates across runs. Limits: 1 s per input, 100 MB per allocation; more on any input is
# a finding, as are crashes, sanitizer reports, leaks and exceptions other than convoy's refusal.
# A finding is saved as BUILD_DIR/tests/fuzz/findings/<name>/crash-*: fix it, then copy it to
# tests/fuzz/regressions/<name>/ so that ctest replays it on every build. Prints the executions
# of each target and exits non-zero when any target had a finding.
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR SECONDS [PARALLEL]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [PARALLEL]}
parallel=${3:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin="$build/tests/fuzz/bin"
out="$build/tests/fuzz"
if ! compgen -G "$bin/*_fuzz" >/dev/null; then
  echo "run.sh: no fuzz targets in $bin (configure with -DCONVOY_FUZZ=ON)" >&2
  exit 2
fi

run_one() {
  local target=$1 name
  name=$(basename "$target" _fuzz)
  mkdir -p "$out/work/$name" "$out/findings/$name"
  cp -n "$here/corpus/$name"/* "$out/work/$name/"
  if [[ -d $here/regressions/$name ]]; then cp -n "$here/regressions/$name"/* "$out/work/$name/"; fi
  # -rss_limit_mb bounds the whole process (ASan's shadow memory included); -malloc_limit_mb any
  # single allocation an input causes. <name>.options adds flags of the target's own.
  local options=()
  if [[ -f $here/$name.options ]]; then mapfile -t options < <(grep -v '^#' "$here/$name.options"); fi
  if OMP_NUM_THREADS=1 "$target" "$out/work/$name" -max_total_time="$seconds" -timeout=1 \
    -malloc_limit_mb=100 -rss_limit_mb=2560 -print_final_stats=1 "${options[@]}" \
    -artifact_prefix="$out/findings/$name/" >"$out/$name.log" 2>&1; then
    echo "$name ok $(grep -m1 -o 'number_of_executed_units: [0-9]*' "$out/$name.log" | cut -d' ' -f2)"
  else
    echo "$name FINDING (see $out/$name.log and $out/findings/$name/)"
  fi
}
export -f run_one
export here out seconds
# The targets' scratch files (fuzz_support.h), also those of a run that ended on a finding.
export TMPDIR="$out/tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT

results=$(printf '%s\n' "$bin"/*_fuzz | xargs -P "$parallel" -I{} bash -c 'run_one {}')
echo "$results" | sort
total=$(echo "$results" | awk '$2 == "ok" { s += $3 } END { print s + 0 }')
echo "fuzzing: $total executions in all, ${seconds} s per target"
if echo "$results" | grep -q FINDING; then
  exit 1
fi
