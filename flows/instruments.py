"""`sync-instruments`: fetch, validate and record the account environment's instruments."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Failed

from flows.naming import run_name
from posguard.errors import PosguardError
from tasks.context import one_settings_per_run
from tasks.fetch import fetch_instruments
from tasks.publish import publish_validation
from tasks.reconcile import record_instruments
from tasks.validate import validate_instruments


@flow(name="sync-instruments", flow_run_name=run_name, log_prints=False)
@one_settings_per_run
def sync_instruments(account: str = "main") -> Any:
    """Instrument specs (ctVal, lotSz, max lever...) checked and recorded when they change."""
    logger = get_run_logger()
    try:
        instruments = fetch_instruments(account)
    except PosguardError as exc:
        logger.error("instruments of %s not read: %s", account, exc)
        return Failed(message=f"instruments not read: {exc}")
    report = validate_instruments(instruments)
    failures = publish_validation(account, report, what="instruments")
    changed = record_instruments(account, instruments)
    logger.info(
        "%s instruments, %s changed specs, %s failing rows", len(instruments), changed, failures
    )
    return {"instruments": len(instruments), "changed": changed, "failing": failures}
