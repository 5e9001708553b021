# shellcheck shell=bash disable=SC2034
# nl row: as nl-socks (80-nl-socks.sh), with `nl-client socks --early-reply`: the SOCKS5
# reply goes out before the agent has connected, so the request's first bytes travel with
# the stream's OPEN. The like-for-like baseline is ss-local (shadowsocks answers the same
# way); ssh -D waits for the far end, as plain nl-socks does. Not among the default rows.
# shellcheck source=80-nl-socks.sh
source "$(dirname "${BASH_SOURCE[0]}")/80-nl-socks.sh"
ROW_NAME=nl-socks-early
ROW_DESC="nl-socks with --early-reply: SOCKS5 success sent at once, first bytes ride with the OPEN"
NL_SOCKS_ARGS=(--early-reply)
