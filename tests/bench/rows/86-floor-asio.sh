# shellcheck shell=bash disable=SC2034
# Yardstick row, not nl and not a default row: floor-3tls's relay written the way nl is,
# on Asio 1.18 with C++20 coroutines, but with each message handled inline where it is read
# (tests/bench/floor/floor_asio.cpp). Run it by name: tests/bench/run.sh floor-asio
# shellcheck source=85-floor-3tls.sh
source "$(dirname "${BASH_SOURCE[0]}")/85-floor-3tls.sh"
ROW_NAME=floor-asio
ROW_DESC="yardstick: floor-3tls on Asio coroutines, messages handled inline (tests/bench/floor/floor_asio.cpp); no flow control, not a product"
FLOOR_BIN=nl-floor-asio
