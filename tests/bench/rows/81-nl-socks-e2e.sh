# shellcheck shell=bash disable=SC2034
# nl row with end-to-end encryption: as nl-socks (80-nl-socks.sh), but the client pins the
# agent's key, so every stream is sealed client<->agent inside the two TLS hops.
# shellcheck source=80-nl-socks.sh
source "$(dirname "${BASH_SOURCE[0]}")/80-nl-socks.sh"
ROW_NAME=nl-socks-e2e
ROW_DESC="nl-socks with end-to-end encryption (XChaCha20-Poly1305 records client<->agent inside TLS)"
NL_E2E=1
