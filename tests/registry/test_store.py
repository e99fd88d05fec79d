"""The registry on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from posguard.drift import DriftEvent, EngineMemory, HealAction, Pending
from posguard.errors import ConfigError, RegistryError
from posguard.registry import Registry, apply_heals

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
        1000, "main", KEY, "DRIFT_REMOVE", "suspected", "unknown", {"nan": None}
    )
    assert registry.append_events([drift, drift]) == [drift]
    assert registry.append_events([drift]) == []
    stored = registry.events("main")
    assert len(stored) == 1
    assert stored[0]["evidence"] == {"nan": None}


def test_engine_memory_round_trip_with_compare_and_set(registry: Registry) -> None:
    memory, version = registry.load_memory("main")
    assert version == 0
    memory.pending["XRP-USDT-SWAP|net|cross"] = Pending("DRIFT_REMOVE", "unknown", 5, 1)
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


def test_heal_conflict_lets_the_bot_win(registry: Registry) -> None:
    registry.write("main", "XRP-USDT-SWAP", pos="108", at_ms=1)
    confirmed = DriftEvent.make(10, "main", KEY, "DRIFT_REMOVE", "confirmed", "closed", {})
    heal = HealAction("main", KEY, 1, "0", None, None, None, None, confirmed)
    registry.write("main", "XRP-USDT-SWAP", pos="50", at_ms=5)  # the bot, meanwhile
    memory = EngineMemory(
        pending={"XRP-USDT-SWAP|net|cross": Pending("DRIFT_REMOVE", "closed", 10, 1)}
    )
    events = apply_heals(registry, [heal], memory, at_ms=11)
    assert [(e.status, e.cause) for e in events] == [("resolved", "registry_lag")]
    assert events[0].evidence["heal"]["found_version"] == 2
    assert "bot" in events[0].evidence["heal"]["conflict"]
    row = registry.row("main", KEY)
    assert row is not None
    assert row["pos"] == "50"
    assert memory.pending == {}


def _heal_worker(url: str, barrier: object, results: object) -> None:
    with Registry(url) as registry:
        confirmed = DriftEvent.make(10, "main", KEY, "DRIFT_REMOVE", "confirmed", "closed", {})
        heal = HealAction("main", KEY, 1, "0", None, None, None, None, confirmed)
        barrier.wait()  # type: ignore[attr-defined]
        events = apply_heals(registry, [heal], EngineMemory(), at_ms=11)
        stored = registry.append_events([confirmed, *events])
        results.put([(e.status, e.id) for e in stored])  # type: ignore[attr-defined]


def test_two_processes_healing_the_same_key(registry: Registry, registry_url: str) -> None:
    registry.write("main", "XRP-USDT-SWAP", pos="108", at_ms=1)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=_heal_worker, args=(registry_url, barrier, results))
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
    ids = [e["id"] for e in stored]
    assert len(ids) == len(set(ids))
    statuses = sorted(e["status"] for e in stored)
    # The confirmed event once; one healed (the winner) and one resolved (the loser).
    assert statuses == ["confirmed", "healed", "resolved"]
    assert sum(len(o) for o in outcomes) == 3


def test_bad_urls_and_unreachable_databases(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        Registry("not a url")
    with pytest.raises(RegistryError, match="schema migration"):
        Registry("postgresql+psycopg://127.0.0.1:1/none?connect_timeout=1")
