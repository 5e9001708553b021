# shellcheck shell=bash disable=SC2034
# nl row for the shared proxy benchmark harness (copied into build/bench-harness/rows/ by
# tests/bench/run.sh, which also creates the secret, certificate and tokens in $NL_STATE).
# Topology, same as the ssh-2leg / stunnel-2tls reference rows:
#   bench client -SOCKS5-> nl-client =TLS/WS=> nl-gateway =TLS/WS=> nl-agent -> target
# Sourced by the harness' run.sh: bg_start, wait_port, log, $P_* and $RUN come from lib.sh.
ROW_NAME=nl-socks
ROW_KIND=socks
ROW_DESC="nl-client socks -> nl-gateway (TLS/WebSocket, 1 session per peer) -> nl-agent -> target"
NL_BIN=${NL_BIN:?tests/bench/run.sh sets NL_BIN (the build directory)}
NL_STATE=${NL_STATE:-$RUN/nl}
NL_LOG_LEVEL=${NL_LOG_LEVEL:-warn}
NL_E2E=0  # 81-nl-socks-e2e.sh sources this file and sets 1: the client pins the agent's key
NL_TRANSPORT=ws  # 82-nl-socks-quic.sh sources this file and sets quic
NL_MODE=socks    # 84-nl-forward.sh sources this file and sets forward
NL_SOCKS_ARGS=() # 87-nl-socks-early.sh sources this file and sets (--early-reply)

# nl_log_lines LABEL : current number of lines in this row's log for LABEL (logs are appended
# to across rounds, so readiness is looked for only after this offset)
nl_log_lines() { local f="$RUN/$ROW_NAME.$1.log"; [ -f "$f" ] && wc -l <"$f" || echo 0; }

# nl_wait_log LABEL OFFSET REGEX [timeout_s] : poll the log (no blind sleep) for REGEX
nl_wait_log() {
  local f="$RUN/$ROW_NAME.$1.log" off=$2 re=$3 t=${4:-15} i=0
  while ! tail -n +"$((off + 1))" "$f" 2>/dev/null | grep -qE -- "$re"; do
    sleep 0.05; i=$((i + 1))
    if [ $i -ge $((t * 20)) ]; then
      log "ERROR: $1 did not log /$re/ within ${t}s; tail of $f:"; tail -n 20 "$f" >&2
      return 1
    fi
  done
}

row_start() {  # $1 $2 = target (socks rows ignore it: the harness asks through SOCKS5; forward uses it)
  local url="wss://127.0.0.1:$P_HOP1" off
  off=$(nl_log_lines nl-gateway)
  bg_start nl-gateway "$NL_BIN/gateway/nl-gateway" --listen "127.0.0.1:$P_HOP1" \
    --tls-cert "$NL_STATE/gateway.crt" --tls-key "$NL_STATE/gateway.key" \
    --secret-file "$NL_STATE/secret" --log-level "$NL_LOG_LEVEL"
  wait_port "$P_HOP1" || return 1
  # (at log level warn the readiness line may be absent; the port is what counts)

  off=$(nl_log_lines nl-agent)
  bg_start nl-agent "$NL_BIN/agent/nl-agent" --gateway "$url" --token-file "$NL_STATE/agent.token" \
    --ca "$NL_STATE/gateway.crt" --allow cidr=127.0.0.0/8 --log-level info --key-file "$NL_STATE/agent.key" \
    --transport "$NL_TRANSPORT"
  nl_wait_log nl-agent "$off" 'session up: ' || return 1

  off=$(nl_log_lines nl-client)
  local mode=(socks --agent bench --listen "127.0.0.1:$P_ROW" "${NL_SOCKS_ARGS[@]}")
  [ "$NL_MODE" = forward ] && mode=(forward --agent bench -L "127.0.0.1:$P_ROW:$1:$2")
  local pin=()
  [ "$NL_E2E" = 1 ] && pin=(--pin "bench=$(head -1 "$NL_STATE/agent.pub")")
  bg_start nl-client "$NL_BIN/client/nl-client" --gateway "$url" --token-file "$NL_STATE/client.token" \
    --ca "$NL_STATE/gateway.crt" --log-level info --transport "$NL_TRANSPORT" "${pin[@]}" \
    "${mode[@]}"
  nl_wait_log nl-client "$off" 'session up: ' || return 1
  wait_port "$P_ROW"
}
