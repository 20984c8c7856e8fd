"""Great Expectations, as validate uses it: the contract's checks as a GX suite, run by GX's SQL
engine inside DuckDB (through scdx's dialect, ``gx_duckdb``) over a view of the staged Parquet.

GX is imported inside the functions that use it, never at module level: it takes 2 s of Python,
and a run that stops as unchanged, the CLI's other commands and the DAG files never need it. A
whole refresh starts the import early, on a thread of its own (``warm_up``), once per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pipelines.common.settings import duckdb_config
from pipelines.contracts import CheckSpec, Contract, ContractError
from pipelines.store.layout import Layout

SAMPLE_SIZE = 10

_warming_up: threading.Thread | None = None


def import_gx() -> None:
    """Import GX and scdx's GX modules (the dialect, its own expectation); a later call costs a
    lookup of modules already imported."""
    # GX logs every decorated function at INFO while importing; keep task logs readable.
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations  # noqa: F401

    from pipelines.stages import gx_checks, gx_duckdb  # noqa: F401


def warm_up() -> None:
    """Import GX on a background thread for a validation that is coming; once per process.

    A whole refresh starts it when normalizing begins: normalize's parsing and Parquet writing run
    in DuckDB and Arrow without the GIL, so the import mostly fills the other core. ``validate``
    imports the same modules; Python's import lock makes it wait for this import, not repeat it.
    """
    global _warming_up
    if _warming_up is None:
        _warming_up = threading.Thread(target=import_gx, name="scdx-gx-import", daemon=True)
        _warming_up.start()


def gx_context(layout: Layout) -> Any:
    """An ephemeral GX context whose results and Data Docs live under the data directory."""
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


def suite_expectations(specs: Sequence[CheckSpec], contract: Contract) -> list[Any]:
    """The GX expectation of each check, in order, its index kept in ``meta["scdx_check"]``."""
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


def _validation_definition(
    context: Any, datasource: Any, contract: Contract, batch_name: str, specs: Sequence[CheckSpec]
) -> Any:
    """The suite of ``specs`` over the whole view of the staged batch, stored in the context."""
    import great_expectations as gx

    asset = datasource.add_table_asset(name=contract.dataset, table_name=contract.dataset)
    batch_definition = asset.add_batch_definition_whole_table(name=batch_name)
    # Built whole, then stored once: adding expectations one by one to a stored suite saves the
    # suite again after each (18 expectations: 55 ms against 5 ms).
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=f"{contract.dataset}.v{contract.version}", expectations=suite_expectations(specs, contract)
        )
    )
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{contract.dataset}.{batch_name}", data=batch_definition, suite=suite)
    )


def run_suite(
    specs: Sequence[CheckSpec],
    contract: Contract,
    run_name: str,
    view_db: Path,
    layout: Layout,
    dialect: str | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """Run the checks over the view ``contract.dataset`` of ``view_db``; GX's result of each
    check, in the order of ``specs``, and GX's result of the suite as JSON.

    Results go to GX's store and Data Docs under ``layout``; GX's connections are closed on return.
    """
    import great_expectations as gx

    context = gx_context(layout)
    datasource = duckdb_datasource(context, "staged", view_db, dialect)
    try:
        definition = _validation_definition(context, datasource, contract, run_name, specs)
        # An explicit run time: left out, GX parses the run name as a date, and a run id such
        # as 20261130T090619Z-8572ad reads as a UTC offset of +86:12 that breaks Data Docs.
        run_id = gx.RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
        # First only whether each check passes: counting and sampling the unexpected values
        # scans the whole batch again per check (a second of a 10M-row validation). When a
        # check fails, the suite runs again for the counts and samples the report shows; that
        # result replaces the first under the same run id, in the store and in Data Docs.
        suite_result = _run_checkpoint(context, contract, definition, run_id, "BOOLEAN_ONLY")
        if not all(r.success for r in suite_result.results):
            suite_result = _run_checkpoint(context, contract, definition, run_id, "SUMMARY")
        by_index = {r.expectation_config.meta["scdx_check"]: r for r in suite_result.results}
        return [by_index[i] for i in range(len(specs))], suite_result.to_json_dict()
    finally:
        release(context, datasource)
