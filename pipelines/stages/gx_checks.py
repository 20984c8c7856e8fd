"""scdx's variant of a GX expectation, imported only once GX is (see pipelines.stages.validate).

GX's ``UnexpectedRowsExpectation`` runs its query twice on every validation: once counting the
rows, which decides the check, and once fetching them, which only a ``COMPLETE`` result reports.
scdx asks for ``BOOLEAN_ONLY`` and, when a check fails, ``SUMMARY``, so the rows are never shown;
for the key-uniqueness query over 10M rows the second run is 0.6 s of nothing.
"""

from __future__ import annotations

from typing import Any

from great_expectations.core.result_format import ResultFormat
from great_expectations.expectations import UnexpectedRowsExpectation

ROWS_METRIC = "unexpected_rows_query.table"
COUNT_METRIC = "unexpected_rows_query.row_count"


class ExpectNoUnexpectedRowsCounted(UnexpectedRowsExpectation):  # type: ignore[misc]  # GX is untyped
    """``UnexpectedRowsExpectation`` that fetches the unexpected rows only for a COMPLETE result."""

    def get_validation_dependencies(
        self, execution_engine: Any = None, runtime_configuration: dict[str, Any] | None = None
    ) -> Any:
        dependencies = super().get_validation_dependencies(execution_engine, runtime_configuration)
        if dependencies.result_format.get("result_format") != ResultFormat.COMPLETE:
            dependencies.remove_metric_configuration(ROWS_METRIC)
        return dependencies

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> Any:
        # GX's own verdict and result; it reads the rows only for a COMPLETE result, which fetched them.
        return super()._validate({ROWS_METRIC: [], **metrics}, runtime_configuration, execution_engine)


# What a contract's check names (its CheckSpec) -> the class scdx validates it with.
OWN_EXPECTATIONS: dict[str, type[UnexpectedRowsExpectation]] = {
    "UnexpectedRowsExpectation": ExpectNoUnexpectedRowsCounted,
}
