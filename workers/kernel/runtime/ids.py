"""Identifiers: random ids for new things, content hashes for things that must be idempotent."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(10)}"


def sha256_hex(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def chunk_id(tenant_id: str, document_id: str, text: str, occurrence: int) -> str:
    """Content-derived, stable across versions (the n-th identical text in a document keeps
    its id), tenant-salted because Vectorize ids are global to the index (≤64 bytes)."""
    return "c_" + sha256_hex(f"{tenant_id}\x1f{document_id}\x1f{occurrence}\x1f{text}")[:40]
