"""examples/ (the README's sample documents): committed as built by scripts/build_examples.py,
and each one extracts to the lesson text it is meant to hold."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

from ingest.extract import extract

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _builder() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_examples", REPO / "scripts/build_examples.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_examples_match_the_builder() -> None:
    built = _builder().build()
    assert set(built) == {p.name for p in EXAMPLES.iterdir()}, "run `make examples`"
    for name, data in built.items():
        assert (EXAMPLES / name).read_bytes() == data, f"examples/{name} is stale: make examples"


def test_examples_extract_to_their_lessons() -> None:
    kind, pdf = extract((EXAMPLES / "lesson.pdf").read_bytes(), "application/pdf", "lesson.pdf")
    assert kind == "pdf" and len(pdf.pages) == 2
    assert "pressure difference" in pdf.text and "stall" in pdf.text
    assert pdf.page_at(pdf.text.index("stall")) == 2

    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    kind, docx = extract((EXAMPLES / "gliders.docx").read_bytes(), docx_type, "gliders.docx")
    assert kind == "docx" and "thermal" in docx.text
    assert [h.title for h in docx.headings][:1] == ["How gliders and birds stay up"]

    kind, md = extract(
        (EXAMPLES / "four-forces.md").read_bytes(), "text/markdown", "four-forces.md"
    )
    assert kind == "markdown" and "thrust" in md.text and "drag" in md.text
