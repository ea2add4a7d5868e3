"""Runs inside Pyodide via the harness `script` step: `main(env, ctx)` returns JSON."""

import sys


async def main(env, ctx):
    row = await env.DB.prepare("SELECT count(*) AS n FROM notes").first()
    import pydantic

    return {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "pydantic": pydantic.VERSION,
        "notes": row["n"],
        "var": env.ENVIRONMENT,
        "has_numpy": "numpy" in sys.modules,
    }
