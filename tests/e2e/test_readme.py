"""The README's shell examples, run as written against a real `python -m emulator.dev` process.

Every ```bash block under "Try it", "Auth, roles and limits" and "Tools and user context" runs, in order, in one bash
(`set -euo pipefail`), from a folder laid out like the repo root (`examples/`, `.venv/`,
`edgerag_cli/` linked in; `.edgerag/` is the server's data directory). Nothing in the text is
rewritten: the README reads its base URL from `$PORT` (default 8787), and the test only sets
that variable, makes curl fail on HTTP errors (a `.curlrc` with `fail-with-body`) and prints a
marker line between commands so each command's output can be checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.devserver import DevServer

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SECTIONS = (
    "Try it",
    "Auth, roles and limits",
    "Tools and user context",
    "Learning features",
    "Workspaces: projects, annotations, recordings",
)
MARK = "@@readme-command"
GUARD_S = 900  # a hang guard for the whole script, not a timing assertion


def bash_blocks(markdown: str, sections: tuple[str, ...] = SECTIONS) -> list[str]:
    """The ```bash blocks of the named `## ` sections, in README order."""
    blocks: list[str] = []
    for part in re.split(r"(?m)^## ", markdown)[1:]:
        heading = part.split("\n", 1)[0].strip()
        if heading in sections:
            blocks += re.findall(r"(?ms)^```bash\n(.*?)^```", part)
    return blocks


def commands(block: str) -> list[str]:
    """Logical command lines (backslash continuations joined); comments and blanks dropped."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        pending += line + "\n"
        if line.endswith("\\"):
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            out.append(pending)
        pending = ""
    return out


@dataclass
class Step:
    command: str
    output: str

    def json_values(self) -> list[Any]:
        """The JSON values printed by the command (jq prints several in a row)."""
        decoder, text, values, i = json.JSONDecoder(), self.output, [], 0
        while i < len(text):
            if text[i].isspace():
                i += 1
                continue
            value, i = decoder.raw_decode(text, i)
            values.append(value)
        return values


def _require_tools() -> None:
    missing = [t for t in ("bash", "curl", "jq") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"the README's examples need {', '.join(missing)}: install them "
            "(`make test` does: `make readme-tools`)"
        )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder that looks like the repo root to the README's relative paths."""
    venv = REPO / ".venv"
    assert (venv / "bin" / "python").exists(), "the README uses .venv/bin/python: run make dev"
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("examples", "edgerag_cli"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    (root / ".venv").symlink_to(venv, target_is_directory=True)
    curl_home = tmp_path / "curl"
    curl_home.mkdir()
    (curl_home / ".curlrc").write_text("fail-with-body\nshow-error\nmax-time = 300\n")
    return root


@pytest.fixture
def dev_server(workdir: Path) -> Iterator[int]:
    """`python -m emulator.dev` on a free port, chosen through EDGERAG_PORT (its argparse default)."""
    with (workdir.parent / "server.log").open("w") as log:
        server = DevServer(
            workdir / ".edgerag",
            log,
            env={"EDGERAG_PBKDF2_ITERATIONS": "1000"},  # the README's logins, quickly
            port_via_env=True,
        )
        try:
            server.wait_healthy()
            yield server.port
        finally:
            server.stop()


def run_readme(workdir: Path, port: int, epilogue: str) -> tuple[list[Step], str]:
    """Run the README's commands; returns each command with its stdout, and the epilogue's."""
    lines = [c for block in bash_blocks(README.read_text()) for c in commands(block)]
    assert lines, "no ```bash blocks found under the README's sections"
    script = ["set -euo pipefail"]
    for n, line in enumerate(lines):
        script += [f"printf '\\n{MARK} {n}\\n'", line.rstrip("\n")]
    script += [f"printf '\\n{MARK} end\\n'", epilogue]
    env = {
        **os.environ,
        "PORT": str(port),
        "CURL_HOME": str(workdir.parent / "curl"),
    }
    for name in ("EDGERAG_URL", "EDGERAG_API_KEY"):
        env.pop(name, None)
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=GUARD_S,
    )
    server_log = (workdir.parent / "server.log").read_text()[-4000:]
    assert done.returncode == 0, (
        f"README command failed (exit {done.returncode})\n--- stdout\n{done.stdout[-6000:]}"
        f"\n--- stderr\n{done.stderr[-4000:]}\n--- server\n{server_log}"
    )
    parts = re.split(rf"\n{MARK} (\d+|end)\n", "\n" + done.stdout)
    outputs = dict(zip(parts[1::2], parts[2::2], strict=True))
    steps = [Step(line, outputs.get(str(n), "")) for n, line in enumerate(lines)]
    return steps, outputs.get("end", "")


def find(steps: list[Step], *needles: str) -> list[Step]:
    found = [s for s in steps if all(n in s.command for n in needles)]
    assert found, f"no README command contains {needles}"
    return found


@pytest.mark.slow
def test_readme_commands_run_as_written(workdir: Path, dev_server: int) -> None:
    _require_tools()
    steps, tail = run_readme(workdir, dev_server, 'printf "%s\\n" "$DOC" "$WINGS" "$TENANT" "$KEY"')
    doc, wings, tenant, key = tail.split()
    assert doc.startswith("d_") and wings.startswith("d_") and doc != wings
    assert tenant.startswith("t_") and key.startswith("erk_")

    health = find(steps, "/health")[0].json_values()
    assert health[0] == "ok" and health[1], health  # status, named stand-ins

    (search,) = find(steps, "/v1/search")[0].json_values()
    assert search["results"], search
    assert {r["document_id"] for r in search["results"]} == {doc}  # tags filter: the PDF only
    assert all(r["page"] in (1, 2) for r in search["results"])

    answer, citations, confidence, abstained = find(steps, "/v1/answer")[0].json_values()
    assert abstained is False and answer and confidence > 0, (answer, citations)
    assert citations and {c["document_id"] for c in citations} <= {doc, wings}

    first, again = find(steps, "edgerag_cli load examples")
    assert "loaded 3, updated 0, unchanged 0, failed 0 (of 3 files)" in first.output, first
    assert "loaded 0, updated 0, unchanged 3, failed 0 (of 3 files)" in again.output, again

    # Auth section: the placeholders became real ids, and each call did what its comment says.
    ada = find(steps, "/v1/auth/register", "ada@school.edu")[0].json_values()[0]
    assert ada["role"] == "teacher" and ada["id"].startswith("u_")
    me = find(steps, "/v1/auth/me")[0].json_values()[0]
    assert (me["id"], me["tenant_id"], me["kind"]) == (ada["id"], tenant, "user")
    relationship = find(steps, "/v1/relationships")[0].json_values()[0]
    assert relationship["teacher_id"] == ada["id"] and relationship["student_id"].startswith("u_")
    revoked = find(steps, "-X DELETE $B/v1/api-keys/")[0].json_values()[0]
    assert revoked["revoked"] is True and revoked["id"].startswith("key_")
    limits = find(steps, "/v1/rate-limit/status")[0].output
    assert limits.startswith("HTTP/1.1 200") and '"windows"' in limits

    # Tools section.
    names = find(steps, "$B/v1/tools -H")[0].output.split()
    assert "ingest_document" in names and "summarize" in names
    assert find(steps, "tools/search_knowledge_base")[0].json_values()[0] in ("Wings", "Flight")
    bullets = find(steps, "tools/summarize")[0].output.strip().splitlines()
    assert bullets and all(line.startswith("- ") and "[1]" in line for line in bullets), bullets
    entities = find(steps, "tools/extract_entities")[0].json_values()
    assert ["Orville Wright", "person"] in entities and ["17 December 1903", "date"] in entities
    assert find(steps, "tools/classify_intent")[0].json_values()[0][0]["label"] == "comparison"
    assert find(steps, "tools/ingest_document")[0].json_values() == ["queued"]
    assert find(steps, "/v1/users/$SAM/context")[0].output.strip() == "beginner"
    audit = find(steps, "/v1/audit?limit=3")[0].json_values()
    assert [row[0] for row in audit] == ["ingest_document", "classify_intent", "extract_entities"]
    assert find(steps, "/v1/chat/sessions/$CHAT/messages")[0].json_values() == [
        ["search_knowledge_base", False]
    ]

    # Learning section.
    first, again = find(steps, "/v1/personalize")
    assert first.json_values() == [["beginner", False, 1]] and again.json_values() == [[True, 0]]
    assert find(steps, "/v1/translate")[0].json_values() == [["rtl", False]]
    assert find(steps, "/v1/me/progress")[0].json_values() == [1]
    assert find(steps, "/v1/users/$SAM/progress")[0].json_values() == [[1, 1]]
    assert find(steps, "rate_limits")[0].json_values() == [{"limit": 3, "window_seconds": 86400}]
    assert find(steps, "/v1/tts")[0].output.strip() == "audio/wav"
    with wave.open(str(workdir / "speech.wav")) as speech:  # real, playable speech
        assert speech.getnframes() / speech.getframerate() > 2 and speech.getnchannels() == 1

    # Workspaces section.
    assert find(steps, "/v1/projects/$PRJ/confirm")[0].json_values() == [["ready", 2, True]]
    assert find(steps, "/v1/projects/$PRJ/access")[0].json_values() == [["view"]]
    assert find(steps, "-X POST $B/v1/annotations")[0].json_values() == [["highlight", True]]
    assert find(steps, "/v1/annotations?project_id")[0].json_values() == [[["highlight", False]]]
    puts = [s.output.strip() for s in find(steps, "put examples/")]
    assert puts == ["200", "200"], puts
    confirmed = find(steps, "/v1/recordings/$REC/confirm")[0].json_values()
    assert confirmed == [["ready", "wav", 8.0, 16000, 1]], confirmed
    measured = {
        name: (value, unit) for name, value, unit in find(steps, "/analysis")[0].json_values()
    }
    assert measured["onset_density"] == (2.0, "onsets/s") and measured["tempo_stability"][0] == 1.0
    assert set(measured) == {
        "loudness", "dynamic_range", "onset_density", "tempo_stability", "pitch_stability"
    }  # fmt: skip
    ((overall, cited_tips, citations),) = find(steps, "/feedback")[0].json_values()
    assert overall and cited_tips >= 1 and citations >= 1, (overall, cited_tips, citations)
    title, trends = find(steps, "get_performance_analysis")[0].json_values()[0]
    assert title == "Scale practice" and set(trends) == set(measured)


def test_make_dev_passes_port_and_host() -> None:
    """`make dev PORT=… HOST=…` reaches the server's command line (dry run: nothing starts)."""
    if shutil.which("make") is None:
        pytest.fail("make is needed")
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "MAKEFLAGS")}

    def dry_run(*args: str) -> str:
        out = subprocess.run(
            ["make", "-n", "dev", *args], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return next(x for x in out.stdout.splitlines() if "emulator.dev" in x)

    line = dry_run("PORT=9123", "HOST=127.0.0.2")
    assert "--port 9123" in line and "--host 127.0.0.2" in line, line
    line = dry_run()
    assert "--port" not in line, "without PORT the server's default (EDGERAG_PORT or 8787) holds"


def test_readme_blocks_are_found() -> None:
    blocks = bash_blocks(README.read_text())
    assert len(blocks) >= 2
    lines = [c for b in blocks for c in commands(b)]
    assert not any(re.search(r"\b(u|key|d)_\.\.\.", line) for line in lines), (
        "placeholders must be real ids captured by earlier commands"
    )
    assert not any(re.search(r"\w=\.\.\.", line) for line in lines)
