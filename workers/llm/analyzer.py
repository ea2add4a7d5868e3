"""The analyzer adapter: a recording's analysis from an HTTP service that speaks the analyzer
contract (kernel.contracts.analyzer), checked before anyone stores it.

Which analyzer: the tenant's own (`analyzer_url` in its settings: https, and refused by the
same SSRF policy as URL documents when it names a private address), else the deployment's
(`EDGERAG_ANALYZER_URL`, with the `EDGERAG_ANALYZER_TOKEN` secret as a bearer token; locally
the dev server's signal analyzer, emulator/analyzer.py), else 501 `not_enabled`.

A 422 with the contract's error body is the recording's problem (its codec, its length):
`recording_refused` (422) with the analyzer's code and message. Other failures are the
analyzer's, each with its own code: `analyzer_timeout` (504, after
`EDGERAG_ANALYZER_TIMEOUT_S`, default 120), `analyzer_unavailable` (502, no answer),
`analyzer_failed` (502, a non-200 answer; its body is never passed on) and `analyzer_malformed`
(502, an answer that breaks the contract: not JSON, scores out of [0, 1] or NaN, segments
outside the recording, too many of anything).
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from kernel.bindings.env import Bindings
from kernel.bindings.ports import HttpError, OutboundError
from kernel.bindings.url_policy import check_url
from kernel.contracts.analyzer import AnalyzerResponse
from kernel.contracts.llm import AnalyzeRequest
from kernel.runtime.errors import ApiError, TimedOut, UpstreamError, ValidationFailed
from kernel.runtime.logs import log

DEFAULT_TIMEOUT_S = 120.0
MAX_REPLY_BYTES = 8 * 1024 * 1024


class NotEnabled(ApiError):
    status = 501
    code = "not_enabled"


def describe(b: Bindings) -> dict[str, object] | None:
    """/health: the deployment's analyzer, if any (never its token)."""
    url = b.var("EDGERAG_ANALYZER_URL")
    if not url:
        return None
    return {"url": url, "token": bool(b.var("EDGERAG_ANALYZER_TOKEN"))}


def _target(b: Bindings, ask: AnalyzeRequest) -> tuple[str, dict[str, str], str]:
    """(url, headers, which) for this request."""
    if ask.analyzer_url:
        try:
            url = check_url(ask.analyzer_url)
        except OutboundError as exc:
            raise ValidationFailed(f"analyzer_url: {exc}", code="analyzer_url_refused") from exc
        if not url.startswith("https://"):
            raise ValidationFailed("analyzer_url: a tenant's analyzer is an https URL")
        return url, {}, "tenant"
    deployment = b.var("EDGERAG_ANALYZER_URL")
    if not deployment:
        raise NotEnabled(
            "recording analysis is not enabled here: set EDGERAG_ANALYZER_URL for the"
            " deployment, or the tenant's analyzer_url (PATCH /v1/settings)"
        )
    token = b.var("EDGERAG_ANALYZER_TOKEN")
    return deployment, ({"authorization": f"Bearer {token}"} if token else {}), "deployment"


async def analyze(b: Bindings, ask: AnalyzeRequest, tenant: str) -> AnalyzerResponse:
    url, headers, which = _target(b, ask)
    timeout = float(b.var("EDGERAG_ANALYZER_TIMEOUT_S") or DEFAULT_TIMEOUT_S)
    http = b.need(b.http, "HTTP")
    try:
        reply = await http.send(
            "POST",
            url,
            headers={"content-type": "application/json", "accept": "application/json", **headers},
            body=ask.request.model_dump_json().encode(),
            timeout_s=timeout,
        )
    except HttpError as exc:
        log("analyzer_error", tenant=tenant, analyzer=which, kind=exc.kind)
        if exc.kind == "timeout":
            raise TimedOut(
                f"the {which} analyzer did not answer within {timeout:g} s",
                code="analyzer_timeout",
            ) from exc
        raise UpstreamError(
            f"the {which} analyzer could not be reached", code="analyzer_unavailable"
        ) from exc
    if reply.status == 422 and (refused := _refusal(reply.body)) is not None:
        code, message = refused
        log("analyzer_refused", tenant=tenant, analyzer=which, code=code)
        raise ValidationFailed(
            f"the {which} analyzer cannot analyse this recording: {message}",
            code="recording_refused",
            details={"analyzer_code": code},
        )
    if reply.status != 200:
        log("analyzer_error", tenant=tenant, analyzer=which, status=reply.status)
        raise UpstreamError(f"the {which} analyzer answered {reply.status}", code="analyzer_failed")
    return _checked(reply.body, ask.request.recording.duration_s, which)


def _refusal(body: bytes) -> tuple[str, str] | None:
    """The analyzer's 422 `{"error": {"code", "message"}}`, bounded and printable; else None."""
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return None
    printable = "".join(c if c.isprintable() else " " for c in message)
    return "".join(c for c in code if c.isalnum() or c == "_")[:40], printable[:300]


def _checked(body: bytes, duration_s: float, which: str) -> AnalyzerResponse:
    def malformed(why: str) -> UpstreamError:
        return UpstreamError(
            f"the {which} analyzer's answer breaks the analyzer contract: {why}",
            code="analyzer_malformed",
        )

    if len(body) > MAX_REPLY_BYTES:
        raise malformed(f"{len(body)} bytes, at most {MAX_REPLY_BYTES}")
    try:
        data = json.loads(body)
    except ValueError:
        raise malformed("not JSON") from None
    try:
        result = AnalyzerResponse.model_validate(data)
        result.check_within(duration_s)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise malformed(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    except ValueError as exc:
        raise malformed(str(exc)) from None
    return result
