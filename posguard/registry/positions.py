"""The bot's believed positions: one row per key; pos "0" means closed.

`version` is the compare-and-set token (every write increments it). `updated_at_ms` is what
the writer says about when (the bot's host clock, informative only); `recorded_at_ms` is when
the registry recorded the write, on the registry's own clock: the race guard compares that
with the snapshot's start measured on the same clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, select, update

from posguard.drift import REGISTRY_COLUMNS
from posguard.errors import RegistryError
from posguard.registry import schema as S
from posguard.registry.database import Database

POS_SIDES = ("net", "long", "short")
MGN_MODES = ("cross", "isolated")
FullKey = tuple[str, str, str, str]  # (account, instId, posSide, mgnMode)
IDENTITY = ("pos_id", "c_time")


def decimal_text(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RegistryError(f"registry: {field} {value!r} is not a decimal number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RegistryError(f"registry: {field} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise RegistryError(f"registry: {field} {value!r} is not a finite number")
    return format(number.normalize(), "f") if number != 0 else "0"


def checked_key(account: str, inst_id: str, pos_side: str, mgn_mode: str) -> FullKey:
    """A key as OKX spells it; anything else is refused with what to write instead."""
    if not account or not inst_id:
        raise RegistryError("registry: account and instId must not be empty")
    if pos_side not in POS_SIDES:
        raise RegistryError(
            f"registry: posSide {pos_side!r} for {inst_id} is not one of "
            f"{', '.join(POS_SIDES)} (OKX spells them in lower case)"
        )
    if mgn_mode not in MGN_MODES:
        raise RegistryError(
            f"registry: mgnMode {mgn_mode!r} for {inst_id} is not one of {', '.join(MGN_MODES)}"
        )
    return (account, inst_id, pos_side, mgn_mode)


def row_values(
    db: Database,
    key: FullKey,
    *,
    pos: object,
    avg_px: object,
    lever: object,
    pos_id: str | None,
    c_time: int | None,
    at_ms: int | None,
    by: str,
    recorded: Any = None,
) -> dict[str, Any]:
    """One position row's stored values: decimals as exact text, the write's times, author.

    `recorded` is the registry's time of the write (default: the database's clock)."""
    size = decimal_text(pos, "pos") or "0"
    if key[2] in ("long", "short") and Decimal(size) < 0:
        raise RegistryError(
            f"registry: pos {size} for {key[1]} {key[2]} is negative; OKX shows long/short "
            f"legs as positive sizes (use posSide net for signed sizes)"
        )
    if recorded is None:
        recorded = db.recorded_at()
    return {
        "pos": size,
        "avg_px": decimal_text(avg_px, "avgPx"),
        "lever": decimal_text(lever, "lever"),
        "pos_id": pos_id or None,
        "c_time": c_time,
        "updated_at_ms": at_ms if at_ms is not None else recorded,
        "recorded_at_ms": recorded,
        "updated_by": by,
    }


def _where(key: FullKey) -> Any:
    t = S.positions.c
    account, inst_id, pos_side, mgn_mode = key
    return and_(
        t.account == account,
        t.inst_id == inst_id,
        t.pos_side == pos_side,
        t.mgn_mode == mgn_mode,
    )


def read_row(connection: Connection, key: FullKey) -> dict[str, Any] | None:
    found = connection.execute(select(S.positions).where(_where(key))).mappings().first()
    return dict(found) if found else None


def read_rows(connection: Connection, account: str | None = None) -> list[dict[str, Any]]:
    t = S.positions.c
    statement = select(S.positions).order_by(t.account, t.inst_id, t.pos_side, t.mgn_mode)
    if account is not None:
        statement = statement.where(t.account == account)
    return [dict(r) for r in connection.execute(statement).mappings()]


def insert_row(db: Database, connection: Connection, key: FullKey, values: dict[str, Any]) -> bool:
    """Insert when the key has no row; False when one exists."""
    account, inst_id, pos_side, mgn_mode = key
    # RETURNING tells whether the row was inserted on every driver (psycopg reports
    # rowcount -1 for INSERT ... ON CONFLICT).
    statement = (
        db.insert(S.positions)
        .values(
            account=account,
            inst_id=inst_id,
            pos_side=pos_side,
            mgn_mode=mgn_mode,
            version=1,
            **values,
        )
        .on_conflict_do_nothing()
        .returning(S.positions.c.version)
    )
    return connection.execute(statement).first() is not None


def update_row(connection: Connection, key: FullKey, expected: int, values: dict[str, Any]) -> bool:
    """Write only if the row is still at version `expected`."""
    t = S.positions.c
    statement = (
        update(S.positions)
        .where(and_(_where(key), t.version == expected))
        .values(version=t.version + 1, **values)
    )
    return bool(connection.execute(statement).rowcount == 1)


def write(db: Database, connection: Connection, key: FullKey, values: dict[str, Any]) -> int:
    """Record a belief unconditionally (inside the caller's write transaction); returns the
    new version. Fields left None keep their stored value, but for the life (posId, cTime),
    which a write without them leaves unknown."""
    current = read_row(connection, key)
    if current is None:
        if insert_row(db, connection, key, values):
            return 1
        current = read_row(connection, key)
        if current is None:  # pragma: no cover - a row that vanished within our transaction
            raise RegistryError(f"registry: {key[1]} for {key[0]} vanished while being written")
    # Fields left None keep their stored value, except the life (posId, cTime): it names
    # what this write is about, and an old life kept under new content would be a lie.
    merged = {k: v for k, v in values.items() if v is not None or k in IDENTITY}
    if not update_row(connection, key, int(current["version"]), merged):
        raise RegistryError(
            f"registry: {key[1]} for {key[0]} changed while being written; write it again"
        )
    return int(current["version"]) + 1


BATCH = 500


def write_many(
    db: Database,
    connection: Connection,
    rows: Iterable[dict[str, Any]],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """`write` for many rows in the caller's transaction: new keys in batched inserts, the
    others one by one; each dict holds `Registry.write`'s arguments. `progress` hears how many
    rows each batch wrote."""
    prepared: dict[FullKey, dict[str, Any]] = {}
    # One stamp for the batch: a many-row insert takes values, not SQL expressions.
    stamp = db.now_ms(connection)
    for row in rows:
        key = checked_key(
            str(row["account"]),
            str(row["inst_id"]),
            str(row.get("pos_side") or "net"),
            str(row.get("mgn_mode") or "cross"),
        )
        prepared[key] = row_values(
            db,
            key,
            pos=row["pos"],
            avg_px=row.get("avg_px"),
            lever=row.get("lever"),
            pos_id=row.get("pos_id"),
            c_time=row.get("c_time"),
            at_ms=row.get("at_ms"),
            by=str(row.get("by") or "bot"),
            recorded=stamp,
        )
    existing = {
        (r["account"], r["inst_id"], r["pos_side"], r["mgn_mode"])
        for account in {k[0] for k in prepared}
        for r in read_rows(connection, account)
    }
    fresh = [
        {
            "account": key[0],
            "inst_id": key[1],
            "pos_side": key[2],
            "mgn_mode": key[3],
            "version": 1,
            **values,
        }
        for key, values in prepared.items()
        if key not in existing
    ]
    for start in range(0, len(fresh), BATCH):
        batch = fresh[start : start + BATCH]
        connection.execute(S.positions.insert(), batch)
        if progress is not None:
            progress(len(batch))
    done = 0
    for key, values in prepared.items():
        if key in existing:
            write(db, connection, key, values)
            done += 1
            if progress is not None and done % BATCH == 0:
                progress(BATCH)
    if progress is not None and done % BATCH:
        progress(done % BATCH)
    return len(prepared)


def _decimals(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the drift engine's registry shape (REGISTRY_COLUMNS). Decimals are exact text
    in the database and floats here: the engine compares them at instrument precision."""
    column = {name: [r[name] for r in rows] for name in rows[0]} if rows else {}

    def values(name: str) -> list[Any]:
        return column.get(name, [])

    return pd.DataFrame(
        {
            "instId": pd.array(values("inst_id"), dtype="str"),
            "posSide": pd.array(values("pos_side"), dtype="str"),
            "mgnMode": pd.array(values("mgn_mode"), dtype="str"),
            "pos": _decimals(values("pos")),
            "avgPx": _decimals(values("avg_px")),
            "lever": _decimals(values("lever")),
            "version": np.array(values("version"), dtype="int64"),
            "updated_at_ms": np.array(values("updated_at_ms"), dtype="int64"),
            "recorded_at_ms": pd.array(values("recorded_at_ms"), dtype="Int64"),
            "posId": pd.array(values("pos_id"), dtype="str"),
            "cTime": pd.array(values("c_time"), dtype="Int64"),
        }
    )[REGISTRY_COLUMNS]
