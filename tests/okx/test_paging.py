"""Paged walks say whether they reached their lower bound or were cut at max_pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from posguard.okx.paging import PagedRecords
from tests.helpers import FakeOkx, answer, envelope

HISTORY = "/api/v5/account/positions-history"
FILLS = "/api/v5/trade/fills"
CANDLES = "/api/v5/market/candles"
NOW = 1_700_000_000_000


def history_record(u_time: int) -> dict[str, str]:
    return {
        "instType": "SWAP",
        "instId": "XRP-USDT-SWAP",
        "type": "2",
        "cTime": str(u_time - 60_000),
        "uTime": str(u_time),
    }


def fill_record(bill: int, ts: int) -> dict[str, str]:
    return {"instId": "XRP-USDT-SWAP", "billId": str(bill), "ts": str(ts), "fillSz": "1"}


def okx_pages(
    records: list[dict[str, str]], cursor: str, time_field: str, lower: str
) -> Callable[[httpx.Request], httpx.Response]:
    """An endpoint paged like OKX: newest first, `after` on `cursor`, `lower` as the bound."""

    def route(request: httpx.Request) -> httpx.Response:
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        rows = [r for r in records if int(r[time_field]) >= int(query.get(lower, "0"))]
        if "after" in query:
            rows = [r for r in rows if int(r[cursor]) < int(query["after"])]
        return answer(envelope(rows[: int(query["limit"])]))

    return route


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_history_cut_at_max_pages_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    # 1,500 closes in the last 25 minutes: more than 10 pages of 100.
    records = [history_record(NOW - i * 1000) for i in range(1500)]
    fake = FakeOkx()
    fake.routes[HISTORY] = okx_pages(records, "uTime", "uTime", "before")
    with caplog.at_level(logging.WARNING, "posguard.okx"), fake.client() as client:
        walk = client.positions_history(before_ms=NOW - 3_600_000)
    assert isinstance(walk, PagedRecords)
    assert len(walk) == 1000
    assert walk.pages == 10
    assert not walk.complete
    assert walk.oldest_ms == NOW - 999_000  # records older than this were not read
    assert walk.partial_from_ms(NOW) == NOW - 999_000
    [warning] = warnings_of(caplog)
    assert HISTORY in warning
    assert "'main'" in warning
    assert "10 pages" in warning
    assert "2023-11-14T21:56:41.000Z" in warning  # the oldest time covered, readable
    assert str(NOW - 999_000) in warning


def test_history_that_reaches_its_lower_bound_is_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [history_record(NOW - i * 1000) for i in range(250)]
    fake = FakeOkx()
    fake.routes[HISTORY] = okx_pages(records, "uTime", "uTime", "before")
    with caplog.at_level(logging.WARNING, "posguard.okx"), fake.client() as client:
        walk = client.positions_history(before_ms=NOW - 3_600_000)
    assert (len(walk), walk.pages, walk.complete) == (250, 3, True)
    assert walk.partial_from_ms(NOW) is None
    assert walk.oldest_ms == NOW - 249_000
    assert warnings_of(caplog) == []


def test_fills_cut_at_max_pages_report_the_oldest_fill_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [fill_record(10_000 - i, NOW - i * 500) for i in range(400)]
    fake = FakeOkx()
    fake.routes[FILLS] = okx_pages(records, "billId", "ts", "begin")
    with caplog.at_level(logging.WARNING, "posguard.okx"), fake.client() as client:
        walk = client.fills(inst_type="SWAP", begin_ms=NOW - 3_600_000, max_pages=3)
    assert (len(walk), walk.complete, walk.oldest_ms) == (300, False, NOW - 299 * 500)
    afters = [parse_qs(r.url.query.decode()).get("after") for r in fake.requests_to(FILLS)]
    assert afters == [None, ["9901"], ["9801"]]
    [warning] = warnings_of(caplog)
    assert FILLS in warning
    assert "3 pages" in warning


def test_a_full_page_without_usable_cursors_is_not_complete() -> None:
    fake = FakeOkx()
    fake.routes[FILLS] = lambda _r: answer(
        envelope([{"instId": "XRP-USDT-SWAP", "billId": "", "ts": "", "fillSz": "1"}] * 100)
    )
    with fake.client() as client:
        walk = client.fills(inst_type="SWAP")
    assert (walk.pages, walk.complete, walk.oldest_ms) == (1, False, None)
    assert walk.partial_from_ms(NOW) == NOW  # nothing is known to be covered


def test_candles_cut_without_a_range_are_not_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    rows: list[list[Any]] = [[str(NOW - 60_000 * i), "1", "1", "1", "1"] for i in range(900)]

    def route(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        after = int(query.get("after", [str(NOW + 1)])[0])
        older = [r for r in rows if int(r[0]) < after]
        return answer(envelope(older[: int(query["limit"][0])]))

    fake = FakeOkx()
    fake.routes[CANDLES] = route
    with caplog.at_level(logging.WARNING, "posguard.okx"), fake.client() as client:
        wanted = client.candles("XRP-USDT-SWAP", limit=300, max_pages=2)
        ranged = client.candles(
            "XRP-USDT-SWAP", limit=300, max_pages=2, before_ms=NOW - 60_000 * 800
        )
    assert (len(wanted), wanted.complete) == (600, False)
    assert wanted.oldest_ms == NOW - 60_000 * 599
    assert not ranged.complete
    [warning] = warnings_of(caplog)  # only the walk asked for a range says it was cut
    assert CANDLES in warning
