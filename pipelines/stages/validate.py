"""Validate: the contract's checks, compiled into a Great Expectations suite, run inside DuckDB.

The staged Parquet is exposed to GX as a DuckDB view (never loaded into pandas). Results are
written as our own report JSON and as GX's result JSON, and the Data Docs site under the data
directory is updated. A batch with a failed blocking check goes to quarantine with its report.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import shutil
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb
import pyarrow.parquet as pq

from pipelines.common.errors import ScdxError
from pipelines.common.settings import duckdb_config
from pipelines.common.sql import literal_list, quote_identifier
from pipelines.contracts import (
    CheckSpec,
    Contract,
    ContractError,
    Registry,
    arrow_schema,
    check_specs,
)
from pipelines.stages.stage import StagedBatch
from pipelines.store.layout import Layout

log = logging.getLogger("scdx.validate")

SAMPLE_SIZE = 10


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


def _gx_context(layout: Layout) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    layout.data_docs_dir.mkdir(parents=True, exist_ok=True)
    layout.gx_results_dir.mkdir(parents=True, exist_ok=True)
    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    config = DataContextConfig(store_backend_defaults=defaults)
    # Results persist across runs so Data Docs lists every validation, not only the latest.
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(layout.gx_results_dir),
        },
    }
    config.data_docs_sites = {
        "local_site": {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(layout.data_docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    config.progress_bars = {"globally": False}
    config.analytics_enabled = False
    return gx.get_context(project_config=config, mode="ephemeral")


def duckdb_datasource(context: Any, name: str, database: Path, dialect: str | None = None) -> Any:
    """GX's SQL datasource on a DuckDB database file, through scdx's dialect (``scdx_duckdb://``).

    ``dialect``: another registered SQLAlchemy URL scheme to connect through instead (the bench's
    baseline). DuckDB settings ride on the URL (duckdb_engine passes its query on as connection
    config).
    """
    from pipelines.stages import gx_duckdb

    gx_duckdb.register()
    url = f"{dialect or gx_duckdb.SCHEME}:///{database}?{urlencode(duckdb_config())}"
    return context.data_sources.add_sql(name=name, connection_string=url)


def release(context: Any, datasource: Any) -> None:
    """Close GX's DuckDB connections and drop GX's global reference to the context.

    GX keeps the last context in a module-level project manager; left there, its pooled DuckDB
    connections outlive the run and DuckDB's bindings report them as leaked at interpreter exit.
    """
    import gc

    from great_expectations.data_context.data_context.context_factory import project_manager

    datasource.get_engine().dispose()
    project_manager.set_project(None)
    del context, datasource
    gc.collect()


def _row_condition(spec: CheckSpec) -> Any:
    """GX condition object for a spec's ``row_condition`` (field == value, AND-ed)."""
    from great_expectations.expectations.row_conditions import Column

    condition: Any = None
    for name, value in (spec.row_condition or {}).items():
        term = Column(name) == value
        condition = term if condition is None else condition & term
    return condition


def _expectations(specs: Sequence[CheckSpec], contract: Contract) -> list[Any]:
    import great_expectations as gx

    from pipelines.stages.gx_checks import OWN_EXPECTATIONS

    out = []
    for index, spec in enumerate(specs):
        cls = OWN_EXPECTATIONS.get(spec.expectation) or getattr(gx.expectations, spec.expectation, None)
        if cls is None:
            raise ContractError(
                f"{contract.dataset}: unknown Great Expectations expectation {spec.expectation!r}"
            )
        severity = "critical" if spec.severity == "blocking" else "warning"
        extra: dict[str, Any] = {}
        if spec.row_condition:
            extra["row_condition"] = _row_condition(spec)
        out.append(cls(**spec.kwargs, **extra, severity=severity, meta={"scdx_check": index}))
    return out


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


def _run_checkpoint(
    context: Any, contract: Contract, definition: Any, run_id: Any, result_format: str
) -> Any:
    """Run the suite through a checkpoint that updates Data Docs; the suite's result."""
    import great_expectations as gx

    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{contract.dataset}.checkpoint.{result_format.lower()}",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": result_format, "partial_unexpected_count": SAMPLE_SIZE},
        )
    )
    (suite_result,) = checkpoint.run(run_id=run_id).run_results.values()
    return suite_result


# Imported by GX at start-up for a few expectations scdx's contracts do not use (the KL-divergence
# and Kolmogorov-Smirnov checks and their charts): 1 s of GX's 2.5 s import.
DEFERRED_IMPORTS = ("scipy.stats", "altair")
_deferred_lock = threading.RLock()


class _DeferredModule(types.ModuleType):
    """Stands in ``sys.modules`` for a module until an attribute of it is first used.

    ``importlib.util.LazyLoader`` cannot do this on Python 3.11: the ``import`` statement itself
    reads the module's ``__spec__``, which loads it. This stand-in has the plain module's
    attributes, so importing it costs nothing; the first other attribute imports the real module,
    which then replaces it in ``sys.modules`` (and its namespace is copied here for whoever holds
    the stand-in).
    """

    def __getattr__(self, attribute: str) -> Any:
        with _deferred_lock:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
                self.__dict__.update(importlib.import_module(self.__name__).__dict__)
            real = sys.modules[self.__name__]
        return getattr(real, attribute)


def _defer_imports(names: Sequence[str]) -> None:
    with _deferred_lock:
        for name in names:
            sys.modules.setdefault(name, _DeferredModule(name))


def _import_gx() -> None:
    # GX logs every decorated function at INFO while importing; keep task logs readable.
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    _defer_imports(DEFERRED_IMPORTS)
    # The import makes some 325,000 long-lived objects, and the cyclic collector would run 444
    # times meanwhile, walking them (0.15 s of the import's 1.3 s). Frozen afterwards, they are
    # left out of every later collection too (a whole refresh's collections: 0.36 s -> 0.05 s).
    # Only the first import does this (a freeze keeps whatever is alive then): collection
    # resumes as it was when that import ends, or fails.
    first = "great_expectations" not in sys.modules
    collecting = gc.isenabled()
    if first:
        gc.disable()
    try:
        import great_expectations  # noqa: F401

        from pipelines.stages import gx_checks, gx_duckdb  # noqa: F401
    finally:
        if first:
            gc.freeze()
            if collecting:
                gc.enable()


def warm_up() -> None:
    """Import GX (1.2 s of Python) in a background thread, for a validation that is coming.

    A refresh starts it when normalizing begins: normalize's parsing and Parquet writing run in
    DuckDB and Arrow without the GIL, so the import mostly fills the other core. ``validate``
    imports the same modules; Python's import lock makes it wait for this import, not repeat it.
    """
    threading.Thread(target=_import_gx, name="scdx-gx-import", daemon=True).start()


def validate(
    staged: StagedBatch, contract: Contract, registry: Registry, layout: Layout, *, dialect: str | None = None
) -> ValidationReport:
    """Run every check of the contract on a staged batch and write the reports.

    A failed check is a result, not an error; a check that could not run raises CheckCannotRun.
    ``dialect``: the SQLAlchemy URL scheme GX connects through, scdx's own by default (``python -m devtools bench
    validate`` passes its baseline, the dialect as it was before it reflected from DuckDB's catalog).
    """
    _import_gx()
    import great_expectations as gx

    report_dir = layout.report_dir(contract.dataset, staged.run_id)
    report_dir.mkdir(parents=True, exist_ok=True)
    layout.work_dir.mkdir(parents=True, exist_ok=True)
    view_db = layout.work_dir / f"validate-{contract.dataset}-{staged.run_id}.duckdb"
    view_db.unlink(missing_ok=True)
    files = literal_list(str(p) for p in staged.files)
    with duckdb.connect(str(view_db), config=duckdb_config()) as con:
        con.execute(
            f"CREATE VIEW {quote_identifier(contract.dataset)} AS SELECT * FROM read_parquet({files})"
        )

    results = [_schema_check(staged, contract, registry)]
    specs = check_specs(contract, registry)
    context = _gx_context(layout)
    datasource = duckdb_datasource(context, "staged", view_db, dialect)
    try:
        asset = datasource.add_table_asset(name=contract.dataset, table_name=contract.dataset)
        batch_definition = asset.add_batch_definition_whole_table(name=staged.run_id)
        # Built whole, then stored once: adding expectations one by one to a stored suite
        # saves the suite again after each (18 expectations: 55 ms against 5 ms).
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=f"{contract.dataset}.v{contract.version}", expectations=_expectations(specs, contract)
            )
        )
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(
                name=f"{contract.dataset}.{staged.run_id}", data=batch_definition, suite=suite
            )
        )
        # An explicit run time: left out, GX parses the run name as a date, and a run id such
        # as 20261130T090619Z-8572ad reads as a UTC offset of +86:12 that breaks Data Docs.
        run_id = gx.RunIdentifier(run_name=staged.run_id, run_time=datetime.now(UTC))
        # First only whether each check passes: counting and sampling the unexpected values
        # scans the whole batch again per check (a second of a 10M-row validation). When a
        # check fails, the suite runs again for the counts and samples the report shows; that
        # result replaces the first under the same run id, in the store and in Data Docs.
        suite_result = _run_checkpoint(context, contract, definition, run_id, "BOOLEAN_ONLY")
        if not all(r.success for r in suite_result.results):
            suite_result = _run_checkpoint(context, contract, definition, run_id, "SUMMARY")
        by_index = {r.expectation_config.meta["scdx_check"]: r for r in suite_result.results}
        results.extend(_result_of(spec, by_index[i]) for i, spec in enumerate(specs))
        gx_result_json = suite_result.to_json_dict()
    finally:
        release(context, datasource)
        view_db.unlink(missing_ok=True)
        # What DuckDB spilled to disk under the memory limit.
        shutil.rmtree(view_db.with_name(view_db.name + ".tmp"), ignore_errors=True)

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
    broken = [c for c in report.checks if c.error]
    if broken:
        # A check that could not run says nothing about the data: never a pass, never a warning.
        raise CheckCannotRun(
            f"{contract.dataset}: {len(broken)} check(s) could not run, nothing published "
            f"(report {report.report_path}): "
            + "; ".join(f"{c.check} [{c.description}] ({c.severity}): {c.error}" for c in broken)
        )
    log.info("%s run %s: validation %s", contract.dataset, staged.run_id, report.outcome)
    return report
