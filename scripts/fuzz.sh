#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang in build-fuzz/ and runs each for
# SECONDS (default 10) from a copy of its seed corpus, so the repository is never written.
# Exits nonzero when any fuzzer finds a crash, leak, timeout or failed invariant; the
# reproducer is kept in build-fuzz/artifacts/ (run the target with that file to replay).
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

seconds=${1:-10}
if ! [[ $seconds =~ ^[0-9]+$ ]] || (( seconds == 0 )); then
  echo "usage: $0 [SECONDS]   (a positive number of seconds per fuzzer, default 10)" >&2
  exit 2
fi
for tool in clang++ cmake ninja; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz.sh: $tool not found; install clang, cmake and ninja-build" >&2
    exit 2
  fi
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-fuzz
targets=(${NL_FUZZ_TARGETS:-fuzz_frame fuzz_socks5 fuzz_http_connect fuzz_token fuzz_config fuzz_e2e fuzz_packet fuzz_dns})

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DNL_FUZZ=ON -DNL_TESTS=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts=$build/artifacts
mkdir -p "$artifacts"

failed=()
for t in "${targets[@]}"; do
  corpus=$work/$t
  mkdir -p "$corpus"
  if [[ -d $root/tests/fuzz/corpus/$t ]]; then
    cp -r "$root/tests/fuzz/corpus/$t/." "$corpus/"
  fi
  log=$work/$t.log
  echo "== $t: ${seconds}s"
  if "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" >"$log" 2>&1; then
    # One summary line: executions and coverage reached.
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "   ok: ${runs:-?} runs, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) inputs"
  else
    echo "   FAILED; last lines of the log:"
    tail -n 40 "$log" | sed 's/^/   | /'
    failed+=("$t")
  fi
done

if (( ${#failed[@]} )); then
  echo "fuzz.sh: crashes in: ${failed[*]} (reproducers in $artifacts)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} fuzzers ran ${seconds}s without findings"
