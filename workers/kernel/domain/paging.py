"""Query parameters of list routes, parsed strictly: a bad limit or cursor is a 422, never
clamped or ignored (a client sending `limit=-1` or a stale cursor must learn it is wrong).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from kernel.runtime.errors import ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_LIMIT = re.compile(r"^[0-9]{1,6}$")
# `cursor` matches the responses' `next_cursor`; `after` is its older name, still accepted.
CURSOR_NAMES = ("cursor", "after")


@dataclass(frozen=True)
class Page:
    limit: int
    after: str | None  # the last id of the previous page


def only_params(query: Mapping[str, str], allowed: Collection[str] = ()) -> None:
    """Refuse query parameters a route does not read (a typo must not pass for a filter)."""
    for name in query:
        if name not in allowed:
            accepts = (
                f"this route accepts {', '.join(sorted(allowed))}"
                if allowed
                else "this list is not paginated and takes no query parameters"
            )
            raise ValidationFailed.field(name, f"unknown query parameter ({accepts})")


def page_params(
    query: Mapping[str, str],
    *,
    cursor: re.Pattern[str],
    default: int = DEFAULT_LIMIT,
    maximum: int = MAX_LIMIT,
    allowed: Collection[str] = (),
) -> Page:
    """`limit` (1..maximum) and `cursor` (an id matching `cursor`) of a keyset-paginated list."""
    only_params(query, {"limit", *CURSOR_NAMES, *allowed})
    limit = default
    if "limit" in query:
        raw = query["limit"]
        if not _LIMIT.match(raw) or not 1 <= int(raw) <= maximum:
            raise ValidationFailed.field(
                "limit", f"must be an integer from 1 to {maximum}, got {raw[:20]!r}"
            )
        limit = int(raw)
    given = [name for name in CURSOR_NAMES if name in query]
    if len(given) > 1:
        raise ValidationFailed.field(
            given[-1], "send the cursor once (`cursor`, or its older name `after`)"
        )
    after = query[given[0]] if given else None
    if after is not None and not cursor.match(after):
        raise ValidationFailed.field(given[0], "not a cursor from this list's `next_cursor`")
    return Page(limit=limit, after=after)
