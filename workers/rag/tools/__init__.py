"""Tools: the declarations live in kernel.contracts.tools; here, what each one runs."""

from __future__ import annotations

from rag.tools import documents, knowledge, language, performance
from rag.tools.dispatch import Impl

IMPLS: dict[str, Impl] = {
    "search_knowledge_base": knowledge.search_knowledge_base,
    "get_document": knowledge.get_document,
    "get_user_context": knowledge.get_user_context,
    "summarize": language.summarize,
    "extract_entities": language.extract_entities,
    "classify_intent": language.classify_intent,
    "tag_document": documents.tag_document,
    "ingest_document": documents.ingest_document,
    "get_performance_analysis": performance.get_performance_analysis,
}
