"""`python -m bench.load` (`make bench-load`): a bounded load test of a real `python -m
emulator.dev` process on loopback.

10, 50, 100 and 200 concurrent users (asyncio tasks, think time 0, one httpx.AsyncClient with a
connection limit) for `--duration` seconds per level on a mixed workload: 80 % searches, 20 %
answers; 70 % of questions repeated from a small pool, 30 % new; a trickle of small documents
ingested in the background; GET /health and GET /v1/documents/{id} as the plain API probes.
Stops itself: a hard cap on requests and on wall time. Reports throughput, p50/p95/p99 per
route, errors (429s apart), cache hit ratios from /metrics and the dev server's RSS from /proc.
Writes bench/results/load.json. Nothing here is a test.

What it cannot say about Cloudflare: one process on one machine, no network latency, no
isolates, the local numpy model instead of Workers AI, SQLite instead of D1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "load.json"
OPERATOR = "op_bench_load_token_0123456789"
WORDS = [
    "boundary",
    "lift",
    "shock",
    "heat",
    "library",
    "oxygen",
    "students",
    "flow",
    "wall",
    "pressure",
    "drag",
    "wing",
]
GENEROUS = {
    c: {"user": [10**7, 60], "tenant": [10**7, 60]} for c in ("search", "answer", "api", "ingest")
}
CEILINGS = json.dumps(GENEROUS)
REPEATED = [f"{a} {b} layer" for a in WORDS[:6] for b in WORDS[6:9]]  # 18 repeated questions


def rss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    return round(int(found.group(1)) / 1024, 1) if found else 0.0


def cache_ratios(metrics: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for cache, value in re.findall(
        r'edgerag_cache_hit_ratio\{[^}]*cache="(\w+)"[^}]*\} ([\d.e+-]+)', metrics
    ):
        out[cache] = round(float(value), 3)
    return out


def pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "p99": round(float(np.percentile(values, 99)), 1),
    }


class Level:
    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.limited: dict[str, int] = {}
        self.requests = 0

    def record(self, route: str, ms: float, status: int) -> None:
        self.requests += 1
        if status == 429:
            self.limited[route] = self.limited.get(route, 0) + 1
        elif status >= 400 or status == 0:
            self.errors[route] = self.errors.get(route, 0) + 1
        else:
            self.samples.setdefault(route, []).append(ms)


async def timed(
    client: httpx.AsyncClient, level: Level, route: str, method: str, url: str, **kw: Any
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kw)
        status = response.status_code
    except httpx.HTTPError:
        response, status = None, 0
    level.record(route, (time.perf_counter() - started) * 1000, status)
    return response


async def run_level(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    users: int,
    duration: float,
    cap: int,
    doc_id: str,
    seed: int,
) -> Level:
    level = Level()
    stop = time.monotonic() + duration
    rng = random.Random(seed)
    counter = [0]

    async def user() -> None:
        while time.monotonic() < stop and level.requests < cap:
            roll = rng.random()
            if roll < 0.1:
                await timed(client, level, "GET /health", "GET", "/health")
                continue
            if roll < 0.15:
                await timed(
                    client,
                    level,
                    "GET /v1/documents/{id}",
                    "GET",
                    f"/v1/documents/{doc_id}",
                    headers=auth,
                )
                continue
            counter[0] += 1
            if rng.random() < 0.7:
                question = rng.choice(REPEATED)
            else:
                question = f"{rng.choice(WORDS)} {rng.choice(WORDS)} new {seed}-{counter[0]}"
            if rng.random() < 0.8:
                body = {"query": question, "top_k": 10}
                await timed(
                    client, level, "POST /v1/search", "POST", "/v1/search", json=body, headers=auth
                )
            else:
                await timed(
                    client,
                    level,
                    "POST /v1/answer",
                    "POST",
                    "/v1/answer",
                    json={"query": question},
                    headers=auth,
                )

    async def trickle() -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            text = f"Trickle note {seed}-{n}. The {rng.choice(WORDS)} over the {rng.choice(WORDS)} was measured again."
            await timed(
                client,
                level,
                "POST /v1/documents",
                "POST",
                "/v1/documents",
                json={"title": f"t{seed}-{n}", "text": text},
                headers=auth,
            )
            await asyncio.sleep(1.0)

    await asyncio.gather(trickle(), *(user() for _ in range(users)))
    return level


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from bench.ingestion import paragraphs
    from tests.e2e.devserver import DevServer

    wall_stop = time.monotonic() + args.max_wall
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "server.log", "w") as log:  # noqa: ASYNC230 (before the load)
        server = DevServer(
            Path(tmp) / "data",
            log,
            env={
                "EDGERAG_OPERATOR_TOKEN": OPERATOR,
                "EDGERAG_TTS_PROVIDERS": "none",
                "EDGERAG_RATE_CEILINGS": CEILINGS,
                "EDGERAG_DAILY_TOKEN_BUDGET": "1000000000",
            },
        )
        try:
            server.wait_healthy()
            limits = httpx.Limits(
                max_connections=args.connections, max_keepalive_connections=args.connections
            )
            async with httpx.AsyncClient(base_url=server.base, timeout=60, limits=limits) as client:
                op = {"authorization": f"Bearer {OPERATOR}"}
                created = (
                    await client.post("/v1/tenants", json={"name": "load"}, headers=op)
                ).json()
                auth = {"authorization": f"Bearer {created['api_key']}"}
                # The bench tenant's limits raised to the ceilings set on the server above.
                patched = await client.patch(
                    f"/v1/tenants/{created.get('tenant_id') or created.get('id')}",
                    json={"rate_limits": {c: {"user": 10**7, "tenant": 10**7} for c in GENEROUS}},
                    headers=op,
                )
                for d in range(args.docs):
                    text = "\n\n".join(paragraphs(args.paragraphs, seed=d))
                    reply = await client.post(
                        "/v1/documents", json={"title": f"doc {d}", "text": text}, headers=auth
                    )
                    doc_id = reply.json().get("document_id") or reply.json().get("id")
                await asyncio.sleep(args.settle)
                rss_start = rss_mb(server.proc.pid)
                levels = []
                for i, users in enumerate(args.users):
                    if time.monotonic() > wall_stop:
                        break
                    started = time.perf_counter()
                    level = await run_level(
                        client, auth, users, args.duration, args.max_requests, str(doc_id), i
                    )
                    elapsed = time.perf_counter() - started
                    metrics = (await client.get("/metrics", headers=op)).text
                    total_ok = sum(len(v) for v in level.samples.values())
                    errors = sum(level.errors.values())
                    levels.append(
                        {
                            "users": users,
                            "seconds": round(elapsed, 1),
                            "requests": level.requests,
                            "throughput_rps": round(level.requests / elapsed, 1),
                            "searches_per_s": round(
                                len(level.samples.get("POST /v1/search", [])) / elapsed, 1
                            ),
                            "errors": level.errors,
                            "error_share": round(errors / max(1, level.requests), 4),
                            "rate_limited_429": level.limited,
                            "ok": total_ok,
                            "routes_ms": {r: pct(v) for r, v in sorted(level.samples.items())},
                            "cache_hit_ratio_since_start": cache_ratios(metrics),
                            "rss_mb": rss_mb(server.proc.pid),
                            "load_average": [round(x, 2) for x in os.getloadavg()],
                        }
                    )
        finally:
            server.stop()
    return {
        "command": "python -m bench.load " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "tenant_rate_limit_patch_status": patched.status_code,
        "rss_mb_before": rss_start,
        "levels": levels,
        "cannot_say": "one process on one machine: no network latency, no isolates, numpy MiniLM not Workers AI, SQLite not D1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--quick", action="store_true", help="10 s per level")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--max-requests", type=int, default=200_000, help="per level")
    parser.add_argument("--max-wall", type=float, default=1500.0, help="seconds, whole run")
    parser.add_argument("--docs", type=int, default=5)
    parser.add_argument("--paragraphs", type=int, default=20)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds for ingestion first")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.duration = 10.0
    result = asyncio.run(main_async(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'users':>5} {'req/s':>7} {'search/s':>8} {'err%':>6} {'429':>5} {'search p50/p95/p99':>22} {'health p95':>10} {'doc p95':>8} {'RSS MB':>7}  caches"
    )
    for lv in result["levels"]:
        s = lv["routes_ms"].get("POST /v1/search", {})
        h = lv["routes_ms"].get("GET /health", {})
        d = lv["routes_ms"].get("GET /v1/documents/{id}", {})
        print(
            f"{lv['users']:>5} {lv['throughput_rps']:>7} {lv['searches_per_s']:>8} {lv['error_share'] * 100:>6.2f}"
            f" {sum(lv['rate_limited_429'].values()):>5} {str(s.get('p50')) + '/' + str(s.get('p95')) + '/' + str(s.get('p99')):>22}"
            f" {h.get('p95', '-')!s:>10} {d.get('p95', '-')!s:>8} {lv['rss_mb']:>7}  {lv['cache_hit_ratio_since_start']}"
        )


if __name__ == "__main__":
    main()
