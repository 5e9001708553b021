# shellcheck shell=bash disable=SC2034
# nl row over QUIC: as nl-socks (80-nl-socks.sh, WebSocket over TLS), but agent and client
# reach the gateway over QUIC (ngtcp2 + GnuTLS), each nl stream a QUIC stream.
# shellcheck source=80-nl-socks.sh
source "$(dirname "${BASH_SOURCE[0]}")/80-nl-socks.sh"
ROW_NAME=nl-socks-quic
ROW_DESC="nl-socks over QUIC (one QUIC connection per peer, one QUIC stream per nl stream)"
NL_TRANSPORT=quic
