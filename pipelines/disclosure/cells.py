"""Cells: every partner's contributions summed at every published level, and the groups (a parent
cell with its children) whose sums an attacker can use."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.disclosure.rules import DisclosureError, Hierarchy, Level, levels_of

PARTNER = "partner_id"
VALUE = "value"

CellId = tuple[str, tuple[Hashable, ...]]
"""A cell by its level's name and its values of that level's dimensions, in the level's order."""


@dataclass
class Cell:
    """One published aggregate cell and what each partner contributed to it."""

    level: Level
    key: tuple[Hashable, ...]
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def id(self) -> CellId:
        return (self.level.name, self.key)

    @property
    def value(self) -> float:
        return sum(self.shares.values())

    def others(self, attacker: str | None) -> float:
        """What ``attacker`` does not know of this cell: its value less the attacker's own share
        (the whole value for someone outside the cell, ``attacker=None``)."""
        return self.value - self.shares.get(attacker, 0.0) if attacker is not None else self.value


@dataclass(frozen=True)
class Group:
    """A parent cell and its children: parent = sum of children, one equation to an attacker."""

    parent: CellId
    children: tuple[CellId, ...]

    @property
    def members(self) -> tuple[CellId, ...]:
        return (self.parent, *self.children)


def _check_columns(contributions: pa.Table, levels: tuple[Level, ...]) -> None:
    wanted = {PARTNER, VALUE} | {dimension for level in levels for dimension in level.dimensions}
    missing = sorted(wanted - set(contributions.column_names))
    if missing:
        raise DisclosureError(f"contributions lack the columns {missing}")
    values = contributions.column(VALUE)
    if values.null_count or contributions.column(PARTNER).null_count:
        raise DisclosureError("contributions have rows without a partner_id or a value")
    if len(values) and pc.min(values).as_py() < 0:
        # Non-negative values are what bound an attacker's guesses; a negative one breaks the proof.
        raise DisclosureError("contributions have a negative value")


def build_cells(contributions: pa.Table, hierarchies: tuple[Hierarchy, ...]) -> dict[CellId, Cell]:
    """Every cell of every level the hierarchies name, with each partner's summed contribution."""
    levels = levels_of(hierarchies)
    _check_columns(contributions, levels)
    cells: dict[CellId, Cell] = {}
    for level in levels:
        grouping = [*level.dimensions, PARTNER]
        summed = contributions.group_by(grouping).aggregate([(VALUE, "sum")]).to_pylist()
        for row in summed:
            key = tuple(row[dimension] for dimension in level.dimensions)
            cell = cells.setdefault((level.name, key), Cell(level, key))
            cell.shares[str(row[PARTNER])] = float(row[f"{VALUE}_sum"])
    return dict(sorted(cells.items(), key=lambda item: _sort_key(item[0])))


def _sort_key(cell_id: CellId) -> tuple[str, tuple[str, ...]]:
    # Keys may mix types (None, ints, strings); their text orders them the same on every run.
    return (cell_id[0], tuple(repr(part) for part in cell_id[1]))


def build_groups(cells: dict[CellId, Cell], hierarchies: tuple[Hierarchy, ...]) -> tuple[Group, ...]:
    """Every parent cell with its children, for every hierarchy, in a deterministic order."""
    groups: list[Group] = []
    for hierarchy in hierarchies:
        positions = [hierarchy.child.dimensions.index(d) for d in hierarchy.parent.dimensions]
        children: dict[CellId, list[CellId]] = {}
        for cell in cells.values():
            if cell.level.name == hierarchy.child.name:
                parent_key = tuple(cell.key[position] for position in positions)
                children.setdefault((hierarchy.parent.name, parent_key), []).append(cell.id)
        groups.extend(Group(parent, tuple(members)) for parent, members in children.items())
    return tuple(sorted(groups, key=lambda group: _sort_key(group.parent)))
