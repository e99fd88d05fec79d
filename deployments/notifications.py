"""posguard's email notification block: alerts over SMTP, sent by the Prefect server itself.

Prefect's core has no SMTP notification block (SendgridEmail needs the internet; prefect-email
has no block that can notify). Automations run in the server's process, so the block they
send through must be importable there: posguard declares this module as a Prefect
collection (the `prefect.collections` entry point in pyproject.toml), which every Prefect
process of the environment posguard is installed in (`prefect server start`, workers) imports
when it looks a block type up. Email thus takes the same path as the webhook and Slack: event
-> automation -> notification block; no extra process to keep running.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from prefect.blocks.abstract import NotificationBlock, NotificationError
from pydantic import Field, SecretStr


class SmtpEmail(NotificationBlock):
    """Sends each notification as a plain-text email through an SMTP server."""

    _block_type_name = "posguard SMTP Email"
    _block_type_slug = "posguard-smtp-email"
    _description = "Email notifications through an SMTP server (posguard alerts)."

    smtp_host: str = Field(description="SMTP server host name or address.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="starttls (port 587), ssl (implicit TLS, port 465) or none (plain).",
    )
    username: str | None = Field(default=None, description="Login, if the server wants one.")
    password: SecretStr | None = Field(default=None, description="Password of the login.")
    sender: str = Field(description="From address.")
    recipients: list[str] = Field(min_length=1, description="To addresses.")
    timeout_seconds: float = Field(default=30.0, gt=0)

    def message(self, body: str, subject: str | None) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = subject or "posguard alert"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain="posguard")
        message.set_content(body)
        return message

    def send(self, message: EmailMessage) -> None:
        """One SMTP session for one message; SMTP and network errors propagate."""
        context = ssl.create_default_context()
        server: smtplib.SMTP
        if self.security == "ssl":
            server = smtplib.SMTP_SSL(
                self.smtp_host, self.smtp_port, timeout=self.timeout_seconds, context=context
            )
        else:
            server = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds)
        with server:
            if self.security == "starttls":
                server.starttls(context=context)
            if self.username:
                password = self.password.get_secret_value() if self.password else ""
                server.login(self.username, password)
            server.send_message(message)

    async def notify(self, body: str, subject: str | None = None) -> None:
        try:
            await asyncio.to_thread(self.send, self.message(body, subject))
        except (smtplib.SMTPException, OSError) as exc:
            # Names the server and the failure; smtplib's errors never hold the password.
            log = (
                f"email to {', '.join(self.recipients)} through {self.smtp_host}:"
                f"{self.smtp_port} failed: {type(exc).__name__}: {exc}"
            )
            self.logger.error(log)
            if self._raise_on_failure:
                raise NotificationError(log=log) from exc
