"""Build examples/: the three short lessons on flight that the README's commands upload, and
a generated practice recording (tests/fixtures/audiogen.py).

    python scripts/build_examples.py      (or `make examples`)

The texts below were written for edgerag and are dedicated to the public domain (CC0 1.0):
copy, change and reuse them freely. The files are committed so `curl -F file=@examples/…`
works without running anything; tests/unit/test_examples.py checks they are what this script
builds. The output is byte-for-byte reproducible: the PDF comes from the dependency-free writer
in tests/fixtures/pdfgen.py, the DOCX from python-docx with fixed document properties and zip
timestamps.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.audiogen import practice_take  # noqa: E402
from tests.fixtures.pdfgen import make_pdf  # noqa: E402

OUT = REPO / "examples"
WRAP = 84  # characters per PDF line: Helvetica 12 pt across a 6.5 in text width

# One sentence per line (each fits a line): PDF text keeps its line breaks, and a sentence
# that runs across lines reads as fragments to a sentence-level reader such as the local
# extractive composer.
LESSON_PAGES = [
    (
        "Flight: how wings lift",
        [
            [
                "A wing lifts because it turns the air that flows past it downwards.",
                "It meets the air tilted slightly up, at an angle called the angle of attack.",
                "Its upper surface is curved, and its lower surface is flatter.",
            ],
            [
                "Air flowing over the curved top speeds up, and its pressure drops.",
                "Air flowing underneath slows down, and its pressure rises.",
                "The pressure difference between the two surfaces pushes the wing up: lift.",
            ],
            [
                "Newton's third law describes the same flow of air from another side.",
                "The wing pushes a large mass of air downwards, so the air pushes the wing up.",
                "The two explanations are not rival theories: both describe one flow of air.",
            ],
            [
                "Lift grows with the square of the airspeed and with the area of the wing.",
                "Doubling the airspeed gives about four times the lift.",
                "That is why an aircraft needs a long runway to reach its flying speed.",
            ],
        ],
    ),
    (
        "Angle of attack and the stall",
        [
            [
                "Raising the nose increases the angle of attack and, up to a point, the lift.",
                "Beyond about 15 degrees the air can no longer follow the curved upper surface.",
                "It separates from the wing and becomes turbulent.",
                "Lift falls suddenly while drag rises: this is called a stall.",
            ],
            [
                "A pilot recovers from a stall by lowering the nose.",
                "This reduces the angle of attack, so the air flows smoothly over the wing again.",
            ],
            [
                "Flaps and slats change the shape of the wing for take-off and landing.",
                "They let the wing make enough lift at low speed, so it can fly slowly.",
            ],
        ],
    ),
]

FOUR_FORCES_MD = """\
# The four forces of flight

An aircraft in the air is acted on by four forces at once.

## Lift and weight

**Lift** is the upward force made by the wings as they turn the passing air downwards.
**Weight** is the pull of gravity on the aircraft, its fuel and its load, acting downwards
through the centre of gravity.

## Thrust and drag

**Thrust** is the forward force from the propeller or the jet engine. **Drag** is the
resistance of the air, acting backwards. Drag grows quickly with speed: streamlined shapes and
smooth surfaces keep it low.

## Steady flight

In steady, level flight the forces balance: lift equals weight and thrust equals drag. To climb,
the pilot makes lift exceed weight; to speed up, thrust must exceed drag.
"""

GLIDERS_DOCX = [
    ("heading", "How gliders and birds stay up"),
    ("heading2", "Gliders"),
    (
        "text",
        "A glider has no engine. It trades height for speed: it is always descending through the "
        "air, and its long, narrow wings make a lot of lift for very little drag. A modern glider "
        "travels about 40 metres forwards for every metre it sinks; this is its glide ratio.",
    ),
    (
        "text",
        "To stay up for hours, a glider pilot looks for rising air. A thermal is a column of warm "
        "air rising from ground heated by the sun. Circling inside a thermal, the glider rises "
        "faster than it sinks and gains height.",
    ),
    ("heading2", "Birds"),
    (
        "text",
        "A bird's wing works like an aircraft wing, but it also flaps. On the downstroke the "
        "wing pushes air downwards and backwards, making both lift and thrust; on the upstroke "
        "the bird folds or twists its wing to lose as little as possible.",
    ),
    (
        "text",
        "Large birds such as eagles and storks soar like gliders: they hold their wings out, "
        "find a thermal and circle upwards without flapping, saving energy on long journeys.",
    ),
]

FIXED_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def lesson_pdf() -> bytes:
    pages = []
    for heading, paragraphs in LESSON_PAGES:
        lines = [heading, ""]
        for sentences in paragraphs:
            assert all(len(s) <= WRAP for s in sentences), "one sentence per line"
            lines += [*sentences, ""]
        pages.append(lines[:-1])
    return make_pdf(pages, title="Flight: how wings lift")


def gliders_docx() -> bytes:
    from docx import Document

    document = Document()
    props = document.core_properties
    props.title, props.author = "How gliders and birds stay up", "edgerag examples"
    props.created = props.modified = FIXED_TIME
    props.last_modified_by, props.revision = "edgerag examples", 1
    for kind, text in GLIDERS_DOCX:
        if kind == "heading":
            document.add_heading(text, level=1)
        elif kind == "heading2":
            document.add_heading(text, level=2)
        else:
            document.add_paragraph(text)
    raw = io.BytesIO()
    document.save(raw)
    return _fixed_zip(raw.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same archive with fixed timestamps, so every build is byte-identical."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def build() -> dict[str, bytes]:
    return {
        "lesson.pdf": lesson_pdf(),
        "four-forces.md": FOUR_FORCES_MD.encode(),
        "gliders.docx": gliders_docx(),
        # A practice take for the recordings walk-through (8 s, 16 kHz mono WAV).
        "practice.wav": practice_take(seconds=8.0, rate=16000),
    }


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, data in build().items():
        (OUT / name).write_bytes(data)
        sys.stdout.write(f"wrote examples/{name} ({len(data)} bytes)\n")
