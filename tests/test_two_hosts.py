"""Two hosts built from network namespaces on this machine (issue 18): the server host runs
PostgreSQL and `posguard team up` behind basic authentication with no worker of its own; the
worker host runs the simulator (its OKX) and `posguard team worker --server`. A guard run
asked for through the API completes through the other host's worker, a client without the
auth string gets 401, and the worker host's configuration (not the run's dry_run=false)
decides that leverage is not applied. Everything made here is removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from posguard.stages.leverage_apply import REFUSED_BY_CONFIGURATION
from tests.conftest import ROOT
from tests.sim.conftest import MAIN
from tests.test_team_up import read_until

AUTH = "posguard:two-hosts-test-only"  # a test value, never a credential
PYTHON = sys.executable
API_PORT = 4200
SIM_PORT = 8765


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)


def why_two_hosts_cannot_be_built() -> str | None:
    """None when namespaces, a veth pair and a PostgreSQL cluster can be made here."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip") or not shutil.which("runuser"):
        return "the ip and runuser commands are needed"
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "PostgreSQL's initdb is needed to give the server host its own database"
    probe = f"pgprobe{secrets.token_hex(3)}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()[:200]}"
    _run("ip", "netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    namespace: str
    address: str

    def command(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        prefix = ["ip", "netns", "exec", self.namespace]
        if env:
            prefix += ["env", *[f"{k}={v}" for k, v in env.items()]]
        return [*prefix, *args]


@dataclass
class Network:
    server: Host
    worker: Host


@pytest.fixture
def network() -> Iterator[Network]:
    reason = why_two_hosts_cannot_be_built()
    if reason is not None:
        pytest.skip(f"two hosts cannot be built here: {reason}")
    tag = secrets.token_hex(3)
    subnet = 1 + secrets.randbelow(250)
    server = Host(f"pg18a{tag}", f"10.218.{subnet}.1")
    worker = Host(f"pg18b{tag}", f"10.218.{subnet}.2")
    try:
        for host in (server, worker):
            _run("ip", "netns", "add", host.namespace)
            _run("ip", "-n", host.namespace, "link", "set", "lo", "up")
        _run("ip", "link", "add", f"v18a{tag}", "type", "veth", "peer", "name", f"v18b{tag}")
        for host, link in ((server, f"v18a{tag}"), (worker, f"v18b{tag}")):
            _run("ip", "link", "set", link, "netns", host.namespace)
            _run("ip", "-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", link)
            _run("ip", "-n", host.namespace, "link", "set", link, "up")
        yield Network(server, worker)
    finally:
        for host in (server, worker):
            pids = _run("ip", "netns", "pids", host.namespace, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            # Deleting a namespace deletes its end of the veth pair, and so the pair.
            _run("ip", "netns", "del", host.namespace, check=False)


@pytest.fixture
def server_database(network: Network) -> Iterator[str]:
    """A PostgreSQL cluster of the server host's own (the machine's listens in the root
    namespace, which neither host reaches): superuser root, trust on loopback and the link."""
    folder = Path(tempfile.mkdtemp(prefix="pg18-", dir="/tmp"))
    folder.chmod(0o755)
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    shutil.chown(folder, "postgres")
    shutil.chown(sockets, "postgres")
    bin_dir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
    as_postgres = ["runuser", "-u", "postgres", "--"]
    try:
        _run(*as_postgres, str(bin_dir / "initdb"), "-U", "root", "--auth=trust", "-D", str(data))
        with (data / "pg_hba.conf").open("a") as hba:
            subnet = network.server.address.rsplit(".", 1)[0]
            hba.write(f"host all all {subnet}.0/24 trust\n")
        options = (
            f"-c listen_addresses='127.0.0.1,{network.server.address}' "
            f"-c unix_socket_directories='{sockets}' -p 5432"
        )
        _run(
            *network.server.command(
                *as_postgres,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "postgres.log"),
                "-o",
                options,
                "-w",
                "start",
            )
        )
        for name in ("registry",):
            _run(
                *network.server.command(
                    PYTHON,
                    "-c",
                    "import psycopg; psycopg.connect('host=127.0.0.1 dbname=postgres user=root',"
                    f" autocommit=True).execute('CREATE DATABASE {name}')",
                )
            )
        yield f"{network.server.address}:5432"
    finally:
        _run(
            *network.server.command(
                *as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"
            ),
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _config(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.xdist_group("two-hosts")
@pytest.mark.timeout(600)
def test_a_guard_run_completes_through_a_worker_on_another_host(
    network: Network, server_database: str
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="posguard-two-hosts-"))
    server, worker = network.server, network.worker
    api = f"http://{server.address}:{API_PORT}/api"
    account = [
        "[accounts.main]",
        f'api_key = "{MAIN["api_key"]}"',
        f'secret_key = "{MAIN["secret_key"]}"',
        f'passphrase = "{MAIN["passphrase"]}"',
        "demo = true",
        f'base_url = "http://127.0.0.1:{SIM_PORT}"',
    ]
    # The server host: the Prefect server on its PostgreSQL, beyond loopback, no worker.
    server_config = _config(
        folder / "server.toml",
        [
            'mode = "team"',
            f'state_dir = "{folder / "server-state"}"',
            'registry_url = "postgresql+psycopg://127.0.0.1:5432/registry"',
            "[team]",
            'prefect_database_url = "postgresql+asyncpg://127.0.0.1:5432/prefect"',
            f'listen = "{server.address}"',
            f"port = {API_PORT}",
            "workers = 0",
            *account,
        ],
    )
    # The worker host: its own posguard.toml (the OKX keys live here), the registry on the
    # server host, and leverage not allowed to change (the default, said out loud).
    worker_config = _config(
        folder / "worker.toml",
        [
            'mode = "team"',
            f'state_dir = "{folder / "worker-state"}"',
            f'registry_url = "postgresql+psycopg://{server_database}/registry"',
            "[leverage]",
            "apply = false",
            *account,
        ],
    )
    secret = {"POSGUARD_TEAM__AUTH_STRING": AUTH, "PYTHONUNBUFFERED": "1"}
    logs = folder / "logs"
    logs.mkdir()
    started: list[subprocess.Popen[str]] = []

    def start(host: Host, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        command = host.command(PYTHON, "-m", "posguard.cli", *args, env=env)
        if name == "team-up":  # read until it says it is up
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        else:
            with (logs / f"{name}.log").open("w") as log:  # the child keeps its own copy
                process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
        started.append(process)
        return process

    try:
        start(
            worker,
            "sim",
            "sim",
            "--scenario",
            "incident-2025-12-20",
            "--port",
            str(SIM_PORT),
            env={"PYTHONUNBUFFERED": "1"},
        )
        team = start(server, "team-up", "team", "up", "--config", str(server_config), env=secret)
        said = read_until(team, "team mode up", timeout=300)
        assert "team mode up" in said, said[-3000:]
        start(
            worker,
            "worker",
            "team",
            "worker",
            "--server",
            api,
            "--name",
            "host-b",
            "--config",
            str(worker_config),
            env=secret,
        )
        asked = subprocess.run(
            worker.command(
                PYTHON,
                "tests/two_hosts_client.py",
                api,
                env={
                    "PREFECT_API_URL": api,
                    "PREFECT_API_AUTH_STRING": AUTH,
                    "POSGUARD_CONFIG": str(worker_config),
                },
            ),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        assert asked.returncode == 0, asked.stderr[-3000:]
        found = json.loads(asked.stdout.strip().splitlines()[-1])
        # Only these two namespaces (and loopback) see each other: the machine's own namespace
        # does not reach the server host's API (this sandbox may accept any TCP connection
        # on its way out, so the question is whether Prefect answers).
        try:
            health = httpx.get(f"{api}/health", timeout=3)
            answered = health.status_code == 200 and health.text.strip() == "true"
        except httpx.HTTPError:
            answered = False
        assert not answered
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate(timeout=30)
        worker_log = (logs / "worker.log").read_text() if (logs / "worker.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
    assert found["anonymous_status"] == 401
    assert found["state"] == "Completed", worker_log[-3000:]
    assert found["workers"] == ["posguard.worker.host-b"]
    # dry_run=false asked; the worker host's [leverage] apply = false answered.
    assert found["leverage_outcomes"] == ["blocked"]
    assert found["leverage_reasons"] == [REFUSED_BY_CONFIGURATION]
    assert AUTH.split(":", 1)[1] not in worker_log
