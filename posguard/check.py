"""`posguard check`: the project's gates in one command (ruff, mypy --strict, pytest).

Each gate runs even when an earlier one failed, so one run shows every problem.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Gate:
    name: str
    argv: tuple[str, ...]


# Three pytest workers on two cores: the end-to-end tests (team, demo, alert channels) spend
# much of their time waiting on servers and pollers. Each is an xdist group, collected first
# (tests/conftest.py), so `loadgroup` gives each a worker at the start and the rest of the
# suite runs beside them (plain `load` hands out contiguous chunks: all three on one worker).
PYTEST_WORKERS = ("-n", "3", "--dist", "loadgroup")


def gates(pytest_args: Sequence[str] = ()) -> list[Gate]:
    python = sys.executable
    pytest_args = (*PYTEST_WORKERS, *pytest_args)
    return [
        Gate("ruff lint", (python, "-m", "ruff", "check", ".")),
        Gate("ruff format", (python, "-m", "ruff", "format", "--check", ".")),
        Gate("mypy --strict (every package)", (python, "-m", "mypy")),
        Gate("pytest (warnings are errors)", (python, "-m", "pytest", *pytest_args)),
    ]


def run_gates(root: Path, pytest_args: Sequence[str] = ()) -> int:
    """Run every gate in `root`; returns 0 only when all pass."""
    results: list[tuple[str, int, float]] = []
    for gate in gates(pytest_args):
        print(f"==> {gate.name}: {' '.join(gate.argv[1:])}", flush=True)
        started = time.monotonic()
        code = subprocess.call(gate.argv, cwd=root)
        results.append((gate.name, code, time.monotonic() - started))
    print("\n==> summary", flush=True)
    for name, code, seconds in results:
        verdict = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"    {name:<32} {verdict:<18} {seconds:6.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1
