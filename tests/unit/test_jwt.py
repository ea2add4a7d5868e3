"""Access tokens: issue and verify, and every way a token must be refused."""

from __future__ import annotations

import base64
import json

import pytest

from gateway import jwt

KEYS = json.dumps({"k1": "a" * 40, "k2": "b" * 40})
# Every check runs at this instant, passed explicitly: nothing depends on when the test runs.
NOW = 1_750_000_000


def ring(active: str = "k1") -> jwt.KeyRing:
    return jwt.KeyRing.from_config(KEYS, active)


def token(**overrides: object) -> str:
    now = NOW
    claims = {
        "iss": jwt.ISSUER,
        "aud": jwt.AUDIENCE,
        "sub": "u_" + "1" * 24,
        "tid": "t_" + "2" * 24,
        "role": "student",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "x",
        "sid": "fam_1",
        **overrides,
    }
    return jwt.sign({k: v for k, v in claims.items() if v is not None}, b"a" * 40, "k1")


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def reason(tok: str) -> str:
    with pytest.raises(jwt.TokenError) as err:
        jwt.verify(ring(), tok, now=NOW)
    return err.value.reason


def test_round_trip_and_rotation() -> None:
    old = jwt.issue(
        ring("k1"), subject="u_1", tenant_id="t_1", role="admin", jti="j", session="fam_1", now=NOW
    )
    new = jwt.issue(
        ring("k2"), subject="u_1", tenant_id="t_1", role="admin", jti="j", session="fam_1", now=NOW
    )
    # During a rotation both kids verify; the header names which one signed.
    assert jwt.verify(ring("k2"), old, now=NOW)["sub"] == "u_1"
    assert jwt.verify(ring("k1"), new, now=NOW + 60)["role"] == "admin"
    assert jwt.verify(ring("k1"), new, now=NOW)["sid"] == "fam_1"
    header = json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "kid": "k2", "typ": "JWT"}
    retired = jwt.KeyRing.from_config(json.dumps({"k2": "b" * 40}), "k2")
    with pytest.raises(jwt.TokenError, match="unknown_kid"):
        jwt.verify(retired, old, now=NOW)


def test_alg_none_and_other_algorithms_are_refused() -> None:
    claims = json.loads(base64.urlsafe_b64decode(token().split(".")[1] + "=="))
    none = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims)}."
    assert reason(none) == "bad_algorithm"
    assert reason(jwt.sign(claims, b"a" * 40, "k1", alg="HS512")) == "bad_algorithm"
    assert reason(f"{b64({'alg': 'none'})}.{b64(claims)}.") == "bad_algorithm"


def test_wrong_signature_and_tampered_claims() -> None:
    assert reason(jwt.sign(json.loads("{}"), b"z" * 40, "k1")) == "bad_signature"
    good = token()
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    assert reason(f"{header}.{b64(claims)}.{signature}") == "bad_signature"


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"exp": NOW - 120, "iat": NOW - 600}, "expired"),
        ({"nbf": NOW + 600}, "not_yet_valid"),
        ({"iat": NOW + 600, "exp": NOW + 660}, "not_yet_valid"),
        ({"aud": "someone-else"}, "wrong_audience"),
        ({"iss": "evil"}, "wrong_issuer"),
        ({"tid": None}, "missing_claims"),
        ({"sid": None}, "missing_claims"),
        ({"sid": 7}, "malformed"),
        ({"exp": "tomorrow"}, "malformed"),
        ({"sub": 42}, "malformed"),
    ],
)
def test_claims_are_checked(overrides: dict[str, object], why: str) -> None:
    assert reason(token(**overrides)) == why


@pytest.mark.parametrize(
    "garbage", ["", "a.b", "a.b.c.d", "!!!.???.***", "eyJ" + "x" * 5000 + ".a.b", "e30.e30.e30"]
)
def test_malformed_tokens(garbage: str) -> None:
    assert reason(garbage) in ("malformed", "bad_algorithm")


@pytest.mark.parametrize(
    ("keys", "active"),
    [
        (None, None),
        ("not json", "k1"),
        ('{"k1": "short"}', "k1"),
        (KEYS, "k3"),
        (KEYS, None),  # two keys: which one signs must be said
        ("[]", None),
    ],
)
def test_key_configuration_fails_closed(keys: str | None, active: str | None) -> None:
    with pytest.raises(jwt.KeyConfigError):
        jwt.KeyRing.from_config(keys, active)


def test_expiry_is_judged_at_the_given_instant() -> None:
    tok = token()
    assert jwt.verify(ring(), tok, now=NOW + 60 + jwt.LEEWAY_SECONDS - 1)["sub"]
    with pytest.raises(jwt.TokenError, match="expired"):
        jwt.verify(ring(), tok, now=NOW + 60 + jwt.LEEWAY_SECONDS)


@pytest.mark.parametrize(
    "lifetime",
    [jwt.ACCESS_TTL_SECONDS + 1, 24 * 3600, 31 * 365 * 24 * 3600],
)
def test_a_lifetime_beyond_the_configured_one_is_refused(lifetime: int) -> None:
    # Correctly signed (a leaked key, or a bug that mints long tokens): still refused.
    assert reason(token(exp=NOW + lifetime)) == "lifetime_too_long"
    # An old iat cannot buy a long exp either: the cap is exp - iat.
    assert reason(token(iat=NOW - 10, exp=NOW - 10 + lifetime)) == "lifetime_too_long"


def test_the_configured_lifetime_itself_is_accepted() -> None:
    tok = token(exp=NOW + jwt.ACCESS_TTL_SECONDS)
    assert jwt.verify(ring(), tok, now=NOW)["exp"] == NOW + jwt.ACCESS_TTL_SECONDS
    short = jwt.KeyRing.from_config(KEYS, "k1")
    with pytest.raises(jwt.TokenError, match="lifetime_too_long"):
        jwt.verify(short, tok, now=NOW, max_lifetime=60)
