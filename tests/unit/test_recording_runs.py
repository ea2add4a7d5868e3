"""ingest.recordings: how a stored analysis run reads (a run its Worker never finished reads as
failed after STALE_RUN_S), and what the tenant's dimension set keeps of an analyzer's answer."""

from __future__ import annotations

import time

from ingest import recordings
from kernel.contracts.analyzer import AnalyzerResponse, Dimension


def _row(status: str, age_s: float) -> dict[str, object]:
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - age_s))
    return {
        "id": "ana_1",
        "recording_id": "rec_1",
        "status": status,
        "requested_by": "u_1",
        "created_at": created,
        "finished_at": None,
        "analyzer": None,
        "dimensions": None,
        "segments": None,
        "unmeasured": None,
        "ignored": None,
        "error_code": None,
        "error_message": None,
    }


def test_a_run_left_running_reads_as_interrupted_only_once_stale() -> None:
    fresh = recordings.analysis_public(_row("running", 60))
    assert fresh["status"] == "running" and "error" not in fresh
    stale = recordings.analysis_public(_row("running", recordings.STALE_RUN_S + 60))
    assert stale["status"] == "failed"
    assert stale["error"]["code"] == "analysis_interrupted"


def test_the_tenant_set_decides_what_is_kept() -> None:
    asked = [Dimension(name="loudness", label="Loudness"), Dimension(name="phrasing", label="P")]
    answer = AnalyzerResponse.model_validate(
        {
            "analyzer": {"name": "x"},
            "dimensions": [
                {"name": "loudness", "score": 0.5, "uncertainty": 0.1},
                {"name": "extra", "score": 0.9, "uncertainty": 0.1},
            ],
        }
    )
    dims, segments, unmeasured, ignored = recordings.keep_asked(answer, asked)
    assert [d["name"] for d in dims] == ["loudness"] and dims[0]["label"] == "Loudness"
    assert unmeasured == ["phrasing"] and ignored == ["extra"] and segments == []
