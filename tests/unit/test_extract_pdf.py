"""extract_pdf: structure, filters, fonts, layout, rejections, fuzz — on PDFs built in memory."""

from __future__ import annotations

import base64
import io
import re
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.extract import extract
from ingest.extract.base import Extracted, ExtractionFailed
from ingest.extract.pdf import (
    MSG_CORRUPT,
    MSG_ENCRYPTED,
    MSG_IMAGES_ONLY,
    MSG_NO_PAGES,
    MSG_NO_TEXT,
    MSG_NO_UNICODE,
    MSG_NOT_PDF,
    MSG_TOO_BIG,
    MSG_TOO_MANY_PAGES,
    PAGE_SEPARATOR,
    decode_text_string,
    extract_pdf,
    glyph_to_unicode,
)
from tests.fixtures.pdfgen import (
    IMAGE_ONLY,
    break_xref,
    lzw_encode,
    make_pdf,
    raw_pdf,
    simple_page_pdf,
    stream_object,
    truncate,
)

PAGES: list[str | list[str]] = [
    "Retrieval augmented generation\nworks best with (clean) text\\data.\n\nA new paragraph here.",
    ["Second page, first line", "Second page, second line"],
    "Third page: café, naïve, 5 €",
]
EXPECTED = [
    "Retrieval augmented generation\nworks best with (clean) text\\data.\n\nA new paragraph here.",
    "Second page, first line\nSecond page, second line",
    "Third page: café, naïve, 5 €",
]
LAYOUTS = [
    {},
    {"compress": False},
    {"xref_stream": True},
    {"use_object_streams": True},
    {"use_object_streams": True, "compress": False},
    {"kerning": True},
    {"kerning": True, "widths": True},
    {"font": "Type0"},
    {"font": "Type0", "kerning": True, "use_object_streams": True},
    {"font": "Differences"},
    {"font": "Courier"},
    {"form_xobject": True},
]


def page_texts(result: Extracted) -> list[str]:
    return [result.text[p.char_start : p.char_end] for p in result.pages]


def rejected(data: bytes) -> str:
    with pytest.raises(ExtractionFailed) as info:
        extract_pdf(data)
    return info.value.message


# ------------------------------------------------------------------ text, pages, title


@pytest.mark.parametrize(
    "options", LAYOUTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_every_layout_gives_the_same_text_and_exact_page_spans(options: dict[str, object]) -> None:
    result = extract_pdf(make_pdf(PAGES, **options))  # type: ignore[arg-type]
    assert page_texts(result) == EXPECTED
    assert result.text == PAGE_SEPARATOR.join(EXPECTED)
    assert [p.number for p in result.pages] == [1, 2, 3]
    for before, after in zip(result.pages, result.pages[1:], strict=False):
        assert result.text[before.char_end : after.char_start] == PAGE_SEPARATOR
    assert result.page_at(result.text.index("Third")) == 3


def test_empty_page_gets_an_empty_span_and_keeps_numbering() -> None:
    result = extract_pdf(make_pdf(["one", "", "three"]))
    assert page_texts(result) == ["one", "", "three"]
    assert result.pages[1].char_start == result.pages[1].char_end


def test_title_from_info_pdfdoc_and_utf16() -> None:
    assert (
        extract_pdf(make_pdf(["x"], title="Annual Report – 2024")).title == "Annual Report – 2024"
    )
    assert extract_pdf(make_pdf(["x"], title="Überblick 日本語 😀")).title == "Überblick 日本語 😀"
    assert extract_pdf(make_pdf(["x"])).title is None


def test_text_string_decoding() -> None:
    assert decode_text_string(b"\xfe\xff\x00A\x00\xe9") == "Aé"
    assert decode_text_string(b"caf\xe9 \x93le \x84") == "café ﬁle —"
    assert decode_text_string(b"\xef\xbb\xbfna\xc3\xafve") == "naïve"


def test_tj_kerning_and_word_displacements() -> None:
    # "Hello world" is written as [(He) 30 (llo) -250 (world)] TJ: kern inside, space between.
    result = extract_pdf(make_pdf(["Hello wonderful world"], kerning=True))
    assert result.text == "Hello wonderful world"


def test_separate_tj_runs_on_one_line_get_a_space_only_at_a_real_gap() -> None:
    content = (
        b"BT /F1 12 Tf 72 700 Td (Hel) Tj (lo) Tj 40 0 Td (there) Tj ET "
        b"BT /F1 12 Tf 72 680 Td [(A) -120 (B) -400 (C)] TJ ET"
    )
    assert extract_pdf(simple_page_pdf(content)).text == "Hello there\nAB C"


def test_type0_identity_h_with_tounicode_ranges_and_non_bmp() -> None:
    text = "abcdef xyz ΑΒΓ 日本語 😀 ok"
    assert extract_pdf(make_pdf([text], font="Type0")).text == text


def test_differences_encoding_and_ligatures_are_expanded() -> None:
    text = "ﬁnal ﬂow “quoted” – Œuvre ł €"
    assert (
        extract_pdf(make_pdf([text], font="Differences")).text == "final flow “quoted” – Œuvre ł €"
    )
    assert extract_pdf(make_pdf([text], font="Type0")).text == "final flow “quoted” – Œuvre ł €"


def test_glyph_names() -> None:
    assert glyph_to_unicode("eacute") == "é"
    assert glyph_to_unicode("Scaron") == "Š"
    assert glyph_to_unicode("uni00410042") == "AB"
    assert glyph_to_unicode("u1F600") == "😀"
    assert glyph_to_unicode("f_f_i") == "ffi"
    assert glyph_to_unicode("a.sc") == "a"
    assert glyph_to_unicode("g123") == ""


def test_nul_and_control_characters_are_dropped() -> None:
    assert extract_pdf(make_pdf(["a\x00b\x01c"])).text == "abc"


def test_two_columns_are_read_column_by_column() -> None:
    lines = ["left one", "left two", "left three", "right one", "right two", "right three"]
    result = extract_pdf(make_pdf([lines], two_columns=True))
    assert result.text == "left one\nleft two\nleft three\n\nright one\nright two\nright three"


def test_form_xobject_and_graphics_state() -> None:
    form = stream_object(
        b"BT /F1 10 Tf 0 0 Td (inside the form) Tj ET",
        b" /Type /XObject /Subtype /Form /BBox [0 0 500 500] /Matrix [1 0 0 1 0 -14]",
    )
    content = b"BT /F1 12 Tf 72 700 Td (before) Tj ET q 1 0 0 1 72 700 cm /X1 Do Q BT /F1 12 Tf 72 600 Td (after) Tj ET"
    assert (
        extract_pdf(simple_page_pdf(content, extra_objects=[form])).text
        == "before\ninside the form\n\nafter"
    )


def test_self_referencing_form_does_not_loop() -> None:
    form = stream_object(
        b"BT /F1 10 Tf 0 0 Td (again) Tj ET /X1 Do",
        b" /Subtype /Form /Resources << /Font << /F1 4 0 R >> /XObject << /X1 6 0 R >> >>",
    )
    assert extract_pdf(simple_page_pdf(b"/X1 Do", extra_objects=[form])).text == "again"


def test_literal_string_escapes_and_hex_strings() -> None:
    content = rb"BT /F1 12 Tf 72 700 Td (a\(b\) \\ (nested) \101\102\103 \0611 line\
continued) Tj T* <48 65 6C6C 6F> Tj ET"
    assert (
        extract_pdf(simple_page_pdf(content)).text == "a(b) \\ (nested) ABC 11 linecontinued Hello"
    )


def test_text_operators_td_tm_tstar_quote_and_rotation() -> None:
    content = (
        b"BT /F1 12 Tf 14 TL 1 0 0 1 72 700 Tm (one) Tj T* (two) Tj (three) ' "
        b'5 1 (four) " 0 -14 TD (five) Tj ET '
        b"q 0 1 -1 0 300 300 cm BT /F1 12 Tf 0 0 Td (rotated) Tj 50 0 Td (words) Tj ET Q"
    )
    assert (
        extract_pdf(simple_page_pdf(content)).text == "one\ntwo\nthree\nfour\nfive\n\nrotated words"
    )


def test_names_with_hash_escapes_and_comments() -> None:
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsi#45ncoding >>"
    content = b"% a comment\nBT /F#31 12 Tf 72 700 Td (\xe9t\xe9) Tj ET"
    assert extract_pdf(simple_page_pdf(content, font=font)).text == "été"


def test_outline_becomes_headings_at_their_text() -> None:
    pdf = make_pdf(
        ["Intro\nbody text", "Some lead-in\nMethods\nmore"], outline=[("Intro", 0), ("Methods", 1)]
    )
    result = extract_pdf(pdf)
    assert [
        (h.title, result.text[h.char_start : h.char_start + len(h.title)]) for h in result.headings
    ] == [
        ("Intro", "Intro"),
        ("Methods", "Methods"),
    ]
    assert result.heading_path(result.text.index("more")) == ["Methods"]


def test_dispatcher_routes_pdf_bytes_here() -> None:
    kind, result = extract(make_pdf(["hi"]), "application/octet-stream", "x.bin")
    assert kind == "pdf" and result.text == "hi"


def test_agrees_with_pypdf_word_for_word() -> None:
    pypdf = pytest.importorskip("pypdf")
    for options in LAYOUTS:
        pdf = make_pdf(PAGES, **options)  # type: ignore[arg-type]
        ours = extract_pdf(pdf)
        theirs = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]
        assert [t.split() for t in page_texts(ours)] == [t.split() for t in theirs], options


def test_reads_a_file_rewritten_by_pypdf() -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(make_pdf(PAGES, use_object_streams=True)))
    out = io.BytesIO()
    writer.write(out)
    assert page_texts(extract_pdf(out.getvalue())) == EXPECTED


# ------------------------------------------------------------------ structure and filters


@pytest.mark.parametrize("mode", ["offsets", "startxref", "missing"])
def test_broken_xref_is_recovered_by_scanning(mode: str) -> None:
    result = extract_pdf(break_xref(make_pdf(PAGES, title="T"), mode))
    assert page_texts(result) == EXPECTED
    assert result.title == ("T" if mode != "missing" else None)


def test_recovery_finds_objects_inside_object_streams() -> None:
    pdf = make_pdf(PAGES, use_object_streams=True)
    damaged = pdf[: pdf.rfind(b"startxref")]  # no startxref: the xref stream is never read
    assert page_texts(extract_pdf(damaged)) == EXPECTED


def test_junk_before_header_is_tolerated() -> None:
    assert extract_pdf(b"\r\n garbage \n" + make_pdf(["shifted"])).text == "shifted"


def test_incremental_update_newest_revision_wins() -> None:
    base = make_pdf(["old text"], compress=False)
    start = base.index(b"(old text)")
    # Append a new version of the content stream (object 5 in this layout) + a new xref section.
    num = int(re.findall(rb"(\d+) 0 obj\n<< /Length \d+ >>\nstream\nBT", base)[0])
    new_body = b"BT /F1 12 Tf 72 720 Td (new text) Tj ET"
    update_at = len(base)
    update = b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
        num,
        len(new_body),
        new_body,
    )
    prev = int(base[base.rindex(b"startxref") + 10 :].split()[0])
    size = int(re.search(rb"/Size (\d+)", base).group(1))  # type: ignore[union-attr]
    root = re.search(rb"/Root (\d+) 0 R", base).group(1)  # type: ignore[union-attr]
    xref_at = update_at + len(update)
    update += (
        b"xref\n%d 1\n%010d 00000 n \ntrailer\n<< /Size %d /Root %s 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n"
        % (
            num,
            update_at,
            size,
            root,
            prev,
            xref_at,
        )
    )
    assert start > 0
    assert extract_pdf(base + update).text == "new text"


def test_length_indirect_or_wrong_falls_back_to_endstream() -> None:
    content = b"BT /F1 12 Tf 72 700 Td (measured) Tj ET"
    for length in (b"7 0 R", b"3", b"999999", b"-1"):
        pdf = raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Resources << /Font << /F1 4 0 R >> >> >>",
                b"<< /Type /Page /Parent 2 0 R /Contents [5 0 R 6 0 R] >>",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
                stream_object(content, length=length),
                stream_object(b"BT /F1 12 Tf 72 680 Td (second stream) Tj ET"),
                b"%d" % len(content),
            ]
        )
        assert extract_pdf(pdf).text == "measured\nsecond stream", length


@pytest.mark.parametrize("encoding", ["ahx", "a85", "lzw", "rl", "flate-png", "chain"])
def test_stream_filters(encoding: str) -> None:
    content = b"BT /F1 12 Tf 72 700 Td (filtered text) Tj ET " * 3
    if encoding == "ahx":
        data, extra = content.hex().encode() + b">", b" /Filter /ASCIIHexDecode"
    elif encoding == "a85":
        data, extra = b"<~" + base64.a85encode(content) + b"~>", b" /Filter /A85"
    elif encoding == "lzw":
        data, extra = lzw_encode(content), b" /Filter /LZWDecode"
    elif encoding == "rl":
        data, extra = (
            bytes([len(content[:100]) - 1])
            + content[:100]
            + bytes([len(content[100:]) - 1])
            + content[100:]
            + b"\x80",
            b" /Filter /RunLengthDecode",
        )
        assert len(content) - 100 <= 128
    elif encoding == "flate-png":
        cols = 8
        rows = [content[i : i + cols].ljust(cols, b" ") for i in range(0, len(content), cols)]
        predicted, prev = bytearray(), bytes(cols)
        for row in rows:
            predicted += b"\x02" + bytes((a - b) & 0xFF for a, b in zip(row, prev, strict=True))
            prev = row
        data = zlib.compress(bytes(predicted))
        extra = b" /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns %d >>" % cols
    else:
        data = base64.a85encode(zlib.compress(content)) + b"~>"
        extra = b" /Filter [/ASCII85Decode /FlateDecode]"
    pdf = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 5 0 R /Resources << /Font << /F1 4 0 R >> >> >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream_object(data, extra),
        ]
    )
    assert extract_pdf(pdf).text.split() == ["filtered", "text"] * 3


def test_unknown_filter_on_a_content_stream_skips_only_that_stream() -> None:
    pdf = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents [5 0 R 6 0 R] /Resources << /Font << /F1 4 0 R >> >> >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream_object(b"\xff\xd8 not really jpeg", b" /Filter /DCTDecode"),
            stream_object(b"BT /F1 12 Tf 72 700 Td (survivor) Tj ET"),
        ]
    )
    assert extract_pdf(pdf).text == "survivor"


def test_damaged_deflate_keeps_what_decodes() -> None:
    content = b"BT /F1 12 Tf 72 700 Td (kept) Tj ET\n" + b"0 0 m 10 10 l S\n" * 2000
    packed = zlib.compress(content)
    damaged = packed[: len(packed) // 2] + b"\x00garbage" * 10
    pdf = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 5 0 R /Resources << /Font << /F1 4 0 R >> >> >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream_object(damaged, b" /Filter /FlateDecode"),
        ]
    )
    assert extract_pdf(pdf).text == "kept"


def test_inherited_resources_and_page_tree_cycles() -> None:
    pdf = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [6 0 R 3 0 R 2 0 R] /Count 2 /Resources << /Font << /F1 4 0 R >> >> >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 5 0 R >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream_object(b"BT /F1 12 Tf 72 700 Td (leaf) Tj ET"),
            b"<< /Type /Pages /Kids [6 0 R 3 0 R] /Parent 2 0 R >>",  # contains itself
        ]
    )
    result = extract_pdf(pdf)
    assert page_texts(result) == ["leaf"]  # each page node is visited once


def test_reference_cycles_resolve_to_null() -> None:
    pdf = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 5 0 R /Resources 6 0 R >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream_object(b"BT /F1 12 Tf 72 700 Td (cyclic) Tj ET"),
            b"7 0 R",
            b"6 0 R",
        ]
    )
    assert extract_pdf(pdf).text == "cyclic"


# ------------------------------------------------------------------ rejections


def test_not_a_pdf() -> None:
    assert rejected(b"hello, I am plain text") == MSG_NOT_PDF
    assert rejected(b"") == MSG_NOT_PDF


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.5])
def test_truncated(keep: float) -> None:
    assert rejected(truncate(make_pdf(PAGES), keep)) == MSG_CORRUPT


def test_truncated_near_the_end_still_reads() -> None:
    assert page_texts(extract_pdf(truncate(make_pdf(PAGES), 0.9))) == EXPECTED


def test_encrypted_marker() -> None:
    assert rejected(make_pdf(PAGES, encrypt_marker=True)) == MSG_ENCRYPTED
    assert "password" in MSG_ENCRYPTED and "remove" in MSG_ENCRYPTED


def test_encrypted_by_pypdf() -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(make_pdf(PAGES)))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert rejected(out.getvalue()) == MSG_ENCRYPTED


def test_no_pages() -> None:
    assert rejected(make_pdf([])) == MSG_NO_PAGES


@pytest.mark.parametrize("inline", [False, True])
def test_image_only(inline: bool) -> None:
    assert rejected(make_pdf([IMAGE_ONLY, IMAGE_ONLY], inline_image=inline)) == MSG_IMAGES_ONLY
    assert "OCR" in MSG_IMAGES_ONLY


def test_image_page_among_text_pages_is_just_empty() -> None:
    result = extract_pdf(make_pdf(["text", IMAGE_ONLY, "more"]))
    assert page_texts(result) == ["text", "", "more"]


def test_blank_pages() -> None:
    assert rejected(make_pdf(["", ""])) == MSG_NO_TEXT


def test_fonts_without_unicode_mapping() -> None:
    pdf = make_pdf(["secret glyphs"], font="Type0")
    # Blank out the /ToUnicode entry with spaces: byte offsets (and the xref) stay valid.
    pdf = re.sub(rb"/ToUnicode \d+ 0 R", lambda m: b" " * len(m.group()), pdf)
    assert rejected(pdf) == MSG_NO_UNICODE


def test_too_many_pages() -> None:
    assert rejected(make_pdf(["p"] * 2001, compress=False)) == MSG_TOO_MANY_PAGES


def test_decompression_bomb() -> None:
    bomb = zlib.compress(b" " * (70 * 1024 * 1024), 9)
    pdf = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
            stream_object(bomb, b" /Filter /FlateDecode"),
        ]
    )
    assert rejected(pdf) == MSG_TOO_BIG


def test_messages_are_distinct() -> None:
    messages = [
        MSG_NOT_PDF,
        MSG_CORRUPT,
        MSG_ENCRYPTED,
        MSG_NO_PAGES,
        MSG_IMAGES_ONLY,
        MSG_NO_TEXT,
        MSG_NO_UNICODE,
        MSG_TOO_BIG,
        MSG_TOO_MANY_PAGES,
    ]
    assert len(set(messages)) == len(messages)


# ------------------------------------------------------------------ robustness and speed

_VALID = [
    make_pdf(PAGES[:2]),
    make_pdf(PAGES[:2], compress=False, title="t", outline=[("Second", 1)]),
    make_pdf(PAGES[:2], use_object_streams=True, font="Type0", kerning=True),
    make_pdf(PAGES[:2], font="Differences", form_xobject=True),
]


def _outcome(data: bytes) -> None:
    """A clean outcome: `Extracted` with sane page spans, or `ExtractionFailed` — nothing else."""
    try:
        result = extract_pdf(data)
    except ExtractionFailed:
        pass
    else:
        assert isinstance(result, Extracted)
        for page in result.pages:
            assert 0 <= page.char_start <= page.char_end <= len(result.text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.booleans())
def test_fuzz_random_bytes(data: bytes, with_header: bool) -> None:
    _outcome((b"%PDF-1.7\n" + data) if with_header else data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_VALID),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=12),
    st.floats(0.0, 1.0),
)
def test_fuzz_bit_flips_and_truncations(
    valid: bytes, flips: list[tuple[float, int]], keep: float
) -> None:
    data = bytearray(valid)
    for where, bit in flips:
        i = min(int(where * len(data)), len(data) - 1)
        data[i] ^= 1 << bit
    _outcome(bytes(data[: max(1, int(len(data) * keep))]) if keep < 0.97 else bytes(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_VALID), st.integers(0, 10_000), st.binary(min_size=1, max_size=64))
def test_fuzz_splices(valid: bytes, at: int, junk: bytes) -> None:
    i = at % len(valid)
    _outcome(valid[:i] + junk + valid[i + len(junk) :])


def test_fifty_kerned_pages() -> None:
    # Speed is measured by `make bench-ingest`, never asserted in a test.
    lines = "\n".join(
        f"Line {i}: the quick brown fox jumps over the lazy dog, again." for i in range(45)
    )
    result = extract_pdf(make_pdf([lines] * 50, kerning=True))
    assert len(result.pages) == 50
    for page in result.pages:
        text = result.text[page.char_start : page.char_end]
        assert text.startswith("Line 0: the quick brown fox") and "Line 44:" in text


def test_builtin_encoding_of_an_embedded_type1_font() -> None:
    # TeX math/symbol fonts: no /Encoding, no ToUnicode; the font program's encoding decides.
    program = b"%!PS-AdobeFont-1.0: CMSY10\n/Encoding 256 array\ndup 15 /bullet put\ndup 58 /period put\nreadonly def\ncurrentfile eexec\n\x00\x01"
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /CMSY10 /FontDescriptor 6 0 R >>"
    pdf = simple_page_pdf(
        b"BT /F1 12 Tf 72 700 Td (\\017 item\\072) Tj ET",
        font=font,
        extra_objects=[
            b"<< /Type /FontDescriptor /FontFile 7 0 R >>",
            stream_object(program, b" /Length1 %d" % program.index(b"\x00")),
        ],
    )
    assert extract_pdf(pdf).text == "• item."
