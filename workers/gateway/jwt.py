"""HS256 access tokens (RFC 7519) with key rotation by `kid`, verified strictly.

Keys come from the secret `EDGERAG_JWT_KEYS` (JSON `{"kid": "secret", ...}`, two active during
a rotation) and `EDGERAG_JWT_ACTIVE_KID` (the one that signs). Verification accepts any listed
kid, so tokens signed with the previous key stay valid until they expire (≤ ACCESS_TTL_SECONDS);
remove the old kid after that.

Rejected: any `alg` other than HS256 (so `none` and algorithm confusion), unknown kid, bad
signature (compared in constant time), wrong `iss`/`aud`, expired `exp`, future `nbf`/`iat`,
a lifetime `exp - iat` beyond the configured one (a correctly signed token cannot live longer
than we would ever issue it for), missing claims, malformed segments.

`sid` names the login session — the refresh-token family the token was issued from — so that
ending the session (logout, refresh-token reuse, disabling the user) ends its access tokens at
once: gateway/auth.py checks the family on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernel.runtime.errors import BadRequest
from kernel.runtime.jsonbounds import parse_json

ISSUER = "edgerag"
AUDIENCE = "edgerag-api"
ACCESS_TTL_SECONDS = 15 * 60
LEEWAY_SECONDS = 30  # clock skew tolerated on exp/nbf/iat
MIN_KEY_BYTES = 32
MAX_TOKEN_CHARS = 4096
REQUIRED_CLAIMS = ("iss", "aud", "sub", "tid", "role", "sid", "exp", "nbf", "iat")


class TokenError(Exception):
    """Why a token was refused (logged and counted, not shown in detail to the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyConfigError(Exception):
    pass


@dataclass(frozen=True)
class KeyRing:
    keys: Mapping[str, bytes]
    active_kid: str

    @classmethod
    def from_config(cls, keys_json: str | None, active_kid: str | None) -> KeyRing:
        if not keys_json:
            raise KeyConfigError("EDGERAG_JWT_KEYS is not configured")
        try:
            raw = json.loads(keys_json)
        except json.JSONDecodeError as exc:
            raise KeyConfigError("EDGERAG_JWT_KEYS is not valid JSON") from exc
        if not isinstance(raw, dict) or not raw:
            raise KeyConfigError('EDGERAG_JWT_KEYS must be a JSON object {"kid": "secret"}')
        keys: dict[str, bytes] = {}
        for kid, secret in raw.items():
            if not isinstance(secret, str) or len(secret.encode()) < MIN_KEY_BYTES:
                raise KeyConfigError(f"JWT key {kid!r} must be a string of ≥{MIN_KEY_BYTES} bytes")
            keys[str(kid)] = secret.encode("utf-8")
        active = active_kid or (next(iter(keys)) if len(keys) == 1 else None)
        if active not in keys:
            raise KeyConfigError("EDGERAG_JWT_ACTIVE_KID must name one of EDGERAG_JWT_KEYS")
        return cls(keys=keys, active_kid=active)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    if not segment or any(c not in _B64URL for c in segment):
        raise TokenError("malformed")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign(claims: Mapping[str, Any], key: bytes, kid: str, alg: str = "HS256") -> str:
    header = _b64encode(_json({"alg": alg, "typ": "JWT", "kid": kid}))
    payload = _b64encode(_json(claims))
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def issue(
    ring: KeyRing,
    *,
    subject: str,
    tenant_id: str,
    role: str,
    jti: str,
    session: str,
    now: float | None = None,
    ttl: int = ACCESS_TTL_SECONDS,
) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "tid": tenant_id,
        "role": role,
        "sid": session,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": jti,
    }
    return sign(claims, ring.keys[ring.active_kid], ring.active_kid)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def verify(
    ring: KeyRing,
    token: str,
    *,
    now: float | None = None,
    max_lifetime: int = ACCESS_TTL_SECONDS,
) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TokenError("malformed")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = parse_json(_b64decode(header_b64), what="token header")  # unsigned yet: bounded
    except (ValueError, BadRequest) as exc:
        raise TokenError("malformed") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed")
    # The algorithm is fixed by us, never chosen by the token: `none`, RS256, … are refused.
    if header.get("alg") != "HS256":
        raise TokenError("bad_algorithm")
    kid = header.get("kid")
    key = ring.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenError("unknown_kid")
    expected = hmac.new(key, f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64decode(signature_b64)):
        raise TokenError("bad_signature")
    try:
        claims = parse_json(_b64decode(payload_b64), what="token claims")
    except (ValueError, BadRequest) as exc:
        raise TokenError("malformed") from exc
    if not isinstance(claims, dict) or any(c not in claims for c in REQUIRED_CLAIMS):
        raise TokenError("missing_claims")
    if claims["iss"] != ISSUER:
        raise TokenError("wrong_issuer")
    if claims["aud"] != AUDIENCE:
        raise TokenError("wrong_audience")
    current = time.time() if now is None else now
    for name in ("exp", "nbf", "iat"):
        if not isinstance(claims[name], int | float) or isinstance(claims[name], bool):
            raise TokenError("malformed")
    if current >= claims["exp"] + LEEWAY_SECONDS:
        raise TokenError("expired")
    if claims["nbf"] > current + LEEWAY_SECONDS or claims["iat"] > current + LEEWAY_SECONDS:
        raise TokenError("not_yet_valid")
    # iat is bounded by now (above), so this bounds exp too: exp ≤ now + leeway + max_lifetime.
    if claims["exp"] - claims["iat"] > max_lifetime:
        raise TokenError("lifetime_too_long")
    if not all(isinstance(claims[c], str) for c in ("sub", "tid", "role", "sid")):
        raise TokenError("malformed")
    return claims
