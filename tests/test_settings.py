"""Settings from a TOML file and the environment; secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from posguard.errors import ConfigError
from posguard.settings import load_settings

TOML = """
state_dir = "state"

[accounts.main]
api_key = "toml-key-not-real"
secret_key = "toml-secret-not-real"
passphrase = "toml-pass-not-real"
demo = true

[accounts.eu]
api_key = "k"
secret_key = "s"
passphrase = "p"
region = "eea"
"""


def test_toml_file_with_accounts_and_regions(tmp_path: Path) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text(TOML)
    settings = load_settings(path)
    assert settings.account("main").demo
    assert settings.account("main").resolved_base_url == "https://www.okx.com"
    assert settings.account("eu").resolved_base_url == "https://eea.okx.com"
    assert settings.state_dir == Path("state")
    assert settings.http_timeout_seconds == 10.0  # a default


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text(TOML)
    monkeypatch.setenv("POSGUARD_HTTP_TIMEOUT_SECONDS", "3.5")
    monkeypatch.setenv("POSGUARD_ACCOUNTS__SIM__API_KEY", "env-key")
    monkeypatch.setenv("POSGUARD_ACCOUNTS__SIM__SECRET_KEY", "env-secret")
    monkeypatch.setenv("POSGUARD_ACCOUNTS__SIM__PASSPHRASE", "env-pass")
    monkeypatch.setenv("POSGUARD_ACCOUNTS__SIM__BASE_URL", "http://127.0.0.1:8765/")
    settings = load_settings(path)
    assert settings.http_timeout_seconds == 3.5
    assert settings.account("sim").resolved_base_url == "http://127.0.0.1:8765"


def test_secrets_never_print(tmp_path: Path) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text(TOML)
    settings = load_settings(path)
    shown = repr(settings) + str(settings.model_dump(mode="json"))
    for secret in ("toml-key-not-real", "toml-secret-not-real", "toml-pass-not-real"):
        assert secret not in shown


def test_empty_secret_is_a_config_error_that_does_not_echo_values(tmp_path: Path) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text(
        '[accounts.main]\napi_key = "secret-looking-value"\nsecret_key = ""\npassphrase = "p"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "accounts.main.secret_key" in str(caught.value)
    assert "secret-looking-value" not in str(caught.value)


def test_unknown_account_names_the_configured_ones(tmp_path: Path) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text(TOML)
    with pytest.raises(ConfigError, match="configured: eu, main"):
        load_settings(path).account("nope")


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("state_dir = [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(bad)


def _accounts_csv(count: int) -> str:
    lines = ["name,api_key,secret_key,passphrase,demo,region,base_url"]
    lines += [
        f"sub{n:03d},key-{n},secret-{n},pass-{n},{'true' if n % 2 else 'false'},global,"
        for n in range(count)
    ]
    return "\n".join(lines) + "\n"


def test_hundreds_of_accounts_from_a_table_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text(_accounts_csv(300))
    path = tmp_path / "posguard.toml"
    # accounts_file is a top-level key: before the first table.
    path.write_text('accounts_file = "accounts.csv"\n' + TOML)
    settings = load_settings(path)
    assert len(settings.accounts) == 302
    assert settings.accounts["sub001"].demo
    assert not settings.accounts["sub002"].demo
    assert settings.accounts["sub299"].api_key.get_secret_value() == "key-299"
    assert settings.account("main").demo  # the TOML's own accounts stay


def test_hundreds_of_accounts_in_one_toml_file(tmp_path: Path) -> None:
    sections = [
        f'[accounts.sub{n:03d}]\napi_key = "k{n}"\nsecret_key = "s{n}"\npassphrase = "p{n}"\n'
        for n in range(500)
    ]
    path = tmp_path / "posguard.toml"
    path.write_text("\n".join(sections))
    settings = load_settings(path)
    assert len(settings.accounts) == 500
    assert settings.mode == "embedded"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("name,api_key,secret_key\nx,k,s\n", "lacks the column(s) passphrase"),
        ("name,api_key,secret_key,passphrase\n,k,s,p\n", "row 2: name is empty"),
        ("name,api_key,secret_key,passphrase\nx,k,s,p\nx,k,s,p\n", "row 3: account 'x' repeats"),
        ("name,api_key,secret_key,passphrase\nx,k,,hidden-pass\n", "row 2 (x): secret_key"),
        ("name,api_key,secret_key,passphrase,demo\nx,k,s,p,maybe\n", "demo is not a boolean"),
        ("name,api_key,secret_key,passphrase\nmain,k,s,p\n", "'main' is defined twice"),
    ],
)
def test_a_bad_accounts_table_names_file_row_and_column(
    tmp_path: Path, table: str, expected: str
) -> None:
    (tmp_path / "accounts.csv").write_text(table)
    path = tmp_path / "posguard.toml"
    path.write_text('accounts_file = "accounts.csv"\n' + TOML)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert expected in str(caught.value)
    assert "accounts.csv" in str(caught.value)
    assert "hidden-pass" not in str(caught.value)


def test_missing_accounts_table(tmp_path: Path) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text('accounts_file = "nowhere.csv"\n')
    with pytest.raises(ConfigError, match=r"nowhere\.csv cannot be read"):
        load_settings(path)


def test_team_mode_is_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text(
        'mode = "team"\n[team]\nworkers = 4\naccounts_per_run = 10\n'
        'prefect_database_url = "postgresql+asyncpg://127.0.0.1:5432/desk"\n'
    )
    settings = load_settings(path)
    assert (settings.mode, settings.team.workers, settings.team.accounts_per_run) == (
        "team",
        4,
        10,
    )
    path.write_text('mode = "cluster"\n')
    with pytest.raises(ConfigError, match="mode"):
        load_settings(path)


def test_the_configurable_bars_are_the_bars_with_a_length() -> None:
    from typing import get_args

    from posguard.bars import BAR_MS, Bar

    assert set(get_args(Bar)) == set(BAR_MS)


def test_configuration_defaults_are_the_pure_codes_defaults() -> None:
    """The file's models take their defaults from the engine's and the policy's own."""
    from posguard.drift import DriftSettings
    from posguard.leverage.policy import LeveragePolicy
    from posguard.settings import DriftConfig, LeverageConfig

    assert DriftConfig().engine_settings() == DriftSettings()
    assert DriftConfig(grace_seconds=9).engine_settings("heal") == DriftSettings(
        grace_seconds=9, heal="heal"
    )
    assert LeverageConfig().policy() == LeveragePolicy()


def test_leverage_apply_is_read_from_the_hosts_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow run's job variables become its process's environment (team mode): a run must
    not grant itself live leverage that the host's file did not."""
    config = tmp_path / "posguard.toml"
    config.write_text("[leverage]\napply = true\n")
    assert load_settings(config).leverage.apply is True
    monkeypatch.setenv("POSGUARD_LEVERAGE__APPLY", "true")
    with pytest.raises(ConfigError, match=r"posguard.toml only \(\[leverage\] apply\)"):
        load_settings(tmp_path / "posguard.toml")
    monkeypatch.setenv("POSGUARD_LEVERAGE__KILL_SWITCH", "true")
    monkeypatch.delenv("POSGUARD_LEVERAGE__APPLY")
    assert load_settings(config).leverage.kill_switch is True  # other keys still may


def test_the_private_stream_url_follows_the_account() -> None:
    from posguard.settings import AccountSettings

    keys = {"api_key": "k", "secret_key": "s", "passphrase": "p"}
    assert AccountSettings(**keys).resolved_ws_url == "wss://ws.okx.com:8443/ws/v5/private"
    demo = AccountSettings(**keys, demo=True, region="eea")
    assert demo.resolved_ws_url == "wss://wseeapap.okx.com:8443/ws/v5/private"
    sim = AccountSettings(**keys, base_url="http://127.0.0.1:8765/")
    assert sim.resolved_ws_url == "ws://127.0.0.1:8765/ws/v5/private"
    tls = AccountSettings(**keys, base_url="https://sim.example:8443")
    assert tls.resolved_ws_url == "wss://sim.example:8443/ws/v5/private"
    given = AccountSettings(**keys, ws_url="wss://proxy.example/ws/v5/private")
    assert given.resolved_ws_url == "wss://proxy.example/ws/v5/private"
