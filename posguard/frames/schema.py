"""Declared frame schemas and the one vectorized conversion from OKX strings to typed columns.

OKX sends every number as a string and "" for "not available". Here, and only here, strings
become numbers: "" (or an absent optional field) becomes NA, never 0; a value that is neither
a number nor "" raises `DataError` naming the entity, field, value and instId.

Only what OKX sends is accepted: every field of these schemas is a JSON string on the wire, so
a JSON boolean, number, array or object is bad input, and so is text Python's float() would
read but OKX never writes ("1_000", non-ASCII digits, padding, "NaN", "inf"). Integer fields
must be whole and exact in a float64 (|x| < 2**53: an epoch in ms reaches 2**41).
"""

from __future__ import annotations

import re
import reprlib
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


# A decimal number as text: ASCII digits, an optional sign, point and exponent.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# What float() reads besides plain decimals, once non-ASCII text and non-finite results are
# ruled out: underscores between digits and surrounding (ASCII) whitespace.
_LENIENT_CHARS = "_ \t\n\r\x0b\x0c"
# Integers beyond this lose digits in a float64 (and past 2**63 do not fit an Int64 at all).
_EXACT_INT = float(2**53)

_JSON_TYPES = {
    bool: "a JSON boolean",
    int: "a JSON number",
    float: "a JSON number",
    list: "a JSON array",
    dict: "a JSON object",
}

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlevel = 2


def _describe(value: object) -> str:
    # reprlib bounds the work too: a value can be a huge or deeply nested JSON array.
    text = _short.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _refuse_non_strings(
    values: list[Any], column: Column, schema: Schema, inst_ids: Sequence[Any] | None
) -> None:
    """Every present value must be a JSON string (OKX writes numbers as strings too)."""
    if set(map(type, values)) <= {str, type(None)}:
        return
    first = next(i for i, v in enumerate(values) if not (v is None or type(v) is str))
    value = values[first]
    expected = 'a decimal number in a JSON string, or ""' if column.kind != "str" else "a string"
    raise DataError(
        f"{schema.entity}: field {column.wire!r} has value {_describe(value)} "
        f"({_json_type(value)}) for instId {_inst_id_at(inst_ids, first)} (record {first}); "
        f"expected {expected}. The payload is not what OKX documents: check its source",
        field=column.wire,
        value=value,
        inst_id=_inst_id_at(inst_ids, first),
    )


def _plain_decimals(values: list[str | None]) -> bool:
    """Whether no present value uses float()'s leniencies (checked over all values at once)."""
    text = "".join(filter(None, values))
    return text.isascii() and not any(c in text for c in _LENIENT_CHARS)


def is_plain_finite(text: str) -> bool:
    return _DECIMAL.fullmatch(text) is not None and np.isfinite(float(text))


def _inst_id_at(inst_ids: Sequence[Any] | None, row: int) -> str:
    if inst_ids is None:
        return "unknown"
    value = inst_ids[row]
    return str(value) if isinstance(value, str) and value else "unknown"


def _numeric(
    values: list[Any], column: Column, schema: Schema, inst_ids: Sequence[Any] | None
) -> np.ndarray[Any, Any]:
    _refuse_non_strings(values, column, schema, inst_ids)
    # Fast path: numpy parses decimal strings in C; "" and absent become NaN. Anything it
    # refuses, any non-finite value written out ("NaN", "inf") and any text float() reads
    # but OKX never writes take the careful path, which names the bad value.
    given = [not (v is None or v == "") for v in values]
    try:
        fast = np.asarray(
            [v if ok else "nan" for v, ok in zip(values, given, strict=True)], dtype="float64"
        )
    except (TypeError, ValueError):
        fast = None
    if (
        fast is not None
        and bool(np.isfinite(fast[np.asarray(given, dtype=bool)]).all())
        and _plain_decimals(values)
    ):
        return fast
    bad = [i for i, v in enumerate(values) if given[i] and not is_plain_finite(v)]
    first = bad[0]
    more = f" ({len(bad) - 1} more bad values in this field)" if len(bad) > 1 else ""
    raise DataError(
        f"{schema.entity}: field {column.wire!r} has value {_describe(values[first])} for "
        f"instId {_inst_id_at(inst_ids, first)} (record {first}); expected a decimal "
        f'number (ASCII digits) or ""{more}. The payload is not what OKX documents: check its '
        f"source",
        field=column.wire,
        value=values[first],
        inst_id=_inst_id_at(inst_ids, first),
    )


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
) -> np.ndarray[Any, Any] | pd.api.extensions.ExtensionArray:
    # Arrays, not Series: the frame is built once from them. A small answer (one account's
    # few positions) otherwise pays pandas' per-Series overhead on every column.
    if column.kind == "str":
        _refuse_non_strings(values, column, schema, inst_ids)
        return pd.array([None if v == "" else v for v in values], dtype="str")
    numbers = _numeric(values, column, schema, inst_ids)
    if column.kind == "num":
        return numbers
    # Integers (codes, tiers, epoch ms): whole numbers only, small enough to be exact.
    finite = np.isfinite(numbers)
    with np.errstate(invalid="ignore"):
        fraction = finite & (numbers != np.floor(numbers))
        too_large = finite & (np.abs(numbers) >= _EXACT_INT)
    if fraction.any() or too_large.any():
        first = int(np.flatnonzero(fraction | too_large)[0])
        expected = "a whole number" if fraction[first] else "an integer below 2**53"
        raise DataError(
            f"{schema.entity}: field {column.wire!r} has value {_describe(values[first])} for "
            f"instId {_inst_id_at(inst_ids, first)} (record {first}); expected {expected}",
            field=column.wire,
            value=values[first],
            inst_id=_inst_id_at(inst_ids, first),
        )
    missing = ~finite
    return pd.arrays.IntegerArray(np.where(missing, 0, numbers).astype("int64"), missing)
