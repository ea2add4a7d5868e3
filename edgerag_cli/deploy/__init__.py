"""Per-tenant deploys: `python -m edgerag_cli deploy|drift` (docs/operations.md).

manifest.py   deploy/tenants.toml → accounts, tenants, stacks (strict pydantic models)
repo.py       what the checked-in wrangler.toml files, migrations/ and code require
config.py     per-stack wrangler configs generated from the checked-in ones
cloudflare.py the REST client (httpx; the transport is the test seam)
provision.py  D1 / KV / R2 / Vectorize (+ metadata indexes), migrations: idempotent
runner.py     `wrangler deploy` behind a one-method Runner protocol
pipeline.py   the steps of one deploy; drift.py expected vs deployed; report.py output
cli.py        the two subcommands
"""
