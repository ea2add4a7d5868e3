"""Running wrangler: a one-method seam (tests record the calls instead of deploying)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

DEPLOY_TIMEOUT_S = 900  # a build + upload takes seconds; this only catches a hang


@dataclass(frozen=True)
class RunResult:
    returncode: int
    output: str  # stdout + stderr, for the report when it failed


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> RunResult: ...


class SubprocessRunner:
    def run(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> RunResult:
        try:
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=DEPLOY_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return RunResult(127, f"{argv[0]}: {exc}")
        return RunResult(proc.returncode, proc.stdout + proc.stderr)


def wrangler_argv(root: Path, *args: str) -> list[str]:
    # The pinned Node 22 explicitly: node_modules/.bin/wrangler's shebang would take whatever
    # `node` is first on PATH, and wrangler 4 refuses Node < 22 (docs/deploy.md).
    node = root / "node_modules" / ".bin" / "node"
    return [str(node), str(root / "node_modules" / "wrangler" / "bin" / "wrangler.js"), *args]


def wrangler_env(root: Path, account_id: str, token: str) -> dict[str, str]:
    """This account's token and nothing of another's; no prompts, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    env.update(
        {
            "CLOUDFLARE_API_TOKEN": token,
            "CLOUDFLARE_ACCOUNT_ID": account_id,
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "CI": "true",
            # the config's build step (and whatever wrangler spawns) uses the pinned Node too
            "PATH": f"{root / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env
