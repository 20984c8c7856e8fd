"""Per-partner extracts: each partner's own rows and the public aggregates, as its own DuckDB file.

``<data dir>/partners/<partner_id>/scdx_<partner_id>.duckdb`` (directory 0700, file 0600) holds

* ``curated.<dataset>`` for each dataset the partner may submit: its rows of the restricted
  tier's table, selected by ``partner_id`` (the authenticated submitter of each row), and no other;
* ``curated.flow_*``: every FLOW table of the current public release, whole (the
  disclosure-controlled aggregates anyone may see; none while none is published);
* ``meta.extract``: which partner, and which restricted and public releases it was cut from;

each table and column with its comment. The file is written aside in the same directory and
renamed over the old one, so a reader opens the previous extract or the new one, never half of
one. It is stored uncompressed: what it holds is then in its bytes as written, which is how the
tests prove that no other partner's ids or values are in it (a compressed file could hide them).

Call :func:`write_partner_extracts` after a restricted publish and the public aggregates that
follow it, so every partner's file shows the same releases.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.common.settings import Settings, duckdb_config
from pipelines.common.sql import quote_literal, quote_name
from pipelines.contracts import Partner, PartnerRegistry, load_partners
from pipelines.store import StoreError
from pipelines.store.layout import Layout, fsync_path

log = logging.getLogger("scdx.extracts")

PARTNER_FIELD = "partner_id"
PUBLIC_PREFIX = "flow_"
EXTRACT_COLUMNS = (
    ("partner_id", "VARCHAR", "The partner this extract is for: every curated row of its own tables is its."),
    ("made_at", "TIMESTAMPTZ", "When the extract was written."),
    (
        "restricted_release",
        "VARCHAR",
        "Restricted-tier release its own rows were read from (null: none yet).",
    ),
    ("public_release", "VARCHAR", "Public release the aggregates were copied from (null: none yet)."),
)


@dataclass(frozen=True)
class Sources:
    """The release files an extract is cut from (resolved once, so a publish meanwhile cannot mix them)."""

    restricted: Path | None
    public: Path | None


def extract_path(settings: Settings, partner_id: str) -> Path:
    """Where a partner's extract lives under the data directory."""
    return settings.data_dir / "partners" / partner_id / f"scdx_{partner_id}.duckdb"


def _current_release(link: Path) -> Path | None:
    """The release file a tier's path points at now, or None when nothing is published."""
    return Path(os.path.realpath(link)) if link.exists() else None


def _private_dir(path: Path) -> Path:
    """``path`` and its parent made owner-only (0700) whatever the umask."""
    for folder in (path.parent, path):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)
    return path


def _views(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, str]:
    """The curated views of an attached release, with their comments."""
    rows = con.execute(
        "SELECT view_name, coalesce(comment, '') FROM duckdb_views() "
        "WHERE database_name = ? AND schema_name = 'curated'",
        [database],
    ).fetchall()
    return {str(name): str(comment) for name, comment in rows}


def _column_comments(con: duckdb.DuckDBPyConnection, database: str, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, coalesce(comment, '') FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'curated' AND table_name = ? ORDER BY column_index",
        [database, table],
    ).fetchall()
    return [(str(name), str(comment)) for name, comment in rows]


def _copy_table(
    con: duckdb.DuckDBPyConnection, database: str, table: str, comment: str, partner_id: str | None
) -> int:
    """Copy ``database.curated.table`` into the extract (only ``partner_id``'s rows when given),
    with the table's and every column's comment; the rows copied."""
    columns = _column_comments(con, database, table)
    names = [name for name, _ in columns]
    source, target = f"{database}.curated.{quote_name(table)}", f"curated.{quote_name(table)}"
    if partner_id is None and PARTNER_FIELD in names:
        # A public table naming partners would be a disclosure: never copy one.
        raise StoreError(f"public table curated.{table} has a {PARTNER_FIELD} column; not copied to extracts")
    where = f" WHERE {PARTNER_FIELD} = {quote_literal(partner_id)}" if partner_id is not None else ""
    con.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}{where} ORDER BY ALL")
    con.execute(f"COMMENT ON TABLE {target} IS {quote_literal(comment)}")
    for name, text in columns:
        con.execute(f"COMMENT ON COLUMN {target}.{quote_name(name)} IS {quote_literal(text)}")
    (rows,) = con.execute(f"SELECT count(*) FROM {target}").fetchone() or (0,)
    return int(rows)


def _own_tables(con: duckdb.DuckDBPyConnection, partner: Partner) -> dict[str, int]:
    """The partner's rows of each restricted table it may submit to."""
    copied = {}
    for table, comment in sorted(_views(con, "restricted").items()):
        if table not in partner.datasets:
            continue
        if PARTNER_FIELD not in dict(_column_comments(con, "restricted", table)):
            raise StoreError(
                f"restricted table curated.{table} has no {PARTNER_FIELD}: cannot select one partner's rows"
            )
        own = f"{comment} Only the rows of partner {partner.id} (its extract)."
        copied[table] = _copy_table(con, "restricted", table, own.strip(), partner.id)
        (others,) = con.execute(
            f"SELECT count(*) FROM curated.{quote_name(table)} WHERE {PARTNER_FIELD} IS DISTINCT FROM ?",
            [partner.id],
        ).fetchone() or (0,)
        if others:
            raise StoreError(f"extract of {partner.id}: curated.{table} would hold other partners' rows")
    return copied


def _public_tables(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Every FLOW table of the public release, whole."""
    views = _views(con, "public")
    return {
        table: _copy_table(con, "public", table, comment, None)
        for table, comment in sorted(views.items())
        if table.startswith(PUBLIC_PREFIX)
    }


def _write_meta(con: duckdb.DuckDBPyConnection, partner: Partner, sources: Sources) -> None:
    con.execute("CREATE SCHEMA meta")
    con.execute(f"CREATE TABLE meta.extract ({', '.join(f'{n} {t}' for n, t, _ in EXTRACT_COLUMNS)})")
    con.execute(
        "INSERT INTO meta.extract VALUES (?, ?, ?, ?)",
        [
            partner.id,
            datetime.now(UTC),
            sources.restricted.name if sources.restricted else None,
            sources.public.name if sources.public else None,
        ],
    )
    con.execute(
        "COMMENT ON TABLE meta.extract IS 'Which partner this extract is for, and what it was cut from.'"
    )
    for name, _, text in EXTRACT_COLUMNS:
        con.execute(f"COMMENT ON COLUMN meta.extract.{name} IS {quote_literal(text)}")


def _write(path: Path, partner: Partner, sources: Sources) -> dict[str, int]:
    with closing(duckdb.connect(str(path), config=duckdb_config())) as con:
        # Uncompressed, so the file's bytes are what it holds (see the module's docstring).
        con.execute("SET force_compression = 'uncompressed'")
        con.execute("CREATE SCHEMA curated")
        copied: dict[str, int] = {}
        if sources.restricted is not None:
            con.execute(f"ATTACH {quote_literal(str(sources.restricted))} AS restricted (READ_ONLY)")
            copied.update(_own_tables(con, partner))
            con.execute("DETACH restricted")
        if sources.public is not None:
            con.execute(f"ATTACH {quote_literal(str(sources.public))} AS public (READ_ONLY)")
            copied.update(_public_tables(con))
            con.execute("DETACH public")
        _write_meta(con, partner, sources)
        con.execute("CHECKPOINT")
    return copied


def write_partner_extract(
    settings: Settings, partner_id: str, partners: PartnerRegistry | None = None
) -> Path:
    """Write ``partner_id``'s extract from the current releases; its path. An unknown partner is
    refused (ContractError naming it)."""
    from pipelines.store.kinds import store_kind

    if store_kind() != "local":
        # Extracts are cut from the release files of the local store (ATTACH); see docs/scaling.md.
        raise StoreError(
            f"extract of {partner_id}: partner extracts are cut from the local store's release files; "
            f"SCDX_STORE_KIND={store_kind()} has none. Run `scdx partner extract` where the local store is kept"
        )
    registry = partners if partners is not None else load_partners(settings.schemas_dir)
    partner = registry.get(partner_id)
    layout = Layout(settings.data_dir)
    sources = Sources(
        _current_release(layout.store("restricted").link), _current_release(layout.store("public").link)
    )
    target = extract_path(settings, partner.id)
    folder = _private_dir(target.parent)
    aside = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        copied = _write(aside, partner, sources)
        aside.chmod(0o600)
        fsync_path(aside)
        os.replace(aside, target)
        fsync_path(folder)
    finally:
        aside.unlink(missing_ok=True)
        aside.with_name(aside.name + ".wal").unlink(missing_ok=True)
    # Partner ids stay out of the logs: the count of tables and rows says enough.
    log.info("wrote a partner extract: %d tables, %d rows", len(copied), sum(copied.values()))
    return target


def write_partner_extracts(settings: Settings, partners: PartnerRegistry | None = None) -> list[Path]:
    """Every registered partner's extract (after a restricted publish and its public aggregates)."""
    registry = partners if partners is not None else load_partners(settings.schemas_dir)
    return [write_partner_extract(settings, p.id, registry) for p in registry.partners]
