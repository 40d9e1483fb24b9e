"""Loopback receivers speaking the real wire formats: an HTTP endpoint with scripted answers, a Sentry
envelope endpoint, and an SMTP server (aiosmtpd) that requires STARTTLS with a self-signed certificate."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class HttpReceiver:
    """Answers POSTs with the scripted statuses in turn (the last one repeats) and records each request."""

    def __init__(self, statuses: list[int] | None = None, body: bytes = b"ok") -> None:
        self.statuses = list(statuses or [200])
        self.requests: list[Request] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                receiver.requests.append(Request(self.path, dict(self.headers.items()), data))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(body if status < 400 else b"error")

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
