"""Edge tier: `ingest.audio.probe` inside real Pyodide with the vendored mutagen wheel.

One harness run of a plan written here: an `audio` isolate with the kernel bundle, the
pinned wheels (tests/edge/.wheels, i.e. what the Workers vendor, mutagen included), an R2
binding on Miniflare, the package workers/ingest/audio/ mounted as `ingest.audio` and the
fixtures of tests/fixtures/audio/ mounted as the package `audio_fixtures`. The script
(in_pyodide/audio_probe.py) probes every fixture and reports what it found, how many bytes it
read, and how long importing mutagen took.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "audio"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())

pytestmark = pytest.mark.edge


def _plan(path: Path) -> Path:
    mounts = {"ingest/audio": str(ROOT / "workers" / "ingest" / "audio")}
    for name in [*EXPECTED, "expected.json"]:
        mounts[f"audio_fixtures/{name}"] = str(FIXTURES / name)
    plan = {
        "_comment": "written by tests/edge/test_edge_audio.py",
        "workersDir": str(ROOT / "workers"),
        "wheels": str(HERE / ".wheels"),
        "resources": {"r2": ["R2"]},
        "workers": {
            "audio": {
                "module": "",
                "bundle": {"include": ["kernel"]},
                "mounts": mounts,
                "bindings": ["R2"],
            }
        },
        "steps": [{"script": str(HERE / "in_pyodide" / "audio_probe.py"), "worker": "audio"}],
    }
    path.write_text(json.dumps(plan, indent=2))
    return path


@pytest.fixture(scope="module")
def audio_run(harness: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result: dict[str, Any] = harness(_plan(tmp_path_factory.mktemp("audio") / "plan.json"))
    return result


@pytest.fixture(scope="module")
def found(audio_run: dict[str, Any]) -> dict[str, Any]:
    [step] = audio_run["steps"]
    assert step["kind"] == "script" and step["ok"], step
    result: dict[str, Any] = step["result"]
    return result


def test_mutagen_is_the_vendored_wheel_and_imports_lazily(found: dict[str, Any]) -> None:
    assert found["python"].startswith("3.14.") and found["platform"] == "emscripten"
    m = found["mutagen"]
    assert m["version"] == "1.48.1"
    assert m["imported_before"] == []  # importing kernel does not drag mutagen in
    print(
        f"\nmutagen in Pyodide: import mutagen {m['import_package_ms']} ms, all parsers"
        f" {m['import_all_parsers_ms']} ms ({m['modules_added']} modules)"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_probes_in_pyodide(found: dict[str, Any], name: str) -> None:
    want, got = EXPECTED[name], found["probes"][name]
    assert "error" not in got, got
    assert (got["format"], got["codec"], got["sample_rate"], got["channels"]) == (
        want["format"],
        want["codec"],
        want["sample_rate"],
        want["channels"],
    )
    assert got["duration_s"] == pytest.approx(want["duration_s"], abs=want["duration_tolerance_s"])
    assert got["reads"] == 1 and got["bytes_read"] == want["size"]


def test_probe_through_r2_range_reads_on_miniflare(found: dict[str, Any]) -> None:
    for name, got in found["r2"].items():
        want = EXPECTED[name]
        assert (got["format"], got["codec"], got["channels"]) == (
            want["format"],
            want["codec"],
            want["channels"],
        )
        assert got["duration_s"] == pytest.approx(
            want["duration_s"], abs=want["duration_tolerance_s"]
        )
        assert got["ranges"] == [[0, want["size"]]], got["ranges"]
    edges = found["r2_edges"]
    data = (FIXTURES / "stereo_48000.flac").read_bytes()
    assert edges["middle"] == data[4:8].hex()
    assert edges["past_end"] == len(data) - 36100
    assert edges["beyond"] is True and edges["missing"] is True


def test_large_recording_reads_only_head_and_tail(
    found: dict[str, Any], audio_run: dict[str, Any]
) -> None:
    big = found["large_wav"]
    assert big["duration_s"] == pytest.approx((50 * 1024 * 1024 - 44) / 4 / 44100, abs=1e-6)
    assert big["reads"] == 2 and big["bytes_read"] < 1024 * 1024
    assert found["pdf_as_wav"] == "audio_type_mismatch"
    heap = audio_run["workers"]["audio"]
    print(f"\naudio isolate heap: {heap['heapMB']} MB loaded, {heap['heapAfterStepsMB']} MB after")
    assert heap["heapAfterStepsMB"] < 64
