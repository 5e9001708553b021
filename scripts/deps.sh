#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages nl needs to build and test, and only those that
# are missing. Idempotent: when everything is present it prints nothing and touches nothing
# (no `apt-get update`). Runs as root, or through sudo otherwise.
#
#   scripts/deps.sh            build + test packages
#   scripts/deps.sh --bench    also the baseline tools of the benchmark harness
#   scripts/deps.sh --print    only list what is missing (exit 1 if something is)
set -euo pipefail

BUILD_PKGS=(
  cmake ninja-build g++ ccache pkg-config
  libboost-dev libssl-dev libsodium-dev libyaml-cpp-dev libcli11-dev libfmt-dev
  libspdlog-dev nlohmann-json3-dev catch2
  libhowardhinnant-date-dev   # named time zones for ACL time windows (date/tz.h)
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev  # QUIC transport (transport/quic)
)
TEST_PKGS=(
  python3 python3-pytest curl openssl netcat-openbsd openssh-client openssh-server socat
  iproute2 procps
  python3-nacl                # an independent implementation for the e2e test vectors
  dnsmasq-base dnsutils       # a real DNS server and dig for the UDP tests
  ngtcp2-client ngtcp2-server # an independent QUIC endpoint for the interop tests
  nginx                       # the reverse proxy / CDN stand-in in front of the gateway
  clang libclang-rt-14-dev   # libFuzzer targets (scripts/fuzz.sh)
)
BENCH_PKGS=(iperf3 stunnel4 shadowsocks-libev microsocks openssh-client openssh-server socat curl python3 iproute2)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
print_only=0
for a in "$@"; do
  case $a in
    --bench) want+=("${BENCH_PKGS[@]}") ;;
    --bench-only) want=("${BENCH_PKGS[@]}") ;;
    --print) print_only=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "deps.sh: unknown argument '$a'; use --bench, --bench-only or --print" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "deps.sh: this script supports Debian/Ubuntu (dpkg + apt) only; install the equivalents of:" >&2
  echo "  ${want[*]}" >&2
  exit 1
fi

installed() {  # the package is fully installed ("install ok installed")
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
declare -A seen=()
for p in "${want[@]}"; do
  [ -n "${seen[$p]:-}" ] && continue
  seen[$p]=1
  installed "$p" || missing+=("$p")
done

# lwIP's pristine source comes from Debian's source package (scripts/fetch-lwip.sh), which
# needs a deb-src entry; add one for bookworm when apt knows no source for lwip.
need_src=0
if ! apt-cache showsrc lwip 2>/dev/null | grep -q '^Version: 2\.1\.3'; then
  need_src=1
fi

[ ${#missing[@]} -eq 0 ] && [ $need_src = 0 ] && exit 0
if [ $print_only = 1 ]; then
  [ $need_src = 1 ] && echo "(deb-src entry for lwip)"
  printf '%s\n' "${missing[@]}"
  exit 1
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
if [ $need_src = 1 ]; then
  echo "deps.sh: adding a deb-src entry (Debian bookworm) for lwIP's source package" >&2
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
    "${SUDO[@]}" tee /etc/apt/sources.list.d/nl-deb-src.sources >/dev/null
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# The tests run their own nginx on loopback. Installing the package must not start (or
# enable) a system nginx on port 80: a temporary policy-rc.d (exit 101) keeps the package
# scripts from starting services, unless the machine has its own policy already, and the
# unit is disabled afterwards.
new_nginx=0
added_policy=0
if [[ " ${missing[*]-} " == *" nginx "* ]]; then
  new_nginx=1
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
    trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
  fi
fi
if [ ${#missing[@]} -ne 0 ]; then
  echo "deps.sh: installing ${missing[*]}" >&2
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $added_policy = 1 ]; then
  "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi
if [ $new_nginx = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  "${SUDO[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
  echo "deps.sh: nginx installed for the tests; its system service is left stopped and disabled" >&2
fi

still=()
for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
if [ ${#still[@]} -ne 0 ]; then
  echo "deps.sh: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "deps.sh: done" >&2
