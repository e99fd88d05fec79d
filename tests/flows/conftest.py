"""The incident on the simulator behind the flows (the Prefect test server: tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from posguard.sim import SimExchange, SimServer
from tasks.context import reload_settings
from tests.sim.conftest import MAIN, shipped


def write_settings(folder: Path, base_url: str, **extra: str) -> Path:
    lines = [
        f'state_dir = "{folder / "state"}"',
        f'registry_url = "sqlite:///{folder / "registry.db"}"',
        "",
        "[drift]",
        "grace_seconds = 0",
        "",
        "[accounts.main]",
        f'api_key = "{MAIN["api_key"]}"',
        f'secret_key = "{MAIN["secret_key"]}"',
        f'passphrase = "{MAIN["passphrase"]}"',
        "demo = true",
        f'base_url = "{base_url}"',
    ]
    lines = [line if not line.startswith(tuple(f"{k} =" for k in extra)) else "" for line in lines]
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    path = folder / "posguard.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Incident:
    def __init__(self, server: SimServer, folder: Path) -> None:
        self.server = server
        self.folder = folder


@contextmanager
def flows_against(exchange: SimExchange, folder: Path, **account: str) -> Iterator[Incident]:
    """The simulator serving `exchange`, and posguard's settings pointing the flows at it."""
    with SimServer(exchange) as server:
        config = write_settings(folder, server.base_url, **account)
        previous = os.environ.get("POSGUARD_CONFIG")
        os.environ["POSGUARD_CONFIG"] = str(config)
        reload_settings()
        try:
            yield Incident(server, folder)
        finally:
            if previous is None:
                os.environ.pop("POSGUARD_CONFIG", None)
            else:
                os.environ["POSGUARD_CONFIG"] = previous
            reload_settings()


@pytest.fixture
def incident(tmp_path: Path, prefect_server: None) -> Iterator[Incident]:
    with flows_against(SimExchange(shipped("incident-2025-12-20")), tmp_path) as running:
        yield running
