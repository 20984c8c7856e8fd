"""The audit of a table published along two or more margins (chains of levels sharing their root,
e.g. commodity group at a port -> port -> week beside national commodity group -> week).

The group-by-group rule sees one parent and its children at a time; an attacker holding both margins
combines their equations (a port total and a commodity total cross in the port's commodity cells),
which no single group shows. So after primary and complementary suppression of every margin, each
attacker (the public, and each partner with its own rows and who contributes where) is played with
linear programs over exactly what it sees: unknowns are every other partner's contribution to every
interior cell (the combination of all the levels' dimensions), >= 0; equations are every published
cell less the attacker's own rows there. Every suppressed cell the attacker does not wholly own, and
every other partner's value in every cell, is maximised (and minimised where that decides it) with
HiGHS. An interval that is a point, or, for a primary suppression or a partner's value, whose upper
end lies less than the p% margin above the truth, is an exposure: the smallest published cell (the
root last) that shares an interior cell with the exposed value is suppressed as complementary, the
group-by-group rule runs again so the new cell is covered, and the block is audited again, until it
passes (it ends: each round suppresses one more cell, and with nothing published nothing is bounded
from above).

Blocks: every cell lies under exactly one root cell and every equation stays under it, so each root
cell (a week, per horizon) is audited on its own. Every feasible point a program returns is kept, and
a value some kept point already takes far enough above the truth needs no program of its own, which
saves most of them.

Limits: levels must be chains that meet only at the root (a level below the root summing into two
parents is refused); coalitions of partners pooling their rows are not in the attacker model; the
audit's cost grows with the interior cells and partners of a block (programs of a few dozen unknowns
each here), so it suits tables of tens of cells per root cell, not thousands; a suppression it makes
may be more than the least needed (it takes the first exposure and the smallest touching cell).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from scipy.linalg import null_space
from scipy.optimize import linprog

from pipelines.disclosure.cells import PARTNER, VALUE, Cell, CellId, Group
from pipelines.disclosure.rules import COMPLEMENTARY, DisclosureError, DisclosureRule, Level
from pipelines.disclosure.suppression import complementary_suppression

log = logging.getLogger("scdx.disclosure")

Interior = tuple[Hashable, ...]
Variable = tuple[Interior, str]
# Values are whole units or fractions of them; a bound closer than this is a point.
TOLERANCE = 1e-6


@dataclass
class Block:
    """One root cell and everything under it: the interior cells' shares and each cell's members."""

    interiors: dict[Interior, dict[str, float]] = field(default_factory=dict)
    members: dict[CellId, list[Interior]] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A value an attacker must not pin down: its unknowns, its truth, whether the p% margin holds."""

    what: CellId
    variables: tuple[int, ...]
    true: float
    sensitive: bool
    interiors: frozenset[Interior]


@dataclass
class AuditCount:
    """What the audit solved, for the log: blocks audited, linear programs, seconds, cells added."""

    blocks: int = 0
    programs: int = 0
    seconds: float = 0.0
    suppressed: int = 0


def blocks(
    contributions: pa.Table, levels: tuple[Level, ...], root: Level, cells: dict[CellId, Cell]
) -> dict[Interior, Block]:
    """Every root cell's block: interior cells (all dimensions) with each partner's share, and for
    every cell under the root the interior cells it sums."""
    dimensions = list(dict.fromkeys(d for level in levels for d in level.dimensions))
    summed = contributions.group_by([*dimensions, PARTNER]).aggregate([(VALUE, "sum")]).to_pylist()
    found: dict[Interior, Block] = {}
    for row in summed:
        interior = tuple(row[d] for d in dimensions)
        block = found.setdefault(tuple(row[d] for d in root.dimensions), Block())
        block.interiors.setdefault(interior, {})[str(row[PARTNER])] = float(row[f"{VALUE}_sum"])
    for key, block in found.items():
        for interior in block.interiors:
            named = dict(zip(dimensions, interior, strict=True))
            for level in levels:
                cell_id = (level.name, tuple(named[d] for d in level.dimensions))
                block.members.setdefault(cell_id, []).append(interior)
        if set(block.members) - set(cells):
            raise DisclosureError(f"the audit's block {key} has cells the hierarchies do not")
    return found


class _Attack:
    """One attacker's linear system on one block and the feasible points found so far."""

    def __init__(
        self, block: Block, suppressed: dict[CellId, str], cells: dict[CellId, Cell], attacker: str | None
    ) -> None:
        self.attacker = attacker
        variables: list[Variable] = [
            (interior, partner)
            for interior, shares in block.interiors.items()
            for partner in sorted(shares)
            if partner != attacker
        ]
        self.index = {variable: position for position, variable in enumerate(variables)}
        rows, totals = [], []
        for cell_id, interiors in block.members.items():
            if cell_id in suppressed:
                continue
            row = np.zeros(len(variables))
            row[self._variables(block, interiors, None)] = 1.0
            rows.append(row)
            totals.append(cells[cell_id].others(attacker))
        self.a_eq = np.array(rows) if rows else None
        self.b_eq = np.array(totals) if totals else None
        # The truth is feasible: the first kept point.
        self.points = [np.array([block.interiors[interior][partner] for interior, partner in variables])]
        self.size = len(variables)
        # Directions that keep every published equation: moving the truth along one is what an
        # attacker cannot rule out, up to where some unknown reaches zero.
        self.free = null_space(self.a_eq) if self.a_eq is not None else np.eye(self.size)

    def _variables(self, block: Block, interiors: list[Interior], partner: str | None) -> list[int]:
        return [
            self.index[(interior, owner)]
            for interior in interiors
            for owner in sorted(block.interiors[interior])
            if owner != self.attacker and (partner is None or owner == partner)
        ]

    def targets(self, block: Block, suppressed: dict[CellId, str], primary: set[CellId]) -> list[Target]:
        """Every suppressed cell the attacker does not wholly own and every other partner's value in
        every cell, each set of unknowns once (the strictest requirement kept)."""
        found: dict[tuple[int, ...], Target] = {}
        for cell_id, interiors in block.members.items():
            candidates: list[tuple[list[int], bool]] = []
            if cell_id in suppressed:
                candidates.append((self._variables(block, interiors, None), cell_id in primary))
            partners = {p for interior in interiors for p in block.interiors[interior]} - {self.attacker}
            candidates += [(self._variables(block, interiors, p), True) for p in sorted(partners)]
            for chosen, sensitive in candidates:
                key = tuple(chosen)
                true = float(sum(self.points[0][list(key)])) if key else 0.0
                if true <= 0 or (key in found and (found[key].sensitive or not sensitive)):
                    continue
                found[key] = Target(cell_id, key, true, sensitive, frozenset(interiors))
        return list(found.values())

    def exposed(self, target: Target, rule: DisclosureRule, count: AuditCount) -> bool:
        """Whether the attacker bounds the target to a point, or (sensitive) within p% above it."""
        objective = np.zeros(self.size)
        objective[list(target.variables)] = 1.0
        needed = target.true * rule.min_protection_pct / 100 if target.sensitive else 0.0
        if self._moves(objective) > max(needed, TOLERANCE):
            return False  # the truth moved along a free direction already shows that much room
        reached = max(float(objective @ point) for point in self.points)
        if reached - target.true > max(needed, TOLERANCE):
            return False  # a feasible point already shows the value can be that much larger
        high = self._solve(objective, count, maximise=True)
        if high is None:
            return False  # nothing bounds it from above
        if high - target.true < needed - TOLERANCE:
            return True
        if high - target.true > TOLERANCE:
            return False
        low = self._solve(objective, count, maximise=False)
        return low is not None and high - low <= TOLERANCE

    def _moves(self, objective: np.ndarray) -> float:
        """How far the target rises along the free direction closest to its own (the projection
        of its objective on the directions that keep every equation), without an unknown going
        negative: a lower bound of its maximum less its truth, found without a program."""
        direction = self.free @ (self.free.T @ objective)
        rate = float(objective @ direction)
        if rate <= TOLERANCE:
            return 0.0
        falling = direction < -TOLERANCE
        if not falling.any():
            return float("inf")
        truth = self.points[0]
        return rate * float(np.min(truth[falling] / -direction[falling]))

    def _solve(self, objective: np.ndarray, count: AuditCount, maximise: bool) -> float | None:
        count.programs += 1
        result = linprog(
            -objective if maximise else objective,
            A_eq=self.a_eq,
            b_eq=self.b_eq,
            bounds=(0, None),
            method="highs",
        )
        if result.status == 3:
            return None
        if result.status != 0:
            raise DisclosureError(f"the disclosure audit's linear program failed: {result.message}")
        self.points.append(result.x)
        return float(objective @ result.x)


def first_exposure(
    block: Block,
    cells: dict[CellId, Cell],
    suppressed: dict[CellId, str],
    primary: set[CellId],
    rule: DisclosureRule,
    count: AuditCount,
) -> Target | None:
    """The first value some attacker (the public, then each partner of the block) pins down."""
    partners = sorted({p for shares in block.interiors.values() for p in shares})
    for attacker in [None, *partners]:
        attack = _Attack(block, suppressed, cells, attacker)
        for target in attack.targets(block, suppressed, primary):
            if attack.exposed(target, rule, count):
                return target
    return None


def widen(
    block: Block, cells: dict[CellId, Cell], suppressed: dict[CellId, str], exposed: Target, root: Level
) -> CellId | None:
    """The published cell to suppress for an exposure: the smallest that shares an interior cell
    with it (its row or column in the table), the root last."""
    touching = [
        cell_id
        for cell_id, interiors in block.members.items()
        if cell_id not in suppressed and exposed.interiors & set(interiors)
    ]
    touching.sort(key=lambda cell_id: (cell_id[0] == root.name, cells[cell_id].value, repr(cell_id)))
    return touching[0] if touching else None


def audit_margins(
    contributions: pa.Table,
    levels: tuple[Level, ...],
    root: Level,
    cells: dict[CellId, Cell],
    groups: tuple[Group, ...],
    primary: dict[CellId, str],
    suppressed: dict[CellId, str],
    rule: DisclosureRule,
) -> dict[CellId, str]:
    """The suppressions after the audit: ``suppressed`` (primary and group-by-group complementary)
    plus what the linear-programming attackers need hidden, block by block (see the module)."""
    started, count = time.perf_counter(), AuditCount()
    found = blocks(contributions, levels, root, cells)
    pending = sorted(found, key=repr)
    while pending:
        count.blocks += len(pending)
        forced = dict(suppressed)
        exposed_blocks = []
        for key in pending:
            exposed = first_exposure(found[key], cells, suppressed, set(primary), rule, count)
            if exposed is None:
                continue
            chosen = widen(found[key], cells, suppressed, exposed, root)
            if chosen is None:
                # Cannot happen: a value no published cell touches is unbounded above. Refuse
                # rather than publish an exposed value.
                raise DisclosureError(f"the disclosure audit cannot hide {exposed.what}")
            forced[chosen] = COMPLEMENTARY
            exposed_blocks.append(key)
        count.suppressed += len(exposed_blocks)
        # Every group lies under one root cell, so the new cover stays in the exposed blocks.
        suppressed = complementary_suppression(cells, groups, forced, rule, sensitive=primary)
        pending = exposed_blocks
    count.seconds = time.perf_counter() - started
    log.info(
        "disclosure audit: %d block audits, %d linear programs, %d cells suppressed, %.1f s",
        count.blocks,
        count.programs,
        count.suppressed,
        count.seconds,
    )
    return suppressed
