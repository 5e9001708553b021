# shellcheck shell=bash disable=SC2034
# Yardstick row, not nl: the cheapest relay with nl-forward's shape (tests/bench/floor/).
#   bench client -> in =TLS=> mid =TLS=> out -> target
# Three processes, one persistent TLS 1.3 link per side (AES-128-GCM, OpenSSL), streams
# multiplexed inside, first bytes with the OPEN; but each process is a bare epoll loop with
# no flow control, no authentication and no framework. What nl-forward spends above this
# row is the cost of nl's own code, not of its three-process shape.
# The nl row's file gives NL_BIN, NL_STATE and its log helpers (nl_log_lines, nl_wait_log).
# shellcheck source=80-nl-socks.sh
source "$(dirname "${BASH_SOURCE[0]}")/80-nl-socks.sh"
ROW_NAME=floor-3tls
ROW_KIND=fwd
ROW_DESC="yardstick: bare epoll relay in 3 processes, TLS links, streams multiplexed (tests/bench/floor); no flow control, not a product"
FLOOR_BIN=nl-floor-relay  # 86-floor-asio.sh sources this file and sets nl-floor-asio

row_start() {  # $1 $2 = target
  local relay="$NL_BIN/tests/bench/floor/$FLOOR_BIN" off
  [ -x "$relay" ] || { log "ERROR: $relay missing (cmake --build build)"; return 1; }
  bg_start mid "$relay" mid "$P_HOP1" "$NL_STATE/gateway.crt" "$NL_STATE/gateway.key"
  wait_port "$P_HOP1" || return 1
  off=$(nl_log_lines out)
  bg_start out "$relay" out "$P_HOP1" "$2"
  nl_wait_log out "$off" '^ready$' 10 || return 1
  bg_start in "$relay" in "$P_ROW" "$P_HOP1"
  wait_port "$P_ROW"
}
