"""Reading progress and questions asked, per learner.

A learner records sections read or completed (`POST /v1/me/progress`); every answer and chat
message they ask counts as a question (rag counts it when it answers). A learner reads their
own progress, a teacher their students' (the gateway stamps a teacher's students), an admin the
tenant's summary; nobody else's — someone else's is a 404, as if there were none.
"""

from __future__ import annotations

from typing import Any

from kernel.bindings.ports import Statement
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import Forbidden
from rag.usercontext import readable_subject

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def record(
    db: TenantDB, user_id: str, document_id: str, section: str, completed: bool
) -> Statement:
    # Completed stays completed: reading a finished section again only touches last_read_at.
    return db.statement(
        "INSERT INTO reading_progress (tenant_id, user_id, document_id, section, completed)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id, user_id, document_id, section)"
        f" DO UPDATE SET completed = MAX(completed, excluded.completed), last_read_at = {NOW}",
        (user_id, document_id, section, int(completed)),
    )


def count_question(db: TenantDB, user_id: str) -> Statement:
    return db.statement(
        "INSERT INTO learner_stats (tenant_id, user_id, questions, last_question_at)"
        f" VALUES (?1, ?2, 1, {NOW}) ON CONFLICT (tenant_id, user_id)"
        f" DO UPDATE SET questions = questions + 1, last_question_at = {NOW}",
        (user_id,),
    )


async def asked(db: TenantDB, viewer: Viewer | None) -> None:
    """Count one question for the asking user (API keys count too: they are principals)."""
    if viewer is not None and viewer.principal_id:
        await db.run(count_question(db, viewer.principal_id))


def select_sections(db: TenantDB, user_id: str) -> Statement:
    return db.statement(
        "SELECT document_id, section, completed, first_read_at, last_read_at"
        " FROM reading_progress WHERE tenant_id = ?1 AND user_id = ?2"
        " ORDER BY last_read_at DESC, document_id, section LIMIT 1000",
        (user_id,),
    )


def select_stats(db: TenantDB, user_id: str) -> Statement:
    return db.statement(
        "SELECT questions, last_question_at FROM learner_stats WHERE tenant_id = ?1 AND user_id = ?2",
        (user_id,),
    )


def select_summary(db: TenantDB) -> list[Statement]:
    return [
        db.statement(
            "SELECT document_id, COUNT(DISTINCT user_id) AS readers,"
            " SUM(completed) AS sections_completed, MAX(last_read_at) AS last_read_at"
            " FROM reading_progress WHERE tenant_id = ?1 GROUP BY document_id"
            " ORDER BY readers DESC, document_id LIMIT 500"
        ),
        db.statement(
            "SELECT COUNT(*) AS learners, COALESCE(SUM(questions), 0) AS questions"
            " FROM learner_stats WHERE tenant_id = ?1"
        ),
    ]


async def read(db: TenantDB, viewer: Viewer | None, user_id: str | None = None) -> dict[str, Any]:
    subject = readable_subject(viewer, user_id, "progress")
    rows = (await db.run(select_sections(db, subject))).rows
    stats = (await db.run(select_stats(db, subject))).rows
    documents: dict[str, dict[str, Any]] = {}
    for r in rows:
        doc = documents.setdefault(
            str(r["document_id"]),
            {"document_id": r["document_id"], "sections": [], "last_read_at": r["last_read_at"]},
        )
        doc["sections"].append(
            {
                "section": r["section"],
                "completed": bool(r["completed"]),
                "first_read_at": r["first_read_at"],
                "last_read_at": r["last_read_at"],
            }
        )
        doc["last_read_at"] = max(str(doc["last_read_at"]), str(r["last_read_at"]))
    for doc in documents.values():
        doc["sections_read"] = len(doc["sections"])
        doc["sections_completed"] = sum(s["completed"] for s in doc["sections"])
    return {
        "user_id": subject,
        "documents": list(documents.values()),
        "questions_asked": int(stats[0]["questions"]) if stats else 0,
        "last_question_at": stats[0]["last_question_at"] if stats else None,
    }


async def summary(db: TenantDB, viewer: Viewer | None) -> dict[str, Any]:
    if viewer is None or viewer.role != "admin":
        raise Forbidden("the tenant's progress summary needs the admin role")
    by_document, totals = await db.batch(select_summary(db))
    total = totals.rows[0] if totals.rows else {"learners": 0, "questions": 0}
    return {
        "documents": [
            {**r, "sections_completed": int(r["sections_completed"] or 0)} for r in by_document.rows
        ],
        "learners_asking": int(total["learners"]),
        "questions_asked": int(total["questions"]),
    }
