"""Declared frame schemas and the one vectorized conversion from OKX strings to typed columns.

OKX sends every number as a string and "" for "not available". Here, and only here, strings
become numbers: "" (or an absent optional field) becomes NA, never 0; a value that is neither
a number nor "" raises `DataError` naming the entity, field, value and instId.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from posguard.errors import DataError

Kind = Literal["str", "num", "int", "ms"]

# The dtype each kind becomes; GX and the engines rely on these.
DTYPES: dict[str, str] = {"str": "str", "num": "float64", "int": "Int64", "ms": "Int64"}


@dataclass(frozen=True)
class Column:
    wire: str
    kind: Kind = "str"
    required: bool = False
    # The frame's name for the column when it differs from OKX's (instrument `lever` is a
    # ceiling, not a position's leverage, so it becomes `maxLever`).
    rename: str | None = None

    @property
    def name(self) -> str:
        return self.rename or self.wire


@dataclass(frozen=True)
class Schema:
    entity: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def wire_names(self) -> list[str]:
        """The OKX fields the columns are read from (what a trimmed answer must keep)."""
        return [c.wire for c in self.columns]

    def dtypes(self) -> dict[str, str]:
        return {c.name: DTYPES[c.kind] for c in self.columns}

    def empty(self) -> pd.DataFrame:
        template = _EMPTY.get(self.entity)
        if template is None:
            template = pd.DataFrame(
                {c.name: pd.Series([], dtype=DTYPES[c.kind]) for c in self.columns}
            )
            _EMPTY[self.entity] = template
        return template.copy()


_EMPTY: dict[str, pd.DataFrame] = {}


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _inst_id_at(inst_ids: Sequence[Any] | None, row: int) -> str:
    if inst_ids is None:
        return "unknown"
    value = inst_ids[row]
    return str(value) if isinstance(value, str) and value else "unknown"


def _numeric(
    values: list[Any], column: Column, schema: Schema, inst_ids: Sequence[Any] | None
) -> np.ndarray[Any, Any]:
    # Fast path: numpy parses decimal strings in C; "" and absent become NaN. Anything it
    # refuses, or any non-finite value written out ("NaN", "inf"), takes the careful path,
    # which names the bad value.
    given = [not (v is None or v == "") for v in values]
    try:
        fast = np.asarray(
            [v if ok else "nan" for v, ok in zip(values, given, strict=True)], dtype="float64"
        )
    except (TypeError, ValueError):
        fast = None
    if fast is not None and bool(np.isfinite(fast[np.asarray(given, dtype=bool)]).all()):
        return fast
    raw = pd.Series(values, dtype="object")
    present = raw.notna() & (raw != "")
    as_number = pd.to_numeric(raw.where(present, None), errors="coerce")
    numbers = as_number.to_numpy(dtype="float64", na_value=np.nan)
    bad = present.to_numpy() & ~np.isfinite(numbers)
    if bad.any():
        positions = np.flatnonzero(bad)
        first = int(positions[0])
        more = (
            f" ({len(positions) - 1} more bad values in this field)" if len(positions) > 1 else ""
        )
        raise DataError(
            f"{schema.entity}: field {column.wire!r} has value {_describe(values[first])} for "
            f"instId {_inst_id_at(inst_ids, first)} (record {first}); expected a decimal "
            f'number or ""{more}. The payload is not what OKX documents: check its source',
            field=column.wire,
            value=values[first],
            inst_id=_inst_id_at(inst_ids, first),
        )
    return numbers


def build_frame(
    schema: Schema, records: Sequence[dict[str, Any]], *, extra: Sequence[str] = ()
) -> pd.DataFrame:
    """Records (dicts of OKX strings) -> a frame with the schema's columns and dtypes."""
    if not records:
        return schema.empty()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"{schema.entity}: record {index} is a {type(record).__name__}, not an object; "
                f"is this the right endpoint's payload?",
                field=None,
                value=record,
            )
    inst_ids: list[Any] | None = (
        [r.get("instId") for r in records]
        if any(c.wire == "instId" for c in schema.columns)
        else None
    )
    columns: dict[str, Any] = {}
    for column in schema.columns:
        values = (
            inst_ids
            if column.wire == "instId" and inst_ids is not None
            else [r.get(column.wire) for r in records]
        )
        if column.required:
            missing = [i for i, v in enumerate(values) if v is None or v == ""]
            if missing:
                first = missing[0]
                raise DataError(
                    f"{schema.entity}: record {first} (instId {_inst_id_at(inst_ids, first)}) "
                    f"has no value for required field {column.wire!r}; OKX always sends it, "
                    f"so the payload is truncated or from another endpoint",
                    field=column.wire,
                    value=values[first],
                    inst_id=_inst_id_at(inst_ids, first),
                )
        columns[column.name] = _convert(values, column, schema, inst_ids)
    frame = pd.DataFrame(columns)
    for name in extra:
        frame[name] = pd.Series([r.get(name) for r in records], dtype="object")
    return frame


def _convert(
    values: list[Any], column: Column, schema: Schema, inst_ids: Sequence[Any] | None
) -> pd.Series:
    if column.kind == "str":
        series = pd.Series(values, dtype="object")
        series = series.where(series.notna() & (series != ""), None)
        return series.astype("str")
    numbers = _numeric(values, column, schema, inst_ids)
    if column.kind == "num":
        return pd.Series(numbers, dtype="float64")
    # Integers (codes, tiers, epoch ms): whole numbers only.
    finite = np.isfinite(numbers)
    if (numbers[finite] != np.floor(numbers[finite])).any():
        first = int(np.flatnonzero(finite & (numbers != np.floor(numbers)))[0])
        raise DataError(
            f"{schema.entity}: field {column.wire!r} has value {_describe(values[first])} for "
            f"instId {_inst_id_at(inst_ids, first)} (record {first}); expected a whole number",
            field=column.wire,
            value=values[first],
            inst_id=_inst_id_at(inst_ids, first),
        )
    result = pd.Series(numbers, dtype="float64").round().astype("Int64")
    return result
