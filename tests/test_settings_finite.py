"""Non-finite numbers in settings are refused at load, each named by its setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from posguard.errors import ConfigError
from posguard.settings import Settings, load_settings

ACCOUNT = '[accounts.main]\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\n'


def refused(tmp_path: Path, toml: str) -> str:
    path = tmp_path / "posguard.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize(
    ("section", "name", "where"),
    [
        ("", "http_timeout_seconds", "http_timeout_seconds"),
        ("", "notional_tolerance", "notional_tolerance"),
        ("[drift]", "grace_seconds", "drift.grace_seconds"),
        ("[drift]", "lookback_seconds", "drift.lookback_seconds"),
        ("[leverage]", "max_lever", "leverage.max_lever"),
        ("[leverage]", "target_vol", "leverage.target_vol"),
        ("[leverage]", "vol_floor", "leverage.vol_floor"),
        ("[leverage]", "min_lever", "leverage.min_lever"),
        ("[leverage]", "hysteresis", "leverage.hysteresis"),
        (
            "[leverage.instruments.XRP-USDT-SWAP]",
            "max_lever",
            "leverage.instruments.XRP-USDT-SWAP.max_lever",
        ),
        ("[accounts.main.leverage]", "target_vol", "accounts.main.leverage.target_vol"),
        ("[schedules]", "reconcile_seconds", "schedules.reconcile_seconds"),
        ("[team]", "workers", "team.workers"),
        ("[drift]", "confirm_after", "drift.confirm_after"),
    ],
)
def test_a_non_finite_setting_is_refused_by_name(
    tmp_path: Path, section: str, name: str, where: str, value: str
) -> None:
    body = f"{name} = {value}\n"
    if section.startswith("[accounts.main"):
        toml = f"{ACCOUNT}\n{section}\n{body}"
    else:
        toml = f"{body}\n{ACCOUNT}" if not section else f"{ACCOUNT}\n{section}\n{body}"
    message = refused(tmp_path, toml)
    assert where in message
    assert "finite" in message or "integer" in message


def test_environment_values_are_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSGUARD_LEVERAGE__MAX_LEVER", "inf")
    message = refused(tmp_path, ACCOUNT)
    assert "leverage.max_lever: Input should be a finite number" in message


def float_settings(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every float setting, nested sections included, as its dotted path."""
    found: list[str] = []
    for name, info in model.model_fields.items():
        annotation = str(info.annotation)
        for member in getattr(info.annotation, "__args__", (info.annotation,)):
            if isinstance(member, type) and issubclass(member, BaseModel):
                found += float_settings(member, f"{prefix}{name}.")
        if "float" in annotation:
            found.append(f"{prefix}{name}")
    return found


def test_every_float_setting_refuses_infinity_and_nan() -> None:
    # Sections added later are covered as well: each model must refuse inf and nan.
    paths = float_settings(Settings)
    assert "leverage.max_lever" in paths
    assert "drift.grace_seconds" in paths
    for path in paths:
        *parents, leaf = path.split(".")
        model: type[BaseModel] = Settings
        for parent in parents:
            annotation = model.model_fields[parent].annotation
            model = next(
                m
                for m in getattr(annotation, "__args__", (annotation,))
                if isinstance(m, type) and issubclass(m, BaseModel)
            )
        for value in (float("inf"), float("nan")):
            # One field validated with its model's rules, whatever else the model needs.
            with pytest.raises(ValidationError, match="finite"):
                model.__pydantic_validator__.validate_assignment(
                    model.model_construct(), leaf, value
                )
