"""The house's layering (design.md): posguard/ never imports Prefect or GX; entrypoints load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from posguard.settings import load_settings
from tests.conftest import ROOT


def test_the_library_imports_neither_prefect_nor_great_expectations() -> None:
    """Every module under posguard/ imported (found by walking the package, not listed by
    hand): neither Prefect nor GX is loaded. Ruff's banned imports (posguard/ruff.toml) say
    the same of the source, lazy imports included. (Alembic's migration scripts run only
    inside alembic.)"""
    code = (
        "import importlib, pkgutil, sys, posguard; "
        "names = [m.name for m in pkgutil.walk_packages(posguard.__path__, 'posguard.') "
        "if not m.name.endswith('__main__') and '.migrations' not in m.name]; "
        "[importlib.import_module(n) for n in names]; "
        "bad = [m for m in ('prefect', 'great_expectations') if m in sys.modules]; "
        "print(len(names), bad); sys.exit(1 if bad or len(names) < 50 else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployment_entrypoints_load_with_their_names_and_parameters() -> None:
    from flows import guard_account, recalculate_leverage, reconcile_positions, sync_instruments

    assert sync_instruments.name == "sync-instruments"
    assert reconcile_positions.name == "reconcile-positions"
    assert recalculate_leverage.name == "recalculate-leverage"
    assert guard_account.name == "guard-account"
    assert set(reconcile_positions.parameters.properties) == {
        "account",
        "policy",
        "run_expectations",
        "changed_at_ms",
        "pushed",
    }
    assert set(recalculate_leverage.parameters.properties) == {"account", "dry_run"}
    assert set(guard_account.parameters.properties) == {
        "account",
        "policy",
        "dry_run",
        "run_expectations",
        "when_due",
    }


def test_prefect_yaml_entrypoints_exist() -> None:
    import yaml

    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for deployment in document["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        assert f"def {name}(" in (ROOT / path).read_text()


def test_prefect_yaml_is_the_declaration_for_the_example_settings() -> None:
    """Deployments are declared once (deployments/build.py); the committed prefect.yaml is
    generated from it (`python -m deployments.build > prefect.yaml`)."""
    from deployments.build import prefect_yaml

    settings = load_settings(ROOT / "posguard.example.toml")
    assert (ROOT / "prefect.yaml").read_text() == prefect_yaml(settings)


def test_served_and_yaml_deployments_are_the_same_plan() -> None:
    import yaml

    from deployments.build import deployments_for, prefect_yaml

    settings = load_settings(ROOT / "posguard.example.toml")
    served = deployments_for(settings)
    document = yaml.safe_load(prefect_yaml(settings))["deployments"]
    assert [(d.flow_name, d.name, d.parameters) for d in served] == [
        (e["entrypoint"].split(":")[1].replace("_", "-"), e["name"], e["parameters"])
        for e in document
    ]
    reconcile = next(d for d in served if d.flow_name == "reconcile-positions")
    assert reconcile.concurrency_limit == 1


def test_the_example_settings_file_is_valid(tmp_path: Path) -> None:
    settings = load_settings(ROOT / "posguard.example.toml")
    assert settings.account("main").demo
    assert settings.drift.confirm_after == 2
