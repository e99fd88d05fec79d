"""Running the suites: one GX context per process, built once; every failure names its rows.

GX costs seconds to import and tens of milliseconds to set up; a scheduled flow pays that once
per process. Each validation then runs a prebuilt suite over the snapshot frame for pass or
fail (result_format BOOLEAN_ONLY), and only the expectations that failed again with
result_format COMPLETE and the suite's key (positions: instId, posSide, mgnMode; instruments:
instId) as index columns, so that every failing row is named. With Data Docs asked for, the
checkpoint runs the whole suite with COMPLETE (the page shows every expectation's figures).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.validator.v1_validator import Validator

from expectations.report import FailingRow, RuleResult, ValidationReport
from expectations.rules import RULES, Rule, explain_rows, fmt
from expectations.suites import suite

logger = logging.getLogger("posguard.expectations")

POSITION_INDEX = ["instId", "posSide", "mgnMode", "row"]
INSTRUMENT_INDEX = ["instId", "row"]
DOCS_SITE = "posguard"

ALLOWED_POS_SIDES = {
    "net_mode": ["net"],
    "long_short_mode": ["long", "short"],
    None: ["long", "short", "net"],
}


class ExpectationsRunner:
    """Prebuilt suites and validation definitions over an ephemeral GX context."""

    def __init__(self, docs_dir: Path | None = None) -> None:
        self.docs_dir = docs_dir
        self.context: Any = gx.get_context(mode="ephemeral")
        # GX prints progress bars per metric calculation otherwise.
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_pandas(name="okx")
        self._definitions: dict[str, Any] = {}
        self._expected: dict[str, dict[str, int]] = {}
        for name in ("positions", "instruments"):
            batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(
                "snapshot"
            )
            declared = suite(name)
            # How many expectations each rule declared: every one must come back each run.
            self._expected[name] = dict(
                Counter(str((e.meta or {}).get("rule")) for e in declared.expectations)
            )
            saved = self.context.suites.add(declared)
            self._definitions[name] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=f"posguard-{name}", data=batch, suite=saved)
            )
        # GX's cost grows with the frame's width: hand it only the columns its suite reads.
        self._columns: dict[str, list[str]] = {
            name: _suite_columns(definition.suite) for name, definition in self._definitions.items()
        }
        self._checkpoints: dict[str, Any] = {}
        if docs_dir is not None:
            docs_dir.mkdir(parents=True, exist_ok=True)
            self.context.add_data_docs_site(
                site_name=DOCS_SITE,
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir.resolve()),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
            for name, definition in self._definitions.items():
                index = POSITION_INDEX if name == "positions" else INSTRUMENT_INDEX
                self._checkpoints[name] = self.context.checkpoints.add(
                    gx.Checkpoint(
                        name=f"posguard-{name}-docs",
                        validation_definitions=[definition],
                        actions=[UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE])],
                        result_format={
                            "result_format": "COMPLETE",
                            "unexpected_index_column_names": index,
                        },
                    )
                )
        self._lock = threading.Lock()

    def validate(
        self,
        positions: pd.DataFrame | None,
        instruments: pd.DataFrame | None,
        *,
        pos_mode: str | None = None,
        tolerance: float = 0.01,
        build_docs: bool = False,
        name_rows: bool = True,
    ) -> ValidationReport:
        """Validate contract frames (posguard.frames.contract) and report failures by rule.

        `name_rows` False reports which rules failed, not on which rows: for a caller that
        builds Data Docs next when anything failed (that run names them).

        `instruments` None skips the instruments suite: instrument specs change hourly at
        most, so the reconcile cycle validates them in the instruments flow, not every 30 s.
        `positions` None skips the positions suite (the instruments flow).
        """
        parameters = {
            "notional_tolerance": tolerance,
            "allowed_pos_sides": ALLOWED_POS_SIDES.get(pos_mode, ALLOWED_POS_SIDES[None]),
        }
        results: list[RuleResult] = []
        with self._lock:
            suites: list[tuple[str, pd.DataFrame, dict[str, Rule], list[str]]] = []
            if instruments is not None:
                suites.append(("instruments", instruments, RULES["instruments"], INSTRUMENT_INDEX))
            if positions is not None:
                # Zero-size records are kept by the frames but are not positions: skipped.
                open_positions = positions[positions["is_open"]]
                suites.append(("positions", open_positions, RULES["positions"], POSITION_INDEX))
            # Each suite's Data Docs page of this run, failing suites first.
            pages: list[tuple[bool, str]] = []
            for name, frame, rules, index in suites:
                needed = [c for c in dict.fromkeys([*index, *self._columns[name]])]
                gx_results, page = self._run(
                    name, frame[needed], parameters, index, build_docs, name_rows
                )
                suite_results = _by_rule(name, gx_results, frame, rules, self._expected[name])
                results += suite_results
                if page is not None:
                    pages.append((all(r.success for r in suite_results), page))
        docs = None
        if build_docs and self.docs_dir is not None:
            # The run's own page names the failing rows; the index only lists the runs.
            docs = min(pages)[1] if pages else (self.docs_dir / "index.html").resolve().as_uri()
        return ValidationReport(all(r.success for r in results), results, docs)

    def validate_accounts(
        self,
        contracts: Mapping[str, pd.DataFrame],
        pos_modes: Mapping[str, str | None],
        *,
        tolerance: float = 0.01,
        build_docs: bool = False,
    ) -> dict[str, ValidationReport]:
        """Several accounts' position contracts in one GX run per position mode (the only
        parameter that differs between accounts), each account's report its own.

        GX's cost is mostly fixed per run (~0.1 s for the positions suite): a round of
        hundreds of accounts pays it once instead of once per account.
        """
        reports: dict[str, ValidationReport] = {}
        by_mode: dict[str | None, list[str]] = {}
        for account in contracts:
            by_mode.setdefault(pos_modes.get(account), []).append(account)
        for pos_mode, accounts in by_mode.items():
            parts = [contracts[a].assign(account=a) for a in accounts]
            together = pd.concat(parts, ignore_index=True)
            # `row` numbers the rows of the frame validated: unique across the accounts.
            together["row"] = np.arange(len(together), dtype="int64")
            report = self.validate(
                together, None, pos_mode=pos_mode, tolerance=tolerance, build_docs=build_docs
            )
            for account in accounts:
                reports[account] = report.for_account(account)
        return reports

    def _run(
        self,
        name: str,
        frame: pd.DataFrame,
        parameters: dict[str, Any],
        index: list[str],
        build_docs: bool,
        name_rows: bool = True,
    ) -> tuple[list[Any], str | None]:
        """The expectation results, and the Data Docs page of this run when docs were built."""
        if build_docs and name in self._checkpoints:
            outcome = self._checkpoints[name].run(
                batch_parameters={"dataframe": frame}, expectation_parameters=parameters
            )
            page = None
            for identifier in outcome.run_results:
                for site in self.context.get_docs_sites_urls(
                    resource_identifier=identifier, site_name=DOCS_SITE
                ):
                    page = site.get("site_url") or page
            return [r for run in outcome.run_results.values() for r in run.results], page
        # ValidationDefinition.run would also serialize every result into the context's
        # in-memory store (a third of the run time at 100k rows, and memory that grows with
        # every run); the validator it wraps does the validation alone.
        definition = self._definitions[name]
        validator = Validator(
            batch_definition=definition.batch_definition,
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "BOOLEAN_ONLY"},
        )
        # Pass or fail first, then the failing rows of the expectations that failed only:
        # COMPLETE makes GX plan and compute the unexpected values, counts and indexes of every
        # expectation (2.6x the time at 1,000 positions, most of it fixed per run), and a
        # snapshot usually passes.
        outcome = validator.validate_expectation_suite(definition.suite, parameters)
        results = list(outcome.results)
        failed = {_expectation_id(r) for r in results if not r.success}
        if not failed or not name_rows:
            return results, None
        complete = {"result_format": "COMPLETE", "unexpected_index_column_names": index}
        validator.result_format = complete
        # (GX's engine keeps the last failing run's row lists in its metric cache until the
        # same metrics are computed again: memory bounded by one entry per metric.)
        if None not in failed:
            again = gx.ExpectationSuite(
                name=f"{definition.suite.name}-failed",
                expectations=[
                    e.configuration for e in definition.suite.expectations if e.id in failed
                ],
            )
            named = {
                _expectation_id(r): r
                for r in validator.validate_expectation_suite(again, parameters).results
            }
            if failed <= named.keys():
                return [named.get(_expectation_id(r), r) for r in results], None
        # Results that cannot be matched to the suite's expectations: the whole suite again.
        logger.error("suite %s: failed expectations not matched by id; validated whole", name)
        return list(
            validator.validate_expectation_suite(definition.suite, parameters).results
        ), None


def _expectation_id(result: Any) -> str | None:
    """The suite expectation a result is of (GX keeps its id in the result's configuration)."""
    config = result.expectation_config
    return None if config is None else config.id


def _suite_columns(suite: Any) -> list[str]:
    columns: list[str] = []
    for expectation in suite.expectations:
        for attribute in ("column", "column_A", "column_B"):
            value = getattr(expectation, attribute, None)
            if isinstance(value, str):
                columns.append(value)
        columns += list(getattr(expectation, "column_list", None) or [])
        condition = getattr(expectation, "row_condition", None)
        condition_column = getattr(getattr(condition, "column", None), "name", None)
        if isinstance(condition_column, str):
            columns.append(condition_column)
    return list(dict.fromkeys(columns))


def _exception_message(info: Any) -> str | None:
    """GX reports exceptions flat or keyed by metric; either way, the first message."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return fmt(info.get("exception_message"))
    for nested in info.values():
        message = _exception_message(nested)
        if message:
            return message
    return None


def _by_rule(
    suite: str,
    gx_results: list[Any],
    frame: pd.DataFrame,
    rules: dict[str, Rule],
    expected: dict[str, int],
) -> list[RuleResult]:
    """One result per declared rule, from GX's results. Nothing is assumed: a rule passes only
    when every expectation it declared came back successful, and a declared rule that GX did
    not report (or a result no rule declared) is a failure that says so."""
    grouped: dict[str, RuleResult] = {}
    reported: dict[str, int] = {}
    # Row numbers per failed rule, in GX's order; one rule may span several expectations.
    failing: dict[str, dict[int, None]] = {}
    for result in gx_results:
        config = result.expectation_config
        rule_name = (config.meta or {}).get("rule", config.type)
        outcome = grouped.setdefault(
            rule_name, RuleResult(expectation=rule_name, suite=suite, success=True)
        )
        reported[rule_name] = reported.get(rule_name, 0) + 1
        if rule_name not in rules:
            outcome.success = False
            outcome.failing.append(
                FailingRow("", "", "", f"GX reported {config.type}, which no rule declares")
            )
        if result.success:
            continue
        outcome.success = False
        message = _exception_message(result.exception_info)
        if message:
            logger.error("expectation %s could not be evaluated: %s", rule_name, message)
            outcome.failing.append(
                FailingRow("", "", "", f"the expectation could not be evaluated: {message}")
            )
            continue
        unexpected = (result.result or {}).get("unexpected_index_list") or []
        if not unexpected:
            # A failure must never be silent: say what GX observed when it names no row.
            observed = fmt((result.result or {}).get("observed_value"))
            outcome.failing.append(
                FailingRow("", "", "", f"failed without naming rows (observed: {observed})")
            )
        rows = failing.setdefault(rule_name, {})
        for item in unexpected:
            rows.setdefault(int(item.get("row", -1)), None)
    for rule_name, rows in failing.items():
        grouped[rule_name].failing += explain_rows(frame, list(rows), rules.get(rule_name))
    for name in rules:
        if reported.get(name, 0) != expected.get(name, 0) or name not in expected:
            outcome = grouped.setdefault(
                name, RuleResult(expectation=name, suite=suite, success=True)
            )
            outcome.success = False
            outcome.failing.append(
                FailingRow(
                    "",
                    "",
                    "",
                    f"GX reported {reported.get(name, 0)} of the rule's "
                    f"{expected.get(name, 0)} expectations: the suite and the declaration differ",
                )
            )
    # Declared order first, so reports read the same every run.
    order = {name: i for i, name in enumerate(rules)}
    return sorted(grouped.values(), key=lambda r: order.get(r.expectation, len(order)))


_shared: dict[Path | None, ExpectationsRunner] = {}
_shared_lock = threading.Lock()


def shared_runner(docs_dir: Path | None = None) -> ExpectationsRunner:
    """The process's runner for `docs_dir` (built on first use)."""
    with _shared_lock:
        if docs_dir not in _shared:
            _shared[docs_dir] = ExpectationsRunner(docs_dir)
        return _shared[docs_dir]
