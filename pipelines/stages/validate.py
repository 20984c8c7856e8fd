"""Validate: the contract's checks, compiled into a Great Expectations suite, run inside DuckDB.

The staged Parquet is exposed to GX as a DuckDB view (never loaded into pandas). Results are
written as our own report JSON and as GX's result JSON, and the Data Docs site under the data
directory is updated. A batch with a failed blocking check goes to quarantine with its report.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from pipelines.common.errors import ScdxError
from pipelines.common.settings import duckdb_config
from pipelines.common.sql import literal_list, quote_identifier
from pipelines.contracts import CheckSpec, Contract, Registry, arrow_schema, check_specs
from pipelines.stages.gx_suite import SAMPLE_SIZE, import_gx, run_suite
from pipelines.stages.stage import StagedBatch
from pipelines.store.layout import Layout

log = logging.getLogger("scdx.validate")


class CheckCannotRun(ScdxError, RuntimeError):
    """A check of the suite could not run (bad SQL, a missing column): the run fails, whatever the
    check's severity, and nothing is published (exit code 1); the message names the check and
    DuckDB's error."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    check: str
    description: str
    severity: str
    success: bool
    column: str | None = None
    unexpected_count: int | None = None
    unexpected_sample: list[Any] = field(default_factory=list)
    observed_value: Any = None
    error: str | None = None
    drift_kind: str | None = None

    def describe(self) -> str:
        target = f"({self.column})" if self.column else ""
        detail = ""
        if self.error:
            detail = f": error {self.error}"
        elif self.unexpected_count:
            detail = f": {self.unexpected_count} unexpected, e.g. {self.unexpected_sample[:3]}"
        elif self.observed_value is not None:
            detail = f": observed {self.observed_value}"
        return f"{self.check}{target} [{self.description}]{detail}"


@dataclass(frozen=True)
class ValidationReport:
    """Every check of one staged batch, and where the reports were written."""

    dataset: str
    run_id: str
    contract_version: str
    rows: int
    checks: tuple[CheckResult, ...]
    report_path: Path
    gx_result_path: Path
    data_docs_index: Path
    validated_at: str

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success and c.severity == "blocking"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.success and c.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.blocking_failures

    @property
    def outcome(self) -> str:
        if self.blocking_failures:
            return f"failed ({len(self.blocking_failures)} blocking)"
        if self.warnings:
            return f"passed, {len(self.warnings)} warning(s)"
        return "passed"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("report_path", "gx_result_path", "data_docs_index"):
            data[key] = str(data[key])
        data["outcome"] = self.outcome
        data["passed"] = self.passed
        return data


def _schema_check(staged: StagedBatch, contract: Contract, registry: Registry) -> CheckResult:
    expected = arrow_schema(contract, registry)
    want = [(f.name, str(f.type)) for f in expected]
    for path in staged.files:
        actual = pq.read_schema(path)
        got = [(f.name, str(f.type)) for f in actual]
        # Types compare as Arrow types, not text: Parquet names a list's item "element".
        same = actual.names == expected.names and all(
            a.type.equals(e.type) for a, e in zip(actual, expected, strict=True)
        )
        if not same:
            return CheckResult(
                check="arrow_schema_matches_contract",
                description="staged Parquet has the contract's columns and types",
                severity="blocking",
                success=False,
                observed_value={"file": path.name, "columns": got, "expected": want},
            )
    return CheckResult(
        check="arrow_schema_matches_contract",
        description="staged Parquet has the contract's columns and types",
        severity="blocking",
        success=True,
    )


def _exception_message(exception_info: Any) -> str | None:
    """The error GX caught while running a check, if any.

    GX reports it either at the top level (``raised_exception``) or, when a metric's query failed,
    under each failed metric's id; both shapes mean the check could not run.
    """
    if not isinstance(exception_info, dict):
        return None
    candidates = [exception_info, *(v for v in exception_info.values() if isinstance(v, dict))]
    for info in candidates:
        if info.get("raised_exception") or info.get("exception_message"):
            message = str(info.get("exception_message") or "").strip()
            return (message or "GX raised an exception without a message")[:500]
    return None


def _result_of(spec: CheckSpec, gx_result: Any) -> CheckResult:
    result = gx_result.result or {}
    error = _exception_message(gx_result.exception_info)
    sample = result.get("partial_unexpected_list") or []
    if not sample and result.get("details", {}).get("unexpected_rows"):
        sample = result["details"]["unexpected_rows"]
    observed = result.get("observed_value")
    return CheckResult(
        check=spec.expectation,
        description=spec.description,
        severity=spec.severity,
        success=bool(gx_result.success) and error is None,
        column=spec.kwargs.get("column"),
        unexpected_count=result.get("unexpected_count"),
        unexpected_sample=[_jsonable(v) for v in list(sample)[:SAMPLE_SIZE]],
        observed_value=_jsonable(observed),
        error=error,
        drift_kind=spec.drift_kind,
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _staged_view(staged: StagedBatch, contract: Contract, layout: Layout) -> Path:
    """A DuckDB database file holding one view, named after the dataset, over the staged Parquet."""
    layout.work_dir.mkdir(parents=True, exist_ok=True)
    view_db = layout.work_dir / f"validate-{contract.dataset}-{staged.run_id}.duckdb"
    view_db.unlink(missing_ok=True)
    files = literal_list(str(p) for p in staged.files)
    with duckdb.connect(str(view_db), config=duckdb_config()) as con:
        con.execute(
            f"CREATE VIEW {quote_identifier(contract.dataset)} AS SELECT * FROM read_parquet({files})"
        )
    return view_db


def _drop_view(view_db: Path) -> None:
    view_db.unlink(missing_ok=True)
    # What DuckDB spilled to disk under the memory limit.
    shutil.rmtree(view_db.with_name(view_db.name + ".tmp"), ignore_errors=True)


def _written_report(
    staged: StagedBatch,
    contract: Contract,
    layout: Layout,
    results: Sequence[CheckResult],
    gx_result_json: dict[str, Any],
) -> ValidationReport:
    """The report of the checks, written beside GX's own result under reports/."""
    report_dir = layout.report_dir(contract.dataset, staged.run_id)
    gx_result_path = report_dir / "gx_result.json"
    gx_result_path.write_text(json.dumps(gx_result_json, indent=2, default=str))
    report = ValidationReport(
        dataset=contract.dataset,
        run_id=staged.run_id,
        contract_version=contract.version,
        rows=staged.rows,
        checks=tuple(results),
        report_path=report_dir / "validation.json",
        gx_result_path=gx_result_path,
        data_docs_index=layout.data_docs_dir / "index.html",
        validated_at=datetime.now(UTC).isoformat(),
    )
    report.report_path.write_text(json.dumps(report.to_json(), indent=2, default=str))
    return report


def _refuse_unrun_checks(report: ValidationReport, contract: Contract) -> None:
    """CheckCannotRun if any check could not run: it says nothing about the data, so it is never
    a pass and never a warning."""
    broken = [c for c in report.checks if c.error]
    if broken:
        raise CheckCannotRun(
            f"{contract.dataset}: {len(broken)} check(s) could not run, nothing published "
            f"(report {report.report_path}): "
            + "; ".join(f"{c.check} [{c.description}] ({c.severity}): {c.error}" for c in broken)
        )


def validate(
    staged: StagedBatch, contract: Contract, registry: Registry, layout: Layout, *, dialect: str | None = None
) -> ValidationReport:
    """Run every check of the contract on a staged batch and write the reports.

    A failed check is a result, not an error; a check that could not run raises CheckCannotRun.
    ``dialect``: the SQLAlchemy URL scheme GX connects through, scdx's own by default (``python -m devtools bench
    validate`` passes its baseline, the dialect as it was before it reflected from DuckDB's catalog).
    """
    import_gx()
    layout.report_dir(contract.dataset, staged.run_id).mkdir(parents=True, exist_ok=True)
    view_db = _staged_view(staged, contract, layout)
    results = [_schema_check(staged, contract, registry)]
    specs = check_specs(contract, registry)
    try:
        gx_results, gx_result_json = run_suite(specs, contract, staged.run_id, view_db, layout, dialect)
    finally:
        _drop_view(view_db)
    results.extend(_result_of(spec, gx_result) for spec, gx_result in zip(specs, gx_results, strict=True))
    report = _written_report(staged, contract, layout, results, gx_result_json)
    _refuse_unrun_checks(report, contract)
    log.info("%s run %s: validation %s", contract.dataset, staged.run_id, report.outcome)
    return report
