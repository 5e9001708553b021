#!/usr/bin/env python3
"""Client side of the TUN tests, run INSIDE the client's namespace (`ip netns exec`):
each sub-command prints one JSON line with what it saw, for the test to judge.

  probe.py flows ADDR... PORT       one connection per address at once; each sends a
                                    unique line and checks the ident server's answer
  probe.py upload HOST PORT BYTES   sends BYTES of the pattern, half-closes, reads the hash
  probe.py download HOST PORT BYTES asks the source server for BYTES, hashes them
  probe.py connect HOST PORT        tries one connection: "ok" or the errno name
  probe.py udp HOST PORT COUNT      COUNT datagrams to an echo server, one at a time
  probe.py push HOST PORT BYTES [SOCKSPORT]  benchmark: send BYTES, half-close, wait for EOF
  probe.py pull HOST PORT BYTES [SOCKSPORT]  benchmark: read BYTES, close
  probe.py stall HOST PORT SECS     sends until no byte could be sent for SECS (the far
                                    side reads nothing): how much went before backpressure
(with SOCKSPORT the connection goes through a SOCKS5 proxy on 127.0.0.1)
"""
import errno
import hashlib
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from pattern import pattern_chunks, pattern_sha256  # noqa: E402

TIMEOUT = 60


def conn(host, port):
    return socket.create_connection((host, port), timeout=TIMEOUT)


def flows(addrs, port):
    results = {}
    barrier = threading.Barrier(len(addrs))

    def one(i, a):
        try:
            s = conn(a, port)
            barrier.wait(timeout=TIMEOUT)  # all connections open at the same time
            s.sendall(f"flow-{i}\n".encode())
            got = b""
            while not got.endswith(b"\n"):
                d = s.recv(4096)
                if not d:
                    break
                got += d
            s.close()
            tok, ip, p = got.decode().split()
            results[i] = tok == f"flow-{i}" and socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, ip) == \
                socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a) and int(p) == port
        except Exception as e:  # noqa: BLE001
            results[i] = repr(e)

    ts = [threading.Thread(target=one, args=(i, a)) for i, a in enumerate(addrs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(TIMEOUT + 10)
    bad = {i: r for i, r in results.items() if r is not True}
    return {"ok": len(addrs) - len(bad) if len(results) == len(addrs) else 0, "total": len(addrs),
            "bad": dict(list(bad.items())[:5])}


def upload(host, port, n):
    s = conn(host, port)
    t = time.monotonic()
    for c in pattern_chunks(n):
        s.sendall(c)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    dt = time.monotonic() - t
    return {"sha256": got.decode().strip(), "expected": pattern_sha256(n), "seconds": dt}


def download(host, port, n):
    s = conn(host, port)
    t = time.monotonic()
    s.sendall(f"{n}\n".encode())
    h = hashlib.sha256()
    total = 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        h.update(d)
        total += len(d)
    dt = time.monotonic() - t
    return {"sha256": h.hexdigest(), "expected": pattern_sha256(n), "bytes": total, "seconds": dt}


def try_connect(host, port):
    try:
        s = conn(host, port)
        s.close()
        return {"result": "ok"}
    except OSError as e:
        return {"result": errno.errorcode.get(e.errno, str(e.errno)) if e.errno else repr(e)}


def udp(host, port, count):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    echoed = 0
    for i in range(count):
        msg = f"datagram {i} ".encode() * (1 + i % 40)
        s.sendto(msg, (host, port))
        d, src = s.recvfrom(65535)
        echoed += d == msg and src[1] == port
    return {"echoed": echoed, "count": count}


def bench_conn(host, port, socks_port):
    if not socks_port:
        return conn(host, port)
    s = conn("127.0.0.1", socks_port)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    fam = 4 if ":" in host else 1
    s.sendall(b"\x05\x01\x00" + bytes([fam]) + socket.inet_pton(socket.AF_INET6 if fam == 4 else socket.AF_INET, host)
              + port.to_bytes(2, "big"))
    rep = s.recv(4)
    assert rep[1] == 0, f"SOCKS reply {rep[1]}"
    s.recv(16 if rep[3] == 4 else 4)
    s.recv(2)
    return s


def push(host, port, n, socks_port=0):
    s = bench_conn(host, port, socks_port)
    block = memoryview(bytes(1 << 20))
    t = time.monotonic()
    left = n
    while left:
        k = min(left, len(block))
        s.sendall(block[:k])
        left -= k
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    dt = time.monotonic() - t
    return {"bytes": n, "seconds": dt, "mbps": n / dt / 1e6}


def pull(host, port, n, socks_port=0):
    s = bench_conn(host, port, socks_port)
    buf = bytearray(1 << 20)
    t = time.monotonic()
    got = 0
    while got < n:
        k = s.recv_into(buf, min(len(buf), n - got))
        if not k:
            break
        got += k
    dt = time.monotonic() - t
    s.close()
    return {"bytes": got, "seconds": dt, "mbps": got / dt / 1e6}


def stall(host, port, secs):
    import select
    s = conn(host, port)
    s.setblocking(False)
    block = bytes(1 << 16)
    sent = 0
    deadline = time.monotonic() + 60
    stalled = False
    while time.monotonic() < deadline:
        _, w, _ = select.select([], [s], [], secs)
        if not w:
            stalled = True
            break
        try:
            sent += s.send(block)
        except BlockingIOError:
            pass
    s.close()
    return {"bytes": sent, "stalled": stalled}


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "flows":
        r = flows(args[:-1], int(args[-1]))
    elif cmd == "upload":
        r = upload(args[0], int(args[1]), int(args[2]))
    elif cmd == "download":
        r = download(args[0], int(args[1]), int(args[2]))
    elif cmd == "connect":
        r = try_connect(args[0], int(args[1]))
    elif cmd in ("push", "pull"):
        f = push if cmd == "push" else pull
        r = f(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 0)
    elif cmd == "stall":
        r = stall(args[0], int(args[1]), float(args[2]))
    elif cmd == "udp":
        r = udp(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
