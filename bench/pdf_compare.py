"""`make bench-pdf`: our PDF extractor vs pypdf on real PDFs, both scored against poppler.

Evidence for the "keep our parser or switch to pypdf" decision (docs/decisions.md). Nothing here
is a test; it prints a table and writes bench/results/pdf_compare.json.

Corpus: every PDF (and .pdf.gz) shipped by the Debian documentation packages in ``PACKAGES``,
copied (gunzipped) into .bench-cache/pdf/corpus and de-duplicated by content. Missing packages
are reported with the apt-get command that installs them; without pdftotext the run is skipped.

Reference: ``pdftotext -enc UTF-8`` in its default mode. Not ``-layout`` (it keeps the physical
layout, so two columns come out interleaved line by line: a bad word *order* reference) and not
``-raw`` (content-stream order: that is what our extractor emits, so it would grade us against
ourselves). The default mode reconstructs reading order (columns, then lines) from geometry.

Metrics, after the same normalization for all three texts (NFKC, lowercase, soft hyphens
dropped, a hyphen at a line end joined with the next line's word, words = ``\\w+`` runs, so
punctuation never counts):
- recall / precision: multiset overlap of the document's words with the reference's;
- order: per page, LCS(reference words, extracted words) / len(reference words) (bit-parallel
  LCS), averaged over pages with at least 5 reference words; bounded above by recall;
- pages/s (extraction only, imports excluded) and peak RSS growth during extraction, each file
  in a fresh child interpreter (at most 2 at a time) with a timeout and a 4 GB address-space cap;
- failures: errors, crashes (an exception that is not the library's own error type, or a dead
  child), timeouts, and empty output where the reference has text;
- damaged files: truncations, byte flips, zeroed blocks of a few corpus files: does each
  extractor recover text, fail with its own clear error, crash, or hang?
- bundle: .py bytes of our package vs pypdf's; Pyodide (tests/edge/node_modules) import time and
  heap growth, and one extraction inside Pyodide, for both.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".bench-cache" / "pdf"
RESULTS = REPO / "bench" / "results" / "pdf_compare.json"
FIXTURES = REPO / "tests" / "fixtures" / "pdfs"
OUR_PACKAGE = REPO / "workers" / "ingest" / "extract" / "pdf"
PYODIDE_MJS = REPO / "tests" / "edge" / "node_modules" / "pyodide" / "pyodide.mjs"
EDGE_WHEELS = REPO / "tests" / "edge" / ".wheels"
NODE = REPO / "node_modules" / ".bin" / "node"
PYPDF_PIN = "pypdf==7.1.0"

# Debian packages whose PDFs make the corpus: TeX engines of many vintages (pdfTeX, XeTeX/
# xdvipdfmx, LuaTeX), Ghostscript/Distiller-made files, and a few non-TeX manuals.
PACKAGES = [
    "texlive-latex-base-doc",
    "texlive-latex-recommended-doc",
    "texlive-fonts-recommended-doc",
    "texlive-humanities-doc",
    "r-doc-pdf",
    "gnuplot-doc",
    "octave-doc",
    "maxima-doc",
    "python-reportlab-doc",
    "docbook-xsl-doc-pdf",
    "live-manual-pdf",
    "auto-multiple-choice-doc-pdf",
    "why3-doc-pdf",
    "siscone-doc-pdf",
    "camlidl-doc",
    "gri-pdf-doc",
    "freefem-doc",
    "c++-annotations-pdf",
    "ghostscript-doc",
]
EXTRACTORS = ("ours", "pypdf")
MIN_REF_WORDS = 20  # files whose reference has fewer words are not scored (scans, drawings)
MIN_PAGE_WORDS = 5  # pages with fewer reference words do not enter the order average
MEM_CAP = 4 * 1024**3


# ------------------------------------------------------------------------------------------
# Text normalization and metrics
# ------------------------------------------------------------------------------------------

_HYPHEN_BREAK = re.compile(r"(\w)[-\u2010]\s*\n\s*(\w)")
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("\u00ad", "")
    return _WORD.findall(_HYPHEN_BREAK.sub(r"\1\2", text))


def lcs_length(ref: list[int], hyp: list[int]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö):
    O(len(hyp) * len(ref) / wordsize), exact."""
    if not ref or not hyp:
        return 0
    masks: dict[int, int] = {}
    for i, symbol in enumerate(ref):
        masks[symbol] = masks.get(symbol, 0) | (1 << i)
    full = (1 << len(ref)) - 1
    row = full
    for symbol in hyp:
        match = masks.get(symbol)
        if match is not None:
            u = row & match
            row = ((row + u) | (row - u)) & full
    return len(ref) - row.bit_count()


def score(ref_pages: list[str], hyp_pages: list[str]) -> dict[str, Any]:
    """Word recall/precision over the document, reading order per page."""
    ids: dict[str, int] = {}
    ref_w = [[ids.setdefault(w, len(ids)) for w in words(p)] for p in ref_pages]
    hyp_w = [[ids.setdefault(w, len(ids)) for w in words(p)] for p in hyp_pages]
    ref_bag = Counter(w for page in ref_w for w in page)
    hyp_bag = Counter(w for page in hyp_w for w in page)
    common = sum((ref_bag & hyp_bag).values())
    n_ref, n_hyp = sum(ref_bag.values()), sum(hyp_bag.values())
    orders = []
    for i, ref_page in enumerate(ref_w):
        if len(ref_page) < MIN_PAGE_WORDS:
            continue
        hyp_page = hyp_w[i] if i < len(hyp_w) else []
        orders.append(lcs_length(ref_page, hyp_page) / len(ref_page))
    return {
        "ref_words": n_ref,
        "words": n_hyp,
        "recall": common / n_ref if n_ref else None,
        "precision": common / n_hyp if n_hyp else None,
        "order": statistics.fmean(orders) if orders else None,
        "pages_scored": len(orders),
        "page_count_matches": len(ref_pages) == len(hyp_pages),
    }


# ------------------------------------------------------------------------------------------
# Corpus
# ------------------------------------------------------------------------------------------


def installed_pdfs(packages: list[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    found: list[tuple[str, Path]] = []
    missing: list[str] = []
    for pkg in packages:
        proc = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True)
        if proc.returncode != 0:
            missing.append(pkg)
            continue
        for line in proc.stdout.splitlines():
            path = Path(line.strip())
            if path.name.endswith((".pdf", ".pdf.gz")) and path.is_file():
                found.append((pkg, path))
    return found, missing


def build_corpus(packages: list[str], limit: int | None) -> list[dict[str, Any]]:
    found, missing = installed_pdfs(packages)
    if missing:
        print(
            f"{len(missing)} corpus package(s) not installed; for the full corpus run:\n"
            f"  apt-get install -y --no-install-recommends {' '.join(missing)}\n",
            file=sys.stderr,
        )
    dest_root = CACHE / "corpus"
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pkg, src in sorted(found, key=lambda x: (x[0], str(x[1]))):
        raw = src.read_bytes()
        data = gzip.decompress(raw) if src.name.endswith(".gz") else raw
        if data.lstrip()[:5] != b"%PDF-":
            continue
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen:
            continue
        seen.add(sha)
        rel = str(src).removeprefix("/usr/share/doc/").removesuffix(".gz").replace("/", "__")
        dest = dest_root / pkg / rel
        if not dest.exists() or dest.stat().st_size != len(data):
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        items.append(
            {"package": pkg, "source": str(src), "path": str(dest), "bytes": len(data), "sha": sha}
        )
    if limit is not None and len(items) > limit:
        items = round_robin(items, limit)
    return items


def round_robin(items: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """`limit` files spread over the packages (a quick run still sees every producer)."""
    by_pkg: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_pkg.setdefault(item["package"], []).append(item)
    queues = [list(v) for _, v in sorted(by_pkg.items())]
    picked: list[dict[str, Any]] = []
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def producer_family(producer: str) -> str:
    p = producer.lower()
    for needle, family in (
        ("luatex", "LuaTeX"),
        ("luahbtex", "LuaTeX"),
        ("pdftex", "pdfTeX"),
        ("pdfetex", "pdfTeX"),
        ("pdflatex", "pdfTeX"),
        ("dvipdfm", "(x)dvipdfmx"),
        ("xetex", "(x)dvipdfmx"),
        ("ghostscript", "Ghostscript"),
        ("distiller", "Acrobat"),
        ("acrobat", "Acrobat"),
    ):
        if needle in p:
            return family
    return "other"


def reference(item: dict[str, Any], timeout: float) -> dict[str, Any]:
    """pdftotext's pages (cached by content hash) and pdfinfo's producer."""
    cached = CACHE / "ref" / f"{item['sha'][:24]}.json"
    if cached.exists():
        result: dict[str, Any] = json.loads(cached.read_text())
        return result
    info = subprocess.run(
        ["pdfinfo", item["path"]], capture_output=True, timeout=timeout, check=False
    ).stdout.decode("utf-8", "replace")
    producer = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("Producer:")),
        "",
    )
    try:
        proc = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", item["path"], "-"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        text = proc.stdout.decode("utf-8", "replace")
        pages = text.split("\f")
        if pages and not pages[-1].strip():
            pages.pop()  # pdftotext ends every page with a form feed
        result = {"ok": proc.returncode == 0, "pages": pages, "producer": producer}
    except subprocess.TimeoutExpired:
        result = {"ok": False, "pages": [], "producer": producer}
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result))
    return result


# ------------------------------------------------------------------------------------------
# Running one extractor on one file, in a child interpreter
# ------------------------------------------------------------------------------------------


def _proc_status_kb(field: str) -> int:
    """VmRSS / VmHWM from /proc (ru_maxrss is useless here: Linux keeps it across exec, so a
    child starts with its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _child(kind: str, path: str) -> None:
    """`--child KIND FILE`: extract and print a JSON line (pages, seconds, RSS), then, after
    a second pass under tracemalloc, another with the Python heap peak."""
    import logging
    import resource
    import warnings

    resource.setrlimit(resource.RLIMIT_AS, (MEM_CAP, MEM_CAP))
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    data = Path(path).read_bytes()
    run = _load_extractor(kind)
    base = _proc_status_kb("VmRSS")
    start = time.perf_counter()
    out: dict[str, Any]
    try:
        pages, page_errors = run(data)
        out = {"status": "ok", "pages": pages, "page_errors": page_errors}
    except BaseException as exc:
        out = {"status": _classify(kind, exc), "type": type(exc).__name__, "message": str(exc)}
    out["seconds"] = time.perf_counter() - start
    out["rss_growth_kb"] = max(0, _proc_status_kb("VmHWM") - base)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    if out["status"] == "ok":
        # Second pass under tracemalloc (it slows Python down 5-15x, so never the timed pass):
        # the peak of Python allocations, the number that matters in a 128 MB isolate. If it
        # runs out of time the parent keeps the first line.
        import tracemalloc

        tracemalloc.start()
        with contextlib.suppress(BaseException):
            run(data)
        peak = tracemalloc.get_traced_memory()[1] // 1024
        tracemalloc.stop()
        sys.stdout.write(json.dumps({"py_peak_kb": peak}) + "\n")


def _load_extractor(kind: str) -> Callable[[bytes], tuple[list[str], int]]:
    if kind == "ours":
        from ingest.extract.pdf import extract_pdf

        def ours(data: bytes) -> tuple[list[str], int]:
            extracted = extract_pdf(data)
            return [extracted.text[p.char_start : p.char_end] for p in extracted.pages], 0

        return ours

    import pypdf

    def theirs(data: bytes) -> tuple[list[str], int]:
        # How a pypdf-backed extract_pdf would use it: non-strict reader, a page that fails
        # to extract becomes empty instead of failing the whole document.
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages, errors = [], 0
        for page in reader.pages:
            try:
                pages.append(page.extract_text() or "")
            except Exception:
                errors += 1
                pages.append("")
        return pages, errors

    return theirs


def _classify(kind: str, exc: BaseException) -> str:
    """ "error": the library's own, documented error type; anything else is a "crash"."""
    if kind == "ours":
        from ingest.extract.base import ExtractionFailed

        return "error" if isinstance(exc, ExtractionFailed) else "crash"
    from pypdf.errors import PyPdfError

    return "error" if isinstance(exc, PyPdfError) else "crash"


def run_child(kind: str, path: Path, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(["workers", ".", "emulator/sdk"]))
    env["PYTHONHASHSEED"] = "0"
    cmd = [sys.executable, "-m", "bench.pdf_compare", "--child", kind, str(path)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        timed_out = True
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:  # the timed pass itself did not finish
        if timed_out:
            return {"status": "timeout", "seconds": time.perf_counter() - start}
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return {"status": "crash", "type": f"exit {proc.returncode}", "message": tail[0][:300]}
    result: dict[str, Any] = json.loads(lines[0])
    if len(lines) > 1:
        result.update(json.loads(lines[1]))
    elif result["status"] == "ok":
        result["py_peak"] = "not measured (tracemalloc pass ran out of time)"
    return result


# ------------------------------------------------------------------------------------------
# Damaged files
# ------------------------------------------------------------------------------------------


def damaged_variants(data: bytes, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    flipped = bytearray(data)
    for _ in range(200):
        i = rng.randrange(1024, len(data)) if len(data) > 1024 else rng.randrange(len(data))
        flipped[i] ^= 0xFF
    zeroed = bytearray(data)
    mid, span = len(data) // 2, max(1, len(data) // 10)
    zeroed[mid : mid + span] = bytes(len(zeroed[mid : mid + span]))
    return {
        "truncated-50%": data[: len(data) // 2],
        "truncated-90%": data[: len(data) * 9 // 10],
        "head-2KB": data[:2048],
        "tail-1KB-cut": data[:-1024],
        "200-byte-flips": bytes(flipped),
        "zeroed-10%": bytes(zeroed),
        "header+noise": b"%PDF-1.5\n" + rng.randbytes(64 * 1024),
    }


def run_damaged(
    items: list[dict[str, Any]], refs: dict[str, dict[str, Any]], n: int, timeout: float, jobs: int
) -> list[dict[str, Any]]:
    candidates = [i for i in items if 30_000 <= i["bytes"] <= 2_000_000 and refs[i["sha"]]["ok"]]
    step = max(1, len(candidates) // max(1, n))
    chosen = candidates[::step][:n]
    tasks = []
    tmp = CACHE / "damaged"
    tmp.mkdir(parents=True, exist_ok=True)
    for k, item in enumerate(chosen):
        for name, blob in damaged_variants(Path(item["path"]).read_bytes(), seed=k).items():
            path = tmp / f"{item['sha'][:12]}-{name.replace('%', 'pct')}.pdf"
            path.write_bytes(blob)
            for kind in EXTRACTORS:
                tasks.append((item, name, kind, path))

    def one(task: tuple[dict[str, Any], str, str, Path]) -> dict[str, Any]:
        item, name, kind, path = task
        res = run_child(kind, path, timeout)
        row: dict[str, Any] = {
            "file": item["source"],
            "damage": name,
            "extractor": kind,
            "outcome": res["status"],
        }
        if res["status"] == "ok":
            sc = score(refs[item["sha"]]["pages"], res["pages"])
            row["outcome"] = "text" if sc["words"] else "empty"
            row["recall_vs_intact"] = _r(sc["recall"])
        else:
            row["message"] = f"{res.get('type', '')}: {res.get('message', '')}"[:240]
        return row

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, tasks))


# ------------------------------------------------------------------------------------------
# Bundle size and Pyodide
# ------------------------------------------------------------------------------------------


def _py_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _size(root: Path) -> dict[str, Any]:
    files = _py_files(root)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.relative_to(root))
    return {
        "py_files": len(files),
        "py_bytes": sum(f.stat().st_size for f in files),
        "py_lines": sum(len(f.read_bytes().splitlines()) for f in files),
        "zipped_bytes": len(buf.getvalue()),
    }


def pypdf_wheel() -> Path | None:
    """The PyPI wheel (what a bundle would vendor), downloaded once into the cache."""
    dest = CACHE / "wheels"
    found = sorted(dest.glob("pypdf-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", PYPDF_PIN, "-d", dest],
            capture_output=True,
            check=False,
        )
        found = sorted(dest.glob("pypdf-*.whl"))
    return found[-1] if found else None


def bundle_sizes() -> dict[str, Any]:
    import pypdf

    out: dict[str, Any] = {"ours": _size(OUR_PACKAGE), "pypdf": _size(Path(pypdf.__file__).parent)}
    out["pypdf"]["version"] = pypdf.__version__
    wheel = pypdf_wheel()
    if wheel:
        out["pypdf"]["wheel_bytes"] = wheel.stat().st_size
    return out


_PYODIDE_JS = r"""
import fs from "node:fs";
const cfg = JSON.parse(fs.readFileSync(process.argv[process.argv.length - 1], "utf8"));
const { loadPyodide } = await import(cfg.pyodide);
const py = await loadPyodide({ stdout: () => {}, stderr: (s) => process.stderr.write(s + "\n") });
const heap = () => py._module.HEAP8.length;
const site = py.runPython("import sys; [p for p in sys.path if p.endswith('site-packages')][0]");
for (const w of cfg.wheels) {
  const b = fs.readFileSync(w);
  py.unpackArchive(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), "wheel", { extractDir: site });
}
for (const [dest, src] of cfg.files) {
  py.FS.mkdirTree(dest.slice(0, dest.lastIndexOf("/")));
  if (src === null) py.FS.writeFile(dest, "");
  else py.FS.writeFile(dest, fs.readFileSync(src));
}
const out = { steps: {} };
for (const [name, code] of cfg.steps) {
  const before = heap();
  const res = py.runPython(code);
  out.steps[name] = { heap_before: before, heap_after: heap(), result: JSON.parse(res) };
}
process.stdout.write("RESULT " + JSON.stringify(out) + "\n");
"""

_STEP_PRELOAD = """
import gc, json, sys, time
sys.path.insert(0, "/bundle")
for name in {preload!r}:
    __import__(name)
gc.collect()
json.dumps({{"modules": len(sys.modules)}})
"""
_STEP_IMPORT = """
import tracemalloc
if {traced}:
    tracemalloc.start()
_t = time.perf_counter()
{import_stmt}
_ms = (time.perf_counter() - _t) * 1000
_mem = tracemalloc.get_traced_memory()[0] if {traced} else None
json.dumps({{"ms": _ms, "traced_bytes": _mem, "modules": len(sys.modules)}})
"""
_STEP_EXTRACT = """
_data = open("/sample.pdf", "rb").read()
if {traced}:
    tracemalloc.reset_peak()
_t = time.perf_counter()
_pages = {extract_expr}
_ms = (time.perf_counter() - _t) * 1000
_peak = tracemalloc.get_traced_memory()[1] if {traced} else None
json.dumps({{"ms": _ms, "pages": _pages, "traced_peak_bytes": _peak}})
"""
_IMPORTS = {
    "ours": ("import ingest.extract.pdf", "len(ingest.extract.pdf.extract_pdf(_data).pages)"),
    "pypdf": (
        "import pypdf, io",
        "len([p.extract_text() for p in pypdf.PdfReader(io.BytesIO(_data)).pages])",
    ),
}


def pyodide_measure(sample: Path, timeout: float) -> dict[str, Any]:
    """Import time and heap growth of each extractor in a fresh Pyodide, and one extraction.

    The bundle tree is workers/kernel + workers/ingest with the two package ``__init__`` files
    emptied, so ``import ingest.extract.pdf`` loads only the PDF package; ``ingest.extract.base``
    (shared by either implementation) is imported first and not counted."""
    if not (NODE.exists() and PYODIDE_MJS.exists()):
        return {"skipped": "needs `make node-deps` and tests/edge/node_modules (npm ci there)"}
    wheel = pypdf_wheel()
    if wheel is None:
        return {"skipped": f"could not download {PYPDF_PIN}"}
    pydantic_wheels = sorted(str(p) for p in EDGE_WHEELS.glob("*.whl"))
    files: list[list[str | None]] = [["/sample.pdf", str(sample)]]
    for pkg in ("kernel", "ingest"):
        for f in _py_files(REPO / "workers" / pkg):
            files.append([f"/bundle/{f.relative_to(REPO / 'workers')}", str(f)])
    files += [["/bundle/ingest/__init__.py", None], ["/bundle/ingest/extract/__init__.py", None]]
    scenarios = {"fresh isolate": ["ingest.extract.base"]}
    if pydantic_wheels:
        scenarios["pydantic already imported"] = ["ingest.extract.base", "pydantic"]
    out: dict[str, Any] = {"sample": sample.name, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "measure.mjs")
        script.write_text(_PYODIDE_JS)
        for scenario, preload in scenarios.items():
            for kind, (import_stmt, extract_expr) in _IMPORTS.items():
                for traced in (False, True):
                    wheels = [str(wheel)] + (pydantic_wheels if "pydantic" in preload else [])
                    steps = [
                        ["preload", _STEP_PRELOAD.format(preload=preload)],
                        ["import", _STEP_IMPORT.format(traced=traced, import_stmt=import_stmt)],
                        ["extract", _STEP_EXTRACT.format(traced=traced, extract_expr=extract_expr)],
                    ]
                    cfg = {
                        "pyodide": PYODIDE_MJS.as_uri(),
                        "wheels": wheels if kind == "pypdf" or "pydantic" in preload else [],
                        "files": files,
                        "steps": steps,
                    }
                    cfg_path = Path(tmp, "cfg.json")
                    cfg_path.write_text(json.dumps(cfg))
                    row: dict[str, Any] = {"scenario": scenario, "extractor": kind}
                    row["traced"] = traced
                    try:
                        proc = subprocess.run(
                            [str(NODE), str(script), str(cfg_path)],
                            capture_output=True,
                            timeout=timeout,
                            check=False,
                        )
                        line = [
                            ln
                            for ln in proc.stdout.decode().splitlines()
                            if ln.startswith("RESULT ")
                        ]
                        if not line:
                            row["error"] = proc.stderr.decode("utf-8", "replace")[-800:]
                        else:
                            row.update(_pyodide_row(json.loads(line[0][7:])["steps"], traced))
                    except subprocess.TimeoutExpired:
                        row["error"] = "timeout"
                    out["runs"].append(row)
    return out


def _pyodide_row(steps: dict[str, Any], traced: bool) -> dict[str, Any]:
    mb = 1024 * 1024
    imp, ext = steps["import"], steps["extract"]
    if traced:
        return {
            "import_traced_mb": _r(imp["result"]["traced_bytes"] / mb),
            "extract_traced_peak_mb": _r(ext["result"]["traced_peak_bytes"] / mb),
        }
    return {
        "heap_after_preload_mb": _r(imp["heap_before"] / mb),
        "import_ms": _r(imp["result"]["ms"]),
        "import_heap_growth_mb": _r((imp["heap_after"] - imp["heap_before"]) / mb),
        "modules_added": imp["result"]["modules"] - steps["preload"]["result"]["modules"],
        "extract_ms": _r(ext["result"]["ms"]),
        "extract_pages": ext["result"]["pages"],
        "heap_after_extract_mb": _r(ext["heap_after"] / mb),
    }


# ------------------------------------------------------------------------------------------
# Aggregation and output
# ------------------------------------------------------------------------------------------


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def _stats(values: Iterable[float | None]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "mean": None, "n": 0}
    return {
        "median": _r(statistics.median(vals)),
        "mean": _r(statistics.fmean(vals)),
        "n": len(vals),
    }


def summarize(rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    mine = [r[kind] for r in rows]
    scored = [r for r in rows if r["ref_words"] >= MIN_REF_WORDS]
    both_ok = [r for r in scored if all(r[k]["status"] == "ok" for k in EXTRACTORS)]
    ok = [m for m in mine if m["status"] == "ok"]
    pages = sum(m["pages"] for m in ok)
    secs = sum(m["seconds"] for m in ok)
    fail = Counter(m["status"] for m in mine if m["status"] != "ok")
    empty = sum(1 for r in scored if r[kind]["status"] == "ok" and not r[kind]["words"])

    # Failed files count as 0 in "all scored"; "both ok" compares like with like.
    def metric(subset: list[dict[str, Any]], name: str) -> dict[str, float | None]:
        return _stats(r[kind].get(name) or 0.0 for r in subset)

    ref_total = sum(r["ref_words"] for r in scored)
    common_total = sum((r[kind].get("recall") or 0.0) * r["ref_words"] for r in scored)
    return {
        "files": len(mine),
        "ok": len(ok),
        "errors": fail.get("error", 0),
        "crashes": fail.get("crash", 0),
        "timeouts": fail.get("timeout", 0),
        "empty_output": empty,
        "low_recall_lt_0.5": sum(1 for r in scored if (r[kind].get("recall") or 0) < 0.5),
        "page_errors": sum(m.get("page_errors", 0) for m in ok),
        "page_count_mismatch": sum(1 for r in both_ok if not r[kind]["page_count_matches"]),
        "all_scored": {n: metric(scored, n) for n in ("recall", "precision", "order")},
        "both_ok": {n: metric(both_ok, n) for n in ("recall", "precision", "order")},
        "micro_recall": _r(common_total / ref_total) if ref_total else None,
        "pages_per_s": _r(pages / secs, 1) if secs else None,
        "pages_per_s_per_file": _stats(m["pages"] / m["seconds"] for m in ok if m["seconds"]),
        "rss_growth_mb": _stats(m["rss_growth_kb"] / 1024 for m in ok),
        "rss_growth_mb_max": _r(max((m["rss_growth_kb"] / 1024 for m in ok), default=0.0), 1),
        "py_peak_mb": _stats(m["py_peak_kb"] / 1024 for m in ok if "py_peak_kb" in m),
        "py_peak_mb_max": _r(max((m.get("py_peak_kb", 0) / 1024 for m in ok), default=0.0), 1),
        "failures": [
            {"file": r["source"], "status": r[kind]["status"], "message": r[kind].get("message")}
            for r in rows
            if r[kind]["status"] != "ok"
        ],
    }


def print_table(result: dict[str, Any]) -> None:
    s = result["summary"]
    corpus = result["corpus"]
    print(
        f"\ncorpus: {corpus['files']} PDFs ({corpus['scored']} scored, {corpus['pages']} pages) "
        f"from {len(corpus['packages'])} Debian packages; reference: {result['reference']}"
    )
    print(f"\n{'metric':<40} {'ours':>16} {'pypdf':>16}")

    def line(label: str, *path: str) -> None:
        vals = []
        for k in EXTRACTORS:
            v: Any = s[k]
            for key in path:
                v = v[key]
            vals.append("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        print(f"{label:<40} {vals[0]:>16} {vals[1]:>16}")

    for subset in ("all_scored", "both_ok"):
        for m in ("recall", "precision", "order"):
            for stat in ("median", "mean"):
                line(f"{m} {stat} ({subset})", subset, m, stat)
    line("micro recall (all scored)", "micro_recall")
    line("pages/s (total)", "pages_per_s")
    line("pages/s per file, median", "pages_per_s_per_file", "median")
    line("peak RSS growth MB, median", "rss_growth_mb", "median")
    line("peak RSS growth MB, max", "rss_growth_mb_max")
    line("Python heap peak MB (tracemalloc), median", "py_peak_mb", "median")
    line("Python heap peak MB (tracemalloc), mean", "py_peak_mb", "mean")
    line("Python heap peak MB (tracemalloc), max", "py_peak_mb_max")
    for key in ("ok", "errors", "crashes", "timeouts", "empty_output", "low_recall_lt_0.5"):
        line(key, key)
    line("pages that failed (pypdf: per page)", "page_errors")
    line("page count != reference (both ok)", "page_count_mismatch")

    if result.get("damaged"):
        print(f"\ndamaged files ({len(result['damaged']) // 2} variants): outcome counts")
        for k in EXTRACTORS:
            c = Counter(d["outcome"] for d in result["damaged"] if d["extractor"] == k)
            print(f"  {k:<6} " + ", ".join(f"{n}={c[n]}" for n in sorted(c)))
    b = result["bundle"]
    print(
        f"\nbundle .py bytes: ours {b['ours']['py_bytes']:,} ({b['ours']['py_lines']:,} lines), "
        f"pypdf {b['pypdf']['py_bytes']:,} ({b['pypdf']['py_lines']:,} lines); zipped: "
        f"{b['ours']['zipped_bytes']:,} vs {b['pypdf']['zipped_bytes']:,}"
    )
    pyo = result.get("pyodide", {})
    if pyo.get("skipped"):
        print(f"pyodide: skipped ({pyo['skipped']})")
    for run in pyo.get("runs", []):
        if run.get("error"):
            print(f"pyodide {run['scenario']} {run['extractor']}: ERROR {run['error'][:200]}")
        elif not run["traced"]:
            print(
                f"pyodide [{run['scenario']}] {run['extractor']:<6} import {run['import_ms']:.0f} ms,"
                f" heap +{run['import_heap_growth_mb']:.1f} MB, +{run['modules_added']} modules;"
                f" extract {pyo['sample']} ({run['extract_pages']} pages) {run['extract_ms']:.0f} ms"
            )
        else:
            print(
                f"pyodide [{run['scenario']}] {run['extractor']:<6} tracemalloc: import "
                f"{run['import_traced_mb']:.2f} MB, extraction peak {run['extract_traced_peak_mb']:.2f} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--limit", type=int, help="at most N files, spread over the packages")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per file and extractor"
    )
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2))
    parser.add_argument("--damaged", type=int, default=8, help="corpus files to damage (0: none)")
    parser.add_argument("--skip-pyodide", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1])
        return
    if not (shutil.which("pdftotext") and shutil.which("pdfinfo")):
        print("bench-pdf: skipped, pdftotext not found (apt-get install -y poppler-utils)")
        return

    t0 = time.perf_counter()
    items = build_corpus(PACKAGES, args.limit)
    if not items:
        print(
            f"bench-pdf: no corpus; apt-get install -y --no-install-recommends {' '.join(PACKAGES)}"
        )
        return
    print(f"corpus: {len(items)} PDFs; computing references (pdftotext) ...", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        found = pool.map(lambda i: reference(i, args.timeout), items)
        refs = dict(zip([i["sha"] for i in items], found, strict=True))

    tasks = [(item, kind) for item in items for kind in EXTRACTORS]
    done = 0

    def extract_one(task: tuple[dict[str, Any], str]) -> dict[str, Any]:
        nonlocal done
        item, kind = task
        res = run_child(kind, Path(item["path"]), args.timeout)
        done += 1
        if done % 50 == 0:
            print(f"  {done}/{len(tasks)} extractions", flush=True)
        return res

    print(f"extracting ({len(tasks)} runs, {args.jobs} at a time) ...", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        outputs = list(pool.map(extract_one, tasks))

    rows = []
    for n, item in enumerate(items):
        ref = refs[item["sha"]]
        row: dict[str, Any] = {
            "source": item["source"],
            "package": item["package"],
            "bytes": item["bytes"],
            "producer": ref["producer"],
            "family": producer_family(ref["producer"]),
            "ref_pages": len(ref["pages"]),
            "ref_words": sum(len(words(p)) for p in ref["pages"]),
        }
        for j, kind in enumerate(EXTRACTORS):
            res = outputs[2 * n + j]
            entry = {k: v for k, v in res.items() if k != "pages"}
            if res["status"] == "ok":
                entry.update(score(ref["pages"], res["pages"]))
                entry["pages"] = len(res["pages"])
                for key in ("recall", "precision", "order"):
                    entry[key] = _r(entry[key])
                entry["seconds"] = _r(entry["seconds"])
            row[kind] = entry
        rows.append(row)

    families = Counter(r["family"] for r in rows)
    by_family = {
        fam: {
            k: _stats(
                r[k].get("recall") or 0.0
                for r in rows
                if r["family"] == fam and r["ref_words"] >= MIN_REF_WORDS
            )
            for k in EXTRACTORS
        }
        for fam in sorted(families)
    }
    print("damaged files ...", flush=True)
    damaged = (
        run_damaged(items, refs, args.damaged, min(args.timeout, 60.0), args.jobs)
        if args.damaged
        else []
    )
    sample = max(
        FIXTURES.glob("*.pdf"), key=lambda p: p.stat().st_size, default=Path(items[0]["path"])
    )
    print("bundle size and Pyodide ...", flush=True)
    result: dict[str, Any] = {
        "command": "make bench-pdf  (= python -m bench.pdf_compare)",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "jobs": args.jobs,
            "load_average_at_end": None,
        },
        "reference": "pdftotext (poppler "
        + subprocess.run(["pdftotext", "-v"], capture_output=True, text=True).stderr.split()[2]
        + ") default mode, -enc UTF-8",
        "corpus": {
            "files": len(rows),
            "scored": sum(1 for r in rows if r["ref_words"] >= MIN_REF_WORDS),
            "pages": sum(r["ref_pages"] for r in rows),
            "packages": dict(Counter(r["package"] for r in rows)),
            "producer_families": dict(families),
        },
        "summary": {k: summarize(rows, k) for k in EXTRACTORS},
        "recall_by_producer_family": by_family,
        "damaged": damaged,
        "bundle": bundle_sizes(),
        "pyodide": {"skipped": "--skip-pyodide"}
        if args.skip_pyodide
        else pyodide_measure(sample, 300),
        "files": rows,
    }
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"]["wall_seconds"] = round(time.perf_counter() - t0, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print_table(result)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
