"""The registry on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from posguard.drift import DriftEvent, DriftSettings, HealAction, Pending
from posguard.errors import ConfigError, ConflictError, RegistryError
from posguard.frames import parse_positions, parse_positions_history
from posguard.registry import Registry
from posguard.stages.cycle import run_cycle

KEY = ("XRP-USDT-SWAP", "net", "cross")


def test_bot_writes_bump_the_version_and_keep_unspecified_fields(registry: Registry) -> None:
    assert (
        registry.record_open("main", "XRP-USDT-SWAP", pos="108", avg_px="1.93", lever="5", at_ms=1)
        == 1
    )
    assert registry.record_change("main", "XRP-USDT-SWAP", pos="100", at_ms=2) == 2
    row = registry.row("main", KEY)
    assert row is not None
    assert (row["pos"], row["avg_px"], row["lever"], row["version"]) == ("100", "1.93", "5", 2)
    assert registry.record_close("main", "XRP-USDT-SWAP", at_ms=3) == 3
    frame = registry.positions("main")
    assert frame["pos"].tolist() == [0.0]
    assert frame["updated_at_ms"].tolist() == [3]


def test_write_many_batches_new_keys_and_merges_existing_ones(registry: Registry) -> None:
    registry.write("main", "XRP-USDT-SWAP", pos="108", avg_px="1.93", lever="5", at_ms=1)
    rows = [
        {"account": "main", "inst_id": "XRP-USDT-SWAP", "pos": "100", "at_ms": 2},
        *(
            {"account": "main", "inst_id": f"SYN{n:06d}-USDT-SWAP", "pos": str(n), "at_ms": 2}
            for n in range(1, 501)
        ),
        {"account": "other", "inst_id": "BTC-USDT-SWAP", "mgn_mode": "isolated", "pos": "0.10"},
    ]
    assert registry.write_many(rows) == 502
    xrp = registry.row("main", KEY)
    assert xrp is not None
    # The existing row took the write path: new version, unspecified fields kept.
    assert (xrp["pos"], xrp["avg_px"], xrp["lever"], xrp["version"]) == ("100", "1.93", "5", 2)
    synthetic = registry.row("main", ("SYN000250-USDT-SWAP", "net", "cross"))
    assert synthetic is not None
    assert (synthetic["pos"], synthetic["version"], synthetic["updated_by"]) == ("250", 1, "bot")
    other = registry.row("other", ("BTC-USDT-SWAP", "net", "isolated"))
    assert other is not None
    assert other["pos"] == "0.1"
    assert len(registry.rows("main")) == 501
    with pytest.raises(RegistryError, match="not a decimal"):
        registry.write_many([{"account": "main", "inst_id": "ETH-USDT-SWAP", "pos": "ten"}])
    assert registry.row("main", ("ETH-USDT-SWAP", "net", "cross")) is None


def test_decimals_are_exact_text(registry: Registry) -> None:
    registry.write("main", "BTC-USDT-SWAP", pos="0.10000", avg_px="92000.5")
    row = registry.row("main", ("BTC-USDT-SWAP", "net", "cross"))
    assert row is not None
    assert (row["pos"], row["avg_px"]) == ("0.1", "92000.5")
    with pytest.raises(RegistryError, match="not a decimal"):
        registry.write("main", "BTC-USDT-SWAP", pos="ten")


def test_compare_and_set(registry: Registry) -> None:
    assert registry.compare_and_set("main", KEY, None, pos="5")  # insert when absent
    assert not registry.compare_and_set("main", KEY, None, pos="6")  # it exists now
    assert not registry.compare_and_set("main", KEY, 7, pos="6")  # stale version
    assert registry.compare_and_set("main", KEY, 1, pos="6")
    row = registry.row("main", KEY)
    assert row is not None
    assert (row["pos"], row["version"], row["updated_by"]) == ("6", 2, "posguard")


def test_events_are_stored_once(registry: Registry) -> None:
    drift = DriftEvent.make(
        1000, "main", KEY, "DRIFT_REMOVE", "suspected", "unknown", {"nan": None}, discrepancy="d"
    )
    assert registry.append_events([drift, drift]) == [drift]
    assert registry.append_events([drift]) == []
    stored = registry.events("main")
    assert len(stored) == 1
    assert stored[0]["evidence"] == {"nan": None}


def test_engine_memory_round_trip_with_compare_and_set(registry: Registry) -> None:
    memory, version = registry.load_memory("main")
    assert version == 0
    memory.pending["XRP-USDT-SWAP|net|cross"] = Pending("d1", "DRIFT_REMOVE", "unknown", 5, 5, 1)
    memory.last_snapshot_ms = 5
    assert registry.save_memory("main", memory, 0)
    assert not registry.save_memory("main", memory, 0)  # someone saved first
    loaded, version = registry.load_memory("main")
    assert version == 1
    assert loaded.to_json() == memory.to_json()


def test_instrument_history_keeps_changes_only(registry: Registry) -> None:
    specs = pd.DataFrame(
        [
            {
                "instId": "XRP-USDT-SWAP",
                "ctType": "linear",
                "ctVal": 100.0,
                "ctMult": 1.0,
                "lotSz": 0.1,
                "minSz": 0.1,
                "tickSz": 0.0001,
                "maxLever": 50.0,
                "state": "live",
            }
        ]
    )
    assert registry.record_instruments("prod", specs, at_ms=1) == 1
    assert registry.record_instruments("prod", specs, at_ms=2) == 0
    changed = specs.assign(lotSz=0.01)
    assert registry.record_instruments("prod", changed, at_ms=3) == 1
    history = registry.instrument_history("prod", "XRP-USDT-SWAP")
    assert [h["lot_sz"] for h in history] == ["0.1", "0.01"]


def test_leverage_changes_and_runs(registry: Registry) -> None:
    registry.record_leverage_change(
        account="main",
        inst_id="XRP-USDT-SWAP",
        mgn_mode="cross",
        pos_side="net",
        from_lever="5",
        to_lever="3",
        outcome="refused",
        code="59107",
        reason="pending orders",
    )
    assert registry.leverage_changes("main")[0]["code"] == "59107"
    registry.start_run("r1", "main", "reconcile-positions")
    registry.finish_run("r1", "completed", {"events": 2})
    assert registry.runs("main")[0]["status"] == "completed"


def _confirmed() -> DriftEvent:
    return DriftEvent.make(
        10, "main", KEY, "DRIFT_REMOVE", "confirmed", "closed", {}, discrepancy="d1"
    )


def test_a_heal_that_loses_to_the_bot_raises_and_writes_nothing(registry: Registry) -> None:
    registry.write("main", "XRP-USDT-SWAP", pos="108", at_ms=1)
    heal = HealAction("main", KEY, 1, "0", None, None, None, None, _confirmed())
    registry.write("main", "XRP-USDT-SWAP", pos="50", at_ms=5)  # the bot, meanwhile

    def cycle() -> None:
        with registry.cycle("main") as tx:
            tx.append_events([_confirmed()])
            tx.heal(heal)

    with pytest.raises(ConflictError, match="changed after it was read"):
        cycle()
    row = registry.row("main", KEY)
    assert row is not None
    assert (row["pos"], row["version"]) == ("50", 2)
    assert registry.events("main") == []  # the whole transaction rolled back


def test_a_heal_updates_a_closed_row_instead_of_inserting(registry: Registry) -> None:
    registry.write("main", "XRP-USDT-SWAP", pos="0", at_ms=1)
    heal = HealAction("main", KEY, 1, "50", "1.9", "5", "7", 99, _confirmed())
    with registry.cycle("main") as tx:
        tx.heal(heal)
    row = registry.row("main", KEY)
    assert row is not None
    assert (row["pos"], row["version"], row["pos_id"], row["c_time"]) == ("50", 2, "7", 99)


XRP_OPEN = {
    "instType": "SWAP",
    "instId": "XRP-USDT-SWAP",
    "mgnMode": "cross",
    "posSide": "net",
    "pos": "108",
    "posId": "1",
    "cTime": "1000",
    "uTime": "1000",
    "lever": "5",
}
XRP_CLOSED = {
    "instType": "SWAP",
    "instId": "XRP-USDT-SWAP",
    "mgnMode": "cross",
    "posSide": "net",
    "type": "2",
    "posId": "1",
    "cTime": "1000",
    "uTime": "50000",
}


def _racing_cycle(url: str, barrier: object, results: object) -> None:
    with Registry(url) as registry:
        barrier.wait()  # type: ignore[attr-defined]
        outcome = run_cycle(
            registry,
            "main",
            100_000,
            positions=parse_positions([]),
            history=parse_positions_history([XRP_CLOSED]),
            fills=None,
            settings=DriftSettings(heal="heal", grace_seconds=0),
            registry_at_ms=registry.clock_ms(),
        )
        results.put([(e.status, e.id) for e in outcome.stored])  # type: ignore[attr-defined]


def test_two_racing_cycles_store_one_confirmed_event_and_heal_once(
    registry: Registry, registry_url: str
) -> None:
    registry.write("main", "XRP-USDT-SWAP", pos="108", pos_id="1", c_time=1000, at_ms=1)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=_racing_cycle, args=(registry_url, barrier, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    row = registry.row("main", KEY)
    assert row is not None
    assert (row["pos"], row["version"]) == ("0", 2)  # exactly one heal wrote
    stored = registry.events("main")
    assert sorted(e["status"] for e in stored) == ["confirmed", "healed"]
    # The cycle that ran second saw the healed row: it had nothing to say.
    assert sorted(len(o) for o in outcomes) == [0, 2]


def test_keys_are_spelled_as_okx_does(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="posSide 'LONG'"):
        registry.write("main", "XRP-USDT-SWAP", pos_side="LONG", pos="1")
    with pytest.raises(RegistryError, match="mgnMode 'Cross'"):
        registry.write("main", "XRP-USDT-SWAP", mgn_mode="Cross", pos="1")
    with pytest.raises(RegistryError, match="negative"):
        registry.write("main", "XRP-USDT-SWAP", pos_side="short", pos="-3")
    with pytest.raises(RegistryError, match="not a decimal"):
        registry.write("main", "XRP-USDT-SWAP", pos=True)
    assert registry.rows("main") == []
    registry.write("main", "XRP-USDT-SWAP", pos="-3")  # net mode: the sign is the side


def test_writes_are_stamped_with_the_registry_clock(registry_url: str) -> None:
    with Registry(registry_url, clock=lambda: 42) as registry:
        registry.write("main", "XRP-USDT-SWAP", pos="1", at_ms=7)
        row = registry.row("main", KEY)
        assert row is not None
        assert (row["updated_at_ms"], row["recorded_at_ms"]) == (7, 42)


def test_the_database_clock_stamps_writes_without_an_injected_clock(registry: Registry) -> None:
    before = registry.clock_ms()
    registry.write("main", "XRP-USDT-SWAP", pos="1", at_ms=1)  # a bot host far in the past
    after = registry.clock_ms()
    row = registry.row("main", KEY)
    assert row is not None
    assert row["updated_at_ms"] == 1
    assert before <= row["recorded_at_ms"] <= after


def test_bad_urls_and_unreachable_databases(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        Registry("not a url")
    with pytest.raises(RegistryError, match="schema migration"):
        Registry("postgresql+psycopg://127.0.0.1:1/none?connect_timeout=1")


def test_write_many_is_one_transaction_whatever_its_size(registry: Registry) -> None:
    rows = [
        {"account": "main", "inst_id": f"SYN{n:06d}-USDT-SWAP", "pos": str(n)}
        for n in range(1, 1201)
    ]
    rows.append({"account": "main", "inst_id": "BTC-USDT-SWAP", "pos_side": "long", "pos": "-1"})
    heard: list[int] = []
    with pytest.raises(RegistryError, match="negative"):
        registry.write_many(rows, progress=heard.append)
    assert registry.rows("main") == []
    registry.write_many(rows[:-1], progress=heard.append)
    assert sum(heard) == 1200
    assert len(registry.rows("main")) == 1200


def test_alerted_failures_are_one_row_per_account_replaced_each_time(
    registry: Registry,
) -> None:
    assert registry.alerted_failures("main") == set()
    first = {("lever > 0", "DOGE-USDT-SWAP", "net", "cross")}
    registry.save_alerted_failures("main", first)
    registry.save_alerted_failures("desk", {("pos is a number", "XRP-USDT-SWAP", "net", "cross")})
    assert registry.alerted_failures("main") == first
    registry.save_alerted_failures("main", set())
    assert registry.alerted_failures("main") == set()
    assert registry.alerted_failures("desk") == {
        ("pos is a number", "XRP-USDT-SWAP", "net", "cross")
    }


def test_the_migrations_build_the_schema_the_code_declares(registry: Registry) -> None:
    """A table or column added to schema.py without a migration would exist in tests that
    create tables from the metadata and be missing on every real, migrated registry."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from posguard.registry import schema

    with registry.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, schema.metadata)
    assert differences == []


def test_a_periodic_job_is_claimed_once_per_period(registry_url: str) -> None:
    now = [1_000_000]
    with Registry(registry_url, clock=lambda: now[0]) as registry:
        assert registry.claim_due("leverage", ["a", "b"], 300) == {"a", "b"}
        assert registry.claim_due("leverage", ["a", "b", "c"], 300) == {"c"}
        assert registry.claim_due("instruments", ["a"], 300) == {"a"}  # a job of its own
        now[0] += 299_999
        assert registry.claim_due("leverage", ["a", "b"], 300) == set()
        now[0] += 1
        assert registry.claim_due("leverage", ["a"], 300) == {"a"}
        assert registry.claim_due("leverage", ["b"], 0) == {"b"}  # every round
        assert registry.claim_due("leverage", [], 300) == set()
        # Claimed, then the work failed: given back, due again for whoever asks next.
        assert registry.claim_due("leverage", ["b", "c"], 300) == {"c"}  # 300 s since
        assert registry.claim_due("leverage", ["b", "c"], 300) == set()
        registry.give_back_due("leverage", ["c"])
        assert registry.claim_due("leverage", ["b", "c"], 300) == {"c"}
        assert registry.claim_due("instruments", ["a"], 3600) == set()  # not given back


def test_workers_racing_for_due_jobs_claim_each_once(registry_url: str) -> None:
    """Two workers of a team (two registries on one database) each claim a round's accounts
    at the same moment: every account is planned by exactly one of them."""
    keys = [f"acct{n:03d}" for n in range(60)]
    start = threading.Barrier(2)
    claimed: list[set[str]] = []

    def worker() -> None:
        with Registry(registry_url) as registry:
            start.wait()
            mine: set[str] = set()
            for offset in range(0, len(keys), 10):
                mine |= registry.claim_due("leverage", keys[offset : offset + 20], 300)
            claimed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(claimed) == 2
    assert claimed[0] | claimed[1] == set(keys)
    assert not claimed[0] & claimed[1]


def test_workers_claiming_overlapping_due_jobs_over_time_never_deadlock(
    registry_url: str,
) -> None:
    """Four workers claim random overlapping sets of keys, again and again, with a short
    period: on PostgreSQL an UPDATE-then-INSERT claim deadlocked here (each worker's moment
    makes other keys due), failing whole rounds. No claim may fail, and no key may be
    claimed twice within a period."""
    keys = [f"acct{n:02d}" for n in range(30)]
    every_seconds = 0.5
    errors: list[BaseException] = []
    claims: list[tuple[float, str]] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        pick = random.Random(seed)
        try:
            with Registry(registry_url) as registry:
                until = time.monotonic() + 2.0
                while time.monotonic() < until:
                    chosen = pick.sample(keys, 12)
                    got = registry.claim_due("leverage", chosen, every_seconds)
                    with lock:
                        claims.extend((time.monotonic(), key) for key in got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]
    last: dict[str, float] = {}
    for at, key in sorted(claims):
        if key in last:
            # The claim's moment is the database's, noted here after the call returned: half
            # a period allows for a thread's lag; a double claim is ~0 apart.
            assert at - last[key] >= every_seconds / 2, key
        last[key] = at
    assert set(last) == set(keys)
