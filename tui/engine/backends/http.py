"""HTTP plumbing shared by the server backends: one-line server errors and a cancellable SSE stream.

The stream is read on a helper thread and handed over through a queue, so the engine's loop can
watch its ``cancel`` event (and live parameter changes) while the server is silent: a slow first
byte never blocks Esc. Cancelling shuts the connection's socket down, which both wakes the reader
and tells the server to stop generating (llama-server ends the task when its client goes away).
"""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import certifi
import httpx
from httpx_sse import SSEError, connect_sse

from tui.engine.events import EngineError

CONNECT_TIMEOUT_S = 5.0
POLL_S = 0.05
"""How often a waiting stream looks at the cancel event."""
MESSAGE_CHARS = 300


class ServerError(EngineError):
    """A server answered with an error, or could not be reached; ``message`` is for the user."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


def short(text: str, limit: int = MESSAGE_CHARS) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def server_message(body: bytes | str) -> str:
    """The server's own error message from a JSON error body (llama-server, OpenAI, vLLM, Ollama shapes)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        data: Any = json.loads(text)
    except ValueError:
        return short(text) or "(empty body)"
    if isinstance(data, Mapping):
        error = data.get("error", data)
        if isinstance(error, Mapping):
            message = error.get("message") or error.get("detail") or error.get("msg")
            if message:
                return short(str(message))
        elif isinstance(error, str) and error:
            return short(error)
        if data.get("message"):
            return short(str(data["message"]))
        if data.get("detail"):
            return short(str(data["detail"]))
    return short(text)


def http_failure(response: httpx.Response, what: str) -> ServerError:
    """A ServerError for a 4xx/5xx answer, quoting the server's message."""
    hint = ""
    if response.status_code in (401, 403):
        hint = "Check the API key (TOKENDIAL_API_KEY or api_key_file)."
    elif response.status_code == 404:
        hint = "Check --server-url and --server-model."
    return ServerError(
        f"{what}: HTTP {response.status_code} from {response.url.host}:{response.url.port}: "
        f"{server_message(response.content)}",
        hint,
        status=response.status_code,
    )


def unreachable(url: str, exc: Exception) -> ServerError:
    """A ServerError for a server that can't be reached (refused, unknown host, timeout...)."""
    cause = short(str(exc)) or type(exc).__name__
    return ServerError(
        f"cannot reach the server at {url}: {cause}",
        "Is it running? Check --server-url; retry once it is up.",
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client (building one reads the CA bundle: tens of ms per stream)."""
    return ssl.create_default_context(cafile=certifi.where())


def make_client(base_url: str, headers: Mapping[str, str], read_timeout_s: float | None) -> httpx.Client:
    """A client for one server (no environment proxies: the URL is used as given)."""
    timeout = httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S)
    return httpx.Client(
        base_url=base_url, headers=dict(headers), timeout=timeout, trust_env=False, verify=_tls()
    )


def request_json(client: httpx.Client, method: str, path: str, what: str, body: Any = None) -> Any:
    """One JSON request; raises ServerError with the server's message on any failure."""
    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise unreachable(str(client.base_url), exc) from None
    if response.status_code >= 400:
        raise http_failure(response, what)
    try:
        return response.json()
    except ValueError:
        raise ServerError(f"{what}: the server's answer is not JSON: {short(response.text)}") from None


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event's data, parsed as JSON (None for a non-JSON ``data`` like ``[DONE]``)."""

    data: Any
    raw: str


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream ended: cleanly (``error`` None) or with the cause."""

    error: ServerError | None


class Waiting:
    """Nothing arrived within a poll interval (lets the caller look at cancel and live params)."""


WAITING = Waiting()


class SseStream:
    """One POST whose answer is an SSE stream, read on a helper thread; iterate, then :meth:`close`.

    ``client`` is the stream's own (closed with it): a fresh connection, whose socket the trace hook
    catches so that :meth:`close` can shut it down even before the first byte.
    """

    def __init__(self, client: httpx.Client, path: str, body: Any, what: str) -> None:
        self._client = client
        self._path = path
        self._body = body
        self._what = what
        self._items: queue.Queue[StreamEvent | StreamEnded] = queue.Queue()
        self._sock: socket.socket | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="tokendial-sse", daemon=True)
        self._thread.start()

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                self._sock = sock
                if self._closed.is_set():  # closed while connecting
                    self._shutdown()

    def _read(self) -> None:
        url = str(self._client.base_url).rstrip("/") + self._path
        try:
            with connect_sse(
                self._client, "POST", self._path, json=self._body, extensions={"trace": self._trace}
            ) as source:
                response = source.response
                if response.status_code >= 400:
                    response.read()
                    self._items.put(StreamEnded(http_failure(response, self._what)))
                    return
                for sse in source.iter_sse():
                    if self._closed.is_set():
                        return
                    try:
                        data = json.loads(sse.data) if sse.data else None
                    except ValueError:
                        data = None
                    self._items.put(StreamEvent(data, sse.data))
            self._items.put(StreamEnded(None))
        except SSEError as exc:
            self._items.put(StreamEnded(ServerError(f"{self._what}: not an event stream: {short(str(exc))}")))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self._items.put(StreamEnded(unreachable(url, exc)))
        except (httpx.HTTPError, OSError, ValueError) as exc:
            if not self._closed.is_set():
                cause = short(str(exc)) or type(exc).__name__
                self._items.put(StreamEnded(ServerError(f"the connection to the server broke: {cause}")))
        finally:
            self._client.close()

    def items(self) -> Iterator[StreamEvent | StreamEnded | Waiting]:
        """Events as they come, WAITING every poll interval without one, then one StreamEnded."""
        while True:
            try:
                item = self._items.get(timeout=POLL_S)
            except queue.Empty:
                yield WAITING
                continue
            yield item
            if isinstance(item, StreamEnded):
                return

    def _shutdown(self) -> None:
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop reading and drop the connection (the server sees its client go away)."""
        self._closed.set()
        self._shutdown()
        self._thread.join(timeout=2.0)
