"""Real servers on loopback for notification tests (reused by the pipeline tests).

- `HookServer`: one HTTP server standing in for Slack (incoming webhook and Web API
  `chat.postMessage`), Teams Workflows and Discord webhooks. It checks each payload the way the
  service does (and answers 400 when it would refuse it), records every request, and can be told
  to answer some requests with scripted statuses (429, 500, a redirect...).
- `smtp_server()`: aiosmtpd on a free port, optionally with AUTH and STARTTLS, recording mail.
- `make_certificate()`: a self-signed certificate for a host name, to test TLS pinning on loopback.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SLACK_WEBHOOK_PATH = "/services/T000/B000/webhooksecretpart"
TEAMS_PATH = "/workflows/abc123/triggers/manual/paths/invoke"
DISCORD_PATH = "/api/webhooks/123456/discordsecretpart"
BOT_TOKEN = "xoxb-1111-2222-botsecretpart"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Scripted:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def discord_problems(payload: Any) -> list[str]:
    """What Discord would refuse in a webhook payload (its documented embed limits)."""
    embeds = payload.get("embeds") or []
    problems = []
    if not embeds and not payload.get("content"):
        problems.append("empty message")
    if len(embeds) > 10:
        problems.append("more than 10 embeds")
    total = 0
    for embed in embeds:
        for key, limit in (("title", 256), ("description", 4096)):
            if len(embed.get(key, "")) > limit:
                problems.append(f"{key} over {limit}")
        fields = embed.get("fields", [])
        if len(fields) > 25:
            problems.append("more than 25 fields")
        for f in fields:
            if not f.get("name") or not f.get("value") or len(f["name"]) > 256 or len(f["value"]) > 1024:
                problems.append("bad field")
        total += len(embed.get("title", "")) + len(embed.get("description", ""))
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in fields)
    if total > 6000:
        problems.append("embeds over 6000 characters in all")
    return problems


def teams_problems(payload: Any) -> list[str]:
    """What a Workflows webhook would refuse: the message envelope and an Adaptive Card <= 1.4."""
    if payload.get("type") != "message" or not isinstance(payload.get("attachments"), list):
        return ["not a message envelope"]
    attachment = payload["attachments"][0]
    card = attachment.get("content") or {}
    problems = []
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        problems.append("wrong contentType")
    if card.get("type") != "AdaptiveCard":
        problems.append("not an AdaptiveCard")
    if card.get("version") not in ("1.0", "1.1", "1.2", "1.3", "1.4"):
        problems.append(f"card version {card.get('version')} not supported")
    if not card.get("body"):
        problems.append("empty card")
    return problems


def slack_problems(payload: Any) -> list[str]:
    problems = []
    if not payload.get("text") and not payload.get("blocks"):
        problems.append("no_text")
    blocks = payload.get("blocks") or []
    if len(blocks) > 50 or any(not isinstance(b, dict) or "type" not in b for b in blocks):
        problems.append("invalid_blocks")
    for block in blocks:
        if block.get("type") == "header" and len(block["text"]["text"]) > 150:
            problems.append("invalid_blocks")
        if block.get("type") == "section" and len((block.get("text") or {}).get("text", "")) > 3000:
            problems.append("invalid_blocks")
    return problems


class HookServer:
    """Slack, Teams and Discord on http://127.0.0.1:PORT. Use as a context manager."""

    def __init__(self, bot_token: str = BOT_TOKEN) -> None:
        self.bot_token = bot_token
        self.requests: list[Received] = []
        self._script: list[tuple[str, Scripted]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    @property
    def slack_webhook(self) -> str:
        return self.url(SLACK_WEBHOOK_PATH)

    @property
    def slack_api(self) -> str:
        return self.url("/api/")

    @property
    def teams_webhook(self) -> str:
        return self.url(TEAMS_PATH)

    @property
    def discord_webhook(self) -> str:
        return self.url(DISCORD_PATH)

    def script(self, path_prefix: str, *responses: Scripted) -> None:
        """Answer the next requests under `path_prefix` with these, in order, before the default."""
        with self._lock:
            self._script.extend((path_prefix, r) for r in responses)

    def received(self, path_prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def __enter__(self) -> HookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next_scripted(self, path: str) -> Scripted | None:
        with self._lock:
            for i, (prefix, response) in enumerate(self._script):
                if path.startswith(prefix):
                    del self._script[i]
                    return response
        return None

    def answer(self, received: Received) -> Scripted:
        scripted = self._next_scripted(received.path)
        if scripted is not None:
            return scripted
        path = received.path.split("?", 1)[0]
        try:
            payload = received.json
        except ValueError:
            return Scripted(400, b"invalid_payload")
        if path.startswith("/services/"):
            problems = slack_problems(payload)
            return Scripted(400, problems[0].encode()) if problems else Scripted(200, b"ok")
        if path == "/api/chat.postMessage":
            if received.headers.get("authorization") != f"Bearer {self.bot_token}":
                return self._json(200, {"ok": False, "error": "invalid_auth"})
            if payload.get("channel") in (None, "", "#missing"):
                return self._json(200, {"ok": False, "error": "channel_not_found"})
            problems = slack_problems(payload)
            if problems:
                return self._json(200, {"ok": False, "error": problems[0]})
            return self._json(200, {"ok": True, "channel": "C0TESTCHAN", "ts": "1700000000.000100"})
        if path.startswith("/workflows/"):
            problems = teams_problems(payload)
            return self._json(400, {"error": problems}) if problems else Scripted(202)
        if path.startswith("/api/webhooks/"):
            problems = discord_problems(payload)
            return self._json(400, {"code": 50035, "message": problems}) if problems else Scripted(204)
        return Scripted(404, b"not found")

    @staticmethod
    def _json(status: int, body: Any) -> Scripted:
        return Scripted(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received = Received(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                with server._lock:
                    server.requests.append(received)
                response = server.answer(received)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        return Handler


# ---------------------------------------------------------------------------- SMTP
def free_port() -> int:
    """A free TCP port on 127.0.0.1 (aiosmtpd's Controller cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    authenticated_as: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.content, policy=policy.default)  # type: ignore[return-value]


@dataclass
class SmtpServer:
    host: str
    port: int
    mails: list[Mail]

    @property
    def origin(self) -> str:
        return f"smtp://{self.host}:{self.port}"


@contextmanager
def smtp_server(
    *,
    username: str | None = None,
    password: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    reply_code: int | None = None,
) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1. With `username`, AUTH is required; with `tls_context`, STARTTLS
    is offered and required; with `implicit_tls`, the port speaks TLS from the start (465-style);
    `reply_code` (e.g. 451) makes DATA fail with that code."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    mails: list[Mail] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if reply_code is not None:
                return f"{reply_code} try again later"
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            tls = session.ssl is not None or implicit_tls is not None
            mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, login, tls))
            return "250 Message accepted for delivery"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == username
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    options: dict[str, Any] = {}
    if username:
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls_context is not None)
    if implicit_tls is not None:
        options.update(ssl_context=implicit_tls)
    if tls_context is not None:
        options.update(tls_context=tls_context, require_starttls=True)
    else:
        options.update(auth_require_tls=False)
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, mails)
    finally:
        controller.stop()


# ---------------------------------------------------------------------------- TLS
@dataclass
class Certificate:
    hostname: str
    cert_file: Path
    key_file: Path
    pem: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this certificate (and checks host names)."""
        return ssl.create_default_context(cadata=self.pem)


def make_certificate(hostname: str, directory: Path) -> Certificate:
    """A self-signed certificate valid for `hostname` only."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file = directory / f"{hostname}.crt"
    key_file = directory / f"{hostname}.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(hostname, cert_file, key_file, pem)


@contextmanager
def https_server(certificate: Certificate) -> Iterator[HookServer]:
    """A HookServer speaking TLS with `certificate` (on 127.0.0.1)."""
    server = HookServer()
    server._server.socket = certificate.server_context().wrap_socket(server._server.socket, server_side=True)
    with server:
        yield server
