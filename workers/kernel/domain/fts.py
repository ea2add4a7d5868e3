"""Where a tenant's rows live in the shared FTS5 index.

FTS5 filters a `rowid BETWEEN` constraint while it walks its index, but an UNINDEXED
`tenant_id` column can only be checked by reading every matching row. So each tenant owns a
rowid range: `(tenant key << 36) + chunks.seq`. The key is 16 bits of the tenant id (random
hex); two tenants may share a range, which costs speed, never correctness — every query still
checks `tenant_id = ?1`. The whole rowid stays below 2^53 because D1 hands integers to the
Worker as JavaScript numbers (the edge tier caught 62-bit rowids losing precision).
"""

from __future__ import annotations

from kernel.domain.tenancy import TenantScope

SEQ_BITS = 36  # 68 billion chunks per range
KEY_BITS = 16  # KEY_BITS + SEQ_BITS ≤ 52: exact as a JS number


def tenant_key(scope: TenantScope) -> int:
    return int(scope.tenant_id[2:6], 16)  # 4 hex digits = KEY_BITS


def rowid_range(scope: TenantScope) -> tuple[int, int]:
    base = tenant_key(scope) << SEQ_BITS
    return base, base + (1 << SEQ_BITS) - 1
