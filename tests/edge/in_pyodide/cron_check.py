"""Runs INSIDE Pyodide (edge tier), in the `client` isolate, after the plan's `scheduled`
step fired the ingest Worker's cron: the document `cron_setup.py` left queued is now ready
and searchable."""

from __future__ import annotations

from typing import Any

import _edge_harness
from _edge_harness import gateway_call as call

POLL_ATTEMPTS = 30


async def main(env: Any, ctx: Any) -> dict[str, Any]:
    state = _edge_harness.shared.get("cron")
    if state is None:
        return {"error": "cron_setup.py did not run or failed"}
    key, document_id = state["key"], state["document_id"]
    out: dict[str, Any] = {"document_id": document_id, "text": state["text"], "polls": 0}
    for attempt in range(1, POLL_ATTEMPTS + 1):
        out["status"] = await call(env, "GET", f"/v1/documents/{document_id}/status", key)
        out["polls"] = attempt
        if (out["status"]["json"] or {}).get("status") in ("ready", "failed"):
            break
    out["search"] = await call(
        env, "POST", "/v1/search", key, {"query": "heliotrope sundial gnomon", "top_k": 5}
    )
    return out
