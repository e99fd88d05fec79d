"""The compact result of a validation: what flows turn into artifacts and events, and what
`posguard validate --json` prints."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class FailingRow:
    inst_id: str
    pos_side: str
    mgn_mode: str
    detail: str
    # The account of the row when a round validated several accounts' positions at once;
    # "" for a single account's validation and for failures that name no row.
    account: str = ""

    def to_dict(self) -> dict[str, str]:
        named = {
            "instId": self.inst_id,
            "posSide": self.pos_side,
            "mgnMode": self.mgn_mode,
            "detail": self.detail,
        }
        return {"account": self.account, **named} if self.account else named


@dataclass
class RuleResult:
    expectation: str
    suite: str
    success: bool
    failing: list[FailingRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "success": self.success,
            "failing": [f.to_dict() for f in self.failing],
        }


@dataclass
class ValidationReport:
    success: bool
    results: list[RuleResult]
    data_docs: str | None = None

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if not r.success]

    def failing_inst_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for result in self.failed:
            for row in result.failing:
                seen.setdefault(row.inst_id, None)
        return list(seen)

    def failure_keys(self) -> set[tuple[str, str, str, str]]:
        """(expectation, instId, posSide, mgnMode) of every failing row: what an alert names."""
        return {
            (result.expectation, row.inst_id, row.pos_side, row.mgn_mode)
            for result in self.failed
            for row in result.failing
        }

    def for_account(self, account: str) -> ValidationReport:
        """This report as `account`'s own: its rows, and the failures that name no account
        (an expectation GX could not evaluate fails every account it was run for)."""
        results = []
        for result in self.results:
            rows = [
                replace(row, account="") for row in result.failing if row.account in ("", account)
            ]
            results.append(RuleResult(result.expectation, result.suite, not rows, rows))
        return ValidationReport(all(r.success for r in results), results, self.data_docs)

    def to_json(self) -> dict[str, Any]:
        return {"success": self.success, "results": [r.to_dict() for r in self.results]}
