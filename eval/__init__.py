"""Retrieval evaluation (CPython only, never deployed): `python -m eval` / `make eval`.

Runs the public classic test collections in `eval/datasets/` through a fresh local mesh over
HTTP — the same ingestion and `POST /v1/search` a tenant uses — and scores dense, keyword and
hybrid retrieval with the metrics in `rag.evaluation` (the core `POST /v1/eval` uses too).
"""
