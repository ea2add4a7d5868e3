"""Password hashing: PBKDF2-HMAC-SHA256 from hashlib, self-describing, compared in constant time.

Stored as `pbkdf2_sha256$<iterations>$<salt, base64>$<hash, base64>` so the iteration count can
rise later: a login with an older count re-hashes the password (`needs_rehash`).

Iterations: 600,000 — OWASP's 2023 figure for PBKDF2-HMAC-SHA256. The cost is CPU time on every
login and registration: ~0.3 s on a CPython core; in Pyodide, hashlib is OpenSSL compiled to
WebAssembly, roughly 1.5-2x slower, i.e. ~0.5 s of the request's CPU budget. That fits the paid
Workers plan (30 s CPU by default) but not the free plan's 10 ms, and is why login is rate
limited per IP and email (gateway/ratelimit.py). `EDGERAG_PBKDF2_ITERATIONS` lowers it for
tests (never below MIN_ITERATIONS).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 1_000
SALT_BYTES = 16
HASH_BYTES = 32
MAX_PASSWORD_BYTES = 1024  # PBKDF2 hashes long inputs first, but an unbounded body is a DoS


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    iterations = max(MIN_ITERATIONS, iterations)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[int, bytes, bytes] | None:
    try:
        algorithm, iterations, salt, digest = stored.split("$")
        if algorithm != ALGORITHM:
            return None
        return int(iterations), base64.b64decode(salt), base64.b64decode(digest)
    except (ValueError, TypeError):
        return None


def verify_password(password: str, stored: str) -> bool:
    parsed = _parse(stored)
    if parsed is None:
        return False
    iterations, salt, expected = parsed
    candidate = hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), salt, iterations, len(expected)
    )
    return hmac.compare_digest(candidate, expected)


def needs_rehash(stored: str, iterations: int) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[0] < max(MIN_ITERATIONS, iterations)


# Verified against when the email is unknown, so a miss does exactly the work of a wrong
# password: one PBKDF2 at the same iteration count. Nothing needs to hash *to* this digest
# (nothing can match it), so building it costs nothing — not even on the process's first miss.
_DUMMY_SALT = _b64(b"edgerag-no-user!")
_DUMMY_DIGEST = _b64(bytes(HASH_BYTES))


def burn_time(password: str, iterations: int) -> None:
    dummy = f"{ALGORITHM}${max(MIN_ITERATIONS, iterations)}${_DUMMY_SALT}${_DUMMY_DIGEST}"
    verify_password(password, dummy)
