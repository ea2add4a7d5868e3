"""Request models of the gateway's own routes (identity, keys, sharing, tenant policy).

Strict like kernel.contracts.api: unknown fields are 422, every string has a length bound, and control
characters are refused in names and emails (they end up in logs and listings).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from gateway.emails import normalize_email
from kernel.contracts.api import Label, Strict

Role = Literal["admin", "teacher", "student"]
TENANT_ID_PATTERN = r"^t_[0-9a-f]{24}$"
USER_ID_PATTERN = r"^u_[0-9a-f]{24}$"
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _email(value: str) -> str:
    return normalize_email(value)  # gateway/emails.py: look-alike addresses are one address


def _password(value: str) -> str:
    """Kept exactly as typed (it is hashed, never shown); whitespace does not count toward the
    minimum length, so ten spaces are not a password, and control characters (NUL, CR/LF, ESC,
    C1) are refused: they come from broken clients or pasted garbage, never from a keyboard."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("password must not contain control characters")
    if len("".join(value.split())) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password needs at least {MIN_PASSWORD_CHARS} characters besides spaces")
    return value


class RegisterUser(Strict):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)
    name: Annotated[Label, Field(min_length=1, max_length=200)]
    role: Role

    @field_validator("email")
    @classmethod
    def valid_email(cls, value: str) -> str:
        return _email(value)

    @field_validator("password")
    @classmethod
    def strong_enough(cls, value: str) -> str:
        return _password(value)

    @field_validator("name")
    @classmethod
    def printable_name(cls, value: str) -> str:
        if _CONTROL.search(value) or not value.strip():
            raise ValueError("name must be printable text")
        return value.strip()


class Login(Strict):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)
    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)

    @field_validator("email")
    @classmethod
    def valid_email(cls, value: str) -> str:
        return _email(value)


class Refresh(Strict):
    refresh_token: str = Field(min_length=1, max_length=256)


class UpdateUser(Strict):
    """PATCH /v1/users/{id} (admins): omitted fields keep their value."""

    role: Role | None = None
    disabled: bool | None = Field(default=None, strict=True)

    @model_validator(mode="after")
    def changes_something(self) -> UpdateUser:
        if self.role is None and self.disabled is None:
            raise ValueError("send at least one of: role, disabled")
        return self


class CreateApiKey(Strict):
    name: Annotated[Label, Field(min_length=1, max_length=200)] | None = None
    role: Role = "admin"


class CreateRelationship(Strict):
    student_id: str = Field(pattern=USER_ID_PATTERN)
    teacher_id: str | None = Field(default=None, pattern=USER_ID_PATTERN)  # admins only


class TenantPolicy(Strict):
    """PATCH /v1/tenants/{id}: omitted fields keep their value."""

    cors_origins: list[str] | None = Field(default=None, max_length=20)
    daily_token_budget: int | None = Field(default=None, ge=0, le=10**12)  # operator only
    # {route_class: {"user" | "tenant": count | null}}: the tenant's own counts (same windows);
    # tenant admins within the operator's ceilings; null returns to the deployment's.
    rate_limits: (
        dict[
            Annotated[str, Field(max_length=40)],
            dict[Literal["user", "tenant"], Annotated[int, Field(ge=1, le=10**9)] | None],
        ]
        | None
    ) = Field(default=None, max_length=10)

    @field_validator("cors_origins")
    @classmethod
    def exact_origins(cls, origins: list[str] | None) -> list[str] | None:
        if origins is None:
            return None
        from gateway.cors import normalize_origin

        return sorted({normalize_origin(o) for o in origins})
