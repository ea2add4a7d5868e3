"""The contracts against `kernel.bindings.cloudflare` adapters over *fake* JS bindings.

The fakes reproduce the shapes the Python Workers SDK hands back (JsDict results, JS method
names and option objects, R2 objects with `arrayBuffer()`), backed by the emulator. This
checks the adapters' glue on CPython; the edge tier runs the same suites in Pyodide against
Miniflare's real bindings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.d1 import EmulatedD1
from emulator.kv import EmulatedKV
from emulator.r2 import EmulatedR2
from emulator.vectorize import EmulatedVectorize
from kernel.bindings.cloudflare import D1Database, KvNamespace, R2Bucket, VectorizeIndex
from kernel.bindings.ports import BlobInfo, QueryResult, Statement, Vector
from tests.contract.d1_contract import D1Contract
from tests.contract.kv_contract import KvContract
from tests.contract.r2_contract import R2Contract
from tests.contract.vectorize_contract import VectorizeContract


class JsDict(dict[str, Any]):
    """Like the SDK's JsDict: a dict whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _check_sdk_args(*args: Any) -> None:
    # The SDK refuses tuples and bytearrays when converting arguments to JS.
    for arg in args:
        assert not isinstance(arg, tuple | bytearray), f"SDK would refuse {type(arg).__name__}"
        if isinstance(arg, dict):
            _check_sdk_args(*arg.values())
        elif isinstance(arg, list):
            _check_sdk_args(*arg)


def _d1_result(res: QueryResult) -> JsDict:
    rows = [  # D1 returns blobs as arrays of byte values
        JsDict({k: list(v) if isinstance(v, bytes) else v for k, v in r.items()}) for r in res.rows
    ]
    meta = JsDict(changes=res.changes, last_row_id=res.last_row_id)
    return JsDict(results=rows, success=True, meta=meta)


class FakeD1Statement:
    def __init__(self, db: EmulatedD1, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.db, self.sql, self.params = db, sql, params

    def bind(self, *params: Any) -> FakeD1Statement:
        _check_sdk_args(list(params))
        return FakeD1Statement(self.db, self.sql, params)

    async def all(self) -> JsDict:
        return _d1_result(await self.db.execute(self.sql, self.params))


class FakeD1:
    def __init__(self, db: EmulatedD1) -> None:
        self.db = db

    def prepare(self, sql: str) -> FakeD1Statement:
        return FakeD1Statement(self.db, sql)

    async def batch(self, statements: list[FakeD1Statement]) -> list[JsDict]:
        results = await self.db.batch([Statement(s.sql, s.params) for s in statements])
        return [_d1_result(res) for res in results]


class FakeKV:
    def __init__(self, kv: EmulatedKV) -> None:
        self.kv = kv

    async def get(self, key: str) -> str | None:
        return await self.kv.get(key)

    async def put(self, key: str, value: str, options: dict[str, Any] | None = None) -> None:
        _check_sdk_args(options)
        opts = options or {}
        await self.kv.put(
            key, value, ttl_seconds=opts.get("expirationTtl"), metadata=opts.get("metadata")
        )

    async def delete(self, key: str) -> None:
        await self.kv.delete(key)

    async def list(self, options: dict[str, Any]) -> JsDict:
        page = await self.kv.list(options["prefix"], options["limit"], options.get("cursor"))
        keys = [JsDict(name=k) for k in page.keys]
        if page.cursor is None:
            return JsDict(keys=keys, list_complete=True)
        return JsDict(keys=keys, list_complete=False, cursor=page.cursor)


class FakeBuffer:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


class FakeR2Object:
    """An R2Object/R2ObjectBody as a raw proxy: attributes, camelCase, nested objects."""

    def __init__(self, info: BlobInfo, data: bytes | None = None) -> None:
        self.key, self.size, self.etag = info.key, info.size, info.etag
        self.httpEtag = f'"{info.etag}"'
        self.httpMetadata = JsDict({"contentType": info.content_type} if info.content_type else {})
        self.customMetadata = JsDict(info.custom_metadata)
        self._data = data

    async def arrayBuffer(self) -> FakeBuffer:
        assert self._data is not None
        return FakeBuffer(self._data)


class FakeR2:
    def __init__(self, r2: EmulatedR2) -> None:
        self.r2 = r2

    async def put(self, key: str, data: bytes, options: dict[str, Any]) -> FakeR2Object:
        _check_sdk_args(data, options)
        http = options.get("httpMetadata", {})
        info = await self.r2.put(
            key,
            data,
            content_type=http.get("contentType"),
            custom_metadata=options.get("customMetadata"),
        )
        return FakeR2Object(info)

    async def get(self, key: str, options: dict[str, Any] | None = None) -> FakeR2Object | None:
        _check_sdk_args(options)
        if options is None or "range" not in options:
            blob = await self.r2.get(key)
            return None if blob is None else FakeR2Object(blob.info, blob.data)
        # R2GetOptions.range {offset, length}: the body is that slice, `size` stays the whole
        # object's; a range starting at or past the end is refused, as R2 does.
        info = await self.r2.head(key)
        if info is None:
            return None
        offset, length = options["range"]["offset"], options["range"]["length"]
        assert isinstance(offset, int) and isinstance(length, int), options
        if offset >= info.size or length <= 0:
            raise RuntimeError("get: The requested range is not satisfiable. (10039)")
        data = await self.r2.get_range(key, offset, length)
        assert data is not None
        return FakeR2Object(info, data)

    async def head(self, key: str) -> FakeR2Object | None:
        info = await self.r2.head(key)
        return None if info is None else FakeR2Object(info)

    async def delete(self, keys: list[str]) -> None:
        _check_sdk_args(keys)
        await self.r2.delete(keys)

    async def list(self, options: dict[str, Any]) -> JsDict:
        assert "customMetadata" in options["include"]
        infos = await self.r2.list(options["prefix"], options["limit"])
        return JsDict(objects=[FakeR2Object(i) for i in infos], truncated=False)


class FakeVectorize:
    def __init__(self, index: EmulatedVectorize) -> None:
        self.index = index

    async def upsert(self, vectors: list[dict[str, Any]]) -> JsDict:
        _check_sdk_args(vectors)
        await self.index.upsert(
            [
                Vector(v["id"], v["values"], namespace=v.get("namespace"), metadata=v["metadata"])
                for v in vectors
            ]
        )
        return JsDict(mutationId="m1")

    async def query(self, values: list[float], options: dict[str, Any]) -> JsDict:
        _check_sdk_args(values, options)
        assert options["returnMetadata"] in {"all", "none"}
        matches = await self.index.query(
            values,
            top_k=options["topK"],
            namespace=options.get("namespace"),
            filter=options.get("filter"),
            return_metadata=options["returnMetadata"] == "all",
        )
        return JsDict(
            count=len(matches),
            matches=[
                JsDict(id=m.id, score=m.score, **({"metadata": m.metadata} if m.metadata else {}))
                for m in matches
            ],
        )

    async def getByIds(self, ids: list[str]) -> list[JsDict]:
        found = await self.index.get_by_ids(ids)
        return [
            JsDict(id=v.id, values=list(v.values), namespace=v.namespace, metadata=v.metadata)
            for v in found
        ]

    async def deleteByIds(self, ids: list[str]) -> JsDict:
        await self.index.delete_by_ids(ids)
        return JsDict(mutationId="m2")


class TestCloudflareD1(D1Contract):
    @pytest.fixture
    def db(self, tmp_path: Path) -> Iterator[D1Database]:
        emulated = EmulatedD1(tmp_path / "d1.sqlite")
        yield D1Database(FakeD1(emulated))
        emulated.close()


class TestCloudflareKV(KvContract):
    @pytest.fixture
    def kv(self, tmp_path: Path) -> Iterator[KvNamespace]:
        emulated = EmulatedKV(tmp_path / "kv.sqlite")
        yield KvNamespace(FakeKV(emulated))
        emulated.close()


class TestCloudflareR2(R2Contract):
    @pytest.fixture
    def blobs(self, tmp_path: Path) -> Iterator[R2Bucket]:
        emulated = EmulatedR2(tmp_path / "r2")
        yield R2Bucket(FakeR2(emulated))
        emulated.close()


class TestCloudflareVectorize(VectorizeContract):
    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[VectorizeIndex]:
        emulated = EmulatedVectorize(tmp_path / "v.sqlite", dimensions=8)
        yield VectorizeIndex(FakeVectorize(emulated), dimensions=8)
        emulated.close()
