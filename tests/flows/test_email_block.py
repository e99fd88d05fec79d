"""posguard's SMTP notification block against aiosmtpd: STARTTLS, login, failures."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from prefect.blocks.abstract import NotificationError

from deployments.notifications import SmtpEmail
from tests.flows.receivers import SmtpInbox, make_certificates
from tests.helpers import free_port


def block(port: int, **options: object) -> SmtpEmail:
    fields: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "sender": "posguard@example.test",
        "recipients": ["desk@example.test"],
        "timeout_seconds": 10,
        **options,
    }
    return SmtpEmail(**fields)  # type: ignore[arg-type]


def send(email: SmtpEmail, body: str, subject: str) -> None:
    with email.raise_on_failure():
        asyncio.run(email.notify(body, subject))


def test_starttls_and_login_then_one_plain_text_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = make_certificates(tmp_path, "127.0.0.1")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the block verifies the server's certificate
    with SmtpInbox(tls=server_tls, login=("alerts", "s3cret-pw")) as inbox:
        email = block(inbox.port, username="alerts", password="s3cret-pw")
        send(email, "DOGE-USDT-SWAP net cross: lever is unknown", "posguard: lever > 0 failed")
    (message,) = inbox.messages
    assert message["Subject"] == "posguard: lever > 0 failed"
    assert message["X-Envelope-To"] == "desk@example.test"
    assert message.get_content().strip() == "DOGE-USDT-SWAP net cross: lever is unknown"  # type: ignore[attr-defined]


def test_a_wrong_password_is_a_notification_error_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = make_certificates(tmp_path, "127.0.0.1")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    with SmtpInbox(tls=server_tls, login=("alerts", "s3cret-pw")) as inbox:
        email = block(inbox.port, username="alerts", password="not-the-password")
        with pytest.raises(NotificationError) as failed:
            send(email, "body", "subject")
    assert "SMTPAuthenticationError" in failed.value.log
    assert f"127.0.0.1:{inbox.port}" in failed.value.log
    assert "not-the-password" not in failed.value.log
    assert inbox.messages == []


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    _, cert, key = make_certificates(tmp_path, "127.0.0.1")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    with SmtpInbox(tls=server_tls) as inbox, pytest.raises(NotificationError) as failed:
        send(block(inbox.port), "body", "subject")
    assert "CERTIFICATE_VERIFY_FAILED" in failed.value.log
    assert inbox.messages == []


def test_no_server_is_a_notification_error_naming_it() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(NotificationError) as failed:
        send(block(port, security="none"), "body", "subject")
    assert f"email to desk@example.test through 127.0.0.1:{port} failed" in failed.value.log
