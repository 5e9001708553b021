#!/usr/bin/env bash
# tests/bench/lab/ab.sh - the new-streams lab: interleaved A/B runs of two or more builds of
# nl on loopback, for changes too small for the harness' run-to-run spread.
#
#   tests/bench/lab/ab.sh [-r ROUNDS] [-n CONNS] [-t ws|quic] [-m forward|socks] [-c CLIENT_ARG] A B ...
#
# Each of A, B, ... is a build directory (gateway/nl-gateway, agent/nl-agent,
# client/nl-client) or a directory holding nl-gateway, nl-agent and nl-client; LABEL=DIR
# names it in the output. The binaries are copied first, so a rebuild during the run does
# not change what is measured. Each round starts the three programs of every variant in
# turn (gateway with TLS, agent, and `nl-client forward -L`, or `nl-client socks` with -m
# socks), over the transport of -t (default ws: the one the harness rows use), and makes
# CONNS sequential connections with ../shared/bench/bench.py lat against its echo server.
# -c adds an argument to every variant's nl-client sub-command (repeatable; e.g.
# `-m socks -c --early-reply`).
# One line per run: conn/s, p50, CPU per connection of each process (from /proc/PID/stat)
# and context switches per connection of the three; then the medians per variant. Even
# rounds run the variants in reverse order: on the 2-vCPU VMs the second run of a pair was
# often a few per cent faster, whatever it ran. Only runs from the same invocation compare:
# the VM's speed drifts by 10-20 % between invocations.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BENCH=${NL_BENCH_SRC:-$ROOT/../shared/bench}/bench.py
ROUNDS=4 CONNS=3000 TRANSPORT=ws MODE=forward
CLIENT_ARGS=()

usage() { sed -n '5p' "$0" | sed 's/^# *//' >&2; exit 2; }
while getopts r:n:t:m:c:h opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    n) CONNS=$OPTARG ;;
    t) TRANSPORT=$OPTARG ;;
    m) MODE=$OPTARG ;;
    c) CLIENT_ARGS+=("$OPTARG") ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ ]] || { echo "ab.sh: -r and -n take positive numbers" >&2; exit 2; }
[[ $TRANSPORT == ws || $TRANSPORT == quic ]] || { echo "ab.sh: -t is ws or quic" >&2; exit 2; }
[[ $MODE == forward || $MODE == socks ]] || { echo "ab.sh: -m is forward or socks" >&2; exit 2; }
[ -f "$BENCH" ] || { echo "ab.sh: $BENCH not found (set NL_BENCH_SRC)" >&2; exit 1; }

W=$(mktemp -d)
PIDS=()
stop_pids() {  # SIGTERM, then SIGKILL whatever is left after 5 s
  local p i
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
  done
}
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Snapshot each variant's binaries.
LABELS=()
for ((v = 1; v <= $#; v++)); do
  arg=${!v} label=${!v}
  if [[ $arg == *=* ]]; then label=${arg%%=*}; arg=${arg#*=}; fi
  mkdir -p "$W/v$v"
  for b in gateway agent client; do
    if [ -x "$arg/$b/nl-$b" ]; then cp "$arg/$b/nl-$b" "$W/v$v/"
    elif [ -x "$arg/nl-$b" ]; then cp "$arg/nl-$b" "$W/v$v/"
    else echo "ab.sh: no nl-$b in $arg or $arg/$b" >&2; exit 1; fi
  done
  label=$(basename "$label")
  # The results are grouped by label: two variants must not share one (build and ../x/build).
  for l in "${LABELS[@]}"; do
    [ "$l" != "$label" ] || { echo "ab.sh: two variants are named '$label'; name them: A=DIR B=DIR" >&2; exit 2; }
  done
  [[ $label =~ ^[^[:space:]]+$ ]] || { echo "ab.sh: variant name '$label' has spaces" >&2; exit 2; }
  LABELS+=("$label")
done

# Credentials, made with the first variant's binaries.
S=$W/state
# shellcheck source-path=SCRIPTDIR source=../nl_state.sh
source "$ROOT/tests/bench/nl_state.sh"
nl_make_state "$S" "$W/v1/nl-gateway" "$W/v1/nl-agent" >/dev/null

read -r P_ECHO P_GW P_FWD < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

wait_port() {  # PORT : up to 10 s
  local i
  for ((i = 0; i < 200; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "ab.sh: nothing listens on port $1 after 10 s" >&2; return 1
}
wait_log() {  # FILE REGEX : up to 10 s
  local i
  for ((i = 0; i < 200; i++)); do grep -qE -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "ab.sh: no /$2/ in $1 after 10 s:" >&2; tail -n 5 "$1" >&2; return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }

python3 "$BENCH" server --port "$P_ECHO" >"$W/echo.log" 2>&1 &
PIDS+=($!)
wait_port "$P_ECHO"

TCK=$(getconf CLK_TCK)
lat_args=(--addr "127.0.0.1:$P_FWD")
[ "$MODE" = socks ] && lat_args+=(--socks --target "127.0.0.1:$P_ECHO")
echo "# $MODE${CLIENT_ARGS[*]:+ ${CLIENT_ARGS[*]}} over $TRANSPORT, $CONNS sequential connections per run, $ROUNDS rounds; CPU in µs per connection"
printf '%-5s %-14s %8s %7s %7s %7s %7s %7s %9s\n' round variant conn/s p50_ms client gateway agent total switches
for ((r = 1; r <= ROUNDS; r++)); do
  order=$(seq 1 ${#LABELS[@]})
  ((r % 2 == 0)) && order=$(seq ${#LABELS[@]} -1 1)  # the run that comes second in a pair
  for v in $order; do                                 # tends to do better: alternate
    d=$W/v$v
    "$d/nl-gateway" --listen "127.0.0.1:$P_GW" --tls-cert "$S/gateway.crt" --tls-key "$S/gateway.key" \
      --secret-file "$S/secret" --log-level warn >"$W/gw.log" 2>&1 &
    gw=$!; PIDS+=("$gw")
    wait_port "$P_GW"
    "$d/nl-agent" --gateway "wss://127.0.0.1:$P_GW" --token-file "$S/agent.token" --ca "$S/gateway.crt" \
      --allow cidr=127.0.0.0/8 --key-file "$S/agent.key" --transport "$TRANSPORT" --log-level info >"$W/ag.log" 2>&1 &
    ag=$!; PIDS+=("$ag")
    wait_log "$W/ag.log" 'session up: '
    mode=(forward --agent bench -L "127.0.0.1:$P_FWD:127.0.0.1:$P_ECHO")
    [ "$MODE" = socks ] && mode=(socks --agent bench --listen "127.0.0.1:$P_FWD")
    "$d/nl-client" --gateway "wss://127.0.0.1:$P_GW" --token-file "$S/client.token" --ca "$S/gateway.crt" \
      --transport "$TRANSPORT" --log-level info "${mode[@]}" "${CLIENT_ARGS[@]}" >"$W/cl.log" 2>&1 &
    cl=$!; PIDS+=("$cl")
    wait_log "$W/cl.log" 'session up: '
    wait_port "$P_FWD"

    python3 "$BENCH" lat "${lat_args[@]}" --n 200 --warmup 20 >/dev/null
    c0=$(cpu_ticks $cl) g0=$(cpu_ticks $gw) a0=$(cpu_ticks $ag)
    s0=$(($(switches $cl) + $(switches $gw) + $(switches $ag)))
    out=$(python3 "$BENCH" lat "${lat_args[@]}" --n "$CONNS" --warmup 0 | tail -n 1)
    c1=$(cpu_ticks $cl) g1=$(cpu_ticks $gw) a1=$(cpu_ticks $ag)
    s1=$(($(switches $cl) + $(switches $gw) + $(switches $ag)))
    stop_pids $cl $ag $gw
    PIDS=("${PIDS[0]}")  # the echo server stays

    python3 - "$r" "${LABELS[v - 1]}" "$out" "$TCK" "$CONNS" $((c1 - c0)) $((g1 - g0)) $((a1 - a0)) $((s1 - s0)) <<'EOF' | tee -a "$W/results"
import json, sys
r, label, out, tck, n, c, g, a, s = sys.argv[1:]
d = json.loads(out); n = int(n); us = lambda t: int(t) * 1e6 / int(tck) / n
print(f"{r:<5} {label:<14} {d['conn_per_s']:8.0f} {d['p50_ms']:7.3f} {us(c):7.0f} {us(g):7.0f} {us(a):7.0f} "
      f"{us(c) + us(g) + us(a):7.0f} {int(s) / n:9.2f}")
EOF
  done
done

echo "# medians"
python3 - "$W/results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[1], []).append((float(f[2]), float(f[7]), float(f[8])))
for label, v in rows.items():
    med = lambda i: statistics.median(x[i] for x in v)
    print(f"{label:<14} conn/s {med(0):6.0f}   CPU {med(1):4.0f} µs per connection   switches {med(2):.2f}")
EOF
