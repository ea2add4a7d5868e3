"""CPython-only emulation of the Cloudflare bindings (D1, KV, R2, Vectorize, AI, services)."""
