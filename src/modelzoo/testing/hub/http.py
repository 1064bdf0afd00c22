"""The HTTP layer: a keep-alive request handler that reads each request, hands it to the hub, and
sends the :class:`~.answer.Answer` back (errors with the ``X-Error-Code``/``X-Error-Message``
headers the client turns into its typed exceptions), as a faulty network would where a
:class:`~.faults.Fault` is in force."""

from __future__ import annotations

import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from .answer import Answer, FileBody, HubError
from .faults import Fault

#: seconds a "silent" fault holds a request at most (it hangs up at once when the fault ends)
SILENT_AT_MOST = 600.0


class Hub(Protocol):
    """What the handler needs of the server it serves (:class:`~.server.HubServer`)."""

    requests: list[tuple[str, str]]
    unknown: list[tuple[str, str]]

    def handle(self, method: str, segs: list[str], query: dict, body: bytes, headers: Any) -> Answer: ...

    def _take_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None: ...


def bind(hub: Hub) -> type[Handler]:
    """A handler class that serves ``hub`` (what ``ThreadingHTTPServer`` is given)."""
    return type("BoundHandler", (Handler,), {"hub": hub})


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler: always reads the whole body and always sends Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    hub: Hub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _hang_up(self) -> None:
        """Close the connection now, as a network failure would (no answer, no orderly end)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        parts = urlsplit(self.path)
        segs = [unquote(s) for s in parts.path.split("/")[1:] if s != ""]
        query = parse_qs(parts.query)
        silent = hub._take_fault(method, parts.path, ("silent",))
        if silent is not None:  # a stalled server: the request is taken, no answer ever comes
            hub.requests.append((method, parts.path))
            silent.ended.wait(SILENT_AT_MOST)
            self._hang_up()
            return
        cut = hub._take_fault(method, parts.path, ("drop-request",))
        if cut is not None:  # a push cut off mid-upload: part of the body arrives, then nothing
            hub.requests.append((method, parts.path))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(cut.after, length) if length else 0)
            self._hang_up()
            return
        body = self._read_body()
        hub.requests.append((method, parts.path))
        try:
            answer = hub.handle(method, segs, query, body, self.headers)
        except HubError as exc:
            if exc.status == 404 and exc.message.startswith("no route"):
                hub.unknown.append((method, self.path))
            headers = {"X-Error-Message": exc.message, **exc.headers}
            if exc.code:
                headers["X-Error-Code"] = exc.code
            answer = Answer(exc.status, {"error": exc.message}, headers)
        except Exception as exc:  # a server bug: answer 400 (never 5xx: the client would retry for ~23 s)
            answer = Answer(
                400, {"error": f"hubserver bug: {type(exc).__name__}: {exc}"}, {"X-Error-Message": str(exc)}
            )
        fault = None
        if 200 <= answer.status < 300 and method == "GET":
            fault = hub._take_fault(method, parts.path, ("drop-response", "corrupt", "trickle"))
        self._send(method, answer, fault)

    def _send(self, method: str, answer: Answer, fault: Fault | None = None) -> None:
        body = answer.body
        headers = dict(answer.headers)
        if isinstance(body, FileBody):
            length = body.length
        else:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers.setdefault("Content-Type", "application/json")
            body = body or b""
            length = len(body)
        self.send_response(answer.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if method == "HEAD" or length == 0:
            return
        if fault is not None:  # the body as a faulty network delivers it
            if isinstance(body, FileBody):
                with open(body.path, "rb") as fh:
                    fh.seek(body.offset)
                    body = fh.read(body.length)
            if fault.kind == "trickle":  # a server that answers, but one byte at a time
                for i in range(len(body)):
                    try:
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(fault.after / 1000)
                return
            if fault.kind == "corrupt":
                flipped = bytearray(body)
                flipped[len(flipped) // 2] ^= 0x01
                self.wfile.write(bytes(flipped))
            else:
                self.wfile.write(body[: fault.after])
                self._hang_up()
            return
        if isinstance(body, FileBody):
            with open(body.path, "rb") as fh:
                self.connection.sendfile(fh, body.offset, body.length)
        else:
            self.wfile.write(body)
