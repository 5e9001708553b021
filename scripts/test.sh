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
#   NL_SANITIZE=1                    the same suite on an ASan+UBSan build (build-asan/, about
#                                    40 min to build on 2 cores); any sanitizer report fails it
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

SANITIZE=${NL_SANITIZE:-0}
declare -a build_args=()
if [ "$SANITIZE" = 1 ]; then
  BUILD_DIR=${BUILD_DIR:-build-asan}
  build_args=(-DNL_SANITIZE=ON)
  sanlog=$(mktemp -d)
  # Every process the tests start (the nl binaries included) writes its reports here.
  export ASAN_OPTIONS="log_path=$sanlog/asan:detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="log_path=$sanlog/ubsan:print_stacktrace=1"
else
  BUILD_DIR=${BUILD_DIR:-build}
fi
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
step build env BUILD_DIR="$BUILD_DIR" scripts/build.sh "${build_args[@]}" || exit 1

# shellcheck disable=SC2086
step ctest ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 ${CTEST_ARGS:-}

sanitizer_reports() {  # fails, showing the start of each, when any process wrote a report
  local f
  if rmdir "$sanlog" 2>/dev/null; then
    echo "no sanitizer reports" >&2
    return 0
  fi
  for f in "$sanlog"/*; do
    echo "--- $f" >&2
    head -40 "$f" >&2
  done
  return 1
}
if [ "$SANITIZE" = 1 ]; then
  step sanitizer-reports sanitizer_reports
  unset ASAN_OPTIONS UBSAN_OPTIONS  # the fuzzers report their own findings
fi

if [ "${NL_SKIP_FUZZ:-0}" != 1 ] && [ -x scripts/fuzz.sh ]; then
  step fuzz scripts/fuzz.sh "$FUZZ_SECS"
elif [ "${NL_SKIP_FUZZ:-0}" != 1 ] && [ -f scripts/fuzz.sh ]; then
  step fuzz bash scripts/fuzz.sh "$FUZZ_SECS"
fi
exit $status
