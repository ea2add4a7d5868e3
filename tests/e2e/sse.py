"""A small, strict text/event-stream parser for tests (the W3C format, not a regex over lines)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any


async def events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, Any]]:
    event, data = "message", list[str]()
    async for line in lines:
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
