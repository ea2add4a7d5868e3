"""Runs INSIDE Pyodide (edge tier), in the `client` isolate, while the harness evicts the
ingest Worker's background work (plan step `control`): a document is accepted (202) but its
job never starts — an isolate that went away right after answering. Only the ingest Worker's
cron (`scheduled`, the next plan step) can resume it. Ids go to `cron_check.py` via
`_edge_harness.shared`.
"""

from __future__ import annotations

from typing import Any

import _edge_harness
from _edge_harness import gateway_call as call

OPERATOR_TOKEN = "edge-operator-token"  # = secrets.EDGERAG_OPERATOR_TOKEN in mesh_plan.json
TEXT = (
    "The heliotrope sundial in the east courtyard casts no shadow at the equinox. "
    "Caretakers rewind its brass gnomon every Tuesday before the bell."
)
POLLS = 5


async def main(env: Any, ctx: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"text": TEXT}
    out["tenant"] = await call(env, "POST", "/v1/tenants", OPERATOR_TOKEN, {"name": "edge-cron"})
    key = (out["tenant"]["json"] or {}).get("api_key")
    if not key:
        return out
    out["ingest"] = await call(
        env, "POST", "/v1/documents", key, {"title": "Sundial", "text": TEXT}
    )
    document_id = (out["ingest"]["json"] or {}).get("document_id")
    if not document_id:
        return out
    # Give a (wrongly) surviving job every chance to run: it must not have.
    out["polls"] = [
        await call(env, "GET", f"/v1/documents/{document_id}/status", key) for _ in range(POLLS)
    ]
    _edge_harness.shared["cron"] = {"key": key, "document_id": document_id, "text": TEXT}
    return out
