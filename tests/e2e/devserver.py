"""A real `python -m emulator.dev` process on a free loopback port, for tests about the process
itself (crash recovery, the README's commands, the socket front)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import httpx

REPO = Path(__file__).resolve().parents[2]
# Settings a developer's shell may carry that would change what the test starts.
_INHERITED = ("EDGERAG_OPERATOR_TOKEN", "EDGERAG_DATA_DIR", "EDGERAG_HOST", "EDGERAG_PORT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    """Output goes to `log`, a file: a pipe nobody reads would fill up and stall the server.
    `port_via_env` passes the port as EDGERAG_PORT (argparse default) instead of `--port`."""

    def __init__(
        self,
        data_dir: Path,
        log: IO[str],
        *,
        env: dict[str, str] | None = None,
        port_via_env: bool = False,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
        full_env.update({"PYTHONPATH": "workers:.:emulator/sdk", **(env or {})})
        cmd = [sys.executable, "-m", "emulator.dev", "--data-dir", str(data_dir)]
        if port_via_env:
            full_env["EDGERAG_PORT"] = str(self.port)
        else:
            cmd += ["--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def wait_healthy(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, f"the dev server exited:\n{self.output()}"
            try:
                if httpx.get(f"{self.base}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the dev server did not come up:\n{self.output()}"
            time.sleep(0.2)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.asynccontextmanager
async def serving(mesh: Any) -> AsyncIterator[str]:
    """The gateway of `mesh` on a real loopback socket (uvicorn, as `make dev` serves it) in this
    event loop; yields its base URL, and drains the mesh after."""
    import asyncio

    import uvicorn

    from emulator.dev import AsgiGateway

    port = free_port()
    config = uvicorn.Config(
        AsgiGateway(mesh), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    while not running.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        await task
        await mesh.drain()
