"""Edge tier fixtures: install the toolchain when missing, run harness.mjs plans once per session.

The toolchain (tests/edge/node_modules: Node 22, Miniflare, Pyodide; tests/edge/.wheels*: PyPI
wheels for Pyodide) is installed on first use with the machine's `npm` and this interpreter's
pip. Without npm the tier is skipped locally and FAILS under CI=true (never passes by skipping).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
NODE = HERE / "node_modules" / ".bin" / "node"
WHEEL_DIRS = {
    HERE / ".wheels": HERE / "pyodide-requirements.txt",
    HERE / ".wheels-test": HERE / "pyodide-test-requirements.txt",
}
SAMPLE_PLAN = HERE / "sample_plan.json"
MESH_PLAN = HERE / "mesh_plan.json"
TIMEOUT = float(os.environ.get("EDGE_HARNESS_TIMEOUT", "420"))
EXIT_MINIFLARE_START = 75
ATTEMPTS = 3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "edge: runs real entry.py files inside Pyodide under Node 22 + Miniflare"
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _pins(requirements: Path) -> set[str]:
    return {
        re.sub(r"[-_.]+", "_", ln.split("==")[0].strip()).lower()
        for ln in requirements.read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    }


def ensure_toolchain() -> Path:
    """Node 22 + Miniflare + Pyodide (npm ci) and the Pyodide wheels (fetch_wheels.sh)."""
    if not NODE.exists():
        npm = shutil.which("npm")
        if npm is None:
            msg = "npm not found: the edge tier installs Node 22 + Miniflare + Pyodide with it"
            if in_ci():
                pytest.fail(msg)  # CI must never pass by skipping the edge tier
            pytest.skip(msg)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=900,
        )
        assert NODE.exists(), f"{NODE} missing after npm ci"
    for wheel_dir, requirements in WHEEL_DIRS.items():
        have = {p.name.split("-")[0].lower() for p in wheel_dir.glob("*.whl")}
        if not _pins(requirements) <= have:
            env = dict(os.environ, PYTHON=sys.executable)
            subprocess.run(
                ["bash", str(HERE / "fetch_wheels.sh")], env=env, check=True, timeout=900
            )
            break
    return NODE


def run_harness(plan: Path, *extra: str) -> dict[str, Any]:
    """Run harness.mjs on a plan; retry Miniflare's occasional start-up failure (3 attempts)."""
    node = ensure_toolchain()
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        started = time.monotonic()
        proc = subprocess.run(
            [str(node), str(HERE / "harness.mjs"), "--plan", str(plan), *extra],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        elapsed = time.monotonic() - started
        startup_flake = proc.returncode == EXIT_MINIFLARE_START or (
            proc.returncode != 0
            and re.search(r"ERR_ASSERTION|[Aa]ssertion failed", proc.stderr or "") is not None
        )
        last = (
            f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
            f"stderr:\n{proc.stderr[-8000:]}"
        )
        if proc.returncode == 0:
            lines = proc.stdout.splitlines()
            result_lines = [ln for ln in lines if ln.startswith("RESULT ")]
            assert result_lines, last
            result: dict[str, Any] = json.loads(result_lines[-1][len("RESULT ") :])
            result["report"] = [ln for ln in lines if ln.startswith(("heap ", "timing "))]
            result["wall_s"] = round(elapsed, 1)
            result["attempts"] = attempt
            result["stderr"] = proc.stderr
            sys.stderr.write(
                f"\n[{plan.name}]\n" + "\n".join(result["report"]) + f"\nwall {elapsed:.1f} s\n"
            )
            return result
        if not startup_flake:
            break
    pytest.fail(f"edge harness failed on {plan.name}:\n{last}")


@pytest.fixture(scope="session")
def harness() -> Any:
    """`run_harness(plan, *args)` for tests that run their own plan."""
    return run_harness


@pytest.fixture(scope="session")
def edge_node() -> Path:
    return ensure_toolchain()


@pytest.fixture(scope="session")
def mesh_run() -> dict[str, Any]:
    """One harness run of mesh_plan.json: the four real Workers + smoke + contract suites."""
    return run_harness(MESH_PLAN)
