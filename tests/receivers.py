"""Loopback receivers speaking the real wire formats: an HTTP endpoint with scripted answers, a Sentry
envelope endpoint, PagerDuty's Events API v2 and Twilio's Messages API (validating requests as the real
services document), an endpoint that never answers, and an SMTP server (aiosmtpd) that requires STARTTLS
with a self-signed certificate."""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


# An API's answer to one request: status and JSON body.
Responder = Callable[[Request], tuple[int, dict[str, Any]]]


class HttpReceiver:
    """Answers POSTs with the scripted statuses in turn (the last one repeats) and records each request.
    With `respond`, a scripted status of 0 (the default) lets that API answer instead. With `echo_path`,
    an error answer quotes the request's path, as Express's "Cannot POST /path" does."""

    def __init__(
        self, statuses: list[int] | None = None, body: bytes = b"ok", respond: Responder | None = None,
        echo_path: bool = False,
    ) -> None:
        self.statuses = list(statuses or [0 if respond else 200])
        self.requests: list[Request] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                request = Request(self.path, dict(self.headers.items()), data)
                receiver.requests.append(request)
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                if respond and not status:
                    status, answer = respond(request)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps(answer).encode())
                    return
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                error = f"Cannot POST {self.path}".encode() if echo_path else b"error"
                self.wfile.write(body if status < 400 else error)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/T000/B000"

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/42"

    def envelope_items(self) -> list[tuple[dict, dict]]:
        """(item header, payload) of every Sentry envelope received."""
        items = []
        for request in self.requests:
            _, _, rest = request.body.partition(b"\n")
            while rest.strip():
                header_line, _, rest = rest.partition(b"\n")
                header = json.loads(header_line)
                if "length" in header:
                    payload, rest = rest[: header["length"]], rest[header["length"]:].lstrip(b"\n")
                else:
                    payload, _, rest = rest.partition(b"\n")
                items.append((header, json.loads(payload)))
        return items

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class PagerDutyEvents:
    """PagerDuty's Events API v2 (`POST /v2/enqueue`) as documented: validates each event, answers 202 or
    400 with PagerDuty's bodies, and keeps the incidents: a trigger opens one per (routing key, dedup key)
    unless it is open, a resolve closes an open one and is otherwise dropped."""

    open: set[tuple[str, str]] = field(default_factory=set)
    log: list[tuple[str, str]] = field(default_factory=list)  # (action, dedup_key) of each accepted event

    def __call__(self, request: Request) -> tuple[int, dict[str, Any]]:
        errors = []
        try:
            event = json.loads(request.body)
        except ValueError:
            event, errors = {}, ["Invalid JSON"]
        if request.path != "/v2/enqueue":
            errors.append(f"Unknown path {request.path}")
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            errors.append("Content-Type must be application/json")
        if not (isinstance(event.get("routing_key"), str) and len(event["routing_key"]) == 32):
            errors.append("'routing_key' is missing or not 32 characters")
        action, key = event.get("event_action"), event.get("dedup_key")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        if key is not None and (not isinstance(key, str) or len(key) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not key:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        payload = event.get("payload") or {}
        if action == "trigger":
            if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
                errors.append("'payload.summary' is missing or longer than 1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        key = key or uuid.uuid4().hex
        incident = (event["routing_key"], key)
        if action == "trigger":
            self.open.add(incident)
        elif action == "resolve":
            self.open.discard(incident)
        self.log.append((action, key))
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}


@dataclass
class TwilioMessages:
    """Twilio's Messages API (`POST /2010-04-01/Accounts/{Sid}/Messages.json`): HTTP Basic with the account
    SID and auth token, a form body with To, From or MessagingServiceSid, and Body; answers 201 with the
    message resource or Twilio's error object (20003, 21211, 21602, 21604, 21617)."""

    account_sid: str
    auth_token: str
    sent: list[dict[str, str]] = field(default_factory=list)

    def _error(self, status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
        return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status}

    def __call__(self, request: Request) -> tuple[int, dict[str, Any]]:
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {credentials}":
            return self._error(401, 20003, "Authenticate")
        if request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return self._error(404, 20404, "The requested resource was not found")
        if request.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return self._error(400, 21604, "A 'To' phone number is required.")  # a JSON body reads as empty
        form = {name: values[0] for name, values in parse_qs(request.body.decode()).items()}
        to = form.get("To", "")
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not re.fullmatch(r"\+[1-9]\d{1,14}", to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        body = form.get("Body", "")
        if not body:
            return self._error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        self.sent.append(form)
        sid = f"SM{uuid.uuid4().hex}"
        return 201, {"sid": sid, "account_sid": self.account_sid, "to": to, "from": form.get("From"),
                     "messaging_service_sid": form.get("MessagingServiceSid"), "body": body, "status": "queued",
                     "num_segments": str(-(-len(body) // 153)), "direction": "outbound-api",
                     "api_version": "2010-04-01", "error_code": None, "error_message": None,
                     "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"}


class HangingReceiver:
    """Accepts connections and reads the request, then never answers (a server that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> HangingReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()
        for connection in self.connections:
            connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpReceiver:
    """aiosmtpd on loopback requiring STARTTLS (self-signed CA from trustme) and AUTH over TLS only."""

    tmp: Path
    user: str = "ses-smtp-user"
    password: str = "ses-smtp-password-123"
    reply: str | None = None  # a reply to DATA instead of accepting, e.g. "451 4.3.0 try later"
    messages: list[Any] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    data_attempts: int = 0

    def __enter__(self) -> SmtpReceiver:
        import trustme
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = self.tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        server_context = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
        cert.configure_cert(server_context)
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                receiver.data_attempts += 1
                if receiver.reply:
                    return receiver.reply
                from email import message_from_bytes

                receiver.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                          message_from_bytes(envelope.content)))
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and data.login.decode() == receiver.user \
                and data.password.decode() == receiver.password
            receiver.logins.append((data.login.decode(), bool(session.ssl)))
            return AuthResult(success=ok)

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=server_context,
                                     require_starttls=True, authenticator=authenticator, auth_require_tls=True)
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()


class SlowDrip:
    """A TCP server on loopback that drips its answer one byte every `interval` seconds to each client.

    `listen_first`: read the client's first bytes before answering (HTTP), else greet at once (an SMTP
    banner). Each byte arrives well within any socket timeout, so only a deadline on the whole
    exchange ends it.
    """

    def __init__(self, answer: bytes, interval: float = 0.05, listen_first: bool = True) -> None:
        self.answer, self.interval, self.listen_first = answer, interval, listen_first
        self.clients = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/services/T000/B000/slow"
        self.stopped = threading.Event()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.clients += 1
            threading.Thread(target=self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        with client:
            try:
                if self.listen_first:
                    client.recv(65536)
                for byte in self.answer:
                    if self.stopped.wait(self.interval):
                        return
                    client.sendall(bytes([byte]))
            except OSError:
                return

    def __enter__(self) -> SlowDrip:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        self.sock.close()
