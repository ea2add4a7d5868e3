"""The per-request meter and its header (kernel.runtime.costs)."""

from __future__ import annotations

import asyncio

import pytest

from kernel.runtime import costs


def test_meter_counts_per_worker_and_round_trips_through_the_header() -> None:
    meter = costs.Meter("rag")
    meter.add("d1_rows_read", 3)
    meter.add("d1_rows_read", 2)
    meter.add("ai_tokens_in:@cf/baai/bge-small-en-v1.5", 12)
    meter.add("cpu_ms", 1.25)
    header = meter.encode()
    assert header == (
        '{"rag":{"ai_tokens_in:@cf/baai/bge-small-en-v1.5":12,"cpu_ms":1.25,"d1_rows_read":5}}'
    )
    gateway = costs.Meter("gateway")
    gateway.add("d1_rows_read", 1)
    gateway.absorb(header)
    assert gateway.units[("rag", "d1_rows_read")] == 5
    assert gateway.total("d1_rows_read") == 6


@pytest.mark.parametrize(
    "header",
    [None, "", "not json", "[1,2]", '{"rag":[1]}', '{"rag":{"x":-4}}', '{"rag":{"x":true}}'],
)
def test_a_malformed_header_adds_nothing(header: str | None) -> None:
    meter = costs.Meter("gateway")
    meter.absorb(header)
    assert meter.units == {}


def test_zero_and_negative_amounts_are_not_counted_and_series_are_bounded() -> None:
    meter = costs.Meter("ingest")
    meter.add("kv_reads", 0)
    meter.add("kv_reads", -1)
    assert meter.units == {}
    for i in range(costs.MAX_SERIES + 10):
        meter.add(f"m{i}")
    assert len(meter.units) == costs.MAX_SERIES


def test_the_current_meter_is_per_context_and_inherited_by_tasks() -> None:
    costs.add("kv_reads")  # outside a request: nowhere to count, and no error

    async def main() -> costs.Meter:
        with costs.metering(costs.Meter("rag")) as meter:
            await asyncio.gather(asyncio.to_thread(lambda: None), _count())
        assert costs.current() is None
        return meter

    async def _count() -> None:
        costs.add("kv_reads", 2)

    assert asyncio.run(main()).units == {("rag", "kv_reads"): 2.0}
