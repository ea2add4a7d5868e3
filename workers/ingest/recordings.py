"""Recordings: audio uploaded straight to R2, read from its container headers, then analysed.

`create` records a pending recording with a presigned upload (ingest.direct). `confirm` checks
the object (size, type, SHA-256) and reads format, duration, sample rate and channels from its
headers with range reads (ingest.audio), so a 200 MB file never sits in the Worker's heap;
bytes it cannot read make the recording `rejected` (with why) and the object is deleted.
`analyze` runs the tenant's analyzer through the llm Worker (llm.analyzer: the Worker that holds
provider credentials and talks HTTP to model services) and keeps a run `running` → `done` with
its results in one write, or `failed` with why — never half a result.

Who may do what: the owner, their teachers and admins see a recording and run its analysis;
the owner or an admin deletes it. Anything else is a 404, like a recording that does not exist.
"""

from __future__ import annotations

import calendar
import json
import time
from typing import Any

from ingest import audio, direct
from ingest.access import own_or_students
from ingest.settings import IngestSettings
from kernel.bindings.env import Bindings
from kernel.bindings.ports import Statement
from kernel.bindings.services import call, upstream_error
from kernel.contracts.analyzer import AnalyzerRequest, AnalyzerResponse, Dimension, RecordingRef
from kernel.contracts.api import AUDIO_TYPES, CreateUpload
from kernel.contracts.llm import AnalyzeRequest
from kernel.contracts.workspaces import CreateRecording
from kernel.domain.paging import Page
from kernel.domain.sigv4 import presign
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import ApiError, Conflict, Forbidden, NotFound, ValidationFailed
from kernel.runtime.ids import new_id
from kernel.runtime.logs import log

DEFAULT_MAX_RECORDING_BYTES = 200 * 1024 * 1024
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
COLUMNS = (
    "r.id, r.owner_id, r.title, r.upload_id, r.status, r.error, r.content_type, r.size_bytes,"
    " r.format, r.codec, r.duration_s, r.sample_rate, r.channels, r.bitrate, r.created_at,"
    " r.updated_at"
)
ANALYSIS_COLUMNS = (
    "id, recording_id, status, requested_by, analyzer, dimensions, segments, unmeasured,"
    " ignored, error_code, error_message, created_at, finished_at"
)
# A run older than this still `running` died with its Worker: it reads as failed.
STALE_RUN_S = 15 * 60
# Without a tenant set, recordings are judged on what the signal analyzer measures.
SIGNAL_DIMENSIONS = (
    Dimension(name="loudness", label="Loudness", description="Mean short-term level (dBFS)"),
    Dimension(
        name="dynamic_range",
        label="Dynamic range",
        description="Spread between loud and soft passages (dB)",
    ),
    Dimension(name="onset_density", label="Note density", description="Onsets per second"),
    Dimension(
        name="tempo_stability",
        label="Tempo stability",
        description="How even the time between onsets is",
    ),
    Dimension(
        name="pitch_stability",
        label="Pitch stability",
        description="How steady held pitches are (cents)",
    ),
)


def dimension_set(settings: IngestSettings) -> list[Dimension]:
    if settings.recording_dimensions:
        return [Dimension.model_validate(d) for d in settings.recording_dimensions]
    return list(SIGNAL_DIMENSIONS)


# --- who sees what ------------------------------------------------------------------------------
def visible(viewer: Viewer, first_param: int) -> tuple[str, list[str]]:
    """Whose recordings the viewer sees."""
    return own_or_students(viewer, "r.owner_id", first_param)


def select_page(db: TenantDB, viewer: Viewer, page: Page, filters: dict[str, str]) -> Statement:
    values: list[Any] = []
    where = ""
    for column in ("owner_id", "status", "format"):
        if column in filters:
            values.append(filters[column])
            where += f" AND r.{column} = ?{len(values) + 1}"
    seen, people = visible(viewer, len(values) + 2)
    values += people
    if page.after is not None:
        values.append(page.after)
        where += f" AND r.id > ?{len(values) + 1}"
    values.append(page.limit + 1)
    return db.statement(
        f"SELECT {COLUMNS} FROM recordings r WHERE r.tenant_id = ?1{where}{seen}"
        f" ORDER BY r.id LIMIT ?{len(values) + 1}",
        values,
    )


async def get(db: TenantDB, viewer: Viewer | None, recording_id: str) -> dict[str, Any]:
    if viewer is None or not viewer.principal_id:
        raise NotFound(f"recording {recording_id} not found")
    seen, people = visible(viewer, 3)
    rows = (
        await db.execute(
            f"SELECT {COLUMNS} FROM recordings r WHERE r.tenant_id = ?1 AND r.id = ?2{seen}",
            (recording_id, *people),
        )
    ).rows
    if not rows:
        raise NotFound(f"recording {recording_id} not found")
    return rows[0]


def may_delete(viewer: Viewer, row: dict[str, Any]) -> bool:
    return viewer.role == "admin" or row["owner_id"] == viewer.principal_id


# --- create, confirm, delete --------------------------------------------------------------------
async def create(
    b: Bindings, db: TenantDB, viewer: Viewer, ask: CreateRecording
) -> tuple[dict[str, Any], Any]:
    if audio.format_for(ask.content_type) is None:
        raise ValidationFailed(
            f"content_type: {ask.content_type!r} is not a recording type; send one of"
            f" {', '.join(AUDIO_TYPES)}",
            code="unsupported_audio_type",
            details={"fields": [{"field": "content_type", "message": "not an audio type"}]},
        )
    if ask.size_bytes == 0:
        raise ValidationFailed(
            "size_bytes: the recording is empty (0 bytes)",
            code="empty_audio",
            details={"fields": [{"field": "size_bytes", "message": "empty"}]},
        )
    limit = int(b.var("EDGERAG_MAX_RECORDING_BYTES") or DEFAULT_MAX_RECORDING_BYTES)
    if ask.size_bytes > limit:
        raise ValidationFailed.field("size_bytes", f"at most {limit} bytes for a recording")
    ticket = await direct.create(
        b,
        db,
        viewer.principal_id,
        CreateUpload.model_validate(
            {
                "filename": ask.filename,
                "content_type": ask.content_type,
                "size_bytes": ask.size_bytes,
                "sha256": ask.sha256,
                "purpose": "recording",
            },
            strict=False,
        ),
    )
    recording_id = new_id("rec")
    await db.run(
        db.statement(
            "INSERT INTO recordings (tenant_id, id, owner_id, title, upload_id, content_type,"
            " size_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                recording_id,
                viewer.principal_id,
                ask.title or ask.filename,
                ticket.upload_id,
                ask.content_type,
                ask.size_bytes,
            ),
        )
    )
    return await get(db, viewer, recording_id), ticket


async def _object_key(db: TenantDB, upload_id: str) -> str | None:
    rows = (
        await db.execute(
            "SELECT object_key FROM uploads WHERE tenant_id = ?1 AND id = ?2", (upload_id,)
        )
    ).rows
    return str(rows[0]["object_key"]) if rows else None


async def confirm(b: Bindings, db: TenantDB, viewer: Viewer, recording_id: str) -> dict[str, Any]:
    row = await get(db, viewer, recording_id)
    if row["owner_id"] != viewer.principal_id:
        raise Forbidden("only the recording's owner confirms its upload")
    if row["status"] != "pending":
        return row
    await direct.confirm(b, db, viewer.principal_id, str(row["upload_id"]))  # size, type, sum
    key = await _object_key(db, str(row["upload_id"]))
    assert key is not None
    blobs = b.need(b.blobs, "R2")

    async def read(offset: int, length: int) -> bytes:
        return await blobs.get_range(key, offset, length) or b""

    try:
        info = await audio.probe(read, int(row["size_bytes"]), str(row["content_type"]))
    except ValidationFailed as exc:
        # Unreadable bytes are no recording: say why, and keep nothing of them.
        await db.run(
            db.statement(
                f"UPDATE recordings SET status = 'rejected', error = ?3, updated_at = {NOW}"
                " WHERE tenant_id = ?1 AND id = ?2",
                (recording_id, f"{exc.code}: {exc.message}"),
            )
        )
        await blobs.delete([key])
        raise
    await db.run(
        db.statement(
            "UPDATE recordings SET status = 'ready', format = ?3, codec = ?4, duration_s = ?5,"
            f" sample_rate = ?6, channels = ?7, bitrate = ?8, updated_at = {NOW}"
            " WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
            (
                recording_id,
                info.format,
                info.codec,
                info.duration_s,
                info.sample_rate,
                info.channels,
                info.bitrate,
            ),
        )
    )
    return await get(db, viewer, recording_id)


async def delete(b: Bindings, db: TenantDB, viewer: Viewer, recording_id: str) -> None:
    row = await get(db, viewer, recording_id)
    if not may_delete(viewer, row):
        raise Forbidden("only the recording's owner or an admin deletes it")
    key = await _object_key(db, str(row["upload_id"]))
    # The recording's derived rows (analyses; the rag Worker's feedback) go with it.
    await db.batch(
        [
            db.statement(
                f"DELETE FROM {table} WHERE tenant_id = ?1 AND recording_id = ?2",
                (recording_id,),
            )
            for table in ("recording_feedback", "recording_analyses")
        ]
        + [
            db.statement(
                "DELETE FROM recordings WHERE tenant_id = ?1 AND id = ?2", (recording_id,)
            ),
            db.statement(
                "DELETE FROM uploads WHERE tenant_id = ?1 AND id = ?2", (row["upload_id"],)
            ),
        ]
    )
    if key is not None:
        await b.need(b.blobs, "R2").delete([key])


# --- analysis -----------------------------------------------------------------------------------
def analysis_public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "recording_id", "status", "requested_by", "created_at")}
    out["finished_at"] = row["finished_at"]
    for name in ("analyzer", "dimensions", "segments", "unmeasured", "ignored"):
        if row[name] is not None:
            out[name] = json.loads(str(row[name]))
    if row["status"] == "running" and _age_s(str(row["created_at"])) > STALE_RUN_S:
        out["status"] = "failed"
        out["error"] = {"code": "analysis_interrupted", "message": "the run did not finish"}
    elif row["error_code"] is not None:
        out["error"] = {"code": row["error_code"], "message": row["error_message"] or ""}
    return out


def _age_s(iso: str) -> float:
    try:
        started = calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))  # UTC
    except ValueError:
        return 0.0
    return time.time() - started


async def analyses(db: TenantDB, recording_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = (
        await db.execute(
            f"SELECT {ANALYSIS_COLUMNS} FROM recording_analyses WHERE tenant_id = ?1"
            " AND recording_id = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3",
            (recording_id, limit),
        )
    ).rows
    return [analysis_public(r) for r in rows]


async def analysis(db: TenantDB, recording_id: str, analysis_id: str) -> dict[str, Any]:
    rows = (
        await db.execute(
            f"SELECT {ANALYSIS_COLUMNS} FROM recording_analyses WHERE tenant_id = ?1"
            " AND recording_id = ?2 AND id = ?3",
            (recording_id, analysis_id),
        )
    ).rows
    if not rows:
        raise NotFound(f"analysis {analysis_id} not found")
    return analysis_public(rows[0])


def keep_asked(
    result: AnalyzerResponse, asked: list[Dimension]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], list[str]]:
    """(dimensions, segments, unmeasured, ignored): only the tenant's dimensions, labelled;
    what it asked for and did not get is listed, never filled in."""
    by_name = {d.name: d for d in asked}

    def labelled(scores: list[Any]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        out = []
        for s in scores:
            if s.name in by_name and s.name not in seen:
                seen.add(s.name)
                d = by_name[s.name]
                out.append({**s.model_dump(), "label": d.label, "group": d.group})
        return out

    dimensions = labelled(result.dimensions)
    measured = {d["name"] for d in dimensions}
    segments = [
        {**seg.model_dump(), "dimensions": labelled(seg.dimensions)} for seg in result.segments
    ]
    unmeasured = [d.name for d in asked if d.name not in measured]
    ignored = sorted({s.name for s in result.dimensions} - set(by_name))
    return dimensions, segments, unmeasured, ignored


async def analyze(
    b: Bindings,
    db: TenantDB,
    viewer: Viewer,
    settings: IngestSettings,
    recording_id: str,
    request_id: str,
) -> dict[str, Any]:
    row = await get(db, viewer, recording_id)  # the owner, their teachers, admins
    if row["status"] != "ready":
        raise Conflict(
            "the recording is not ready: confirm its upload first", code="recording_not_ready"
        )
    asked = dimension_set(settings)
    key = await _object_key(db, str(row["upload_id"]))
    sha = (
        await db.execute(
            "SELECT sha256 FROM uploads WHERE tenant_id = ?1 AND id = ?2", (row["upload_id"],)
        )
    ).rows[0]["sha256"]
    creds, endpoint, bucket = direct.signer(b)
    url = presign(creds, "GET", f"{endpoint}/{bucket}/{key}", expires_s=direct.EXPIRES_S)
    ask = AnalyzerRequest(
        request_id=request_id,
        recording=RecordingRef(
            id=recording_id,
            url=url,
            content_type=str(row["content_type"]),
            size_bytes=int(row["size_bytes"]),
            sha256=str(sha),
            format=row["format"],
            duration_s=float(row["duration_s"]),
            sample_rate=int(row["sample_rate"]),
            channels=int(row["channels"]),
        ),
        dimensions=asked,
    )
    analysis_id = new_id("ana")
    await db.execute(
        "INSERT INTO recording_analyses (tenant_id, id, recording_id, requested_by)"
        " VALUES (?1, ?2, ?3, ?4)",
        (analysis_id, recording_id, viewer.principal_id),
    )
    try:
        result = await _run_analyzer(b, db, settings, ask, request_id)
        dimensions, segments, unmeasured, ignored = keep_asked(result, asked)
    except ApiError as exc:
        await db.execute(
            "UPDATE recording_analyses SET status = 'failed', error_code = ?3,"
            f" error_message = ?4, finished_at = {NOW} WHERE tenant_id = ?1 AND id = ?2",
            (analysis_id, exc.code, exc.message[:500]),
        )
        log("analysis_failed", recording=recording_id, code=exc.code)
        exc.details = {**exc.details, "analysis_id": analysis_id}
        raise
    await db.execute(
        "UPDATE recording_analyses SET status = 'done', analyzer = ?3, dimensions = ?4,"
        f" segments = ?5, unmeasured = ?6, ignored = ?7, finished_at = {NOW}"
        " WHERE tenant_id = ?1 AND id = ?2",
        (
            analysis_id,
            result.analyzer.model_dump_json(),
            json.dumps(dimensions),
            json.dumps(segments),
            json.dumps(unmeasured),
            json.dumps(ignored),
        ),
    )
    return await analysis(db, recording_id, analysis_id)


async def _run_analyzer(
    b: Bindings, db: TenantDB, settings: IngestSettings, ask: AnalyzerRequest, request_id: str
) -> AnalyzerResponse:
    reply = await call(
        b.service("LLM"),
        "POST",
        "/analyze",
        request_id=request_id,
        tenant_id=db.scope.tenant_id,
        payload=AnalyzeRequest(analyzer_url=settings.analyzer_url, request=ask).model_dump(),
    )
    if reply.status != 200:
        raise upstream_error(reply, "llm Worker")
    return AnalyzerResponse.model_validate_json(reply.body)
