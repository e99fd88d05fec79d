"""`guard-account`: instruments, then positions, then leverage, for one account (several
accounts in one run: `guard-round`, flows/round.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import Failed

from flows.instruments import sync_instruments
from flows.leverage import recalculate_leverage
from flows.naming import run_name
from flows.reconcile import reconcile_positions
from posguard.errors import PosguardError
from posguard.registry import Registry
from tasks.context import one_settings_per_run, settings, shared_registry


@dataclass
class Subflows:
    """Subflows run in turn: what each returned, and which failed, without stopping.

    Each result is the value the subflow's engine returned in this process, never one read
    back from its final state: when Prefect's client retries a state proposal the server had
    already applied (a 503 after the commit, seen with SQLite under load), the server
    rejects the duplicate and the engine keeps the server's copy of the state, which holds no
    result (`MissingResult` in a clean-clone run of a guard whose three subflows completed).
    """

    done: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def run(self, name: str, subflow: Callable[[], Any]) -> bool:
        """Whether it completed. A failure is kept (its own run is Failed and says why);
        a cancellation or a crash of this process is not a failure and propagates."""
        try:
            self.done[name] = subflow()
        except Exception as exc:
            self.failed[name] = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def attempted(self) -> set[str]:
        return set(self.done) | set(self.failed)


@flow(name="guard-account", flow_run_name=run_name, log_prints=False)
@one_settings_per_run
def guard_account(
    account: str = "main",
    policy: Literal["report", "heal"] = "report",
    dry_run: bool = True,
    run_expectations: bool = True,
    when_due: bool = False,
) -> Any:
    """Run the three flows for one account (each a subflow with its own state in the UI).

    A failed subflow does not stop the others (leverage is still planned when a reconcile
    cycle was not observed), but it fails this run: a red account must not look green.
    `when_due` (the team's fan-out): instruments and leverage only when their schedules say
    so (`schedules.instruments_seconds` per environment, `leverage_seconds` per account),
    claimed in the registry across the team as rounds claim them; on demand, all three.
    """
    due = _due_jobs(account) if when_due else {"instruments", "leverage"}
    subflows = Subflows()
    try:
        checked = "instruments" in due and subflows.run(
            "instruments", lambda: sync_instruments(account)
        )
        if checked and not when_due:
            # Checked on demand is checked: the team's next due check waits its interval
            # from now. Leverage is not marked: a plan asked for by hand (a dry run, or live
            # on this host's say) is no stand-in for the one the schedule makes.
            _mark_done(account, ["instruments"])
        subflows.run("reconcile", lambda: reconcile_positions(account, policy, run_expectations))
        if "leverage" in due:
            subflows.run("leverage", lambda: recalculate_leverage(account, dry_run))
    except BaseException:
        # Claimed for the whole team: work that did not happen (a crash, a cancellation) is
        # due again at once.
        if when_due:
            _give_back(account, [job for job in due if job not in subflows.attempted()])
        raise
    failed = list(subflows.failed)
    if when_due:
        _give_back(account, [n for n in failed if n in ("instruments", "leverage")])
    if failed:
        for name, why in subflows.failed.items():
            get_run_logger().warning("%s: %s did not complete (%s)", account, name, why)
        return Failed(message=f"{account}: {', '.join(failed)} did not complete")
    return {
        **subflows.done,
        **{job: "not due" for job in ("instruments", "leverage") if job not in due},
    }


def _job_keys(account: str) -> dict[str, str]:
    """What each periodic job is claimed for: instruments per environment, leverage per
    account (as guard-round claims them)."""
    return {"instruments": settings().account(account).environment, "leverage": account}


def _due_jobs(account: str) -> set[str]:
    schedules = settings().schedules
    every = {"instruments": schedules.instruments_seconds, "leverage": schedules.leverage_seconds}
    keys = _job_keys(account)
    due: set[str] = set()
    # The process's open registry, as rounds use it: no engine and migration check per run.
    store = shared_registry()
    try:
        for job, key in keys.items():
            if store.claim_due(job, [key], every[job]):
                due.add(job)
    except BaseException:
        # A run that never starts its work leaves nothing claimed.
        for job in due:
            store.give_back_due(job, [keys[job]])
        raise
    return due


def _mark_done(account: str, jobs: list[str]) -> None:
    """Periodic jobs done now, outside the schedule's claim."""
    _update_claims(
        account,
        jobs,
        "marked done",
        lambda store, job, key: store.claim_due(job, [key], every_seconds=0),
        "the next due run repeats it",
    )


def _give_back(account: str, jobs: list[str]) -> None:
    """Claimed jobs whose flow failed are due again at the next run."""
    _update_claims(
        account,
        jobs,
        "given back",
        lambda store, job, key: store.give_back_due(job, [key]),
        "due again only when their interval has passed",
    )


def _update_claims(
    account: str,
    jobs: list[str],
    what: str,
    update: Callable[[Registry, str, str], object],
    otherwise: str,
) -> None:
    """Bookkeeping of the team's claims: a registry that cannot take it is said, and costs a
    check repeated or delayed, never the run (nor, on the way out of a failed one, its own
    error)."""
    if not jobs:
        return
    keys = _job_keys(account)
    try:
        store = shared_registry()
        for job in jobs:
            update(store, job, keys[job])
    except PosguardError as exc:  # the registry's errors, translated
        get_run_logger().error(
            "%s: %s not %s in the registry (%s); %s", account, ", ".join(jobs), what, exc, otherwise
        )
