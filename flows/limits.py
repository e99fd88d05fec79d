"""One reconciliation per account at a time: a strict global concurrency limit per account.

Prefect only warns and runs overlap when the limit does not exist, so it is created first
(idempotently) and taken with strict=True.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
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


# The limits this process knows exist, per API: a round of hundreds of accounts asks once.
_known: dict[str, set[str]] = {}


def ensure_account_limits(accounts: list[str]) -> list[str]:
    """`ensure_account_limit` for many accounts: one listing of the server's limits, and a
    creation only for those missing."""
    names = [limit_name(account) for account in accounts]
    with get_client(sync_client=True) as client:
        known = _known.setdefault(str(client.api_url), set())
        if set(names) <= known:
            return names
        offset = 0
        while True:
            page = client.read_global_concurrency_limits(limit=200, offset=offset)
            known.update(limit.name for limit in page)
            if len(page) < 200:
                break
            offset += 200
        for name in names:
            if name in known:
                continue
            with suppress(ObjectAlreadyExists):  # another run created it first
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
            known.add(name)
    return names


# Slots are taken this many limits per call: Prefect emits one event per limit naming every
# other limit of the call as related, so one call for a round of 100 accounts wrote ~20,000
# related resources to the server.
SLOTS_PER_CALL = 10


@contextmanager
def account_slots(accounts: list[str], timeout_seconds: float = 600) -> Iterator[None]:
    """Every account's strict reconcile slot, held together. Taken in name order, so two
    holders of overlapping sets cannot each wait for the other."""
    names = sorted(ensure_account_limits(accounts))
    with ExitStack() as held:
        for start in range(0, len(names), SLOTS_PER_CALL):
            held.enter_context(
                concurrency(
                    names[start : start + SLOTS_PER_CALL],
                    occupy=1,
                    strict=True,
                    timeout_seconds=timeout_seconds,
                )
            )
        yield
