"""Team mode beyond one host: the Prefect API with basic authentication, and a worker that
checks it can reach and authenticate to it before serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from pydantic import SecretStr

from deployments.server import PrefectServer
from deployments.team import check_api, team_up
from posguard.errors import ConfigError
from posguard.settings import load_settings
from tests.helpers import free_port

AUTH = "posguard:not-a-real-password"  # a test value, never a credential


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("auth-server")
    with PrefectServer(home, free_port(), auth_string=SecretStr(AUTH)) as server:
        yield server


def as_client(api_url: str, auth_string: str | None = None) -> Any:
    """The settings a worker's CLI gives Prefect (from its environment, before import)."""
    values: dict[Any, Any] = {PREFECT_API_URL: api_url}
    if auth_string is not None:
        values[PREFECT_API_AUTH_STRING] = auth_string
    return temporary_settings(values)


def test_the_api_refuses_a_client_without_the_auth_string(guarded_server: PrefectServer) -> None:
    url = f"{guarded_server.api_url}/flows/filter"
    assert httpx.post(url, json={}).status_code == 401
    assert httpx.post(url, json={}, auth=("posguard", "wrong")).status_code == 401
    user, password = AUTH.split(":", 1)
    assert httpx.post(url, json={}, auth=(user, password)).status_code == 200
    # Health stays open: probes and `posguard team up` wait for it.
    assert httpx.get(f"{guarded_server.api_url}/health").status_code == 200


def test_a_worker_with_the_wrong_auth_string_is_told_what_to_set(
    guarded_server: PrefectServer,
) -> None:
    with (
        as_client(guarded_server.api_url, "posguard:wrong-one"),
        pytest.raises(ConfigError, match=r"refused this worker \(401\).*team.auth_string") as err,
    ):
        check_api("posguard")
    assert "wrong-one" not in str(err.value)


def test_a_worker_with_the_right_auth_string_gets_to_the_pool_question(
    guarded_server: PrefectServer,
) -> None:
    with (
        as_client(guarded_server.api_url, AUTH),
        pytest.raises(ConfigError, match=r"no work pool 'posguard'.*team up"),
    ):
        check_api("posguard")


def test_a_worker_without_a_server_says_it_is_not_reachable() -> None:
    with (
        as_client(f"http://127.0.0.1:{free_port()}/api"),
        pytest.raises(ConfigError, match=r"not reachable.*--server"),
    ):
        check_api("posguard")


def test_team_up_refuses_to_listen_beyond_loopback_without_an_auth_string(
    tmp_path: Path,
) -> None:
    config = tmp_path / "posguard.toml"
    config.write_text(
        'mode = "team"\n[team]\nlisten = "0.0.0.0"\n\n[accounts.main]\napi_key = "k"\n'
        'secret_key = "s"\npassphrase = "p"\ndemo = true\n'
    )
    with pytest.raises(ConfigError, match=r"without authentication; set team\.auth_string"):
        team_up(load_settings(config), config)


def test_an_auth_string_without_a_password_is_refused_without_echoing_it(
    tmp_path: Path,
) -> None:
    config = tmp_path / "posguard.toml"
    config.write_text('[team]\nauth_string = "only-a-user-name"\n')
    with pytest.raises(ConfigError, match="user:password") as err:
        load_settings(config)
    assert "only-a-user-name" not in str(err.value)
