"""Property: real OKX records, mutated, parse to a typed frame or raise DataError; nothing else.

Records come from shared/okx-samples (positions, instruments, positions-history, fills,
leverage-info). Each example swaps JSON types, drops fields, writes huge, non-finite or
odd-script values, and feeds the records through the parser and, for positions, through the
pure half of `posguard validate` (leverage resolution and the contract's derived columns).
Derandomized: the same 2,250 parser examples (and 200 validate-path ones) run everywhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posguard.errors import DataError
from posguard.frames import entities as E
from posguard.frames import parse_instruments, parse_leverage_info, parse_records
from posguard.frames.contract import positions_frame
from posguard.frames.detect import Entity
from posguard.frames.schema import Schema
from posguard.leverage import resolve_leverage
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES

# Hypothesis warns when the global `random` state changes while a strategy draws. These
# strategies never touch it, but in a full run other tests' background threads (the session's
# Prefect harness and its clients, retry jitter) do, at any moment: that warning is noise here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

SOURCES: dict[Entity, tuple[str, ...]] = {
    "positions": (
        "positions_ccxt_1.json",
        "positions_ccxt_3_inverse_cross.json",
        "positions_okxdocs.json",
        "positions_ws_ccxt_docstring_xrp.json",
    ),
    "instruments": ("instruments_swap_ccxt_markets_info.json", "instruments_swap_nautilus.json"),
    "positions_history": (
        "positions_history_okxdocs.json",
        "positions_history_ccxt_docstring_xrp.json",
    ),
    "fills": ("fills_okxdocs.json", "fills_history_ccxt_fixture_spot.json"),
    "leverage_info": (
        "leverage_info_okxdocs.json",
        "leverage_info_ccxt_pr14687_cross_longshort.json",
    ),
}
SCHEMAS: dict[Entity, Schema] = {
    "positions": E.POSITIONS,
    "instruments": E.INSTRUMENTS,
    "positions_history": E.POSITIONS_HISTORY,
    "fills": E.FILLS,
    "leverage_info": E.LEVERAGE_INFO,
}
DROP = object()  # a mutation that removes the field
EXAMPLES_PER_ENTITY = 450  # x 5 entities: 2,250 examples through the parser


def _records(names: tuple[str, ...]) -> list[dict[str, Any]]:
    folder: Path = SAMPLES
    return [r for name in names for r in load_records(folder / name) if isinstance(r, dict)]


RECORDS: dict[Entity, list[dict[str, Any]]] = {e: _records(n) for e, n in SOURCES.items()}
INSTRUMENTS = parse_instruments(RECORDS["instruments"])

# Values OKX never sends where a number or a name belongs, and some it does.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    10**30,
    -(10**30),
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    [],
    ["1"],
    [[["1"]]],
    {},
    {"pos": "1"},
    "",
    " ",
    "0",
    "-0",
    "1e400",
    "-1e400",
    "9" * 40,
    "99999999999999999999",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "1_000",
    "\u0661\u0662\u0663",  # Arabic-Indic digits
    "\u0967\u0968\u0969",  # Devanagari digits
    "\uff11\uff12\uff13",  # fullwidth digits
    "\u4e00",
    "\u0663.\u0665",
    "3,5",
    "0x1f",
    "12\n",
    "\u200b1",
    "\U0001d7d9\U0001d7da\U0001d7db",  # mathematical digits
    "SWAP",
    "long",
]
JSON_VALUES = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.text(max_size=6),
    st.integers(),
    st.floats(),
)
# (field index, DROP or a new value): at most three mutations per record.
MUTATIONS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=63), st.one_of(st.just(DROP), JSON_VALUES)),
    max_size=3,
)


@st.composite
def mutated(draw: st.DrawFn, entity: Entity) -> list[dict[str, Any]]:
    pool = RECORDS[entity]
    # The fields the parser reads: mutating the other ~40 of a position tests nothing.
    fields = SCHEMAS[entity].wire_names
    records = [dict(r) for r in draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2))]
    for record in records:
        for index, value in draw(MUTATIONS):
            name = fields[index % len(fields)]
            if value is DROP:
                record.pop(name, None)
            else:
                record[name] = value
    return records


def _parse_or_data_error(
    entity: Entity, records: list[dict[str, Any]], *, contract: bool = False
) -> pd.DataFrame | DataError:
    try:
        frame = parse_records(records, entity)
        if contract:
            # The pure half of `posguard validate`: leverage resolution, derived columns.
            resolved = resolve_leverage(frame, parse_leverage_info([]))
            positions_frame(resolved, INSTRUMENTS)
    except DataError as exc:
        return exc
    return frame


def _check(outcome: pd.DataFrame | DataError, count: int) -> None:
    if isinstance(outcome, DataError):
        assert outcome.field is None or isinstance(outcome.field, str)
        assert str(outcome)
    else:
        _check_frame(outcome, count)


def _check_frame(frame: pd.DataFrame, count: int) -> None:
    assert len(frame) == count
    for name in frame.columns:
        if frame[name].dtype == "float64":
            values = frame[name].dropna().to_numpy()
            assert all(math.isfinite(v) for v in values), name  # "" is NA, never inf


@pytest.mark.parametrize("entity", list(SOURCES))
def test_mutated_records_parse_or_raise_data_error(entity: Entity) -> None:
    @settings(
        max_examples=EXAMPLES_PER_ENTITY,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(records=mutated(entity))
    def check(records: list[dict[str, Any]]) -> None:
        _check(_parse_or_data_error(entity, records), len(records))

    check()


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(records=mutated("positions"))
def test_mutated_positions_through_validate_s_pure_stages(records: list[dict[str, Any]]) -> None:
    # Fewer examples: resolution and the contract's joins cost ~10x a parse.
    _check(_parse_or_data_error("positions", records, contract=True), len(records))


def test_every_sample_parses_unmutated() -> None:
    # The property above means something only if the unmutated records parse.
    for entity, records in RECORDS.items():
        assert len(parse_records(records, entity)) == len(records) > 0
