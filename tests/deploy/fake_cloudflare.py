"""A Cloudflare account in memory, behind `httpx.MockTransport`, answering as the REST API
documents (developers.cloudflare.com/api/): the envelope `{success, errors, messages, result,
result_info}`, page-numbered lists, 404s for missing buckets and indexes, error codes.

Also the two things outside the API the deploy talks to: a fake `wrangler deploy` (a Runner
that reads the generated config and uploads what wrangler would: bindings, vars, crons, the
custom domain — refusing bindings to resources or Workers that do not exist, as the real
upload does), and the deployed gateway's `/health` and `PATCH /v1/tenants/{id}`.

D1 databases are real SQLite databases, so migrations and `d1_migrations` behave as on D1.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tomllib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from edgerag_cli.deploy.runner import RunResult

API_HOST = "api.cloudflare.com"
NOW = "2026-07-01T12:00:00.000000Z"


@dataclass
class Script:
    name: str
    bindings: list[dict[str, Any]]
    compatibility_date: str
    compatibility_flags: list[str]
    crons: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # the fake keeps values to check them


@dataclass
class Account:
    token: str
    d1: dict[str, dict[str, Any]] = field(default_factory=dict)  # uuid -> database
    sqlite: dict[str, sqlite3.Connection] = field(default_factory=dict)
    kv: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> namespace
    r2: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> bucket
    vectorize: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> index
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)  # index -> prop -> type
    scripts: dict[str, Script] = field(default_factory=dict)
    domains: list[dict[str, Any]] = field(default_factory=list)

    def d1_named(self, name: str) -> str | None:
        return next((k for k, v in self.d1.items() if v["name"] == name), None)

    def kv_titled(self, title: str) -> str | None:
        return next((k for k, v in self.kv.items() if v["title"] == title), None)


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    times: int
    headers: dict[str, str]
    code: int
    message: str


def ok(result: Any, **result_info: Any) -> httpx.Response:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info:
        body["result_info"] = result_info
    return httpx.Response(200, json=body)


def error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return httpx.Response(status, json=body, headers=headers)


class FakeCloudflare:
    def __init__(self, accounts: Mapping[str, str], *, page_size: int = 2) -> None:
        """`accounts`: account id -> the API token scoped to it."""
        self.accounts = {aid: Account(token) for aid, token in accounts.items()}
        self.page_size = page_size  # small pages: the client must follow them
        self.calls: list[str] = []
        self.events: list[tuple[str, str]] = []  # ("metadata_index", "index.prop"), ("deploy", s)
        self.faults: list[Fault] = []
        self.policies: list[tuple[str, str, dict[str, Any]]] = []  # (host, tenant id, body)
        self.unhealthy: set[str] = set()  # gateway hosts whose /health says degraded
        self.transport = httpx.MockTransport(self.handle)

    # --- test controls ---------------------------------------------------------------------
    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        code: int = 10000,
        message: str = "Authentication error",
    ) -> None:
        self.faults.append(Fault(method, pattern, status, times, headers or {}, code, message))

    def mutating_calls(self) -> list[str]:
        """API calls that create or change something (what D1 queries did, the databases
        themselves show)."""
        return [
            c
            for c in self.calls
            if API_HOST in c and not c.startswith("GET ") and not c.endswith("/query")
        ]

    def applied(self, account_id: str, database: str) -> list[str]:
        a = self.accounts[account_id]
        db_id = a.d1_named(database)
        assert db_id is not None, f"no D1 database {database}"
        rows = a.sqlite[db_id].execute("SELECT name FROM d1_migrations ORDER BY id").fetchall()
        return [r[0] for r in rows]

    def account(self, account_id: str) -> Account:
        return self.accounts[account_id]

    # --- the transport -----------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {request.url.host}{path}")
        if request.url.host != API_HOST:
            return self._gateway(request)
        path = path.removeprefix("/client/v4")
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == request.method
                and re.search(fault.pattern, path)
            ):
                fault.times -= 1
                return error(fault.status, fault.code, fault.message, fault.headers)
        m = re.match(r"^/accounts/([0-9a-f]{32})(/.*)$", path)
        if m is None:
            return error(404, 7003, "Could not route to " + path)
        account = self.accounts.get(m[1])
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not any(a.token == token for a in self.accounts.values()):
            return error(401, 10000, "Authentication error")
        if account is None or account.token != token:
            return error(403, 10000, "Authentication error")
        body = json.loads(request.content) if request.content else None
        return self._route(account, request.method, m[2], dict(request.url.params), body)

    def _route(
        self, a: Account, method: str, path: str, params: dict[str, str], body: Any
    ) -> httpx.Response:
        routes: list[tuple[str, str, Callable[..., httpx.Response]]] = [
            ("GET", r"/d1/database", self._d1_list),
            ("POST", r"/d1/database", self._d1_create),
            ("POST", r"/d1/database/([^/]+)/query", self._d1_query),
            ("GET", r"/storage/kv/namespaces", self._kv_list),
            ("POST", r"/storage/kv/namespaces", self._kv_create),
            ("GET", r"/r2/buckets/([^/]+)", self._r2_get),
            ("POST", r"/r2/buckets", self._r2_create),
            ("GET", r"/vectorize/v2/indexes/([^/]+)", self._index_get),
            ("POST", r"/vectorize/v2/indexes", self._index_create),
            ("GET", r"/vectorize/v2/indexes/([^/]+)/metadata_index/list", self._meta_list),
            ("POST", r"/vectorize/v2/indexes/([^/]+)/metadata_index/create", self._meta_create),
            ("GET", r"/workers/scripts", self._scripts),
            ("GET", r"/workers/scripts/([^/]+)/settings", self._settings),
            ("GET", r"/workers/scripts/([^/]+)/secrets", self._secrets),
            ("PUT", r"/workers/scripts/([^/]+)/secrets", self._secret_put),
            ("GET", r"/workers/scripts/([^/]+)/schedules", self._schedules),
            ("GET", r"/workers/domains", self._domains),
        ]
        for verb, pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if verb == method and m:
                return handler(a, *m.groups(), params=params, body=body)
        return error(404, 7003, f"No route for {method} {path}")

    def _page(self, items: list[Any], params: dict[str, str]) -> httpx.Response:
        page = int(params.get("page", 1))
        per_page = min(int(params.get("per_page", 20)), self.page_size)
        chunk = items[(page - 1) * per_page : page * per_page]
        return ok(chunk, page=page, per_page=per_page, count=len(chunk), total_count=len(items))

    # --- D1 ----------------------------------------------------------------------------------
    def _d1_list(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        dbs = [
            {k: v for k, v in db.items()}
            for db in a.d1.values()
            if params.get("name") in (None, db["name"])
        ]
        return self._page(dbs, params)

    def _d1_create(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        name = body["name"]
        if a.d1_named(name):
            return error(400, 7502, "A database with that name already exists")
        db_id = str(uuid.uuid4())
        a.d1[db_id] = {"uuid": db_id, "name": name, "created_at": NOW, "version": "production"}
        a.sqlite[db_id] = sqlite3.connect(":memory:", isolation_level=None)
        return ok(a.d1[db_id])

    def _d1_query(
        self, a: Account, db_id: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        conn = a.sqlite.get(db_id)
        if conn is None:
            return error(404, 7404, "The database could not be found")
        results = []
        try:
            conn.execute("BEGIN")  # a multi-statement query is one batch: all or nothing
            for statement in _statements(body["sql"]):
                cur = conn.execute(statement)
                cols = [c[0] for c in cur.description or []]
                rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
                meta = {"changes": cur.rowcount, "duration": 0.1, "changed_db": cur.rowcount > 0}
                results.append({"results": rows, "success": True, "meta": meta})
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            return error(400, 7500, f"{exc}: SQLITE_ERROR")
        return ok(results)

    # --- KV ----------------------------------------------------------------------------------
    def _kv_list(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        return self._page(list(a.kv.values()), params)

    def _kv_create(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        if a.kv_titled(body["title"]):
            return error(400, 10014, "A namespace with this account ID and title already exists")
        ns_id = uuid.uuid4().hex
        a.kv[ns_id] = {"id": ns_id, "title": body["title"], "supports_url_encoding": True}
        return ok(a.kv[ns_id])

    # --- R2 ----------------------------------------------------------------------------------
    def _r2_get(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        if name not in a.r2:
            return error(404, 10006, "The specified bucket does not exist.")
        return ok(a.r2[name])

    def _r2_create(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        name = body["name"]
        if name in a.r2:
            return error(409, 10004, "The bucket you tried to create already exists")
        a.r2[name] = {
            "name": name,
            "creation_date": NOW,
            "location": "ENAM",
            "storage_class": "Standard",
        }
        return ok(a.r2[name])

    # --- Vectorize -----------------------------------------------------------------------------
    def _index_get(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        if name not in a.vectorize:
            return error(404, 3000, "vectorize.index.not_found")
        return ok(a.vectorize[name])

    def _index_create(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        name = body["name"]
        if name in a.vectorize:
            return error(409, 3002, "vectorize.index.duplicate_name")
        a.vectorize[name] = {
            "name": name,
            "config": dict(body["config"]),
            "created_on": NOW,
            "modified_on": NOW,
            "description": body.get("description", ""),
        }
        a.metadata[name] = {}
        return ok(a.vectorize[name])

    def _meta_list(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        if name not in a.vectorize:
            return error(404, 3000, "vectorize.index.not_found")
        found = [{"propertyName": p, "indexType": t} for p, t in a.metadata[name].items()]
        return ok({"metadataIndexes": found})

    def _meta_create(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        if name not in a.vectorize:
            return error(404, 3000, "vectorize.index.not_found")
        a.metadata[name][body["propertyName"]] = body["indexType"]
        self.events.append(("metadata_index", f"{name}.{body['propertyName']}"))
        return ok({"mutationId": str(uuid.uuid4())})

    # --- Workers ---------------------------------------------------------------------------------
    def _scripts(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        return ok(
            [
                {"id": s, "created_on": NOW, "modified_on": NOW, "usage_model": "standard"}
                for s in a.scripts
            ]
        )

    def _script(self, a: Account, name: str) -> Script | httpx.Response:
        script = a.scripts.get(name)
        return (
            script
            if script is not None
            else error(404, 10007, "workers.api.error.script_not_found")
        )

    def _settings(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        s = self._script(a, name)
        if isinstance(s, httpx.Response):
            return s
        secrets = [{"type": "secret_text", "name": n} for n in s.secrets]
        return ok(
            {
                "bindings": [*s.bindings, *secrets],
                "compatibility_date": s.compatibility_date,
                "compatibility_flags": s.compatibility_flags,
                "logpush": False,
                "placement": {},
                "tail_consumers": [],
                "usage_model": "standard",
            }
        )

    def _secrets(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        s = self._script(a, name)
        if isinstance(s, httpx.Response):
            return s
        return ok([{"name": n, "type": "secret_text"} for n in s.secrets])

    def _secret_put(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        s = self._script(a, name)
        if isinstance(s, httpx.Response):
            return s
        assert body["type"] == "secret_text" and body["text"], body["name"]
        s.secrets[body["name"]] = body["text"]
        return ok({"name": body["name"], "type": "secret_text"})

    def _schedules(
        self, a: Account, name: str, *, params: dict[str, str], body: Any
    ) -> httpx.Response:
        s = self._script(a, name)
        if isinstance(s, httpx.Response):
            return s
        return ok(
            {"schedules": [{"cron": c, "created_on": NOW, "modified_on": NOW} for c in s.crons]}
        )

    def _domains(self, a: Account, *, params: dict[str, str], body: Any) -> httpx.Response:
        found = [d for d in a.domains if params.get("service") in (None, d["service"])]
        return ok(found)

    # --- the deployed gateway ------------------------------------------------------------------
    def _gateway(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        for a in self.accounts.values():
            domain = next((d for d in a.domains if d["hostname"] == host), None)
            if domain is None:
                continue
            gateway = a.scripts[domain["service"]]
            if request.method == "GET" and request.url.path == "/health":
                workers = [{"worker": "gateway", "status": "ok"}]
                for b in gateway.bindings:
                    if b["type"] == "service":
                        up = b["service"] in a.scripts
                        workers.append(
                            {"worker": b["service"], "status": "ok" if up else "unreachable"}
                        )
                healthy = all(w["status"] == "ok" for w in workers) and host not in self.unhealthy
                body = {"status": "ok" if healthy else "degraded", "workers": workers}
                return httpx.Response(200 if healthy else 503, json=body)
            m = re.fullmatch(r"/v1/tenants/(t_\w+)", request.url.path)
            if request.method == "PATCH" and m:
                auth = request.headers.get("authorization", "")
                if auth != f"Bearer {gateway.secrets.get('EDGERAG_OPERATOR_TOKEN')}":
                    return httpx.Response(
                        401, json={"error": {"code": "unauthorized", "message": "bad token"}}
                    )
                self.policies.append((host, m[1], json.loads(request.content)))
                return httpx.Response(200, json={"tenant_id": m[1]})
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no route"}})
        raise httpx.ConnectError(f"could not resolve {host}", request=request)


def _statements(sql: str) -> list[str]:
    """Split a batch into statements (triggers' BEGIN … END keep their inner semicolons)."""
    out, buf = [], ""
    for piece in sql.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \t\r\n;"):
        out.append(buf.strip())
    return out


class FakeWrangler:
    """`wrangler deploy -c CONFIG` against the fake account: uploads what wrangler would and
    refuses what the real upload refuses (unknown D1/KV ids, buckets, indexes, services)."""

    def __init__(self, cf: FakeCloudflare, *, fail_for: Sequence[str] = ()) -> None:
        self.cf = cf
        self.fail_for = set(fail_for)  # script names whose deploy exits 1
        self.argv: list[list[str]] = []

    def run(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> RunResult:
        self.argv.append(list(argv))
        assert argv[0].endswith("node_modules/.bin/node") and argv[1].endswith("wrangler.js")
        assert argv[2:4] == ["deploy", "-c"], argv
        account = self.cf.accounts[env["CLOUDFLARE_ACCOUNT_ID"]]
        assert env["CLOUDFLARE_API_TOKEN"] == account.token
        cfg = tomllib.loads((cwd / argv[4]).read_text())
        name = cfg["name"]
        if name in self.fail_for:
            return RunResult(1, f"✘ [ERROR] A request to the Cloudflare API failed for {name}")
        bindings, problems = self._bindings(account, cfg)
        if problems:
            return RunResult(1, "✘ [ERROR] " + "; ".join(problems))
        old = account.scripts.get(name)
        account.scripts[name] = Script(
            name,
            bindings,
            cfg["compatibility_date"],
            list(cfg.get("compatibility_flags", [])),
            list(cfg.get("triggers", {}).get("crons", [])),
            dict(old.secrets) if old else {},  # wrangler deploy keeps the Worker's secrets
        )
        for route in cfg.get("routes", []):
            if route.get("custom_domain") and not any(
                d["hostname"] == route["pattern"] for d in account.domains
            ):
                account.domains.append(
                    {
                        "id": uuid.uuid4().hex,
                        "hostname": route["pattern"],
                        "service": name,
                        "environment": "production",
                        "zone_id": "0da42c8d2132a9ddaf714f9e7c920711",
                        "zone_name": ".".join(route["pattern"].split(".")[-2:]),
                    }
                )
        self.cf.events.append(("deploy", name))
        return RunResult(0, f"Uploaded {name}\nDeployed {name} triggers")

    def _bindings(self, a: Account, cfg: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
        out: list[dict[str, Any]] = []
        problems = []
        for db in cfg.get("d1_databases", []):
            if db["database_id"] not in a.d1:
                problems.append(f"D1 database {db['database_id']} not found [code: 10021]")
            out.append({"type": "d1", "name": db["binding"], "id": db["database_id"]})
        for kv in cfg.get("kv_namespaces", []):
            if kv["id"] not in a.kv:
                problems.append(f"KV namespace '{kv['id']}' is not valid. [code: 10042]")
            out.append({"type": "kv_namespace", "name": kv["binding"], "namespace_id": kv["id"]})
        for r2 in cfg.get("r2_buckets", []):
            if r2["bucket_name"] not in a.r2:
                problems.append(f"R2 bucket '{r2['bucket_name']}' not found [code: 10085]")
            out.append(
                {"type": "r2_bucket", "name": r2["binding"], "bucket_name": r2["bucket_name"]}
            )
        for vec in cfg.get("vectorize", []):
            if vec["index_name"] not in a.vectorize:
                problems.append(f"Vectorize index {vec['index_name']} not found")
            out.append(
                {"type": "vectorize", "name": vec["binding"], "index_name": vec["index_name"]}
            )
        for svc in cfg.get("services", []):
            if svc["service"] not in a.scripts and svc["service"] != cfg["name"]:
                problems.append(
                    f"Could not resolve service binding '{svc['binding']}'. Target script '{svc['service']}' not found."
                )
            out.append(
                {
                    "type": "service",
                    "name": svc["binding"],
                    "service": svc["service"],
                    "environment": "production",
                }
            )
        if "ai" in cfg:
            out.append({"type": "ai", "name": cfg["ai"]["binding"]})
        if "binding" in cfg.get("assets", {}):
            out.append({"type": "assets", "name": cfg["assets"]["binding"]})
        for k, v in cfg.get("vars", {}).items():
            out.append(
                {"type": "plain_text", "name": k, "text": v}
                if isinstance(v, str)
                else {"type": "json", "name": k, "json": v}
            )
        return out, problems
