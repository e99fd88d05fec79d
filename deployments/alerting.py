"""Alerting: automations that turn posguard's events into notifications (idempotent).

Prefect's OSS server runs automations in its triggers service; each alert kind is one
automation whose actions notify every configured channel, each through a notification block:
- webhook: CustomWebhookNotificationBlock, JSON {"subject", "body", "text"};
- Slack: Prefect's SlackWebhook (an incoming webhook on hooks.slack.com);
- email: posguard's SmtpEmail block (deployments/notifications.py). Prefect has no SMTP block;
  ours is a Prefect collection of this package, so the server imports it like its own.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.orchestration import get_client

from deployments.notifications import SmtpEmail
from posguard.settings import AlertConfig

WEBHOOK_BLOCK = "posguard-webhook"
SLACK_BLOCK = "posguard-slack"
EMAIL_BLOCK = "posguard-email"

RULES: dict[str, dict[str, str]] = {
    "posguard: expectation failed": {
        "event": "posguard.expectation.failed",
        "subject": "posguard: {{ event.payload.expectation }} failed for "
        "{{ event.payload.instId }} ({{ event.payload.account }})",
        "body": "{{ event.payload.instId }} {{ event.payload.posSide }} "
        "{{ event.payload.mgnMode }}: {{ event.payload.detail }}",
    },
    "posguard: drift confirmed": {
        "event": "posguard.drift.confirmed",
        "subject": "posguard: {{ event.payload.kind }} confirmed for "
        "{{ event.payload.instId }} ({{ event.payload.account }})",
        "body": "{{ event.payload.instId }} {{ event.payload.posSide }} "
        "{{ event.payload.mgnMode }}: {{ event.payload.kind }} {{ event.payload.status }}"
        ", cause {{ event.payload.cause }} at {{ event.payload.at }} "
        "(event {{ event.payload.id }})",
    },
    "posguard: drift escalated": {
        "event": "posguard.drift.escalated",
        "subject": "posguard: {{ event.payload.kind }} of {{ event.payload.instId }} still "
        "unresolved, escalated ({{ event.payload.account }})",
        "body": "{{ event.payload.instId }} {{ event.payload.posSide }} "
        "{{ event.payload.mgnMode }}: {{ event.payload.kind }} confirmed "
        "(cause {{ event.payload.cause }}) and still open after "
        "{{ event.payload.observations }} observations at {{ event.payload.at }}; the registry "
        "and the exchange disagree until someone acts (event {{ event.payload.id }})",
    },
    "posguard: leverage changed": {
        "event": "posguard.leverage.changed",
        "subject": "posguard: leverage of {{ event.payload.instId }} "
        "({{ event.payload.scope }}) changed {{ event.payload['from'] or 'N/A' }}x -> "
        "{{ event.payload['to'] or 'N/A' }}x ({{ event.payload.account }})",
        "body": "{{ event.payload.account }} {{ event.payload.instId }} "
        "{{ event.payload.scope }}: leverage {{ event.payload['from'] or 'N/A' }}x -> "
        "{{ event.payload['to'] or 'N/A' }}x; {{ event.payload.reason }}",
    },
    "posguard: leverage refused": {
        "event": "posguard.leverage.refused",
        "subject": "posguard: leverage of {{ event.payload.instId }} not changed "
        "({{ event.payload.account }})",
        "body": "{{ event.payload.instId }}: {{ event.payload.outcome }} "
        "{{ event.payload.code }} {{ event.payload.reason }}",
    },
    "posguard: leverage outcome unknown": {
        "event": "posguard.leverage.unknown",
        "subject": "posguard: leverage of {{ event.payload.instId }} unknown after a lost "
        "answer ({{ event.payload.account }})",
        "body": "{{ event.payload.instId }} {{ event.payload.mgnMode }} "
        "{{ event.payload.posSide }}: {{ event.payload.reason }}",
    },
}


def _saved(block_id: object) -> UUID:
    """`Block.save` is sync-compatible: called from sync code it returns the id."""
    if not isinstance(block_id, UUID):
        raise TypeError(f"saving a block returned {type(block_id).__name__}, not its id")
    return block_id


def _blocks(config: AlertConfig) -> dict[str, UUID]:
    """Save one notification block per configured channel; returns their ids by channel."""
    ids: dict[str, UUID] = {}
    if config.webhook_url:
        block = CustomWebhookNotificationBlock(
            name="posguard",
            url=config.webhook_url,
            json_data={
                "subject": "{{subject}}",
                "body": "{{body}}",
                "text": "{{subject}}\\n{{body}}",
            },
        )
        ids["webhook"] = _saved(block.save(WEBHOOK_BLOCK, overwrite=True))
    if config.slack_webhook_url is not None:
        slack = SlackWebhook(url=config.slack_webhook_url)
        ids["slack"] = _saved(slack.save(SLACK_BLOCK, overwrite=True))
    if config.email is not None:
        email = SmtpEmail(**config.email.model_dump())
        ids["email"] = _saved(email.save(EMAIL_BLOCK, overwrite=True))
    return ids


def ensure_alerting(config: AlertConfig) -> dict[str, Any]:
    """Create or update the blocks and automations; safe to run on every start."""
    channels = _blocks(config)
    block_ids = list(channels.values())
    if not block_ids:
        return {"blocks": 0, "channels": [], "automations": []}
    names: list[str] = []
    with get_client(sync_client=True) as client:
        for name, rule in RULES.items():
            automation = AutomationCore(
                name=name,
                description="Created by posguard (deployments/alerting.py)",
                trigger=EventTrigger(
                    expect={rule["event"]},
                    match={"prefect.resource.id": "posguard.position.*"},
                    posture=Posture.Reactive,
                    threshold=1,
                ),
                actions=[
                    SendNotification(
                        block_document_id=block_id, subject=rule["subject"], body=rule["body"]
                    )
                    for block_id in block_ids
                ],
            )
            existing = client.read_automations_by_name(name)
            if existing:
                client.update_automation(existing[0].id, automation)
                for duplicate in existing[1:]:
                    client.delete_automation(duplicate.id)
            else:
                client.create_automation(automation)
            names.append(name)
    return {"blocks": len(block_ids), "channels": list(channels), "automations": names}
