"""`make dev`: the whole mesh in one process, the gateway on http://127.0.0.1:8787.

An ASGI front turns each HTTP request into the SDK-shaped Request the gateway's entry.py
receives on Cloudflare; everything behind it is the real Worker code on emulated bindings.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib.util
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from workers import Request

from emulator import analyzer, presigned
from emulator.cron import run_schedule
from emulator.mesh import Mesh, build_mesh
from kernel.domain.sigv4 import Credentials

MAX_HTTP_BODY = 64 * 1024 * 1024  # the gateway enforces the real (smaller) limits


def operator_token(data_dir: Path) -> tuple[str, str]:
    """(token, where it came from). Generated once and kept in the data directory."""
    from_env = os.environ.get("EDGERAG_OPERATOR_TOKEN")
    if from_env:
        return from_env, "EDGERAG_OPERATOR_TOKEN"
    path = data_dir / "operator_token"
    if path.exists():
        return path.read_text().strip(), str(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    token = "op_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, str(path)


def hold_data_dir(data_dir: Path) -> int:
    """An exclusive lock on the data directory for this process's lifetime (the kernel drops
    it when the process dies, even by SIGKILL). It is what lets the dev server treat every
    lease it finds at start as orphaned: no other live process can be holding one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "dev.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SystemExit(f"edgerag: another dev server is using {data_dir}") from None
    return fd


class AsgiGateway:
    """`crons=True` (the dev server): lifespan startup resumes the previous run's interrupted
    jobs and starts the cron schedule of every Worker's wrangler.toml; shutdown stops it."""

    def __init__(self, mesh: Mesh, *, crons: bool = False) -> None:
        self.mesh = mesh
        self.crons = crons
        self._schedule: asyncio.Task[None] | None = None

    async def _startup(self) -> None:
        if not self.crons:
            return
        released = await self.mesh.recover_interrupted_jobs()
        if released:
            print(f"edgerag: resuming {released} ingestion job(s) the last run left", flush=True)
        self._schedule = asyncio.create_task(run_schedule(self.mesh.triggers, self.mesh.scheduled))

    async def _shutdown(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
            await asyncio.gather(self._schedule, return_exceptions=True)
        await self.mesh.drain()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self._startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self._shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            part = message.get("body", b"")
            size += len(part)
            if size > MAX_HTTP_BODY:
                await _plain(
                    send,
                    413,
                    b'{"error":{"code":"payload_too_large","message":"body too large","request_id":""}}',
                )
                return
            chunks.append(part)
            more = message.get("more_body", False)
        host = next((v.decode() for k, v in scope["headers"] if k == b"host"), "127.0.0.1:8787")
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"http://{host}{scope.get('raw_path', scope['path'].encode()).decode('latin-1')}"
        if query:
            url += "?" + query
        # Like Cloudflare: CF-Connecting-IP is the peer address, whatever the client sent.
        client = scope.get("client") or ("127.0.0.1", 0)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.lower() != b"cf-connecting-ip"
        ]
        headers.append(("cf-connecting-ip", str(client[0])))
        if scope["path"].startswith("/r2/"):  # R2's S3 endpoint, for presigned URLs
            await self._presigned(scope, host, query, dict(headers), b"".join(chunks), send)
            return
        if scope["path"].startswith("/analyzer/"):  # the local signal analyzer (not deployed)
            status, out, data = await analyzer.handle(
                scope["method"], scope["path"], dict(headers), b"".join(chunks), fetch=self._get
            )
            encoded = [(k.encode(), v.encode()) for k, v in out.items()]
            await send({"type": "http.response.start", "status": status, "headers": encoded})
            await send({"type": "http.response.body", "body": data})
            return
        request = Request(
            url,
            method=scope["method"],
            headers=headers,
            body=b"".join(chunks),
        )
        response = await self.mesh.fetch(request)
        headers = [(k.lower().encode(), str(v).encode()) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if response.stream is not None:
            await _stream(response.stream, receive, send)
            return
        await send({"type": "http.response.body", "body": await response.bytes()})

    async def _get(self, url: str) -> bytes:
        """The analyzer's GET of a presigned URL, answered by this app without a socket."""
        transport = httpx.ASGITransport(app=self)
        async with httpx.AsyncClient(transport=transport) as client:
            reply = await client.get(url)
        if reply.status_code != 200:
            raise analyzer.FetchFailed(f"the recording URL answered {reply.status_code}")
        return reply.content

    async def _presigned(
        self,
        scope: MutableMapping[str, Any],
        host: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        send: Any,
    ) -> None:
        env = self.mesh.envs["ingest"]
        creds = Credentials(env.EDGERAG_R2_ACCESS_KEY_ID, env.EDGERAG_R2_SECRET_ACCESS_KEY)
        bucket = getattr(env, "EDGERAG_R2_BUCKET", "edgerag-originals")
        params = dict(parse_qsl(query, keep_blank_values=True))
        status, out, data = await presigned.handle(
            self.mesh.stores["R2"],
            creds,
            bucket,
            scope["method"],
            host,
            scope["path"],
            params,
            headers,
            body,
        )
        encoded = [(k.encode(), v.encode()) for k, v in out.items()]
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": data})


async def _stream(stream: Any, receive: Any, send: Any) -> None:
    """Send chunks as they come; if the client disconnects first, close the producer."""

    async def pump() -> None:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(disconnected())
    done, _ = await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    watching.cancel()
    if pumping not in done:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)
    await stream.aclose()


async def _plain(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


MODEL_SETTING = re.compile(
    r"^(EDGERAG_LLM_PROVIDERS|EDGERAG_TTS_PROVIDERS|EDGERAG_PIPER_URL"
    r"|EDGERAG_ANALYZER_(URL|TOKEN|TIMEOUT_S)"
    r"|(ANTHROPIC|DEDALUS|OPENAI)_(API_KEY|BASE_URL)"
    r"|EDGERAG_(WORKERS_AI|ANTHROPIC|DEDALUS|OPENAI)_(MODEL|TIMEOUT_S)"
    r"|EDGERAG_OTLP_(ENDPOINT|HEADERS)|EDGERAG_TRACE_CONTENT_TENANTS"  # traces (every Worker)
    r"|EDGERAG_RATE_(LIMITS|CEILINGS)|EDGERAG_DAILY_TOKEN_BUDGET)$"  # bench-load (every Worker)
)


def read_dev_vars(path: Path) -> dict[str, str]:
    """wrangler's `.dev.vars`: `NAME=value` lines, `#` comments, optional quotes around values."""
    found: dict[str, str] = {}
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        found[name] = value
    return found


def model_settings(dev_vars: Path) -> dict[str, str]:
    """The model-provider settings from `.dev.vars`, overridden by the environment; only the
    llm Worker receives the keys (emulator.mesh.PROVIDER_SECRET)."""
    merged = {**read_dev_vars(dev_vars), **os.environ}
    return {k: v for k, v in merged.items() if MODEL_SETTING.match(k)}


def start_piper(settings: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Text to speech locally: Piper as a separate process on a free loopback port, unless
    EDGERAG_TTS_PROVIDERS is set (e.g. `none`, or a Piper of your own at EDGERAG_PIPER_URL) or
    the piper wheels are not installed (`make dev` installs them)."""
    if "EDGERAG_TTS_PROVIDERS" in settings or importlib.util.find_spec("piper") is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.piper_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):  # the voice loads in about a second
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                return None
            time.sleep(0.1)
    settings.update(EDGERAG_TTS_PROVIDERS="piper", EDGERAG_PIPER_URL=url)
    return process


def _die_with_parent() -> None:
    # Linux: the Piper process gets SIGTERM when the dev server dies, even by SIGKILL.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    except OSError:
        pass


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the edgerag mesh locally")
    parser.add_argument("--data-dir", default=os.environ.get("EDGERAG_DATA_DIR", "./.edgerag"))
    parser.add_argument("--host", default=os.environ.get("EDGERAG_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EDGERAG_PORT", "8787")))
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    _lock = hold_data_dir(data_dir)  # held until the process exits
    token, source = operator_token(data_dir)
    settings = model_settings(Path.cwd() / ".dev.vars")
    piper = start_piper(settings)
    # Presigned upload URLs point at this server's /r2 (R2's S3 API, emulated).
    settings.setdefault("EDGERAG_R2_ENDPOINT", f"http://{args.host}:{args.port}/r2")
    # Recordings are analysed by this server's signal analyzer unless another is configured.
    settings.setdefault(
        "EDGERAG_ANALYZER_URL", f"http://{args.host}:{args.port}/analyzer/v1/analyze"
    )
    if settings.get("EDGERAG_TTS_PROVIDERS", "").lower() == "none":
        settings.pop("EDGERAG_TTS_PROVIDERS")
    mesh = build_mesh(data_dir, operator_token=token, vars=settings)
    print(f"edgerag: data in {data_dir}", flush=True)
    print(f"edgerag: operator token ({source}): {token}", flush=True)
    if not os.environ.get("EDGERAG_JWT_KEYS"):
        print(f"edgerag: access-token keys in {data_dir / 'jwt_keys.json'}", flush=True)
    chain = settings.get("EDGERAG_LLM_PROVIDERS", "workers-ai (the local stand-in)")
    print(f"edgerag: model providers: {chain}  (.dev.vars or the environment)", flush=True)
    speech = (
        f"piper at {settings['EDGERAG_PIPER_URL']}"
        if piper
        else settings.get("EDGERAG_TTS_PROVIDERS", "not enabled")
    )
    print(f"edgerag: text to speech: {speech}", flush=True)
    print(f"edgerag: recording analyzer: {settings['EDGERAG_ANALYZER_URL']}", flush=True)
    print(f"edgerag: gateway on http://{args.host}:{args.port}  (GET /health)", flush=True)
    print(f"edgerag: web console on http://{args.host}:{args.port}/console", flush=True)
    crons = ", ".join(f"{w} {c.expression!r}" for w, cs in mesh.triggers.items() for c in cs)
    print(f"edgerag: cron triggers (fired at start, then on schedule, UTC): {crons}", flush=True)
    uvicorn.run(AsgiGateway(mesh, crons=True), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
