"""Token budgets under concurrency, over HTTP: answers reserve before they run, so a burst of
parallel requests cannot overshoot the day's budget by more than one reservation each — unlike a
check-then-charge budget, where every request of the burst saw the same untouched budget."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import ingest, new_tenant
from tests.e2e.identity import OPERATOR, tuned_mesh

RESERVATION = 150


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai, EDGERAG_TOKEN_RESERVATION=str(RESERVATION))


QUESTIONS = [
    "Which light does chlorophyll absorb?",
    "Where does photosynthesis take place?",
    "What does chlorophyll reflect?",
    "Which cells hold chloroplasts?",
    "What colour light is reflected by leaves?",
    "Which light do plants absorb?",
    "Where are chloroplasts found?",
    "What happens to green light?",
]


async def test_a_burst_of_answers_stops_at_the_budget(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "burst")
    await ingest(
        client,
        admin,
        "Biology",
        "Photosynthesis takes place in the chloroplasts of plant cells. "
        "Chlorophyll absorbs red and blue light and reflects green light.",
    )
    budget = 2 * RESERVATION
    patched = await client.patch(
        f"/v1/tenants/{tenant_id}", json={"daily_token_budget": budget}, headers=OPERATOR
    )
    assert patched.status_code == 200, patched.text
    responses = await asyncio.gather(
        *(client.post("/v1/answer", json={"query": q}, headers=admin) for q in QUESTIONS)
    )
    statuses = sorted(r.status_code for r in responses)
    refused = [r for r in responses if r.status_code == 429]
    assert refused and all(r.json()["error"]["code"] == "token_budget_exhausted" for r in refused)
    assert set(statuses) <= {200, 429}, statuses
    spent = sum(r.json()["usage"]["total_tokens"] for r in responses if r.status_code == 200)
    state = (await client.get("/v1/rate-limit/status", headers=admin)).json()["token_budget"]
    assert state["used"] == spent and state["reserved"] == 0  # every reservation settled
    admitted = len(QUESTIONS) - len(refused)
    # A request is admitted only while used + reserved < budget, so at most budget/RESERVATION
    # run at once, and the day overshoots only by what they spent beyond their reservations.
    assert 1 <= admitted <= budget // RESERVATION
    assert spent - budget <= admitted * max(0, _largest(responses) - RESERVATION)


def _largest(responses: list[httpx.Response]) -> int:
    return max(
        (r.json()["usage"]["total_tokens"] for r in responses if r.status_code == 200), default=0
    )
