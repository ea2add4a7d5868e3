"""The gateway's public surface: one row per route, and nothing routes that is not a row here.

Routing, authentication, roles, rate-limit classes, body limits, token budgets, the 405 Allow
and OPTIONS answers and schema/openapi.json are all read from this table (gateway/route.py
says what each column means; gateway/pipeline.py runs the rows).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway import console, identity, mcp, operator
from gateway.access import WRITERS
from gateway.forward import purge_caches
from gateway.models import (
    CreateApiKey,
    CreateRelationship,
    Login,
    Refresh,
    RegisterUser,
    TenantPolicy,
    UpdateUser,
)
from gateway.route import UPLOAD, Cost, Route
from kernel.contracts import ai_sdk, api, openai
from kernel.contracts import workspaces as ws
from kernel.contracts.learning import (
    PersonalizeRequest,
    PersonalizeResponse,
    Progress,
    ProgressSummary,
    ProgressUpdate,
    TranslateRequest,
    TranslateResponse,
    TtsRequest,
)
from kernel.contracts.tools import TOOLS, AuditPage, UserContext, UserContextBody

ADMIN = frozenset({"admin"})


def tool_cost(params: Mapping[str, str]) -> Cost:
    """A tool call counts in its tool's class, and a tool that calls a model spends tokens."""
    spec = TOOLS.get(params.get("name", ""))
    return Cost(spec.rate, spec.spends_tokens) if spec else Cost("api", False)


# A table reads best as one: a row per route, kept out of the formatter's one-argument-a-line.
# fmt: off
ROUTES: tuple[Route, ...] = (
    # --- operations and tenants ---------------------------------------------------------------
    Route("GET", "/health", "Workers, bindings, models and stand-ins", operator.health,
          auth="none", rate=None),
    Route("GET", "/metrics", "Prometheus metrics: the operator token sees everything;"
          " EDGERAG_METRICS_TOKEN the same without per-tenant series", operator.metrics,
          auth="metrics", rate=None),
    Route("POST", "/v1/tenants", "Create a tenant and its first admin API key",
          operator.create_tenant, auth="operator", rate=None,
          request_model=api.CreateTenant, response_model=api.TenantCreated, status=201),
    Route("PATCH", "/v1/tenants/{tenant_id}", "CORS origins and rate limits (tenant admin,"
          " within the operator's ceilings; or operator) and daily LLM token budget (operator)", operator.update_tenant, auth="operator_or_principal",
          roles=ADMIN, what="changing the tenant's CORS origins", request_model=TenantPolicy),
    # --- identity ----------------------------------------------------------------------------
    Route("POST", "/v1/auth/register", "Register a user (tenant admins)", identity.register,
          roles=ADMIN, what="registering users", request_model=RegisterUser, status=201),
    Route("POST", "/v1/auth/login", "→ {access_token, refresh_token, token_type, expires_in};"
          " rate limited per IP and email", identity.login, auth="none", rate="login",
          request_model=Login),
    Route("POST", "/v1/auth/refresh", "Rotate a refresh token; reusing a spent one revokes its"
          " whole family", identity.refresh, auth="none", rate="refresh", request_model=Refresh),
    Route("GET", "/v1/auth/me", "The caller: id, tenant_id, role, kind", identity.me),
    Route("POST", "/v1/auth/logout", "End the caller's session: its refresh tokens and access"
          " tokens stop working at once (users; API keys are revoked instead)", identity.logout),
    Route("GET", "/v1/users", "Users (admins: all; teachers: students)", identity.list_users,
          roles=WRITERS, what="listing users"),
    Route("PATCH", "/v1/users/{user_id}", "Change a user's role or disable/enable them (admins,"
          " not on themselves); effective on the user's next request, and disabling ends every"
          " session", identity.update_user, roles=ADMIN, what="changing users",
          request_model=UpdateUser),
    Route("GET", "/v1/api-keys", "API keys (admins; never the key itself)",
          identity.list_api_keys, roles=ADMIN, what="listing API keys"),
    Route("POST", "/v1/api-keys", "New API key, shown once (admins)", identity.create_api_key,
          roles=ADMIN, what="creating API keys", request_model=CreateApiKey, status=201),
    Route("DELETE", "/v1/api-keys/{key_id}", "Revoke an API key (admins)",
          identity.revoke_api_key, roles=ADMIN, what="revoking API keys"),
    Route("GET", "/v1/relationships", "Teacher–student relationships",
          identity.list_relationships),
    Route("POST", "/v1/relationships", "A teacher adds a student ({student_id}); admins also"
          " name the teacher", identity.create_relationship, request_model=CreateRelationship,
          status=201),
    Route("DELETE", "/v1/relationships/{relationship_id}", "Remove a relationship",
          identity.delete_relationship),
    Route("GET", "/v1/rate-limit/status", "The caller's rate-limit windows and token budget",
          identity.rate_limit_status, rate=None),
    # --- documents (the ingest Worker checks visibility and ownership of each one) -----------
    Route("POST", "/v1/documents", "Add a document: JSON text or url, or multipart/form-data"
          " (file, title, visibility, tags, metadata); optional Idempotency-Key header", "INGEST",
          roles=WRITERS, what="uploading documents", rate="ingest", body_limit=UPLOAD,
          request_model=api.JsonDocument, response_model=api.DocumentAccepted, status=202,
          multipart=True),
    Route("GET", "/v1/documents", "List documents (?limit, ?cursor pages)", "INGEST",
          paged=True),
    Route("GET", "/v1/documents/{document_id}", "One document with its versions", "INGEST"),
    Route("PATCH", "/v1/documents/{document_id}", "Change title, tags or metadata (no new"
          " version; the owner or an admin)", "INGEST", roles=WRITERS,
          what="changing documents", request_model=api.DocumentPatch),
    Route("GET", "/v1/documents/{document_id}/sections", "The live version's sections (heading"
          " path, character and page spans); ?section=<heading or path>, ?page=N or"
          " ?char_start=&char_end= adds that section's text (?max_chars, default 4000)", "INGEST"),
    Route("PUT", "/v1/documents/{document_id}", "New version: JSON text or url, or"
          " multipart/form-data (file, title); the document keeps its visibility, tags and"
          " metadata. 200 with unchanged=true when the content is identical", "INGEST",
          roles=WRITERS, what="changing documents", rate="ingest", body_limit=UPLOAD,
          request_model=api.JsonDocument, response_model=api.DocumentAccepted, status=202,
          multipart=True),
    Route("DELETE", "/v1/documents/{document_id}", "Soft delete; ?purge=true removes vectors,"
          " index rows and originals", "INGEST", roles=WRITERS, what="changing documents",
          after=purge_caches),
    Route("POST", "/v1/documents/{document_id}/restore", "Undo a soft delete", "INGEST",
          roles=WRITERS, what="changing documents"),
    # Clients poll status while a document ingests: its own class, so polling can't starve
    # the caller's other requests.
    Route("GET", "/v1/documents/{document_id}/status", "queued | processing | ready | failed,"
          " with progress and failure reason", "INGEST", rate="status"),
    Route("POST", "/v1/uploads", "A presigned R2 PUT for one file ({filename, content_type,"
          " size_bytes, sha256, purpose}): exact size, type and checksum signed, 10 minutes,"
          " no overwrite", "INGEST", request_model=api.CreateUpload,
          response_model=api.UploadTicket, status=201),
    Route("POST", "/v1/uploads/{upload_id}/confirm", "Check what arrived (present, size, type,"
          " checksum) → confirmed", "INGEST", response_model=api.UploadStatus),
    Route("GET", "/v1/uploads/{upload_id}/download", "A presigned R2 GET of a confirmed upload",
          "INGEST", response_model=api.DownloadTicket),
    # --- projects (the ingest Worker decides who sees and changes each one) -----------------
    Route("POST", "/v1/projects", "A project ({title, description, filename, size_bytes,"
          " sha256}) → 201 {project (pending), upload: a presigned PUT for its PDF}", "INGEST",
          request_model=api.CreateProject, response_model=api.ProjectCreated, status=201),
    Route("GET", "/v1/projects", "The projects the caller may see (own, granted, admins all,"
          " teachers their students')", "INGEST", paged=True, response_model=api.ProjectList),
    Route("GET", "/v1/projects/{project_id}", "One project", "INGEST",
          response_model=api.Project),
    Route("PUT", "/v1/projects/{project_id}", "Change title or description (owner, admin or an"
          " edit grant)", "INGEST", request_model=api.ProjectChange, response_model=api.Project),
    Route("DELETE", "/v1/projects/{project_id}", "Delete a project and its PDF (owner or"
          " admin)", "INGEST"),
    Route("POST", "/v1/projects/{project_id}/confirm", "Check the uploaded PDF, read its pages"
          " and title → ready", "INGEST", response_model=api.Project),
    Route("POST", "/v1/projects/{project_id}/access", "Grant a user view or edit (owner or"
          " admin)", "INGEST", request_model=api.Grant, response_model=api.GrantList, status=201),
    Route("GET", "/v1/projects/{project_id}/access", "The project's grants (owner or admin)",
          "INGEST", response_model=api.GrantList),
    Route("DELETE", "/v1/projects/{project_id}/access/{user_id}", "Revoke a grant (owner or"
          " admin)", "INGEST"),
    # --- annotations (the ingest Worker: each in its author's copy, teachers see students') -
    Route("POST", "/v1/annotations", "Annotate a page of a project you can see: {project_id,"
          " page, kind: highlight|note|drawing, …its normalized geometry}", "INGEST",
          request_model=ws.CreateAnnotation, response_model=ws.Annotation, status=201),
    Route("GET", "/v1/annotations", "A project's annotations you may see (?project_id, ?page):"
          " yours; a teacher's students' too; an admin's all", "INGEST", paged=True,
          response_model=ws.AnnotationList),
    Route("GET", "/v1/annotations/{annotation_id}", "One annotation", "INGEST",
          response_model=ws.Annotation),
    Route("PATCH", "/v1/annotations/{annotation_id}", "Change an annotation's page or fields"
          " (its author only; the kind stays)", "INGEST", response_model=ws.Annotation),
    Route("DELETE", "/v1/annotations/{annotation_id}", "Delete an annotation (its author"
          " only)", "INGEST"),
    # --- recordings, analysis, feedback -------------------------------------------------------
    Route("POST", "/v1/recordings", "A recording ({title, filename, content_type, size_bytes,"
          " sha256}: WAV, FLAC, MP3, OGG or M4A) → 201 {recording (pending), upload: a presigned"
          " PUT}", "INGEST", request_model=ws.CreateRecording,
          response_model=ws.RecordingCreated, status=201),
    Route("GET", "/v1/recordings", "Recordings you may see (yours; a teacher's students'; an"
          " admin's all); ?owner_id, ?status, ?format", "INGEST", paged=True,
          response_model=ws.RecordingList),
    Route("GET", "/v1/recordings/{recording_id}", "One recording with its latest analysis",
          "INGEST", response_model=ws.Recording),
    Route("DELETE", "/v1/recordings/{recording_id}", "Delete a recording, its audio, analyses"
          " and feedback (owner or admin)", "INGEST"),
    Route("POST", "/v1/recordings/{recording_id}/confirm", "Check the upload and read duration,"
          " sample rate and channels from its headers → ready (or rejected, with why)",
          "INGEST", response_model=ws.Recording),
    Route("POST", "/v1/recordings/{recording_id}/analysis", "Run the analyzer (the tenant's or"
          " the deployment's) → 201 the analysis; a failed run is kept as failed, with why",
          "INGEST", rate="analysis", response_model=ws.Analysis, status=201),
    Route("GET", "/v1/recordings/{recording_id}/analysis", "The recording's analyses, newest"
          " first", "INGEST", response_model=ws.AnalysisList),
    Route("GET", "/v1/recordings/{recording_id}/analysis/{analysis_id}", "One analysis",
          "INGEST", response_model=ws.Analysis),
    Route("POST", "/v1/recordings/{recording_id}/feedback", "Structured feedback from the"
          " latest analysis and the knowledge base; every knowledge statement cited; cached"
          " per (analysis, model, prompt version)", "RAG", rate="feedback", spends_tokens=True,
          refund_cached=True, request_model=ws.FeedbackRequest, response_model=ws.Feedback,
          status=201),
    Route("GET", "/v1/recordings/{recording_id}/feedback", "The recording's feedback history,"
          " newest first", "RAG", response_model=ws.FeedbackList),
    Route("GET", "/v1/settings", "Tenant ingestion settings", "INGEST",
          response_model=api.TenantSettings),
    Route("PATCH", "/v1/settings", "Change tenant settings (admin)", "INGEST", roles=ADMIN,
          what="changing settings", request_model=api.TenantSettings,
          response_model=api.TenantSettings),
    # --- retrieval and answers ---------------------------------------------------------------
    Route("POST", "/v1/search", "Hybrid search (dense + BM25, RRF or weighted fusion, reranked);"
          " filters and per-stage timings", "RAG", rate="search",
          request_model=api.SearchRequest, response_model=api.SearchResponse),
    Route("POST", "/v1/answer", "Grounded answer with verified citations, confidence,"
          " follow-ups; abstains when unsupported", "RAG", rate="answer", spends_tokens=True,
          request_model=api.AnswerRequest, response_model=api.AnswerResponse),
    Route("POST", "/v1/chat/sessions", "Start a chat session", "RAG",
          request_model=api.CreateSession, status=201),
    Route("GET", "/v1/chat/sessions", "The caller's chat sessions", "RAG"),
    Route("GET", "/v1/chat/sessions/{session_id}", "A session with its messages", "RAG"),
    Route("DELETE", "/v1/chat/sessions/{session_id}", "Delete a session", "RAG"),
    Route("POST", "/v1/chat/sessions/{session_id}/messages", "Ask in a session; with"
          " stream=true the answer is text/event-stream: token, citation, done, error", "RAG",
          rate="answer", spends_tokens=True, request_model=api.ChatMessageRequest,
          response_model=api.AnswerResponse),
    # --- tools, audit, user context (the rag Worker runs and authorizes each tool) ----------
    Route("GET", "/v1/tools", "The tools the caller may use, with JSON Schemas of arguments"
          " and results, ready for a function-calling model", "RAG"),
    Route("POST", "/v1/tools/{name}", "Run a tool with JSON arguments → {tool, result,"
          " audit_id, latency_ms}; counted in the tool's own rate-limit class", "RAG",
          cost_of=tool_cost),
    Route("GET", "/v1/audit", "Tool calls (admins): ?tool, ?user_id, ?since, ?until, newest"
          " first; arguments only as their SHA-256", "RAG", roles=ADMIN,
          what="reading the audit log", paged=True, response_model=AuditPage),
    Route("GET", "/v1/me/context", "The caller's learning context", "RAG",
          response_model=UserContext),
    Route("PUT", "/v1/me/context", "Replace the caller's learning context (level, goals,"
          " constraints, interests, preferred_language, notes; ≤ 8 KB)", "RAG",
          request_model=UserContextBody, response_model=UserContext),
    Route("GET", "/v1/users/{user_id}/context", "A student's learning context (their"
          " teachers only)", "RAG", response_model=UserContext),
    # --- learning (issue 13) -----------------------------------------------------------------
    Route("POST", "/v1/personalize", "A section rewritten for the reader's level, paragraphs"
          " citing the original spans; cached per document version, section, level and model"
          " (a cached reply costs no tokens and no rate limit)", "RAG", rate="personalize",
          spends_tokens=True, refund_cached=True, request_model=PersonalizeRequest,
          response_model=PersonalizeResponse),
    Route("POST", "/v1/translate", "A section or text translated, structure kept (direction"
          " rtl for right-to-left languages); cached per content, language and model", "RAG",
          rate="translate", spends_tokens=True, refund_cached=True,
          request_model=TranslateRequest, response_model=TranslateResponse),
    Route("POST", "/v1/tts", "Speech for {text} or {message_id} (one of your chat messages):"
          " audio/wav (Piper) or audio/mpeg (Workers AI melotts), chunked with stream=true;"
          " cached in R2; 501 not_enabled when no speech provider is configured", "RAG",
          rate="tts", refund_cached=True, body_limit=64 * 1024, request_model=TtsRequest),
    Route("GET", "/v1/me/progress", "The caller's reading progress: documents and sections"
          " read or completed, last read, questions asked", "RAG", response_model=Progress),
    Route("POST", "/v1/me/progress", "Record a section read ({document_id, section, completed})",
          "RAG", request_model=ProgressUpdate, response_model=Progress),
    Route("GET", "/v1/users/{user_id}/progress", "A student's progress (their teachers only)",
          "RAG", response_model=Progress),
    Route("GET", "/v1/progress/summary", "The tenant's reading and questions summary (admins)",
          "RAG", roles=ADMIN, what="reading the progress summary",
          response_model=ProgressSummary),
    # One golden-set run (≤600 searches) counts as one request of the search class.
    Route("POST", "/v1/eval", "Score retrieval on the tenant's golden set ({questions:"
          " [{question, relevant_document_ids, grades?}], modes?, per_question?}): nDCG@10,"
          " Recall@10/100, MRR@10, P@3 per mode", "RAG", roles=WRITERS,
          what="running evaluations", rate="search"),
    # --- OpenAI-compatible API and AI SDK streams ----------------------------------------------
    # The chat path without a session (rag/conversation.py): limits and budgets as /v1/answer.
    Route("GET", "/v1/models", "OpenAI-compatible: the caller's knowledge base as models"
          " (edgerag: hybrid retrieval; edgerag-keyword; edgerag-dense)", "RAG",
          response_model=openai.OpenAIModelList),
    Route("GET", "/v1/models/{model}", "OpenAI-compatible: one model; 404 model_not_found",
          "RAG", response_model=openai.OpenAIModel),
    Route("POST", "/v1/chat/completions", "OpenAI-compatible chat: the last user message"
          " answered with verified citations ([n] markers and a Sources list in the text;"
          " message.citations, message.edgerag); stream=true → chat.completion.chunk events",
          "RAG", rate="answer", spends_tokens=True, stream_format="openai",
          request_model=openai.OpenAIChatRequest, response_model=openai.OpenAIChatCompletion),
    Route("POST", "/v1/ai-sdk/chat", "Vercel AI SDK useChat: the last user message answered as"
          " a UI message stream (v1): text deltas, a source-document per citation, finish",
          "RAG", rate="answer", spends_tokens=True, stream_format="ai-sdk",
          request_model=ai_sdk.AiSdkChatRequest),
    # --- web console ---------------------------------------------------------------------------
    # Static files (console/) from the ASSETS binding (gateway/console.py): no auth, not counted.
    Route("GET", "/console", "The web console: a single page over this API (sign in, upload,"
          " documents, ask with streamed cited answers, admin)", console.index, auth="none",
          rate=None),
    Route("GET", "/console/{asset}", "One file of the web console (its script modules, style"
          " sheet, icon)", console.asset, auth="none", rate=None),
    # --- MCP (Model Context Protocol) ---------------------------------------------------------
    # Streamable HTTP, JSON replies (rag/mcp/). A tools/call counts in its tool's class and
    # spends tokens as its tool does (gateway/mcp.py); GET is a 405: no server-sent stream.
    Route("POST", "/mcp", "MCP server: one JSON-RPC message (initialize, tools/list, tools/call,"
          " resources/list, resources/templates/list, resources/read, ping) → application/json;"
          " a notification → 202", mcp.endpoint, cost_of_body=mcp.message_cost),
    Route("DELETE", "/mcp", "End the MCP session named by Mcp-Session-Id", mcp.endpoint,
          status=204),
)
# fmt: on
