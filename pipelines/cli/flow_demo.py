"""The demo's partner data (issue 23): constructed submissions, signed, ingested into the restricted
tier, and the disclosure-controlled public aggregates they give, counted by what was suppressed."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.table import Table

from pipelines.cli.app import cli_registry, console
from pipelines.common.settings import Settings
from pipelines.contracts import PartnerRegistry, load_partners
from pipelines.disclosure import REASONS
from pipelines.orchestration.inbox import Outcome, inbox_dir, ingest_inbox, submit
from pipelines.replay.flow_generate import DEFAULT_SEED, write_submissions
from pipelines.stages.publish_aggregates import AGGREGATES, PUBLISHED, cell_counts
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

COUNTED = (PUBLISHED, *REASONS)


@contextmanager
def partner_keys(partners: PartnerRegistry) -> Iterator[None]:
    """A fresh key for every partner whose variable is unset, in this process's environment only
    (never printed, never written), removed again afterwards."""
    added = [p.secret.env for p in partners.partners if not os.environ.get(p.secret.env)]
    for name in added:
        os.environ[name] = secrets.token_urlsafe(32)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def submit_and_ingest(settings: Settings, seed: int = DEFAULT_SEED) -> list[Outcome]:
    """Generate every partner's submissions, submit each signed with that partner's key, and ingest
    the inbox (which publishes the public aggregates when partner data changed)."""
    registry = cli_registry(settings)
    partners = load_partners(settings.schemas_dir, set(registry.contracts))
    with partner_keys(partners), tempfile.TemporaryDirectory(prefix="scdx-flow-") as scratch:
        for path in sorted(write_submissions(Path(scratch), seed)):
            partner = partners.get(path.stem)
            submit(inbox_dir(settings), partner.id, path.parent.name, path, partner.key())
        return ingest_inbox(settings, registry, partners)


def public_cell_counts(settings: Settings) -> dict[str, dict[str, int]]:
    """Cells of each public aggregate table in the current release, published or by reason."""
    counts = {}
    with open_public(Layout(settings.data_dir)) as con:
        for aggregate in AGGREGATES:
            table = con.sql(f"SELECT suppression_reason FROM {aggregate.table}").to_arrow_table()
            counts[aggregate.table] = cell_counts(table)
    return counts


def run_flow_demo(settings: Settings) -> bool:
    """The partner leg of the demo; prints the submissions' fate and the aggregates' cells. False
    when a submission was refused or failed."""
    outcomes = submit_and_ingest(settings)
    statuses = sorted({o.status for o in outcomes})
    console.print(
        f"partner submissions (constructed, signed): {len(outcomes)} to the restricted tier, "
        + ", ".join(f"{sum(o.status == s for o in outcomes)} {s}" for s in statuses),
        highlight=False,
    )
    summary = Table(title="Public partner aggregates (disclosure-controlled cells)")
    for heading in ("table", *COUNTED):
        summary.add_column(heading, justify="left" if heading == "table" else "right")
    for table, counts in public_cell_counts(settings).items():
        summary.add_row(table, *(f"{counts.get(reason, 0):,}" for reason in COUNTED))
    console.print(summary)
    return all(o.status in ("published", "unchanged", "no_data") for o in outcomes)
