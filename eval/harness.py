"""Run a collection through a fresh local mesh over HTTP and score every retrieval mode.

One mesh (temp dir) per collection, so a collection's numbers never depend on which other
collections were run with it (FTS5 keeps one BM25 index, hence one set of term statistics, for
all tenants of a database). Ingestion goes through `POST /v1/documents` exactly as a tenant's
does; readiness is polled with the document list (500 documents per request) instead of one
status request per document.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eval.datasets import Collection, Document, load_collection
from kernel.contracts.api import MAX_QUERY_CHARS
from rag.evaluation import DEPTH, METRICS, MODES, Mode, run_evaluation

RESULTS = Path(__file__).resolve().parent / "results.json"

OPERATOR_TOKEN = "op_eval_" + "e" * 24
# The eval deployment bulk-loads and searches far beyond the default per-user limits (60 ingest
# requests per hour): lift them with the documented deployment override.
_NO_LIMIT = {"user": [1_000_000, 60], "tenant": [1_000_000, 60]}
MESH_VARS = {
    "EDGERAG_RATE_LIMITS": json.dumps(
        {cls: _NO_LIMIT for cls in ("ingest", "search", "api", "status", "answer")}
    )
}
POST_CONCURRENCY = 16
SEARCH_CONCURRENCY = 4
STALL_S = 120.0  # no document became ready for this long: give up
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    document_id: str  # the dataset's id


@dataclass
class CollectionRun:
    name: str
    documents: int
    skipped_documents: int
    chunks: int
    queries: int
    ingest_seconds: float
    search_seconds: float
    modes: dict[str, dict[str, float]]
    extra: dict[str, Any] = field(default_factory=dict)  # experiments: variant -> metrics
    # nDCG@10 per query (same query order) per mode / "~ variant": for significance tests
    per_query_ndcg: dict[str, list[float]] = field(default_factory=dict)


Variant = Callable[["Searcher", str, int], Awaitable[list[str]]]


def document_text(doc: Document) -> str:
    return f"{doc.title}\n\n{doc.text}" if doc.title else doc.text


def query_text(text: str) -> str:
    """The API takes queries of at most MAX_QUERY_CHARS: cut longer ones at a word boundary
    (one CISI query has 2,023 characters)."""
    if len(text) <= MAX_QUERY_CHARS:
        return text
    return text[: MAX_QUERY_CHARS + 1].rsplit(maxsplit=1)[0]


async def _request(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One API call; 429/503 are retried after Retry-After (should rate limits apply)."""
    for attempt in range(MAX_ATTEMPTS):
        response = await client.request(method, url, **kwargs)
        if response.status_code not in (429, 503) or attempt == MAX_ATTEMPTS - 1:
            return response
        await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 10.0))
    raise AssertionError("unreachable")


def _ok(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


async def new_tenant(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    body = _ok(
        await _request(
            client,
            "POST",
            "/v1/tenants",
            json={"name": name},
            headers={"authorization": f"Bearer {OPERATOR_TOKEN}"},
        ),
        201,
    )
    return {"authorization": f"Bearer {body['api_key']}"}


async def ingest_documents(
    client: httpx.AsyncClient, auth: dict[str, str], documents: Sequence[Document]
) -> dict[str, str]:
    """POST every document, wait until all are ready; returns our document id -> dataset id."""
    gate = asyncio.Semaphore(POST_CONCURRENCY)
    ids: dict[str, str] = {}

    async def post(doc: Document) -> None:
        async with gate:
            body = _ok(
                await _request(
                    client,
                    "POST",
                    "/v1/documents",
                    json={"title": doc.title or f"document {doc.id}", "text": document_text(doc)},
                    headers=auth,
                ),
                202,
            )
        ids[body["document_id"]] = doc.id

    await asyncio.gather(*(post(d) for d in documents))
    await wait_all_ready(client, auth, len(ids))
    return ids


async def wait_all_ready(client: httpx.AsyncClient, auth: dict[str, str], expected: int) -> None:
    """Poll the document list until every document is ready; fail on a failed document, or
    when nothing became ready for STALL_S (a broken pipeline must not hang the gate)."""
    ready_before, progress_at = -1, time.monotonic()
    while True:
        statuses: dict[str, str] = {}
        after: str | None = None
        while True:
            params = {"limit": "500", **({"after": after} if after else {})}
            page = _ok(
                await _request(client, "GET", "/v1/documents", params=params, headers=auth), 200
            )
            statuses.update({d["id"]: d["status"] for d in page["documents"]})
            after = page["next_cursor"]
            if not after:
                break
        failed = sorted(i for i, s in statuses.items() if s == "failed")
        if failed:
            raise RuntimeError(f"{len(failed)} documents failed to ingest, e.g. {failed[:3]}")
        ready = sum(1 for s in statuses.values() if s == "ready")
        if ready >= expected:
            return
        now = time.monotonic()
        if ready > ready_before:
            ready_before, progress_at = ready, now
        elif now - progress_at > STALL_S:
            counts = {
                s: sum(1 for v in statuses.values() if v == s) for s in set(statuses.values())
            }
            raise TimeoutError(f"ingestion stalled for {STALL_S:.0f} s: {counts}")
        await asyncio.sleep(0.5)


class Searcher:
    """`POST /v1/search` as the evaluation's search function; hits keep their chunk ids (for
    the fusion experiments) and are mapped to dataset document ids. Results are cached per
    (query, mode, depth), so experiments reuse the legs they share."""

    def __init__(
        self, client: httpx.AsyncClient, auth: dict[str, str], ids: dict[str, str]
    ) -> None:
        self.client = client
        self.auth = auth
        self.ids = ids
        self.cache: dict[tuple[Any, ...], list[Hit]] = {}
        self.calls = 0

    async def hits(self, query: str, mode: Mode, top_k: int, **options: Any) -> list[Hit]:
        """Chunk hits; `options` are extra SearchRequest fields (e.g. fusion variants)."""
        key = (query, mode, top_k, tuple(sorted(options.items())))
        if key not in self.cache:
            self.calls += 1
            payload = {"query": query, "top_k": top_k, "mode": mode, "rerank": False, **options}
            body = _ok(
                await _request(self.client, "POST", "/v1/search", json=payload, headers=self.auth),
                200,
            )
            self.cache[key] = [
                Hit(h["chunk_id"], self.ids[h["document_id"]]) for h in body["results"]
            ]
        return self.cache[key]

    async def __call__(self, query: str, mode: Mode, depth: int) -> list[str]:
        return [h.document_id for h in await self.hits(query, mode, depth)]


async def evaluate_collection(
    collection: Collection,
    *,
    ai: Any,
    modes: Sequence[Mode] = MODES,
    limit_queries: int | None = None,
    variants: dict[str, Variant] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> CollectionRun:
    from emulator.dev import AsgiGateway
    from emulator.mesh import build_mesh

    documents = [d for d in collection.documents if document_text(d).strip()]
    query_ids = sorted(collection.queries, key=_natural)[:limit_queries]
    questions = [(query_text(collection.queries[q]), collection.qrels[q]) for q in query_ids]
    with tempfile.TemporaryDirectory(prefix=f"edgerag-eval-{collection.name}-") as tmp:
        mesh = build_mesh(Path(tmp), operator_token=OPERATOR_TOKEN, ai=ai, vars=MESH_VARS)
        transport = httpx.ASGITransport(app=AsgiGateway(mesh))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://eval.local", timeout=None
        ) as client:
            auth = await new_tenant(client, f"eval {collection.name}")
            started = time.perf_counter()
            ids = await ingest_documents(client, auth, documents)
            ingest_seconds = time.perf_counter() - started
            await mesh.drain()
            chunks = (await mesh.stores["DB"].execute("SELECT count(*) AS n FROM chunks")).rows[0]
            log(
                f"{collection.name}: {len(ids)} documents, {chunks['n']} chunks ingested in "
                f"{ingest_seconds:.1f} s"
            )
            searcher = Searcher(client, auth, ids)
            started = time.perf_counter()
            report = await run_evaluation(
                questions,
                searcher,
                modes=modes,
                depth=DEPTH,
                concurrency=SEARCH_CONCURRENCY,
                per_question=True,
            )
            per_query = {
                m: [q[m]["ndcg@10"] for q in report["per_question"]] for m in report["modes"]
            }
            extra: dict[str, Any] = {}
            for name, variant in (variants or {}).items():

                async def search(
                    q: str, _mode: Mode, depth: int, v: Variant = variant
                ) -> list[str]:
                    return await v(searcher, q, depth)

                scored = await run_evaluation(
                    questions,
                    search,
                    modes=("hybrid",),
                    concurrency=SEARCH_CONCURRENCY,
                    per_question=True,
                )
                extra[name] = scored["modes"]["hybrid"]
                per_query[f"~ {name}"] = [q["hybrid"]["ndcg@10"] for q in scored["per_question"]]
            search_seconds = time.perf_counter() - started
            log(
                f"{collection.name}: {len(questions)} queries x {len(modes)} modes searched in "
                f"{search_seconds:.1f} s"
            )
        await mesh.drain()
    return CollectionRun(
        name=collection.name,
        documents=len(ids),
        skipped_documents=len(collection.documents) - len(documents),
        chunks=int(chunks["n"]),
        queries=report["questions"],
        ingest_seconds=ingest_seconds,
        search_seconds=search_seconds,
        modes=report["modes"],
        extra=extra,
        per_query_ndcg=per_query,
    )


def _natural(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


async def evaluate(
    collections: list[str],
    *,
    limit_queries: int | None = None,
    experiments: bool = False,
    ai: Any = None,
    log: Any = None,
) -> tuple[list[CollectionRun], Any]:
    """Every collection through its own fresh mesh; returns the runs and the AI used."""
    if ai is None:
        from emulator.ai import EmulatedAI

        ai = EmulatedAI()
    ai.encoder.load()  # weights load once, outside the timings
    variants = None
    if experiments:
        from eval.experiments import VARIANTS

        variants = VARIANTS
    runs = []
    for name in collections:
        runs.append(
            await evaluate_collection(
                load_collection(name),
                ai=ai,
                modes=MODES,
                limit_queries=limit_queries,
                variants=variants,
                log=log or (lambda _: None),
            )
        )
    return runs, ai


def results_document(runs: list[CollectionRun], ai: Any) -> dict[str, Any]:
    from emulator.ai import EMBEDDING_MODEL

    model = ai.describe()[EMBEDDING_MODEL]["served_by"]
    out: dict[str, Any] = {
        "command": "python -m eval",
        "retrieval": {
            "embedding_model": f"{EMBEDDING_MODEL} served by {model}",
            "search": (
                "POST /v1/search {mode, top_k: 100, rerank: false}; the chunk hits collapse to"
                " documents (a document ranks at its first chunk), so @100 metrics see the"
                " documents of the top 100 chunks"
            ),
            "depth": DEPTH,
        },
        "metrics": list(METRICS),
        "collections": {},
    }
    for run in runs:
        entry: dict[str, Any] = {
            "documents": run.documents,
            "skipped_empty_documents": run.skipped_documents,
            "chunks": run.chunks,
            "queries": run.queries,
            "modes": run.modes,
        }
        if run.extra:
            entry["experiments"] = run.extra
        out["collections"][run.name] = entry
    return out


@contextlib.contextmanager
def quiet_request_logs() -> Iterator[None]:
    """The mesh logs every request as a JSON line; keep only warnings and errors (stderr)."""
    from kernel.runtime import logs

    def sink(line: str) -> None:
        if '"level":"info"' not in line and '"level":"debug"' not in line:
            print(line, file=sys.stderr)

    logs.set_sink(sink)
    try:
        yield
    finally:
        logs.set_sink(None)


def paired_randomization_p(a: Sequence[float], b: Sequence[float], rounds: int = 10_000) -> float:
    """Two-sided p-value of mean(a - b) != 0 by a paired sign-flip randomization test
    (Smucker et al., 2007), seeded so the output is deterministic."""
    import random

    diffs = [x - y for x, y in zip(a, b, strict=True)]
    observed = abs(sum(diffs))
    rng = random.Random(0)
    hits = 0
    for _ in range(rounds):
        total = sum(d if rng.random() < 0.5 else -d for d in diffs)
        if abs(total) >= observed - 1e-12:
            hits += 1
    return (hits + 1) / (rounds + 1)
