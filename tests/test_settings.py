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
