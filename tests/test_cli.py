"""The `posguard` command: every subcommand has --help; errors are one line, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from posguard.cli import app
from tests.conftest import SAMPLES

runner = CliRunner()


def all_command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        # Typer vendors its own click: look for sub-commands by shape, not by class.
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                paths.append([*prefix, name])
                walk(sub, [*prefix, name])

    walk(get_command(app), [])
    return paths


def test_help_lists_the_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("check", "config", "parse", "fetch"):
        assert name in result.output


@pytest.mark.parametrize("path", all_command_paths(), ids=lambda p: " ".join(p))
def test_every_subcommand_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_parse_prints_json_with_nulls_for_empty_strings() -> None:
    result = runner.invoke(
        app, ["parse", str(SAMPLES / "positions_ccxt_3_inverse_cross.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert records[0]["instId"] == "BTC-USD-SWAP"
    assert records[0]["margin"] is None  # "" for a cross position: unknown, not 0


def test_parse_of_a_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "positions.json"
    bad.write_text(
        '{"code":"0","data":[{"instType":"SWAP","instId":"XRP-USDT-SWAP",'
        '"mgnMode":"cross","posSide":"net","pos":"1","lever":"five"}]}'
    )
    result = runner.invoke(app, ["parse", str(bad)])
    assert result.exit_code == 2
    assert "lever" in result.output
    assert "XRP-USDT-SWAP" in result.output
    assert "Traceback" not in result.output


def test_fetch_without_accounts_explains_what_to_configure(tmp_path: Path) -> None:
    config = tmp_path / "posguard.toml"
    config.write_text("")
    result = runner.invoke(app, ["fetch", "positions", "--config", str(config)])
    assert result.exit_code == 2
    assert "--account" in result.output


def test_team_up_without_accounts_explains_what_to_configure(tmp_path: Path) -> None:
    config = tmp_path / "posguard.toml"
    config.write_text('mode = "team"\n')
    result = runner.invoke(app, ["team", "up", "--config", str(config)])
    assert result.exit_code == 2
    assert "no accounts configured" in result.output


def test_team_up_with_an_unusable_database_url_names_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "posguard.toml"
    config.write_text(
        'mode = "team"\n[team]\nprefect_database_url = "sqlite:///x.db"\n'
        '[accounts.main]\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\n'
    )
    result = runner.invoke(app, ["team", "up", "--config", str(config)])
    assert result.exit_code == 2
    assert "team.prefect_database_url must name a PostgreSQL database" in result.output


def _flat(text: str) -> str:
    return " ".join(text.replace("\b", " ").split())


def _help_texts(command: object) -> list[str]:
    texts = [str(getattr(command, "help", None) or "")]
    texts += [str(getattr(p, "help", None) or "") for p in getattr(command, "params", [])]
    return [t for t in texts if t]


@pytest.mark.parametrize("path", [[], *all_command_paths()], ids=lambda p: " ".join(p) or "-")
def test_help_renders_every_text_literally(path: list[str]) -> None:
    """No markup in help: rich turned ':SECRET:' into an emoji and would eat '[tags]'."""
    command: object = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    result = runner.invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for text in _help_texts(command):
        # Long command summaries are cut in the parent's list, never in their own help.
        assert _flat(text) in shown, f"{text!r} is not shown literally in:\n{result.output}"
    assert result.output.isascii(), result.output
    assert "\\[" not in result.output, "a markup escape shows as a backslash"


def test_sim_help_shows_the_account_format() -> None:
    result = runner.invoke(app, ["sim", "--help"], terminal_width=100)
    assert "NAME=KEY:SECRET:PASSPHRASE[:live]" in _flat(result.output)
    assert "\u3299" not in result.output  # the 'secret' emoji rich made of ':SECRET:'


SAVED_ERRORS = {
    "refused.json": ({"code": "51001", "msg": "Instrument ID does not exist", "data": []}, "51001"),
    "write.json": (
        {"code": "1", "msg": "", "data": [{"instId": "XRP-USDT-SWAP", "sCode": "59102"}]},
        "59102",
    ),
    "no-array.json": ({"code": "0", "msg": "", "data": {"instId": "XRP-USDT-SWAP"}}, "data"),
}


@pytest.mark.parametrize("name", sorted(SAVED_ERRORS))
def test_errors_read_from_a_saved_file_claim_no_http_status(tmp_path: Path, name: str) -> None:
    answer, named = SAVED_ERRORS[name]
    saved = tmp_path / name
    saved.write_text(json.dumps(answer))
    instruments = str(SAMPLES / "instruments_swap_ccxt_markets_info.json")
    parsed = runner.invoke(app, ["parse", str(saved)])
    validated = runner.invoke(
        app, ["validate", "--positions", str(saved), "--instruments", instruments]
    )
    for result in (parsed, validated):
        assert result.exit_code != 0
        assert name in result.output
        assert named in result.output
        assert "HTTP" not in result.output  # a file has no status; none was observed
        assert "Traceback" not in result.output
    assert validated.exit_code == 2


def test_a_saved_error_answer_carries_no_http_status() -> None:
    from posguard.errors import RejectedError
    from posguard.okx.saved import records_of

    with pytest.raises(RejectedError) as raised:
        records_of({"code": "51001", "msg": "gone", "data": []}, source="saved.json")
    assert raised.value.http_status is None
    assert "saved.json" in str(raised.value)


def test_watch_names_what_is_missing_before_it_connects(tmp_path: Path) -> None:
    config = tmp_path / "posguard.toml"
    config.write_text("")
    empty = runner.invoke(app, ["watch", "--config", str(config)])
    assert empty.exit_code == 2
    assert "no accounts configured" in empty.output
    config.write_text('[accounts.main]\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\n')
    unknown = runner.invoke(app, ["watch", "--config", str(config), "--account", "desk"])
    assert unknown.exit_code == 2
    assert "account 'desk' is not configured (configured: main)" in unknown.output


def test_watch_refuses_a_stream_url_that_is_no_websocket(tmp_path: Path) -> None:
    config = tmp_path / "posguard.toml"
    account = '[accounts.main]\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\n'
    config.write_text(account + 'ws_url = "https://ws.okx.com:8443"\n')
    named = runner.invoke(app, ["watch", "--config", str(config)])
    assert named.exit_code == 2
    assert "ws_url" in named.output
    assert "ws:// or wss://" in named.output
    config.write_text(account + 'base_url = "ftp://127.0.0.1:8765"\n')
    derived = runner.invoke(app, ["watch", "--config", str(config)])
    assert derived.exit_code == 2
    assert "set ws_url" in derived.output
