"""Stream filters: Flate (with salvage of a damaged tail), LZW, ASCIIHex, ASCII85, RunLength,
and the PNG/TIFF predictors. ``Document.decode`` chains them and keeps the byte budget."""

from __future__ import annotations

import base64
import zlib
from typing import Any

from ingest.extract.base import ExtractionFailed
from ingest.extract.pdf.errors import MSG_TOO_BIG
from ingest.extract.pdf.syntax import WS, as_int, decode_hex


def inflate(raw: bytes, budget: int) -> bytes:
    """FlateDecode, refusing to produce more than `budget` bytes."""
    limit = budget + 1
    try:
        out = zlib.decompressobj().decompress(raw, limit)
    except zlib.error:
        out = _inflate_salvage(raw, limit)
    if len(out) >= limit:
        raise ExtractionFailed(MSG_TOO_BIG)
    return out


def _inflate_salvage(raw: bytes, limit: int) -> bytes:
    """A damaged deflate stream: keep whatever decodes before the damage."""
    best = b""
    for wbits, skip in ((15, 0), (-15, 2), (-15, 0)):
        d = zlib.decompressobj(wbits)
        parts: list[bytes] = []
        size = 0
        try:
            for i in range(skip, len(raw), 1024):
                chunk = d.decompress(raw[i : i + 1024], limit - size)
                parts.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        except zlib.error:
            pass
        got = b"".join(parts)
        if len(got) > len(best):
            best = got
    return best


def _png_unpredict(data: bytes, columns: int, colors: int, bpc: int) -> bytes:
    bpp = max(1, colors * bpc // 8)
    rowlen = (colors * bpc * columns + 7) // 8
    if rowlen <= 0:
        return data
    out = bytearray()
    prev = bytearray(rowlen)
    stride = rowlen + 1
    for start in range(0, len(data) - 1, stride):
        ftype = data[start]
        row = bytearray(data[start + 1 : start + stride])
        if len(row) < rowlen:
            row.extend(bytes(rowlen - len(row)))
        if ftype == 1:
            for i in range(bpp, rowlen):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif ftype == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev, strict=True))
        elif ftype == 3:
            for i in range(rowlen):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(rowlen):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (row[i] + pred) & 0xFF
        out += row
        prev = row
    return bytes(out)


def unpredict(data: bytes, parms: dict[str, Any]) -> bytes:
    predictor = parms.get("Predictor", 1)
    if not isinstance(predictor, int) or predictor < 2:
        return data
    columns = as_int(parms.get("Columns"), 1)
    colors = as_int(parms.get("Colors"), 1)
    bpc = as_int(parms.get("BitsPerComponent"), 8)
    if not (0 < columns < 1 << 24 and 0 < colors < 64 and bpc in (1, 2, 4, 8, 16)):
        return data
    if predictor >= 10:
        return _png_unpredict(data, columns, colors, bpc)
    if predictor == 2 and bpc == 8:  # TIFF horizontal differencing, the common 8-bit case
        out = bytearray(data)
        rowlen = columns * colors
        for start in range(0, len(out), rowlen):
            for i in range(start + colors, min(start + rowlen, len(out))):
                out[i] = (out[i] + out[i - colors]) & 0xFF
        return bytes(out)
    return data


def lzw_decode(data: bytes, early: int, limit: int) -> bytes:
    out = bytearray()
    table: list[bytes] = [bytes((i,)) for i in range(256)] + [b"", b""]
    bits, buf, nbits = 9, 0, 0
    prev: bytes | None = None
    for byte in data:
        buf = (buf << 8) | byte
        nbits += 8
        while nbits >= bits:
            nbits -= bits
            code = (buf >> nbits) & ((1 << bits) - 1)
            buf &= (1 << nbits) - 1
            if code == 256:
                del table[258:]
                bits, prev = 9, None
                continue
            if code == 257:
                return bytes(out)
            if prev is None:
                if code >= len(table):
                    return bytes(out)
                entry = table[code]
            elif code < len(table):
                entry = table[code]
                table.append(prev + entry[:1])
            elif code == len(table):
                entry = prev + prev[:1]
                table.append(entry)
            else:
                return bytes(out)
            out += entry
            if len(out) > limit:
                raise ExtractionFailed(MSG_TOO_BIG)
            prev = entry
            if len(table) + early >= (1 << bits) and bits < 12:
                bits += 1
    return bytes(out)


def run_length_decode(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        length = data[i]
        if length == 128:
            break
        if length < 128:
            out += data[i + 1 : i + 2 + length]
            i += length + 2
        else:
            out += data[i + 1 : i + 2] * (257 - length)
            i += 2
    return bytes(out)


def ascii_hex_decode(data: bytes) -> bytes:
    end = data.find(b">")
    return decode_hex(data if end < 0 else data[:end])


def ascii85_decode(data: bytes) -> bytes:
    body = data.strip(WS)
    if body.startswith(b"<~"):
        body = body[2:]
    end = body.find(b"~")
    if end >= 0:
        body = body[:end]
    body = bytes(c for c in body if c not in WS)
    return base64.a85decode(body)


FILTER_ALIASES = {
    "Fl": "FlateDecode",
    "LZW": "LZWDecode",
    "AHx": "ASCIIHexDecode",
    "A85": "ASCII85Decode",
    "RL": "RunLengthDecode",
}
