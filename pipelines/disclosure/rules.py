"""What a disclosure rule says and which aggregates it protects: the rule's thresholds, the levels
cells are published at, and the hierarchies (child level -> parent level) that tie them by sums."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.common.errors import UsageError

TOO_FEW_PARTNERS = "too_few_partners"
DOMINANT_PARTNER = "dominant_partner"
ESTIMABLE_BY_PARTNER = "estimable_by_partner"
COMPLEMENTARY = "complementary"
# Every suppression reason, the primary ones first in the order they are tested.
REASONS = (TOO_FEW_PARTNERS, DOMINANT_PARTNER, ESTIMABLE_BY_PARTNER, COMPLEMENTARY)


class DisclosureError(UsageError):
    """Contributions or a hierarchy that disclosure control cannot work with (a missing column, a
    negative value, a parent level that is not coarser than its child): bad usage, exit code 2."""


@dataclass(frozen=True)
class DisclosureRule:
    """The thresholds from the partner contract.

    min_partners: a cell needs at least this many contributing partners (the threshold rule).
    max_share_pct: no single partner may hold more than this share of a cell's value (dominance).
    min_protection_pct: the p% rule with a contributor as attacker: what the others hold besides
      the two largest contributors must be at least this share of the largest, so the second
      largest, subtracting its own value, cannot estimate the largest within that margin. It is
      also the margin complementary suppression leaves around every suppressed value.
    """

    min_partners: int = 3
    max_share_pct: float = 60.0
    min_protection_pct: float = 10.0

    def __post_init__(self) -> None:
        # Fewer than 2 partners would let a contributor read the other's value from a cell total.
        if self.min_partners < 2:
            raise DisclosureError(f"min_partners must be at least 2, not {self.min_partners}")
        if not 0 < self.max_share_pct <= 100:
            raise DisclosureError(f"max_share_pct must be in (0, 100], not {self.max_share_pct}")
        if not 0 <= self.min_protection_pct <= 100:
            raise DisclosureError(f"min_protection_pct must be in [0, 100], not {self.min_protection_pct}")


@dataclass(frozen=True)
class Level:
    """One published aggregate: its name (e.g. ``port_week``) and the dimensions it groups by."""

    name: str
    dimensions: tuple[str, ...]


@dataclass(frozen=True)
class Hierarchy:
    """Every cell of ``parent`` is the sum of the cells of ``child`` that share its dimensions."""

    child: Level
    parent: Level

    def __post_init__(self) -> None:
        missing = set(self.parent.dimensions) - set(self.child.dimensions)
        if missing or len(self.parent.dimensions) >= len(self.child.dimensions):
            raise DisclosureError(
                f"level {self.parent.name} {self.parent.dimensions} is not a coarser grouping of "
                f"{self.child.name} {self.child.dimensions}"
            )


def levels_of(hierarchies: tuple[Hierarchy, ...]) -> tuple[Level, ...]:
    """The levels the hierarchies publish, each once, finest first as declared; checks that they
    form a chain (a level sums into at most one parent and from at most one child level), the case
    the group-by-group suppression is argued for, or chains that share only their root (the margins
    of one table, e.g. ports and commodity groups summing to the week), which ``protect`` audits
    with linear programs (:mod:`pipelines.disclosure.audit`)."""
    if not hierarchies:
        raise DisclosureError("disclosure control needs at least one hierarchy (child -> parent)")
    levels: dict[str, Level] = {}
    parents: dict[str, str] = {}
    children: dict[str, set[str]] = {}
    for hierarchy in hierarchies:
        for level in (hierarchy.child, hierarchy.parent):
            if levels.setdefault(level.name, level) != level:
                raise DisclosureError(f"level {level.name} is declared with two sets of dimensions")
        if parents.setdefault(hierarchy.child.name, hierarchy.parent.name) != hierarchy.parent.name:
            # Two parents make a two-dimensional table below the top, which neither the per-group
            # rule nor the audit (margins meet only at the root) covers.
            raise DisclosureError(f"level {hierarchy.child.name} sums into two parent levels")
        children.setdefault(hierarchy.parent.name, set()).add(hierarchy.child.name)
    roots = [name for name in levels if name not in parents]
    for name, below in children.items():
        if len(below) > 1 and roots != [name]:
            # Two child levels are two margins of one table (ports x commodity groups): only where
            # they meet at the one root does the audit see every equation an attacker combines.
            raise DisclosureError(f"level {name} is the sum of two child levels and not the only root")
    return tuple(levels.values())


def root_of(hierarchies: tuple[Hierarchy, ...]) -> Level:
    """The coarsest level: the one that sums into no other (checked by :func:`levels_of`)."""
    children = {hierarchy.child.name for hierarchy in hierarchies}
    roots = [level for level in levels_of(hierarchies) if level.name not in children]
    if len(roots) != 1:
        raise DisclosureError(f"the hierarchies have {len(roots)} top levels, not one")
    return roots[0]


def has_margins(hierarchies: tuple[Hierarchy, ...]) -> bool:
    """Whether the root sums from two or more child levels: the margins of one table."""
    root = root_of(hierarchies).name
    return len({h.child.name for h in hierarchies if h.parent.name == root}) > 1
