"""Quarantine: where a batch goes when it must not be published, with the reason beside it.

``quarantine/<dataset>/<run_id>/`` holds the staged Parquet (when there was any) and the reports
that explain the decision. Raw data stays where it landed, untouched; the report points to it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.common.errors import ScdxError
from pipelines.stages.root_files import put_tree, remove_staged, run_prefix
from pipelines.store.data_root import DataRoot
from pipelines.store.layout import Layout

if TYPE_CHECKING:
    from pipelines.stages.stage import StagedBatch
    from pipelines.stages.validate import ValidationReport


class QuarantinedError(ScdxError, RuntimeError):
    """A batch was refused (failed blocking checks or rejected drift); it is quarantined, not published."""

    def __init__(
        self,
        dataset: str,
        run_id: str,
        reason: str,
        quarantine_path: Path,
        report: ValidationReport | None = None,
        location: str | None = None,
    ) -> None:
        where = location or str(quarantine_path)
        super().__init__(f"{dataset}: run {run_id} {reason}. Not published; quarantined at {where}")
        self.dataset = dataset
        self.run_id = run_id
        self.quarantine_path = quarantine_path
        self.report = report
        # Where the quarantined files are kept: the local path, or their prefix on the data root.
        self.location = where


def _put_on_root(target: Path, dataset: str, run_id: str, root: DataRoot | None) -> str | None:
    """Put the quarantined files on the data root, if there is one; the URI of their prefix."""
    if root is None:
        return None
    prefix = run_prefix("quarantine", dataset, run_id)
    put_tree(target, prefix, root)
    return root.uri(prefix)


def quarantine_batch(
    staged: StagedBatch, report: ValidationReport, layout: Layout, root: DataRoot | None = None
) -> QuarantinedError:
    """Move a batch that failed blocking checks to quarantine with its reports (and put them on
    the data ``root``, when there is one)."""
    target = layout.quarantine_dir(staged.dataset, staged.run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staged.directory), str(target))
    for path in (report.report_path, report.gx_result_path):
        shutil.copy2(path, target / path.name)
    failed = "; ".join(c.describe() for c in report.blocking_failures)
    location = _put_on_root(target, staged.dataset, staged.run_id, root)
    if root is not None:
        remove_staged(staged.dataset, staged.run_id, root)
    return QuarantinedError(
        staged.dataset, staged.run_id, f"failed blocking checks: {failed}", target, report, location
    )


def quarantine_drift(
    dataset: str,
    run_id: str,
    reason: str,
    drift: list[dict[str, Any]],
    layout: Layout,
    root: DataRoot | None = None,
) -> QuarantinedError:
    """Record a batch the evolution policy rejected before staging: a report, and where the raw data is."""
    target = layout.quarantine_dir(dataset, run_id)
    target.mkdir(parents=True, exist_ok=True)
    report = {
        "dataset": dataset,
        "run_id": run_id,
        "reason": reason,
        "drift": drift,
        "raw": str(layout.raw_dir(dataset, run_id)),
    }
    if root is not None:
        report["raw"] = root.uri(run_prefix("raw", dataset, run_id))
    (target / "drift.json").write_text(json.dumps(report, indent=2) + "\n")
    location = _put_on_root(target, dataset, run_id, root)
    return QuarantinedError(
        dataset, run_id, f"rejected by the contract's evolution policy: {reason}", target, location=location
    )
