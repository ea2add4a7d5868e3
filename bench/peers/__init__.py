"""`make bench-peers`: edgerag's search vs LlamaIndex, Chroma and rank_bm25 (docs/benchmarks.md).

The orchestrator (`python -m bench.peers`) and `edgerag_side` run in the main venv;
`peer_runner.py` runs in `.venv-peers` (requirements/peers/bench-peers.txt) and is the only module that
imports the peer libraries (excluded from mypy with a file-level ignore: they are not installed
in the main venv).
"""
