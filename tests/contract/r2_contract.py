"""Contract for `kernel.bindings.ports.BlobStore` (R2). Mixed into a class providing `blobs`.

Portable (no CPython-only imports; hashlib is part of Pyodide's stdlib).
"""

from __future__ import annotations

import hashlib

import pytest

from kernel.bindings.ports import (
    R2_MAX_KEY_BYTES,
    R2_MAX_METADATA_BYTES,
    BindingLimitError,
    BlobStore,
)


class R2Contract:
    @pytest.fixture
    def blobs(self) -> BlobStore:
        raise NotImplementedError("the implementing test class provides `blobs`")

    async def test_implements_port(self, blobs: BlobStore) -> None:
        assert isinstance(blobs, BlobStore)

    async def test_put_get_head_round_trip(self, blobs: BlobStore) -> None:
        data = bytes(range(256)) * 4
        info = await blobs.put(
            "t1/docs/a.pdf",
            data,
            content_type="application/pdf",
            custom_metadata={"tenant": "t1", "title": "Ünïcode"},
        )
        assert info.key == "t1/docs/a.pdf"
        assert info.size == len(data)
        assert info.etag == hashlib.md5(data).hexdigest()  # R2 single-part etag
        blob = await blobs.get("t1/docs/a.pdf")
        assert blob is not None
        assert blob.data == data
        assert blob.info == info
        head = await blobs.head("t1/docs/a.pdf")
        assert head == info
        assert head.content_type == "application/pdf"
        assert head.custom_metadata == {"tenant": "t1", "title": "Ünïcode"}

    async def test_missing_objects(self, blobs: BlobStore) -> None:
        assert await blobs.get("nope") is None
        assert await blobs.head("nope") is None
        await blobs.delete(["nope"])  # deleting a missing key is not an error
        assert await blobs.list() == []

    async def test_get_range_reads_part_of_the_body(self, blobs: BlobStore) -> None:
        data = bytes(range(256)) * 40  # 10,240 bytes
        await blobs.put("rec/a.wav", data, content_type="audio/wav")
        assert await blobs.get_range("rec/a.wav", 0, 12) == data[:12]
        assert await blobs.get_range("rec/a.wav", 4000, 1000) == data[4000:5000]  # the middle
        assert await blobs.get_range("rec/a.wav", 10_239, 1) == data[-1:]

    async def test_get_range_past_the_end_is_short(self, blobs: BlobStore) -> None:
        data = b"0123456789"
        await blobs.put("short", data)
        assert await blobs.get_range("short", 6, 100) == b"6789"
        assert await blobs.get_range("short", 0, 1 << 20) == data

    async def test_get_range_from_the_end_or_beyond_is_empty(self, blobs: BlobStore) -> None:
        await blobs.put("short", b"0123456789")
        assert await blobs.get_range("short", 10, 5) == b""
        assert await blobs.get_range("short", 1000, 5) == b""
        assert await blobs.get_range("short", 3, 0) == b""
        await blobs.put("empty", b"")
        assert await blobs.get_range("empty", 0, 10) == b""

    async def test_get_range_of_a_missing_key_is_none(self, blobs: BlobStore) -> None:
        assert await blobs.get_range("nope", 0, 10) is None
        assert await blobs.get_range("nope", 0, 0) is None

    async def test_overwrite_replaces_body_and_metadata(self, blobs: BlobStore) -> None:
        await blobs.put("k", b"old", custom_metadata={"v": "1"})
        info = await blobs.put("k", b"newer")
        blob = await blobs.get("k")
        assert blob is not None
        assert blob.data == b"newer"
        assert blob.info.etag == info.etag == hashlib.md5(b"newer").hexdigest()
        assert blob.info.custom_metadata == {}

    async def test_keys_are_opaque_strings(self, blobs: BlobStore) -> None:
        tricky = ["a/../../escape", "a/b/../c", "/leading", "a//b", "..", "sp ace/ü.txt"]
        for i, key in enumerate(tricky):
            await blobs.put(key, f"body {i}".encode())
        for i, key in enumerate(tricky):
            blob = await blobs.get(key)
            assert blob is not None
            assert blob.data == f"body {i}".encode(), key
        listed = [b.key for b in await blobs.list(prefix="a/")]
        assert listed == ["a/../../escape", "a//b", "a/b/../c"]  # byte order

    async def test_empty_object(self, blobs: BlobStore) -> None:
        info = await blobs.put("empty", b"")
        assert info.size == 0
        blob = await blobs.get("empty")
        assert blob is not None
        assert blob.data == b""

    async def test_list_by_prefix_sorted_and_limited(self, blobs: BlobStore) -> None:
        for key in ("t1/c", "t2/a", "t1/a", "t1/b"):
            await blobs.put(key, key.encode(), content_type="text/plain")
        listed = await blobs.list(prefix="t1/")
        assert [b.key for b in listed] == ["t1/a", "t1/b", "t1/c"]
        assert listed[0].size == 4
        assert listed[0].content_type == "text/plain"
        assert [b.key for b in await blobs.list(prefix="t1/", limit=2)] == ["t1/a", "t1/b"]
        with pytest.raises(BindingLimitError):
            await blobs.list(limit=1001)

    async def test_delete_many(self, blobs: BlobStore) -> None:
        for key in ("a", "b", "c"):
            await blobs.put(key, b"x")
        await blobs.delete(["a", "c", "missing"])
        assert [b.key for b in await blobs.list()] == ["b"]
        assert await blobs.get("a") is None

    async def test_key_size_limit(self, blobs: BlobStore) -> None:
        await blobs.put("k" * R2_MAX_KEY_BYTES, b"ok")
        with pytest.raises(BindingLimitError):
            await blobs.put("é" * (R2_MAX_KEY_BYTES // 2 + 1), b"x")

    async def test_custom_metadata_size_limit(self, blobs: BlobStore) -> None:
        await blobs.put("ok", b"x", custom_metadata={"m": "v" * (R2_MAX_METADATA_BYTES - 10)})
        with pytest.raises(BindingLimitError):
            await blobs.put("big", b"x", custom_metadata={"m": "v" * R2_MAX_METADATA_BYTES})
        assert await blobs.head("big") is None
