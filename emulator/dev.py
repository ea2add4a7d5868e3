"""`make dev`: the whole mesh in one process, the gateway on http://127.0.0.1:8787.

An ASGI front turns each HTTP request into the SDK-shaped Request the gateway's entry.py
receives on Cloudflare; everything behind it is the real Worker code on emulated bindings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from workers import Request

from emulator.mesh import Mesh, build_mesh

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


class AsgiGateway:
    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.mesh.drain()
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


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the edgerag mesh locally")
    parser.add_argument("--data-dir", default=os.environ.get("EDGERAG_DATA_DIR", "./.edgerag"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    token, source = operator_token(data_dir)
    mesh = build_mesh(data_dir, operator_token=token)
    print(f"edgerag: data in {data_dir}", flush=True)
    print(f"edgerag: operator token ({source}): {token}", flush=True)
    if not os.environ.get("EDGERAG_JWT_KEYS"):
        print(f"edgerag: access-token keys in {data_dir / 'jwt_keys.json'}", flush=True)
    print(f"edgerag: gateway on http://{args.host}:{args.port}  (GET /health)", flush=True)
    uvicorn.run(AsgiGateway(mesh), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
