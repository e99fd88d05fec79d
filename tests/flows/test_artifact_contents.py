"""What a reader of the Prefect UI sees after one reconcile-positions run on the incident.

One run per module: the bot's registry rows seeded, the simulator at +4m (BTC-USDT-SWAP was
liquidated at 00:04:00, XRP-USDT-SWAP is back at 1.929, DOGE's lever is "" and its
leverage-info call fails). Every artifact of that flow run is read back from the Prefect
server and its contents asserted, not only its key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows import reconcile_positions
from posguard.sim import SimExchange
from tests.flows.conftest import flows_against
from tests.flows.helpers import advance, seed_bot_writes
from tests.sim.conftest import client_for, shipped

XRP_CT_VAL = 100.0  # XRP per XRP-USDT-SWAP contract


@dataclass
class Run:
    """One flow run's summary, its artifacts by key, and the exchange's positions then."""

    folder: Path
    summary: dict[str, Any]
    artifacts: dict[str, Any]
    exchange: dict[str, dict[str, Any]]

    def table(self, key: str) -> list[dict[str, Any]]:
        artifact = self.artifacts[key]
        assert artifact.type == "table"
        rows = json.loads(artifact.data)
        assert isinstance(rows, list)
        return rows

    def markdown(self, key: str) -> str:
        artifact = self.artifacts[key]
        assert artifact.type == "markdown"
        return str(artifact.data)


def artifacts_of(flow_run_id: UUID) -> dict[str, Any]:
    """The artifacts one flow run created, by key (other tests share the server)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    by_key = {a.key: a for a in found if a.key}
    assert len(by_key) == len(found), [a.key for a in found]
    return by_key


@pytest.fixture(scope="module")
def run(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("artifacts")
    with flows_against(SimExchange(shipped("incident-2025-12-20")), folder) as incident:
        base = incident.server.base_url
        assert seed_bot_writes(base) == 5
        advance(base, "+4m")
        state = reconcile_positions("main", return_state=True)
        assert state.is_completed(), state.message
        summary = state.result()
        with client_for(incident.server) as client:
            exchange = {str(r["instId"]): r for r in client.positions(inst_type="SWAP")}
        yield Run(folder, summary, artifacts_of(state.state_details.flow_run_id), exchange)


def test_the_run_left_exactly_the_four_reconcile_artifacts(run: Run) -> None:
    """Positions, the expectations summary, the failed rows, and the drift of this cycle."""
    assert set(run.artifacts) == {
        "positions-main",
        "expectations-positions-main",
        "failed-expectations-positions-main",
        "drift-main",
    }


def test_positions_table_computes_xrp_notional_with_100_xrp_per_contract(run: Run) -> None:
    """XRP-USDT-SWAP: 108 contracts x 100 XRP x markPx 1.929 = 20,833.20 USD, the figure OKX
    reports too; contracts x markPx (208.33, the incident's bug) is 100 times smaller."""
    rows = {row["instId"]: row for row in run.table("positions-main")}
    assert list(rows) == ["XRP-USDT-SWAP", "ETH-USDT-SWAP", "DOGE-USDT-SWAP", "SUSHI-USDT-SWAP"]
    xrp = rows["XRP-USDT-SWAP"]
    mark = float(run.exchange["XRP-USDT-SWAP"]["markPx"])
    assert mark == 1.929
    assert (xrp["posSide"], xrp["mgnMode"], xrp["pos"]) == ("net", "cross", 108.0)
    assert xrp["notional"] == pytest.approx(108 * XRP_CT_VAL * mark)
    assert xrp["notional"] == pytest.approx(20_833.2)
    assert xrp["notional"] != pytest.approx(108 * mark)
    assert xrp["notionalUsd (OKX)"] == pytest.approx(xrp["notional"])


def test_positions_table_names_where_each_lever_came_from(run: Run) -> None:
    """The position's own lever, leverage-info for ETH's empty one, and DOGE's left unknown
    (null, never 0) because its leverage-info call was refused."""
    levers = {
        row["instId"]: (row["lever"], row["lever_source"]) for row in run.table("positions-main")
    }
    assert levers == {
        "XRP-USDT-SWAP": (5.0, "position"),
        "ETH-USDT-SWAP": (3.0, "leverage_info"),
        "DOGE-USDT-SWAP": (None, "unknown"),
        "SUSHI-USDT-SWAP": (2.0, "position"),
    }
    # The run's summary keeps the same table (for `posguard status` and the demo's screen).
    assert run.summary["open_positions"] == run.table("positions-main")


def test_expectations_markdown_counts_the_failures_and_links_the_data_docs(run: Run) -> None:
    """A failing validation builds Data Docs (tasks/validate.py): the summary says how many
    of the run's expectations failed and links this run's page under the state_dir."""
    results = run.summary["expectations"]["results"]
    failed = [r["expectation"] for r in results if not r["success"]]
    assert failed == ["lever > 0"]
    markdown = run.markdown("expectations-positions-main")
    assert markdown.startswith("# Positions expectations\n\n")
    assert f"**1 of {len(results)} expectations failed** for main" in markdown
    links = re.findall(r"\[This run in Great Expectations Data Docs\]\(([^)]+)\)", markdown)
    assert len(links) == 1, markdown
    url = urlparse(links[0])
    assert url.scheme == "file"
    page = Path(unquote(url.path))
    assert page.is_relative_to(run.folder / "state" / "data-docs")
    assert page.is_file()


def test_failed_expectations_table_names_doge_and_why(run: Run) -> None:
    """One failing row: DOGE-USDT-SWAP's lever is unknown, with leverage-info's refusal."""
    rows = run.table("failed-expectations-positions-main")
    assert rows == [
        {
            "expectation": "lever > 0",
            "instId": "DOGE-USDT-SWAP",
            "posSide": "net",
            "mgnMode": "cross",
            "detail": "lever is unknown (leverage-info failed for DOGE-USDT-SWAP (cross): "
            "51000 Parameter instId error)",
        }
    ]
    assert run.summary["failing_expectation_rows"] == len(rows)
    total = len(run.summary["expectations"]["results"])
    assert run.artifacts["failed-expectations-positions-main"].description == (
        f"Failed expectations: **1 of {total} expectations failed** for main"
    )


def test_drift_table_lists_this_cycles_events_with_kind_status_and_cause(run: Run) -> None:
    """The liquidated BTC-USDT-SWAP the registry still held: a DRIFT_REMOVE confirmed at once
    by positions-history (close type 3), cause liquidated. The table is the cycle's events
    without their evidence."""
    rows = run.table("drift-main")
    assert [
        (r["instId"], r["posSide"], r["mgnMode"], r["kind"], r["status"], r["cause"]) for r in rows
    ] == [("BTC-USDT-SWAP", "net", "isolated", "DRIFT_REMOVE", "confirmed", "liquidated")]
    assert rows[0]["account"] == "main"
    assert rows[0]["at"].startswith("2025-12-20T00:04:")
    assert rows[0]["id"].startswith("drift-")
    assert "evidence" not in rows[0]
    cycle = [{k: v for k, v in e.items() if k != "evidence"} for e in run.summary["drift_events"]]
    assert rows == cycle
    assert run.summary["alerts"] == 1  # the confirmed drift, as one event
