"""`python -m edgerag_cli load`: walking, idempotent multipart uploads, polling, summary, exit
codes — against a fake gateway on `httpx.MockTransport` (nothing leaves the process)."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgerag_cli import CONTENT_TYPES, Outcome, RichReporter, discover, main

API_KEY = "ek_test_123"


# --- a fake gateway ------------------------------------------------------------------------------
@dataclass
class Doc:
    id: str
    filename: str
    polls: int = 0


@dataclass
class FakeGateway:
    """Implements the contract the CLI is written against:
    POST /v1/documents (multipart, Idempotency-Key) -> 202 {document_id, version, status},
    a replay of a known key -> 200 + `Idempotent-Replayed: true`;
    GET /v1/documents/{id}/status -> queued, processing, ... ready (or failed)."""

    polls_to_ready: int = 2
    uploads: list[dict[str, Any]] = field(default_factory=list)
    by_key: dict[str, Doc] = field(default_factory=dict)
    docs: dict[str, Doc] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    status_calls: int = 0
    fail_first: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        queued = self.fail_first.get(request.url.path)
        if queued:
            status = queued.pop(0)
            return httpx.Response(
                status, headers={"retry-after": "2"}, json=_error("busy", "slow down")
            )
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return httpx.Response(401, json=_error("unauthorized", "bad API key", "r_401"))
        if request.method == "POST" and request.url.path == "/v1/documents":
            return self.upload(request)
        if request.method == "GET" and request.url.path.endswith("/status"):
            return self.status(request.url.path.split("/")[3])
        return httpx.Response(404, json=_error("not_found", "no route"))

    def upload(self, request: httpx.Request) -> httpx.Response:
        parts = _multipart(request)
        file_part = parts["file"]
        upload = {
            "key": request.headers.get("idempotency-key"),
            "filename": file_part.get_filename(),
            "content_type": file_part.get_content_type(),
            "data": file_part.get_payload(decode=True),
            "fields": {name: part.get_content() for name, part in parts.items() if name != "file"},
        }
        self.uploads.append(upload)
        if "rejected" in upload["filename"]:
            return httpx.Response(
                422, json=_error("unsupported_document", "no text could be extracted", "r_422")
            )
        known = self.by_key.get(upload["key"])
        fingerprint = json.dumps([upload["filename"], upload["fields"]], sort_keys=True)
        if known is not None and self.fingerprints[upload["key"]] != fingerprint:
            return httpx.Response(
                409, json=_error("idempotency_key_reused", "this Idempotency-Key was already used")
            )
        self.fingerprints[upload["key"]] = fingerprint
        if known is not None:
            body = {"document_id": known.id, "version": 1, "status": self._state(known)}
            return httpx.Response(200, headers={"idempotent-replayed": "true"}, json=body)
        doc = Doc(id=f"doc_{len(self.docs) + 1}", filename=upload["filename"])
        self.docs[doc.id] = self.by_key[upload["key"]] = doc
        return httpx.Response(202, json={"document_id": doc.id, "version": 1, "status": "queued"})

    def _state(self, doc: Doc) -> str:
        if doc.polls >= self.polls_to_ready:
            return "failed" if "broken" in doc.filename else "ready"
        return "queued" if doc.polls == 0 else "processing"

    def status(self, document_id: str) -> httpx.Response:
        self.status_calls += 1
        doc = self.docs.get(document_id)
        if doc is None:
            return httpx.Response(404, json=_error("not_found", "no such document"))
        doc.polls += 1
        state = self._state(doc)
        return httpx.Response(
            200,
            json={
                "document_id": doc.id,
                "version": 1,
                "status": state,
                "progress": {"done": min(doc.polls, 4), "total": 4},
                "error": "could not extract text from page 3" if state == "failed" else None,
            },
        )


def _error(code: str, message: str, request_id: str = "r_1") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def _multipart(request: httpx.Request) -> dict[str, EmailMessage]:
    raw = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.read()
    message = BytesParser(_class=EmailMessage, policy=default_policy).parsebytes(raw)
    assert message.get_content_type() == "multipart/form-data"
    parts: dict[str, EmailMessage] = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        parts[str(part.get_param("name", header="content-disposition"))] = part
    return parts


# --- helpers -------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "guide.md").write_text("# Guide\n\nHello.")
    (root / "notes.txt").write_text("plain notes")
    (root / "sub" / "report.PDF").write_bytes(b"%PDF-1.4 fake")
    (root / "sub" / "deeper" / "page.html").write_text("<p>hi</p>")
    (root / "sub" / "data.csv").write_text("a,b")  # unsupported
    (root / ".hidden.md").write_text("secret")  # hidden file
    (root / ".git" / "README.md").write_text("in a hidden folder")
    (root / "~$lock.docx").write_bytes(b"office lock file")
    return root


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    sleeps: list[float]


def run_cli(gateway: Any, *args: str, api_key: str | None = API_KEY, transport: Any = None) -> Run:
    out, err, sleeps = io.StringIO(), io.StringIO(), []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    argv = ["load", *args, "--url", "http://gateway.test:8787"]
    if api_key is not None:
        argv += ["--api-key", api_key]
    code = main(
        argv,
        transport=transport or httpx.MockTransport(gateway),
        stdout=out,
        stderr=err,
        sleep=fake_sleep,
    )
    return Run(code, out.getvalue(), err.getvalue(), sleeps)


# --- walking -------------------------------------------------------------------------------------
def test_discover_walks_recursively_and_skips_hidden_and_unsupported(folder: Path) -> None:
    found = [p.relative_to(folder).as_posix() for p in discover(folder)]
    assert found == ["guide.md", "notes.txt", "sub/deeper/page.html", "sub/report.PDF"]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["*.pdf"], ["sub/report.PDF"]),  # case-insensitive
        (["*.md", "*.txt"], ["guide.md", "notes.txt"]),
        (["sub/*"], ["sub/deeper/page.html", "sub/report.PDF"]),  # relative path
        (["*.csv"], []),  # unsupported stays unsupported
    ],
)
def test_discover_patterns(folder: Path, patterns: list[str], expected: list[str]) -> None:
    assert [p.relative_to(folder).as_posix() for p in discover(folder, patterns)] == expected


def test_every_supported_extension_has_a_content_type() -> None:
    assert set(CONTENT_TYPES) == {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt"}


# --- loading -------------------------------------------------------------------------------------
def test_load_uploads_polls_and_summarises(folder: Path) -> None:
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--visibility", "tenant")
    assert run.code == 0, run.stdout + run.stderr
    assert "loaded 4, unchanged 0, failed 0 (of 4 files)" in run.stdout

    by_name = {u["filename"]: u for u in gateway.uploads}
    assert set(by_name) == {"guide.md", "notes.txt", "page.html", "report.PDF"}
    pdf = by_name["report.PDF"]
    assert pdf["key"] == hashlib.sha256(b"%PDF-1.4 fake").hexdigest()
    assert pdf["data"] == b"%PDF-1.4 fake"
    assert pdf["content_type"] == "application/pdf"
    assert pdf["fields"] == {"title": "report", "visibility": "tenant"}
    assert by_name["guide.md"]["content_type"] == "text/markdown"
    assert by_name["page.html"]["content_type"] == "text/html"

    assert gateway.status_calls == 4 * gateway.polls_to_ready  # polled until ready
    assert run.sleeps == [1.0] * 4 * (gateway.polls_to_ready - 1)  # --poll-interval default
    assert "[4/4]" in run.stderr  # not a terminal: one progress line per file


def test_rerun_is_idempotent(folder: Path) -> None:
    gateway = FakeGateway()
    assert run_cli(gateway, str(folder)).code == 0
    again = run_cli(gateway, str(folder))
    assert again.code == 0
    assert "loaded 0, unchanged 4, failed 0" in again.stdout
    assert len(gateway.docs) == 4  # no second copies
    keys = [u["key"] for u in gateway.uploads]
    assert sorted(keys[:4]) == sorted(keys[4:])  # same keys (order varies with concurrency)


def test_same_content_under_another_name_is_unchanged(folder: Path) -> None:
    (folder / "copy-of-notes.txt").write_text("plain notes")
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--concurrency", "1", "--pattern", "*notes.txt")
    assert run.code == 0, run.stdout
    assert "loaded 1, unchanged 1, failed 0" in run.stdout
    assert "notes.txt: the same content was already uploaded under another name" in run.stdout
    assert len(gateway.docs) == 1


def test_failures_are_reported_and_exit_nonzero(folder: Path) -> None:
    (folder / "broken.txt").write_text("will fail in processing")
    (folder / "rejected.md").write_text("refused at upload")
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--no-progress")
    assert run.code == 1
    assert "loaded 4, unchanged 0, failed 2 (of 6 files)" in run.stdout
    assert "broken.txt: processing failed: could not extract text from page 3" in run.stdout
    assert (
        "rejected.md: HTTP 422 unsupported_document: no text could be extracted (request r_422)"
        in run.stdout
    )
    assert run.stderr == ""  # --no-progress


def test_json_summary(folder: Path) -> None:
    (folder / "broken.txt").write_text("x")
    run = run_cli(FakeGateway(), str(folder), "--json", "--pattern", "*.txt")
    assert run.code == 1
    summary = json.loads(run.stdout)
    assert (summary["loaded"], summary["unchanged"], summary["failed"]) == (1, 0, 1)
    files = {f["path"]: f for f in summary["files"]}
    assert files["notes.txt"]["state"] == "loaded"
    assert files["notes.txt"]["document_id"].startswith("doc_")
    assert files["broken.txt"]["reason"].startswith("processing failed")


def test_bad_api_key_stops_the_run(folder: Path) -> None:
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--concurrency", "1", api_key="wrong")
    assert run.code == 1
    assert "failed 4" in run.stdout
    assert "HTTP 401 unauthorized: bad API key (request r_401)" in run.stdout
    assert run.stdout.count("not attempted: authentication failed") == 3
    assert len(gateway.uploads) == 0


def test_api_key_from_environment(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGERAG_API_KEY", API_KEY)
    assert run_cli(FakeGateway(), str(folder), api_key=None).code == 0


def test_missing_api_key_is_a_usage_error(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGERAG_API_KEY", raising=False)
    run = run_cli(FakeGateway(), str(folder), api_key=None)
    assert run.code == 2
    assert "EDGERAG_API_KEY" in run.stderr


@pytest.mark.parametrize(
    "args", [["/no/such/folder"], ["{folder}", "--concurrency", "0"], ["{folder}", "--bogus"]]
)
def test_usage_errors(folder: Path, args: list[str]) -> None:
    run = run_cli(FakeGateway(), *[a.format(folder=folder) for a in args])
    assert run.code == 2
    assert run.stderr


def test_empty_folder_is_fine(tmp_path: Path) -> None:
    run = run_cli(FakeGateway(), str(tmp_path))
    assert run.code == 0
    assert "nothing to load" in run.stderr


def test_429_and_503_are_retried_with_retry_after(folder: Path) -> None:
    gateway = FakeGateway(fail_first={"/v1/documents": [429, 503]})
    run = run_cli(gateway, str(folder), "--pattern", "guide.md")
    assert run.code == 0, run.stdout
    assert run.sleeps[:2] == [2.0, 2.0]  # Retry-After honoured
    assert len(gateway.uploads) == 1


def test_unreachable_server(folder: Path) -> None:
    attempts = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    run = run_cli(
        None, str(folder), "--pattern", "notes.txt", transport=httpx.MockTransport(refuse)
    )
    assert run.code == 1
    assert "notes.txt: cannot reach the server: connection refused" in run.stdout
    assert len(attempts) == 5
    assert run.sleeps == [0.5, 1.0, 2.0, 4.0]  # exponential backoff


def test_gives_up_waiting(folder: Path) -> None:
    gateway = FakeGateway(polls_to_ready=10**6)
    run = run_cli(gateway, str(folder), "--pattern", "notes.txt", "--wait-timeout", "0")
    assert run.code == 1
    assert "still processing after 0 s" in run.stdout


def test_rich_progress_on_a_terminal() -> None:
    from rich.console import Console

    stream = io.StringIO()
    reporter = RichReporter(2, Console(file=stream, force_terminal=True, width=100))
    with reporter.progress_bar:
        reporter.started("a.md")
        reporter.progress("a.md", 1, 3)
        reporter.finished(Outcome("a.md", "loaded", "doc_1", 1))
        reporter.started("b.md")
        reporter.finished(Outcome("b.md", "failed", reason="nope"))
    assert "loaded 1 · unchanged 0 · failed 1" in stream.getvalue()
