"""Contract for `kernel.bindings.ports.KeyValue` (Workers KV). Mixed into a class providing `kv`.

Portable (no CPython-only imports). Expiry itself needs a controllable clock, so it is
tested per implementation; here only the TTL validation is part of the contract.
"""

from __future__ import annotations

import pytest

from kernel.bindings.ports import (
    KV_MAX_KEY_BYTES,
    KV_MAX_METADATA_BYTES,
    KV_MAX_VALUE_BYTES,
    KV_MIN_TTL_SECONDS,
    BindingLimitError,
    KeyValue,
)


class KvContract:
    @pytest.fixture
    def kv(self) -> KeyValue:
        raise NotImplementedError("the implementing test class provides `kv`")

    async def test_implements_port(self, kv: KeyValue) -> None:
        assert isinstance(kv, KeyValue)

    async def test_put_get_overwrite_delete(self, kv: KeyValue) -> None:
        assert await kv.get("t1:a") is None
        await kv.put("t1:a", "one")
        assert await kv.get("t1:a") == "one"
        await kv.put("t1:a", "two ✓")
        assert await kv.get("t1:a") == "two ✓"
        await kv.delete("t1:a")
        assert await kv.get("t1:a") is None
        await kv.delete("t1:a")  # deleting a missing key is not an error
        assert await kv.get("t1:a") is None

    async def test_list_by_prefix_sorted(self, kv: KeyValue) -> None:
        for key in ("t1:c", "t2:a", "t1:a", "t1:b", "t10:a"):
            await kv.put(key, "v")
        listing = await kv.list(prefix="t1:")
        assert listing.keys == ["t1:a", "t1:b", "t1:c"]
        assert listing.cursor is None
        everything = await kv.list()
        assert everything.keys == ["t10:a", "t1:a", "t1:b", "t1:c", "t2:a"]  # byte order

    async def test_list_paginates_with_cursor(self, kv: KeyValue) -> None:
        keys = [f"p:{i:03d}" for i in range(7)]
        for key in reversed(keys):
            await kv.put(key, "v")
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await kv.list(prefix="p:", limit=3, cursor=cursor)
            seen += page.keys
            pages += 1
            cursor = page.cursor
            if cursor is None:
                break
        assert seen == keys
        assert pages == 3

    async def test_list_limit_bounds(self, kv: KeyValue) -> None:
        with pytest.raises(BindingLimitError):
            await kv.list(limit=1001)
        with pytest.raises(BindingLimitError):
            await kv.list(limit=0)

    async def test_ttl_minimum(self, kv: KeyValue) -> None:
        with pytest.raises(BindingLimitError):
            await kv.put("k", "v", ttl_seconds=KV_MIN_TTL_SECONDS - 1)
        assert await kv.get("k") is None
        await kv.put("k", "v", ttl_seconds=KV_MIN_TTL_SECONDS)
        assert await kv.get("k") == "v"

    async def test_key_size_limit_counts_utf8_bytes(self, kv: KeyValue) -> None:
        await kv.put("k" * KV_MAX_KEY_BYTES, "v")
        assert await kv.get("k" * KV_MAX_KEY_BYTES) == "v"
        too_long = "é" * (KV_MAX_KEY_BYTES // 2 + 1)  # 2 bytes per character
        with pytest.raises(BindingLimitError):
            await kv.put(too_long, "v")
        with pytest.raises(BindingLimitError):
            await kv.get(too_long)

    async def test_value_size_limit(self, kv: KeyValue) -> None:
        with pytest.raises(BindingLimitError):
            await kv.put("big", "x" * (KV_MAX_VALUE_BYTES + 1))
        assert await kv.get("big") is None

    async def test_metadata_size_limit(self, kv: KeyValue) -> None:
        await kv.put("m", "v", metadata={"tenant": "t1", "version": 3})
        assert await kv.get("m") == "v"
        with pytest.raises(BindingLimitError):
            await kv.put("m2", "v", metadata={"blob": "x" * KV_MAX_METADATA_BYTES})
        assert await kv.get("m2") is None
