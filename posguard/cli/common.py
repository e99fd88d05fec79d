"""What every subcommand shares: settings loading and error reporting without tracebacks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from posguard.errors import ConfigError, DataError, ExchangeError, PosguardError
from posguard.settings import Settings, load_settings

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (TOML). Default: $POSGUARD_CONFIG, else ./posguard.toml if present.",
        show_default=False,
    ),
]


def settings_from(config: Path | None) -> Settings:
    with reported_errors():
        return load_settings(config)
    raise AssertionError("unreachable")  # pragma: no cover


def exit_code_for(exc: PosguardError) -> int:
    """2 for bad input or configuration, 3 for exchange failures, 1 otherwise."""
    if isinstance(exc, ConfigError | DataError):
        return 2
    if isinstance(exc, ExchangeError):
        return 3
    return 1


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn posguard errors into one clear line on stderr and an exit status."""
    try:
        yield
    except PosguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exit_code_for(exc)) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, sort_keys=False) + "\n")


def guarded(fn: Callable[[], T]) -> T:
    with reported_errors():
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover
