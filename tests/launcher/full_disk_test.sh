#!/usr/bin/env bash
# `convoy train --save` onto a disk that is really full (a 2 MiB tmpfs in a mount namespace of the
# test's own): exit code 1 (the machine failed, not the user's input), one error line naming the
# file and "No space left on device", the checkpoint saved there before intact, no temporary file
# left, and the trained model kept in $TMPDIR instead (the message says where). Needs root for the
# mount namespace; where it cannot make one, it says why and exits 77 (ctest: skipped).
#
#   tests/launcher/full_disk_test.sh CONVOY
set -euo pipefail
convoy=${1:?usage: full_disk_test.sh CONVOY}
if ! unshare -m true 2>/dev/null; then
  echo "SKIPPED: cannot create a mount namespace (needs root and unshare)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/disk" "$work/rescue"
# The mount lives and dies with the namespace: nothing to unmount afterwards.
unshare -m bash -s "$convoy" "$work" <<'INNER'
set -euo pipefail
convoy=$1 work=$2
fail() { echo "FAIL: $*"; exit 1; }
mount -t tmpfs -o size=2m tmpfs "$work/disk"
train=(train --model lenet5 --limit-train 640 --limit-test 100 --max-steps 2 --threads 1
       --progress none --save "$work/disk/model.ckpt")
"$convoy" "${train[@]}" >/dev/null 2>&1
cp "$work/disk/model.ckpt" "$work/before.ckpt"
dd if=/dev/zero of="$work/disk/filler" bs=4k 2>/dev/null || true  # fills the disk
set +e
TMPDIR="$work/rescue" "$convoy" "${train[@]}" --seed 7 >/dev/null 2>"$work/err"
code=$?
set -e
[[ $code == 1 ]] || fail "exit code $code, expected 1"
grep "^convoy: error:" "$work/err" >"$work/error" || true
[[ $(wc -l <"$work/error") == 1 ]] || fail "expected one error line"
grep -q "model.ckpt" "$work/error" || fail "the message does not name the file"
grep -q "No space left on device" "$work/error" || fail "the message does not say the disk is full"
cmp -s "$work/disk/model.ckpt" "$work/before.ckpt" || fail "the earlier checkpoint changed"
if ls "$work/disk" | grep -q '\.tmp\.'; then fail "a temporary file was left: $(ls "$work/disk")"; fi
rescued=$(ls "$work/rescue"/convoy-*.ckpt 2>/dev/null | head -1)
[[ -n $rescued ]] || fail "the trained model was not kept in \$TMPDIR"
grep -qF "$rescued" "$work/error" || fail "the message does not say where the model was kept"
"$convoy" evaluate --checkpoint "$rescued" --limit-test 100 --threads 1 >/dev/null ||
  fail "the kept model does not evaluate"
cat "$work/error"
echo "PASS: a full disk gave exit code 1, one line, the old checkpoint intact, no temporary"
INNER
