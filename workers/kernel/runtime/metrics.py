"""In-isolate metrics rendered in Prometheus text format.

Counters live per isolate (per process locally). The gateway's `/metrics` concatenates its own
registry with each Worker's `/internal/metrics`, labelled by worker.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

LabelSet = tuple[tuple[str, str], ...]

LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def _labels(labels: dict[str, str]) -> LabelSet:
    return tuple(sorted(labels.items()))


def _render_labels(labels: LabelSet, extra: dict[str, str] | None = None) -> str:
    items = list(labels) + sorted((extra or {}).items())
    if not items:
        return ""
    escaped = (
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), " ")}"'
        for k, v in items
    )
    return "{" + ",".join(escaped) + "}"


class Registry:
    def __init__(self) -> None:
        self._counters: dict[str, dict[LabelSet, float]] = defaultdict(lambda: defaultdict(float))
        self._hist: dict[str, dict[LabelSet, list[float]]] = defaultdict(dict)
        self._gauges: dict[str, dict[LabelSet, float]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}

    def inc(self, name: str, value: float = 1.0, help: str = "", **labels: str) -> None:
        self._help.setdefault(name, ("counter", help))
        self._counters[name][_labels(labels)] += value

    def set_gauge(self, name: str, value: float, help: str = "", **labels: str) -> None:
        self._help.setdefault(name, ("gauge", help))
        self._gauges[name][_labels(labels)] = value

    def observe(self, name: str, value: float, help: str = "", **labels: str) -> None:
        self._help.setdefault(name, ("histogram", help))
        key = _labels(labels)
        # [bucket counts..., +Inf count, sum]
        state = self._hist[name].setdefault(key, [0.0] * (len(LATENCY_BUCKETS_MS) + 2))
        for i, bound in enumerate(LATENCY_BUCKETS_MS):
            if value <= bound:
                state[i] += 1
        state[-2] += 1
        state[-1] += value

    def counter_value(self, name: str, **labels: str) -> float:
        return self._counters.get(name, {}).get(_labels(labels), 0.0)

    def render(self, extra_labels: dict[str, str] | None = None) -> str:
        lines: list[str] = []
        for name, (kind, help_text) in sorted(self._help.items()):
            if help_text:
                lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind in ("counter", "gauge"):
                values = self._counters[name] if kind == "counter" else self._gauges[name]
                for labels, value in sorted(values.items()):
                    lines.append(f"{name}{_render_labels(labels, extra_labels)} {_num(value)}")
                continue
            for labels, state in sorted(self._hist[name].items()):
                for bound, count in zip(LATENCY_BUCKETS_MS, state, strict=False):
                    le = {**(extra_labels or {}), "le": str(bound)}
                    lines.append(f"{name}_bucket{_render_labels(labels, le)} {_num(count)}")
                inf = {**(extra_labels or {}), "le": "+Inf"}
                lines.append(f"{name}_bucket{_render_labels(labels, inf)} {_num(state[-2])}")
                lines.append(f"{name}_sum{_render_labels(labels, extra_labels)} {_num(state[-1])}")
                lines.append(
                    f"{name}_count{_render_labels(labels, extra_labels)} {_num(state[-2])}"
                )
        return "\n".join(lines) + ("\n" if lines else "")


def _num(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(value)


# One registry per Worker. On Cloudflare an isolate holds one Worker; the emulator runs all four
# in one process, so keying by worker keeps their numbers apart exactly as in production.
_REGISTRIES: dict[str, Registry] = {}


def registry(worker: str) -> Registry:
    return _REGISTRIES.setdefault(worker, Registry())


def merge_exposition(texts: list[str]) -> str:
    """Merge several Prometheus texts so each family has one HELP/TYPE block (as the format requires)."""
    meta: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = defaultdict(list)
    kinds: dict[str, str] = {}
    order: list[str] = []
    for text in texts:
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# "):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                    if family not in meta:
                        meta[family] = []
                        order.append(family)
                    if not any(m.startswith(f"# {parts[1]} ") for m in meta[family]):
                        meta[family].append(line)
                    if parts[1] == "TYPE" and len(parts) == 4:
                        kinds[family] = parts[3]
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                base = name.removesuffix(suffix)
                if base != name and kinds.get(base) == "histogram":
                    family = base
            if family not in meta:
                meta[family] = []
                order.append(family)
            samples[family].append(line)
    out: list[str] = []
    for family in order:
        out.extend(meta[family])
        out.extend(samples[family])
    return "\n".join(out) + ("\n" if out else "")


_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def without_label(text: str, label: str) -> str:
    """The exposition with one label summed away (e.g. `tenant` for a scraper that must not
    learn which tenants exist): samples that differ only in that label become one sample."""
    order: list[str] = []  # comment lines and series keys, in first-seen order
    sums: dict[str, float] = {}
    verbatim: dict[str, str] = {}  # series seen once and untouched keep their exact line
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if line.startswith("#") or not head:
            order.append(line)
            continue
        series = head
        if "{" in head and f'{label}="' in head:
            name, _, inner = head.partition("{")
            kept = [(k, v) for k, v in _LABEL.findall(inner.removesuffix("}")) if k != label]
            series = name + ("{" + ",".join(f'{k}="{v}"' for k, v in kept) + "}" if kept else "")
        if series in sums:
            sums[series] += float(value)
            verbatim.pop(series, None)
            continue
        order.append(series)
        sums[series] = float(value)
        if series == head:
            verbatim[series] = line
    rendered = [
        verbatim.get(item, f"{item} {_num(sums[item])}") if item in sums else item for item in order
    ]
    return "\n".join(rendered) + ("\n" if rendered else "")
