"""Contract for `kernel.bindings.ports.VectorIndex` (Vectorize). Mixed into a class providing `index`.

Portable (no numpy). Vectors are built from `index.dimensions`, so any width ≥ 4 works.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from kernel.bindings.ports import (
    VECTORIZE_INDEXED_STRING_BYTES,
    VECTORIZE_MAX_METADATA_BYTES,
    VECTORIZE_MAX_TOP_K,
    VECTORIZE_MAX_TOP_K_WITH_DATA,
    VECTORIZE_MAX_UPSERT,
    BindingError,
    BindingLimitError,
    Vector,
    VectorIndex,
)


def vec(dims: int, *hot: float) -> list[float]:
    """A vector whose first components are `hot` and the rest zero."""
    return [*hot, *([0.0] * (dims - len(hot)))]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


class VectorizeContract:
    @pytest.fixture
    def index(self) -> VectorIndex:
        raise NotImplementedError("the implementing test class provides `index`")

    async def _docs(self, index: VectorIndex, namespace: str | None = "t1") -> None:
        d = index.dimensions
        metas: list[dict[str, Any]] = [
            {"doc": "a", "page": 1, "lang": "en", "draft": False},
            {"doc": "b", "page": 2, "lang": "de", "draft": True},
            {"doc": "c", "page": 3, "lang": "en", "draft": False},
            {"doc": "d", "page": 4, "lang": "fr", "draft": False},
        ]
        await index.upsert(
            [
                Vector(f"v{i}", vec(d, 1.0, 0.1 * i), namespace=namespace, metadata=m)
                for i, m in enumerate(metas)
            ]
        )

    async def _ids(self, index: VectorIndex, flt: dict[str, Any], ns: str = "t1") -> set[str]:
        matches = await index.query(vec(index.dimensions, 1.0), top_k=10, namespace=ns, filter=flt)
        return {m.id for m in matches}

    async def test_implements_port(self, index: VectorIndex) -> None:
        assert isinstance(index, VectorIndex)
        assert index.dimensions >= 4

    async def test_results_are_ordered_by_cosine_score(self, index: VectorIndex) -> None:
        d = index.dimensions
        vectors = {"x": vec(d, 1, 0), "xy": vec(d, 1, 1), "y": vec(d, 0, 1), "neg": vec(d, -1)}
        await index.upsert([Vector(k, v, namespace="t1") for k, v in vectors.items()])
        query = vec(d, 2, 0.5)
        matches = await index.query(query, top_k=4, namespace="t1")
        assert [m.id for m in matches] == ["x", "xy", "y", "neg"]
        for m in matches:
            assert m.score == pytest.approx(cosine(query, vectors[m.id]), abs=1e-5)
            assert m.metadata is None
        top1 = await index.query(vec(d, 3, 0), top_k=1, namespace="t1")
        assert [m.id for m in top1] == ["x"]
        assert top1[0].score == pytest.approx(1.0, abs=1e-5)

    async def test_namespaces_are_isolated(self, index: VectorIndex) -> None:
        d = index.dimensions
        await index.upsert(
            [
                Vector("a1", vec(d, 1, 0), namespace="tenant-a"),
                Vector("a2", vec(d, 0, 1), namespace="tenant-a"),
                Vector("b1", vec(d, 1, 0), namespace="tenant-b"),
            ]
        )
        in_a = await index.query(vec(d, 1, 0), top_k=10, namespace="tenant-a")
        assert {m.id for m in in_a} == {"a1", "a2"}
        in_b = await index.query(vec(d, 1, 0), top_k=10, namespace="tenant-b")
        assert [m.id for m in in_b] == ["b1"]
        assert await index.query(vec(d, 1, 0), top_k=10, namespace="tenant-c") == []

    async def test_ids_are_global_upsert_moves_namespaces(self, index: VectorIndex) -> None:
        d = index.dimensions
        await index.upsert([Vector("same", vec(d, 1), namespace="a", metadata={"v": 1})])
        await index.upsert([Vector("same", vec(d, 0, 1), namespace="b", metadata={"v": 2})])
        assert await index.query(vec(d, 1), top_k=5, namespace="a") == []
        (hit,) = await index.query(vec(d, 0, 1), top_k=5, namespace="b", return_metadata=True)
        assert (hit.id, hit.metadata) == ("same", {"v": 2})
        (stored,) = await index.get_by_ids(["same"])
        assert stored.namespace == "b"
        assert list(stored.values) == pytest.approx(vec(d, 0, 1))

    async def test_get_and_delete_by_ids(self, index: VectorIndex) -> None:
        await self._docs(index)
        got = await index.get_by_ids(["v1", "missing", "v0"])
        assert {v.id for v in got} == {"v0", "v1"}
        v1 = next(v for v in got if v.id == "v1")
        assert list(v1.values) == pytest.approx(vec(index.dimensions, 1.0, 0.1))
        assert dict(v1.metadata) == {"doc": "b", "page": 2, "lang": "de", "draft": True}
        assert v1.namespace == "t1"
        assert await index.delete_by_ids(["v1", "v2"]) == 2
        assert {v.id for v in await index.get_by_ids(["v1", "v2", "v3"])} == {"v3"}
        left = await index.query(vec(index.dimensions, 1.0), top_k=10, namespace="t1")
        assert {m.id for m in left} == {"v0", "v3"}

    async def test_return_metadata(self, index: VectorIndex) -> None:
        await self._docs(index)
        matches = await index.query(
            vec(index.dimensions, 1.0), top_k=2, namespace="t1", return_metadata=True
        )
        assert matches[0].id == "v0"
        assert matches[0].metadata == {"doc": "a", "page": 1, "lang": "en", "draft": False}

    async def test_filter_equality_operators(self, index: VectorIndex) -> None:
        await self._docs(index)
        assert await self._ids(index, {"lang": "en"}) == {"v0", "v2"}  # implicit $eq
        assert await self._ids(index, {"lang": {"$eq": "de"}}) == {"v1"}
        assert await self._ids(index, {"lang": {"$ne": "en"}}) == {"v1", "v3"}
        assert await self._ids(index, {"draft": True}) == {"v1"}
        assert await self._ids(index, {"page": 3}) == {"v2"}
        assert await self._ids(index, {"page": {"$eq": 3.0}}) == {"v2"}
        assert await self._ids(index, {"lang": "xx"}) == set()

    async def test_filter_set_operators(self, index: VectorIndex) -> None:
        await self._docs(index)
        assert await self._ids(index, {"lang": {"$in": ["de", "fr"]}}) == {"v1", "v3"}
        assert await self._ids(index, {"lang": {"$nin": ["de", "fr"]}}) == {"v0", "v2"}
        assert await self._ids(index, {"page": {"$in": [1, 4, 99]}}) == {"v0", "v3"}

    async def test_filter_range_operators(self, index: VectorIndex) -> None:
        await self._docs(index)
        assert await self._ids(index, {"page": {"$lt": 2}}) == {"v0"}
        assert await self._ids(index, {"page": {"$lte": 2}}) == {"v0", "v1"}
        assert await self._ids(index, {"page": {"$gt": 3}}) == {"v3"}
        assert await self._ids(index, {"page": {"$gte": 3}}) == {"v2", "v3"}
        assert await self._ids(index, {"page": {"$gt": 1, "$lt": 4}}) == {"v1", "v2"}
        assert await self._ids(index, {"doc": {"$gte": "b", "$lt": "d"}}) == {"v1", "v2"}

    async def test_filter_clauses_are_anded(self, index: VectorIndex) -> None:
        await self._docs(index)
        flt = {"lang": "en", "page": {"$gt": 1}, "draft": False}
        assert await self._ids(index, flt) == {"v2"}

    async def test_filter_applies_before_top_k(self, index: VectorIndex) -> None:
        await self._docs(index)
        matches = await index.query(
            vec(index.dimensions, 1.0), top_k=1, namespace="t1", filter={"lang": "fr"}
        )
        assert [m.id for m in matches] == ["v3"]

    async def test_filter_does_not_cross_namespaces(self, index: VectorIndex) -> None:
        await self._docs(index, namespace="t1")
        d = index.dimensions
        await index.upsert([Vector("other", vec(d, 1.0), namespace="t2", metadata={"lang": "en"})])
        assert await self._ids(index, {"lang": "en"}, ns="t2") == {"other"}
        assert await self._ids(index, {"lang": "en"}, ns="t1") == {"v0", "v2"}

    async def test_strings_compare_on_first_64_bytes(self, index: VectorIndex) -> None:
        d = index.dimensions
        stem = "é" * (VECTORIZE_INDEXED_STRING_BYTES // 2)  # exactly 64 bytes
        await index.upsert(
            [
                Vector("long1", vec(d, 1), namespace="t1", metadata={"s": stem + "one"}),
                Vector("long2", vec(d, 1), namespace="t1", metadata={"s": stem + "two"}),
                Vector("short", vec(d, 1), namespace="t1", metadata={"s": "é"}),
            ]
        )
        assert await self._ids(index, {"s": stem + "three"}) == {"long1", "long2"}
        assert await self._ids(index, {"s": {"$ne": stem}}) == {"short"}

    @pytest.mark.parametrize(
        "flt",
        [
            {"$or": [{"lang": "en"}, {"lang": "de"}]},
            {"$and": [{"lang": "en"}]},
            {"lang": {"$regex": "e.*"}},
            {"lang": {"$eq": {"$eq": "en"}}},
            {"lang": {"$in": "en"}},
            {"page": {"$eq": 1, "$gt": 0}},
            {"page": {"$lt": 5, "$lte": 4}},
            {},
        ],
    )
    async def test_unsupported_filters_are_rejected(
        self, index: VectorIndex, flt: dict[str, Any]
    ) -> None:
        await self._docs(index)
        with pytest.raises(BindingError):
            await index.query(vec(index.dimensions, 1.0), top_k=3, namespace="t1", filter=flt)

    async def test_top_k_limits(self, index: VectorIndex) -> None:
        await self._docs(index)
        q = vec(index.dimensions, 1.0)
        assert len(await index.query(q, top_k=VECTORIZE_MAX_TOP_K, namespace="t1")) == 4
        hits = await index.query(
            q, top_k=VECTORIZE_MAX_TOP_K_WITH_DATA, namespace="t1", return_metadata=True
        )
        assert len(hits) == 4
        for bad in (0, VECTORIZE_MAX_TOP_K + 1):
            with pytest.raises(BindingLimitError):
                await index.query(q, top_k=bad, namespace="t1")
        with pytest.raises(BindingLimitError):
            await index.query(
                q, top_k=VECTORIZE_MAX_TOP_K_WITH_DATA + 1, namespace="t1", return_metadata=True
            )

    async def test_dimension_mismatch_is_rejected(self, index: VectorIndex) -> None:
        d = index.dimensions
        with pytest.raises(BindingError):
            await index.upsert([Vector("bad", [1.0] * (d + 1), namespace="t1")])
        with pytest.raises(BindingError):
            await index.query([1.0] * (d - 1), top_k=1)
        assert await index.get_by_ids(["bad"]) == []

    async def test_upsert_batch_limit(self, index: VectorIndex) -> None:
        d = index.dimensions
        too_many = [Vector(f"id{i}", vec(d, 1.0)) for i in range(VECTORIZE_MAX_UPSERT + 1)]
        with pytest.raises(BindingLimitError):
            await index.upsert(too_many)
        assert await index.get_by_ids(["id0"]) == []

    async def test_id_and_metadata_limits(self, index: VectorIndex) -> None:
        d = index.dimensions
        await index.upsert([Vector("i" * 64, vec(d, 1.0))])
        with pytest.raises(BindingLimitError):
            await index.upsert([Vector("i" * 65, vec(d, 1.0))])
        big = {"text": "x" * VECTORIZE_MAX_METADATA_BYTES}
        with pytest.raises(BindingLimitError):
            await index.upsert([Vector("big", vec(d, 1.0), metadata=big)])
        with pytest.raises(BindingError):
            await index.upsert([Vector("nested", vec(d, 1.0), metadata={"a": {"b": 1}})])  # type: ignore[dict-item]
