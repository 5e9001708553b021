# shellcheck shell=bash disable=SC2034
# nl row with end-to-end encryption over QUIC: nl-socks-e2e (81) with agent and client on
# QUIC (82): every stream sealed client<->agent inside the two QUIC hops.
# shellcheck source=80-nl-socks.sh
source "$(dirname "${BASH_SOURCE[0]}")/80-nl-socks.sh"
ROW_NAME=nl-socks-e2e-quic
ROW_DESC="nl-socks-e2e over QUIC (XChaCha20-Poly1305 records client<->agent inside the QUIC hops)"
NL_E2E=1
NL_TRANSPORT=quic
