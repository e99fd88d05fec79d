"""Seams for calling task bodies (`task.fn(...)`): the OKX simulator, a SQLite registry file,
and posguard's settings pointed at both through POSGUARD_CONFIG (the Prefect test server, for
tasks whose client takes Prefect rate-limit slots, is tests/conftest.py's `prefect_server`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from posguard.settings import Settings
from posguard.sim import SimExchange, SimServer
from posguard.stages import fetch as fetch_stage
from tasks.context import reload_settings
from tests.flows.conftest import write_settings
from tests.sim.conftest import client_for, shipped

INCIDENT = "incident-2025-12-20"
# 2025-12-20T00:00:00Z, the incident scenario's start on the simulator's clock.
INCIDENT_START_MS = 1_766_188_800_000


@contextmanager
def configured(config: Path) -> Iterator[Settings]:
    """posguard's settings read from `config` (as a deployment points POSGUARD_CONFIG at its
    file); the previous settings are back afterwards."""
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("POSGUARD_CONFIG", str(config))
            yield reload_settings()
    finally:
        reload_settings()


@pytest.fixture(scope="module")
def incident_sim() -> Iterator[SimServer]:
    """The incident at its start (+0s), for tests that only read from it."""
    with SimServer(SimExchange(shipped(INCIDENT))) as server:
        yield server


@pytest.fixture(scope="module")
def incident_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state_dir per module: the expectations runner (built per Data Docs folder) is
    built once for the module's validations."""
    return tmp_path_factory.mktemp("incident")


@pytest.fixture
def main_account(incident_sim: SimServer, incident_folder: Path) -> Iterator[Settings]:
    """Settings whose account `main` is the simulator's incident account."""
    with configured(write_settings(incident_folder, incident_sim.base_url)) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def instruments(incident_sim: SimServer) -> pd.DataFrame:
    """The simulator's SWAP instruments, read by a plain client (no Prefect API needed)."""
    with client_for(incident_sim) as client:
        return fetch_stage.fetch_instruments(client)


@pytest.fixture
def registry_only(tmp_path: Path) -> Iterator[Settings]:
    """Settings with a fresh SQLite registry file and an account nobody calls."""
    with configured(write_settings(tmp_path, "http://127.0.0.1:9")) as loaded:
        yield loaded
