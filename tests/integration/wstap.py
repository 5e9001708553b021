"""A wiretap (and optional tamperer) between an nl agent and a plain-WebSocket gateway.

It stands where a curious or malicious gateway operator stands: it sees every byte the
gateway relays, unmasked and reassembled into WebSocket messages, and it can rewrite the nl
frames inside them. It is written from RFC 6455 and docs/protocol.md, independently of nl's
code, so what it records is what any relay could read.

    tap = WsTap(gateway_port)          # listen on tap.port; point the agent at ws://127.0.0.1:tap.port
    tap.tamper = ("flip", 3)           # optional: flip a byte in the 3rd DATA frame towards the agent
    ...
    assert b"marker" not in tap.seen()

Tampering acts on DATA frames going gateway -> agent (the client's upload); kinds:
flip (one byte of the payload), drop, duplicate, reorder (swap with the next DATA frame).
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Optional

FRAME_HEADER = 12
DATA = 0x04


class WsTap:
    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.recorded = bytearray()          # every message payload, both directions
        self.tamper: Optional[tuple] = None  # (kind, nth DATA frame towards the agent, 1-based)
        self.tampered = 0                    # how many times tampering happened
        self.data_frames_down = 0
        self._held: Optional[bytes] = None   # for reorder: the frame waiting for its successor
        self.socks: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def seen(self) -> bytes:
        with self.lock:
            return bytes(self.recorded)

    def close(self):
        self.closed = True
        for s in [self.lsock] + self.socks:
            try:
                s.close()
            except OSError:
                pass

    # -- plumbing -----------------------------------------------------------------------------
    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            self.socks += [c, u]
            # agent (client side, masked frames) -> gateway; gateway (unmasked) -> agent
            threading.Thread(target=self._pump, args=(c, u, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, True), daemon=True).start()

    @staticmethod
    def _recv_exact(s: socket.socket, buf: bytearray, n: int) -> bool:
        while len(buf) < n:
            chunk = s.recv(max(65536, n - len(buf)))
            if not chunk:
                return False
            buf += chunk
        return True

    def _pump(self, src: socket.socket, dst: socket.socket, to_agent: bool):
        buf = bytearray()
        try:
            # The HTTP upgrade head passes through untouched.
            while b"\r\n\r\n" not in buf:
                chunk = src.recv(65536)
                if not chunk:
                    raise OSError("eof")
                buf += chunk
            end = buf.index(b"\r\n\r\n") + 4
            dst.sendall(bytes(buf[:end]))
            del buf[:end]
            message = bytearray()
            while True:
                if not self._recv_exact(src, buf, 2):
                    raise OSError("eof")
                b0, b1 = buf[0], buf[1]
                fin, opcode, masked, ln = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
                pos = 2
                if ln == 126:
                    if not self._recv_exact(src, buf, 4):
                        raise OSError("eof")
                    ln = struct.unpack(">H", bytes(buf[2:4]))[0]
                    pos = 4
                elif ln == 127:
                    if not self._recv_exact(src, buf, 10):
                        raise OSError("eof")
                    ln = struct.unpack(">Q", bytes(buf[2:10]))[0]
                    pos = 10
                mask = b""
                if masked:
                    if not self._recv_exact(src, buf, pos + 4):
                        raise OSError("eof")
                    mask = bytes(buf[pos:pos + 4])
                    pos += 4
                if not self._recv_exact(src, buf, pos + ln):
                    raise OSError("eof")
                raw = bytes(buf[:pos + ln])
                payload = bytes(buf[pos:pos + ln])
                del buf[:pos + ln]
                if masked:
                    payload = _unmask(payload, mask)
                if opcode >= 0x8:  # control frames (close, ping, pong) pass as they are
                    dst.sendall(raw)
                    continue
                message += payload
                if not fin:
                    continue
                whole = bytes(message)
                message = bytearray()
                with self.lock:
                    self.recorded += whole
                if to_agent and self.tamper:
                    whole = self._tamper_message(whole)
                    if whole:
                        dst.sendall(_frame(0x2, whole))
                    continue
                # unchanged: forward the message as one frame, masked again if it was
                dst.sendall(_frame(0x2, whole, masked=bool(masked)))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _tamper_message(self, msg: bytes) -> bytes:
        """Rewrites the nl frames of one message going to the agent."""
        kind, nth = self.tamper
        out = bytearray()
        pos = 0
        while pos + FRAME_HEADER <= len(msg):
            ftype = msg[pos]
            length = struct.unpack(">I", msg[pos + 8:pos + 12])[0]
            frame = msg[pos:pos + FRAME_HEADER + length]
            pos += FRAME_HEADER + length
            if ftype != DATA:
                out += frame
                continue
            self.data_frames_down += 1
            n = self.data_frames_down
            if self._held is not None:  # reorder: the held frame goes after this one
                out += frame + self._held
                self._held = None
                continue
            if n != nth:
                out += frame
                continue
            self.tampered += 1
            if kind == "flip":
                f = bytearray(frame)
                f[FRAME_HEADER + length // 2] ^= 0x01
                out += f
            elif kind == "drop":
                pass
            elif kind == "duplicate":
                out += frame + frame
            elif kind == "reorder":
                self._held = frame
            else:
                raise ValueError(kind)
        out += msg[pos:]
        return bytes(out)


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") if n else b""


def _frame(opcode: int, payload: bytes, masked: bool = False) -> bytes:
    n = len(payload)
    head = bytearray([0x80 | opcode])
    mbit = 0x80 if masked else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += struct.pack(">H", n)
    else:
        head.append(mbit | 127)
        head += struct.pack(">Q", n)
    if masked:
        mask = bytes(4)  # a zero mask: legal, and the gateway unmasks it to the same bytes
        head += mask
    return bytes(head) + payload
