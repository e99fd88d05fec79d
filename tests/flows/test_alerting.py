"""Alerts end to end: flow -> event -> automation -> notification block -> local receiver."""

from __future__ import annotations

from prefect.client.orchestration import get_client

from deployments.alerting import RULES, ensure_alerting
from deployments.receiver import AlertReceiver
from flows import reconcile_positions
from posguard.settings import AlertConfig
from tests.flows.conftest import Incident
from tests.flows.helpers import advance, seed_bot_writes


def test_failed_expectation_and_confirmed_drift_reach_the_webhook(incident: Incident) -> None:
    with AlertReceiver() as receiver:
        created = ensure_alerting(AlertConfig(webhook_url=receiver.url))
        again = ensure_alerting(AlertConfig(webhook_url=receiver.url))  # idempotent
        assert created["automations"] == again["automations"] == list(RULES)
        with get_client(sync_client=True) as client:
            for name in RULES:
                assert len(client.read_automations_by_name(name)) == 1
        base = incident.server.base_url
        seed_bot_writes(base)
        reconcile_positions("main")
        advance(base, "+4m")
        reconcile_positions("main", run_expectations=False)
        lever_alerts = receiver.wait_for("DOGE-USDT-SWAP")
        drift_alerts = receiver.wait_for("DRIFT_REMOVE confirmed for BTC-USDT-SWAP")
    assert lever_alerts, receiver.received
    assert "lever > 0 failed for DOGE-USDT-SWAP" in lever_alerts[0]["subject"]
    assert drift_alerts, receiver.received
    assert "liquidated" in drift_alerts[0]["body"]
