"""A small client for the Cloudflare REST API (v4), on httpx.

The seam is httpx's one-method transport (`httpx.BaseTransport.handle_request`): production
uses the real network, tests pass an `httpx.MockTransport` that answers as the API documents.
Every answer is the documented envelope `{"success", "errors", "messages", "result",
"result_info"}`; anything else is an error naming the call.

Retries: 429 waits for `retry-after` (the API sends it on rate-limited calls; the global limit
is 1200 requests / 5 minutes per token, developers.cloudflare.com/fundamentals/api/reference/
limits/), 5xx and network errors back off; creates are safe to retry because the provisioner
re-reads before it creates again. 401/403 name the token's env var and the permission the
call needs. The token is only ever put in the Authorization header; it is never printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

API = "https://api.cloudflare.com/client/v4"
MAX_ATTEMPTS = 4
MAX_WAIT_S = 120.0  # a longer retry-after (the 5-minute global block) fails now, clearly
USER_AGENT = "edgerag-deploy/0.1"

# API token permissions, as the dashboard names them (Account → ... unless marked Zone).
D1 = "D1 Edit"
VECTORIZE = "Vectorize Edit"
KV = "Workers KV Storage Edit"
R2 = "Workers R2 Storage Edit"
SCRIPTS = "Workers Scripts Edit"
DOMAINS = "Workers Scripts Edit (custom domains also need Zone: Workers Routes Edit)"


class CloudflareError(Exception):
    def __init__(
        self,
        call: str,
        message: str,
        *,
        status: int | None = None,
        codes: tuple[int, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        self.call, self.status, self.codes, self.retry_after = call, status, codes, retry_after
        super().__init__(f"{call}: {message}")


class NotFound(CloudflareError):
    """404: the resource does not exist (how the provisioner learns it must create it)."""


@dataclass(frozen=True)
class Envelope:
    result: Any
    result_info: dict[str, Any]


class Cloudflare:
    def __init__(
        self,
        token: str,
        *,
        token_label: str = "the API token",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        base_url: str = API,
        timeout_s: float = 60.0,
    ) -> None:
        self._token_label = token_label
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout_s,
            headers={"authorization": f"Bearer {token}", "user-agent": USER_AGENT},
            trust_env=transport is None,
        )
        self.calls = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Cloudflare:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the envelope, errors and retries -----------------------------------------------------
    def call(
        self,
        method: str,
        template: str,
        *,
        scope: str,
        what: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        **path: str,
    ) -> Envelope:
        """`template` is the documented path (`/accounts/{account_id}/d1/database`); errors
        name it, the object (`what`) and, on 403, the permission `scope`."""
        url = template.format(**{k: quote(v, safe="") for k, v in path.items()})
        label = f"{method} {template} ({what})"
        delay = 1.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self.calls += 1
            try:
                response = self._http.request(method, url, params=params, json=body)
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise CloudflareError(
                        label, f"cannot reach the Cloudflare API: {exc or type(exc).__name__}"
                    ) from exc
                self._sleep(delay)
                delay *= 2
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                wait = _retry_after(response)
                if attempt < MAX_ATTEMPTS and (wait is None or wait <= MAX_WAIT_S):
                    self._sleep(wait if wait is not None else delay)
                    delay *= 2
                    continue
                raise self._error(label, response, scope, attempts=attempt)
            if status >= 400:
                raise self._error(label, response, scope, attempts=attempt)
            data = _json(response)
            if not isinstance(data, dict) or data.get("success") is not True:
                raise self._error(label, response, scope, attempts=attempt)
            return Envelope(data.get("result"), data.get("result_info") or {})
        raise AssertionError("unreachable")

    def _error(
        self, label: str, response: httpx.Response, scope: str, *, attempts: int
    ) -> CloudflareError:
        status = response.status_code
        data = _json(response)
        errors = data.get("errors") if isinstance(data, dict) else None
        errors = [e for e in errors or [] if isinstance(e, dict)]
        codes = tuple(int(e["code"]) for e in errors if isinstance(e.get("code"), int))
        detail = "; ".join(f"[{e.get('code')}] {e.get('message')}" for e in errors)
        detail = detail or response.reason_phrase or "no error detail"
        message = f"HTTP {status}: {detail}"
        if status == 401:
            message += f" — {self._token_label} was refused: is it expired, revoked or mistyped?"
        elif status == 403:
            message += (
                f" — {self._token_label} lacks the permission this call needs: {scope}"
                " (the Read level of it suffices for drift)"
            )
        elif status == 429:
            message += " — rate limited by the Cloudflare API"
            if (wait := _retry_after(response)) is not None:
                message += f"; retry after {wait:g} s"
        elif status >= 500:
            message += f" — the Cloudflare API failed (after {attempts} attempts); try again later"
        cls = NotFound if status == 404 else CloudflareError
        return cls(label, message, status=status, codes=codes, retry_after=_retry_after(response))

    def pages(
        self, template: str, *, scope: str, what: str, per_page: int = 100, **path: str
    ) -> Iterator[Any]:
        """Page-numbered lists (`page`, `per_page`; `result_info.total_count`). Counted by what
        arrived: the API may send fewer per page than asked for."""
        page, seen = 1, 0
        while True:
            env = self.call(
                "GET",
                template,
                scope=scope,
                what=what,
                params={"page": page, "per_page": per_page},
                **path,
            )
            items = list(env.result or [])
            yield from items
            seen += len(items)
            total = env.result_info.get("total_count")
            size = int(env.result_info.get("per_page") or per_page)
            if not items or (seen >= int(total) if total is not None else len(items) < size):
                return
            page += 1

    def first(
        self, template: str, match: tuple[str, str], *, scope: str, what: str, **path: str
    ) -> dict[str, Any] | None:
        """The first item of a paged list whose field `match[0]` equals `match[1]`."""
        field, value = match
        for item in self.pages(template, scope=scope, what=what, per_page=100, **path):
            if item.get(field) == value:
                return dict(item)
        return None

    # --- D1 (developers.cloudflare.com/api/resources/d1/subresources/database/) --------------
    def find_d1(self, account_id: str, name: str) -> dict[str, Any] | None:
        # GET /accounts/{account_id}/d1/database?name= → [{uuid, name, created_at, version}]
        return self.first(
            "/accounts/{account_id}/d1/database",
            ("name", name),
            scope=D1,
            what=f"list D1 databases, looking for {name}",
            account_id=account_id,
        )

    def create_d1(self, account_id: str, name: str) -> dict[str, Any]:
        # POST /accounts/{account_id}/d1/database {name} → {uuid, name, ...}
        return dict(
            self.call(
                "POST",
                "/accounts/{account_id}/d1/database",
                scope=D1,
                what=f"create D1 database {name}",
                body={"name": name},
                account_id=account_id,
            ).result
        )

    def d1_query(self, account_id: str, database_id: str, sql: str, *, what: str) -> list[Any]:
        """POST .../d1/database/{database_id}/query {sql} → one QueryResult {results, success,
        meta} per statement; several statements run as one batch."""
        result = self.call(
            "POST",
            "/accounts/{account_id}/d1/database/{database_id}/query",
            scope=D1,
            what=what,
            body={"sql": sql},
            account_id=account_id,
            database_id=database_id,
        ).result
        return list(result or [])

    # --- Workers KV (.../api/resources/kv/subresources/namespaces/) --------------------------
    def find_kv(self, account_id: str, title: str) -> dict[str, Any] | None:
        # GET /accounts/{account_id}/storage/kv/namespaces → [{id, title, supports_url_encoding}]
        return self.first(
            "/accounts/{account_id}/storage/kv/namespaces",
            ("title", title),
            scope=KV,
            what=f"list KV namespaces, looking for {title}",
            account_id=account_id,
        )

    def create_kv(self, account_id: str, title: str) -> dict[str, Any]:
        # POST /accounts/{account_id}/storage/kv/namespaces {title} → {id, title}
        return dict(
            self.call(
                "POST",
                "/accounts/{account_id}/storage/kv/namespaces",
                scope=KV,
                what=f"create KV namespace {title}",
                body={"title": title},
                account_id=account_id,
            ).result
        )

    # --- R2 (.../api/resources/r2/subresources/buckets/) --------------------------------------
    def get_bucket(self, account_id: str, name: str) -> dict[str, Any] | None:
        # GET /accounts/{account_id}/r2/buckets/{bucket_name} → {name, creation_date, location}
        try:
            return dict(
                self.call(
                    "GET",
                    "/accounts/{account_id}/r2/buckets/{bucket_name}",
                    scope=R2,
                    what=f"get R2 bucket {name}",
                    account_id=account_id,
                    bucket_name=name,
                ).result
            )
        except NotFound:
            return None

    def create_bucket(self, account_id: str, name: str) -> dict[str, Any]:
        # POST /accounts/{account_id}/r2/buckets {name}
        return dict(
            self.call(
                "POST",
                "/accounts/{account_id}/r2/buckets",
                scope=R2,
                what=f"create R2 bucket {name}",
                body={"name": name},
                account_id=account_id,
            ).result
        )

    # --- Vectorize v2 (.../api/resources/vectorize/subresources/indexes/) --------------------
    def get_index(self, account_id: str, name: str) -> dict[str, Any] | None:
        # GET /accounts/{account_id}/vectorize/v2/indexes/{index_name} → {name, config, ...}
        try:
            return dict(
                self.call(
                    "GET",
                    "/accounts/{account_id}/vectorize/v2/indexes/{index_name}",
                    scope=VECTORIZE,
                    what=f"get Vectorize index {name}",
                    account_id=account_id,
                    index_name=name,
                ).result
            )
        except NotFound:
            return None

    def create_index(self, account_id: str, name: str, dimensions: int, metric: str) -> None:
        # POST /accounts/{account_id}/vectorize/v2/indexes {name, config: {dimensions, metric}}
        self.call(
            "POST",
            "/accounts/{account_id}/vectorize/v2/indexes",
            scope=VECTORIZE,
            what=f"create Vectorize index {name}",
            body={"name": name, "config": {"dimensions": dimensions, "metric": metric}},
            account_id=account_id,
        )

    def metadata_indexes(self, account_id: str, name: str) -> dict[str, str]:
        # GET .../indexes/{index_name}/metadata_index/list → {metadataIndexes: [{propertyName,
        # indexType}]}
        result = self.call(
            "GET",
            "/accounts/{account_id}/vectorize/v2/indexes/{index_name}/metadata_index/list",
            scope=VECTORIZE,
            what=f"list metadata indexes of {name}",
            account_id=account_id,
            index_name=name,
        ).result
        found = (result or {}).get("metadataIndexes") or []
        return {str(m["propertyName"]): str(m["indexType"]) for m in found}

    def create_metadata_index(self, account_id: str, name: str, prop: str, kind: str) -> None:
        # POST .../indexes/{index_name}/metadata_index/create {propertyName, indexType}
        self.call(
            "POST",
            "/accounts/{account_id}/vectorize/v2/indexes/{index_name}/metadata_index/create",
            scope=VECTORIZE,
            what=f"create metadata index {prop} ({kind}) on {name}",
            body={"propertyName": prop, "indexType": kind},
            account_id=account_id,
            index_name=name,
        )

    # --- Workers (.../api/resources/workers/subresources/scripts/) ---------------------------
    def scripts(self, account_id: str) -> set[str]:
        # GET /accounts/{account_id}/workers/scripts → [{id: script name, ...}]
        result = self.call(
            "GET",
            "/accounts/{account_id}/workers/scripts",
            scope=SCRIPTS,
            what="list Worker scripts",
            account_id=account_id,
        ).result
        return {str(s["id"]) for s in result or []}

    def script_settings(self, account_id: str, script: str) -> dict[str, Any]:
        # GET .../workers/scripts/{script_name}/settings → {bindings, compatibility_date,
        # compatibility_flags, ...}; bindings as in the multipart upload metadata
        return dict(
            self.call(
                "GET",
                "/accounts/{account_id}/workers/scripts/{script_name}/settings",
                scope=SCRIPTS,
                what=f"settings of {script}",
                account_id=account_id,
                script_name=script,
            ).result
        )

    def secret_names(self, account_id: str, script: str) -> set[str]:
        # GET .../workers/scripts/{script_name}/secrets → [{name, type: "secret_text"}]
        result = self.call(
            "GET",
            "/accounts/{account_id}/workers/scripts/{script_name}/secrets",
            scope=SCRIPTS,
            what=f"secret names of {script}",
            account_id=account_id,
            script_name=script,
        ).result
        return {str(s["name"]) for s in result or []}

    def put_secret(self, account_id: str, script: str, name: str, value: str) -> None:
        # PUT .../workers/scripts/{script_name}/secrets {name, text, type: "secret_text"}
        self.call(
            "PUT",
            "/accounts/{account_id}/workers/scripts/{script_name}/secrets",
            scope=SCRIPTS,
            what=f"set secret {name} on {script}",
            body={"name": name, "text": value, "type": "secret_text"},
            account_id=account_id,
            script_name=script,
        )

    def schedules(self, account_id: str, script: str) -> list[str]:
        # GET .../workers/scripts/{script_name}/schedules → {schedules: [{cron, created_on, ...}]}
        result = self.call(
            "GET",
            "/accounts/{account_id}/workers/scripts/{script_name}/schedules",
            scope=SCRIPTS,
            what=f"cron triggers of {script}",
            account_id=account_id,
            script_name=script,
        ).result
        return [str(s["cron"]) for s in (result or {}).get("schedules") or []]

    def domains(self, account_id: str, script: str) -> set[str]:
        # GET /accounts/{account_id}/workers/domains?service= → [{id, hostname, service,
        # zone_id, zone_name, environment}]
        result = self.call(
            "GET",
            "/accounts/{account_id}/workers/domains",
            scope=DOMAINS,
            what=f"custom domains of {script}",
            params={"service": script},
            account_id=account_id,
        ).result
        return {str(d["hostname"]) for d in result or [] if d.get("service") == script}


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "").strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
