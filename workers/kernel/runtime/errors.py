"""Errors that carry their HTTP status; one handler (`kernel.runtime.app`) renders them.

Every failure leaves the mesh as `{"error": {"code", "message", "request_id"}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance override of the class default
        self.headers = dict(headers or {})
        self.details = dict(details or {})

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"

    @classmethod
    def field(cls, name: str, message: str) -> ValidationFailed:
        """A 422 naming one field, in the shape request-model validation uses."""
        return cls(f"{name}: {message}", details={"fields": [{"field": name, "message": message}]})


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class UpstreamError(ApiError):
    status = 502
    code = "upstream_error"


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"


class TimedOut(ApiError):
    status = 504
    code = "timeout"


class Relayed(ApiError):
    """An error another Worker already rendered in the one shape, passed on as it was: its
    status, code, message, details and Retry-After (e.g. the llm Worker's 503)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, headers=headers, details=details)
        self.status = status  # type: ignore[misc]  # instance override of the class default
