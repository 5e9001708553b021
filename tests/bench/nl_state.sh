# shellcheck shell=bash
# nl_make_state DIR GATEWAY_BIN AGENT_BIN : the credentials that the nl bench rows
# (tests/bench/run.sh) and the lab (tests/bench/lab/ab.sh) start nl with, in DIR: a gateway
# secret and self-signed certificate for 127.0.0.1 (made once, kept if present), tokens for
# agent `bench` and client `bench-client` of tenant `bench`, and the agent's key (agent.pub
# holds its public half, for the e2e rows' --pin).
nl_make_state() {
  local dir=$1 gw=$2 agent=$3
  mkdir -p "$dir"
  [ -f "$dir/secret" ] || "$gw" gen-secret --out "$dir/secret"
  if [ ! -f "$dir/gateway.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
      -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$dir/gateway.key" -out "$dir/gateway.crt" 2>/dev/null
    chmod 600 "$dir/gateway.key"
  fi
  "$gw" token --secret-file "$dir/secret" --role agent --tenant bench --name bench --ttl 1d >"$dir/agent.token"
  "$gw" token --secret-file "$dir/secret" --role client --tenant bench --name bench-client --ttl 1d >"$dir/client.token"
  chmod 600 "$dir"/*.token
  "$agent" key --key-file "$dir/agent.key" >"$dir/agent.pub"
}
