"""edgerag command line (CPython only): bulk-load a folder into a tenant through the HTTP API.

    python -m edgerag_cli load ./docs --url http://127.0.0.1:8787 --api-key $KEY \\
        [--pattern '*.pdf' ...] [--concurrency 4] [--visibility tenant]

Each supported file (.pdf .docx .html .htm .md .markdown .txt; hidden files and folders are
skipped) is uploaded as multipart/form-data to `POST /v1/documents` with
`Idempotency-Key: sha256(file bytes)`, so running the command again is safe: the server
answers a replay instead of creating a second document. Then `GET /v1/documents/{id}/status`
is polled until the document is `ready` or `failed`. Progress goes to stderr, the summary
to stdout; the exit status is 1 if any file failed, 2 for usage errors.

A file counts as *unchanged* when the server marks the upload as an idempotent replay: HTTP
200 instead of 202, an `Idempotent-Replayed: true` header, or `"replayed"`/`"unchanged"`/
`"duplicate": true` in the body. A 409 `idempotency_key_reused` (the same bytes were first
uploaded under another file name, title or visibility) also counts as unchanged, with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import hashlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import httpx

__all__ = ["CONTENT_TYPES", "Loader", "Outcome", "discover", "main"]

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

State = Literal["loaded", "unchanged", "failed"]
Sleep = Callable[[float], Awaitable[None]]


# --- finding files -----------------------------------------------------------------------------
def _skipped_name(name: str) -> bool:
    return name.startswith(".") or name.startswith("~$")  # hidden, Office lock files


def discover(folder: Path, patterns: Sequence[str] = ()) -> list[Path]:
    """Supported files under `folder`, recursively, sorted; hidden files/folders skipped.

    `patterns` (shell globs, case-insensitive) must match the file name or its path relative
    to `folder`; with no patterns every supported file is taken.
    """
    wanted = [p.lower() for p in patterns]
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skipped_name(d))
        for name in files:
            if _skipped_name(name) or Path(name).suffix.lower() not in CONTENT_TYPES:
                continue
            path = Path(root, name)
            if not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix().lower()
            if wanted and not any(
                fnmatch.fnmatchcase(name.lower(), p) or fnmatch.fnmatchcase(rel, p) for p in wanted
            ):
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


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


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return str(error.get("code")) if isinstance(error, dict) else None


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _is_replay(response: httpx.Response, body: dict[str, Any]) -> bool:
    return (
        response.status_code == 200
        or _truthy(response.headers.get("idempotent-replayed"))
        or _truthy(response.headers.get("idempotency-replayed"))
        or any(_truthy(body.get(k)) for k in ("replayed", "unchanged", "duplicate"))
    )


# --- loading -----------------------------------------------------------------------------------
class Loader:
    """Uploads files and waits for them; one instance per run (it holds the abort flag)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        visibility: str | None = None,
        poll_interval: float = 1.0,
        wait_timeout: float = 600.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        reporter: Reporter | None = None,
    ) -> None:
        self._client = client
        self._headers = {"authorization": f"Bearer {api_key}", "user-agent": USER_AGENT}
        self._visibility = visibility
        self._poll_interval = poll_interval
        self._wait_timeout = wait_timeout
        self._sleep = sleep
        self._clock = clock
        self._reporter = reporter
        self._abort: str | None = None  # set on 401: no point trying the other files

    async def run(self, folder: Path, paths: Sequence[Path], concurrency: int) -> list[Outcome]:
        semaphore = asyncio.Semaphore(max(1, concurrency))

        async def one(path: Path) -> Outcome:
            async with semaphore:
                return await self.load(folder, path)

        return list(await asyncio.gather(*(one(p) for p in paths)))

    async def load(self, folder: Path, path: Path) -> Outcome:
        rel = path.relative_to(folder).as_posix()
        if self._reporter:
            self._reporter.started(rel)
        try:
            if self._abort:
                raise _Failure(f"not attempted: {self._abort}")
            outcome = await self._load(rel, path)
        except _Failure as exc:
            outcome = Outcome(rel, "failed", reason=str(exc))
        except OSError as exc:
            outcome = Outcome(rel, "failed", reason=f"cannot read file: {exc.strerror or exc}")
        if self._reporter:
            self._reporter.finished(outcome)
        return outcome

    async def _load(self, rel: str, path: Path) -> Outcome:
        data = await asyncio.to_thread(path.read_bytes)
        content_type = CONTENT_TYPES[path.suffix.lower()]
        form = {"title": path.stem}
        if self._visibility:
            form["visibility"] = self._visibility
        response = await self._call(
            "POST",
            "/v1/documents",
            headers={"idempotency-key": hashlib.sha256(data).hexdigest()},
            files={"file": (path.name, data, content_type)},
            data=form,
        )
        if response.status_code == 409 and _error_code(response) == "idempotency_key_reused":
            # Same bytes, but a different file name, title or visibility than the first upload
            # with this key: the content is in the tenant already, under that first upload.
            return Outcome(
                rel,
                "unchanged",
                reason="the same content was already uploaded under another name or with other "
                "options; not uploaded again",
            )
        if response.status_code not in (200, 201, 202):
            raise _Failure(_error_reason(response))
        body = _json_object(response)
        document_id = body.get("document_id")
        if not document_id:
            raise _Failure(f"HTTP {response.status_code} without a document_id")
        replay = _is_replay(response, body)
        status, version, error = body.get("status"), body.get("version"), body.get("error")
        if status not in FINAL_STATES:
            status, version, error = await self._wait(rel, str(document_id), version)
        if status == "failed":
            raise _Failure(f"processing failed: {error or 'no reason given'}")
        return Outcome(
            rel,
            "unchanged" if replay else "loaded",
            document_id=str(document_id),
            version=version if isinstance(version, int) else None,
        )

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
            if self._reporter and isinstance(progress, dict):
                done, total = progress.get("done"), progress.get("total")
                if isinstance(done, int) and isinstance(total, int):
                    self._reporter.progress(rel, done, total)
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
        self._counts = {"loaded": 0, "unchanged": 0, "failed": 0}

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
        "FOLDER, recursively, and wait until each is ready. Safe to re-run: uploads carry "
        "Idempotency-Key = sha256 of the file.",
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
    load.add_argument("--visibility", help="visibility of the new documents, e.g. tenant")
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
    return parser


def _summary(outcomes: Sequence[Outcome], stream: TextIO, as_json: bool) -> None:
    counts = {s: sum(o.state == s for o in outcomes) for s in ("loaded", "unchanged", "failed")}
    if as_json:
        payload = {**counts, "files": [asdict(o) for o in outcomes]}
        print(json.dumps(payload, indent=2), file=stream)
        return
    print(
        f"loaded {counts['loaded']}, unchanged {counts['unchanged']}, "
        f"failed {counts['failed']} (of {len(outcomes)} files)",
        file=stream,
    )
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
    paths = discover(folder, args.pattern)
    if not paths:
        print(f"nothing to load: no supported files in {folder}", file=stderr)
        _summary([], stdout, args.json)
        return 0
    async with httpx.AsyncClient(
        base_url=args.url.rstrip("/"),
        transport=transport,
        timeout=httpx.Timeout(args.timeout),
        trust_env=transport is None,
    ) as client:
        with _reporter(args, len(paths), stderr) as reporter:
            loader = Loader(
                client,
                api_key=args.api_key,
                visibility=args.visibility,
                poll_interval=args.poll_interval,
                wait_timeout=args.wait_timeout,
                sleep=sleep,
                reporter=reporter,
            )
            outcomes = await loader.run(folder, paths, args.concurrency)
    _summary(outcomes, stdout, args.json)
    return 1 if any(o.state == "failed" for o in outcomes) else 0


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
    try:
        return asyncio.run(run_load(args, transport=transport, stdout=out, stderr=err, sleep=sleep))
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
