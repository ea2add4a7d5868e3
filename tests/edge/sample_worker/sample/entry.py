"""Sample Worker for the edge harness: exercises every binding through the real SDK."""

import json
from urllib.parse import urlparse

from pydantic import BaseModel, Field
from workers import Response, WorkerEntrypoint

EMBED = "@cf/baai/bge-small-en-v1.5"
RERANK = "@cf/baai/bge-reranker-base"
GENERATE = "@cf/meta/llama-3.1-8b-instruct"


class Note(BaseModel):
    tenant_id: str = Field(min_length=1)
    body: str


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/roundtrip":
            return await self.roundtrip(request)
        if path == "/invalid":
            try:
                Note.model_validate(await request.json())
            except ValueError as exc:
                return Response.json({"error": str(exc).splitlines()[0]}, status=422)
            return Response.json({"error": None})
        if path == "/boom":
            raise RuntimeError("boom")
        return Response("not found", status=404)

    async def roundtrip(self, request):
        note = Note.model_validate(await request.json())
        tenant = note.tenant_id
        env = self.env

        # D1: write through the FTS trigger, read back with bound parameters.
        insert = env.DB.prepare("INSERT INTO notes(tenant_id, body) VALUES (?, ?)")
        run = await insert.bind(tenant, note.body).run()
        rows = (
            await env.DB.prepare(
                "SELECT id, tenant_id, body FROM notes WHERE tenant_id = ? ORDER BY id"
            )
            .bind(tenant)
            .all()
        )
        fts = (
            await env.DB.prepare(
                "SELECT rowid FROM notes_fts WHERE notes_fts MATCH ? ORDER BY bm25(notes_fts)"
            )
            .bind("greeting")
            .all()
        )
        count_sql = "SELECT count(*) AS n FROM notes WHERE tenant_id = 't0'"
        seeded = await env.DB.prepare(count_sql).first()

        # KV with TTL and metadata.
        await env.KV.put(f"{tenant}:last", note.body, expirationTtl=60, metadata={"v": 1})
        kv_value = await env.KV.get(f"{tenant}:last")
        kv_meta = await env.KV.getWithMetadata(f"{tenant}:last")

        # R2 put/get with custom metadata, bytes in and out.
        await env.R2.put(f"{tenant}/note.txt", note.body.encode(), customMetadata={"kind": "note"})
        obj = await env.R2.get(f"{tenant}/note.txt")
        r2_text = await obj.text()
        r2_meta = dict(obj.customMetadata)
        missing = await env.R2.get(f"{tenant}/missing")

        # AI stand-in embeddings -> Vectorize stand-in (namespace = tenant) -> rerank -> generate.
        texts = [note.body, "unrelated words about the weather", "another greeting for you"]
        emb = await env.AI.run(EMBED, {"text": texts})
        await env.VECTORIZE.upsert(
            [
                {
                    "id": f"{tenant}-{i}",
                    "values": vec,
                    "namespace": tenant,
                    "metadata": {"i": i, "kind": "note" if i != 1 else "other"},
                }
                for i, vec in enumerate(emb.data)
            ]
        )
        q = (await env.AI.run(EMBED, {"text": [note.body]})).data[0]
        found = await env.VECTORIZE.query(
            q, topK=3, namespace=tenant, returnMetadata="all", filter={"kind": {"$ne": "other"}}
        )
        other_ns = await env.VECTORIZE.query(q, topK=3, namespace="someone-else")
        try:
            await env.VECTORIZE.query(q, topK=50, returnMetadata="all")
            topk_error = None
        except Exception as exc:
            topk_error = str(exc)
        got = await env.VECTORIZE.getByIds([f"{tenant}-0"])
        rerank = await env.AI.run(
            RERANK, {"query": "greeting", "contexts": [{"text": t} for t in texts]}
        )
        gen = await env.AI.run(GENERATE, {"messages": [{"role": "user", "content": "say hi"}]})

        # Service binding: HTTP over the binding, then JS RPC to a method.
        peer = await env.PEER.fetch(
            "https://peer.internal/echo",
            method="POST",
            body=json.dumps({"tenant": tenant}),
            headers={"content-type": "application/json", "x-tenant": tenant},
        )
        peer_json = await peer.json()
        peer_sum = await env.PEER.add(2, 3)

        return Response.json(
            {
                "method": str(request.method),
                "d1": {
                    "changes": run.meta.changes,
                    "rows": [dict(r) for r in rows.results],
                    "fts": [r["rowid"] for r in fts.results],
                    "seeded": seeded["n"],
                },
                "kv": {"value": kv_value, "metadata": dict(kv_meta.metadata)},
                "r2": {"text": r2_text, "meta": r2_meta, "missing": missing is None},
                "ai": {
                    "shape": list(emb.shape),
                    "rerank": [dict(r) for r in rerank.response],
                    "generated": gen.response,
                },
                "vectorize": {
                    "ids": [m.id for m in found.matches],
                    "metadata": [dict(m.metadata) for m in found.matches],
                    "other_namespace": other_ns.count,
                    "topk_error": topk_error,
                    "get": [g.id for g in got],
                },
                "peer": {
                    "status": peer.status,
                    "json": peer_json,
                    "header": peer.headers.get("x-peer"),
                    "sum": peer_sum,
                },
            },
            headers={"x-worker": "sample"},
        )
