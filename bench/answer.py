"""`python -m bench.answer` (`make bench-answer`): time to first token and total latency of a
streamed chat answer, per provider, measured by a client over a real loopback socket.

Providers: `workers-ai` (the emulator's extractive stand-in), `openai-fake` and
`anthropic-fake` (transport-level fakes speaking each streaming wire format, with set delays:
`--first-token-ms` before the first token, `--token-ms` between tokens — so the numbers show
what the pipeline adds on top of a provider, not a provider's speed), and `llama.cpp` (the real
server from the xllamacpp wheel with SmolLM2-135M, when installed). Each run asks `--questions`
questions in turn; TTFT is the client's wait for the first `token` event. Writes
bench/results/answer.json. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "answer.json"
OPERATOR = "op_bench_token_0123456789"
TEXT = (
    "Chlorophyll absorbs red and blue light and reflects green light, so leaves look green. "
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen. "
    "Stomata are pores in the leaf that let carbon dioxide in and water vapour out. "
    "Xylem carries water from the roots to the leaves; phloem carries sugars the other way."
)
QUESTIONS = [
    "Why do leaves look green?",
    "What does photosynthesis produce?",
    "What are stomata?",
    "What does the xylem carry?",
]
ANSWERS = [
    "Chlorophyll absorbs red and blue light and reflects green light, so leaves look green. [1]",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen. [1]",
    "Stomata are pores in the leaf that let carbon dioxide in and water vapour out. [1]",
    "Xylem carries water from the roots to the leaves; phloem carries sugars the other way. [1]",
]


class DelayedBody(httpx.AsyncByteStream):
    def __init__(self, frames: list[bytes], first_s: float, gap_s: float) -> None:
        self.frames, self.first_s, self.gap_s = frames, first_s, gap_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.first_s)
        for frame in self.frames:
            yield frame
            await asyncio.sleep(self.gap_s)


def fake_provider(first_s: float, gap_s: float) -> httpx.MockTransport:
    """OpenAI chunks or Anthropic events, by path; the answer quotes the retrieved source."""

    async def handler(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        at = next((i for i, a in enumerate(ANSWERS) if a.removesuffix(" [1]") in prompt), 0)
        answer = f"{ANSWERS[at]} {ANSWERS[(at + 1) % len(ANSWERS)]}"  # two sentences
        words = re.findall(r"\S+\s*", answer)
        if request.url.path == "/v1/messages":
            frames = [
                _event("message_start", {"message": {"usage": {"input_tokens": 200}}}),
                *(
                    _event("content_block_delta", {"delta": {"type": "text_delta", "text": w}})
                    for w in words
                ),
                _event("message_delta", {"usage": {"output_tokens": len(words)}}),
                _event("message_stop", {}),
            ]
        else:
            frames = [
                b"data: " + json.dumps({"choices": [{"delta": {"content": w}}]}).encode() + b"\n\n"
                for w in words
            ]
            usage = {"prompt_tokens": 200, "completion_tokens": len(words)}
            frames += [
                b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n",
                b"data: [DONE]\n\n",
            ]
        body = DelayedBody(frames, first_s, gap_s)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return httpx.MockTransport(handler)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


async def run_provider(
    name: str, settings: dict[str, str], http: Any, questions: int
) -> dict[str, Any]:
    import uvicorn

    from emulator.ai import EmulatedAI
    from emulator.dev import AsgiGateway
    from emulator.mesh import build_mesh
    from tests.e2e.devserver import free_port

    with tempfile.TemporaryDirectory() as tmp:
        from eval.harness import MESH_VARS  # lifts the per-user limits (20 answers an hour)

        mesh = build_mesh(
            Path(tmp),
            operator_token=OPERATOR,
            ai=EmulatedAI(),
            http=http,
            vars={**MESH_VARS, **settings},
        )
        port = free_port()
        config = uvicorn.Config(
            AsgiGateway(mesh), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(3000):  # uvicorn has no "started" event to wait on
            if server.started:
                break
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as c:
                return await _measure(name, c, questions)
        finally:
            server.should_exit = True
            await task
            await mesh.drain()


async def _measure(name: str, client: httpx.AsyncClient, questions: int) -> dict[str, Any]:
    created = await client.post(
        "/v1/tenants", json={"name": "bench"}, headers={"authorization": f"Bearer {OPERATOR}"}
    )
    auth = {"authorization": f"Bearer {created.json()['api_key']}"}
    doc = await client.post("/v1/documents", json={"title": "Leaves", "text": TEXT}, headers=auth)
    doc_id = doc.json()["document_id"]
    for _ in range(6000):  # polled like a client would
        status = await client.get(f"/v1/documents/{doc_id}/status", headers=auth)
        if status.json()["status"] in ("ready", "failed"):
            break
        await asyncio.sleep(0.05)
    session = (await client.post("/v1/chat/sessions", json={}, headers=auth)).json()["session_id"]
    ttft: list[float] = []
    total: list[float] = []
    errors = abstained = 0
    for i in range(questions + 1):  # the first one warms caches and models: not counted
        started = time.perf_counter()
        first: float | None = None
        done: dict[str, Any] | None = None
        async with client.stream(
            "POST",
            f"/v1/chat/sessions/{session}/messages",
            json={"content": QUESTIONS[i % len(QUESTIONS)], "stream": True},
            headers=auth,
        ) as response:
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    if event == "token" and first is None:
                        first = time.perf_counter()
                elif line.startswith("data: ") and event == "done":
                    done = json.loads(line[6:])
        end = time.perf_counter()
        if i == 0:
            continue
        if done is None or first is None:
            errors += 1
            continue
        abstained += bool(done["abstained"])
        ttft.append((first - started) * 1000)
        total.append((end - started) * 1000)
    return {
        "provider": name,
        "questions": questions,
        "errors": errors,
        "abstained": abstained,
        "ttft_ms": _summary(ttft),
        "total_ms": _summary(total),
    }


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "mean": round(float(np.mean(values)), 1),
    }


def start_llama() -> tuple[subprocess.Popen[str], str] | None:
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        return None
    from tests.e2e.devserver import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.llamacpp", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    if not process.stdout.readline().startswith("ready "):
        process.terminate()
        return None
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/v1/models", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.terminate()
    return None


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    from emulator.http import EmulatedHttp

    delays = (args.first_token_ms / 1000, args.token_ms / 1000)
    fake = {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": "https://openai.fake",
        "ANTHROPIC_API_KEY": "sk-bench",
        "ANTHROPIC_BASE_URL": "https://anthropic.fake",
    }
    runs = [
        await run_provider(
            "workers-ai (stand-in)", {"EDGERAG_LLM_PROVIDERS": "workers-ai"}, None, args.questions
        ),
        await run_provider(
            "openai-fake",
            {**fake, "EDGERAG_LLM_PROVIDERS": "openai"},
            EmulatedHttp(fake_provider(*delays)),
            args.questions,
        ),
        await run_provider(
            "anthropic-fake",
            {**fake, "EDGERAG_LLM_PROVIDERS": "anthropic"},
            EmulatedHttp(fake_provider(*delays)),
            args.questions,
        ),
    ]
    llama = None if args.skip_llama else start_llama()
    if llama is not None:
        process, base = llama
        try:
            settings = {
                "EDGERAG_LLM_PROVIDERS": "openai",
                "OPENAI_BASE_URL": base,
                "EDGERAG_OPENAI_MODEL": "smollm2",
            }
            runs.append(
                await run_provider("llama.cpp (SmolLM2-135M)", settings, None, args.questions)
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--first-token-ms", type=float, default=300.0)
    parser.add_argument("--token-ms", type=float, default=15.0)
    parser.add_argument("--skip-llama", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    from kernel.runtime.logs import set_sink

    set_sink(lambda _line: None)
    runs = asyncio.run(run_all(args))
    result = {
        "command": "python -m bench.answer",
        "fake_delays_ms": {"first_token": args.first_token_ms, "per_token": args.token_ms},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'provider':<26} {'TTFT p50':>9} {'TTFT p95':>9} {'total p50':>10} {'total p95':>10} {'err':>4}"
    )
    for r in runs:
        t, a = r["ttft_ms"] or {}, r["total_ms"] or {}
        print(
            f"{r['provider']:<26} {t.get('p50', '-'):>9} {t.get('p95', '-'):>9}"
            f" {a.get('p50', '-'):>10} {a.get('p95', '-'):>10} {r['errors']:>4}"
        )


if __name__ == "__main__":
    main()
