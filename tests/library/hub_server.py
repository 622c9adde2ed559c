"""A small Hugging Face hub on 127.0.0.1 for tests: the endpoints ``huggingface_hub`` calls.

``GET /api/models/OWNER/REPO/tree/REV[/PATH]`` (the file list), ``HEAD`` and ``GET``
``/OWNER/REPO/resolve/REV/FILE`` (metadata headers: X-Repo-Commit, ETag, Content-Length; the
body, with Range requests). Unknown repos and files get the hub's 404 with ``X-Error-Code``.
``drop_after`` makes the first GET of a file break off after that many bytes (a broken transfer);
with ``gone_after_drop`` the hub then answers nothing more (every later connection is closed at
once, as a server that went away). ``served`` counts the body bytes sent per file.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class HubState:
    """What the hub serves and what it was asked."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    """File name -> bytes sent before the first GET of it breaks off."""
    tokens: dict[str, str] = field(default_factory=dict)
    """Private repos: repo -> the token its requests must carry (else 401, as the hub answers)."""
    stall_after: dict[str, int] = field(default_factory=dict)
    """File name -> bytes sent before the GET of it waits for ``release`` (to interrupt it)."""
    release: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Range header) of every request."""
    served: dict[str, int] = field(default_factory=dict)
    """File name -> body bytes sent (every GET of it together)."""
    gone_after_drop: bool = False
    gone: bool = False
    """Set after a drop when ``gone_after_drop``: the hub closes every connection without answering."""

    def send(self, name: str, wfile: Any, data: bytes) -> None:
        """Write ``data`` of file ``name`` and count it."""
        wfile.write(data)
        self.served[name] = self.served.get(name, 0) + len(data)


def _handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _error(self, code: int, error_code: str) -> None:
            body = json.dumps({"error": error_code}).encode()
            self.send_response(code)
            self.send_header("X-Error-Code", error_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _refused(self, repo: str) -> bool:
            token = state.tokens.get(repo)
            if token is None or self.headers.get("Authorization") == f"Bearer {token}":
                return False
            self._error(401, "RepoNotFound")
            return True

        def _file(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            match = _RESOLVE.match(path)
            if match and self._refused(match.group("repo")):
                return
            if not match or match.group("repo") not in state.repos:
                self._error(404 if match else 400, "RepoNotFound")
                return
            files = state.repos[match.group("repo")]
            name = match.group("path")
            if name not in files:
                self._error(404, "EntryNotFound")
                return
            data = files[name]
            etag = hashlib.sha256(data).hexdigest()
            start = 0
            ranged = self.headers.get("Range")
            if ranged and (found := re.match(r"bytes=(\d+)-", ranged)):
                start = int(found.group(1))
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            stall = state.stall_after.get(name)
            if stall is not None:
                state.send(name, self.wfile, body[:stall])
                self.wfile.flush()
                state.stalled.set()
                state.release.wait(60)
                self.close_connection = True
                return
            cut = state.drop_after.pop(name, None)
            if cut is not None:
                state.send(name, self.wfile, body[:cut])
                self.wfile.flush()
                self.close_connection = True
                state.gone = state.gone_after_drop
                return
            state.send(name, self.wfile, body)

        def _gone(self) -> bool:
            if state.gone:
                self.close_connection = True
            return state.gone

        def do_HEAD(self) -> None:
            state.requests.append(("HEAD", self.path, self.headers.get("Range")))
            if not self._gone():
                self._file(head=True)

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path, self.headers.get("Range")))
            if self._gone():
                return
            path = unquote(urlsplit(self.path).path)
            tree = _TREE.match(path)
            if not tree:
                self._file(head=False)
                return
            if self._refused(tree.group("repo")):
                return
            if tree.group("repo") not in state.repos:
                self._error(404, "RepoNotFound")
                return
            files = state.repos[tree.group("repo")]
            listing = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in sorted(files.items())
            ]
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve_hub(state: HubState) -> Iterator[str]:
    """Serve ``state`` on 127.0.0.1 in a thread; yields the endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, name="test-hub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
