"""Character tables: PDF text strings (PDFDocEncoding/UTF-16/UTF-8), Adobe glyph names,
the Standard/WinAnsi/MacRoman/PDFDoc single-byte encodings and Helvetica's widths."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# fmt: off
_PDFDOC_HIGH = {
    0x18: "˘", 0x19: "ˇ", 0x1A: "ˆ", 0x1B: "˙", 0x1C: "˝", 0x1D: "˛", 0x1E: "˚", 0x1F: "˜",
    0x80: "•", 0x81: "†", 0x82: "‡", 0x83: "…", 0x84: "—", 0x85: "–", 0x86: "ƒ", 0x87: "⁄",
    0x88: "‹", 0x89: "›", 0x8A: "−", 0x8B: "‰", 0x8C: "„", 0x8D: "“", 0x8E: "”", 0x8F: "‘",
    0x90: "’", 0x91: "‚", 0x92: "™", 0x93: "ﬁ", 0x94: "ﬂ", 0x95: "Ł", 0x96: "Œ", 0x97: "Š",
    0x98: "Ÿ", 0x99: "Ž", 0x9A: "ı", 0x9B: "ł", 0x9C: "œ", 0x9D: "š", 0x9E: "ž", 0xA0: "€",
}
# fmt: on
PDFDOC = [_PDFDOC_HIGH.get(i, chr(i)) for i in range(256)]


def decode_text_string(value: Any) -> str:
    """A PDF "text string": UTF-16BE with BOM, UTF-8 with BOM (PDF 2.0) or PDFDocEncoding."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        return ""
    if value[:2] == b"\xfe\xff":
        text = value[2:].decode("utf-16-be", "replace")
    elif value[:2] == b"\xff\xfe":
        text = value[2:].decode("utf-16-le", "replace")
    elif value[:3] == b"\xef\xbb\xbf":
        text = value[3:].decode("utf-8", "replace")
    else:
        text = value.decode("latin-1").translate(PDFDOC)
    return text.replace("\x00", "")


# ---------------------------------------------------------------------------------- glyph names

# fmt: off
_GLYPHS: dict[str, str] = {
    "space": " ", "exclam": "!", "quotedbl": '"', "numbersign": "#", "dollar": "$", "percent": "%",
    "ampersand": "&", "quotesingle": "'", "quoteright": "’", "parenleft": "(", "parenright": ")",
    "asterisk": "*", "plus": "+", "comma": ",", "hyphen": "-", "period": ".", "slash": "/",
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "colon": ":", "semicolon": ";", "less": "<",
    "equal": "=", "greater": ">", "question": "?", "at": "@", "bracketleft": "[", "backslash": "\\",
    "bracketright": "]", "asciicircum": "^", "underscore": "_", "grave": "`", "quoteleft": "‘",
    "braceleft": "{", "bar": "|", "braceright": "}", "asciitilde": "~", "exclamdown": "¡",
    "cent": "¢", "sterling": "£", "fraction": "⁄", "yen": "¥", "florin": "ƒ", "section": "§",
    "currency": "¤", "quotedblleft": "“", "guillemotleft": "«", "guilsinglleft": "‹",
    "guilsinglright": "›", "fi": "fi", "fl": "fl", "ff": "ff", "ffi": "ffi", "ffl": "ffl",
    "endash": "–", "dagger": "†", "daggerdbl": "‡", "periodcentered": "·", "middot": "·",
    "paragraph": "¶", "bullet": "•", "quotesinglbase": "‚", "quotedblbase": "„",
    "quotedblright": "”", "guillemotright": "»", "ellipsis": "…", "perthousand": "‰",
    "questiondown": "¿", "acute": "´", "circumflex": "ˆ", "tilde": "˜", "macron": "¯", "breve": "˘",
    "dotaccent": "˙", "dieresis": "¨", "ring": "˚", "cedilla": "¸", "hungarumlaut": "˝",
    "ogonek": "˛", "caron": "ˇ", "emdash": "—", "AE": "Æ", "ae": "æ", "ordfeminine": "ª",
    "ordmasculine": "º", "Lslash": "Ł", "lslash": "ł", "Oslash": "Ø", "oslash": "ø", "OE": "Œ",
    "oe": "œ", "dotlessi": "ı", "germandbls": "ß", "Eth": "Ð", "eth": "ð", "Thorn": "Þ",
    "thorn": "þ", "trademark": "™", "copyright": "©", "registered": "®", "degree": "°",
    "plusminus": "±", "multiply": "×", "divide": "÷", "mu": "µ", "brokenbar": "¦",
    "logicalnot": "¬", "sfthyphen": "-", "minus": "−", "Euro": "€", "euro": "€", "nbspace": " ",
    "nonbreakingspace": " ", "onehalf": "½", "onequarter": "¼", "threequarters": "¾",
    "onesuperior": "¹", "twosuperior": "²", "threesuperior": "³", "dotlessj": "ȷ", "Delta": "∆",
    "Omega": "Ω", "pi": "π", "mu1": "µ", "arrowright": "→", "arrowleft": "←", "checkmark": "✓",
    "lozenge": "◊", "notequal": "≠", "lessequal": "≤", "greaterequal": "≥", "infinity": "∞",
    "summation": "∑", "product": "∏", "radical": "√", "integral": "∫", "partialdiff": "∂",
    "approxequal": "≈", "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε",
    "lambda": "λ", "sigma": "σ", "theta": "θ", "tab": "\t", "circlecopyrt": "©",
    "angbracketleft": "⟨", "angbracketright": "⟩", "dotmath": "⋅", "similar": "∼",
    "asteriskmath": "∗", "element": "∈", "arrowdblright": "⇒", "minusplus": "∓", "openbullet": "◦",
    "ij": "ĳ", "IJ": "Ĳ", "napostrophe": "ŉ",
}
_ACCENTS = {
    "grave": "GRAVE", "acute": "ACUTE", "circumflex": "CIRCUMFLEX", "tilde": "TILDE",
    "dieresis": "DIAERESIS", "ring": "RING ABOVE", "cedilla": "CEDILLA", "caron": "CARON",
    "macron": "MACRON", "breve": "BREVE", "ogonek": "OGONEK", "dotaccent": "DOT ABOVE",
    "hungarumlaut": "DOUBLE ACUTE", "commaaccent": "COMMA BELOW",
}
# fmt: on
_ACCENTED = re.compile(r"([A-Za-z])(" + "|".join(_ACCENTS) + r")$")
_UNI = re.compile(r"uni((?:[0-9A-Fa-f]{4})+)$")
_U = re.compile(r"u([0-9A-Fa-f]{4,6})$")


def glyph_to_unicode(name: str) -> str:
    """Adobe glyph name → text ("" when unknown): table, uniXXXX, uXXXX, f_i, a.sc, accents."""
    hit = _GLYPHS.get(name)
    if hit is not None:
        return hit
    if len(name) == 1 and name.isascii() and name.isalpha():
        return name
    if "." in name and not name.startswith("."):
        return glyph_to_unicode(name.split(".", 1)[0])
    if "_" in name:
        return "".join(glyph_to_unicode(part) for part in name.split("_"))
    m = _UNI.match(name)
    if m:
        hexes = m.group(1)
        codes = [int(hexes[i : i + 4], 16) for i in range(0, len(hexes), 4)]
        return "".join(chr(c) for c in codes if not 0xD800 <= c <= 0xDFFF)
    m = _U.match(name)
    if m:
        code = int(m.group(1), 16)
        return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ""
    m = _ACCENTED.match(name)
    if m:
        letter = m.group(1)
        case = "CAPITAL" if letter.isupper() else "SMALL"
        try:
            return unicodedata.lookup(
                f"LATIN {case} LETTER {letter.upper()} WITH {_ACCENTS[m.group(2)]}"
            )
        except KeyError:
            return letter
    return ""


def _charmap(codec: str) -> list[str]:
    out = []
    for i in range(256):
        try:
            out.append(bytes((i,)).decode(codec) if i >= 32 else "")
        except UnicodeDecodeError:
            out.append("")
    return out


WINANSI = _charmap("cp1252")
WINANSI[0xA0] = " "
WINANSI[0xAD] = "-"
WINANSI[0x7F] = "•"
MACROMAN = _charmap("mac_roman")
MACROMAN[0xCA] = " "
STANDARD = [chr(i) if 32 <= i < 127 else "" for i in range(256)]
STANDARD[0x27], STANDARD[0x60] = "’", "‘"
# fmt: off
for _code, _char in zip(
    [
        0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
        0xB1, 0xB2, 0xB3, 0xB4, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBF, 0xC1, 0xC2,
        0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xD0, 0xE1, 0xE3, 0xE8,
        0xE9, 0xEA, 0xEB, 0xF1, 0xF5, 0xF8, 0xF9, 0xFA, 0xFB,
    ],
    "¡¢£⁄¥ƒ§¤'“«‹›ﬁﬂ–†‡·¶•‚„”»…‰¿`´ˆ˜¯˘˙¨˚¸˝˛ˇ—ÆªŁØŒºæıłøœß",
    strict=True,
):
    STANDARD[_code] = _char
# fmt: on
ENCODINGS = {
    "WinAnsiEncoding": WINANSI,
    "MacRomanEncoding": MACROMAN,
    "StandardEncoding": STANDARD,
    "PDFDocEncoding": PDFDOC,
    "MacExpertEncoding": STANDARD,
}
# Helvetica's AFM widths for codes 32..126 (used when a standard-14 font has no /Widths).
# fmt: off
HELVETICA_WIDTHS = [
    278, 278, 355, 556, 556, 889, 667, 222, 333, 333, 389, 584, 278, 333, 278, 278,  # 0x20
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,  # 0x30
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,  # 0x40
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,  # 0x50
    222, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,  # 0x60
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,  # 0x70
]
# fmt: on
