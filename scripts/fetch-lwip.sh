#!/usr/bin/env bash
# fetch-lwip.sh DEST - puts the pristine lwIP 2.1.3 source at DEST/lwip-2.1.3 (CMake calls
# this at configure time). The source comes from Debian's source package: only its
# upstream tarball (lwip_2.1.3+dfsg1.orig.tar.xz) is unpacked, never Debian's patches, and
# it is checked against the SHA-256 below. Nothing of lwIP is committed to nl. The tarball
# is cached in ${XDG_CACHE_HOME:-~/.cache}/nl so clean builds do not download it again.
# Needs a deb-src entry for bookworm (scripts/deps.sh adds one).
set -euo pipefail

dest=${1:?usage: fetch-lwip.sh DEST}
tarball=lwip_2.1.3+dfsg1.orig.tar.xz
sha256=0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24
cache=${XDG_CACHE_HOME:-$HOME/.cache}/nl
mkdir -p "$cache" "$dest"

if [ ! -f "$cache/$tarball" ] || ! echo "$sha256  $cache/$tarball" | sha256sum -c --quiet - 2>/dev/null; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && apt-get source --download-only -qq lwip=2.1.3+dfsg1-2 >/dev/null 2>&1 ||
        apt-get source --download-only -qq lwip >/dev/null 2>&1) || [ ! -f "$work/$tarball" ]; then
    echo "fetch-lwip.sh: cannot download Debian's lwip 2.1.3 source package; run scripts/deps.sh" \
         "(it adds a deb-src entry) or pass -DNL_LWIP_DIR=/path/to/lwip-2.1.3" >&2
    exit 1
  fi
  mv "$work/$tarball" "$cache/$tarball"
fi
if ! echo "$sha256  $cache/$tarball" | sha256sum -c --quiet -; then
  echo "fetch-lwip.sh: $cache/$tarball does not have the expected SHA-256" >&2
  exit 1
fi
rm -rf "$dest/lwip-2.1.3"
tar -C "$dest" -xf "$cache/$tarball"
test -f "$dest/lwip-2.1.3/src/core/tcp.c"
