"""What one request costs on Cloudflare's bill, counted per Worker (issue 16, first part).

A `Meter` holds billable units keyed by (worker, metric): D1 rows read/written, KV and R2
operations, Vectorize queried/stored dimensions, Workers AI calls and tokens per model,
subrequests and CPU ms. The current meter lives in a ContextVar (like tracing's current
span), so tasks a handler starts inherit it. A Worker's reply carries its meter in
`COST_HEADER` as compact JSON; the caller `absorb`s it, so the gateway ends up with the
whole request's usage.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar

COST_HEADER = "x-edgerag-cost"
MAX_HEADER_BYTES = 8 * 1024  # a reply header that grew past this is dropped, never sent
MAX_SERIES = 256  # (worker, metric) pairs one request may hold; more are not counted

Key = tuple[str, str]


class Meter:
    """Units one request used, by Worker and metric (metric names may carry a model:
    `ai_tokens_in:@cf/baai/bge-small-en-v1.5`)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.units: dict[Key, float] = {}

    def add(self, metric: str, amount: float = 1.0, *, worker: str | None = None) -> None:
        if amount <= 0:
            return
        key = (worker or self.worker, metric)
        if key not in self.units and len(self.units) >= MAX_SERIES:
            return
        self.units[key] = self.units.get(key, 0.0) + amount

    def absorb(self, header: str | None) -> None:
        """Add what a called Worker reported; a malformed header adds nothing."""
        for (worker, metric), amount in decode(header).items():
            self.add(metric, amount, worker=worker)

    def total(self, metric: str) -> float:
        return sum(v for (_, m), v in self.units.items() if m == metric)

    def encode(self) -> str:
        return encode(self.units)


def encode(units: dict[Key, float]) -> str:
    """{"worker": {"metric": n}} with integers where exact: short, and readable by people."""
    nested: dict[str, dict[str, float | int]] = {}
    for (worker, metric), amount in sorted(units.items()):
        value = int(amount) if amount == int(amount) else round(amount, 3)
        nested.setdefault(worker, {})[metric] = value
    text = json.dumps(nested, separators=(",", ":"))
    return text if len(text.encode()) <= MAX_HEADER_BYTES else "{}"


def decode(header: str | None) -> dict[Key, float]:
    if not header or len(header) > MAX_HEADER_BYTES:
        return {}
    try:
        nested = json.loads(header)
    except ValueError:
        return {}
    out: dict[Key, float] = {}
    if not isinstance(nested, dict):
        return out
    for worker, metrics in nested.items():
        if not isinstance(metrics, dict):
            continue
        for metric, amount in metrics.items():
            ok = isinstance(amount, int | float) and not isinstance(amount, bool)
            if ok and amount > 0 and amount != float("inf"):
                out[(str(worker), str(metric))] = float(amount)
    return out


_CURRENT: ContextVar[Meter | None] = ContextVar("edgerag_meter", default=None)


def current() -> Meter | None:
    return _CURRENT.get()


def add(metric: str, amount: float = 1.0) -> None:
    """Count on the current request's meter; outside a request (cron, startup) a no-op."""
    meter = _CURRENT.get()
    if meter is not None:
        meter.add(metric, amount)


@contextlib.contextmanager
def metering(meter: Meter) -> Iterator[Meter]:
    token = _CURRENT.set(meter)
    try:
        yield meter
    finally:
        _CURRENT.reset(token)
