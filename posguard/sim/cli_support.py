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


ACCOUNT_MODES = {"demo": True, "live": False}


def parse_account_option(text: str) -> ScenarioAccount:
    """NAME=KEY:SECRET:PASSPHRASE[:live|:demo] -> a simulator account (demo by default).

    A demo-trading account expects `x-simulated-trading: 1` on every private request, a
    live-mode one expects no such header; OKX refuses the other with 50101.
    """
    name, _, creds = text.partition("=")
    parts = creds.split(":")
    mode = parts.pop() if len(parts) == 4 else "demo"
    if not name or len(parts) != 3 or not all(parts):
        # Never echo the text: it holds the credentials.
        raise ConfigError(
            f"--account {name or '?'}=...: expected NAME=KEY:SECRET:PASSPHRASE[:live] with "
            f"three non-empty parts separated by ':' (and optionally ':live' or ':demo')"
        )
    if mode not in ACCOUNT_MODES:
        raise ConfigError(
            f"--account {name}=...: the fourth part must be 'live' or 'demo' (default: demo)"
        )
    return ScenarioAccount(
        name=name,
        api_key=parts[0],
        secret_key=parts[1],
        passphrase=parts[2],
        demo=ACCOUNT_MODES[mode],
    )
