"""Edge tier: the harness runs Python Workers inside real Pyodide against real Miniflare bindings.

The sample plan (sample_worker/) checks the harness itself: every binding kind, errors, scripts
and suites. The real Workers run in test_edge_mesh.py. conftest.py installs the toolchain when
missing. EDGE_PLAN runs another plan here; EDGE_HARNESS_TIMEOUT changes the per-run limit.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PLAN = Path(os.environ.get("EDGE_PLAN", HERE / "sample_plan.json"))
TIMEOUT = 240

pytestmark = pytest.mark.edge


@pytest.fixture(scope="module")
def run(harness: Any) -> dict[str, Any]:
    result: dict[str, Any] = harness(PLAN)
    return result


def _step(run: dict[str, Any], index: int) -> dict[str, Any]:
    step: dict[str, Any] = run["steps"][index]
    assert step["kind"] != "error", step
    return step


@pytest.mark.skipif(PLAN.name != "sample_plan.json", reason="asserts on the sample plan")
class TestSamplePlan:
    def test_harness_ran_and_reported(self, run: dict[str, Any]) -> None:
        assert run["ok"], run
        assert run["migrations"]["DB"] == ["0001_notes.sql", "0002_seed.sql"]
        assert any(line.startswith("heap sample: ") for line in run["report"])
        assert any(line.startswith("heap peer: ") for line in run["report"])

    def test_heap_within_isolate_limit(self, run: dict[str, Any]) -> None:
        for name, worker in run["workers"].items():
            assert 0 < worker["heapMB"] < 128, (name, worker)
            assert worker["heapAfterStepsMB"] < 128, (name, worker)

    def test_entrypoint_introspection(self, run: dict[str, Any]) -> None:
        peer = run["workers"]["peer"]["entrypoints"]["workerEntrypoints"]
        assert peer == [{"className": "Default", "methodNames": ["add", "fetch"]}]
        # least privilege: a worker gets only the bindings its plan lists
        assert run["workers"]["peer"]["bindings"] == []

    def test_roundtrip_through_every_binding(self, run: dict[str, Any]) -> None:
        step = _step(run, 0)
        assert step["status"] == 200, step
        assert step["headers"]["x-worker"] == "sample"
        body = step["json"]
        assert body["method"] == "POST"
        # D1 (real Miniflare sqlite, FTS5 trigger from the migration, bound params)
        assert body["d1"]["rows"] == [{"id": 2, "tenant_id": "t1", "body": "hello greeting world"}]
        assert body["d1"]["fts"] == [2]
        assert body["d1"]["seeded"] == 1
        # KV + R2 (real Miniflare)
        assert body["kv"] == {"value": "hello greeting world", "metadata": {"v": 1}}
        assert body["r2"] == {
            "text": "hello greeting world",
            "meta": {"kind": "note"},
            "missing": True,
        }
        # AI + Vectorize stand-ins
        assert body["ai"]["shape"] == [3, 384]
        assert [r["id"] for r in body["ai"]["rerank"]][:2] == [0, 2]
        assert body["ai"]["generated"].startswith("[stand-in ")
        vec = body["vectorize"]
        assert vec["ids"] == ["t1-0", "t1-2"]  # namespace + $ne filter
        assert vec["metadata"][0] == {"i": 0, "kind": "note"}
        assert vec["other_namespace"] == 0
        assert "topK" in vec["topk_error"]
        assert vec["get"] == ["t1-0"]
        # Service binding: HTTP over the binding and JS RPC
        peer = body["peer"]
        assert peer["status"] == 200 and peer["header"] == "yes"
        assert peer["json"]["echo"] == {"tenant": "t1"}
        assert peer["json"]["tenant_header"] == "t1"
        assert peer["json"]["url"] == "https://peer.internal/echo"
        assert peer["sum"] == 5

    def test_pydantic_validation_error_maps_to_422(self, run: dict[str, Any]) -> None:
        step = _step(run, 1)
        assert step["status"] == 422
        assert "validation error" in step["json"]["error"]

    def test_uncaught_exception_is_a_500_with_traceback(self, run: dict[str, Any]) -> None:
        step = _step(run, 2)
        assert step["status"] == 500
        assert "RuntimeError: boom" in step["error"]

    def test_script_runs_inside_pyodide(self, run: dict[str, Any]) -> None:
        step = _step(run, 3)
        assert step["ok"], step
        res = step["result"]
        assert res["python"].startswith("3.14.")
        assert res["platform"] == "emscripten"
        assert res["pydantic"] == "2.14.3"
        assert res["notes"] == 2 and res["var"] == "edge"
        assert res["has_numpy"] is False

    def test_suite_runs_inside_pyodide(self, run: dict[str, Any]) -> None:
        step = _step(run, 4)
        outcomes = {t["test"]: t["outcome"] for t in step["tests"]}
        expected_failure = "TestD1::test_this_one_fails_on_purpose"
        assert outcomes.pop(expected_failure) == "failed"
        assert outcomes and set(outcomes.values()) == {"passed"}, step["tests"]


def test_bad_plan_fails_cleanly(tmp_path: Path, edge_node: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "workersDir": str(HERE / "sample_worker"),
                "workers": {"x": {"module": "does_not.exist"}},
            }
        )
    )
    proc = subprocess.run(
        [str(edge_node), str(HERE / "harness.mjs"), "--plan", str(plan)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 1
    assert "does_not" in proc.stdout
