"""Loopback HTTP servers that play the providers' APIs for the simulated company.

One `Sandbox` per provider, each on 127.0.0.1 and a free port, serving routes an API module
registers (`statex_bi/demo/apis/<provider>.py`). The same servers back `statex-bi demo` and the
tests. Faults are injected on request, from Python (`sandbox.inject(...)`) or over HTTP
(`POST /_sandbox/faults {"kind": "429", "times": 2, "path": "/v1/charges"}`):

    429          Too Many Requests with Retry-After: 1
    429-bare     Too Many Requests without Retry-After
    500, 503     server errors
    slow         the response is delayed by `delay` seconds (default 2)
    truncated    a 200 whose JSON body is cut in half
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("429", "429-bare", "500", "503", "slow", "truncated")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Response]
# Returns an error Response when credentials are wrong, None when they are fine.
AuthCheck = Callable[[Request], Response | None]


@dataclass
class Fault:
    kind: str
    times: int = 1
    path: str | None = None
    delay: float = 2.0


class Sandbox:
    """A provider's API on loopback. Use as a context manager, or `start()` / `stop()`."""

    def __init__(
        self,
        name: str,
        auth: AuthCheck | None = None,
        error_body: Callable[[int], Any] | None = None,
        headers: Callable[[Request, int], dict[str, str]] | None = None,
    ):
        self.name = name
        self.auth = auth
        self.error_body = error_body or (lambda status: {"error": {"code": status, "message": "sandbox fault"}})
        # Headers the provider puts on every response, faults included (e.g. rate-limit counters).
        self.headers = headers
        self.routes: list[tuple[str, re.Pattern, Handler, bool]] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []  # every request served, for tests
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, pattern: str, *, public: bool = False) -> Callable[[Handler], Handler]:
        """Register a handler for METHOD and a path regex (matched in full against the path alone)."""

        def register(handler: Handler) -> Handler:
            self.routes.append((method.upper(), re.compile(pattern), handler, public))
            return handler

        return register

    def inject(self, kind: str, times: int = 1, path: str | None = None, delay: float = 2.0) -> None:
        """Make the next `times` requests (to paths starting with `path`) fail with `kind`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self.faults.append(Fault(kind, times, path, delay))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path is None or path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"sandbox {self.name} is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Sandbox:
        sandbox = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY each keep-alive response
            # waits ~40 ms for the client's delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet: tests and demo print their own lines
                pass

            def _serve(self) -> None:
                sandbox._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sandbox-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        request = Request(
            method=http.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=http.rfile.read(length) if length else b"",
        )
        response = self._dispatch(request)
        if self.headers is not None:
            response.headers = {**self.headers(request, response.status), **response.headers}
        body = response.encode()
        http.send_response(response.status)
        http.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            http.send_header(key, value)
        if response.headers.get("X-Sandbox-Truncated"):
            # Promise the whole body, send half, close: what a dropped connection looks like.
            http.send_header("Content-Length", str(len(body)))
            http.send_header("Connection", "close")
            http.end_headers()
            http.wfile.write(body[: len(body) // 2])
            http.close_connection = True
            return
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)

    def _dispatch(self, request: Request) -> Response:
        if request.path == "/_sandbox/faults" and request.method == "POST":
            spec = request.json()
            self.inject(spec["kind"], int(spec.get("times", 1)), spec.get("path"), float(spec.get("delay", 2.0)))
            return Response(201, {"injected": spec})
        for method, pattern, handler, public in self.routes:
            match = pattern.fullmatch(request.path)
            if method != request.method or not match:
                continue
            request.match = match
            if not public and self.auth is not None:
                denied = self.auth(request)
                if denied is not None:
                    return denied
            with self._lock:
                self.requests.append(request)
            fault = self._take_fault(request.path)
            if fault is not None:
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                elif fault.kind in ("429", "429-bare"):
                    headers = {"Retry-After": "1"} if fault.kind == "429" else {}
                    return Response(429, self.error_body(429), headers)
                elif fault.kind in ("500", "503"):
                    return Response(int(fault.kind), self.error_body(int(fault.kind)))
            response = handler(request)
            if fault is not None and fault.kind == "truncated":
                response.headers["X-Sandbox-Truncated"] = "1"
            return response
        return Response(404, self.error_body(404))
