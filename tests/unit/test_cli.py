"""`python -m edgerag_cli load`: walking, idempotent multipart uploads, polling, summary, exit
codes — against a fake gateway on `httpx.MockTransport` (nothing leaves the process)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgerag_cli import CONTENT_TYPES, Outcome, RichReporter, discover, main, scan

API_KEY = "ek_test_123"


# --- a fake gateway ------------------------------------------------------------------------------
@dataclass
class Doc:
    id: str
    owner: str
    filename: str
    visibility: str
    metadata: dict[str, Any]
    content_hash: str
    version: int = 1
    polls: int = 0


@dataclass
class FakeGateway:
    """Implements the contract the CLI is written against:
    GET /v1/auth/me -> {id, ...};
    GET /v1/documents?limit&after -> {documents: [{id, owner_id, visibility, metadata,
    content_hash, status, latest_version, ...}], next_cursor} (what the caller may see);
    POST /v1/documents (multipart, Idempotency-Key scoped to the caller) -> 202
    {document_id, version, status}; a replay of a known key -> 200 + `Idempotent-Replayed: true`;
    PUT /v1/documents/{id} (multipart, owner only) -> 202 new version, 200 unchanged: true;
    GET /v1/documents/{id}/status -> queued, processing, ... ready (or failed)."""

    polls_to_ready: int = 2
    keys: dict[str, str] = field(default_factory=lambda: {API_KEY: "key_admin"})
    page_size: int = 3  # small pages: the CLI must follow next_cursor
    ignore_cursor: bool = False
    uploads: list[dict[str, Any]] = field(default_factory=list)
    by_key: dict[tuple[str, str], Doc] = field(default_factory=dict)
    docs: dict[str, Doc] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str], str] = field(default_factory=dict)
    status_calls: int = 0
    list_calls: int = 0
    fail_first: dict[str, list[int]] = field(default_factory=dict)  # "POST /path" -> statuses

    def __call__(self, request: httpx.Request) -> httpx.Response:
        queued = self.fail_first.get(f"{request.method} {request.url.path}")
        if queued:
            status = queued.pop(0)
            return httpx.Response(
                status, headers={"retry-after": "2"}, json=_error("busy", "slow down")
            )
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        caller = self.keys.get(token)
        if caller is None:
            return httpx.Response(401, json=_error("unauthorized", "bad API key", "r_401"))
        path = request.url.path
        if request.method == "GET" and path == "/v1/auth/me":
            return httpx.Response(200, json={"id": caller, "role": "admin", "kind": "api_key"})
        if request.method == "GET" and path == "/v1/documents":
            return self.listing(request)
        if request.method == "POST" and path == "/v1/documents":
            return self.upload(request, caller)
        if request.method == "PUT" and path.startswith("/v1/documents/"):
            return self.replace(request, caller, path.split("/")[3])
        if request.method == "GET" and path.endswith("/status"):
            return self.status(path.split("/")[3])
        return httpx.Response(404, json=_error("not_found", "no route"))

    def _read(self, request: httpx.Request) -> dict[str, Any]:
        parts = _multipart(request)
        file_part = parts["file"]
        upload = {
            "method": request.method,
            "path": request.url.path,
            "key": request.headers.get("idempotency-key"),
            "filename": file_part.get_filename(),
            "content_type": file_part.get_content_type(),
            "data": file_part.get_payload(decode=True),
            "fields": {name: part.get_content() for name, part in parts.items() if name != "file"},
        }
        self.uploads.append(upload)
        return upload

    def upload(self, request: httpx.Request, caller: str) -> httpx.Response:
        upload = self._read(request)
        if "rejected" in upload["filename"]:
            return httpx.Response(
                422, json=_error("unsupported_document", "no text could be extracted", "r_422")
            )
        scoped = (caller, upload["key"])
        known = self.by_key.get(scoped)
        fingerprint = json.dumps([upload["filename"], upload["fields"]], sort_keys=True)
        if known is not None and self.fingerprints[scoped] != fingerprint:
            return httpx.Response(
                409, json=_error("idempotency_key_reused", "this Idempotency-Key was already used")
            )
        self.fingerprints[scoped] = fingerprint
        if known is not None:
            body = {"document_id": known.id, "version": 1, "status": self._state(known)}
            return httpx.Response(200, headers={"idempotent-replayed": "true"}, json=body)
        fields = upload["fields"]
        doc = Doc(
            id=f"doc_{len(self.docs) + 1}",
            owner=caller,
            filename=upload["filename"],
            visibility=fields.get("visibility", "tenant"),
            metadata=json.loads(fields.get("metadata", "{}")),
            content_hash=hashlib.sha256(upload["data"]).hexdigest(),
        )
        self.docs[doc.id] = self.by_key[scoped] = doc
        return httpx.Response(202, json={"document_id": doc.id, "version": 1, "status": "queued"})

    def replace(self, request: httpx.Request, caller: str, document_id: str) -> httpx.Response:
        upload = self._read(request)
        doc = self.docs.get(document_id)
        if doc is None or doc.owner != caller:
            return httpx.Response(404, json=_error("not_found", "no such document"))
        digest = hashlib.sha256(upload["data"]).hexdigest()
        if digest == doc.content_hash and self._state(doc) != "failed":
            body = {"document_id": doc.id, "version": doc.version, "status": self._state(doc)}
            return httpx.Response(200, json={**body, "unchanged": True})
        doc.version, doc.content_hash, doc.polls = doc.version + 1, digest, 0
        doc.filename = upload["filename"]
        body = {"document_id": doc.id, "version": doc.version, "status": "queued"}
        return httpx.Response(202, json=body)

    def listing(self, request: httpx.Request) -> httpx.Response:
        self.list_calls += 1
        after = "" if self.ignore_cursor else request.url.params.get("after", "")
        limit = min(int(request.url.params.get("limit", "100")), self.page_size)
        visible = sorted(self.docs.values(), key=lambda d: d.id)
        page = [d for d in visible if d.id > after][: limit + 1]
        rows = [
            {
                "id": d.id,
                "owner_id": d.owner,
                "title": Path(d.filename).stem,
                "visibility": d.visibility,
                "metadata": d.metadata,
                "content_hash": d.content_hash,
                "latest_version": d.version,
                "status": self._state(d),
            }
            for d in page[:limit]
        ]
        cursor = rows[-1]["id"] if len(page) > limit else None
        return httpx.Response(200, json={"documents": rows, "next_cursor": cursor})

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
                "version": doc.version,
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


def test_scan_names_the_unsupported_files(folder: Path) -> None:
    supported, unsupported = scan(folder)
    assert [p.relative_to(folder).as_posix() for p in supported] == [
        p.relative_to(folder).as_posix() for p in discover(folder)
    ]
    # hidden files and Office lock files are not "unsupported": they are not documents at all
    assert [p.relative_to(folder).as_posix() for p in unsupported] == ["sub/data.csv"]


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
def posts(gateway: FakeGateway) -> list[dict[str, Any]]:
    return [u for u in gateway.uploads if u["method"] == "POST"]


def test_load_uploads_polls_and_summarises(folder: Path) -> None:
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--visibility", "tenant")
    assert run.code == 0, run.stdout + run.stderr
    assert "loaded 4, updated 0, unchanged 0, failed 0 (of 4 files)" in run.stdout

    by_name = {u["filename"]: u for u in gateway.uploads}
    assert set(by_name) == {"guide.md", "notes.txt", "page.html", "report.PDF"}
    pdf = by_name["report.PDF"]
    assert pdf["key"].startswith("edgerag-cli-") and len(pdf["key"]) <= 255
    assert pdf["data"] == b"%PDF-1.4 fake"
    assert pdf["content_type"] == "application/pdf"
    assert pdf["fields"] == {
        "title": "report",
        "visibility": "tenant",
        "metadata": json.dumps({"source": "docs", "source_path": "sub/report.PDF"}),
    }
    assert by_name["guide.md"]["content_type"] == "text/markdown"
    assert by_name["page.html"]["content_type"] == "text/html"
    assert len({u["key"] for u in gateway.uploads}) == 4  # one key per file

    assert gateway.status_calls == 4 * gateway.polls_to_ready  # polled until ready
    assert run.sleeps == [1.0] * 4 * (gateway.polls_to_ready - 1)  # --poll-interval default
    assert "[4/4]" in run.stderr  # not a terminal: one progress line per file


def test_rerun_is_idempotent(folder: Path) -> None:
    gateway = FakeGateway()
    assert run_cli(gateway, str(folder)).code == 0
    again = run_cli(gateway, str(folder))
    assert again.code == 0
    assert "loaded 0, updated 0, unchanged 4, failed 0" in again.stdout
    assert len(gateway.docs) == 4  # no second copies
    assert len(gateway.uploads) == 4  # nothing was even sent again
    assert gateway.list_calls == 1 + 2  # then 4 documents in pages of 3: the cursor was followed


def test_a_listing_that_repeats_a_page_stops_the_run(folder: Path) -> None:
    gateway = FakeGateway()
    assert run_cli(gateway, str(folder)).code == 0
    gateway.ignore_cursor = True
    run = run_cli(gateway, str(folder))
    assert run.code == 1
    assert "cannot list the documents: the server repeated a page" in run.stderr
    assert len(gateway.uploads) == 4  # nothing uploaded on a listing it cannot trust


def test_a_changed_file_becomes_a_new_version_of_its_document(folder: Path) -> None:
    gateway = FakeGateway()
    assert run_cli(gateway, str(folder)).code == 0
    guide = next(d for d in gateway.docs.values() if d.filename == "guide.md")
    (folder / "guide.md").write_text("# Guide\n\nHello again, with more to say.")
    again = run_cli(gateway, str(folder))
    assert again.code == 0, again.stdout
    assert "loaded 0, updated 1, unchanged 3, failed 0" in again.stdout
    assert len(gateway.docs) == 4  # no second document
    assert guide.version == 2
    last = gateway.uploads[-1]
    assert (last["method"], last["path"]) == ("PUT", f"/v1/documents/{guide.id}")
    assert last["data"] == b"# Guide\n\nHello again, with more to say."
    (guide_file,) = again_json(gateway, folder)["files"]
    assert (guide_file["state"], guide_file["version"]) == ("unchanged", 2)


def again_json(gateway: FakeGateway, folder: Path) -> dict[str, Any]:
    run = run_cli(gateway, str(folder), "--json", "--pattern", "guide.md")
    return dict(json.loads(run.stdout))


def test_a_rerun_from_another_copy_of_the_folder_finds_the_same_documents(
    folder: Path, tmp_path: Path
) -> None:
    gateway = FakeGateway()
    assert run_cli(gateway, str(folder)).code == 0
    elsewhere = tmp_path / "another-machine" / "docs"  # same folder name, other place
    shutil.copytree(folder, elsewhere)
    (elsewhere / "notes.txt").write_text("plain notes, edited on the laptop")
    run = run_cli(gateway, str(elsewhere))
    assert "loaded 0, updated 1, unchanged 3, failed 0" in run.stdout, run.stdout
    assert len(gateway.docs) == 4


def test_folders_with_the_same_file_names_stay_apart(tmp_path: Path) -> None:
    for name in ("physics", "chemistry"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.md").write_text(f"# {name} notes")
    gateway = FakeGateway()
    assert "loaded 1," in run_cli(gateway, str(tmp_path / "physics")).stdout
    assert "loaded 1," in run_cli(gateway, str(tmp_path / "chemistry")).stdout
    assert len(gateway.docs) == 2
    # --source names the collection explicitly (e.g. when folder names differ between machines)
    run = run_cli(gateway, str(tmp_path / "chemistry"), "--source", "physics")
    assert "loaded 0, updated 1, unchanged 0" in run.stdout, run.stdout


def test_each_file_is_its_own_document(folder: Path) -> None:
    (folder / "copy-of-notes.txt").write_text("plain notes")
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--concurrency", "1", "--pattern", "*notes.txt")
    assert run.code == 0, run.stdout
    assert "loaded 2, updated 0, unchanged 0, failed 0" in run.stdout
    assert len(gateway.docs) == 2


def test_another_visibility_creates_the_documents(folder: Path) -> None:
    """Visibility is part of what makes a file "unchanged": a private run after a tenant-wide
    one creates private documents instead of reporting the tenant-wide ones as unchanged."""
    gateway = FakeGateway()
    assert run_cli(gateway, str(folder)).code == 0
    run = run_cli(gateway, str(folder), "--visibility", "private")
    assert run.code == 0, run.stdout
    assert "loaded 4, updated 0, unchanged 0, failed 0" in run.stdout
    assert sorted(d.visibility for d in gateway.docs.values()) == ["private"] * 4 + ["tenant"] * 4
    again = run_cli(gateway, str(folder), "--visibility", "private")
    assert "loaded 0, updated 0, unchanged 4" in again.stdout


def test_another_callers_documents_are_not_reused(folder: Path) -> None:
    """A second teacher loading the same folder gets documents of their own; they never take
    over (or PUT versions onto) the first teacher's documents they can see."""
    gateway = FakeGateway(keys={API_KEY: "u_ada", "ek_grace": "u_grace"})
    assert run_cli(gateway, str(folder)).code == 0
    (folder / "guide.md").write_text("# Guide\n\nGrace's edition.")
    run = run_cli(gateway, str(folder), api_key="ek_grace")
    assert run.code == 0, run.stdout
    assert "loaded 4, updated 0, unchanged 0, failed 0" in run.stdout
    assert sorted(d.owner for d in gateway.docs.values()) == ["u_ada"] * 4 + ["u_grace"] * 4
    assert all(u["method"] == "POST" for u in gateway.uploads)


def test_unsupported_files_are_reported(folder: Path) -> None:
    (folder / "slides.pptx").write_bytes(b"PK not supported")
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder))
    assert run.code == 0, run.stdout
    assert "skipped (unsupported): 2" in run.stdout
    assert "  slides.pptx" in run.stdout and "  sub/data.csv" in run.stdout
    assert ".hidden.md" not in run.stdout and "lock" not in run.stdout
    strict = run_cli(FakeGateway(), str(folder), "--strict")
    assert strict.code == 1
    assert "skipped (unsupported): 2" in strict.stdout
    as_json = json.loads(run_cli(FakeGateway(), str(folder), "--json").stdout)
    assert as_json["skipped"] == ["slides.pptx", "sub/data.csv"]


def test_only_unsupported_files(tmp_path: Path) -> None:
    (tmp_path / "table.csv").write_text("a,b")
    run = run_cli(FakeGateway(), str(tmp_path))
    assert run.code == 0
    assert "skipped (unsupported): 1" in run.stdout and "table.csv" in run.stdout


def test_a_failed_document_is_retried_on_the_next_run(folder: Path) -> None:
    (folder / "broken.txt").write_text("will fail in processing")
    gateway = FakeGateway()
    assert run_cli(gateway, str(folder), "--pattern", "broken.txt").code == 1
    again = run_cli(gateway, str(folder), "--pattern", "broken.txt")
    assert again.code == 1
    assert "failed 1" in again.stdout
    assert [u["method"] for u in gateway.uploads] == ["POST", "PUT"]  # not "unchanged"
    assert len(gateway.docs) == 1


def test_failures_are_reported_and_exit_nonzero(folder: Path) -> None:
    (folder / "broken.txt").write_text("will fail in processing")
    (folder / "rejected.md").write_text("refused at upload")
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--no-progress")
    assert run.code == 1
    assert "loaded 4, updated 0, unchanged 0, failed 2 (of 6 files)" in run.stdout
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
    assert (summary["loaded"], summary["updated"], summary["unchanged"], summary["failed"]) == (
        1,
        0,
        0,
        1,
    )
    assert summary["skipped"] == []
    files = {f["path"]: f for f in summary["files"]}
    assert files["notes.txt"]["state"] == "loaded"
    assert files["notes.txt"]["document_id"].startswith("doc_")
    assert files["broken.txt"]["reason"].startswith("processing failed")


def test_bad_api_key_stops_the_run(folder: Path) -> None:
    gateway = FakeGateway()
    run = run_cli(gateway, str(folder), "--concurrency", "1", api_key="wrong")
    assert run.code == 1
    assert "HTTP 401 unauthorized: bad API key (request r_401)" in run.stderr
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
    gateway = FakeGateway(fail_first={"POST /v1/documents": [429, 503]})
    run = run_cli(gateway, str(folder), "--pattern", "guide.md")
    assert run.code == 0, run.stdout
    assert run.sleeps[:2] == [2.0, 2.0]  # Retry-After honoured
    assert len(gateway.uploads) == 1
    assert len(gateway.docs) == 1


def test_unreachable_server(folder: Path) -> None:
    attempts = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    run = run_cli(
        None, str(folder), "--pattern", "notes.txt", transport=httpx.MockTransport(refuse)
    )
    assert run.code == 1
    assert "cannot reach the server: connection refused" in run.stderr
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
    assert "loaded 1 · updated 0 · unchanged 0 · failed 1" in stream.getvalue()
