"""Text to speech behind one interface (`POST /tts`), cached in R2.

Providers, in the order of `EDGERAG_TTS_PROVIDERS` (none set: 501 `not_enabled`):

- `workers-ai`: `@cf/deepgram/aura-1` through the AI binding — `{text, speaker, encoding,
  container}` → a ReadableStream of audio; formats wav (linear16), mp3, ogg (opus); speakers
  angus (default) … stella — then `@cf/myshell-ai/melotts` — `{prompt, lang}` → `{audio}`
  (base64 MP3) — for its languages (voice en, es, fr, zh, ja, ko).
- `piper`: a Piper server the operator runs (locally `make dev` starts one:
  emulator/piper_server.py) at `EDGERAG_PIPER_URL` — `POST /synthesize {text}` → WAV, Piper's
  own HTTP API; formats: wav.

A voice and format no configured provider makes is a 422 naming what is available; nothing is
converted (no audio encoder runs inside a Worker). Audio is cached in R2 under the tenant's
prefix by SHA-256 of (text, provider, voice, format): the same sentence is synthesized once.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from kernel.bindings.env import Bindings
from kernel.bindings.ports import BindingError, HttpError
from kernel.domain.tenancy import TenantScope
from kernel.runtime.errors import ApiError, UpstreamError, ValidationFailed
from kernel.runtime.ids import sha256_hex
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry

MELOTTS = "@cf/myshell-ai/melotts"
AURA = "@cf/deepgram/aura-1"
AURA_SPEAKERS = (
    "angus",
    "asteria",
    "arcas",
    "orion",
    "orpheus",
    "athena",
    "luna",
    "zeus",
    "perseus",
    "helios",
    "hera",
    "stella",
)
# format -> aura-1's (encoding, container); MP3 takes no container.
AURA_FORMATS = {"wav": ("linear16", "wav"), "mp3": ("mp3", None), "ogg": ("opus", "ogg")}
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg"}


class NotEnabled(ApiError):
    status = 501
    code = "not_enabled"


@dataclass(frozen=True)
class SpeechProvider:
    name: str  # workers-ai | piper
    model: str
    formats: tuple[str, ...]
    voices: tuple[str, ...]
    base_url: str = ""


@dataclass(frozen=True)
class Speech:
    audio: bytes
    content_type: str
    provider: str
    model: str
    voice: str
    cached: bool


def configured(b: Bindings) -> list[SpeechProvider]:
    names = [n.strip() for n in (b.var("EDGERAG_TTS_PROVIDERS") or "").split(",") if n.strip()]
    chain: list[SpeechProvider] = []
    for name in dict.fromkeys(names):
        if name == "workers-ai" and b.ai is not None:
            chain.append(SpeechProvider(name, AURA, ("wav", "mp3", "ogg"), AURA_SPEAKERS))
            chain.append(
                SpeechProvider(name, MELOTTS, ("mp3",), ("en", "es", "fr", "zh", "ja", "ko"))
            )
        elif name == "piper" and b.var("EDGERAG_PIPER_URL") and b.http is not None:
            url = str(b.var("EDGERAG_PIPER_URL")).rstrip("/")
            chain.append(SpeechProvider(name, "piper:en_US-joe-medium", ("wav",), ("joe",), url))
    return chain


def choose(chain: list[SpeechProvider], voice: str | None, fmt: str) -> tuple[SpeechProvider, str]:
    if not chain:
        raise NotEnabled(
            "text to speech is not enabled here: set EDGERAG_TTS_PROVIDERS (workers-ai, piper)"
        )
    for p in chain:
        if fmt in p.formats and (voice is None or voice in p.voices):
            return p, voice or p.voices[0]
    offers = "; ".join(
        f"{p.name}: voices {', '.join(p.voices)}, formats {', '.join(p.formats)}" for p in chain
    )
    raise ValidationFailed(
        f"no configured voice speaks {voice or 'any voice'} as {fmt} ({offers})",
        details={"fields": [{"field": "format" if voice is None else "voice", "message": offers}]},
    )


async def synthesize(
    b: Bindings, scope: TenantScope, text: str, voice: str | None, fmt: str
) -> Speech:
    provider, voice_id = choose(configured(b), voice, fmt)
    blobs = b.need(b.blobs, "R2")
    key = scope.r2_key(
        "tts", sha256_hex(json.dumps([text, provider.name, voice_id, fmt])) + f".{fmt}"
    )
    found = await blobs.get(key)
    metrics = registry("llm")
    if found is not None:
        metrics.inc(
            "edgerag_tts_total",
            help="Speech requests by provider and cache outcome",
            provider=provider.name,
            cache="hit",
        )
        return Speech(found.data, CONTENT_TYPES[fmt], provider.name, provider.model, voice_id, True)
    if provider.name == "piper":
        audio = await _piper(b, provider, text)
    elif provider.model == AURA:
        audio = await _aura(b, text, voice_id, fmt)
    else:
        audio = await _melotts(b, text, voice_id)
    await blobs.put(key, audio, content_type=CONTENT_TYPES[fmt])
    metrics.inc(
        "edgerag_tts_total",
        help="Speech requests by provider and cache outcome",
        provider=provider.name,
        cache="miss",
    )
    return Speech(audio, CONTENT_TYPES[fmt], provider.name, provider.model, voice_id, False)


async def _piper(b: Bindings, provider: SpeechProvider, text: str) -> bytes:
    http = b.need(b.http, "HTTP")
    try:
        reply = await http.send(
            "POST",
            f"{provider.base_url}/synthesize",
            headers={"content-type": "application/json"},
            body=json.dumps({"text": text}).encode(),
            timeout_s=60.0,
        )
    except HttpError as exc:
        raise UpstreamError(
            f"the Piper server did not answer: {exc}", code="tts_unavailable"
        ) from exc
    if reply.status != 200 or not reply.body.startswith(b"RIFF"):
        log("tts_failed", provider="piper", status=reply.status)
        raise UpstreamError(f"the Piper server answered {reply.status}", code="tts_unavailable")
    return reply.body


async def _aura(b: Bindings, text: str, speaker: str, fmt: str) -> bytes:
    encoding, container = AURA_FORMATS[fmt]
    inputs = {"text": text, "speaker": speaker, "encoding": encoding}
    if container is not None:
        inputs["container"] = container
    try:
        audio = await b.need(b.ai, "AI").audio(AURA, inputs)
    except BindingError as exc:
        raise UpstreamError(f"{AURA} failed: {exc}", code="tts_unavailable") from exc
    if not audio:
        raise UpstreamError(f"{AURA} returned no audio", code="tts_unavailable")
    return audio


async def _melotts(b: Bindings, text: str, voice: str) -> bytes:
    try:
        result = await b.need(b.ai, "AI").run(MELOTTS, {"prompt": text, "lang": voice})
    except BindingError as exc:
        raise UpstreamError(f"{MELOTTS} failed: {exc}", code="tts_unavailable") from exc
    encoded = result.get("audio") if isinstance(result, dict) else None
    if not isinstance(encoded, str):
        raise UpstreamError(f"{MELOTTS} returned no audio", code="tts_unavailable")
    return base64.b64decode(encoded)


def describe(b: Bindings) -> list[dict[str, object]]:
    return [
        {"provider": p.name, "model": p.model, "voices": list(p.voices), "formats": list(p.formats)}
        for p in configured(b)
    ]
