"""An OKX v5-compatible paper exchange on loopback, with scripted scenarios and faults."""

from posguard.sim.exchange import DEMO_ACCOUNT, SimExchange
from posguard.sim.scenario import Scenario, ScenarioError, read_scenario_document, validate_scenario
from posguard.sim.server import SimServer

__all__ = [
    "DEMO_ACCOUNT",
    "Scenario",
    "ScenarioError",
    "SimExchange",
    "SimServer",
    "read_scenario_document",
    "validate_scenario",
]
