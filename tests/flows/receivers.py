"""Real local receivers for alert channels: a Slack-shaped HTTPS endpoint and an SMTP server.

Slack: Prefect's SlackWebhook block only sends to https://hooks.slack.com, so the test gives
the Prefect server an HTTPS proxy (HTTPS_PROXY) that accepts CONNECT to hooks.slack.com:443
only and answers it with a certificate for hooks.slack.com from a throwaway CA the server
trusts (REQUESTS_CA_BUNDLE). The block, its URL and the bytes it sends are exactly what
production sends to Slack; the receiver checks them as Slack would (path, JSON, a message).

Email: aiosmtpd, a real SMTP server, on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import json
import socketserver
import ssl
import threading
import time
from email.message import Message
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import free_port

SLACK_HOST = "hooks.slack.com"
SLACK_TOKENS = ("T00POSGUARD", "B00ALERTS", "xQ3posguardTestToken")
SLACK_URL = f"https://{SLACK_HOST}/services/{'/'.join(SLACK_TOKENS)}"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path, host: str = SLACK_HOST) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signed for `host`: (ca, cert, key) files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("posguard test CA"))
        .issuer_name(_name("posguard test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / f"{host}.pem", folder / f"{host}.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class _SlackHandler(BaseHTTPRequestHandler):
    """Answers like Slack's incoming webhooks: 200 "ok", or 4xx with Slack's error words."""

    server: _Gateway

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        gateway = self.server
        if self.path.rstrip("/") != "/services/" + "/".join(SLACK_TOKENS):
            self._answer(404, b"no_service")
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._answer(400, b"invalid_payload")
            return
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            self._answer(400, b"invalid_payload")
            return
        if not isinstance(payload, dict):
            self._answer(400, b"invalid_payload")
            return
        texts = slack_texts(payload)
        if not texts:
            self._answer(400, b"no_text")
            return
        gateway.received.append({"payload": payload, "text": "\n".join(texts)})
        self._answer(200, b"ok")

    def _answer(self, status: int, body: bytes) -> None:
        if status != 200:
            self.server.refused.append(f"{status} {body.decode()} {self.path}")
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def slack_texts(payload: dict[str, Any]) -> list[str]:
    """What a Slack message shows: its text, its attachments' titles and texts, its blocks'
    texts (with Slack's three escapes undone, as Slack displays them); empty when Slack would
    answer no_text."""
    return [_unescape(text) for text in _slack_texts(payload)]


def _unescape(text: str) -> str:
    # Slack's message formatting escapes only these; senders must (apprise does).
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _slack_texts(payload: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    if isinstance(payload.get("text"), str) and payload["text"].strip():
        texts.append(payload["text"])
    for attachment in payload.get("attachments") or []:
        if not isinstance(attachment, dict):
            continue
        for field in ("title", "text", "fallback"):
            if isinstance(attachment.get(field), str) and attachment[field].strip():
                texts.append(attachment[field])
        texts += _block_texts(attachment.get("blocks") or [])
    texts += _block_texts(payload.get("blocks") or [])
    return texts


def _block_texts(blocks: list[Any]) -> list[str]:
    found: list[str] = []
    for block in blocks:
        text = block.get("text") if isinstance(block, dict) else None
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            found.append(text["text"])
    return found


class _TunnelHandler(socketserver.BaseRequestHandler):
    """An HTTPS proxy that tunnels nothing: CONNECT to hooks.slack.com is answered here."""

    server: _Gateway

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if method != "CONNECT" or target != f"{SLACK_HOST}:443":
            self.server.refused.append(f"proxy refused {method} {target}")
            self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with self.server.tls.wrap_socket(self.request, server_side=True) as tls:
            _SlackHandler(tls, self.client_address, self.server)  # type: ignore[arg-type]


class _Gateway(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _TunnelHandler)
        self.tls = tls
        self.received: list[dict[str, Any]] = []
        self.refused: list[str] = []


class SlackGateway:
    """The proxy and Slack-shaped receiver; `server_env` is what the Prefect server needs."""

    def __init__(self, folder: Path) -> None:
        self.ca, cert, key = make_certificates(folder)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self._server = _Gateway(tls)
        self.proxy_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def received(self) -> list[dict[str, Any]]:
        return self._server.received

    @property
    def refused(self) -> list[str]:
        return self._server.refused

    def server_env(self) -> dict[str, str]:
        return {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            # The server's own API calls stay direct.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": str(self.ca),
        }

    def __enter__(self) -> SlackGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpInbox:
    """aiosmtpd on 127.0.0.1: every message it accepted, parsed. With `tls` (a server
    context) it requires STARTTLS; with `login` (user, password) it requires that login."""

    def __init__(
        self, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None
    ) -> None:
        self._inbox = _Inbox()
        self.port = free_port()
        options: dict[str, Any] = {}
        if tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if login is not None:
            options.update(authenticator=_Authenticator(*login), auth_require_tls=True)
        self._controller = Controller(self._inbox, hostname="127.0.0.1", port=self.port, **options)

    @property
    def messages(self) -> list[Message]:
        return self._inbox.messages

    def __enter__(self) -> SmtpInbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


class _Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.expected = (user.encode(), password.encode())

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == self.expected
        return AuthResult(success=ok, handled=False)


def wait_for(found: Any, timeout: float = 90) -> Any:
    """Poll `found()` until it returns something truthy (alerts arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        result = found()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)
