"""`make bench-ingest`: extractor throughput, end-to-end ingestion rate, pipeline overhead.

Prints a table and writes bench/results/ingest.json. Runs on the local emulator with the real
local embedding model; nothing here is a test (no assertions on time).

- pages/s per extractor, on documents generated here (a "page" of a non-paged format is 3,000
  characters of its extracted text);
- end to end: N chunks ingested over HTTP (ASGI) through gateway → ingest → R2/D1/Vectorize,
  from the first POST until the last document's background work is done (all then `ready`);
- overhead: (end-to-end time − pure embedding time of the very same chunk texts) / embedding time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "ingest.json"

SENTENCES = [
    "The boundary layer thickens downstream as viscous effects accumulate near the wall.",
    "Students compared the measured lift coefficient with the thin-airfoil prediction.",
    "Heat transfer at the stagnation point depends on the Reynolds number of the flow.",
    "A shock wave forms ahead of the blunt body when the free stream is supersonic.",
    "The photosynthesis lab measured oxygen output under three light intensities.",
    "Library catalogues index documents by subject headings and controlled vocabulary.",
]


def paragraphs(n: int, seed: int = 0) -> list[str]:
    out = []
    for i in range(n):
        picked = [SENTENCES[(i * 7 + j * 3 + seed) % len(SENTENCES)] for j in range(4)]
        out.append(f"Paragraph {i} (part {seed}). " + " ".join(picked))
    return out


def build_documents() -> dict[str, tuple[str, str, bytes]]:
    from docx import Document

    from tests.fixtures.pdfgen import make_pdf

    paras = paragraphs(400)
    pages = ["\n".join(paras[i : i + 8]) for i in range(0, 400, 8)]  # 50 pages
    docx = Document()
    for p in paras:
        docx.add_paragraph(p)
    buf = io.BytesIO()
    docx.save(buf)
    html = (
        "<html><body>"
        + "".join(f"<h2>S{i}</h2><p>{p}</p>" for i, p in enumerate(paras))
        + "</body></html>"
    )
    return {
        "pdf": ("a.pdf", "application/pdf", make_pdf(pages, kerning=True)),
        "docx": (
            "a.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            buf.getvalue(),
        ),
        "html": ("a.html", "text/html", html.encode()),
        "markdown": (
            "a.md",
            "text/markdown",
            ("\n\n".join(f"## S{i}\n\n{p}" for i, p in enumerate(paras))).encode(),
        ),
        "text": ("a.txt", "text/plain", "\n\n".join(paras).encode()),
    }


def bench_extractors(repeat: int) -> dict[str, Any]:
    from ingest.extract import extract

    results: dict[str, Any] = {}
    for kind, (name, content_type, data) in build_documents().items():
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            _, extracted = extract(data, content_type, name)
            timings.append(time.perf_counter() - started)
        pages = len(extracted.pages) or max(1, len(extracted.text) // 3000)
        best = min(timings)
        results[kind] = {
            "pages": pages,
            "bytes": len(data),
            "seconds": round(best, 4),
            "pages_per_s": round(pages / best, 1),
        }
    return results


async def bench_end_to_end(target_chunks: int, docs: int) -> dict[str, Any]:
    from bench.mesh import bench_tenant
    from emulator.ai import EmulatedAI

    ai = EmulatedAI()
    await ai.run(
        "@cf/baai/bge-small-en-v1.5", {"text": ["warm up"]}
    )  # load weights outside the timing
    async with bench_tenant(ai) as (mesh, client, auth):
        # ~4 paragraphs (≈ 90 tokens each) per 200-token chunk with overlap → size the corpus.
        per_doc = max(1, int(target_chunks * 2.15 / docs))
        texts = ["\n\n".join(paragraphs(per_doc, seed=d)) for d in range(docs)]
        started = time.perf_counter()
        ids = []
        for d, text in enumerate(texts):
            response = await client.post(
                "/v1/documents", json={"title": f"doc {d}", "text": text}, headers=auth
            )
            ids.append(response.json()["document_id"])
        # The end is when the mesh's background work (every waitUntil task and follow-up
        # invocation) has finished; statuses are checked after, so client polling — which
        # would compete with the model for the GIL and the two cores — is not in the figure.
        await mesh.drain()
        elapsed = time.perf_counter() - started
        for document_id in ids:
            status = (await client.get(f"/v1/documents/{document_id}/status", headers=auth)).json()
            if status["status"] != "ready":
                raise SystemExit(f"{document_id} ended {status['status']}: {status['error']}")
        rows = (await mesh.stores["DB"].execute("SELECT text FROM chunks")).rows
    chunk_texts = [r["text"] for r in rows]
    # Pure embedding of exactly the same texts, same batch size, same model — on the encoder
    # itself: the binding would answer from the vectors it remembered during ingestion.
    embed_started = time.perf_counter()
    for start in range(0, len(chunk_texts), 100):
        await asyncio.to_thread(ai.encoder.encode, chunk_texts[start : start + 100])
    embed_seconds = time.perf_counter() - embed_started
    return {
        "documents": docs,
        "chunks": len(chunk_texts),
        "mean_chunk_chars": round(statistics.mean(len(t) for t in chunk_texts), 1),
        "end_to_end_seconds": round(elapsed, 2),
        "chunks_per_s": round(len(chunk_texts) / elapsed, 1),
        "pure_embedding_seconds": round(embed_seconds, 2),
        "overhead_fraction": round((elapsed - embed_seconds) / embed_seconds, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    extractors = bench_extractors(args.repeat)
    end_to_end = asyncio.run(bench_end_to_end(args.chunks, args.docs))
    result = {
        "command": "make bench-ingest",
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "extractors": extractors,
        "end_to_end": end_to_end,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("extractor   pages   pages/s")
    for kind, row in extractors.items():
        print(f"{kind:<10} {row['pages']:>6} {row['pages_per_s']:>9}")
    e = end_to_end
    print(
        f"\nend to end: {e['chunks']} chunks in {e['end_to_end_seconds']} s = {e['chunks_per_s']} chunks/s"
    )
    print(f"pure embedding of the same chunks: {e['pure_embedding_seconds']} s")
    print(f"pipeline overhead beyond embedding: {e['overhead_fraction'] * 100:.1f}%")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
