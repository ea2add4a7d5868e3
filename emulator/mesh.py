"""The whole mesh in one process: four Workers' real entry classes on emulated bindings.

Bindings per Worker follow the wrangler configs (least privilege): the gateway cannot reach R2
or Vectorize, the llm Worker cannot reach R2, and so on. State lives under one data directory.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from emulator.assets import EmulatedAssets, assets_directory
from emulator.cron import Cron, ScheduledController, load_triggers
from emulator.d1 import EmulatedD1
from emulator.http import EmulatedHttp
from emulator.kv import EmulatedKV
from emulator.outbound import EmulatedOutbound
from emulator.r2 import EmulatedR2
from emulator.services import EmulatedService
from emulator.vectorize import EmulatedVectorize
from kernel.bindings.env import EMBEDDING_DIMENSIONS

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"
WORKERS = ("gateway", "rag", "ingest", "llm")
# Where each Worker's triggers are declared: the gateway at the top, the others beside their code.
WRANGLER_CONFIGS: dict[str, Path] = {
    w: REPO_ROOT / "wrangler.toml"
    if w == "gateway"
    else REPO_ROOT / "workers" / w / "wrangler.toml"
    for w in WORKERS
}

PROVIDER_SECRET = re.compile(r"^((ANTHROPIC|DEDALUS|OPENAI)_|EDGERAG_ANALYZER_TOKEN$)")

# Which bindings each Worker gets — mirrors wrangler.toml and workers/<name>/wrangler.toml.
BINDINGS: dict[str, tuple[str, ...]] = {
    "gateway": ("DB", "KV", "RAG", "INGEST", "LLM", "ASSETS"),
    "rag": ("DB", "VECTORIZE", "AI", "KV", "LLM", "INGEST"),
    "ingest": ("DB", "R2", "VECTORIZE", "AI", "SELF", "OUTBOUND", "LLM"),
    "llm": ("AI", "KV", "DB", "HTTP", "R2"),
}


class ExecutionContext:
    """`ctx` as the runtime passes it: waitUntil keeps work alive after the response."""

    def __init__(self) -> None:
        self.pending: set[asyncio.Task[Any]] = set()

    def waitUntil(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


@dataclass
class Mesh:
    data_dir: Path
    envs: dict[str, SimpleNamespace] = field(default_factory=dict)
    ctx: ExecutionContext = field(default_factory=ExecutionContext)
    stores: dict[str, Any] = field(default_factory=dict)
    triggers: dict[str, list[Cron]] = field(default_factory=dict)

    def worker(self, name: str) -> Any:
        entry = importlib.import_module(f"{name}.entry")
        return entry.Default(self.ctx, self.envs[name])

    async def fetch(self, request: Any) -> Any:
        """What the public internet reaches: the gateway."""
        return await self.worker("gateway").fetch(request)

    async def scheduled(
        self, worker: str, cron: str | None = None, scheduled_time: float | None = None
    ) -> None:
        """A cron event, as the runtime delivers it: `scheduled(controller, env, ctx)` on a fresh
        instance. Without `cron`: each trigger the Worker's wrangler.toml declares, once."""
        expressions = [cron] if cron else [c.expression for c in self.triggers.get(worker, [])]
        if not expressions:
            raise ValueError(f"{worker} declares no cron triggers in its wrangler.toml")
        when = time.time() if scheduled_time is None else scheduled_time
        for expression in expressions:
            controller = ScheduledController(expression, when * 1000)
            await self.worker(worker).scheduled(controller, self.envs[worker], self.ctx)

    async def sweep(self) -> None:
        """The ingest Worker's cron, fired now: it resumes jobs whose lease expired."""
        await self.scheduled("ingest")

    async def recover_interrupted_jobs(self) -> int:
        """At dev-server start, with the data directory held exclusively: every ingestion lease
        in D1 belonged to a process that is gone, so release them for the first sweep."""
        from ingest.jobs import release_orphaned_leases

        return await release_orphaned_leases(self.stores["DB"])

    async def drain(self) -> None:
        while self.ctx.pending:
            await asyncio.gather(*list(self.ctx.pending), return_exceptions=True)


def jwt_keys(data_dir: Path) -> tuple[str, str]:
    """(EDGERAG_JWT_KEYS, EDGERAG_JWT_ACTIVE_KID): from the environment, else generated once and
    kept (mode 0600) in the data directory like the operator token — tokens survive restarts."""
    from_env = os.environ.get("EDGERAG_JWT_KEYS")
    if from_env:
        return from_env, os.environ.get("EDGERAG_JWT_ACTIVE_KID", "")
    path = data_dir / "jwt_keys.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        kid = "k" + secrets.token_hex(4)
        config = {"keys": {kid: secrets.token_urlsafe(48)}, "active_kid": kid}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(config, handle)
        except FileExistsError:
            pass  # another process created it first: use theirs
    config = json.loads(path.read_text())
    return json.dumps(config["keys"]), str(config["active_kid"])


def r2_credentials(data_dir: Path) -> tuple[str, str]:
    """The emulated R2 API token (access key id, secret) that presigns direct uploads: generated
    once and kept (mode 0600) in the data directory, like the JWT keys."""
    path = data_dir / "r2_credentials.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        made = {"access_key_id": "dev" + secrets.token_hex(8), "secret": secrets.token_urlsafe(32)}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(made, handle)
        except FileExistsError:
            pass
    stored = json.loads(path.read_text())
    return str(stored["access_key_id"]), str(stored["secret"])


def _worker_factory(mesh: Mesh, name: str) -> Callable[[], Any]:
    return lambda: mesh.worker(name)


def build_mesh(
    data_dir: Path,
    *,
    operator_token: str | None,
    ai: Any = None,
    outbound: Any = None,
    http: Any = None,
    vars: dict[str, str] | None = None,
) -> Mesh:
    for sub in ("d1", "kv", "r2", "vectorize"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    if ai is None:
        from emulator.ai import EmulatedAI

        # Computed vectors persist beside the other stores: a restarted server reranks at once.
        ai = EmulatedAI(embedding_cache=data_dir / "ai" / "embeddings.sqlite")
    db = EmulatedD1(data_dir / "d1" / "edgerag.sqlite", migrations_dir=MIGRATIONS_DIR)
    db.apply_migrations()
    mesh = Mesh(data_dir=data_dir)
    for worker, config in WRANGLER_CONFIGS.items():
        if crons := load_triggers(config):
            mesh.triggers[worker] = crons
    mesh.stores = {
        "DB": db,
        "KV": EmulatedKV(data_dir / "kv" / "edgerag.sqlite"),
        "R2": EmulatedR2(data_dir / "r2" / "edgerag-originals"),
        "VECTORIZE": EmulatedVectorize(
            data_dir / "vectorize" / "edgerag-chunks.sqlite", dimensions=EMBEDDING_DIMENSIONS
        ),
        "AI": ai,
    }
    for service in ("RAG", "INGEST", "LLM"):
        mesh.stores[service] = EmulatedService(
            service.lower(), _worker_factory(mesh, service.lower())
        )
    mesh.stores["SELF"] = mesh.stores["INGEST"]  # ingest's self binding: follow-up invocations
    mesh.stores["OUTBOUND"] = outbound or EmulatedOutbound()
    mesh.stores["HTTP"] = http or EmulatedHttp()  # the llm Worker's model providers
    # Span export (kernel.bindings.traces): on Cloudflare every Worker's global fetch, so not a
    # wrangler binding; here one transport in every Worker's env, used only with an endpoint set.
    mesh.stores["OTLP"] = EmulatedHttp()
    # The gateway's static assets (the web console): the folder its wrangler.toml names.
    console = assets_directory(WRANGLER_CONFIGS["gateway"])
    assert console is not None, "wrangler.toml declares the gateway's [assets]"
    mesh.stores["ASSETS"] = EmulatedAssets(console)
    given = {"EDGERAG_ENV": "local", **(vars or {})}
    # Provider keys and URLs are the llm Worker's alone (as its Worker secrets are on Cloudflare).
    provider_vars = {k: v for k, v in given.items() if PROVIDER_SECRET.match(k)}
    common_vars = {k: v for k, v in given.items() if k not in provider_vars}
    for worker in WORKERS:
        own = provider_vars if worker == "llm" else {}
        env = SimpleNamespace(**{b: mesh.stores[b] for b in BINDINGS[worker]}, **common_vars, **own)
        env.OTLP = mesh.stores["OTLP"]
        if worker == "gateway" and operator_token:
            env.EDGERAG_OPERATOR_TOKEN = operator_token
        if worker == "gateway":  # secrets only the gateway holds
            env.EDGERAG_JWT_KEYS, env.EDGERAG_JWT_ACTIVE_KID = jwt_keys(data_dir)
        if worker == "ingest":  # the R2 API token that presigns direct uploads
            key_id, secret = r2_credentials(data_dir)
            env.EDGERAG_R2_ACCESS_KEY_ID, env.EDGERAG_R2_SECRET_ACCESS_KEY = key_id, secret
            if not hasattr(env, "EDGERAG_R2_ENDPOINT"):
                env.EDGERAG_R2_ENDPOINT = "http://127.0.0.1:8787/r2"  # the dev server's /r2
        mesh.envs[worker] = env
    return mesh
