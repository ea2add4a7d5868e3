"""Server-sent events (the WHATWG `text/event-stream` format): one encoder, one parser.

The parser reads bytes as they arrive (a provider's token stream, a Worker's reply over a
service binding) and yields each event once its blank line came. It is bounded: an event larger
than `max_event_bytes` is a `StreamTooLarge` rather than unbounded memory, since the bytes may
come from a misbehaving model provider.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEADERS = {"content-type": CONTENT_TYPE, "cache-control": "no-store"}
MAX_EVENT_BYTES = 1024 * 1024


class StreamTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    event: str  # "message" when the stream names none (OpenAI's data-only streams)
    data: str

    def json(self) -> Any:
        """The data as JSON (ValueError when it is not)."""
        return json.loads(self.data)


def encode(event: str, payload: Any) -> bytes:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {data}\n\n".encode()


async def parse(
    chunks: AsyncIterator[bytes], max_event_bytes: int = MAX_EVENT_BYTES
) -> AsyncIterator[Event]:
    buffer = b""
    event, data = "message", list[str]()
    async for chunk in chunks:
        buffer += chunk
        while True:
            cut = _line_end(buffer)
            if cut is None:
                if len(buffer) > max_event_bytes:
                    raise StreamTooLarge(f"an event line is over {max_event_bytes} bytes")
                break
            end, skip = cut
            line = buffer[:end].decode("utf-8", errors="replace")
            buffer = buffer[end + skip :]
            if line == "":
                if data:
                    yield Event(event, "\n".join(data))
                event, data = "message", []
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
                if sum(len(d) for d in data) > max_event_bytes:
                    raise StreamTooLarge(f"an event is over {max_event_bytes} bytes")
    tail = buffer.decode("utf-8", errors="replace").rstrip("\r")
    if tail.startswith("data:"):  # a last line without its line end
        data.append(tail[5:].removeprefix(" "))
    if data:  # the stream ended without the final blank line: still an event
        yield Event(event, "\n".join(data))


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """(index, length) of the first line terminator: CRLF, LF or CR."""
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if cr < 0 or (0 <= lf < cr):
        return None if lf < 0 else (lf, 1)
    if cr + 1 == len(buffer):
        return None  # a CR at the end may be half of a CRLF: wait for more
    return cr, 2 if buffer[cr + 1] == 0x0A else 1
