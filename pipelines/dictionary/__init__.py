"""``scdx docs``: the data dictionary as a static HTML site, one page per dataset and code list.

Everything on a page is derived from the contracts, the shared types and the code lists; the
publish state (last version, row counts, recent runs) is read from the current public database
when there is one. Secrets cannot appear: only the agency endpoint without parameters is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from pipelines.common.sql import quote_identifier
from pipelines.contracts import DUCKDB_TYPES, Contract, Registry, check_specs
from pipelines.store.layout import Layout


@dataclass
class PublishState:
    """What the public database says about one dataset."""

    rows: int | None = None
    version: int | None = None
    published_at: str | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)


def _publish_states(layout: Layout, registry: Registry) -> dict[str, PublishState]:
    from pipelines.store.tiers import open_public

    states = {name: PublishState() for name in registry.contracts}
    if not layout.public_db.exists():
        return states
    with open_public(layout) as con:
        tables = {
            t
            for (t,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE schema_name = 'curated'"
            ).fetchall()
        }
        latest = con.execute(
            "SELECT version, published_at FROM meta.publishes ORDER BY version DESC LIMIT 1"
        ).fetchone()
        for name, state in states.items():
            if name in tables:
                (count,) = con.execute(
                    f"SELECT count(*) FROM curated.{quote_identifier(name)}"
                ).fetchone() or (0,)
                state.rows = int(count)
            if latest:
                state.version, state.published_at = int(latest[0]), str(latest[1])
            columns = [
                "run_id",
                "status",
                "started_at",
                "rows_landed",
                "rows_published",
                "rows_quarantined",
                "validation",
                "error",
            ]
            for row in con.execute(
                f"SELECT {', '.join(columns)} FROM meta.runs WHERE dataset = ? ORDER BY started_at DESC LIMIT 10",
                [name],
            ).fetchall():
                state.runs.append(dict(zip(columns, row, strict=True)))
    return states


def _fields(contract: Contract, registry: Registry) -> list[dict[str, Any]]:
    out = []
    for f in contract.fields:
        shared = registry.types.types[f.type]
        ref = registry.codelist_of(contract, f.name)
        out.append(
            {
                "name": f.name,
                "type": f.type,
                "duckdb": DUCKDB_TYPES[shared.arrow],
                "unit": registry.unit_of(contract, f.name) or "",
                "source_unit": f.source_unit or "",
                "nullable": f.nullable,
                "source": f.source or "(derived)",
                "codelist": f"{ref.list}.{ref.column}" if ref else "",
                "constraint": shared.pattern or (", ".join(shared.allowed) if shared.allowed else ""),
                "description": f.description,
                "key": f.name in contract.primary_key,
            }
        )
    return out


def write_catalog(registry: Registry, layout: Layout, out_dir: Path) -> Path:
    """Write the catalog under ``out_dir``; returns the index page."""
    env = Environment(
        loader=PackageLoader("pipelines.dictionary", "templates"), autoescape=select_autoescape(["html"])
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    states = _publish_states(layout, registry)
    contracts = sorted(registry.contracts.values(), key=lambda c: c.dataset)
    for contract in contracts:
        page = env.get_template("dataset.html").render(
            contract=contract,
            fields=_fields(contract, registry),
            checks=check_specs(contract, registry),
            state=states[contract.dataset],
            endpoint=contract.source.base_url + contract.source.path,
        )
        (out_dir / f"{contract.dataset}.html").write_text(page, encoding="utf-8")
    lists = []
    for name in registry.codelists.names:
        spec = registry.codelists.spec(name)
        rows = registry.codelists.rows(name)
        lists.append({"name": name, "description": spec.description, "rows": len(rows)})
        page = env.get_template("codelist.html").render(name=name, spec=spec, rows=rows)
        (out_dir / f"ref_{name}.html").write_text(page, encoding="utf-8")
    index = out_dir / "index.html"
    index.write_text(
        env.get_template("index.html").render(
            contracts=contracts, states=states, lists=lists, types=registry.types
        ),
        encoding="utf-8",
    )
    return index
