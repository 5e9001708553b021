# shellcheck shell=bash disable=SC2034
# Yardstick row, not nl and not a default row: floor-3tls's relay on Asio 1.18 with
# completion callbacks (tests/bench/floor/floor_asio.cpp), i.e. on nl's event loop without
# coroutines, Beast or per-stream events. Run it by name: tests/bench/run.sh floor-asio
# shellcheck source=85-floor-3tls.sh
source "$(dirname "${BASH_SOURCE[0]}")/85-floor-3tls.sh"
ROW_NAME=floor-asio
ROW_DESC="yardstick: floor-3tls on Asio callbacks (tests/bench/floor/floor_asio.cpp); no flow control, not a product"
FLOOR_BIN=nl-floor-asio
