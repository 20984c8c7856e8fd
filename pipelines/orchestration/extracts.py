"""Per-partner extracts: each partner's own rows and the public aggregates, as its own DuckDB file.

``<data dir>/partners/<partner_id>/scdx_<partner_id>.duckdb`` (directory 0700, file 0600) holds

* ``curated.<dataset>`` for each dataset the partner may submit: its rows of the restricted
  tier's table, selected by ``partner_id`` (the authenticated submitter of each row), and no other;
* ``curated.flow_*``: every FLOW table of the current public release, whole (the
  disclosure-controlled aggregates anyone may see; none while none is published);
* ``meta.extract``: which partner, and which restricted and public releases it was cut from (read
  through each tier's release store, local or Iceberg, pinned for the whole extract);

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
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.common.settings import Settings, duckdb_config
from pipelines.common.sql import quote_literal, quote_name
from pipelines.contracts import Partner, PartnerRegistry, load_partners
from pipelines.store import StoreError
from pipelines.store.kinds import store_kind
from pipelines.store.layout import Layout, fsync_path
from pipelines.store.tiers import open_store, release_tables

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
    # Both name a release file of the local store, or "release N" of the Iceberg store.
)


@dataclass(frozen=True)
class Source:
    """A tier's release an extract is cut from: a read-only connection to it and its name."""

    con: duckdb.DuckDBPyConnection
    release: str  # the local store's release file name, or "release N" of the Iceberg store


def extract_path(settings: Settings, partner_id: str) -> Path:
    """Where a partner's extract lives under the data directory."""
    return settings.data_dir / "partners" / partner_id / f"scdx_{partner_id}.duckdb"


@contextmanager
def _opened(layout: Layout, tier: str) -> Iterator[Source | None]:
    """The tier's current release, pinned for the whole extract (a publish meanwhile cannot mix
    two releases into it); None when nothing is published in the tier."""
    if store_kind() == "local":
        link = layout.store(tier).link
        if not link.exists():
            yield None
            return
        path = Path(os.path.realpath(link))  # this release's file, whatever the link points at next
        with duckdb.connect(str(path), read_only=True) as con:
            yield Source(con, path.name)
        return
    store = open_store(layout, tier)
    current = store.current()
    if current is None:
        yield None
        return
    with store.connect(current.number) as con:
        yield Source(con, f"release {current.number}")


def _private_dir(path: Path) -> Path:
    """``path`` and its parent made owner-only (0700) whatever the umask."""
    for folder in (path.parent, path):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)
    return path


def _views(source: Source) -> dict[str, str]:
    """The curated views of a release, with their comments."""
    tables = release_tables(source.con, ["curated"])
    return {name.partition(".")[2]: comment for name, comment in tables.items()}


def _column_comments(source: Source, table: str) -> list[tuple[str, str]]:
    rows = source.con.execute(
        "SELECT column_name, coalesce(comment, '') FROM duckdb_columns() "
        "WHERE schema_name = 'curated' AND table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    return [(str(name), str(comment)) for name, comment in rows]


def _copy_table(
    con: duckdb.DuckDBPyConnection, source: Source, table: str, comment: str, partner_id: str | None
) -> int:
    """Copy the release's ``curated.table`` into the extract (only ``partner_id``'s rows when
    given), with the table's and every column's comment; the rows copied."""
    columns = _column_comments(source, table)
    names = [name for name, _ in columns]
    target = f"curated.{quote_name(table)}"
    if partner_id is None and PARTNER_FIELD in names:
        # A public table naming partners would be a disclosure: never copy one.
        raise StoreError(f"public table curated.{table} has a {PARTNER_FIELD} column; not copied to extracts")
    where = f" WHERE {PARTNER_FIELD} = {quote_literal(partner_id)}" if partner_id is not None else ""
    rows_in = source.con.sql(f"SELECT * FROM {target}{where} ORDER BY ALL").to_arrow_table()
    con.register("extract_rows", rows_in)
    try:
        con.execute(f"CREATE TABLE {target} AS SELECT * FROM extract_rows")
    finally:
        con.unregister("extract_rows")
    con.execute(f"COMMENT ON TABLE {target} IS {quote_literal(comment)}")
    for name, text in columns:
        con.execute(f"COMMENT ON COLUMN {target}.{quote_name(name)} IS {quote_literal(text)}")
    return int(rows_in.num_rows)


def _own_tables(con: duckdb.DuckDBPyConnection, source: Source, partner: Partner) -> dict[str, int]:
    """The partner's rows of each restricted table it may submit to."""
    copied = {}
    for table, comment in sorted(_views(source).items()):
        if table not in partner.datasets:
            continue
        if PARTNER_FIELD not in dict(_column_comments(source, table)):
            raise StoreError(
                f"restricted table curated.{table} has no {PARTNER_FIELD}: cannot select one partner's rows"
            )
        own = f"{comment} Only the rows of partner {partner.id} (its extract)."
        copied[table] = _copy_table(con, source, table, own.strip(), partner.id)
        ((others,),) = con.execute(
            f"SELECT count(*) FROM curated.{quote_name(table)} WHERE {PARTNER_FIELD} IS DISTINCT FROM ?",
            [partner.id],
        ).fetchall()
        if others:
            raise StoreError(f"extract of {partner.id}: curated.{table} would hold other partners' rows")
    return copied


def _public_tables(con: duckdb.DuckDBPyConnection, source: Source) -> dict[str, int]:
    """Every FLOW table of the public release, whole."""
    return {
        table: _copy_table(con, source, table, comment, None)
        for table, comment in sorted(_views(source).items())
        if table.startswith(PUBLIC_PREFIX)
    }


def _write_meta(
    con: duckdb.DuckDBPyConnection, partner: Partner, restricted: Source | None, public: Source | None
) -> None:
    con.execute("CREATE SCHEMA meta")
    con.execute(f"CREATE TABLE meta.extract ({', '.join(f'{n} {t}' for n, t, _ in EXTRACT_COLUMNS)})")
    con.execute(
        "INSERT INTO meta.extract VALUES (?, ?, ?, ?)",
        [
            partner.id,
            datetime.now(UTC),
            restricted.release if restricted else None,
            public.release if public else None,
        ],
    )
    con.execute(
        "COMMENT ON TABLE meta.extract IS 'Which partner this extract is for, and what it was cut from.'"
    )
    for name, _, text in EXTRACT_COLUMNS:
        con.execute(f"COMMENT ON COLUMN meta.extract.{name} IS {quote_literal(text)}")


def _write(path: Path, partner: Partner, restricted: Source | None, public: Source | None) -> dict[str, int]:
    with closing(duckdb.connect(str(path), config=duckdb_config())) as con:
        # Uncompressed, so the file's bytes are what it holds (see the module's docstring).
        con.execute("SET force_compression = 'uncompressed'")
        con.execute("CREATE SCHEMA curated")
        copied: dict[str, int] = {}
        if restricted is not None:
            copied.update(_own_tables(con, restricted, partner))
        if public is not None:
            copied.update(_public_tables(con, public))
        _write_meta(con, partner, restricted, public)
        con.execute("CHECKPOINT")
    return copied


def write_partner_extract(
    settings: Settings, partner_id: str, partners: PartnerRegistry | None = None
) -> Path:
    """Write ``partner_id``'s extract from the current releases (of either store kind); its path.
    An unknown partner is refused (ContractError naming it)."""
    registry = partners if partners is not None else load_partners(settings.schemas_dir)
    partner = registry.get(partner_id)
    layout = Layout(settings.data_dir)
    target = extract_path(settings, partner.id)
    folder = _private_dir(target.parent)
    aside = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        with _opened(layout, "restricted") as restricted, _opened(layout, "public") as public:
            copied = _write(aside, partner, restricted, public)
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
