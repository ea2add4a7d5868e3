"""Turn an ingest request into an `Upload`: multipart file, JSON text, or JSON url.

Everything here validates early and names the field at fault; nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import model_validator

from ingest.multipart import parse_multipart
from kernel.bindings.ports import Outbound, OutboundError
from kernel.contracts.api import DocumentOptions, FileName, JsonDocument
from kernel.runtime.errors import (
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from kernel.runtime.http import Request, validate
from kernel.runtime.jsonbounds import parse_json

URL_TIMEOUT_SECONDS = 15.0


@dataclass
class Upload:
    data: bytes
    content_type: str | None
    filename: str | None
    title: str | None
    visibility: str = "tenant"
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    source_url: str | None = None
    # The options the caller actually sent: on PUT, the others keep their current value.
    given: frozenset[str] = frozenset()


class ReplacementDocument(JsonDocument):
    """PUT as JSON: like POST, but an omitted title keeps the document's current one."""

    @model_validator(mode="after")
    def one_source(self) -> ReplacementDocument:  # replaces JsonDocument's (same name)
        if sum(v is not None for v in (self.text, self.url, self.upload_id)) != 1:
            raise ValueError("send exactly one of `text`, `url` or `upload_id`")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty after removing whitespace")
        return self


_OPTIONS = frozenset({"title", "visibility", "tags", "metadata"})


def _content_kind(request: Request) -> str:
    return (request.header("content-type") or "").split(";")[0].strip().lower()


# An upload id → (bytes, content type, file name) of the caller's confirmed direct upload.
FromUpload = Callable[[str, int], Awaitable[tuple[bytes, str, str]]]


async def read_upload(
    request: Request,
    *,
    max_bytes: int,
    outbound: Outbound | None,
    replacing: bool = False,
    from_upload: FromUpload | None = None,
) -> Upload:
    kind = _content_kind(request)
    if len(request.body) > max_bytes + 64 * 1024:  # multipart framing allowance
        raise PayloadTooLarge(f"upload is {len(request.body)} bytes; the limit is {max_bytes}")
    if kind == "multipart/form-data":
        return _from_multipart(request, max_bytes)
    if kind in ("application/json", ""):
        model = ReplacementDocument if replacing else JsonDocument
        doc = request.model(model, max_bytes=max_bytes + 64 * 1024)
        options: dict[str, Any] = {
            "visibility": doc.visibility,
            "tags": doc.tags,
            "metadata": doc.metadata,
            "given": frozenset(doc.model_fields_set & _OPTIONS),
        }
        if doc.text is not None:
            data = doc.text.encode("utf-8")
            if len(data) > max_bytes:
                raise PayloadTooLarge(f"text is {len(data)} bytes; the limit is {max_bytes}")
            return Upload(
                data=data,
                content_type="text/plain; charset=utf-8",
                filename=None,
                title=doc.title,
                **options,
            )
        if doc.upload_id is not None:
            if from_upload is None:
                raise BadRequest("direct uploads are not configured on this deployment")
            data, content_type, filename = await from_upload(doc.upload_id, max_bytes)
            return Upload(
                data=data,
                content_type=content_type,
                filename=filename,
                title=doc.title,
                **options,
            )
        assert doc.url is not None
        return await _from_url(doc.url, doc.title, options, max_bytes=max_bytes, outbound=outbound)
    raise UnsupportedMediaType(
        f"send multipart/form-data (a file) or application/json, not {kind!r}"
    )


def _from_multipart(request: Request, max_bytes: int) -> Upload:
    parts = parse_multipart(request.body, request.header("content-type") or "")
    unknown = set(parts) - {"file", "title", "visibility", "tags", "metadata"}
    if unknown:
        raise ValidationFailed(
            f"{sorted(unknown)[0]}: unknown form field (expected file, title, visibility, tags, metadata)"
        )
    upload = parts.get("file")
    if upload is None or upload.filename is None:
        raise ValidationFailed("file: a file part (with a filename) is required")
    if len(upload.data) > max_bytes:
        raise PayloadTooLarge(f"file is {len(upload.data)} bytes; the limit is {max_bytes}")
    raw: dict[str, Any] = {}
    if "title" in parts:
        raw["title"] = parts["title"].text()
    if "visibility" in parts:
        raw["visibility"] = parts["visibility"].text()
    for name in ("tags", "metadata"):
        if name in parts:
            try:
                raw[name] = parse_json(parts[name].data, what="the field")
            except BadRequest as exc:
                raise ValidationFailed(f"{name}: must be JSON ({exc.message})") from exc
    options = validate(DocumentOptions, raw)
    try:
        # The file name is shown in listings and becomes the title when none is given.
        filename = validate(FileName, {"filename": upload.filename[-255:]}).filename
    except ValidationFailed as exc:
        raise ValidationFailed(f"file: {exc.message}") from exc
    return Upload(
        data=upload.data,
        content_type=upload.content_type,
        filename=filename,
        title=options.title,
        visibility=options.visibility,
        tags=options.tags,
        metadata=options.metadata,
        given=frozenset(raw),
    )


async def _from_url(
    url: str,
    title: str | None,
    options: dict[str, Any],
    *,
    max_bytes: int,
    outbound: Outbound | None,
) -> Upload:
    if outbound is None:
        raise BadRequest("URL ingestion is not configured on this deployment")
    try:
        fetched = await outbound.fetch(url, max_bytes=max_bytes, timeout_s=URL_TIMEOUT_SECONDS)
    except OutboundError as exc:
        raise ValidationFailed(f"url: {exc}", code=f"url_{exc.reason}") from exc
    filename = fetched.final_url.rsplit("/", 1)[-1].split("?")[0] or None
    return Upload(
        data=fetched.body,
        content_type=fetched.content_type,
        filename=filename,
        title=title,  # None: the page's own <title> (or the URL) is used
        source_url=fetched.final_url,
        **options,
    )
