"""Small helpers behind `posguard sim` (kept out of the CLI module to stay testable)."""

from __future__ import annotations

from posguard.errors import ConfigError
from posguard.sim.market import load_instruments
from posguard.sim.scenario import (
    Scenario,
    ScenarioAccount,
    read_scenario_document,
    validate_scenario,
)


def known_instruments() -> set[str]:
    return set(load_instruments({}))


def load_for_cli(name_or_path: str | None) -> Scenario:
    if name_or_path is None:
        return Scenario()
    document, source = read_scenario_document(name_or_path)
    return validate_scenario(document, source, known_instruments())


def parse_account_option(text: str) -> ScenarioAccount:
    """NAME=KEY:SECRET:PASSPHRASE -> a demo-trading simulator account."""
    name, _, creds = text.partition("=")
    parts = creds.split(":")
    if not name or len(parts) != 3 or not all(parts):
        raise ConfigError(
            f"--account {name or '?'}=...: expected NAME=KEY:SECRET:PASSPHRASE with three "
            f"non-empty parts separated by ':'"
        )
    return ScenarioAccount(name=name, api_key=parts[0], secret_key=parts[1], passphrase=parts[2])
