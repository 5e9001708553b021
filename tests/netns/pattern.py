"""The deterministic byte pattern of the TUN transfer tests (shared by servers.py and
probe.py): 1 MiB of SHA-256 counter output, repeated."""
import hashlib

_BLOCK = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range((1 << 20) // 32))


def pattern_chunks(n: int):
    while n > 0:
        k = min(n, len(_BLOCK))
        yield _BLOCK[:k]
        n -= k


def pattern_sha256(n: int) -> str:
    h = hashlib.sha256()
    for c in pattern_chunks(n):
        h.update(c)
    return h.hexdigest()
