"""The [alerts] section: every channel from TOML; mistakes named, secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from posguard.errors import ConfigError
from posguard.settings import load_settings

SLACK = "https://hooks.slack.com/services/T0SECRET/B0SECRET/tokenSECRETvalue"


def settings_file(tmp_path: Path, alerts: str) -> Path:
    path = tmp_path / "posguard.toml"
    path.write_text(alerts)
    return path


def test_every_channel_from_the_file(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        f'[alerts]\nwebhook_url = "http://127.0.0.1:9009/hook"\nslack_webhook_url = "{SLACK}"\n'
        '[alerts.email]\nsmtp_host = "smtp.example.test"\nsmtp_port = 465\nsecurity = "ssl"\n'
        'username = "alerts"\npassword = "mail-password"\nsender = "posguard@example.test"\n'
        'recipients = ["desk@example.test", "risk@example.test"]\n',
    )
    alerts = load_settings(path).alerts
    assert alerts.webhook_url == "http://127.0.0.1:9009/hook"
    assert alerts.slack_webhook_url is not None
    assert alerts.slack_webhook_url.get_secret_value() == SLACK
    assert alerts.email is not None
    assert (alerts.email.smtp_port, alerts.email.security) == (465, "ssl")
    assert alerts.email.recipients == ["desk@example.test", "risk@example.test"]
    shown = repr(alerts)
    assert "mail-password" not in shown
    assert "tokenSECRETvalue" not in shown


def test_defaults_are_starttls_on_587_and_no_channel(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        '[alerts.email]\nsmtp_host = "smtp.example.test"\nsender = "p@example.test"\n'
        'recipients = ["desk@example.test"]\n',
    )
    email = load_settings(path).alerts.email
    assert email is not None
    assert (email.smtp_port, email.security, email.username) == (587, "starttls", None)
    empty = load_settings(settings_file(tmp_path, "")).alerts
    assert (empty.webhook_url, empty.slack_webhook_url, empty.email) == (None, None, None)


@pytest.mark.parametrize(
    ("alerts", "named"),
    [
        (
            '[alerts]\nslack_webhook_url = "http://127.0.0.1:1/services/T0SECRET/B/tokenSECRET"',
            "alerts.slack_webhook_url",
        ),
        (
            '[alerts.email]\nsmtp_host = "h"\nsender = "p@x"\nrecipients = []',
            "alerts.email.recipients",
        ),
        (
            '[alerts.email]\nsmtp_host = "h"\nsender = "p@x"\nrecipients = ["not an address"]',
            "alerts.email.recipients",
        ),
        (
            '[alerts.email]\nsmtp_host = "h"\nsender = "p@x"\nrecipients = ["d@x"]\n'
            'password = "mail-password"',
            "password is set but username is not",
        ),
        (
            '[alerts.email]\nsmtp_host = "h"\nsender = "p@x"\nrecipients = ["d@x"]\n'
            'username = "u"\npassword = "mail-password"\nsecurity = "none"',
            "in clear",
        ),
        ('[alerts.email]\nsmtp_host = "h"\nrecipients = ["d@x"]', "alerts.email.sender"),
    ],
)
def test_mistakes_name_the_setting_and_echo_no_secret(
    tmp_path: Path, alerts: str, named: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(settings_file(tmp_path, alerts + "\n"))
    message = str(refused.value)
    assert named in message
    assert "SECRET" not in message
    assert "mail-password" not in message
