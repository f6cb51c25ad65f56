#!/usr/bin/env bash
# Runs every libFuzzer target of a CONVOY_FUZZ build for a bounded time (deploy/local.sh fuzz).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [PARALLEL]
#   FUZZ_RUNS=1000000 tests/fuzz/run.sh BUILD_DIR 0 [PARALLEL]   (a number of inputs instead)
#
# Each target starts from its seed corpus and regression inputs (tests/fuzz/corpus/<name>,
# regressions/<name>), copied to BUILD_DIR/tests/fuzz/work/<name>, where what it finds
# accumulates across runs. Limits: 1 s per input (or the target's own, see <name>.options),
# 100 MB per allocation; more on any input is a finding, as are crashes, sanitizer reports, leaks
# and exceptions other than convoy's refusal. A finding is saved as
# BUILD_DIR/tests/fuzz/findings/<name>/crash-* (or leak-*, timeout-*, oom-*): fix it, then copy it
# to tests/fuzz/regressions/<name>/ so that ctest replays it on every build. Prints the
# executions of each target and exits non-zero when any target had a finding.
set -euo pipefail

usage="usage: run.sh BUILD_DIR SECONDS [PARALLEL]"
build=${1:?$usage}
seconds=${2:?$usage}
parallel=${3:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$build/tests/fuzz"
targets=("$out"/bin/*_fuzz)
if [[ ! -x ${targets[0]} ]]; then
  echo "run.sh: no fuzz targets in $out/bin (configure with -DCONVOY_FUZZ=ON)" >&2
  exit 2
fi

run_one() {
  local target=$1 name log
  name=$(basename "$target" _fuzz)
  log="$out/$name.log"
  mkdir -p "$out/work/$name" "$out/findings/$name"
  local seeds=("$here/corpus/$name"/*)
  if [[ ! -f ${seeds[0]} ]]; then
    echo "$name FINDING: no seed corpus in $here/corpus/$name" >"$out/$name.result"
    return
  fi
  cp -n "${seeds[@]}" "$out/work/$name/"
  if [[ -d $here/regressions/$name ]]; then cp -n "$here/regressions/$name"/* "$out/work/$name/"; fi
  # -rss_limit_mb bounds the whole process (ASan's shadow memory included); -malloc_limit_mb any
  # single allocation an input causes. <name>.options adds flags of the target's own (later flags
  # win).
  local options=()
  if [[ -f $here/$name.options ]]; then mapfile -t options < <(grep -v '^#' "$here/$name.options"); fi
  local budget=(-max_total_time="$seconds")
  if [[ -n ${FUZZ_RUNS:-} ]]; then budget=(-runs="$FUZZ_RUNS"); fi
  if OMP_NUM_THREADS=1 "$target" "$out/work/$name" "${budget[@]}" -timeout=1 \
    -malloc_limit_mb=100 -rss_limit_mb=2560 -print_final_stats=1 "${options[@]}" \
    -artifact_prefix="$out/findings/$name/" >"$log" 2>&1; then
    echo "$name ok $(grep -m1 -o 'number_of_executed_units: [0-9]*' "$log" | cut -d' ' -f2)" \
      >"$out/$name.result"
  else
    echo "$name FINDING (see $log and $out/findings/$name/)" >"$out/$name.result"
  fi
}
export -f run_one
export here out seconds FUZZ_RUNS
# The targets' scratch files (fuzz_support.h), also those of a run that ended on a finding.
export TMPDIR="$out/tmp"
rm -rf "$TMPDIR" "$out"/*.result && mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT

# Each target writes its own result file: one that dies with its shell still leaves the others'.
printf '%s\0' "${targets[@]}" | xargs -0 -n1 -P "$parallel" bash -c 'run_one "$1"' _ || true
status=0
total=0
for target in "${targets[@]}"; do
  name=$(basename "$target" _fuzz)
  if [[ ! -f $out/$name.result ]]; then
    echo "$name FINDING: it ended without a result (see $out/$name.log)"
    status=1
    continue
  fi
  read -r _ verdict executions <"$out/$name.result" || true
  cat "$out/$name.result"
  if [[ $verdict == ok ]]; then
    total=$((total + executions))
  else
    status=1
  fi
done
budget="$seconds s"
if [[ -n ${FUZZ_RUNS:-} ]]; then budget="$FUZZ_RUNS inputs"; fi
echo "fuzzing: $total executions in all, $budget per target"
exit "$status"
