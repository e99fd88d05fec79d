"""Every alert kind reaches every channel, end to end, against real receivers on 127.0.0.1.

flows -> Prefect events -> automations (in a `prefect server start` of its own, so its
process can be given the Slack gateway) -> notification blocks -> webhook receiver,
Slack-shaped HTTPS endpoint (Prefect's SlackWebhook, unchanged) and SMTP server (aiosmtpd,
through posguard's SmtpEmail block, which the server imports as a Prefect collection).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

from deployments.alerting import RULES, ensure_alerting
from deployments.receiver import AlertReceiver
from deployments.server import PrefectServer
from flows import recalculate_leverage, reconcile_positions
from posguard.sim import SimExchange, SimServer
from tasks.context import reload_settings, settings
from tasks.ratelimit import HOST_LIMITER
from tests.flows.helpers import advance, seed_bot_writes
from tests.flows.receivers import SLACK_URL, SlackGateway, SmtpInbox, free_port, wait_for
from tests.sim.conftest import MAIN, shipped

RECIPIENTS = ["desk@example.test", "risk@example.test"]

# What each alert kind says in every channel (subject lines of the automations).
KINDS = {
    "failed expectation": "lever > 0 failed for DOGE-USDT-SWAP (main)",
    "confirmed drift": "DRIFT_REMOVE confirmed for BTC-USDT-SWAP (main)",
    "escalation": "DRIFT_REMOVE of BTC-USDT-SWAP still unresolved, escalated (main)",
    "leverage change": "leverage of XRP-USDT-SWAP (cross) changed 5x -> ",
}


@dataclass
class Channels:
    webhook: AlertReceiver
    slack: SlackGateway
    smtp: SmtpInbox
    folder: Path

    def texts(self) -> dict[str, list[str]]:
        return {
            "webhook": [f"{r.get('subject')}\n{r.get('body')}" for r in self.webhook.received],
            "slack": [r["text"] for r in self.slack.received],
            "email": [
                f"{m['Subject']}\n{m.get_content()}"  # type: ignore[attr-defined]
                for m in self.smtp.messages
            ],
        }


def write_settings(folder: Path, sim_url: str, channels: Channels) -> Path:
    path = folder / "posguard.toml"
    path.write_text(
        "\n".join(
            [
                f'state_dir = "{folder / "state"}"',
                f'registry_url = "sqlite:///{folder / "registry.db"}"',
                "[drift]",
                "grace_seconds = 0",
                "escalate_after = 2",  # the liquidated BTC position escalates on the next cycle
                "[accounts.main]",
                f'api_key = "{MAIN["api_key"]}"',
                f'secret_key = "{MAIN["secret_key"]}"',
                f'passphrase = "{MAIN["passphrase"]}"',
                "demo = true",
                f'base_url = "{sim_url}"',
                "[alerts]",
                f'webhook_url = "{channels.webhook.url}"',
                f'slack_webhook_url = "{SLACK_URL}"',
                "[alerts.email]",
                'smtp_host = "127.0.0.1"',
                f"smtp_port = {channels.smtp.port}",
                'security = "none"',
                'sender = "posguard@example.test"',
                f"recipients = {RECIPIENTS!r}".replace("'", '"'),
            ]
        )
        + "\n"
    )
    return path


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Channels]:
    folder = tmp_path_factory.mktemp("alerts")
    with SlackGateway(folder) as slack, SmtpInbox() as smtp, AlertReceiver() as webhook:
        server = PrefectServer(folder / "prefect", port=free_port())
        server.extra_env.update(slack.server_env())
        # Rate limits this process made on another test server do not exist on this one.
        HOST_LIMITER._ensured.clear()
        try:
            with (
                server,
                temporary_settings(
                    {PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
                ),
            ):
                yield Channels(webhook, slack, smtp, folder)
        finally:
            HOST_LIMITER._ensured.clear()


@pytest.fixture
def configured(channels: Channels) -> Iterator[SimServer]:
    with SimServer(SimExchange(shipped("incident-2025-12-20"))) as sim:
        previous = os.environ.get("POSGUARD_CONFIG")
        os.environ["POSGUARD_CONFIG"] = str(write_settings(channels.folder, sim.base_url, channels))
        reload_settings()
        try:
            yield sim
        finally:
            if previous is None:
                os.environ.pop("POSGUARD_CONFIG", None)
            else:
                os.environ["POSGUARD_CONFIG"] = previous
            reload_settings()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_alert_kind_reaches_every_channel(channels: Channels, configured: SimServer) -> None:
    created = ensure_alerting(settings().alerts)
    assert created["channels"] == ["webhook", "slack", "email"]
    assert created["automations"] == list(RULES)

    base = configured.base_url
    seed_bot_writes(base)
    reconcile_positions("main")  # DOGE's lever is unknown: lever > 0 fails
    advance(base, "+4m")
    reconcile_positions("main", run_expectations=False)  # BTC liquidated: confirmed
    advance(base, "+4m30s")
    reconcile_positions("main", run_expectations=False)  # still open: escalated
    leverage = recalculate_leverage("main", dry_run=False)  # XRP 5x is raised, and applied
    assert any(o["outcome"] == "applied" for o in leverage["outcomes"]), leverage["outcomes"]

    def missing() -> list[tuple[str, str]]:
        texts = channels.texts()
        return [
            (kind, channel)
            for kind, said in KINDS.items()
            for channel, received in texts.items()
            if not any(said in text for text in received)
        ]

    wait_for(lambda: not missing())
    texts = channels.texts()
    assert missing() == [], "\n".join(f"{c}:\n  " + "\n  ".join(t) for c, t in texts.items())
    assert channels.slack.refused == []

    # Slack got what Slack renders: the subject as the attachment's title, the body as text.
    escalated = next(
        r["payload"] for r in channels.slack.received if KINDS["escalation"] in r["text"]
    )
    attachment = escalated["attachments"][0]
    assert attachment["title"].startswith("posguard: DRIFT_REMOVE of BTC-USDT-SWAP")
    assert "2 observations" in attachment["text"]
    # Email: one message per alert, from the sender to every recipient, plain text.
    change = next(m for m in channels.smtp.messages if KINDS["leverage change"] in m["Subject"])
    assert change["From"] == "posguard@example.test"
    assert change["To"] == ", ".join(RECIPIENTS)
    assert change.get_content_type() == "text/plain"
    assert "main XRP-USDT-SWAP cross: leverage 5x -> " in change.get_content()  # type: ignore[attr-defined]
    everything = str(channels.texts())
    assert MAIN["secret_key"] not in everything
    assert MAIN["passphrase"] not in everything
