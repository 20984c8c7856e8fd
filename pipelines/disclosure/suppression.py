"""Primary suppression (the cell itself is sensitive) and complementary suppression (a published
cell would let an attacker derive, or closely bound, a suppressed one); see the package docstring
for the rule and the argument behind it."""

from __future__ import annotations

from collections.abc import Collection, Iterator

from pipelines.disclosure.cells import Cell, CellId, Group
from pipelines.disclosure.rules import (
    COMPLEMENTARY,
    DOMINANT_PARTNER,
    ESTIMABLE_BY_PARTNER,
    TOO_FEW_PARTNERS,
    DisclosureRule,
)


def contributors(cell: Cell) -> int:
    """Partners with a positive contribution: a zero hides nothing, so it does not count."""
    return sum(1 for share in cell.shares.values() if share > 0)


def primary_reason(cell: Cell, rule: DisclosureRule) -> str | None:
    """Why the cell is sensitive on its own, or None when it may be published."""
    if contributors(cell) < rule.min_partners:
        return TOO_FEW_PARTNERS
    largest, second, *_ = sorted(cell.shares.values(), reverse=True)
    total = cell.value
    if largest > rule.max_share_pct / 100 * total:
        return DOMINANT_PARTNER
    # The second largest knows its own share: the rest it cannot see beyond the largest's is all
    # that stands between the cell total and an estimate of the largest.
    if total - largest - second < rule.min_protection_pct / 100 * largest:
        return ESTIMABLE_BY_PARTNER
    return None


def primary_suppression(cells: dict[CellId, Cell], rule: DisclosureRule) -> dict[CellId, str]:
    """Every sensitive cell with its reason."""
    reasons = {cell_id: primary_reason(cell, rule) for cell_id, cell in cells.items()}
    return {cell_id: reason for cell_id, reason in reasons.items() if reason is not None}


class _Protection:
    """The state complementary suppression works on: the cells, who sums into whom, and what is
    suppressed so far (primary reasons kept, complementary ones added)."""

    def __init__(
        self,
        cells: dict[CellId, Cell],
        groups: tuple[Group, ...],
        suppressed: dict[CellId, str],
        rule: DisclosureRule,
        sensitive: Collection[CellId],
    ) -> None:
        self.cells = cells
        self.groups = groups
        self.suppressed = dict(suppressed)
        # Only sensitive cells need the p% margin; a complementary cell passed the rule, so an
        # attacker may bound it closely as long as it cannot compute it.
        self.sensitive = set(sensitive)
        self.rule = rule
        self.margin = rule.min_protection_pct / 100
        self.children_of = {group.parent: group.children for group in groups}
        self.group_of = {group.parent: group for group in groups}

    def slack(self, cell_id: CellId, attacker: str | None) -> float:
        """How far below its true value the attacker must allow a suppressed cell to be: all it
        does not know of a leaf, but for a cell with children only what its suppressed children
        can give (its published children bound it from below)."""
        unknown = self.cells[cell_id].others(attacker)
        children = self.children_of.get(cell_id)
        if not children:
            return unknown
        hidden = sum(self.slack(child, attacker) for child in children if child in self.suppressed)
        return min(unknown, hidden)

    def cover(self, group: Group, target: CellId, attacker: str | None) -> float:
        """How far above its true value the attacker must allow ``target``, from this group alone.

        A suppressed sibling can fall by its slack, which the target takes up; a suppressed parent
        can rise by at least the margin of what the attacker does not know of it (its own group
        above enforces that, or nothing bounds it when it is at the top), which covers the target.
        """
        total = 0.0
        for member in group.members:
            if member == target or member not in self.suppressed:
                continue
            if member == group.parent:
                total += self.cells[member].others(attacker)
            else:
                total += self.slack(member, attacker)
        return total

    def shortfalls(self, group: Group) -> Iterator[tuple[str | None, CellId, float]]:
        """(attacker, target, missing cover) for every suppressed member an attacker could pin
        down or bound within the margin; attackers are the public and each partner in the group."""
        partners = sorted(self.cells[group.parent].shares)
        for attacker in [None, *partners]:
            for target in group.members:
                if target not in self.suppressed:
                    continue
                unknown = self.cells[target].others(attacker)
                if unknown <= 0:
                    continue  # the attacker's own cell: nothing in it is hidden from them
                cover = self.cover(group, target, attacker)
                needed = self.margin * unknown if target in self.sensitive else 0.0
                if cover <= 0 or cover < needed:
                    yield attacker, target, needed - cover

    def pick(self, group: Group, target: CellId, attacker: str | None, missing: float) -> CellId | None:
        """The cell to suppress next: the smallest published child that hides at least the
        missing cover from the attacker, else the largest that hides anything, else the parent."""
        candidates = sorted(
            (
                child
                for child in group.children
                if child != target and child not in self.suppressed and self.cells[child].others(attacker) > 0
            ),
            key=lambda child: (self.cells[child].value, repr(child)),
        )
        for child in candidates:
            if self.cells[child].others(attacker) >= missing:
                return child
        if candidates:
            return candidates[-1]
        if target != group.parent and group.parent not in self.suppressed:
            return group.parent
        return None  # everything that could hide the target already does

    def exposed_sum(self, group: Group) -> CellId | None:
        """The cell to suppress when the sum of the suppressed children is itself sensitive.

        Under a published parent that sum is published in effect (the parent less the published
        children), so it must pass the primary rule like any cell: two suppressed terminals that
        one partner alone serves would otherwise give that partner's port total away. The smallest
        published child joins them, or the parent is suppressed when none is left.
        """
        if group.parent in self.suppressed:
            return None
        hidden = [child for child in group.children if child in self.suppressed]
        if not hidden:
            return None
        pooled = Cell(self.cells[group.parent].level, self.cells[group.parent].key)
        for child in hidden:
            for partner, share in self.cells[child].shares.items():
                pooled.shares[partner] = pooled.shares.get(partner, 0.0) + share
        if primary_reason(pooled, self.rule) is None:
            return None
        published = sorted(
            (child for child in group.children if child not in self.suppressed),
            key=lambda child: (self.cells[child].value, repr(child)),
        )
        return published[0] if published else group.parent

    def next_suppression(self, group: Group) -> CellId | None:
        """The next cell this group needs suppressed, or None when it holds."""
        exposed = self.exposed_sum(group)
        if exposed is not None:
            return exposed
        for attacker, target, missing in self.shortfalls(group):
            chosen = self.pick(group, target, attacker, missing)
            if chosen is not None:
                return chosen
        return None

    def protect_group(self, group: Group) -> bool:
        """Suppress in this group until it holds; whether anything changed."""
        changed = False
        while (chosen := self.next_suppression(group)) is not None:
            self.suppressed[chosen] = COMPLEMENTARY
            changed = True
            # A cell with children has no slack until one of them is hidden too: settle its own
            # group first, so this one sees the cover it gives rather than suppressing more here.
            below = self.group_of.get(chosen)
            if below is not None and below != group:
                self.protect_group(below)
        return changed


def complementary_suppression(
    cells: dict[CellId, Cell],
    groups: tuple[Group, ...],
    primary: dict[CellId, str],
    rule: DisclosureRule,
    sensitive: Collection[CellId] | None = None,
) -> dict[CellId, str]:
    """The primary suppressions plus the complementary ones, to a fixed point over all groups:
    a suppression made for one group can leave another short, so the groups are revisited until
    a whole pass changes nothing (it ends: each step suppresses one more cell). ``primary`` may
    hold complementary suppressions already made (the audit's); ``sensitive`` names the cells
    that need the p% margin (default: every cell of ``primary``)."""
    protection = _Protection(cells, groups, primary, rule, primary if sensitive is None else sensitive)
    changed = True
    while changed:
        changed = False
        for group in groups:
            changed = protection.protect_group(group) or changed
    return protection.suppressed
