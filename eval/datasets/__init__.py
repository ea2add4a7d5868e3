"""Test collections in BEIR layout, read from this folder (see README.md for provenance).

<name>/corpus.jsonl.gz   {"_id", "title", "text"} per line (gzip: the raw files are > 1 MB)
<name>/queries.jsonl     {"_id", "text"}
<name>/qrels/test.tsv    query-id <TAB> corpus-id <TAB> score, with a header; score > 0 is
                         relevant, higher is more relevant (graded for cranfield)
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent
COLLECTIONS = ("cranfield", "cisi")


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Collection:
    name: str
    documents: list[Document]
    queries: dict[str, str]  # query id -> text, only queries with at least one relevant doc
    qrels: dict[str, dict[str, int]]  # query id -> {document id: grade > 0}


def _open(path: Path) -> IO[str]:
    if path.exists():
        return path.open(encoding="utf-8")
    return gzip.open(path.with_name(path.name + ".gz"), "rt", encoding="utf-8")


def _jsonl(path: Path) -> Iterator[dict[str, str]]:
    with _open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_collection(name: str, root: Path = ROOT) -> Collection:
    base = root / name
    documents = [
        Document(str(d["_id"]), d.get("title") or "", d.get("text") or "")
        for d in _jsonl(base / "corpus.jsonl")
    ]
    known = {d.id for d in documents}
    qrels: dict[str, dict[str, int]] = {}
    with _open(base / "qrels" / "test.tsv") as f:
        rows = csv.reader(f, delimiter="\t")
        header = next(rows)
        if header[:3] != ["query-id", "corpus-id", "score"]:
            raise ValueError(f"{name}: unexpected qrels header {header}")
        for qid, did, score in rows:
            if int(score) > 0 and did in known:
                qrels.setdefault(qid, {})[did] = int(score)
    queries = {
        str(q["_id"]): q["text"] for q in _jsonl(base / "queries.jsonl") if str(q["_id"]) in qrels
    }
    missing = set(qrels) - set(queries)
    if missing:
        raise ValueError(f"{name}: qrels for unknown queries {sorted(missing)[:5]}")
    return Collection(name, documents, queries, qrels)
