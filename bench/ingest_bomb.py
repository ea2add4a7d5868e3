"""Measure what a DOCX zip bomb costs the server (issue 9, defect 4). Prints; asserts nothing.

    PYTHONPATH=workers:.:emulator/sdk .venv/bin/python bench/ingest_bomb.py

Runs the whole mesh in this process (one event loop, like the dev server and like one Worker
isolate), POSTs a ~100 KB DOCX whose document.xml inflates to 60 MB, and meanwhile probes
GET /health every 50 ms: a probe can only be answered when the upload lets the loop run.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.mesh import bench_tenant
from kernel.runtime.logs import set_sink
from tests.fixtures.docxgen import DOCX, repeated_docx

PARAGRAPH = b"<w:p><w:r><w:t>The glacier moved a few metres every year.</w:t></w:r></w:p>"


def bomb(xml_bytes: int) -> bytes:
    return repeated_docx(PARAGRAPH, xml_bytes // len(PARAGRAPH))


async def measure(name: str, files: dict[str, tuple[str, bytes, str]]) -> None:
    async with bench_tenant() as (mesh, client, auth):
        await client.get("/health")  # warm up
        latencies: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            # Latency from when the probe was due (50 ms after the last answer), so time
            # spent waiting for a blocked loop counts, as it would for a real client.
            due = time.perf_counter()
            while not done.is_set():
                await client.get("/health")
                answered = time.perf_counter()
                latencies.append(answered - due)
                due = answered + 0.05
                await asyncio.sleep(0.05)

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        response = await client.post("/v1/documents", files=files, headers=auth)
        post_seconds = time.perf_counter() - start
        await asyncio.sleep(0.2)
        done.set()
        await prober
        for task in list(mesh.ctx.pending):  # embedding is not what is measured here
            task.cancel()
        await asyncio.gather(*mesh.ctx.pending, return_exceptions=True)
    print(f"{name}:")
    print(f"  POST /v1/documents -> {response.status_code} in {post_seconds:.2f} s")
    print(f"  {response.text[:160]}")
    print(
        f"  GET /health meanwhile: {len(latencies)} probes, max {max(latencies):.3f} s,"
        f" median {statistics.median(latencies):.3f} s"
    )


async def main() -> None:
    set_sink(lambda line: None)  # request logs would drown the numbers
    data = bomb(60 * 1024 * 1024)
    await measure(
        f"DOCX bomb ({len(data):,} bytes, document.xml 60 MiB)",
        {"file": ("bomb.docx", data, DOCX)},
    )
    data = bomb(30 * 1024 * 1024)
    await measure(
        f"DOCX under the inflate limit ({len(data):,} bytes, document.xml 30 MiB)",
        {"file": ("big.docx", data, DOCX)},
    )
    words = "Glaciers carve valleys and leave moraines behind as they retreat. "
    text = (words * (4_900_000 // len(words))).encode()
    await measure(
        f"plain text just under max_text_chars ({len(text):,} characters)",
        {"file": ("big.txt", text, "text/plain")},
    )


if __name__ == "__main__":
    asyncio.run(main())
