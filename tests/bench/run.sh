#!/usr/bin/env bash
# tests/bench/run.sh - benchmark nl next to the baseline relays, in the same run, with the
# shared harness (../shared/bench relative to the repository root, read-only). The harness is
# copied to build/bench-harness, the nl row (tests/bench/rows/80-nl-socks.sh) is added, a
# secret / self-signed certificate / tokens are made, then the harness runs:
#
#   tests/bench/run.sh                          direct stunnel-2tls ssh-L ssh-2leg nl-socks nl-socks-e2e nl-socks-quic nl-socks-e2e-quic nl-forward floor-3tls
#   tests/bench/run.sh nl-socks ssh-D           other rows
#   RUNS=1 TPUT_SECS=2 tests/bench/run.sh       harness knobs pass through (see its README)
#   NL_BENCH_SRC=/path/to/bench tests/bench/run.sh
#
# The report ends up in build/bench-report.md (raw data in build/bench-harness/results/).
# Takes a few minutes (each row: 3 rounds of idle, throughput, curl and latency tests).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SRC=${NL_BENCH_SRC:-$ROOT/../shared/bench}
H=$BUILD_DIR/bench-harness
ROWS=("$@")
[ ${#ROWS[@]} -eq 0 ] && ROWS=(direct stunnel-2tls ssh-L ssh-2leg nl-socks nl-socks-e2e nl-socks-quic nl-socks-e2e-quic nl-forward floor-3tls)

[ -f "$SRC/run.sh" ] && [ -f "$SRC/lib.sh" ] || {
  echo "bench: harness not found at $SRC (set NL_BENCH_SRC)" >&2; exit 1; }
for b in gateway/nl-gateway agent/nl-agent client/nl-client; do
  [ -x "$BUILD_DIR/$b" ] || { echo "bench: $BUILD_DIR/$b missing; run scripts/build.sh" >&2; exit 1; }
done

# the harness' baseline tools (iperf3, stunnel4, shadowsocks-libev, microsocks, ssh, socat)
"$ROOT/scripts/deps.sh" --bench-only

# fresh copy of the harness code; keep its generated conf/ and old results/ between runs
mkdir -p "$H"
(cd "$SRC" && tar --exclude=./conf --exclude=./run --exclude=./results --exclude=__pycache__ -cf - .) | (cd "$H" && tar -xf -)
chmod -R u+w "$H"
cp "$ROOT"/tests/bench/rows/*.sh "$H/rows/"

# nl credentials for the row, in the harness' run dir
NL_STATE=$H/run/nl
# shellcheck source-path=SCRIPTDIR source=nl_state.sh
source "$ROOT/tests/bench/nl_state.sh"
nl_make_state "$NL_STATE" "$BUILD_DIR/gateway/nl-gateway" "$BUILD_DIR/agent/nl-agent"

export NL_BIN=$BUILD_DIR NL_STATE
cd "$H"
./setup.sh
./run.sh "${ROWS[@]}"
cp results/latest/report.md "$BUILD_DIR/bench-report.md"
{ echo; echo '## Environment'; echo; echo '```'; cat results/latest/env.txt; echo '```'; } >>"$BUILD_DIR/bench-report.md"
echo "bench: report in $BUILD_DIR/bench-report.md (raw: $H/results/latest/)"
