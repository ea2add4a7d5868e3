"""Structured grounded answers: claims, each with its source number and a verbatim quote.

Asked for where the provider supports structured output — Anthropic through a forced tool whose
input is the claims object, OpenAI-compatible servers through `response_format: json_schema`,
Workers AI through JSON mode (not while streaming: Workers AI refuses JSON mode with
`stream: true`). Nothing here trusts the model: a reply that is not a claims object falls back
to being read as [n]-marker text, an item that breaks the schema is dropped and counted, and the
rag Worker checks every quote against the stored chunk before a claim is shown.

`ClaimScanner` reads the claims out of JSON text as it streams, so each claim can be released
(and verified) as soon as the model has written it, without waiting for the whole object.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kernel.contracts.llm import GeneratedClaim

TOOL_NAME = "cite_claims"
MAX_CLAIMS = 30
MAX_FIELD_CHARS = 2000
MAX_ITEM_CHARS = 3 * MAX_FIELD_CHARS  # a claim object longer than this is dropped unread

CLAIMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "claims": {
            "type": "array",
            "description": "The answer, one sentence per claim; empty when the sources lack it.",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "One sentence of the answer."},
                    "source": {
                        "type": "integer",
                        "description": "The number of the source the sentence comes from.",
                    },
                    "quote": {
                        "type": "string",
                        "description": "The words of that source supporting it, copied exactly.",
                    },
                },
                "required": ["text", "source", "quote"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["claims"],
    "additionalProperties": False,
}

# A summary is claims too: each sentence of it with the source and words it comes from.
SUMMARY_SCHEMA: dict[str, Any] = {
    "title": "summarize_sources",
    "description": "Summarize the numbered sources as claims, each with a quote.",
    **CLAIMS_SCHEMA,
}

INSTRUCTIONS = (
    "Give your answer as claims: each claim is one sentence of the answer, `source` is the "
    "number of the source it comes from, and `quote` is the passage of that source that "
    "supports it, copied word for word. If the sources do not contain the answer, give no claims."
)
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*")


@dataclass
class Parsed:
    claims: list[GeneratedClaim]
    malformed: int = 0


def claim(item: Any) -> GeneratedClaim | None:
    """One schema-valid claim, or None (a missing field, a wrong type, an oversize string)."""
    if not isinstance(item, dict):
        return None
    text, source, quote = item.get("text"), item.get("source"), item.get("quote")
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source)  # "2": small models quote numbers; the verifier still checks it
    if (
        not isinstance(text, str)
        or not isinstance(quote, str)
        or not isinstance(source, int)
        or isinstance(source, bool)
        or source < 1
        or not text.strip()
        or not quote.strip()
        or len(text) > MAX_FIELD_CHARS
        or len(quote) > MAX_FIELD_CHARS
    ):
        return None
    return GeneratedClaim(text=text.strip(), source=source, quote=quote.strip())


def parse(value: Any) -> Parsed | None:
    """The claims of a structured reply (a dict, or its JSON text); None when it is not a
    claims object at all — the caller then reads the reply as [n]-marker text."""
    if isinstance(value, str):
        try:
            value = json.loads(_FENCE.sub("", value.strip()).removesuffix("```"))
        except ValueError:
            return None
    if not isinstance(value, dict) or not isinstance(value.get("claims"), list):
        return None
    parsed = Parsed([])
    for item in value["claims"][:MAX_CLAIMS]:
        if (c := claim(item)) is None:
            parsed.malformed += 1
        else:
            parsed.claims.append(c)
    parsed.malformed += max(0, len(value["claims"]) - MAX_CLAIMS)
    return parsed


def render(claims: list[GeneratedClaim]) -> str:
    """The claims as [n]-marker text, for readers of `GenerateResponse.text`."""
    return " ".join(f"{c.text} [{c.source}]" for c in claims)


@dataclass
class ClaimScanner:
    """Claims out of streamed JSON text `{"claims": [{...}, {...}]}`, each once it is complete.

    `feed` returns the claims finished by the new text. Until the first non-blank character the
    format is unknown; if it is not `{` (the provider ignored the schema) `json` turns False and
    the caller reads the text as [n] markers instead (`text` holds all of it)."""

    json: bool | None = None  # None: not known yet
    text: str = ""
    malformed: int = 0
    emitted: int = 0
    _depth: int = 0
    _in_string: bool = False
    _escaped: bool = False
    _item_start: int | None = None
    _pos: int = 0
    _stack: list[str] = field(default_factory=list)

    def feed(self, piece: str) -> list[GeneratedClaim]:
        self.text += piece
        if self.json is None:
            head = _FENCE.sub("", self.text).lstrip()
            if not head or (head.startswith("`") and len(head) < 8):
                return []
            self.json = head.startswith("{")
            if not self.json:
                return []
            self._pos = len(self.text) - len(head)
        if not self.json:
            return []
        out: list[GeneratedClaim] = []
        text = self.text
        while self._pos < len(text):
            ch = text[self._pos]
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif ch == "\\":
                    self._escaped = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._stack.append(ch)
                if ch == "{" and self._stack == ["{", "[", "{"]:
                    self._item_start = self._pos  # a claim object inside the claims array
            elif ch in "}]":
                if self._stack:
                    self._stack.pop()
                if ch == "}" and self._stack == ["{", "["] and self._item_start is not None:
                    out.extend(self._item(text[self._item_start : self._pos + 1]))
                    self._item_start = None
            if self._item_start is not None and self._pos - self._item_start > MAX_ITEM_CHARS:
                self.malformed += 1  # an endless claim: dropped, and the rest still read
                self._item_start = None  # its closing brace then closes nothing we emit
            self._pos += 1
        return out

    def _item(self, raw: str) -> list[GeneratedClaim]:
        if self.emitted >= MAX_CLAIMS:
            self.malformed += 1
            return []
        try:
            item = json.loads(raw)
        except ValueError:
            item = None
        found = claim(item)
        if found is None:
            self.malformed += 1
            return []
        self.emitted += 1
        return [found]

    def finish(self) -> None:
        """The stream ended: a claim still open was cut off (truncated) and is dropped."""
        if self.json and self._item_start is not None:
            self.malformed += 1
            self._item_start = None
