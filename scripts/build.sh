#!/usr/bin/env bash
# build.sh - configure (once) and build nl into ./build with Ninja.
#
#   scripts/build.sh                 RelWithDebInfo, warnings are errors
#   BUILD_DIR=out scripts/build.sh   another build directory
#   BUILD_TYPE=Debug scripts/build.sh
#   scripts/build.sh -DNL_SANITIZE=ON   extra arguments go to the cmake configure step
#
# ccache is used automatically when installed (CMakeLists.txt picks it up).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# Configure when there is no cache yet, when the cache was made by another generator or
# without -DNL_WERROR=ON, or when extra -D options were given. Otherwise CMake re-runs
# itself when a CMakeLists.txt changes.
cache=$BUILD_DIR/CMakeCache.txt
if [ ! -f "$cache" ] || ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache" \
   || ! grep -q '^NL_WERROR:BOOL=ON$' "$cache" || [ $# -gt 0 ]; then
  if [ -f "$cache" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache"; then
    echo "build.sh: $BUILD_DIR was configured with another generator; reconfiguring from scratch" >&2
    rm -rf "$BUILD_DIR/CMakeCache.txt" "$BUILD_DIR/CMakeFiles"
  fi
  cmake -S . -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DNL_WERROR=ON "${launcher[@]}" "$@"
fi
cmake --build "$BUILD_DIR" -j"$JOBS"
