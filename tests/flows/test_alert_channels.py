"""Every alert kind reaches every channel, end to end, against real receivers on 127.0.0.1.

flows (in a process of their own: tests/flows/alert_scenario.py) -> Prefect events ->
automations (in a `prefect server start` of its own, so its process can be given the Slack
gateway) -> notification blocks -> webhook receiver,
Slack-shaped HTTPS endpoint (Prefect's SlackWebhook, unchanged) and SMTP server (aiosmtpd,
through posguard's SmtpEmail block, which the server imports as a Prefect collection).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.alerting import RULES, ensure_alerting
from deployments.receiver import AlertReceiver
from deployments.server import PrefectServer
from posguard.settings import load_settings
from posguard.sim import SimExchange, SimServer
from tests.conftest import ROOT
from tests.flows.receivers import SLACK_URL, SlackGateway, SmtpInbox, wait_for
from tests.helpers import free_port
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
    api_url: str

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
                "[leverage]",
                "apply = true",  # this host lets runs change leverage (the scenario's last step)
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
        with server:
            yield Channels(webhook, slack, smtp, folder, server.api_url)


@pytest.mark.slow
@pytest.mark.xdist_group("alert-channels")  # a worker of its own from the start
@pytest.mark.timeout(600)
def test_every_alert_kind_reaches_every_channel(channels: Channels) -> None:
    with SimServer(SimExchange(shipped("incident-2025-12-20"))) as sim:
        config = write_settings(channels.folder, sim.base_url, channels)
        # Only blocks and automations are made from here; no flow runs in this process.
        with temporary_settings({PREFECT_API_URL: channels.api_url}):
            created = ensure_alerting(load_settings(config).alerts)
        assert created["channels"] == ["webhook", "slack", "email"]
        assert created["automations"] == list(RULES)
        played = subprocess.run(
            [sys.executable, "-m", "tests.flows.alert_scenario", sim.base_url],
            cwd=ROOT,
            env={
                **os.environ,
                "PREFECT_API_URL": channels.api_url,
                "POSGUARD_CONFIG": str(config),
                "PREFECT_LOGGING_LEVEL": "WARNING",
            },
            capture_output=True,
            text=True,
            timeout=480,
        )
    assert played.returncode == 0, played.stderr[-3000:]
    leverage = json.loads(played.stdout.splitlines()[-1])
    # XRP's 5x is raised, and applied.
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
