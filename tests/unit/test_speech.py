"""Speech providers chosen and called without a network: Workers AI melotts (base64 MP3) and
the choice of voice and format (llm.speech)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from kernel.runtime.errors import ValidationFailed
from llm.speech import MELOTTS, NotEnabled, SpeechProvider, _melotts, choose

PIPER = SpeechProvider("piper", "piper:en_US-joe-medium", ("wav",), ("joe",), "http://x")
MELO = SpeechProvider("workers-ai", MELOTTS, ("mp3",), ("en", "fr"))


def test_the_first_provider_that_speaks_the_format_and_voice_is_chosen() -> None:
    assert choose([PIPER, MELO], None, "wav") == (PIPER, "joe")
    assert choose([PIPER, MELO], None, "mp3") == (MELO, "en")
    assert choose([PIPER, MELO], "fr", "mp3") == (MELO, "fr")
    with pytest.raises(ValidationFailed, match="piper: voices joe, formats wav"):
        choose([PIPER, MELO], None, "ogg")
    with pytest.raises(NotEnabled):
        choose([], None, "wav")


def test_melotts_audio_is_decoded_from_base64() -> None:
    mp3 = b"ID3\x04\x00fake mp3 frames"

    class AI:
        async def run(self, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
            assert model == MELOTTS and inputs == {"prompt": "Hello", "lang": "en"}
            return {"audio": base64.b64encode(mp3).decode()}

    class B:
        ai = AI()

        def need(self, value: Any, name: str) -> Any:
            return value

    assert asyncio.run(_melotts(B(), "Hello", "en")) == mp3  # type: ignore[arg-type]


def test_aura_is_asked_for_the_format_and_its_stream_read_whole() -> None:
    from llm.speech import AURA, _aura

    seen: list[dict[str, Any]] = []

    class AI:
        async def audio(self, model: str, inputs: dict[str, Any]) -> bytes:
            assert model == AURA
            seen.append(inputs)
            return b"RIFF....WAVEfmt "

    class B:
        ai = AI()

        def need(self, value: Any, name: str) -> Any:
            return value

    assert asyncio.run(_aura(B(), "Hi", "luna", "wav")).startswith(b"RIFF")  # type: ignore[arg-type]
    asyncio.run(_aura(B(), "Hi", "angus", "mp3"))  # type: ignore[arg-type]
    assert seen == [
        {"text": "Hi", "speaker": "luna", "encoding": "linear16", "container": "wav"},
        {"text": "Hi", "speaker": "angus", "encoding": "mp3"},
    ]
