"""A pytest-style suite run INSIDE Pyodide by the harness (`suite` step), against real bindings.

The real contract suites can follow this shape: `Test*` classes, sync or async `test_*` methods,
`self.env` is the worker's wrapped env.
"""


class TestKv:
    async def test_put_get_delete(self):
        await self.env.KV.put("suite:k", "v1")
        assert await self.env.KV.get("suite:k") == "v1"
        await self.env.KV.delete("suite:k")
        assert await self.env.KV.get("suite:k") is None

    async def test_ttl_below_60_is_rejected(self):
        try:
            await self.env.KV.put("suite:ttl", "v", expirationTtl=10)
        except Exception as exc:
            assert "60" in str(exc)
        else:
            raise AssertionError("expirationTtl < 60 must fail like on Cloudflare")


class TestD1:
    async def test_batch(self):
        db = self.env.DB
        res = await db.batch(
            [
                db.prepare("INSERT INTO notes(tenant_id, body) VALUES (?, ?)").bind("s", "a"),
                db.prepare("INSERT INTO notes(tenant_id, body) VALUES (?, ?)").bind("s", "b"),
            ]
        )
        assert len(res) == 2
        count = db.prepare("SELECT count(*) AS n FROM notes WHERE tenant_id = ?")
        n = await count.bind("s").first()
        assert n["n"] == 2

    async def test_sqlite_version_not_authorized(self):
        try:
            await self.env.DB.prepare("SELECT sqlite_version()").all()
        except Exception as exc:
            assert "not authorized" in str(exc)
        else:
            raise AssertionError("sqlite_version() must be refused like on D1")

    def test_this_one_fails_on_purpose(self):
        raise AssertionError("expected failure, proves failures are reported")


class TestVectorize:
    async def test_dimension_mismatch(self):
        try:
            await self.env.VECTORIZE.upsert([{"id": "x", "values": [0.1, 0.2]}])
        except Exception as exc:
            assert "dimensions" in str(exc)
        else:
            raise AssertionError("wrong dimensions must fail")

    async def test_upsert_limit(self):
        vecs = [{"id": f"v{i}", "values": [0.0] * 383 + [1.0]} for i in range(1001)]
        try:
            await self.env.VECTORIZE.upsert(vecs)
        except Exception as exc:
            assert "1000" in str(exc)
        else:
            raise AssertionError("more than 1000 vectors per upsert must fail")
