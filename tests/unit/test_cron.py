"""Cron triggers: the 5-field matcher (Cloudflare's dialect, UTC), the schedule loop, and that
every Worker whose wrangler.toml declares crons has a `scheduled` handler the emulator fires."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator.cron import Cron, load_triggers, run_schedule
from emulator.mesh import WRANGLER_CONFIGS, build_mesh


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- parsing and matching -----------------------------------------------------------------


def test_every_other_minute() -> None:
    cron = Cron.parse("*/2 * * * *")
    assert cron.minutes == frozenset(range(0, 60, 2))
    assert cron.matches(at("2026-03-04 10:58"))
    assert not cron.matches(at("2026-03-04 10:59"))


def test_lists_ranges_and_stepped_ranges() -> None:
    cron = Cron.parse("0,15,30-32,50-59/4 9-17 * * *")
    assert cron.minutes == frozenset({0, 15, 30, 31, 32, 50, 54, 58})
    assert cron.hours == frozenset(range(9, 18))
    assert Cron.parse("5/20 * * * *").minutes == frozenset({5, 25, 45})


def test_names_are_case_insensitive_and_weekdays_count_from_sunday_as_on_cloudflare() -> None:
    # Cloudflare: weekdays 1-7 with 1 = Sunday ("0 17 * * sun" == "0 17 * * 1").
    assert Cron.parse("0 17 * * sun").weekdays == Cron.parse("0 17 * * 1").weekdays == {1}
    assert Cron.parse("10 7 * * mon-fri").weekdays == Cron.parse("10 7 * * 2-6").weekdays
    weekdays = Cron.parse("10 7 * * MON-FRI")
    assert weekdays.matches(at("2026-03-06 07:10"))  # a Friday
    assert not weekdays.matches(at("2026-03-07 07:10"))  # a Saturday
    assert Cron.parse("0 0 1 jan,Jul *").months == frozenset({1, 7})


def test_day_of_month_or_weekday_when_both_are_restricted() -> None:
    cron = Cron.parse("0 12 1 * MON")  # the 1st, or any Monday
    assert cron.matches(at("2026-04-01 12:00"))  # Wednesday the 1st
    assert cron.matches(at("2026-04-06 12:00"))  # Monday the 6th
    assert not cron.matches(at("2026-04-07 12:00"))
    only_day = Cron.parse("0 12 1 * *")
    assert not only_day.matches(at("2026-04-06 12:00"))


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *",  # four fields
        "* * * * * *",  # six (seconds): Cloudflare has five
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 0",  # weekdays are 1-7 on Cloudflare
        "*/0 * * * *",
        "5-1 * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "0 0 31 2 *",  # never fires
    ],
)
def test_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        Cron.parse(expression)


@pytest.mark.parametrize("expression", ["0 18 * * 6L", "23 59 LW * *", "0 10 * * MON#2"])
def test_quartz_extensions_are_named_as_not_emulated(expression: str) -> None:
    with pytest.raises(ValueError, match="not supported by the emulator"):
        Cron.parse(expression)


# --- next fire time --------------------------------------------------------------------------


def test_next_after_is_strictly_later_and_on_the_minute() -> None:
    cron = Cron.parse("*/2 * * * *")
    assert cron.next_after(at("2026-01-01 00:00:30")) == at("2026-01-01 00:02")
    assert cron.next_after(at("2026-01-01 00:02")) == at("2026-01-01 00:04")
    assert cron.next_after(at("2026-12-31 23:59:59")) == at("2027-01-01 00:00")


def test_next_after_skips_to_rare_dates() -> None:
    assert Cron.parse("0 0 29 2 *").next_after(at("2026-03-01 00:00")) == at("2028-02-29 00:00")
    assert Cron.parse("30 9 * * SUN").next_after(at("2026-03-04 10:00")) == at("2026-03-08 09:30")
    assert Cron.parse("0 3 31 * *").next_after(at("2026-04-01 00:00")) == at("2026-05-31 03:00")


# --- wrangler.toml ---------------------------------------------------------------------------


def test_triggers_come_from_wrangler_toml(tmp_path: Path) -> None:
    config = tmp_path / "wrangler.toml"
    config.write_text('name = "x"\n[triggers]\ncrons = ["*/5 * * * *", "0 3 * * *"]\n')
    assert [c.expression for c in load_triggers(config)] == ["*/5 * * * *", "0 3 * * *"]
    (tmp_path / "none.toml").write_text('name = "y"\n')
    assert load_triggers(tmp_path / "none.toml") == []


def test_every_worker_with_crons_has_a_scheduled_handler() -> None:
    """ARCHITECTURE §2: every trigger a wrangler.toml declares has its handler in entry.py."""
    with_crons = {w for w, path in WRANGLER_CONFIGS.items() if load_triggers(path)}
    assert "ingest" in with_crons
    for worker in with_crons:
        entry = importlib.import_module(f"{worker}.entry")
        handler = getattr(entry.Default, "scheduled", None)
        assert handler is not None and inspect.iscoroutinefunction(handler), worker
        # The documented Python signature: scheduled(self, controller, env, ctx).
        assert list(inspect.signature(handler).parameters)[:4] == [
            "self",
            "controller",
            "env",
            "ctx",
        ]


def test_the_mesh_knows_each_workers_triggers(tmp_path: Path) -> None:
    mesh = build_mesh(tmp_path, operator_token=None, ai=object())
    assert {w: [c.expression for c in cs] for w, cs in mesh.triggers.items()} == {
        w: [c.expression for c in load_triggers(p)]
        for w, p in WRANGLER_CONFIGS.items()
        if load_triggers(p)
    }


# --- the schedule loop (clock and sleep injected: no wall time) ------------------------------


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_run_schedule_fires_once_at_start_then_on_each_tick() -> None:
    clock = FakeClock(at("2026-01-01 00:00:30"))
    fired: list[tuple[str, str, datetime]] = []

    async def fire(worker: str, expression: str, scheduled: float) -> None:
        fired.append((worker, expression, datetime.fromtimestamp(scheduled, UTC)))
        if len(fired) == 4:
            raise asyncio.CancelledError

    triggers = {"ingest": [Cron.parse("*/2 * * * *")], "other": [Cron.parse("3 * * * *")]}
    with pytest.raises(asyncio.CancelledError):
        await run_schedule(triggers, fire, clock=clock.time, sleep=clock.sleep)
    assert fired == [
        ("ingest", "*/2 * * * *", at("2026-01-01 00:00:30")),  # at start
        ("other", "3 * * * *", at("2026-01-01 00:00:30")),
        ("ingest", "*/2 * * * *", at("2026-01-01 00:02")),
        ("other", "3 * * * *", at("2026-01-01 00:03")),
    ]
    assert clock.sleeps == [90.0, 60.0]


async def test_run_schedule_survives_a_failing_handler_and_never_fires_a_tick_twice() -> None:
    clock = FakeClock(at("2026-01-01 00:00:00"))
    fired: list[float] = []

    async def early_sleep(seconds: float) -> None:
        clock.sleeps.append(seconds)
        clock.now += seconds - 0.5  # a timer may wake a little early
        await asyncio.sleep(0)

    async def fire(worker: str, expression: str, scheduled: float) -> None:
        fired.append(scheduled)
        if len(fired) == 4:
            raise asyncio.CancelledError
        raise RuntimeError("handler failed")  # logged; the schedule goes on

    with pytest.raises(asyncio.CancelledError):
        await run_schedule(
            {"w": [Cron.parse("* * * * *")]}, fire, clock=clock.time, sleep=early_sleep
        )
    start = at("2026-01-01 00:00").timestamp()
    assert fired == [start, start + 60, start + 120, start + 180]
