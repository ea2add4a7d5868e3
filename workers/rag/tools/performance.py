"""get_performance_analysis: recordings' measured dimensions over time, read as the caller.

The ingest Worker authorizes every read (a recording is visible to its owner, their teachers
and admins; anyone else gets a 404), so a student asking about a classmate learns nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from kernel.contracts.tools import PerformanceArgs, PerformanceResult, RecordingPerformance, Trend
from rag.tools.dispatch import Caller, Toolbox
from rag.tools.knowledge import ingest_get

SCAN = 100  # recordings looked at to find a user's latest


async def _performance(box: Toolbox, caller: Caller, recording: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "recording_id": recording["id"],
        "title": recording["title"],
        "owner_id": recording["owner_id"],
        "recorded_at": recording["created_at"],
        "duration_s": recording["duration_s"],
        "analysis_id": None,
    }
    listed = await ingest_get(box, caller, f"/recordings/{recording['id']}/analysis")
    done = next((a for a in listed["analyses"] if a["status"] == "done"), None)
    if done is not None:
        out.update(
            analysis_id=done["id"],
            analyzer=(done.get("analyzer") or {}).get("name"),
            dimensions=done["dimensions"],
            unmeasured=done["unmeasured"],
        )
    return out


def trends(recordings: list[RecordingPerformance]) -> list[Trend]:
    series: dict[str, tuple[str, list[float]]] = {}
    for r in reversed(recordings):  # oldest first
        for d in r.dimensions:
            series.setdefault(d.name, (d.label, []))[1].append(round(d.score, 4))
    return [
        Trend(name=n, label=label, scores=s, change=round(s[-1] - s[0], 4))
        for n, (label, s) in series.items()
    ]


async def get_performance_analysis(
    box: Toolbox, args: PerformanceArgs, caller: Caller
) -> BaseModel:
    if args.recording_id is not None:
        found = [await ingest_get(box, caller, f"/recordings/{args.recording_id}")]
    else:
        query = urlencode(
            {"owner_id": args.user_id or caller.principal, "status": "ready", "limit": SCAN}
        )
        found = (await ingest_get(box, caller, f"/recordings?{query}"))["recordings"]
        found = sorted(found, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    shown = [
        RecordingPerformance.model_validate(await _performance(box, caller, r))
        for r in found[: args.limit]
    ]
    return PerformanceResult(recordings=shown, trends=trends([r for r in shown if r.dimensions]))
