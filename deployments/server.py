"""A local Prefect server as a child process (schedules and the UI need a real server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
from pydantic import SecretStr

from posguard.errors import ConfigError


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((host, port)) != 0


def prefect_env(
    home: Path, api_url: str | None = None, auth_string: SecretStr | None = None
) -> dict[str, str]:
    """The environment of a Prefect process posguard starts; `auth_string` is what its
    client sends to a server with basic authentication."""
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(home),
            # Offline here: the server's telemetry would only log connection errors.
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": env.get("PREFECT_LOGGING_LEVEL", "WARNING"),
            "PREFECT_SERVER_LOGGING_LEVEL": env.get("PREFECT_SERVER_LOGGING_LEVEL", "WARNING"),
        }
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    else:
        env.pop("PREFECT_API_URL", None)
    if auth_string is not None:
        env["PREFECT_API_AUTH_STRING"] = auth_string.get_secret_value()
    return env


class PrefectServer:
    """`prefect server start` with its SQLite database under `home`, on 127.0.0.1 unless
    told `host` (then only with `auth_string`: see deployments/team.py)."""

    def __init__(
        self,
        home: Path,
        port: int = 4200,
        log: Path | None = None,
        *,
        host: str = "127.0.0.1",
        auth_string: SecretStr | None = None,
    ) -> None:
        self.home = home
        self.port = port
        self.host = host
        self.auth_string = auth_string
        self.log = log or home / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        # Server settings beyond the defaults (team mode: PostgreSQL, Redis).
        self.extra_env: dict[str, str] = {}

    @property
    def ui_url(self) -> str:
        return f"http://{self.near_host}:{self.port}"

    @property
    def near_host(self) -> str:
        """The address clients on this host use: loopback for a server on every address."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def _server_env(self) -> dict[str, str]:
        env = prefect_env(self.home)
        # The UI calls the API at this address; it defaults to port 4200 whatever --port is.
        env["PREFECT_SERVER_UI_API_URL"] = self.api_url
        if self.auth_string is not None:
            env["PREFECT_SERVER_API_AUTH_STRING"] = self.auth_string.get_secret_value()
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 180) -> PrefectServer:
        if not port_free(self.port, self.near_host):
            raise ConfigError(
                f"port {self.port} is in use: stop what runs there or pass --port to choose "
                f"another for the Prefect server"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                ],
                env=self._server_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"the Prefect server exited at start; see {self.log}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ConfigError(f"the Prefect server did not answer in {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
