"""Test doubles of hosted providers: one small HTTP server on 127.0.0.1 that records every request.

It answers in each provider's documented response shape (OpenAI images and chat completions,
Anthropic messages, Gemini generateContent, Replicate files and predictions), so the providers'
real client libraries can be pointed at it and the tests can assert what the provider would
have received. Scripted failures (a 429 with Retry-After, a 500) come first when queued.
Never used by product code.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

#: The verdicts the thinker double gives, round after round (the last one repeats).
DEFAULT_VERDICTS = [
    {"is_satisfied": False, "reason": "the hat is missing", "semantic": 4, "quality": 8,
     "new_rewritten_prompt": "put a red party hat on the cat's head"},
    {"is_satisfied": False, "reason": "the hat is there but pink", "semantic": 6, "quality": 8,
     "new_rewritten_prompt": "make the party hat bright red"},
    {"is_satisfied": True, "reason": "a red hat, nothing else changed", "semantic": 9, "quality": 9,
     "new_rewritten_prompt": "make the party hat bright red"},
]
USAGE_IN, USAGE_OUT = 1200, 80


@dataclass
class Recorded:
    """One request as the provider would have received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    status: int = 0  # what the double answered

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[Any]]:
        """Parse a multipart/form-data body into name → [text or (filename, bytes, content type)]."""
        head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        fields: dict[str, list[Any]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            value = (filename, data, part.get_content_type()) if filename else data.decode()
            fields.setdefault(name, []).append(value)
        return fields


def png(size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class ProviderDouble:
    """Serve every provider's routes on one port; ``failures`` are answered first, in order."""

    def __init__(self, verdicts: list[dict[str, Any]] | None = None) -> None:
        self.verdicts = list(verdicts or DEFAULT_VERDICTS)
        self.requests: list[Recorded] = []
        self.failures: list[tuple[str, int, dict[str, str]]] = []  # (path regex, status, headers)
        self.flaky: str | None = None  # path regex of requests answered 429 every other time
        self.files: dict[str, bytes] = {}
        self.processing_polls = 0  # status checks a Replicate prediction answers "processing" before it succeeds
        self.delay_s = 0.0  # how long each answer waits (a slow provider)
        self._polls: dict[str, int] = {}
        self._critiques = 0
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status, headers, payload = double.answer(recorded, f"http://{self.headers['host']}")
                time.sleep(double.delay_s)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "image/png" if isinstance(payload, bytes) else "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # a client that timed out has gone
                    self.close_connection = True

            do_GET = do_POST = _serve  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> ProviderDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, path_pattern: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next request whose path matches with ``status`` (e.g. 429 and a Retry-After)."""
        self.failures.append((path_pattern, status, headers or {}))

    def fail_every_other(self, path_pattern: str) -> None:
        """Answer every second request whose path matches with 429 (``Retry-After: 0``), from the second on."""
        self.flaky = path_pattern

    def billed(self, pattern: str) -> list[Recorded]:
        """Return the matching requests that were answered (200 or 201), as a provider bills them."""
        return [r for r in self.calls(pattern) if r.status in (200, 201)]

    def restart_verdicts(self) -> None:
        """Give the scripted verdicts from the first again (a new run)."""
        with self._lock:
            self._critiques = 0

    def calls(self, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if re.search(pattern, r.path)]

    def _verdict(self) -> dict[str, Any]:
        with self._lock:
            verdict = self.verdicts[min(self._critiques, len(self.verdicts) - 1)]
            self._critiques += 1
        return verdict

    def answer(self, r: Recorded, base: str) -> tuple[int, dict[str, str], Any]:
        """Route one request; record it, with the status it was answered."""
        status, headers, payload = self._route(r, base)
        r.status = status
        return status, headers, payload

    def _failure(self, path: str) -> tuple[int, dict[str, str]] | None:
        """Return the scripted failure for this request, if any (called under the lock, after recording it)."""
        for i, (pattern, status, headers) in enumerate(self.failures):
            if re.search(pattern, path):
                del self.failures[i]
                return status, headers
        if self.flaky and re.search(self.flaky, path) and len(self.calls(self.flaky)) % 2 == 0:
            return 429, {"retry-after": "0"}
        return None

    def _route(self, r: Recorded, base: str) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(r)
            failure = self._failure(r.path)
        if failure is not None:
            status, headers = failure
            message = f"scripted {status}"
            if status == 401:  # as some providers and proxies do: the key sent, echoed back
                key = r.headers.get("authorization") or r.headers.get("x-api-key", "")
                message = f"Incorrect API key provided: {key}"
            return status, headers, {"error": {"message": message, "type": "rate_limit"},
                                     "detail": message, "status": status}
        path = r.path.split("?")[0]
        if path == "/v1/images/edits":
            return self._openai_image(r)
        if path == "/v1/chat/completions":
            return 200, {}, self._openai_chat(r)
        if path == "/v1/messages":
            return 200, {}, self._anthropic(r)
        if m := re.fullmatch(r"/v1(?:beta)?/models/([^:]+):generateContent", path):
            return 200, {}, self._gemini(m.group(1))
        if path == "/v1/files":
            return 201, {}, self._replicate_file(r, base)
        if m := re.fullmatch(r"/files/(\w+)", path):
            return 200, {}, self.files[m.group(1)]
        if m := re.fullmatch(r"/v1/models/([\w.-]+)/([\w.-]+)/predictions", path):
            return 201, {}, self._replicate_prediction(r, base, f"{m.group(1)}/{m.group(2)}")
        if m := re.fullmatch(r"/v1/predictions/(p\d+)(/cancel)?", path):
            return 200, {}, self._replicate_poll(m.group(1), base, cancel=bool(m.group(2)))
        if path == "/output/result.png":
            return 200, {}, png((512, 384), (30, 30, 200))
        return 404, {}, {"error": {"message": f"no route {r.method} {path}"}}

    # ---- OpenAI -------------------------------------------------------------------------------
    def _openai_image(self, r: Recorded) -> tuple[int, dict[str, str], Any]:
        form = r.form()
        n = int(form.get("n", ["1"])[0])
        width, height = (int(v) for v in form.get("size", ["1024x1024"])[0].split("x"))
        item = {"b64_json": base64.b64encode(png((width, height))).decode()}
        return 200, {}, {
            "created": int(time.time()), "data": [item] * n, "background": "opaque", "output_format": "png",
            "quality": form.get("quality", ["auto"])[0], "size": f"{width}x{height}",
            "usage": {"input_tokens": 400, "output_tokens": 1056, "total_tokens": 1456,
                      "input_tokens_details": {"image_tokens": 388, "text_tokens": 12}},
        }

    def _openai_chat(self, r: Recorded) -> dict[str, Any]:
        body = r.json()
        return {
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(self._verdict())}}],
            "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT},
        }

    # ---- Anthropic ----------------------------------------------------------------------------
    def _anthropic(self, r: Recorded) -> dict[str, Any]:
        body = r.json()
        tool = (body.get("tools") or [{}])[0].get("name")
        verdict = self._verdict()
        content = ([{"type": "tool_use", "id": "toolu_1", "name": tool, "input": verdict}] if tool
                   else [{"type": "text", "text": json.dumps(verdict)}])
        return {
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT},
        }

    # ---- Gemini -------------------------------------------------------------------------------
    def _gemini(self, model: str) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": json.dumps(self._verdict())}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": USAGE_IN, "candidatesTokenCount": USAGE_OUT,
                              "totalTokenCount": USAGE_IN + USAGE_OUT},
            "modelVersion": model,
        }

    # ---- Replicate ----------------------------------------------------------------------------
    def _replicate_file(self, r: Recorded, base: str) -> dict[str, Any]:
        (filename, data, content_type), = r.form()["content"]
        file_id = f"f{len(self.files)}"
        self.files[file_id] = data
        return {"id": file_id, "name": filename, "content_type": content_type, "size": len(data),
                "etag": "x", "checksums": {}, "metadata": {}, "created_at": "2026-01-01T00:00:00Z",
                "expires_at": None, "urls": {"get": f"{base}/files/{file_id}"}}

    def _replicate_prediction(self, r: Recorded, base: str, model: str) -> dict[str, Any]:
        with self._lock:
            prediction_id = f"p{len(self.requests)}"
            self._polls[prediction_id] = self.processing_polls
        return self._prediction(prediction_id, base, model, r.json()["input"])

    def _replicate_poll(self, prediction_id: str, base: str, cancel: bool) -> dict[str, Any]:
        with self._lock:
            if cancel:
                self._polls[prediction_id] = -1
            elif self._polls.get(prediction_id, 0) > 0:
                self._polls[prediction_id] -= 1
        return self._prediction(prediction_id, base, "owner/model", {})

    def _prediction(self, prediction_id: str, base: str, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """A prediction as Replicate describes it: processing until its polls run out, then succeeded."""
        left = self._polls.get(prediction_id, 0)
        status = "canceled" if left < 0 else "processing" if left > 0 else "succeeded"
        return {
            "id": prediction_id, "model": model, "version": "hidden", "status": status, "input": inputs,
            "output": f"{base}/output/result.png" if status == "succeeded" else None, "error": None, "logs": "",
            "created_at": "2026-01-01T00:00:00Z", "urls": {"get": f"{base}/v1/predictions/{prediction_id}",
                                                         "cancel": f"{base}/v1/predictions/{prediction_id}/cancel"},
            "metrics": {"predict_time": 3.2},
        }


@contextmanager
def provider_double(verdicts: list[dict[str, Any]] | None = None) -> Iterator[ProviderDouble]:
    double = ProviderDouble(verdicts).start()
    try:
        yield double
    finally:
        double.stop()
