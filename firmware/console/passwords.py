"""Console passwords: salted scrypt hashes (hashlib.scrypt), never the password itself.

Stored as ``scrypt$N$r$p$SALT$HASH`` (salt and hash base64). The cost parameters travel
with the hash so they can be raised later; the ones a config may carry are bounded, so a
hand-edited hash cannot make a login exhaust the controller's memory.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

N, R, P = 2**14, 8, 1  # scrypt's interactive-login cost (Percival's paper, 2009)
SALT_BYTES = 16
KEY_BYTES = 32
MAX_N = 2**16
MAXMEM = 128 * 1024 * 1024  # N=2**16, r=8 needs 64 MiB (128 * N * r bytes)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P,
                         dklen=KEY_BYTES, maxmem=MAXMEM)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(key)}"


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, key); ValueError saying what is wrong."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("must be a hash from `chargebay passwd` (scrypt$N$r$p$salt$hash)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError("scrypt hash: bad number or base64") from None
    if not (2 <= n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= 16 and 1 <= p <= 4):
        raise ValueError(f"scrypt hash: cost N={n} r={r} p={p} out of range")
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("scrypt hash: salt or hash too short")
    return n, r, p, salt, key


def verify(password: str, stored: str) -> bool:
    """Whether ``password`` matches; slow on purpose (run it off the event loop)."""
    try:
        n, r, p, salt, key = parse_hash(stored)
    except ValueError:
        return False
    got = hashlib.scrypt(password.encode("utf-8", "replace"), salt=salt, n=n, r=r, p=p,
                         dklen=len(key), maxmem=MAXMEM)
    return hmac.compare_digest(got, key)


@functools.cache
def dummy_hash() -> str:
    """Checked when the user name is unknown: a wrong name costs what a wrong password
    does, so the timing does not tell which names exist."""
    return hash_password("", salt=b"chargebay-dummy!")
