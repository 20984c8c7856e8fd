"""The public aggregate table: one row per cell of every level, its value null where suppressed."""

from __future__ import annotations

import pyarrow as pa

from pipelines.disclosure.audit import audit_margins
from pipelines.disclosure.cells import Cell, CellId, build_cells, build_groups
from pipelines.disclosure.rules import DisclosureRule, Hierarchy, has_margins, levels_of, root_of
from pipelines.disclosure.suppression import (
    complementary_suppression,
    contributors,
    primary_suppression,
)

LEVEL = "level"
SUPPRESSED = "suppressed"
REASON = "suppression_reason"
CONTRIBUTORS = "contributors"


def contributors_band(count: int, rule: DisclosureRule) -> str:
    """The number of contributing partners as a band: an exact count would tell a partner in a
    cell of the minimum size that the others are exactly two, and who else is in it."""
    if count >= 10:
        return "10+"
    if count >= 5:
        return "5-9"
    return f"{rule.min_partners}-4"


def public_table(
    contributions: pa.Table,
    hierarchies: tuple[Hierarchy, ...],
    cells: dict[CellId, Cell],
    suppressed: dict[CellId, str],
    rule: DisclosureRule,
) -> pa.Table:
    """The rows the public database gets: level, every dimension (null where the level does not
    group by it), value (null when suppressed), suppressed, suppression_reason, contributors."""
    dimensions = list(dict.fromkeys(d for level in levels_of(hierarchies) for d in level.dimensions))
    columns: dict[str, list[object]] = {name: [] for name in [LEVEL, *dimensions]}
    values: list[float | None] = []
    flags: list[bool] = []
    reasons: list[str | None] = []
    bands: list[str | None] = []
    for cell_id, cell in cells.items():
        positions = dict(zip(cell.level.dimensions, cell.key, strict=True))
        columns[LEVEL].append(cell.level.name)
        for dimension in dimensions:
            columns[dimension].append(positions.get(dimension))
        reason = suppressed.get(cell_id)
        values.append(None if reason else cell.value)
        flags.append(reason is not None)
        reasons.append(reason)
        # A suppressed cell's count is withheld: its reason already says all the public may know.
        bands.append(None if reason else contributors_band(contributors(cell), rule))
    fields = [pa.field(LEVEL, pa.string(), nullable=False)]
    fields += [contributions.schema.field(d).with_nullable(True) for d in dimensions]
    fields += [
        pa.field("value", pa.float64()),
        pa.field(SUPPRESSED, pa.bool_(), nullable=False),
        pa.field(REASON, pa.string()),
        pa.field(CONTRIBUTORS, pa.string()),
    ]
    arrays = [*columns.values(), values, flags, reasons, bands]
    return pa.Table.from_arrays(
        [pa.array(array, type=f.type) for array, f in zip(arrays, fields, strict=True)],
        schema=pa.schema(fields),
    )


def protect(
    contributions: pa.Table,
    hierarchies: tuple[Hierarchy, ...],
    rule: DisclosureRule | None = None,
) -> pa.Table:
    """Primary then complementary suppression of every level the hierarchies name, and where they
    are the margins of one table (chains sharing the root) the linear-programming audit of
    :mod:`pipelines.disclosure.audit`: the table that may leave the restricted tier."""
    rule = rule or DisclosureRule()
    cells = build_cells(contributions, hierarchies)
    groups = build_groups(cells, hierarchies)
    primary = primary_suppression(cells, rule)
    suppressed = complementary_suppression(cells, groups, primary, rule)
    if has_margins(hierarchies):
        levels, root = levels_of(hierarchies), root_of(hierarchies)
        suppressed = audit_margins(contributions, levels, root, cells, groups, primary, suppressed, rule)
    return public_table(contributions, hierarchies, cells, suppressed, rule)
