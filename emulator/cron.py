"""Cron Triggers as Cloudflare runs them: 5-field expressions, UTC, read from wrangler.toml.

Cloudflare's dialect (developers.cloudflare.com/workers/configuration/cron-triggers): minute
0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, weekday 1-7 or SUN-SAT with
1 = Sunday; `*`, lists, ranges and `/` steps. When both day fields are restricted a day matches
if either does (classic cron). The Quartz extensions `L`, `W` and `#` are refused by name rather
than mis-scheduled. The emulator fires every trigger once at start (a restart must not wait for
the next tick to resume work) and then on schedule; missed ticks are not replayed, as on
Cloudflare.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kernel.runtime.logs import log

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_WEEKDAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
# (name, lowest, highest, names)
_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("weekday", 1, 7, _WEEKDAYS),
)
# Longest gap between two fires of a satisfiable expression: Feb 29 skips 2100 (8 years).
_HORIZON = timedelta(days=8 * 366 + 1)
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def _value(token: str, name: str, low: int, high: int, names: Mapping[str, int]) -> int:
    named = names.get(token.upper())
    if named is not None:
        return named
    if not token.isdigit():
        raise ValueError(f"{name}: {token!r} is not a number{' or a name' if names else ''}")
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            step = _value(step_text, f"{name} step", 1, high, {})
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, stop = (
                _value(first, name, low, high, names),
                _value(last, name, low, high, names),
            )
            if start > stop:
                raise ValueError(f"{name}: range {base!r} runs backwards")
        elif base:
            start = _value(base, name, low, high, names)
            stop = high if step_text else start  # "5/20": from 5 in steps of 20
        else:
            raise ValueError(f"{name}: empty list item in {text!r}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


def _weekday(when: datetime) -> int:
    return (when.weekday() + 1) % 7 + 1  # Python: Monday = 0; Cloudflare: Sunday = 1


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"{expression!r}: a cron trigger has 5 fields, not {len(parts)}")
        for part in parts:  # Quartz extensions: say so instead of failing as "not a number"
            upper = part.upper()
            stripped = upper
            for name in (*_MONTHS, *_WEEKDAYS):
                stripped = stripped.replace(name, "")
            if any(mark in stripped for mark in ("L", "W", "#")):
                raise ValueError(
                    f"{expression!r}: {part!r} (L, W, #) is not supported by the emulator"
                )
        minutes, hours, days, months, weekdays = (
            _field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)
        )
        cron = cls(
            expression,
            minutes,
            hours,
            days,
            months,
            weekdays,
            any_day=parts[2].startswith("*"),  # classic cron: "*/n" too
            any_weekday=parts[4].startswith("*"),
        )
        cron.next_after(_PROBE)  # refuse what can never fire ("0 0 31 2 *")
        return cron

    def _day_matches(self, when: datetime) -> bool:
        in_month, in_week = when.day in self.days, _weekday(when) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def matches(self, when: datetime) -> bool:
        when = when.astimezone(UTC)
        return (
            when.minute in self.minutes
            and when.hour in self.hours
            and when.month in self.months
            and self._day_matches(when)
        )

    def next_after(self, when: datetime) -> datetime:
        """The first minute strictly after `when` (UTC) at which this trigger fires."""
        t = when.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + _HORIZON
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise ValueError(f"{self.expression!r} never fires")


def load_triggers(config: Path) -> list[Cron]:
    """`[triggers] crons = [...]` of one wrangler.toml (none: an empty list)."""
    with config.open("rb") as handle:
        data = tomllib.load(handle)
    return [Cron.parse(str(e)) for e in data.get("triggers", {}).get("crons", [])]


@dataclass(frozen=True)
class ScheduledController:
    """What the runtime passes as `controller` (cron, scheduledTime in ms, type)."""

    cron: str
    scheduledTime: float  # ms since the epoch, the runtime's name
    type: str = "scheduled"

    def noRetry(self) -> None:
        """On Cloudflare: do not retry this event if it fails. The emulator never retries."""


Fire = Callable[[str, str, float], Awaitable[None]]


async def run_schedule(
    triggers: Mapping[str, Sequence[Cron]],
    fire: Fire,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Fire every (worker, cron) once now, then at each tick, until cancelled.

    `fire(worker, expression, scheduled_time)` gets unix seconds. A failing handler is logged
    and the schedule goes on, like a failed cron event on Cloudflare.
    """
    pairs = [(worker, cron) for worker, crons in triggers.items() for cron in crons]
    if not pairs:
        return
    cursor = clock()
    await _fire_all(fire, ((w, c) for w, c in pairs), cursor)
    while True:
        # Never before the last tick fired: a timer that wakes early must not fire it twice.
        base = datetime.fromtimestamp(max(clock(), cursor), UTC)
        upcoming = [(cron.next_after(base).timestamp(), worker, cron) for worker, cron in pairs]
        due = min(t for t, _, _ in upcoming)
        await sleep(max(0.0, due - clock()))
        cursor = due
        await _fire_all(fire, ((w, c) for t, w, c in upcoming if t == due), due)


async def _fire_all(fire: Fire, pairs: Iterable[tuple[str, Cron]], scheduled: float) -> None:
    for worker, cron in pairs:
        try:
            await fire(worker, cron.expression, scheduled)
        except Exception as exc:
            log(
                "cron_failed",
                level="error",
                worker=worker,
                cron=cron.expression,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
