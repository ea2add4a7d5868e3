"""A strict multipart/form-data parser (RFC 7578) in pure Python: the Workers have no cgi/email
shortcuts worth trusting with untrusted uploads, and errors must name what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from kernel.runtime.errors import BadRequest

MAX_PARTS = 16
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True)
class Part:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"form field {self.name!r} is not valid UTF-8") from exc


def header_params(value: str) -> tuple[str, dict[str, str]]:
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if key.endswith("*"):  # RFC 5987: filename*=UTF-8''na%C3%AFve.pdf
            charset, _, encoded = raw.partition("''")
            raw = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            key = key[:-1]
            params[key] = raw
        else:
            params.setdefault(key, raw)
    return main.strip().lower(), params


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    kind, params = header_params(content_type)
    boundary = params.get("boundary", "")
    if kind != "multipart/form-data" or not boundary or len(boundary) > 200:
        raise BadRequest("expected multipart/form-data with a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise BadRequest("multipart body is truncated: the closing boundary is missing")
    parts: dict[str, Part] = {}
    for section in sections[1:-1]:
        if not section.startswith(b"\r\n") or not section.endswith(b"\r\n"):
            raise BadRequest("multipart body is malformed around a boundary")
        head, sep, data = section[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise BadRequest("a multipart part has no header/body separator")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition, disp = header_params(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in disp:
            raise BadRequest("every multipart part needs Content-Disposition: form-data; name=...")
        if disp["name"] in parts:
            raise BadRequest(f"form field {disp['name']!r} appears more than once")
        parts[disp["name"]] = Part(
            disp["name"], data, disp.get("filename"), headers.get("content-type")
        )
        if len(parts) > MAX_PARTS:
            raise BadRequest(f"too many form fields (at most {MAX_PARTS})")
    return parts
