"""200 concurrent streams through one SOCKS port (one gateway session), each checked by sha256."""

import asyncio
import hashlib
import os
import random
import resource
import struct

from nltest import wait_until

N_STREAMS = 200
DEADLINE = 90.0


class Barrier:
    """All streams first complete their SOCKS handshake, then all send at once, so that
    N_STREAMS streams are really open at the same time."""

    def __init__(self, n: int):
        self.n, self.arrived, self.event = n, 0, asyncio.Event()

    def arrive(self):
        self.arrived += 1
        if self.arrived >= self.n:
            self.event.set()


async def socks_stream(port: int, target_port: int, payload: bytes, sem_open: asyncio.Semaphore,
                       barrier: Barrier) -> str:
    try:
        async with sem_open:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x05\x01\x00")
            await writer.drain()
            ver, method = await reader.readexactly(2)
            if (ver, method) != (5, 0):
                return f"method reply {ver},{method}"
            writer.write(b"\x05\x01\x00\x01" + bytes([127, 0, 0, 1]) + struct.pack(">H", target_port))
            await writer.drain()
            head = await reader.readexactly(4)
            if head[1] != 0:
                return f"SOCKS reply 0x{head[1]:02x}"
            await reader.readexactly({1: 6, 4: 18}.get(head[3], 6))
    finally:
        barrier.arrive()
    await barrier.event.wait()

    async def send():
        view = memoryview(payload)
        for i in range(0, len(payload), 16384):
            writer.write(view[i:i + 16384])
            await writer.drain()
        writer.write_eof()

    async def receive():
        h = hashlib.sha256()
        n = 0
        while True:
            b = await reader.read(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        return h.hexdigest(), n

    try:
        _, (digest, n) = await asyncio.gather(send(), receive())
    finally:
        writer.close()
    if n != len(payload):
        return f"echoed {n} of {len(payload)} bytes"
    if digest != hashlib.sha256(payload).hexdigest():
        return "sha256 mismatch"
    return ""


async def run_all(port: int, target_port: int, payloads: list[bytes]) -> list[str]:
    # the semaphore only paces the handshakes (64 in flight); the barrier then holds all open
    sem = asyncio.Semaphore(64)
    barrier = Barrier(len(payloads))
    tasks = [asyncio.create_task(socks_stream(port, target_port, p, sem, barrier)) for p in payloads]
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), DEADLINE)
    return [f"stream {i}: {r!r}" for i, r in enumerate(done) if r]


def fd_limits(pid: int) -> tuple[str, str]:
    """(soft, hard) open-file limits of a process, as /proc prints them."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return soft, hard
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


def test_200_concurrent_streams(nl):
    gw = nl.start_gateway()
    nl.start_agent(gw, "home")
    socks = nl.start_socks(gw)
    run_200(nl, gw, socks)


def test_a_low_soft_open_file_limit_is_raised(nl):
    """Most systems start processes with a soft limit of 1 024 open files and a higher hard
    limit. Started with a soft limit of 128, the agent (a socket per target) and the client
    (a socket per local connection) raise it to the hard limit themselves, so 200
    concurrent streams still work."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 128
    if hard != resource.RLIM_INFINITY and hard < 4 * low:
        import pytest
        pytest.skip(f"hard open-file limit {hard} leaves no room to test raising it")
    gw = nl.start_gateway()
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # inherited by what starts now
    try:
        agent = nl.start_agent(gw, "home")
        socks = nl.start_socks(gw)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    for p in (agent, socks.proc):
        now_soft, now_hard = fd_limits(p.pid)
        assert now_soft == now_hard or (now_hard == "unlimited" and int(now_soft) > low), \
            f"{p.name}: soft open-file limit {now_soft}, hard {now_hard}"
    run_200(nl, gw, socks)


def run_200(nl, gw, socks):
    echo = nl.echo_server()
    rnd = random.Random(7)
    payloads = [os.urandom(rnd.randint(16 * 1024, 256 * 1024)) for _ in range(N_STREAMS)]

    errors = asyncio.run(run_all(socks.port, echo.port, payloads))
    assert not errors, f"{len(errors)} of {N_STREAMS} streams failed, e.g.: {errors[:5]}"
    assert echo.accepted >= N_STREAMS
    # every stream is gone from the gateway's books afterwards
    wait_until(lambda: gw.total_streams() == 0, 10, "gateway streams back to 0")
