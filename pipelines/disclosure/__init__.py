"""Disclosure control: what partner data may leave the restricted tier as public aggregates.

Partners (issue 23, FLOW data sharing) contribute values per cell (e.g. terminal and week); the
public gets aggregates at levels tied by sums (terminal x week -> port x week -> week, or
region x week, commodity group x week), each a tree of ``Hierarchy`` (child level -> parent level).

Who can see what: the public sees every published cell; each partner also knows its own rows and
(we assume, the stronger attacker) which partners contribute to which cell. Nobody outside the
restricted tier sees another partner's value or a suppressed cell.

The rule (``DisclosureRule``, thresholds from the partner contract):

Primary suppression, cell by cell, the first reason that applies:
  ``too_few_partners``   fewer than ``min_partners`` (default 3) partners with a positive value;
  ``dominant_partner``   the largest partner holds more than ``max_share_pct`` (default 60) %;
  ``estimable_by_partner`` the p% rule with a contributor as attacker: the second largest, who
      subtracts its own value from the total, would bound the largest within
      ``min_protection_pct`` (default 10) %, i.e. total - x1 - x2 < p% x1.
  With at least 3 partners nobody can compute another's value from one cell (at least two others
  share what remains after the attacker subtracts its own); the p% rule keeps the estimate loose.

Complementary suppression: every parent and its children make one equation (parent = sum of
children). Under a published parent, the sum of the suppressed children is published in effect,
so that pooled cell must pass the primary rule too (else the smallest published child joins it,
or the parent is suppressed): two terminals one partner serves alone would give its port total
away. For every attacker (the public and each partner of the group) and every suppressed
member the attacker does not wholly own, the other suppressed members of the group must be able
to move (the target's cover): for a sensitive (primary) cell by at least p% of what the attacker
does not know of it, for a complementary cell, which passed the rule, by anything at all. A sibling
can fall by its slack (what the attacker does not know of it, and for a cell with children only
what its suppressed children can give), a suppressed parent can rise (its own group above
guarantees that, or it is the top). Where cover is short, the smallest published child that
covers the shortfall is suppressed (else the largest that covers any, else the parent); a cell
with children suppressed that way has its own group settled first, so it brings the cover of its
hidden children; that is repeated over all groups to a fixed point. A cell the attacker wholly owns covers nothing against
that attacker, so a partner cannot undo a suppression by subtracting its own cells. Non-negative
values are what make a suppressed cell's interval an interval, so contributions must be >= 0.

Published cells carry ``contributors`` as a band (3-4, 5-9, 10+), never the exact count; a
suppressed cell carries its reason and nothing else. Levels must form a chain, finest to coarsest,
or chains that meet only at their root: the margins of one two-dimensional table (commodity groups
at a port -> ports -> week beside national commodity groups -> week). The group rule does not see
how an attacker crosses two margins, so such a table is then audited with linear programs for the
public and every partner, and cells are added until no value is pinned down
(:mod:`pipelines.disclosure.audit`, which states its limits). A level summing into two parents, or
a level below the root summed from two child levels, is refused; levels published from the same
contributions by separate calls are a known gap (publish a table's margins in one call).
``tests/test_disclosure.py`` plays the attacker with linear programs of its own.
"""

from pipelines.disclosure.cells import Cell, CellId, Group, build_cells, build_groups
from pipelines.disclosure.publish import contributors_band, protect, public_table
from pipelines.disclosure.rules import (
    COMPLEMENTARY,
    DOMINANT_PARTNER,
    ESTIMABLE_BY_PARTNER,
    REASONS,
    TOO_FEW_PARTNERS,
    DisclosureError,
    DisclosureRule,
    Hierarchy,
    Level,
)
from pipelines.disclosure.suppression import (
    complementary_suppression,
    contributors,
    primary_reason,
    primary_suppression,
)

__all__ = [
    "COMPLEMENTARY",
    "DOMINANT_PARTNER",
    "ESTIMABLE_BY_PARTNER",
    "REASONS",
    "TOO_FEW_PARTNERS",
    "Cell",
    "CellId",
    "DisclosureError",
    "DisclosureRule",
    "Group",
    "Hierarchy",
    "Level",
    "build_cells",
    "build_groups",
    "complementary_suppression",
    "contributors",
    "contributors_band",
    "primary_reason",
    "primary_suppression",
    "protect",
    "public_table",
]
