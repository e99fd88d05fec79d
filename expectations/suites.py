"""The GX suites, derived from the rule declarations (`expectations.rules`)."""

from __future__ import annotations

import great_expectations as gx

from expectations.rules import RULES


def suite(which: str) -> gx.ExpectationSuite:
    """The `positions` or `instruments` suite: every declared rule's expectations."""
    return gx.ExpectationSuite(
        name=f"posguard-{which}",
        expectations=[e for rule in RULES[which].values() for e in rule.expectations()],
    )
