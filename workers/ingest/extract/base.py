"""What every extractor returns, and the one error it raises.

`Extracted.text` is what gets stored and chunked: every offset the API returns indexes into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.runtime.errors import PayloadTooLarge, ValidationFailed

DEFAULT_MAX_INFLATED_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_TEXT_CHARS = 5_000_000
DEFAULT_MAX_CHUNKS = 10_000


class ExtractionFailed(ValidationFailed):
    """422 with a reason a person can act on ("the PDF is encrypted", not "parse error")."""

    code = "unprocessable_document"


class DocumentTooLarge(PayloadTooLarge):
    """413: the document would become more than a limit allows; the message names the setting."""

    code = "document_too_large"


@dataclass(frozen=True)
class Limits:
    """What one document may become (tenant settings, capped by the deployment)."""

    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES  # any decompressed part (DOCX XML)
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS  # extracted text
    max_chunks: int = DEFAULT_MAX_CHUNKS

    def check_text(self, chars: int) -> None:
        if chars > self.max_text_chars:
            raise DocumentTooLarge(
                f"the document has more than {self.max_text_chars:,} characters of text"
                f" (limit max_text_chars = {self.max_text_chars}); split it into smaller files"
            )


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Heading:
    char_start: int
    level: int  # 1 = top
    title: str


@dataclass
class Extracted:
    text: str
    pages: list[Page] = field(default_factory=list)
    headings: list[Heading] = field(default_factory=list)
    title: str | None = None

    def page_at(self, offset: int) -> int | None:
        for page in self.pages:
            if page.char_start <= offset < page.char_end:
                return page.number
        return self.pages[-1].number if self.pages and offset >= self.pages[-1].char_start else None

    def heading_path(self, offset: int) -> list[str]:
        """Titles of the enclosing headings at `offset`, outermost first."""
        path: list[Heading] = []
        for heading in self.headings:
            if heading.char_start > offset:
                break
            while path and path[-1].level >= heading.level:
                path.pop()
            path.append(heading)
        return [h.title for h in path]


def require_text(extracted: Extracted, what: str) -> Extracted:
    if not extracted.text.strip():
        raise ExtractionFailed(
            f"no text could be extracted from this {what}; is it empty or only images?"
        )
    return extracted
