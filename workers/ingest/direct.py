"""Direct uploads: large files go straight to R2 with a presigned PUT, never through a Worker.

`create` records a pending upload and signs a PUT for exactly its size, type and SHA-256 (R2
checks the body against `x-amz-checksum-sha256`) with `if-none-match: *` (no overwrite, so no
replay), valid 10 minutes. `confirm` then checks the object R2 holds — present, the declared
size, type and checksum — before anything uses it; `download` signs a GET for a confirmed one.
Uploads are their owner's: anyone else's id is a 404.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from kernel.bindings.env import Bindings
from kernel.bindings.ports import Statement
from kernel.contracts.api import CreateUpload, DownloadTicket, UploadStatus, UploadTicket
from kernel.domain.sigv4 import Credentials, presign
from kernel.domain.tenancy import TenantDB
from kernel.runtime.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from kernel.runtime.ids import new_id

EXPIRES_S = 600
DEFAULT_MAX_DIRECT_BYTES = 200 * 1024 * 1024
COLUMNS = (
    "id, owner_id, purpose, filename, content_type, size_bytes, sha256, object_key, status,"
    " expires_at, confirmed_at"
)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def signer(b: Bindings) -> tuple[Credentials, str, str]:
    key_id, secret = b.var("EDGERAG_R2_ACCESS_KEY_ID"), b.var("EDGERAG_R2_SECRET_ACCESS_KEY")
    endpoint = b.var("EDGERAG_R2_ENDPOINT")
    if not (key_id and secret and endpoint):
        raise ServiceUnavailable(
            "direct uploads need the R2 API token: EDGERAG_R2_ACCESS_KEY_ID,"
            " EDGERAG_R2_SECRET_ACCESS_KEY and EDGERAG_R2_ENDPOINT"
        )
    bucket = b.var("EDGERAG_R2_BUCKET") or "edgerag-originals"
    return Credentials(key_id, secret), endpoint.rstrip("/"), bucket


def insert(db: TenantDB, row: dict[str, Any]) -> Statement:
    return db.statement(
        "INSERT INTO uploads (tenant_id, id, owner_id, purpose, filename, content_type,"
        " size_bytes, sha256, object_key, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        (
            row["id"],
            row["owner_id"],
            row["purpose"],
            row["filename"],
            row["content_type"],
            row["size_bytes"],
            row["sha256"],
            row["object_key"],
            row["expires_at"],
        ),
    )


def select(db: TenantDB, upload_id: str, owner_id: str) -> Statement:
    return db.statement(
        f"SELECT {COLUMNS} FROM uploads WHERE tenant_id = ?1 AND id = ?2 AND owner_id = ?3",
        (upload_id, owner_id),
    )


def mark_confirmed(db: TenantDB, upload_id: str) -> Statement:
    return db.statement(
        "UPDATE uploads SET status = 'confirmed', confirmed_at = strftime('%Y-%m-%dT%H:%M:%fZ',"
        " 'now') WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
        (upload_id,),
    )


async def create(b: Bindings, db: TenantDB, owner: str, ask: CreateUpload) -> UploadTicket:
    limit = int(b.var("EDGERAG_MAX_DIRECT_UPLOAD_BYTES") or DEFAULT_MAX_DIRECT_BYTES)
    if ask.size_bytes > limit:
        raise ValidationFailed(
            f"size_bytes: at most {limit} bytes for a direct upload",
            details={"fields": [{"field": "size_bytes", "message": f"at most {limit}"}]},
        )
    creds, endpoint, bucket = signer(b)
    upload_id = new_id("up")
    key = db.scope.r2_key("uploads", upload_id)
    expires = time.time() + EXPIRES_S
    headers = {
        "content-length": str(ask.size_bytes),
        "content-type": ask.content_type,
        "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(ask.sha256)).decode(),
        "if-none-match": "*",
    }
    url = presign(creds, "PUT", f"{endpoint}/{bucket}/{key}", expires_s=EXPIRES_S, headers=headers)
    row = {
        "id": upload_id,
        "owner_id": owner,
        "purpose": ask.purpose,
        "filename": ask.filename,
        "content_type": ask.content_type,
        "size_bytes": ask.size_bytes,
        "sha256": ask.sha256,
        "object_key": key,
        "expires_at": _iso(expires),
    }
    await db.run(insert(db, row))
    return UploadTicket(
        upload_id=upload_id, method="PUT", url=url, headers=headers, expires_at=_iso(expires)
    )


async def _owned(db: TenantDB, upload_id: str, owner: str) -> dict[str, Any]:
    rows = (await db.run(select(db, upload_id, owner))).rows
    if not rows:
        raise NotFound(f"upload {upload_id} not found")
    return rows[0]


async def confirm(b: Bindings, db: TenantDB, owner: str, upload_id: str) -> UploadStatus:
    row = await _owned(db, upload_id, owner)
    if row["status"] == "pending":
        info = await b.need(b.blobs, "R2").head(str(row["object_key"]))
        if info is None:
            raise Conflict(
                "nothing was uploaded yet: PUT the file to the upload URL first",
                code="upload_missing",
            )
        problems = []
        if info.size != int(row["size_bytes"]):
            problems.append(f"{info.size} bytes arrived, {row['size_bytes']} were declared")
        if (info.content_type or "") != row["content_type"]:
            problems.append(f"its type is {info.content_type!r}, not {row['content_type']!r}")
        stored_sum = info.custom_metadata.get("sha256") or info.sha256
        if stored_sum is not None and stored_sum != row["sha256"]:
            problems.append("its SHA-256 is not the declared one")
        if problems:
            await b.need(b.blobs, "R2").delete([str(row["object_key"])])
            raise ValidationFailed(
                f"the uploaded object does not match: {'; '.join(problems)}", code="upload_mismatch"
            )
        await db.run(mark_confirmed(db, upload_id))
        row = await _owned(db, upload_id, owner)
    return UploadStatus.model_validate({**row, "upload_id": row["id"]})


async def download(b: Bindings, db: TenantDB, owner: str, upload_id: str) -> DownloadTicket:
    row = await _owned(db, upload_id, owner)
    if row["status"] != "confirmed":
        raise Conflict("the upload is not confirmed yet", code="upload_not_confirmed")
    creds, endpoint, bucket = signer(b)
    url = presign(creds, "GET", f"{endpoint}/{bucket}/{row['object_key']}", expires_s=EXPIRES_S)
    return DownloadTicket(upload_id=upload_id, url=url, expires_at=_iso(time.time() + EXPIRES_S))


async def read_confirmed(
    b: Bindings, db: TenantDB, owner: str, upload_id: str, max_bytes: int
) -> tuple[bytes, str, str]:
    """(bytes, content type, file name) of the owner's confirmed upload, for a document: the
    document size limit holds whatever the upload's own limit was."""
    row = await _owned(db, upload_id, owner)
    if row["status"] != "confirmed":
        raise Conflict("the upload is not confirmed yet", code="upload_not_confirmed")
    if int(row["size_bytes"]) > max_bytes:
        raise PayloadTooLarge(
            f"the upload is {row['size_bytes']} bytes; a document may be {max_bytes}"
        )
    blob = await b.need(b.blobs, "R2").get(str(row["object_key"]))
    if blob is None:
        raise NotFound(f"upload {upload_id} not found")
    return blob.data, str(row["content_type"]), str(row["filename"])
