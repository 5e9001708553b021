#!/usr/bin/env bash
# build-pgo.sh - a release build of nl-gateway, nl-agent and nl-client, optimised by GCC
# with the profile of a short workload on loopback (profile-guided optimisation), into
# ./build-pgo. Three steps: an instrumented build, tests/bench/pgo_train.py (new streams,
# round trips and bulk through the real programs, a few seconds), and the build that uses
# the profile. It takes about twice as long as scripts/build.sh.
#
# Why: nl's hot path is larger than the instruction cache, so much of its time per message
# most likely goes to fetching code (docs/performance.md, "Profile-guided optimisation").
# With a profile, GCC lays out the hot paths together and inlines by measured use.
#
#   scripts/build-pgo.sh                      then use build-pgo/{gateway,agent,client}/nl-*
#   BUILD_DIR=out scripts/build-pgo.sh
#   BUILD_DIR=build-pgo tests/bench/run.sh    benchmark the result
#
# Warnings are not errors here: after profile-guided inlining GCC 12 reports false
# positives (-Wstringop-overflow in transport/datagram.cpp). scripts/build.sh, which CI
# runs, keeps -Werror on the same code.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build-pgo}
JOBS=${JOBS:-$(nproc)}
targets=(nl-gateway nl-agent nl-client)
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
configure() {  # configure FLAGS : the same build directory, with these compiler flags
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNL_WERROR=OFF "${launcher[@]}" \
    -DCMAKE_CXX_FLAGS="$1" -DCMAKE_EXE_LINKER_FLAGS="${1%% *}" >/dev/null
}

scripts/deps.sh
if [ -d "$BUILD_DIR" ]; then
  find "$BUILD_DIR" -name '*.gcda' -delete
fi

echo "build-pgo: 1/3 instrumented build in $BUILD_DIR"
configure "-fprofile-generate -fprofile-update=single"
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]}"

echo "build-pgo: 2/3 training run on loopback"
python3 tests/bench/pgo_train.py "$BUILD_DIR"

echo "build-pgo: 3/3 optimised build"
configure "-fprofile-use -fprofile-partial-training -Wno-missing-profile"
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]}"
echo "build-pgo: done: $BUILD_DIR/gateway/nl-gateway, $BUILD_DIR/agent/nl-agent, $BUILD_DIR/client/nl-client"
