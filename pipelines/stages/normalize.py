"""Normalize: landed raw bytes -> Arrow record batches typed exactly by the contract.

A source module's ``parse_page`` undoes its agency's quirks and hands over the page as text
columns named as the agency names them (:class:`SourceRows`). Everything after that is common and
lives here: the drift check against the contract (new, missing and retyped fields, each handled
by the contract's evolution policy), casting to the contract's types with errors that name the
dataset, file, row and field, conversion to each type's canonical unit, and conforming the page
to the contract's Arrow schema.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.common.ahead import read_ahead_each
from pipelines.contracts import Contract, Registry, arrow_schema, arrow_type
from pipelines.sources import (
    ACTIONS,
    DriftEvent,
    DriftRejected,
    FormatRefused,
    NormalizeError,
    RawPage,
    SourceModule,
    SourceRows,
    source_module,
)
from pipelines.sources.formats import UTF8, charset_of, refusal, sniff, transcode_to_utf8

if TYPE_CHECKING:
    from pipelines.stages.land import LandedBatch, LandedPage

SAMPLE = 5


@dataclass(frozen=True)
class UnitConversion:
    """Values of a field converted from the unit the agency used to the type's canonical unit."""

    field: str
    from_unit: str
    to_unit: str
    factor: float
    rows: int
    file: str


@dataclass
class NormalizeStats:
    """What normalizing a run saw: counts, drift and unit conversions (for the run record)."""

    pages: int = 0
    empty_pages: int = 0
    source_rows: int = 0
    rows: int = 0
    # The largest record count the agency declared for the request (AFDC total_results, EIA total).
    declared_records: int | None = None
    drift: dict[tuple[str, str], DriftEvent] = field(default_factory=dict)
    conversions: list[UnitConversion] = field(default_factory=list)

    def record(self, event: DriftEvent) -> None:
        self.drift.setdefault((event.field, event.kind), event)

    def add_conversion(self, conversion: UnitConversion) -> None:
        """Record a conversion; batches of one file add up to one record per field and file."""
        for i, seen in enumerate(self.conversions):
            if (seen.field, seen.from_unit, seen.to_unit, seen.file) == (
                conversion.field,
                conversion.from_unit,
                conversion.to_unit,
                conversion.file,
            ):
                self.conversions[i] = replace(seen, rows=seen.rows + conversion.rows)
                return
        self.conversions.append(conversion)

    def drift_dicts(self) -> list[dict[str, str]]:
        return [asdict(e) for e in self.drift.values()]

    def conversion_dicts(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.conversions]


def _failing_rows(array: pa.Array, target: pa.DataType) -> list[int]:
    bad = []
    for offset, value in enumerate(array.to_pylist()):
        if value is None:
            continue
        try:
            pc.cast(pa.array([value], type=array.type), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad.append(offset)
    return bad


def _kind(data_type: pa.DataType) -> str:
    """The family of an Arrow type, as far as casting between them means anything."""
    if pa.types.is_dictionary(data_type):
        return _kind(data_type.value_type)
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "text"
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "number"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_temporal(data_type):
        return "time"
    return str(data_type)


def _same_meaning(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether typed values (a Parquet column) may be cast to ``target``: text is parsed, numbers
    may be written as text; a flag or a timestamp is never silently a number (Arrow casts true to 1)."""
    source_kind, target_kind = _kind(source), _kind(target)
    return source_kind in ("text", target_kind) or (source_kind, target_kind) == ("number", "text")


def typed_array(
    values: Sequence[str | None] | pa.Array,
    contract: Contract,
    registry: Registry,
    field_name: str,
    path: Path | str,
    first_row: int = 1,
    stats: NormalizeStats | None = None,
) -> pa.Array:
    """Cast agency text to the field's contract type.

    A value that does not cast is drift of kind ``type_change``: with the contract's policy
    ``reject`` it raises :class:`DriftRejected` naming the row; with ``warn`` or ``allow`` the
    value becomes null and the event is recorded. ``first_row`` is the row number, as a person
    reading the file counts, of ``values[0]``.
    """
    target = arrow_type(registry.type_of(contract, field_name).arrow)
    array = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    if array.type == target:
        return array
    if array.null_count == len(array):
        # No value to cast: nulls of the contract's type (Arrow has no cast from text to a list).
        return pa.nulls(len(array), target)
    if not _same_meaning(array.type, target):
        bad = [i for i, valid in enumerate(array.is_valid().to_pylist()) if valid]
    else:
        try:
            return pc.cast(array, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = _failing_rows(array, target)
    policy = contract.evolution.type_change
    sample = [array[i].as_py() for i in bad[:SAMPLE]]
    event = DriftEvent(
        field_name,
        "type_change",
        ACTIONS[policy],
        f"{len(bad)} value(s) are not {target} ({contract.field(field_name).type}), e.g. {sample}",
    )
    if policy == "reject":
        raise DriftRejected(
            contract.dataset,
            path,
            DriftEvent(
                field_name,
                "type_change",
                "rejected",
                f"value {sample[0]!r}{_typed(array)} is not a valid {target} ({contract.field(field_name).type})",
            ),
            row=first_row + bad[0],
        )
    if stats is not None:
        stats.record(event)
    if not _same_meaning(array.type, target):
        return pa.nulls(len(array), target)
    bad_rows = set(bad)
    mask = pa.array([i in bad_rows for i in range(len(array))])
    return pc.cast(pc.if_else(mask, pa.scalar(None, array.type), array), target)


def _typed(array: pa.Array) -> str:
    """ " (a bool value)": the type of a value that was not text, for the error."""
    return "" if _kind(array.type) == "text" else f" (a {array.type} value)"


def _convert_unit(
    array: pa.Array,
    contract: Contract,
    registry: Registry,
    field_name: str,
    from_unit: str,
    path: Path | str,
    stats: NormalizeStats,
) -> pa.Array:
    to_unit = registry.unit_of(contract, field_name)
    if to_unit is None or from_unit == to_unit:
        return array
    factor = registry.types.factor(from_unit, to_unit)
    stats.add_conversion(
        UnitConversion(
            field_name, from_unit, to_unit, factor, len(array) - array.null_count, Path(str(path)).name
        )
    )
    converted = pc.multiply(pc.cast(array, pa.float64()), pa.scalar(factor, pa.float64()))
    return pc.cast(converted, array.type) if pa.types.is_floating(array.type) else converted


def build_page(
    rows: SourceRows, contract: Contract, registry: Registry, page: RawPage, stats: NormalizeStats
) -> pa.Table:
    """The common half of normalize: drift check, types, units, and the contract's schema."""
    for event in rows.drift:
        stats.record(event)
    mapped = {f.source for f in contract.fields if f.source} | set(contract.source.ignored_columns)
    for column in rows.columns:
        if column not in mapped:
            policy = contract.evolution.new_field
            event = DriftEvent(
                column,
                "new_field",
                ACTIONS[policy],
                f"the source sent column {column!r}, which no field maps",
            )
            if policy == "reject":
                raise DriftRejected(contract.dataset, page.path, event)
            stats.record(event)
    out: dict[str, pa.Array] = {}
    for f in contract.fields:
        if f.name in rows.derived:
            out[f.name] = typed_array(
                rows.derived[f.name], contract, registry, f.name, page.path, rows.first_row, stats
            )
            continue
        if f.source is None:
            continue
        if f.source not in rows.columns and f.source in rows.absent:
            # The format never carries it (not drift of the agency's API): null where allowed.
            event = DriftEvent(
                f.name, "missing_field", "allowed" if f.nullable else "rejected", rows.absent[f.source]
            )
            if not f.nullable:
                raise DriftRejected(contract.dataset, page.path, event)
            stats.record(event)
            continue
        if f.source not in rows.columns:
            policy = contract.evolution.missing_field
            event = DriftEvent(
                f.name,
                "missing_field",
                ACTIONS[policy],
                f"the source sent no column {f.source!r} (it sent: {', '.join(rows.columns)})",
            )
            if policy == "reject" or not f.nullable:
                raise DriftRejected(
                    contract.dataset, page.path, DriftEvent(f.name, "missing_field", "rejected", event.detail)
                )
            stats.record(event)
            continue
        array = typed_array(
            rows.columns[f.source], contract, registry, f.name, page.path, rows.first_row, stats
        )
        from_unit = rows.units.get(f.source) or f.source_unit
        if from_unit is not None:
            array = _convert_unit(array, contract, registry, f.name, from_unit, page.path, stats)
        out[f.name] = array
    return conform(pa.table(out) if out else pa.table({}), contract, registry, page.path)


def conform(table: pa.Table, contract: Contract, registry: Registry, path: Path | str) -> pa.Table:
    """The page as exactly the contract's schema: its columns, in order, with its types.

    A nullable field the page lacks becomes a null column; any other difference is an error,
    because a source module must hand over contract-typed data.
    """
    schema = arrow_schema(contract, registry)
    columns = []
    for target in schema:
        if target.name in table.column_names:
            column = table.column(target.name)
            if column.type != target.type:
                raise NormalizeError(
                    contract.dataset,
                    path,
                    f"normalized as {column.type}, contract says {target.type}",
                    field=target.name,
                )
            columns.append(column)
        elif contract.field(target.name).nullable:
            columns.append(pa.nulls(table.num_rows, target.type))
        else:
            raise NormalizeError(
                contract.dataset, path, "required field missing after normalize", field=target.name
            )
    return pa.Table.from_arrays(columns, schema=schema)


PARSE_AHEAD = 2  # parsed batches of a page waiting for the common build: bounds memory
PARSE_WORKERS = 2  # pages parsing at once: a page parses on one DuckDB thread, the machine has two


def _page_batches(
    source: SourceModule, raw: RawPage, contract: Contract, registry: Registry
) -> Iterator[tuple[RawPage, SourceRows | None]]:
    """One page's parsed batches; ``(page, None)`` ends the page."""
    # A source that can stream a large file in batches says so with parse_batches.
    streaming = getattr(source, "parse_batches", None)
    parsed = streaming(raw, contract, registry) if streaming else [source.parse_page(raw, contract, registry)]
    for rows in parsed:
        if rows is not None:
            yield raw, rows
    yield raw, None


def _readable(
    page: LandedPage, contract: Contract, formats: tuple[str, ...], scratch: Callable[[], Path]
) -> RawPage:
    """The landed page as its source reads it: refused when it is not one of the source's formats,
    a UTF-8 copy (in ``scratch()``) when it is text in another encoding. The landed bytes stay
    as they came."""
    raw = RawPage(dataset=contract.dataset, path=page.body_path, manifest=page.manifest)
    if raw.status != 200 or not int(page.manifest.get("bytes") or 0):
        return raw  # an agency's "no data" answer (HTTP 204, an empty page): the source reads it
    kind = sniff(page.body_path)
    why = refusal(formats, kind)
    if why is not None:
        raise FormatRefused(contract.dataset, page.body_path, why)
    encoding = page.manifest.get("encoding") or charset_of(page.manifest.get("content_type")) or kind.encoding
    if encoding is None or encoding in UTF8 or kind.kind == "zip":
        return raw
    copy = transcode_to_utf8(page.body_path, encoding, scratch() / page.body_path.name)
    return RawPage(dataset=contract.dataset, path=copy, manifest=page.manifest)


def normalize(
    landed: LandedBatch,
    contract: Contract,
    registry: Registry,
    stats: NormalizeStats | None = None,
    scratch_dir: Path | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the landed pages through the source's parse step and the common build, page by page.

    ``scratch_dir``: where UTF-8 copies of text in other encodings are made (removed at the end).
    """
    stats = stats if stats is not None else NormalizeStats()
    source = source_module(contract.source.module)
    with ExitStack() as cleanup:
        made: list[Path] = []

        def scratch() -> Path:
            # Made on first use: most runs are UTF-8 throughout and need none.
            if not made:
                if scratch_dir is not None:
                    scratch_dir.mkdir(parents=True, exist_ok=True)
                made.append(Path(tempfile.mkdtemp(prefix=f"normalize-{contract.dataset}-", dir=scratch_dir)))
                cleanup.callback(shutil.rmtree, made[0], True)
            return made[0]

        pages = [_readable(page, contract, source.FORMATS, scratch) for page in landed.pages]
        yield from _normalized(source, pages, contract, registry, stats)


def _normalized(
    source: SourceModule, pages: list[RawPage], contract: Contract, registry: Registry, stats: NormalizeStats
) -> Iterator[pa.RecordBatch]:
    seen = False
    # The source parses the next pages (DuckDB, Arrow) while this one is built and staged.
    parsed = read_ahead_each(
        (_page_batches(source, raw, contract, registry) for raw in pages),
        PARSE_WORKERS,
        PARSE_AHEAD,
        f"scdx-parse-{contract.dataset}",
    )
    for raw, rows in parsed:
        if rows is None:  # the page is done
            stats.pages += 1
            stats.empty_pages += 0 if seen else 1
            seen = False
            continue
        seen = True
        stats.source_rows += rows.source_rows
        if rows.declared_records is not None:
            stats.declared_records = max(stats.declared_records or 0, rows.declared_records)
        table = build_page(rows, contract, registry, raw, stats)
        stats.rows += table.num_rows
        yield from table.to_batches()
