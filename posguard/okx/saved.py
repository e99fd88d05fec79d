"""Reading saved OKX answers: envelopes (raising their error), bare `data` arrays, WebSocket
pushes or single records. The I/O half of `posguard validate` and the sample tests; which
endpoint the records came from is told by `posguard.frames.detect`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from posguard.errors import DataError
from posguard.okx.envelope import CallContext, unwrap


def records_of(payload: Any, *, source: str = "payload") -> list[Any]:
    """The records of an envelope (raising its error), a bare array, or one bare record."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and "code" in payload:
        return unwrap(payload, CallContext("FILE", source), http_status=None)
    if isinstance(payload, dict) and isinstance(payload.get("data"), list) and "arg" in payload:
        # A websocket push: same record schema as REST, no code.
        records: list[Any] = payload["data"]
        return records
    if isinstance(payload, dict) and payload:
        return [payload]
    raise DataError(
        f"{source}: expected an OKX response envelope, a data array or a record, "
        f"got {type(payload).__name__}",
        field="data",
    )


def load_records(path: Path) -> list[Any]:
    """Records from a JSON file; unreadable files raise `DataError` naming the file."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror})", field=None) from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read", field=None) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers too long
        raise DataError(f"{path}: not valid JSON ({exc})", field=None) from None
    return records_of(payload, source=str(path))
