"""The lineage graph of the catalog's index: datasets -> marts -> marts, as inline SVG.

Laid out here, with no graph library and nothing loaded from the network: one column per depth
(datasets, then marts reading only datasets, then marts reading those ...), nodes stacked in
name order, an edge a curve from an input's right edge to its reader's left edge. Every node links
to its page; a dataset whose recordings are constructed is drawn in the "constructed" colour. A
curated table a mart reads that has no contract (the partner aggregates disclosure control
publishes) is drawn unlinked: the catalog has no page for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from pipelines.marts import Mart

NODE_WIDTH = 250
NODE_HEIGHT = 26
ROW_GAP = 10
COLUMN_GAP = 90
MARGIN = 10
COLOURS = {"dataset": "#e8f0fb", "constructed": "#fff1c2", "mart": "#e6f4ea", "uncatalogued": "#f2f2f2"}


@dataclass(frozen=True)
class Node:
    key: str  # curated.<dataset> or marts.<mart>
    label: str
    href: str  # empty for a table without a page
    kind: str  # dataset, constructed, uncatalogued or mart
    x: int
    y: int


def _depths(marts: list[Mart]) -> dict[str, int]:
    """Each mart's column: 1 + the deepest of its inputs (datasets are column 0)."""
    by_name = {m.name: m for m in marts}
    depths: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in depths:
            inputs = [depth(m) for m in by_name[name].marts if m in by_name]
            depths[name] = 1 + max(inputs, default=0)
        return depths[name]

    for mart in marts:
        depth(mart.name)
    return depths


def layout(datasets: list[str], marts: list[Mart], constructed: set[str]) -> list[Node]:
    """Every node with its position: datasets in column 0, each mart in the column of its depth."""
    columns: dict[int, list[tuple[str, str, str, str]]] = {0: []}
    read = {d for m in marts for d in m.datasets}
    for name in sorted(set(datasets) | read):
        if name not in datasets:
            columns[0].append((f"curated.{name}", name, "", "uncatalogued"))
            continue
        kind = "constructed" if name in constructed else "dataset"
        columns[0].append((f"curated.{name}", name, f"{name}.html", kind))
    for name, depth in sorted(_depths(marts).items()):
        columns.setdefault(depth, []).append((f"marts.{name}", name, f"mart_{name}.html", "mart"))
    nodes = []
    for column, entries in sorted(columns.items()):
        for row, (key, label, href, kind) in enumerate(entries):
            x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
            y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
            nodes.append(Node(key, label, href, kind, x, y))
    return nodes


def edges(marts: list[Mart]) -> list[tuple[str, str]]:
    """(input, mart) for every table a mart reads."""
    return sorted(
        (r if r.startswith("marts.") else f"curated.{r}", f"marts.{m.name}") for m in marts for r in m.reads
    )


def lineage_svg(datasets: list[str], marts: list[Mart], constructed: set[str]) -> str:
    """The graph as an ``<svg>`` element to inline in a page."""
    nodes = layout(datasets, marts, constructed)
    at = {n.key: n for n in nodes}
    width = max(n.x for n in nodes) + NODE_WIDTH + MARGIN
    height = max(n.y for n in nodes) + NODE_HEIGHT + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="lineage" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage: datasets to marts">'
    ]
    for source, target in edges(marts):
        if source not in at or target not in at:
            continue
        a, b = at[source], at[target]
        x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT // 2
        x2, y2 = b.x, b.y + NODE_HEIGHT // 2
        middle = (x1 + x2) // 2
        parts.append(
            f'<path class="edge" data-from="{escape(source)}" data-to="{escape(target)}" '
            f'd="M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}" fill="none" stroke="#8a94a6"/>'
        )
    for n in nodes:
        opening, closing = (f'<a href="{escape(n.href)}"', "</a>") if n.href else ("<g", "</g>")
        parts.append(
            f'{opening} class="node {n.kind}" data-table="{escape(n.key)}">'
            f'<rect x="{n.x}" y="{n.y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="4" '
            f'fill="{COLOURS[n.kind]}" stroke="#5b6577"/>'
            f'<text x="{n.x + 8}" y="{n.y + 17}" font-size="13" font-family="system-ui, sans-serif">'
            f"{escape(n.label)}</text>{closing}"
        )
    parts.append("</svg>")
    return "".join(parts)
