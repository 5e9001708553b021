#!/usr/bin/env bash
# demo.sh - one command from a fresh Debian/Ubuntu machine to a working local nl setup:
# installs what is missing, builds, then starts on loopback
#   a tiny web server  <-  nl-agent (tenant demo, name home)  <=TLS/WS=>  nl-gateway
#                                                     nl-client socks  <=TLS/WS=>  (same gateway)
# with a generated secret, tokens and a self-signed certificate, and fetches a page through
# the SOCKS port. Every process is started with nohup, logs and PIDs are kept in the state
# directory; `scripts/demo.sh stop` (or `make demo-stop`) stops exactly those PIDs.
#
#   scripts/demo.sh            (re)start the demo; a running demo is stopped first
#   scripts/demo.sh stop       stop it
#   scripts/demo.sh status     show what is running
#   NL_DEMO_DIR=/tmp/x scripts/demo.sh    state directory (default ./demo-run)
#   NL_SKIP_BUILD=1 scripts/demo.sh       use the existing build (no deps/build step)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

STATE=${NL_DEMO_DIR:-$ROOT/demo-run}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
READY_TIMEOUT=${READY_TIMEOUT:-20}   # seconds to wait for each readiness line
GW=$BUILD_DIR/gateway/nl-gateway
AG=$BUILD_DIR/agent/nl-agent
CL=$BUILD_DIR/client/nl-client
PIDS=$STATE/pids    # "PID LABEL" per line
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
# The demo talks to 127.0.0.1 only; an inherited proxy setting would send curl elsewhere.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

# is_ours PID : the PID is alive and still runs something we started (guards against PID
# reuse after a reboot or a long time: we only signal processes whose command line matches).
is_ours() {
  local pid=$1 cmd
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $cmd in
    *nl-gateway*|*nl-agent*|*nl-client*|*http.server*) return 0 ;;
    *) return 1 ;;
  esac
}

stop_demo() {
  [ -f "$PIDS" ] || return 0
  local pid label left=()
  # newest first: client, agent, gateway, web server
  while read -r pid label; do
    [ -n "$pid" ] || continue
    if is_ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null && left+=("$pid") && echo "stopping $label (pid $pid)" >&2
    fi
  done < <(tac "$PIDS")
  # wait up to 15 s (the gateway drains streams on SIGTERM), then SIGKILL what is left
  for _ in $(seq 150); do
    local alive=()
    for pid in "${left[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    left=("${alive[@]}")
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${left[@]}"; do
    echo "pid $pid did not stop in time; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$PIDS"
}

status_demo() {
  [ -f "$PIDS" ] || { echo "demo not running (no $PIDS)"; return 1; }
  local pid label rc=0
  while read -r pid label; do
    if is_ours "$pid"; then echo "running: $label (pid $pid)"; else echo "gone:    $label (pid $pid)"; rc=1; fi
  done <"$PIDS"
  [ -f "$STATE/ports" ] && cat "$STATE/ports"
  return $rc
}

case ${1:-start} in
  stop) stop_demo; echo "demo stopped"; exit 0 ;;
  status) status_demo; exit $? ;;
  start) ;;
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
  *) die "unknown command '$1' (use: start | stop | status)" ;;
esac

# ---------------------------------------------------------------------------------------
mkdir -p "$STATE"
stop_demo

if [ "${NL_SKIP_BUILD:-0}" != 1 ]; then
  say "installing missing packages (scripts/deps.sh)"
  "$ROOT/scripts/deps.sh"
  say "building (scripts/build.sh)"
  BUILD_DIR=$BUILD_DIR "$ROOT/scripts/build.sh"
fi
for b in "$GW" "$AG" "$CL"; do [ -x "$b" ] || die "$b is missing; run scripts/build.sh"; done

# start LABEL CMD... : nohup in the background, log in the state dir, PID recorded
start() {
  local label=$1; shift
  : >"$STATE/$label.log"
  nohup "$@" >"$STATE/$label.log" 2>&1 </dev/null &
  echo "$! $label" >>"$PIDS"
  eval "PID_${label//-/_}=$!"
}

# wait_line LABEL REGEX : poll LABEL's log until a line matches (bounded), print the match
wait_line() {
  local label=$1 re=$2 log=$STATE/$1.log pidvar="PID_${1//-/_}" deadline m
  deadline=$(( $(date +%s%N) / 1000000 + READY_TIMEOUT * 1000 ))
  while :; do
    if m=$(grep -E -m1 -o -- "$re" "$log" 2>/dev/null); then
      printf '%s\n' "$m"; return 0
    fi
    if ! kill -0 "${!pidvar}" 2>/dev/null; then
      echo "demo.sh: $label exited before it was ready; its log ($log):" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    if [ $(( $(date +%s%N) / 1000000 )) -ge "$deadline" ]; then
      echo "demo.sh: $label not ready after ${READY_TIMEOUT}s (waiting for /$re/); its log ($log):" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    sleep 0.05
  done
}

fail_and_stop() { echo "demo.sh: stopping what was started" >&2; stop_demo; exit 1; }

say "generating secret, certificate and tokens in $STATE"
rm -f "$STATE/secret" "$STATE"/*.token
"$GW" gen-secret --out "$STATE/secret"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$STATE/gateway.key" -out "$STATE/gateway.crt" 2>/dev/null
chmod 600 "$STATE/gateway.key"
"$GW" token --secret-file "$STATE/secret" --role agent --tenant demo --name home --ttl 30d >"$STATE/agent.token"
"$GW" token --secret-file "$STATE/secret" --role client --tenant demo --name laptop --ttl 30d >"$STATE/client.token"
chmod 600 "$STATE"/*.token
# The agent's end-to-end key pair; the client pins its public key, so every stream of the
# demo is end-to-end encrypted (the gateway relays it without reading data or target).
rm -f "$STATE/agent.key"
PUB=$("$AG" key --key-file "$STATE/agent.key" | head -1)
FP=$("$AG" key --key-file "$STATE/agent.key" | sed -n 's/^fingerprint //p')

mkdir -p "$STATE/www"
cat >"$STATE/www/index.html" <<'EOH'
<!doctype html>
<html><head><title>nl demo</title></head>
<body><h1>Hello from behind the agent</h1>
<p>This page is served on 127.0.0.1 next to nl-agent and reached through nl-client socks -&gt; nl-gateway -&gt; nl-agent, end-to-end encrypted between client and agent.</p>
</body></html>
EOH

say "starting web server, nl-gateway, nl-agent, nl-client socks"
start web "$PY" -u -m http.server 0 --bind 127.0.0.1 --directory "$STATE/www"
HTTP_PORT=$(wait_line web 'port [0-9]+' | grep -oE '[0-9]+$') || fail_and_stop

start gateway "$GW" --listen 127.0.0.1:0 --tls-cert "$STATE/gateway.crt" --tls-key "$STATE/gateway.key" \
  --secret-file "$STATE/secret"
GW_ADDR=$(wait_line gateway 'listening on [^ ]+ \(tls\)' | awk '{print $3}') || fail_and_stop
GW_PORT=${GW_ADDR##*:}
URL=wss://127.0.0.1:$GW_PORT

start agent "$AG" --gateway "$URL" --token-file "$STATE/agent.token" --ca "$STATE/gateway.crt" \
  --allow cidr=127.0.0.0/8 --key-file "$STATE/agent.key"
wait_line agent 'session up: .*' >/dev/null || fail_and_stop

start client "$CL" --gateway "$URL" --token-file "$STATE/client.token" --ca "$STATE/gateway.crt" \
  --pin "home=$PUB" socks --agent home --listen 127.0.0.1:0
SOCKS_ADDR=$(wait_line client 'socks listening on [^ ]+' | awk '{print $4}') || fail_and_stop
SOCKS_PORT=${SOCKS_ADDR##*:}
wait_line client 'session up: .*' >/dev/null || fail_and_stop

cat >"$STATE/ports" <<EOP
gateway   wss://127.0.0.1:$GW_PORT   (https://127.0.0.1:$GW_PORT/healthz)
socks     127.0.0.1:$SOCKS_PORT   (SOCKS5 and HTTP CONNECT; end-to-end encrypted to agent 'home', key fingerprint $FP)
web page  http://127.0.0.1:$HTTP_PORT/   (behind the agent)
EOP

say "fetching http://127.0.0.1:$HTTP_PORT/ through the SOCKS port 127.0.0.1:$SOCKS_PORT"
# The agent's session is up before the client's, but give the gateway a bounded moment in
# case it registers the agent asynchronously: retry for at most 5 s.
page=""
for _ in $(seq 50); do
  if page=$(curl -sS --fail --max-time 5 --proxy "socks5h://127.0.0.1:$SOCKS_PORT" "http://127.0.0.1:$HTTP_PORT/" 2>"$STATE/curl.err"); then
    break
  fi
  page=""; sleep 0.1
done
if [ -z "$page" ]; then
  echo "demo.sh: the page could not be fetched through nl: $(cat "$STATE/curl.err")" >&2
  for l in gateway agent client; do echo "--- $l.log" >&2; tail -n 15 "$STATE/$l.log" >&2; done
  fail_and_stop
fi
echo "$page" | sed -n 's:.*<h1>\(.*\)</h1>.*:    \1:p'
echo "$page" | grep -q "Hello from behind the agent" || { echo "demo.sh: unexpected page content" >&2; fail_and_stop; }

# paths relative to the repository root when they are inside it (shorter to copy)
rel() { case $1 in "$ROOT"/*) printf '%s' "${1#"$ROOT"/}" ;; *) printf '%s' "$1" ;; esac; }
REL_STATE=$(rel "$STATE")
CL=$(rel "$CL")
cat <<EOM

nl demo is running (state, logs and tokens in $REL_STATE/):
$(sed 's/^/  /' "$STATE/ports")

Try it (from the repository root):
  curl --proxy socks5h://127.0.0.1:$SOCKS_PORT http://127.0.0.1:$HTTP_PORT/
  curl -p -x http://127.0.0.1:$SOCKS_PORT http://127.0.0.1:$HTTP_PORT/     # HTTP CONNECT (-p) on the same port
  curl --cacert $REL_STATE/gateway.crt https://127.0.0.1:$GW_PORT/healthz

  # list the agents your client token can see
  $CL --gateway $URL --token-file $REL_STATE/client.token --ca $REL_STATE/gateway.crt list

  # ssh to a machine reachable from the agent (here: this host's sshd, if it runs)
  # (--pin makes the stream end-to-end encrypted to the agent's key; without it the gateway could read it)
  ssh -o ProxyCommand="$CL --gateway $URL --token-file $REL_STATE/client.token --ca $REL_STATE/gateway.crt --pin home=$PUB connect --agent home %h:%p" user@127.0.0.1

  # one stream on stdin/stdout
  printf 'GET / HTTP/1.0\r\n\r\n' | $CL --gateway $URL --token-file $REL_STATE/client.token --ca $REL_STATE/gateway.crt --pin home=$PUB connect --agent home 127.0.0.1:$HTTP_PORT

Logs: $REL_STATE/{gateway,agent,client,web}.log
Stop: scripts/demo.sh stop    (or: make demo-stop)
EOM
