#!/usr/bin/python3
"""TUN benchmark (root): the lab of tests/netns (two namespaces, gateway + agent + target
servers on one side, the application on the other) and these rows, one run:

  direct          app -> target over the veth (no nl)
  nl-socks        app -SOCKS5-> nl-client socks => gateway => agent -> target
                  (=> : TLS WebSocket, --transport ws, for all relay rows)
  nl-tun-1500     app -> TUN (MTU 1500) -> nl-client tun => gateway => agent -> target
  nl-tun-9000     the same at MTU 9000
  netstack-1500   app -> TUN -> nl-netstack-bench (flows end inside it: netstack alone)
  netstack-9000   the same at MTU 9000

Each cell is the best of ROUNDS transfers of BYTES (push = app sends, pull = app receives),
in MB/s. Prints a markdown table (and writes it to build/tun-bench.md).

    sudo tests/bench/tun_bench.py          (Debian's python3: it imports tests/netns/conftest.py, which needs pytest) [--bytes 1073741824] [--rounds 3]
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "netns"))
from conftest import BIN_DIR, CLIENT, Lab  # noqa: E402

BENCH = BIN_DIR / "tests" / "bench" / "netstack" / "nl-netstack-bench"


def best(lab, mode, host, port, n, rounds, socks=0):
    vals = []
    for _ in range(rounds):
        args = [mode, host, str(port), str(n)] + ([str(socks)] if socks else [])
        r = lab.probe(*args, timeout=600)
        assert r["bytes"] == n, r
        vals.append(r["mbps"])
    return max(vals)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("tun_bench.py needs root (network namespaces, TUN)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="nl-tun-bench-") as tmp:
        lab = Lab(Path(tmp))
        try:
            # WebSocket between the peers and the gateway: the faster transport today
            # (docs/quic.md); the TUN is what is measured here.
            lab.build(agent_extra=("--transport", "ws"))
            n, k = a.bytes, a.rounds

            def measure(name, host, push_port, pull_port, socks=0):
                up = best(lab, "push", host, push_port, n, k, socks)
                down = best(lab, "pull", host, pull_port, n, k, socks)
                rows.append((name, up, down))
                print(f"{name:16} push {up:8.0f} MB/s   pull {down:8.0f} MB/s", flush=True)

            measure("direct", "10.200.0.1", 5009, 5019)
            socks = lab.start_in(lab.c, [CLIENT, "--gateway", lab.gateway_url, "--token-file", lab.client_token,
                                         "--ca", lab.cert, "--transport", "ws", "socks", "--agent", "home",
                                         "--listen", "127.0.0.1:0"],
                                 "client-socks")
            port = int(socks.wait_line(r"socks listening on 127\.0\.0\.1:(\d+)").group(1))
            socks.wait_line(r"session up: ")
            measure("nl-socks", "10.77.0.1", 5009, 5019, socks=port)
            socks.stop()
            for mtu in (1500, 9000):
                tun = lab.start_tun("--mtu", str(mtu), "--transport", "ws", name=f"client-tun-{mtu}")
                measure(f"nl-tun-{mtu}", "10.77.0.1", 5009, 5019)
                tun.stop()
            for mtu in (1500, 9000):
                b = lab.start_in(lab.c, [BENCH, "--route", "10.99.0.0/24", "--mtu", str(mtu)], f"netstack-{mtu}")
                b.wait_line(r"ready", timeout=15)
                measure(f"netstack-{mtu}", "10.99.0.1", 9, 19)
                b.stop()
        finally:
            lab.close()
    out = ["| row | push MB/s | pull MB/s |", "|---|---:|---:|"]
    out += [f"| {r} | {u:.0f} | {d:.0f} |" for r, u, d in rows]
    text = "\n".join(out) + f"\n\n(best of {a.rounds} x {a.bytes >> 20} MiB per cell; {os.cpu_count()} CPUs)\n"
    print(text)
    (BIN_DIR / "tun-bench.md").write_text(text)


if __name__ == "__main__":
    main()
