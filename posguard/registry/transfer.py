"""Registry import and export (JSON or CSV), for `posguard registry import|export`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from posguard.errors import DataError
from posguard.progress import Progress
from posguard.registry.store import Registry

FIELDS = [
    "account",
    "instId",
    "posSide",
    "mgnMode",
    "pos",
    "avgPx",
    "lever",
    "posId",
    "cTime",
    "version",
    "updatedAt",
    "updatedBy",
]


def export_rows(registry: Registry, account: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "account": r["account"],
            "instId": r["inst_id"],
            "posSide": r["pos_side"],
            "mgnMode": r["mgn_mode"],
            "pos": r["pos"],
            "avgPx": r["avg_px"],
            "lever": r["lever"],
            "posId": r["pos_id"],
            "cTime": r["c_time"],
            "version": r["version"],
            "updatedAt": r["updated_at_ms"],
            "updatedBy": r["updated_by"],
        }
        for r in registry.rows(account)
    ]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in FIELDS})
    return buffer.getvalue()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows from a JSON array or a CSV file with a header; errors name the file and row."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be positions") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python reads
        raise DataError(f"{path}: not readable JSON ({str(exc)[:120]})") from None
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        raise DataError(f"{path}: expected a JSON array of position objects")
    return document


def import_rows(
    registry: Registry,
    rows: list[dict[str, Any]],
    *,
    source: str,
    account: str | None = None,
) -> int:
    """Record each row as a bot write (checked first, then written in one transaction, with
    progress on the `posguard.progress` logger); returns how many were written. A bad row, or
    a failure while writing, leaves the registry as it was."""
    # Keyed by position, the last row of a key wins, as within one write_many call.
    writes: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for index, row in enumerate(rows):
        where = f"{source}: row {index + 1}"
        name = row.get("account") or account
        if not name:
            raise DataError(f"{where}: no account (add an account column or pass --account)")
        for field in ("instId", "pos"):
            if row.get(field) in (None, ""):
                raise DataError(f"{where}: {field!r} is required", field=field)
        c_time = row.get("cTime")
        write = {
            "account": str(name),
            "inst_id": str(row["instId"]),
            "pos_side": str(row.get("posSide") or "net"),
            "mgn_mode": str(row.get("mgnMode") or "cross"),
            "pos": row["pos"],
            "avg_px": row.get("avgPx") or None,
            "lever": row.get("lever") or None,
            "pos_id": row.get("posId") or None,
            "c_time": _c_time(c_time, where),
        }
        key = (write["account"], write["inst_id"], write["pos_side"], write["mgn_mode"])
        writes.pop(key, None)
        writes[key] = write
    ordered = list(writes.values())
    progress = Progress(f"registry import from {source}: positions written", len(ordered))
    registry.write_many(ordered, progress=progress.advance)
    return len(rows)


def _c_time(value: object, where: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise DataError(
            f"{where}: cTime {value!r} is not a millisecond timestamp", field="cTime"
        ) from None
