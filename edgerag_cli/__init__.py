"""edgerag command line (CPython only): bulk-load a folder into a tenant through the HTTP API.

    python -m edgerag_cli load ./docs --url http://127.0.0.1:8787 --api-key $KEY \\
        [--pattern '*.pdf' ...] [--concurrency 4] [--visibility tenant] [--source NAME] [--strict]

The folder is mirrored into documents, one per file: each supported file (.pdf .docx .html
.htm .md .markdown .txt) becomes a document carrying `metadata: {"source": NAME,
"source_path": "sub/file.pdf"}` (NAME: `--source`, default the folder's name). A run first
lists the tenant's documents (`GET /v1/auth/me`, `GET /v1/documents`) and keeps those the
caller owns with this source and visibility; then, per file:

- no such document            -> `POST /v1/documents` (multipart)            -> *loaded*
- same SHA-256 as its latest version -> nothing is sent                       -> *unchanged*
- other content, or the latest version failed -> `PUT /v1/documents/{id}`: a new version
                                                                               -> *updated*

So re-runs are idempotent from any machine (the server is the only state), a changed file
becomes a new version of the same document, and a run with another `--visibility` (or by
another caller) creates its own documents instead of claiming someone else's. The loader never
deletes: a removed or renamed file leaves its document in place. Uploads carry an
`Idempotency-Key` unique to the run and file, so retried requests never create a second copy.
Then `GET /v1/documents/{id}/status` is polled until the document is `ready` or `failed`.

Hidden files and folders and Office lock files (`~$…`) are ignored; other files of an
unsupported type are listed as `skipped (unsupported)`. Progress goes to stderr, the summary
to stdout; the exit status is 1 if any file failed (or, with `--strict`, was skipped), 2 for
usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import httpx

from edgerag_cli.deploy import cli as deploy_cli

__all__ = ["CONTENT_TYPES", "Loader", "Outcome", "discover", "main", "scan"]

CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
}
DEFAULT_URL = "http://127.0.0.1:8787"
USER_AGENT = "edgerag-cli/0.1"
FINAL_STATES = frozenset({"ready", "failed"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 5  # per HTTP call, for transient failures
MAX_RETRY_AFTER_S = 60.0

State = Literal["loaded", "updated", "unchanged", "failed"]
STATES: tuple[State, ...] = ("loaded", "updated", "unchanged", "failed")
LIST_PAGE = 500
Sleep = Callable[[float], Awaitable[None]]


# --- finding files -----------------------------------------------------------------------------
def _skipped_name(name: str) -> bool:
    return name.startswith(".") or name.startswith("~$")  # hidden, Office lock files


def scan(folder: Path, patterns: Sequence[str] = ()) -> tuple[list[Path], list[Path]]:
    """(supported files, unsupported files) under `folder`, recursively, each sorted.

    Hidden files/folders and Office lock files are neither: they are not documents. `patterns`
    (shell globs, case-insensitive) must match the file name or its path relative to
    `folder`; with no patterns every file is taken.
    """
    wanted = [p.lower() for p in patterns]
    found: list[Path] = []
    unsupported: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skipped_name(d))
        for name in files:
            if _skipped_name(name):
                continue
            path = Path(root, name)
            if not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix().lower()
            if wanted and not any(
                fnmatch.fnmatchcase(name.lower(), p) or fnmatch.fnmatchcase(rel, p) for p in wanted
            ):
                continue
            supported = Path(name).suffix.lower() in CONTENT_TYPES
            (found if supported else unsupported).append(path)

    def order(paths: list[Path]) -> list[Path]:
        return sorted(paths, key=lambda p: p.relative_to(folder).as_posix())

    return order(found), order(unsupported)


def discover(folder: Path, patterns: Sequence[str] = ()) -> list[Path]:
    """Supported files under `folder` (see `scan`)."""
    return scan(folder, patterns)[0]


# --- results -----------------------------------------------------------------------------------
@dataclass
class Outcome:
    path: str  # relative to the folder
    state: State
    document_id: str | None = None
    version: int | None = None
    reason: str | None = None


class Reporter(Protocol):
    def started(self, path: str) -> None: ...

    def progress(self, path: str, done: int, total: int) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...


class _Failure(Exception):
    """A file could not be loaded; the message is the reason shown in the summary."""


def _error_reason(response: httpx.Response) -> str:
    """`HTTP 422 code: message (request id)` from the API's error shape, or the raw status."""
    reason = f"HTTP {response.status_code}"
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        if error.get("code"):
            reason += f" {error['code']}"
        if error.get("message"):
            reason += f": {error['message']}"
        request_id = error.get("request_id") or response.headers.get("x-request-id")
        if request_id:
            reason += f" (request {request_id})"
    elif response.reason_phrase:
        reason += f" {response.reason_phrase}"
    return reason


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class Known:
    """A document this run may reuse: the caller's own, same source, path and visibility."""

    document_id: str
    content_hash: str | None
    status: str | None
    version: int | None


class Fatal(Exception):
    """The run cannot start (bad key, server unreachable, listing refused)."""


# --- loading -----------------------------------------------------------------------------------
class Loader:
    """Uploads files and waits for them; one instance per run (it holds the abort flag)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        source: str,
        visibility: str = "tenant",
        poll_interval: float = 1.0,
        wait_timeout: float = 600.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        reporter: Reporter | None = None,
    ) -> None:
        self._client = client
        self._headers = {"authorization": f"Bearer {api_key}", "user-agent": USER_AGENT}
        self._source = source
        self._visibility = visibility
        self._poll_interval = poll_interval
        self._wait_timeout = wait_timeout
        self._sleep = sleep
        self._clock = clock
        self.reporter = reporter
        self._run_id = secrets.token_hex(8)  # idempotency keys are per run: see _key
        self._known: dict[str, Known] = {}
        self._abort: str | None = None  # set on 401: no point trying the other files

    async def prepare(self) -> None:
        """Find the documents earlier runs made: the caller's own, with this source and
        visibility, by `metadata.source_path` (the server is the only state kept)."""
        try:
            me = await self._call("GET", "/v1/auth/me")
            if me.status_code != 200:
                raise Fatal(f"cannot identify the caller: {_error_reason(me)}")
            caller = _json_object(me).get("id")
            after: str | None = None
            while True:
                params = {"limit": str(LIST_PAGE), **({"after": after} if after else {})}
                page = await self._call("GET", "/v1/documents", params=params)
                if page.status_code != 200:
                    raise Fatal(f"cannot list the documents: {_error_reason(page)}")
                body = _json_object(page)
                for doc in body.get("documents") or []:
                    self._remember(doc, caller)
                cursor = body.get("next_cursor")
                if not cursor:
                    return
                if cursor == after:  # a server that ignored the cursor: never loop forever
                    raise Fatal("cannot list the documents: the server repeated a page")
                after = str(cursor)
        except _Failure as exc:
            raise Fatal(str(exc)) from exc

    def _remember(self, doc: Any, caller: Any) -> None:
        if not isinstance(doc, dict) or doc.get("owner_id") != caller:
            return
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("source") != self._source:
            return
        path = metadata.get("source_path")
        if not isinstance(path, str) or doc.get("visibility") != self._visibility:
            return
        version = doc.get("latest_version")
        self._known.setdefault(
            path,
            Known(
                str(doc.get("id")),
                doc.get("content_hash"),
                doc.get("status"),
                version if isinstance(version, int) else None,
            ),
        )

    async def run(self, folder: Path, paths: Sequence[Path], concurrency: int) -> list[Outcome]:
        semaphore = asyncio.Semaphore(max(1, concurrency))

        async def one(path: Path) -> Outcome:
            async with semaphore:
                return await self.load(folder, path)

        return list(await asyncio.gather(*(one(p) for p in paths)))

    async def load(self, folder: Path, path: Path) -> Outcome:
        rel = path.relative_to(folder).as_posix()
        if self.reporter:
            self.reporter.started(rel)
        try:
            if self._abort:
                raise _Failure(f"not attempted: {self._abort}")
            outcome = await self._load(rel, path)
        except _Failure as exc:
            outcome = Outcome(rel, "failed", reason=str(exc))
        except OSError as exc:
            outcome = Outcome(rel, "failed", reason=f"cannot read file: {exc.strerror or exc}")
        if self.reporter:
            self.reporter.finished(outcome)
        return outcome

    def _key(self, method: str, rel: str, digest: str) -> str:
        """Unique to this run and file: retries replay, while a later run decides from the
        listing (a key reused across runs would replay a document deleted since)."""
        scope = "\0".join((method, self._source, rel, self._visibility, digest))
        return f"edgerag-cli-{self._run_id}-{hashlib.sha256(scope.encode()).hexdigest()[:40]}"

    async def _load(self, rel: str, path: Path) -> Outcome:
        data = await asyncio.to_thread(path.read_bytes)
        digest = hashlib.sha256(data).hexdigest()
        file = {"file": (path.name, data, CONTENT_TYPES[path.suffix.lower()])}
        known = self._known.get(rel)
        if known is not None and known.content_hash == digest and known.status != "failed":
            status, version, error = known.status, known.version, None
            if status not in FINAL_STATES:  # still processing (e.g. an interrupted run)
                status, version, error = await self._wait(rel, known.document_id, version)
            if status == "failed":
                raise _Failure(f"processing failed: {error or 'no reason given'}")
            return Outcome(rel, "unchanged", known.document_id, version)
        if known is not None:
            response = await self._call(
                "PUT",
                f"/v1/documents/{known.document_id}",
                headers={"idempotency-key": self._key("PUT", rel, digest)},
                files=file,
                data={"title": path.stem},
            )
            if response.status_code != 404:  # 404: deleted since the listing; upload anew
                body = self._accepted(response)
                state: State = "unchanged" if _truthy(body.get("unchanged")) else "updated"
                return await self._finish(rel, body, state)
        metadata = {"source": self._source, "source_path": rel}
        response = await self._call(
            "POST",
            "/v1/documents",
            headers={"idempotency-key": self._key("POST", rel, digest)},
            files=file,
            data={
                "title": path.stem,
                "visibility": self._visibility,
                "metadata": json.dumps(metadata),
            },
        )
        return await self._finish(rel, self._accepted(response), "loaded")

    def _accepted(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code not in (200, 201, 202):
            raise _Failure(_error_reason(response))
        body = _json_object(response)
        if not body.get("document_id"):
            raise _Failure(f"HTTP {response.status_code} without a document_id")
        return body

    async def _finish(self, rel: str, body: dict[str, Any], state: State) -> Outcome:
        document_id = str(body["document_id"])
        status, version, error = body.get("status"), body.get("version"), body.get("error")
        if status not in FINAL_STATES:
            status, version, error = await self._wait(rel, document_id, version)
        if status == "failed":
            raise _Failure(f"processing failed: {error or 'no reason given'}")
        return Outcome(rel, state, document_id, version if isinstance(version, int) else None)

    async def _wait(self, rel: str, document_id: str, version: Any) -> tuple[str, Any, Any]:
        deadline = self._clock() + self._wait_timeout
        last = "queued"
        while True:
            response = await self._call("GET", f"/v1/documents/{document_id}/status")
            if response.status_code != 200:
                raise _Failure(f"status check failed: {_error_reason(response)}")
            body = _json_object(response)
            last = str(body.get("status") or last)
            version = body.get("version", version)
            progress = body.get("progress")
            if self.reporter and isinstance(progress, dict):
                done, total = progress.get("done"), progress.get("total")
                if isinstance(done, int) and isinstance(total, int):
                    self.reporter.progress(rel, done, total)
            if last in FINAL_STATES:
                return last, version, body.get("error")
            if self._clock() >= deadline:
                raise _Failure(
                    f"still {last} after {self._wait_timeout:g} s (document {document_id}); "
                    "it may finish later: check its status"
                )
            await self._sleep(self._poll_interval)

    async def _call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One API call, retried on transport errors, 429 and 5xx (the idempotency key makes
        retried uploads safe). 401 stops the whole run."""
        delay = 0.5
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self._client.request(
                    method, path, headers={**self._headers, **(headers or {})}, **kwargs
                )
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise _Failure(f"cannot reach the server: {exc or type(exc).__name__}") from exc
                await self._sleep(delay)
                delay *= 2
                continue
            if response.status_code == 401:
                self._abort = f"authentication failed ({_error_reason(response)})"
                raise _Failure(_error_reason(response))
            if response.status_code in RETRY_STATUSES and attempt < MAX_ATTEMPTS:
                await self._sleep(_retry_after(response, delay))
                delay *= 2
                continue
            return response
        raise AssertionError("unreachable")


def _retry_after(response: httpx.Response, fallback: float) -> float:
    value = response.headers.get("retry-after", "").strip()
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return fallback


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise _Failure(f"HTTP {response.status_code} with a body that is not JSON") from exc
    if not isinstance(body, dict):
        raise _Failure(f"HTTP {response.status_code} with an unexpected JSON body")
    return body


# --- progress display --------------------------------------------------------------------------
class LineReporter:
    """One line per finished file: for logs and pipes, where a live bar would be noise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total, self._stream, self._done = total, stream, 0

    def started(self, path: str) -> None:
        pass

    def progress(self, path: str, done: int, total: int) -> None:
        pass

    def finished(self, outcome: Outcome) -> None:
        self._done += 1
        detail = outcome.reason or outcome.document_id or ""
        print(
            f"[{self._done}/{self._total}] {outcome.state:<9} {outcome.path}  {detail}",
            file=self._stream,
            flush=True,
        )


class RichReporter:
    """A live progress bar (rich) on a terminal: overall files plus one line per active file."""

    def __init__(self, total: int, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress_bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._overall = self.progress_bar.add_task("loading", total=total)
        self._active: dict[str, Any] = {}
        self._counts = dict.fromkeys(STATES, 0)

    def started(self, path: str) -> None:
        self._active[path] = self.progress_bar.add_task(f"  {path}", total=None)

    def progress(self, path: str, done: int, total: int) -> None:
        task = self._active.get(path)
        if task is not None:
            self.progress_bar.update(task, completed=done, total=max(total, 1))

    def finished(self, outcome: Outcome) -> None:
        task = self._active.pop(outcome.path, None)
        if task is not None:
            self.progress_bar.remove_task(task)
        self._counts[outcome.state] += 1
        counts = " · ".join(f"{k} {v}" for k, v in self._counts.items())
        self.progress_bar.update(self._overall, advance=1, description=f"loading ({counts})")


# --- command line ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edgerag_cli", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser(
        "load",
        help="upload every supported file in a folder and wait until it is searchable",
        description=f"Upload every supported file ({' '.join(sorted(CONTENT_TYPES))}) in "
        "FOLDER, recursively, as one document per file, and wait until each is ready. Safe to "
        "re-run: unchanged files are not sent again, a changed file becomes a new version of its "
        "document, files of other types are listed as skipped.",
    )
    load.add_argument("folder", type=Path)
    load.add_argument(
        "--url",
        default=os.environ.get("EDGERAG_URL", DEFAULT_URL),
        help="gateway base URL (env EDGERAG_URL, default %(default)s)",
    )
    load.add_argument(
        "--api-key",
        default=os.environ.get("EDGERAG_API_KEY"),
        help="tenant API key (env EDGERAG_API_KEY)",
    )
    load.add_argument(
        "--pattern",
        action="append",
        default=[],
        metavar="GLOB",
        help="only files whose name or relative path matches (repeatable; e.g. '*.pdf')",
    )
    load.add_argument("--concurrency", type=int, default=4, help="parallel uploads (1-32)")
    load.add_argument(
        "--visibility",
        default="tenant",
        choices=("tenant", "private", "students"),
        help="visibility of the documents (default %(default)s); part of what identifies them: "
        "a run with another visibility loads its own documents",
    )
    load.add_argument(
        "--source",
        help="name of this collection, stored as metadata.source with each document's "
        "source_path (default: the folder's name); re-runs match documents by both",
    )
    load.add_argument(
        "--strict", action="store_true", help="exit 1 if any file had an unsupported type"
    )
    load.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between status checks"
    )
    load.add_argument(
        "--wait-timeout",
        type=float,
        default=600.0,
        help="give up waiting for one document after this many seconds",
    )
    load.add_argument("--timeout", type=float, default=120.0, help="HTTP timeout per request")
    load.add_argument("--json", action="store_true", help="print the summary as JSON")
    load.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    deploy_cli.add_parsers(commands)  # deploy, drift: per-tenant deploys (edgerag_cli/deploy/)
    return parser


def _summary(
    outcomes: Sequence[Outcome], skipped: Sequence[str], stream: TextIO, as_json: bool
) -> None:
    counts: dict[str, int] = {s: sum(o.state == s for o in outcomes) for s in STATES}
    if as_json:
        payload: dict[str, Any] = {**counts, "skipped": list(skipped)}
        payload["files"] = [asdict(o) for o in outcomes]
        print(json.dumps(payload, indent=2), file=stream)
        return
    print(
        ", ".join(f"{state} {n}" for state, n in counts.items()) + f" (of {len(outcomes)} files)",
        file=stream,
    )
    if skipped:
        print(f"skipped (unsupported): {len(skipped)}", file=stream)
        for path in skipped:
            print(f"  {path}", file=stream)
    notes = [o for o in outcomes if o.state != "failed" and o.reason]
    if notes:
        print("notes:", file=stream)
        for o in notes:
            print(f"  {o.path}: {o.reason}", file=stream)
    failed = [o for o in outcomes if o.state == "failed"]
    if failed:
        print("failed:", file=stream)
        for o in failed:
            print(f"  {o.path}: {o.reason}", file=stream)


@contextlib.contextmanager
def _reporter(args: argparse.Namespace, total: int, stderr: TextIO) -> Iterator[Reporter | None]:
    if args.no_progress or total == 0:
        yield None
        return
    from rich.console import Console

    console = Console(file=stderr)
    if not console.is_terminal:
        yield LineReporter(total, stderr)
        return
    reporter = RichReporter(total, console)
    with reporter.progress_bar:
        yield reporter


async def run_load(
    args: argparse.Namespace,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    stdout: TextIO,
    stderr: TextIO,
    sleep: Sleep = asyncio.sleep,
) -> int:
    folder: Path = args.folder
    paths, unsupported = scan(folder, args.pattern)
    skipped = [p.relative_to(folder).as_posix() for p in unsupported]
    skip_code = 1 if skipped and args.strict else 0
    if not paths:
        print(f"nothing to load: no supported files in {folder}", file=stderr)
        _summary([], skipped, stdout, args.json)
        return skip_code
    async with httpx.AsyncClient(
        base_url=args.url.rstrip("/"),
        transport=transport,
        timeout=httpx.Timeout(args.timeout),
        trust_env=transport is None,
    ) as client:
        loader = Loader(
            client,
            api_key=args.api_key,
            source=args.source,
            visibility=args.visibility,
            poll_interval=args.poll_interval,
            wait_timeout=args.wait_timeout,
            sleep=sleep,
        )
        try:
            await loader.prepare()
        except Fatal as exc:
            print(f"error: {exc}", file=stderr)
            return 1
        with _reporter(args, len(paths), stderr) as reporter:
            loader.reporter = reporter
            outcomes = await loader.run(folder, paths, args.concurrency)
    _summary(outcomes, skipped, stdout, args.json)
    return 1 if any(o.state == "failed" for o in outcomes) else skip_code


def main(
    argv: Sequence[str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Sleep = asyncio.sleep,
) -> int:
    """Entry point; `transport` (e.g. `httpx.MockTransport`) and `sleep` are for tests."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command in deploy_cli.COMMANDS:
        return deploy_cli.run(args, stdout=out, stderr=err)
    if not args.api_key:
        parser.print_usage(err)
        print("error: an API key is required: --api-key or EDGERAG_API_KEY", file=err)
        return 2
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=err)
        return 2
    if not 1 <= args.concurrency <= 32:
        print("error: --concurrency must be between 1 and 32", file=err)
        return 2
    if not args.url.startswith(("http://", "https://")):
        print(f"error: --url must be an http(s) URL, got {args.url!r}", file=err)
        return 2
    args.source = args.source or args.folder.resolve().name or "root"
    try:
        return asyncio.run(run_load(args, transport=transport, stdout=out, stderr=err, sleep=sleep))
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
