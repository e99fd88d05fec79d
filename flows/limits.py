"""One reconciliation per account at a time: a strict global concurrency limit per account.

Prefect only warns and runs overlap when the limit does not exist, so it is created first
(idempotently) and taken with strict=True.
"""

from __future__ import annotations

from contextlib import suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound


def limit_name(account: str) -> str:
    return f"posguard-reconcile-{account}"


def ensure_account_limit(account: str) -> str:
    name = limit_name(account)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it first
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    return name
