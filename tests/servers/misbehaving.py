"""A tiny HTTP server on 127.0.0.1 that misbehaves on purpose, in front of a real llama-server.

Every request is passed to the real server except the streaming ones (``/completion``,
``/v1/chat/completions``), which the chosen ``Fault`` answers: an HTTP error with a JSON message,
a malformed or truncated stream, a slow first byte, the real stream with the probabilities
stripped (a server that ignores ``n_probs``), or a scripted chat-completions stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class Fault(Enum):
    """How the streaming endpoint misbehaves."""

    HTTP_500 = "http_500"
    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    SLOW_FIRST_BYTE = "slow_first_byte"
    NO_PROBS = "no_probs"
    SCRIPTED = "scripted"


@dataclass
class Misbehaving:
    """The running fake; set ``fault`` (and ``script`` for SCRIPTED) before each request."""

    upstream: str
    fault: Fault = Fault.HTTP_500
    script: list[str] = field(default_factory=list)
    """SCRIPTED: the raw ``data:`` payloads to send, in order."""
    delay_s: float = 5.0
    server: ThreadingHTTPServer | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    """The JSON bodies of the streaming requests received."""
    first_byte_sent: threading.Event = field(default_factory=threading.Event)
    """Set when a slow stream finally answers."""

    @property
    def url(self) -> str:
        """Its base URL."""
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Misbehaving:
        """Serve on a free port in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._proxy("GET", None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path in ("/completion", "/v1/chat/completions"):
                    fake.requests.append(json.loads(body or b"{}"))
                    self._misbehave(body)
                else:
                    self._proxy("POST", body)

            def _proxy(self, method: str, body: bytes | None) -> None:
                answer = httpx.request(method, fake.upstream + self.path, content=body, timeout=30.0)
                self._send(
                    answer.status_code, answer.content, answer.headers.get("content-type", "text/plain")
                )

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _start_stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()

            def _event(self, payload: str) -> None:
                self.wfile.write(f"data: {payload}\n\n".encode())
                self.wfile.flush()

            def _misbehave(self, body: bytes) -> None:
                self.close_connection = True
                fault = fake.fault
                if fault is Fault.HTTP_500:
                    error = {"error": {"code": 500, "message": "the GPU caught fire", "type": "server_error"}}
                    self._send(500, json.dumps(error).encode(), "application/json")
                    return
                if fault is Fault.SLOW_FIRST_BYTE:
                    time.sleep(fake.delay_s)
                    fake.first_byte_sent.set()
                self._start_stream()
                if fault is Fault.SCRIPTED:
                    for payload in fake.script:
                        self._event(payload)
                    return
                upstream = list(_upstream_events(fake.upstream + self.path, body))
                if fault is Fault.MALFORMED:
                    for payload in upstream[:3]:
                        self._event(payload)
                    self._event('{"content": "x", "tokens": [1')
                    return
                if fault is Fault.TRUNCATED:
                    for payload in upstream[:4]:
                        self._event(payload)
                    return  # the connection closes without the final event
                for payload in upstream:  # NO_PROBS and SLOW_FIRST_BYTE: the real stream, maybe stripped
                    if fault is Fault.NO_PROBS and payload.startswith("{"):
                        data = json.loads(payload)
                        data.pop("completion_probabilities", None)
                        payload = json.dumps(data)
                    self._event(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="misbehaving", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _upstream_events(url: str, body: bytes) -> Iterator[str]:
    """The real server's stream, as the ``data:`` payloads."""
    with httpx.stream("POST", url, content=body, timeout=60.0) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                yield line[len("data: ") :]
