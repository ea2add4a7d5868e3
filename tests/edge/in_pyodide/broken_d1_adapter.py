"""Runs INSIDE Pyodide (edge tier): proves the tier catches a broken Cloudflare adapter.

The fixture monkeypatches `kernel.bindings.cloudflare.D1Database._prepare` to call the binding with
the wrong shape (`stmt.bind([a, b])`, one list, instead of `stmt.bind(a, b)`, varargs) — a
bug that passes on CPython against loosely typed fakes. The D1 contract must FAIL here; the
CPython side asserts that it does (test_edge_mesh.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _edge_harness import take_scratch

from kernel.bindings import cloudflare
from tests.contract.d1_contract import D1Contract


def _broken_prepare(self: Any, sql: str, params: Any) -> Any:
    stmt = self._db.prepare(sql)
    return stmt.bind(list(params)) if params else stmt  # BUG on purpose: list, not *params


class TestBrokenD1(D1Contract):
    @pytest.fixture
    def db(self) -> Iterator[cloudflare.D1Database]:
        original = cloudflare.D1Database._prepare
        cloudflare.D1Database._prepare = _broken_prepare  # type: ignore[method-assign]
        try:
            yield cloudflare.D1Database(take_scratch(self.env, "D1"))
        finally:
            cloudflare.D1Database._prepare = original  # type: ignore[method-assign]
