"""Turn a Worker's raw `env` into typed ports.

On Cloudflare each binding is a JS object (wrapped by the SDK) and gets a `kernel.bindings.cloudflare`
adapter; the emulator hands in objects that already implement the ports (`adapter_kind =
"emulator"`). Domain code only ever sees the ports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kernel.bindings.ports import (
    AI,
    BlobStore,
    Database,
    Http,
    KeyValue,
    Outbound,
    Service,
    VectorIndex,
)
from kernel.runtime.errors import ServiceUnavailable
from kernel.runtime.tracing import Tracer

EMBEDDING_DIMENSIONS = 384  # @cf/baai/bge-small-en-v1.5 and the local MiniLM stand-in

T = TypeVar("T")


def adapter_kind(obj: Any) -> str:
    # Look on the type: the SDK's binding wrapper forwards *any* attribute to JS.
    return str(getattr(type(obj), "adapter_kind", "cloudflare"))


def var(raw_env: Any, name: str, default: str | None = None) -> str | None:
    try:
        value = getattr(raw_env, name)
    except AttributeError:
        return default
    if value is None:
        return default
    return value if isinstance(value, str) else default


def _raw(raw_env: Any, name: str) -> Any:
    try:
        return getattr(raw_env, name)
    except AttributeError:
        return None


@dataclass
class Bindings:
    worker: str
    adapter: str
    raw_env: Any
    db: Database | None = None
    kv: KeyValue | None = None
    blobs: BlobStore | None = None
    vectors: VectorIndex | None = None
    ai: AI | None = None
    outbound: Outbound | None = None  # internet fetch (URL documents); granted per Worker
    http: Http | None = None  # model providers' APIs (the llm Worker only)
    services: dict[str, Service] = field(default_factory=dict)
    tracer: Tracer | None = None  # spans out (EDGERAG_OTLP_ENDPOINT); None: tracing is off

    def need(self, port: T | None, name: str) -> T:
        if port is None:
            raise ServiceUnavailable(f"worker {self.worker} has no {name} binding configured")
        return port

    def service(self, name: str) -> Service:
        return self.need(self.services.get(name), f"service {name}")

    def var(self, name: str, default: str | None = None) -> str | None:
        return var(self.raw_env, name, default)

    def describe(self) -> dict[str, Any]:
        names = {
            "DB": self.db,
            "KV": self.kv,
            "R2": self.blobs,
            "VECTORIZE": self.vectors,
            "AI": self.ai,
            **self.services,
        }
        return {
            "adapter": self.adapter,
            "bindings": {name: adapter_kind(obj) for name, obj in names.items() if obj is not None},
        }


def resolve(
    worker: str,
    raw_env: Any,
    services: Mapping[str, str] | None = None,
    *,
    outbound: bool = False,
    http: bool = False,
) -> Bindings:
    """Build the ports for the bindings present in `raw_env` (least privilege: absent = None)."""
    # deferred: only needed when wrapping JS bindings (and exporting spans)
    from kernel.bindings import cloudflare, traces
    from kernel.bindings.services import CloudflareService

    def port(name: str, wrap: Any) -> Any:
        obj = _raw(raw_env, name)
        if obj is None:
            return None
        return obj if adapter_kind(obj) == "emulator" else wrap(obj)

    bindings = Bindings(
        worker=worker,
        adapter="cloudflare",
        raw_env=raw_env,
        db=port("DB", cloudflare.D1Database),
        kv=port("KV", cloudflare.KvNamespace),
        blobs=port("R2", cloudflare.R2Bucket),
        vectors=port("VECTORIZE", lambda b: cloudflare.VectorizeIndex(b, EMBEDDING_DIMENSIONS)),
        ai=port("AI", cloudflare.WorkersAI),
    )
    if outbound:
        # Cloudflare: the runtime's global fetch. Emulator: an OUTBOUND object in env.
        bindings.outbound = port("OUTBOUND", lambda b: b) or cloudflare.CloudflareOutbound()
    if http:
        # Cloudflare: the runtime's global fetch. Emulator: an HTTP object in env.
        bindings.http = port("HTTP", lambda b: b) or cloudflare.CloudflareHttp()
    # Every Worker may export spans. Cloudflare: the runtime's global fetch. Emulator: OTLP in env.
    bindings.tracer = traces.configure(
        worker, bindings.var, lambda: port("OTLP", lambda b: b) or cloudflare.CloudflareHttp()
    )
    for binding_name, host in (services or {}).items():
        svc = port(binding_name, lambda b, host=host: CloudflareService(b, host))
        if svc is not None:
            bindings.services[binding_name] = svc
    present = [
        o for o in (bindings.db, bindings.kv, bindings.blobs, bindings.vectors, bindings.ai) if o
    ]
    kinds = {adapter_kind(o) for o in [*present, *bindings.services.values()]}
    bindings.adapter = kinds.pop() if len(kinds) == 1 else "mixed"
    return bindings
