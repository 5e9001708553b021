#!/usr/bin/env bash
# test.sh - THE test command: install what is missing, build, run every test registered in
# CTest (unit + integration + root-only netns tests when running as root), then a short
# fuzzing pass when scripts/fuzz.sh exists. Exits non-zero on any failure and ends with
# one summary line.
#
#   scripts/test.sh                  everything
#   CTEST_ARGS="-L integration" scripts/test.sh   pass extra arguments to ctest
#   NL_SKIP_DEPS=1 / NL_SKIP_FUZZ=1  skip those steps
#   FUZZ_SECS=10                     seconds per fuzz target
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD_DIR=${BUILD_DIR:-build}
FUZZ_SECS=${FUZZ_SECS:-10}
T0=$(date +%s)
declare -a results=()
status=0

step() {  # step NAME CMD... : run one step, remember its outcome
  local name=$1; shift
  local t rc dt
  t=$(date +%s)
  echo "==> $name: $*" >&2
  "$@"
  rc=$?
  dt=$(( $(date +%s) - t ))
  if [ $rc -eq 0 ]; then results+=("$name ok (${dt}s)"); else results+=("$name FAILED rc=$rc (${dt}s)"); status=1; fi
  return $rc
}

summary() {
  local word=PASSED
  [ $status -ne 0 ] && word=FAILED
  echo "test.sh: $word in $(( $(date +%s) - T0 ))s: $(IFS=';'; echo "${results[*]}" | sed 's/;/; /g')"
}
trap summary EXIT

if [ "${NL_SKIP_DEPS:-0}" != 1 ]; then
  step deps scripts/deps.sh || exit 1
fi
step build env BUILD_DIR="$BUILD_DIR" scripts/build.sh || exit 1

# shellcheck disable=SC2086
step ctest ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 ${CTEST_ARGS:-}

if [ "${NL_SKIP_FUZZ:-0}" != 1 ] && [ -x scripts/fuzz.sh ]; then
  step fuzz scripts/fuzz.sh "$FUZZ_SECS"
elif [ "${NL_SKIP_FUZZ:-0}" != 1 ] && [ -f scripts/fuzz.sh ]; then
  step fuzz bash scripts/fuzz.sh "$FUZZ_SECS"
fi
exit $status
