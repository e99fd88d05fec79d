from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from posguard.okx import OkxClient
from posguard.settings import AccountSettings
from posguard.sim import SimExchange, SimServer, validate_scenario
from posguard.sim.cli_support import known_instruments
from posguard.sim.scenario import read_scenario_document

MAIN: dict[str, Any] = {
    "name": "main",
    "api_key": "sim-main-key",
    "secret_key": "sim-main-secret",
    "passphrase": "sim-main-passphrase",
    "demo": True,
}


def scenario(**document: Any) -> Any:
    document.setdefault("accounts", [MAIN])
    return validate_scenario(document, "test scenario", known_instruments())


def shipped(name: str) -> Any:
    document, source = read_scenario_document(name)
    return validate_scenario(document, source, known_instruments())


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimExchange(scenario(name="empty"))) as server:
        yield server


def client_for(server: SimServer, name: str = "main", **overrides: Any) -> OkxClient:
    spec = {**MAIN, **overrides}
    account = AccountSettings(
        api_key=spec["api_key"],
        secret_key=spec["secret_key"],
        passphrase=spec["passphrase"],
        demo=spec["demo"],
        base_url=server.base_url,
    )
    return OkxClient(base_url=server.base_url, account_name=name, account=account)


def control(server: SimServer, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"{server.base_url}/__sim__/{path}"
    response = httpx.post(url, json=body or {}) if body is not None else httpx.get(url)
    response.raise_for_status()
    return response.json()
