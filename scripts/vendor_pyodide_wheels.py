"""Vendor the Workers' Python dependencies (pydantic & co.) for `wrangler deploy`.

The pins are read from tests/edge/pyodide-requirements.txt, the one list the edge tier also
installs into Pyodide, so what is deployed is what the edge tier ran. Stdlib only: the
wrangler build steps run it with whatever `python3` is on PATH.

  fetch             pip download the pinned wheels (PyPI, Pyodide platform tag) into .wheels/pyodide/
                    unless they are all there already. Needs pip (`make pyodide-wheels` uses .venv).
  check             exit 1 listing the wheels missing from the cache.
  stage CONFIG_DIR  (wrangler build step) unpack the cache once into .wrangler/stage/python_modules/
                    and point CONFIG_DIR/python_modules at it. Missing wheels are fetched first,
                    except with CI=true, where they are an error (run `make pyodide-wheels`).

Why a symlink next to the config: wrangler reads vendored packages from `python_modules/` in
the directory of the config file (its project root) and refuses one inside `base_dir`, so the
unpacked tree lives beside the per-Worker stages and each config dir gets a link to it. All four
Workers vendor the same set. wrangler uploads every file under it as `python_modules/<path>`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "tests" / "edge" / "pyodide-requirements.txt"
CACHE = ROOT / ".wheels" / "pyodide"
STAGE = ROOT / ".wrangler" / "stage"
TARGET = STAGE / "python_modules"
STAMP = STAGE / "python_modules.stamp"  # outside TARGET: every file in TARGET is uploaded

# The python_workers_20260610 line: Pyodide 314 = CPython 3.14, emscripten ABI 2026_0. Must
# match the edge tier's Pyodide (tests/edge/fetch_wheels.sh reads it from pyodide-lock.json).
PLATFORM = "pyemscripten_2026_0_wasm32"
PY_VERSION = "3.14"
ABI = "cp314"
# Accepted wheel tags: pure Python, or compiled for exactly this Pyodide.
TAGS = ("py3-none-any", f"{ABI}-{ABI}-{PLATFORM}", f"{ABI}-abi3-{PLATFORM}")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _norm(name: str) -> str:
    """Distribution name as spelled in wheel file names (PEP 427 / 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def read_pins(path: Path = PINS) -> dict[str, str]:
    """{normalized name: version} from `name==version` lines; anything looser is an error."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)", line)
        if m is None:
            raise SystemExit(f"{path}: not an exact pin: {raw!r}")
        pins[_norm(m[1])] = m[2]
    return pins


def wheel_for(name: str, version: str, cache: Path = CACHE) -> Path | None:
    for tag in TAGS:
        hit = cache / f"{name}-{version}-{tag}.whl"
        if hit.is_file():
            return hit
    return None


def wheels(cache: Path = CACHE) -> tuple[list[Path], list[str]]:
    """(cached wheels for the pins, `name==version` of the missing ones)."""
    found, missing = [], []
    for name, version in sorted(read_pins().items()):
        whl = wheel_for(name, version, cache)
        if whl is None:
            missing.append(f"{name}=={version}")
        else:
            found.append(whl)
    return found, missing


def fetch(python: str = sys.executable) -> list[Path]:
    _, missing = wheels()
    if missing:
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"fetching {', '.join(missing)} for {PLATFORM} into {CACHE}", file=sys.stderr)
        # --no-deps: the pin list is complete (pydantic's own dependencies are pinned in it).
        cmd = [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        cmd += ["--no-deps", "--only-binary=:all:", "--platform", PLATFORM]
        cmd += ["--python-version", PY_VERSION, "--implementation", "cp"]
        cmd += ["--abi", ABI, "--abi", "none", "-d", str(CACHE), *missing]
        subprocess.run(cmd, check=True)
    found, missing = wheels()
    if missing:
        raise SystemExit(f"no {PLATFORM} wheel for: {', '.join(missing)}")
    return found


def _stamp_text(found: list[Path]) -> str:
    return "".join(f"{p.name} {p.stat().st_size}\n" for p in found)


def _unpack(whl: Path, dest: Path) -> None:
    """Install a wheel's files the way pip lays them out in site-packages (no scripts)."""
    data_prefix = re.compile(r"[^/]+\.data/(purelib|platlib)/")
    with zipfile.ZipFile(whl) as zf:
        for info in zf.infolist():
            name = info.filename
            m = data_prefix.match(name)
            if m is not None:
                name = name[m.end() :]
            elif re.match(r"[^/]+\.data/", name):
                continue  # scripts/headers/data: nothing a Worker imports
            if info.is_dir() or not name or "__pycache__" in name or name.endswith(".pyc"):
                continue
            out = (dest / name).resolve()
            if dest.resolve() not in out.parents:
                raise SystemExit(f"{whl.name}: unsafe path {info.filename!r}")
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)


def stage(config_dir: Path) -> None:
    found, missing = wheels()
    if missing:
        if _in_ci():
            raise SystemExit(
                f"Pyodide wheels missing from {CACHE}: {', '.join(missing)}; "
                "run `make pyodide-wheels` first (CI never downloads in the build step)"
            )
        venv_python = ROOT / ".venv" / "bin" / "python"
        found = fetch(str(venv_python) if venv_python.exists() else sys.executable)

    stamp = _stamp_text(found)
    if not (TARGET.is_dir() and STAMP.is_file() and STAMP.read_text() == stamp):
        STAGE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".python_modules-", dir=STAGE))
        tmp.chmod(0o755)
        for whl in found:
            _unpack(whl, tmp)
        STAMP.unlink(missing_ok=True)
        old = None
        if TARGET.exists():
            old = Path(tempfile.mkdtemp(prefix=".python_modules-old-", dir=STAGE))
            TARGET.rename(old / "python_modules")
        try:
            tmp.rename(TARGET)
        except OSError:  # a concurrent build got there first
            if not TARGET.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        STAMP.write_text(stamp)
        print(f"unpacked {len(found)} wheels into {TARGET.relative_to(ROOT)}", file=sys.stderr)

    link = config_dir.resolve() / "python_modules"
    want = os.path.relpath(TARGET, link.parent)
    if link.is_symlink():
        if os.readlink(link) == want:
            return
        link.unlink()
    elif link.exists():
        raise SystemExit(f"{link} exists and is not our symlink; remove it (it is generated)")
    link.symlink_to(want, target_is_directory=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"] and len(argv) == 1:
        fetch()
    elif argv[:1] == ["check"] and len(argv) == 1:
        _, missing = wheels()
        if missing:
            print(f"missing from {CACHE}: {', '.join(missing)}", file=sys.stderr)
            return 1
    elif argv[:1] == ["stage"] and len(argv) == 2:
        stage(Path(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
