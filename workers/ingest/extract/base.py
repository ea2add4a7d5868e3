"""What every extractor returns, and the one error it raises.

`Extracted.text` is what gets stored and chunked: every offset the API returns indexes into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.errors import ValidationFailed


class ExtractionFailed(ValidationFailed):
    """422 with a reason a person can act on ("the PDF is encrypted", not "parse error")."""

    code = "unprocessable_document"


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
