"""Every OKX answer in shared/okx-samples/ goes through `frames` (new files need no code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posguard.errors import AuthError, ExchangeError, RateLimitedError, RejectedError
from posguard.frames import detect_entity, parse_records
from posguard.okx.saved import load_records
from tests.conftest import SAMPLES

FILES = sorted(SAMPLES.glob("*.json"))
ERRORS: dict[str, type[ExchangeError]] = {
    "error_404_unknown_path_nautilus.json": RejectedError,
    "error_50011_rate_limit_nautilus.json": RateLimitedError,
    "error_50111_invalid_key_nautilus.json": AuthError,
    "error_58001_ccxt_docstring.json": RejectedError,
    "error_bulk_sCode_ccxt_docstring.json": RejectedError,
}


def test_the_samples_are_there() -> None:
    assert len(FILES) >= 41


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_sample_parses_or_raises_its_typed_error(path: Path) -> None:
    if path.name.startswith("error_"):
        expected = ERRORS.get(path.name, ExchangeError)
        with pytest.raises(expected):
            load_records(path)
        return
    records = load_records(path)
    entity = detect_entity(records)
    frame = parse_records(records, entity)
    assert len(frame) == len(records)
    # The entity follows from the file's name for every sample OKX's endpoints produced.
    stem = path.name
    hints = {
        "positions_history": "positions_history",
        "positions": "positions",
        "instruments": "instruments",
        "leverage_info": "leverage_info",
        "set_leverage": "leverage_info",
        "position_tiers": "position_tiers",
        "candles": "candles",
        "fills": "fills",
        "account_config": "account_config",
    }
    expected_entity = next(
        v for k, v in hints.items() if stem.startswith(k) or stem.startswith("history_" + k)
    )
    assert entity == expected_entity


def test_websocket_push_and_bare_records_are_read() -> None:
    push = json.loads((SAMPLES / "positions_ws_ccxt_docstring_xrp.json").read_text())
    assert "arg" in push
    assert (
        detect_entity(load_records(SAMPLES / "positions_ws_ccxt_docstring_xrp.json")) == "positions"
    )
    bare = load_records(SAMPLES / "positions_ccxt_docstring_linear_swap_record.json")
    assert len(bare) == 1
