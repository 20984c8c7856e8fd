"""What a release changed, in words an operator reads in a task log: which tables, how many rows
each holds now and how many more or fewer than in the release before."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _rows(name: str, before: Mapping[str, int], after: Mapping[str, int]) -> str:
    if name not in after:
        return f"{name} dropped ({before.get(name, 0):,} rows)"
    now = after[name]
    if name not in before:
        return f"{name} {now:,} rows (new)"
    delta = now - before[name]
    return f"{name} {now:,} rows ({delta:+,})" if delta else f"{name} {now:,} rows (same count, new values)"


def describe_changes(
    tier: str,
    number: int,
    changed: Sequence[str],
    before: Mapping[str, int],
    after: Mapping[str, int],
) -> str:
    """One line: "public release 13: published curated.census_trade_imports 2,405 rows (+120);
    marts rebuilt: import_concentration 540 rows (+12); reference lists refreshed: ref_states".

    ``before`` and ``after``: the rows of every table in the release before and in this one.
    """
    published = [n for n in changed if n.startswith("curated.") and not n.startswith("curated.ref_")]
    marts = [n for n in changed if n.startswith("marts.")]
    references = [n for n in changed if n.startswith("curated.ref_")]
    others = [n for n in changed if n not in {*published, *marts, *references}]
    parts = []
    if published:
        parts.append("published " + ", ".join(_rows(n, before, after) for n in published))
    if marts:
        rebuilt = (_rows(n, before, after).removeprefix("marts.") for n in marts)
        parts.append("marts rebuilt: " + ", ".join(rebuilt))
    if references:
        parts.append(
            "reference lists refreshed: " + ", ".join(n.removeprefix("curated.") for n in references)
        )
    if others:
        parts.append("changed " + ", ".join(_rows(n, before, after) for n in others))
    return f"{tier} release {number}: " + ("; ".join(parts) or "no table changed")
