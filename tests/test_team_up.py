"""`posguard team up` as a user runs it: the server with basic authentication, a warm worker,
and every deployment on the team's server (not on a temporary one of the CLI's process)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import ROOT
from tests.helpers import free_port
from tests.test_team_auth import AUTH

ADMIN = "host=127.0.0.1 port=5432 dbname=postgres"


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """stdout until it holds `marker` (or the process ends, or time runs out). Read from the
    descriptor itself: a buffered readline after select() can leave the marker in Python's
    buffer where select() never sees it (the two-hosts test waited out its 300 s so)."""
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while marker.encode() not in seen and time.monotonic() < deadline:
            if selector.select(timeout=1):
                chunk = os.read(descriptor, 65536)
                if not chunk:
                    break  # the process closed its output
                seen += chunk
            elif process.poll() is not None:
                break
    return seen.decode("utf-8", errors="replace")


@pytest.mark.slow
@pytest.mark.xdist_group("team-up")
@pytest.mark.timeout(600)
def test_team_up_serves_its_deployments_behind_basic_authentication(tmp_path: Path) -> None:
    from tests.test_two_hosts import why_two_hosts_cannot_be_built

    if why_two_hosts_cannot_be_built() is None:
        # tests/test_two_hosts.py runs `posguard team up` behind basic auth as well and asks
        # for a run of one of its deployments through the API: the same checks, and the CI
        # budget has no room for both. This one stands in where namespaces cannot be made.
        pytest.skip("covered by tests/test_two_hosts.py on this machine")
    database = f"posguard_prefect_{uuid.uuid4().hex[:10]}"
    port = free_port()
    config = tmp_path / "posguard.toml"
    config.write_text(
        f'mode = "team"\nstate_dir = "{tmp_path / "state"}"\n'
        f'registry_url = "sqlite:///{tmp_path / "registry.db"}"\n\n'
        f'[team]\nprefect_database_url = "postgresql+asyncpg://127.0.0.1:5432/{database}"\n'
        f"port = {port}\nworkers = 1\n\n"
        '[accounts.main]\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\ndemo = true\n'
        'base_url = "http://127.0.0.1:9"\n'
    )
    # The secret comes from the host's environment, as the README says to give it.
    env = {
        **os.environ,
        "POSGUARD_TEAM__AUTH_STRING": AUTH,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "posguard.cli", "team", "up", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        said = read_until(process, "team mode up", timeout=300)
        assert "team mode up" in said, said[-3000:]
        api = f"http://127.0.0.1:{port}/api"
        user, password = AUTH.split(":", 1)
        listed = httpx.post(f"{api}/deployments/filter", json={}, auth=(user, password))
        assert listed.status_code == 200, listed.text[:500]
        names = {d["name"] for d in listed.json()}
        assert {"main", "all"} <= names
        assert httpx.post(f"{api}/deployments/filter", json={}).status_code == 401
        workers = httpx.post(
            f"{api}/work_pools/posguard/workers/filter", json={}, auth=(user, password)
        )
        deadline = time.monotonic() + 60
        while not workers.json() and time.monotonic() < deadline:
            time.sleep(1)
            workers = httpx.post(
                f"{api}/work_pools/posguard/workers/filter", json={}, auth=(user, password)
            )
        assert [w["name"] for w in workers.json()] == ["posguard-0"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        rest, _ = process.communicate(timeout=120)
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    assert AUTH.split(":", 1)[1] not in said + rest
