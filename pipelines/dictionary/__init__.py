"""``scdx docs``: the catalog as a static HTML site that opens offline.

An index with the lineage graph (datasets -> marts), a page per dataset (contract, publish state,
date coverage, the last data publish, sample rows, the latest GX Data Docs page, whether its
recordings are real or constructed), a page per mart (method, inputs, columns, checks), the
``meta.*`` tables, the code lists and the recordings' provenance. Definitions come from the
contracts, the shared types, the code lists and the marts' SQL headers; the state is read from
the current public release when there is one. Secrets cannot appear: only the agency endpoint
without parameters is shown. Links are relative, so the site can be opened from disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape

from pipelines.contracts import DUCKDB_TYPES, Contract, Registry, check_specs, provenance_notes
from pipelines.dictionary.graph import lineage_svg
from pipelines.dictionary.marts import MartState, mart_state
from pipelines.dictionary.state import DatasetState, data_docs_page, dataset_state, relative_link
from pipelines.marts import load_marts
from pipelines.store.layout import Layout
from pipelines.store.tiers import release_tables


def _views(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {name.partition(".")[2] for name in release_tables(con, [schema])}


def _meta_tables(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every meta.* table of the release with its comment and its columns' comments."""
    tables = con.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'meta' ORDER BY table_name"
    ).fetchall()
    return [
        {
            "name": name,
            "comment": comment or "",
            "columns": con.execute(
                "SELECT column_name, data_type, comment FROM duckdb_columns() "
                "WHERE schema_name = 'meta' AND table_name = ? ORDER BY column_index",
                [name],
            ).fetchall(),
        }
        for name, comment in tables
    ]


def _release_state(
    layout: Layout, registry: Registry, recordings_dir: Path | None
) -> tuple[dict[str, DatasetState], list[MartState], list[dict[str, Any]]]:
    """Each dataset's and mart's state, and the meta.* tables, in the current public release."""
    from pipelines.store.tiers import is_published, open_public

    marts = load_marts()
    if not is_published(layout):
        return (
            {name: DatasetState() for name in registry.contracts},
            [mart_state(None, m, set()) for m in marts],
            [],
        )
    with open_public(layout) as con:
        curated, built = _views(con, "curated"), _views(con, "marts")
        datasets = {
            name: dataset_state(con, contract, curated, recordings_dir)
            for name, contract in registry.contracts.items()
        }
        return datasets, [mart_state(con, m, built) for m in marts], _meta_tables(con)


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


def write_catalog(
    registry: Registry, layout: Layout, out_dir: Path, recordings_dir: Path | None = None
) -> Path:
    """Write the catalog under ``out_dir``; returns the index page. ``recordings_dir``: the bundled
    recordings, to tell datasets replayed from them and carry their provenance notes."""
    env = Environment(
        loader=PackageLoader("pipelines.dictionary", "templates"), autoescape=select_autoescape(["html"])
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    states, marts, meta = _release_state(layout, registry, recordings_dir)
    contracts = sorted(registry.contracts.values(), key=lambda c: c.dataset)
    for contract in contracts:
        _write(
            out_dir / f"{contract.dataset}.html",
            env,
            "dataset.html",
            **_dataset_page(contract, registry, states[contract.dataset], layout, out_dir),
        )
    for state in marts:
        _write(
            out_dir / f"mart_{state.mart.name}.html", env, "mart.html", state=state, pages=registry.contracts
        )
    _write(out_dir / "meta.html", env, "meta.html", tables=meta)
    _write(
        out_dir / "provenance.html",
        env,
        "provenance.html",
        notes=provenance_notes(recordings_dir) if recordings_dir else [],
    )
    lists = _write_codelists(registry, env, out_dir)
    constructed = {d for d, s in states.items() if s.provenance and s.provenance.kind == "constructed"}
    index = out_dir / "index.html"
    _write(
        index,
        env,
        "index.html",
        contracts=contracts,
        states=states,
        marts=marts,
        lists=lists,
        types=registry.types,
        graph=lineage_svg(sorted(registry.contracts), [m.mart for m in marts], constructed),
    )
    return index


def _write(path: Path, env: Environment, template: str, **values: Any) -> None:
    path.write_text(env.get_template(template).render(**values), encoding="utf-8")


def _dataset_page(
    contract: Contract, registry: Registry, state: DatasetState, layout: Layout, out_dir: Path
) -> dict[str, Any]:
    return {
        "contract": contract,
        "fields": _fields(contract, registry),
        "checks": check_specs(contract, registry),
        "state": state,
        "endpoint": contract.source.base_url + contract.source.path,
        "data_docs": data_docs_page(layout, contract.dataset, out_dir),
        "data_docs_index": relative_link(layout.data_docs_dir / "index.html", out_dir)
        if (layout.data_docs_dir / "index.html").is_file()
        else None,
        "marts": [m.name for m in load_marts() if contract.dataset in m.datasets],
    }


def _write_codelists(registry: Registry, env: Environment, out_dir: Path) -> list[dict[str, Any]]:
    lists = []
    for name in registry.codelists.names:
        spec = registry.codelists.spec(name)
        rows = registry.codelists.rows(name)
        lists.append({"name": name, "description": spec.description, "rows": len(rows)})
        _write(out_dir / f"ref_{name}.html", env, "codelist.html", name=name, spec=spec, rows=rows)
    return lists
