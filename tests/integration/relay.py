"""A relay on one port number for TCP and UDP in front of a gateway, for the QUIC tests:
TCP is forwarded as is (the WebSocket path); UDP (QUIC) can be blocked, made lossy and
slow, or moved to a new source port towards the gateway (NAT rebinding). Loopback only.
"""

from __future__ import annotations

import heapq
import random
import socket
import threading
import time


class Relay:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.udp_enabled = False
        self.loss = 0.0          # probability of dropping a datagram (each direction)
        self.delay = 0.0         # seconds added to every datagram
        self.rebinds = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._rng = random.Random(7)
        # the same port number for TCP and UDP
        for _ in range(20):
            self.tcp = socket.socket()
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.tcp.bind((host, 0))
            self.port = self.tcp.getsockname()[1]
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.udp.bind((host, self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        self.tcp.listen(64)
        self.tcp.settimeout(0.2)
        self.udp.settimeout(0.05)
        self.up = self._new_upstream()
        self.client = None
        self._queue: list = []  # (due, seq, sock, data, addr)
        self._seq = 0
        self._threads = [threading.Thread(target=f, daemon=True)
                         for f in (self._tcp_accept, self._udp_down, self._udp_up, self._pump)]
        for t in self._threads:
            t.start()

    def _new_upstream(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.05)
        return s

    def rebind(self):
        """From now on datagrams reach the gateway from a new source port."""
        with self._lock:
            old, self.up = self.up, self._new_upstream()
            self.rebinds += 1
        old.close()

    # -- TCP ------------------------------------------------------------------------------
    def _tcp_accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except OSError:
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._copy, args=(a, b), daemon=True).start()

    @staticmethod
    def _copy(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # -- UDP ------------------------------------------------------------------------------
    def _send_later(self, sock, data, addr):
        if not self.udp_enabled or self._rng.random() < self.loss:
            return
        with self._lock:
            self._seq += 1
            heapq.heappush(self._queue, (time.monotonic() + self.delay, self._seq, sock, data, addr))

    def _pump(self):
        while not self._stop.is_set():
            now = time.monotonic()
            batch = []
            with self._lock:
                while self._queue and self._queue[0][0] <= now:
                    batch.append(heapq.heappop(self._queue))
            for _, _, sock, data, addr in batch:
                try:
                    (self.up if sock == "up" else self.udp).sendto(data, addr)
                except OSError:
                    pass
            if not batch:
                time.sleep(0.0005)  # pacing of this relay's own queue, not synchronisation

    def _udp_down(self):  # client -> gateway
        while not self._stop.is_set():
            try:
                d, a = self.udp.recvfrom(65535)
            except OSError:
                continue
            self.client = a
            self._send_later("up", d, self.target)

    def _udp_up(self):  # gateway -> client
        while not self._stop.is_set():
            up = self.up
            try:
                d, _ = up.recvfrom(65535)
            except OSError:
                continue
            if self.client:
                self._send_later("down", d, self.client)

    def close(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for s in (self.tcp, self.udp, self.up):
            try:
                s.close()
            except OSError:
                pass
