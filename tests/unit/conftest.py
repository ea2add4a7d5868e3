"""Shared unit-test fixtures: an in-memory emulated D1 with the repo's migrations applied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.d1 import EmulatedD1
from emulator.mesh import MIGRATIONS_DIR


@pytest.fixture
def d1() -> Iterator[EmulatedD1]:
    db = EmulatedD1(None, migrations_dir=MIGRATIONS_DIR)
    db.apply_migrations()
    yield db
    db.close()
