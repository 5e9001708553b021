# shellcheck shell=bash disable=SC2034
# nl port-forward row: `nl-client forward -L` instead of SOCKS5, the same path otherwise
# (TLS/WebSocket to the gateway and on to the agent): the like-for-like row next to ssh-L.
# A forward's first bytes travel with the stream's OPEN (early data, WebSocket nl.2).
# shellcheck source=80-nl-socks.sh
source "$(dirname "${BASH_SOURCE[0]}")/80-nl-socks.sh"
ROW_NAME=nl-forward
ROW_KIND=fwd
ROW_DESC="nl-client forward -L -> nl-gateway (TLS/WebSocket) -> nl-agent -> target; first bytes sent with the OPEN"
NL_MODE=forward
