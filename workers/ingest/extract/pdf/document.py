"""The file structure: xref tables and streams (/Prev chains, hybrid files), object streams,
stream decoding under a byte budget, recovery by scanning for ``n g obj`` when the xref is
unusable, and the page tree (with inherited /Resources and a fallback to orphan pages)."""

from __future__ import annotations

import contextlib
import re
from bisect import bisect_right
from typing import Any

from ingest.extract.base import ExtractionFailed
from ingest.extract.pdf.errors import (
    MAX_DECODED_BYTES,
    MAX_PAGES,
    MSG_TOO_BIG,
    MSG_TOO_MANY_PAGES,
    Corrupt,
    Unsupported,
)
from ingest.extract.pdf.filters import (
    FILTER_ALIASES,
    ascii85_decode,
    ascii_hex_decode,
    inflate,
    lzw_decode,
    run_length_decode,
    unpredict,
)
from ingest.extract.pdf.syntax import REGULAR, Ref, Stream, as_int, parse_object

_OBJ_HEADER = re.compile(
    rb"(?<![0-9])(\d{1,10})[\x00\t\n\x0c\r ]+(\d{1,5})[\x00\t\n\x0c\r ]+obj(?!" + REGULAR + rb")"
)
_XREF_SUBSECTION = re.compile(rb"[\x00\t\n\x0c\r ]*(\d+)[\x00\t\n\x0c\r ]+(\d+)[ \t]*[\r\n]")
_XREF_ENTRY = re.compile(rb"[\x00\t\n\x0c\r ]*(\d{1,10})[ \t]+(\d{1,5})[ \t]+([nf])")
_STREAM_KW = re.compile(rb"[\x00\t\n\x0c\r ]*stream(?:\r\n|\n|\r)?")
_ENDSTREAM = re.compile(rb"[\x00\t\n\x0c\r ]*endstream")
_TRAILER = re.compile(rb"trailer[\x00\t\n\x0c\r ]*<<")


class Document:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.xref: dict[int, tuple[int, int, int]] = {}  # num -> (kind, a, b)
        self.trailer: dict[str, Any] = {}
        self.cache: dict[int, Any] = {}
        self.loading: set[int] = set()
        self.budget = MAX_DECODED_BYTES
        self.scanned: dict[int, int] | None = None
        self.objstms: dict[int, tuple[bytes, list[int]]] = {}
        self.recovered = False

    # -- objects ---------------------------------------------------------------------

    def resolve(self, obj: Any) -> Any:
        depth = 0
        while type(obj) is Ref:
            obj = self.get(obj.num)
            depth += 1
            if depth > 32:
                return None
        return obj

    def rdict(self, obj: Any) -> dict[str, Any]:
        obj = self.resolve(obj)
        if isinstance(obj, Stream):
            return obj.attrs
        return obj if isinstance(obj, dict) else {}

    def get(self, num: int) -> Any:
        cache = self.cache
        if num in cache:
            return cache[num]
        if num in self.loading:
            return None  # reference cycle
        self.loading.add(num)
        try:
            obj = self._load(num)
        except Corrupt:
            obj = None  # unreadable (e.g. cut off by truncation): treat as null, like readers do
        finally:
            self.loading.discard(num)
        cache[num] = obj
        return obj

    def _load(self, num: int) -> Any:
        entry = self.xref.get(num)
        if entry is not None:
            kind, a, b = entry
            if kind == 1:
                found, obj = self._parse_indirect(a, num)
                if found:
                    return obj
            elif kind == 2:
                found, obj = self._from_objstm(a, b, num)
                if found:
                    return obj
        offsets = self._scan()
        if num in offsets and (entry is None or entry[0] != 1 or entry[1] != offsets[num]):
            found, obj = self._parse_indirect(offsets[num], num)
            if found:
                return obj
        return None

    def _parse_indirect(self, offset: int, num: int | None) -> tuple[bool, Any]:
        data = self.data
        if not 0 <= offset < len(data):
            return False, None
        m = _OBJ_HEADER.match(data, offset)
        if m is None:
            # Tolerate offsets that are off by a little (a common writer bug).
            m = _OBJ_HEADER.search(data, max(0, offset - 32), offset + 64)
            if m is None:
                return False, None
        if num is not None and int(m.group(1)) != num:
            return False, None
        obj, pos = parse_object(data, m.end())
        if isinstance(obj, dict):
            sm = _STREAM_KW.match(data, pos)
            if sm is not None:
                return True, Stream(obj, self._stream_bytes(obj, sm.end()))
        return True, obj

    def _stream_bytes(self, attrs: dict[str, Any], start: int) -> bytes:
        data = self.data
        length = attrs.get("Length")
        if type(length) is Ref:
            length = self.get(length.num)
        if type(length) is int and 0 <= length <= len(data) - start:
            end = start + length
            if _ENDSTREAM.match(data, end):
                return data[start:end]
        end = data.find(b"endstream", start)
        if end < 0:
            return data[start:]
        if data[end - 2 : end] == b"\r\n":
            end -= 2
        elif data[end - 1 : end] in (b"\n", b"\r"):
            end -= 1
        return data[start:end]

    def _from_objstm(self, stm_num: int, index: int, num: int) -> tuple[bool, Any]:
        loaded = self.objstms.get(stm_num)
        if loaded is None:
            stm = self.get(stm_num)
            if not isinstance(stm, Stream):
                return False, None
            try:
                body = self.decode(stm)
            except Unsupported:
                return False, None
            count = as_int(stm.attrs.get("N"), 0)
            first = as_int(stm.attrs.get("First"), 0)
            header = body[:first].split()
            pairs: list[int] = []
            for i in range(0, min(len(header), 2 * count) - 1, 2):
                try:
                    pairs += (int(header[i]), first + int(header[i + 1]))
                except ValueError:
                    break
            loaded = (body, pairs)
            self.objstms[stm_num] = loaded
        body, pairs = loaded
        # Trust the index, but verify the number; otherwise search the header for it.
        candidates = []
        if 0 <= 2 * index < len(pairs) and pairs[2 * index] == num:
            candidates.append(pairs[2 * index + 1])
        else:
            candidates += [pairs[i + 1] for i in range(0, len(pairs), 2) if pairs[i] == num]
        for offset in candidates:
            if 0 <= offset < len(body):
                return True, parse_object(body, offset)[0]
        return False, None

    # -- streams ---------------------------------------------------------------------

    def decode(self, stream: Stream) -> bytes:
        if stream.decoded is not None:
            return stream.decoded
        attrs = stream.attrs
        filters = self.resolve(attrs.get("Filter"))
        parms = self.resolve(attrs.get("DecodeParms", attrs.get("DP")))
        if not isinstance(filters, list):
            filters = [filters] if filters else []
        if not isinstance(parms, list):
            parms = [parms] * len(filters)
        data = stream.raw
        for i, name in enumerate(filters):
            name = FILTER_ALIASES.get(name, name) if isinstance(name, str) else name
            p = self.rdict(parms[i] if i < len(parms) else None)
            if name == "FlateDecode":
                data = unpredict(inflate(data, self.budget), p)
            elif name == "LZWDecode":
                data = unpredict(lzw_decode(data, as_int(p.get("EarlyChange"), 1), self.budget), p)
            elif name == "ASCIIHexDecode":
                data = ascii_hex_decode(data)
            elif name == "ASCII85Decode":
                data = ascii85_decode(data)
            elif name == "RunLengthDecode":
                data = run_length_decode(data)
            elif name == "Crypt":
                continue
            else:
                raise Unsupported(str(name))
            self._spend(len(data))
        stream.decoded = data
        return data

    def _spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise ExtractionFailed(MSG_TOO_BIG)

    # -- xref ------------------------------------------------------------------------

    def load_structure(self) -> None:
        try:
            self._read_xref_chain()
        except Corrupt:
            self.xref.clear()
            self.trailer = {}
        if self.trailer.get("Encrypt") is not None:
            return  # refused by the caller; encrypted objects would only look corrupt
        if not self.root_ok():
            self._recover()

    def root_ok(self) -> bool:
        root = self.rdict(self.trailer.get("Root"))
        return bool(root) and bool(self.rdict(root.get("Pages")))

    def _read_xref_chain(self) -> None:
        data = self.data
        idx = data.rfind(b"startxref", max(0, len(data) - 4096))
        if idx < 0:
            idx = data.rfind(b"startxref")
        if idx < 0:
            raise Corrupt("no startxref")
        m = re.match(rb"startxref[\x00\t\n\x0c\r ]+(\d+)", data[idx : idx + 40])
        if m is None:
            raise Corrupt("bad startxref")
        offset: int | None = int(m.group(1))
        seen: set[int] = set()
        while offset is not None and offset not in seen and len(seen) < 256:
            seen.add(offset)
            trailer = self._read_xref_section(offset)
            for key, value in trailer.items():
                self.trailer.setdefault(key, value)
            prev = trailer.get("Prev")
            offset = prev if type(prev) is int else None

    def _read_xref_section(self, offset: int) -> dict[str, Any]:
        data = self.data
        if not 0 <= offset < len(data):
            raise Corrupt("xref offset out of range")
        m = re.compile(rb"[\x00\t\n\x0c\r ]*xref").match(data, offset)
        if m is None:
            return self._read_xref_stream(offset)
        pos = m.end()
        xref = self.xref
        while True:
            sub = _XREF_SUBSECTION.match(data, pos)
            if sub is None:
                break
            first, count = int(sub.group(1)), int(sub.group(2))
            pos = sub.end()
            for i in range(count):
                e = _XREF_ENTRY.match(data, pos)
                if e is None:
                    raise Corrupt("bad xref entry")
                pos = e.end()
                if e.group(3) == b"n" and first + i not in xref:
                    xref[first + i] = (1, int(e.group(1)), int(e.group(2)))
        at = data.find(b"trailer", pos, pos + 256)
        t = _TRAILER.match(data, at) if at >= 0 else None
        if t is None:
            raise Corrupt("no trailer")
        trailer, _ = parse_object(data, t.end() - 2)
        if not isinstance(trailer, dict):
            raise Corrupt("bad trailer")
        stm = trailer.get("XRefStm")
        if type(stm) is int:
            with contextlib.suppress(Corrupt):
                self._read_xref_stream(stm)
        return trailer

    def _read_xref_stream(self, offset: int) -> dict[str, Any]:
        found, stm = self._parse_indirect(offset, None)
        if not found or not isinstance(stm, Stream) or stm.attrs.get("Type") != "XRef":
            raise Corrupt("no xref stream at offset")
        attrs = stm.attrs
        try:
            body = self.decode(stm)
        except Unsupported as exc:
            raise Corrupt("xref stream filter") from exc
        widths = attrs.get("W")
        if not (
            isinstance(widths, list) and len(widths) == 3 and all(type(w) is int for w in widths)
        ):
            raise Corrupt("bad /W")
        w0, w1, w2 = widths
        if min(widths) < 0 or max(widths) > 8:
            raise Corrupt("bad /W")
        size = as_int(attrs.get("Size"), 0)
        index = attrs.get("Index")
        if not isinstance(index, list) or not index:
            index = [0, size]
        rec = w0 + w1 + w2
        if rec == 0:
            raise Corrupt("bad /W")
        pos = 0
        xref = self.xref
        for j in range(0, len(index) - 1, 2):
            first, count = as_int(index[j], 0), as_int(index[j + 1], 0)
            for i in range(count):
                if pos + rec > len(body):
                    break
                kind = int.from_bytes(body[pos : pos + w0], "big") if w0 else 1
                a = int.from_bytes(body[pos + w0 : pos + w0 + w1], "big")
                b = int.from_bytes(body[pos + w0 + w1 : pos + rec], "big")
                pos += rec
                if kind in (1, 2) and first + i not in xref:
                    xref[first + i] = (kind, a, b)
        return attrs

    def _scan(self) -> dict[int, int]:
        if self.scanned is None:
            self.scanned = {}
            for m in _OBJ_HEADER.finditer(self.data):
                self.scanned[int(m.group(1))] = m.start()  # later (newer) definitions win
        return self.scanned

    def _recover(self) -> None:
        """The xref is unusable: rebuild from `n g obj` headers, trailers and object streams."""
        self.recovered = True
        data = self.data
        offsets = self._scan()
        self.cache.clear()
        self.objstms.clear()
        self.xref = {num: (1, off, 0) for num, off in offsets.items()}
        starts = sorted((off, num) for num, off in offsets.items())
        keys = [s[0] for s in starts]

        def owner(pos: int) -> int | None:
            i = bisect_right(keys, pos) - 1
            return starts[i][1] if i >= 0 else None

        # Objects living in object streams.
        for m in re.finditer(rb"/Type[\x00\t\n\x0c\r ]*/ObjStm(?!" + REGULAR + rb")", data):
            stm_num = owner(m.start())
            stm = self.get(stm_num) if stm_num is not None else None
            if stm_num is None or not isinstance(stm, Stream):
                continue
            try:
                self._from_objstm(stm_num, 0, -1)  # loads the header
            except Corrupt:
                continue
            loaded = self.objstms.get(stm_num)
            if loaded is None:
                continue
            pairs = loaded[1]
            for i in range(0, len(pairs), 2):
                if pairs[i] not in self.xref:
                    self.xref[pairs[i]] = (2, stm_num, i // 2)
        trailer: dict[str, Any] = {}
        for m in _TRAILER.finditer(data):
            try:
                t, _ = parse_object(data, m.end() - 2)
            except Corrupt:
                continue
            if isinstance(t, dict):
                trailer.update(t)
        for m in re.finditer(rb"/Type[\x00\t\n\x0c\r ]*/XRef(?!" + REGULAR + rb")", data):
            num = owner(m.start())
            obj = self.get(num) if num is not None else None
            if isinstance(obj, Stream):
                trailer.update(
                    {k: v for k, v in obj.attrs.items() if k in ("Root", "Info", "Encrypt")}
                )
        self.trailer = trailer
        if not self.root_ok():
            for m in re.finditer(rb"/Type[\x00\t\n\x0c\r ]*/Catalog(?!" + REGULAR + rb")", data):
                num = owner(m.start())
                if num is not None:
                    self.trailer["Root"] = Ref(num, 0)
                    if self.root_ok():
                        break
        # Objects inside object streams have no header to scan: look for catalogs there too.
        if not self.root_ok():
            for num, entry in list(self.xref.items()):
                if entry[0] == 2:
                    obj = self.get(num)
                    if isinstance(obj, dict) and obj.get("Type") == "Catalog":
                        self.trailer["Root"] = Ref(num, 0)
                        if self.root_ok():
                            break

    def orphan_pages(self) -> list[dict[str, Any]]:
        """Last resort when the page tree is gone: every /Type /Page object, in file order."""
        out = []
        offsets = sorted((off, num) for num, off in self._scan().items())
        for _, num in offsets:
            obj = self.get(num)
            if isinstance(obj, dict) and obj.get("Type") == "Page":
                out.append(obj)
                if len(out) > MAX_PAGES:
                    raise ExtractionFailed(MSG_TOO_MANY_PAGES)
        return out

    def _inherited_resources(self, page: dict[str, Any]) -> dict[str, Any]:
        node: Any = page
        for _ in range(32):
            if not isinstance(node, dict):
                break
            if node.get("Resources") is not None:
                return self.rdict(node.get("Resources"))
            node = self.resolve(node.get("Parent"))
        return {}

    # -- pages -----------------------------------------------------------------------

    def pages(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        root = self.rdict(self.trailer.get("Root"))
        top = self.resolve(root.get("Pages"))
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        seen: set[int] = set()
        stack: list[tuple[Any, dict[str, Any], int]] = [(top, {}, 0)]
        while stack:
            node, inherited, depth = stack.pop()
            node = self.resolve(node)
            if not isinstance(node, dict) or id(node) in seen or depth > 64:
                continue
            seen.add(id(node))
            resources = node.get("Resources")
            res = self.rdict(resources) if resources is not None else inherited
            kids = self.resolve(node.get("Kids"))
            if node.get("Type") == "Pages" or (
                node.get("Type") != "Page" and isinstance(kids, list)
            ):
                if isinstance(kids, list):
                    for kid in reversed(kids):
                        stack.append((kid, res, depth + 1))
                continue
            out.append((node, res))
            if len(out) > MAX_PAGES:
                raise ExtractionFailed(MSG_TOO_MANY_PAGES)
        if not out:  # a damaged tree: fall back to every page object in the file
            out = [(p, self._inherited_resources(p)) for p in self.orphan_pages()]
        return out
