#!/usr/bin/env python3
"""Target servers for the TUN tests, run INSIDE the agent's network namespace (started by
the lab fixture with `ip netns exec`). Every TCP server listens dual-stack on [::], so it
answers on every address of the namespace (10.77.0.1, fd77::1, and the whole local ranges
10.77.1.0/24 and fd77:1::/64 the lab routes to lo). Prints "servers ready" when bound.

  tcp 7     echo until EOF
  tcp 80    HTTP: "hello from <local address>"
  tcp 5001  ident: reads one line, answers "<line> <local ip> <local port>" and closes
  tcp 5002  hash sink: reads to EOF, answers the SHA-256 hex of what it read
  tcp 5003  source: reads "<n>\\n", sends n bytes of the pattern (pattern.py), closes
  tcp 5005  stall: accepts and reads nothing for 60 s (backpressure test)
  tcp 5009  discard: reads to EOF, then closes (benchmark sink)
  tcp 5019  chargen: sends until the peer closes (benchmark source)
  udp 7     echo
"""
import hashlib
import http.server
import socket
import socketserver
import sys
import threading

sys.path.insert(0, __import__("os").path.dirname(__file__))
from pattern import pattern_chunks  # noqa: E402


class V6Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def local_ip(sock):
    host = sock.getsockname()[0]
    return host[7:] if host.startswith("::ffff:") else host


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                return
            self.request.sendall(d)


class Ident(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().strip().decode()
        self.wfile.write(f"{line} {local_ip(self.request)} {self.request.getsockname()[1]}\n".encode())


class HashSink(socketserver.BaseRequestHandler):
    def handle(self):
        h = hashlib.sha256()
        while True:
            d = self.request.recv(1 << 20)
            if not d:
                break
            h.update(d)
        self.request.sendall(h.hexdigest().encode() + b"\n")


class Source(socketserver.StreamRequestHandler):
    def handle(self):
        n = int(self.rfile.readline())
        for chunk in pattern_chunks(n):
            self.wfile.write(chunk)


class Stall(socketserver.BaseRequestHandler):
    def handle(self):
        threading.Event().wait(60)  # hold the connection, read nothing


class Discard(socketserver.BaseRequestHandler):
    def handle(self):
        buf = bytearray(1 << 20)
        while self.request.recv_into(buf):
            pass


class Chargen(socketserver.BaseRequestHandler):
    def handle(self):
        block = bytes(1 << 20)
        try:
            while True:
                self.request.sendall(block)
        except OSError:
            pass


class Hello(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = f"hello from {local_ip(self.connection)}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HttpV6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def udp_echo():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", 7))
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(d, a)


def main():
    servers = [V6Server(("::", 7), Echo), V6Server(("::", 5001), Ident), V6Server(("::", 5002), HashSink),
               V6Server(("::", 5003), Source), V6Server(("::", 5005), Stall), V6Server(("::", 5009), Discard), V6Server(("::", 5019), Chargen),
               HttpV6(("::", 80), Hello)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    threading.Thread(target=udp_echo, daemon=True).start()
    print("servers ready", file=sys.stderr, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
