"""Agency sources: one small module per agency API, each saying how to page and how to parse.

A source module provides two functions:

    fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]
    parse_page(page: RawPage, contract, registry) -> SourceRows | None

``fetch_pages`` picks a paging strategy from pipelines.sources.paging and adds the agency's parameters.
A source whose single responses or files can be large also provides

    parse_batches(page: RawPage, contract, registry) -> Iterator[SourceRows]

which normalize prefers, so memory holds one batch, not one file.

``parse_page`` undoes the agency's quirks (header rows, special values, code padding, date
formats) and returns text columns named as the agency names them; pipelines.stages.normalize does the
rest for every source alike (drift policy, types, units). Paging, retries and authentication are
common code too (pipelines.sources.paging, pipelines.sources.http).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from pipelines.common.errors import ScdxError
from pipelines.contracts import Contract, Registry

if TYPE_CHECKING:
    from pipelines.sources.http import FetchedPage
    from pipelines.sources.paging import PageContext


# The errors and drift events a source raises while reading its agency's bytes (re-exported by
# normalize); here, not in normalize, so fetching never loads Arrow.
class NormalizeError(ScdxError, ValueError):
    """Raw data that cannot be read as the agency's format; names dataset, file, row, field."""

    def __init__(
        self, dataset: str, path: Path | str, message: str, row: int | None = None, field: str | None = None
    ):
        where = f"{dataset}: {path}"
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
        self.dataset, self.path, self.row, self.field = dataset, str(path), row, field


class FormatRefused(NormalizeError):
    """A file or response that is not what its source reads (binary, empty, JSON for CSV ...)."""


@dataclass(frozen=True)
class DriftEvent:
    """The source differs from the contract: a field is new, missing or retyped, or a code is new."""

    field: str
    kind: str  # new_field, missing_field, type_change, new_code
    # rejected, warned, allowed (the contract's policy), or derived: the source read the same fact
    # from an older field of its own (AFDC access_code from groups_with_access_code)
    action: str
    detail: str


# The action each evolution policy takes, as drift events record it.
ACTIONS = {"reject": "rejected", "warn": "warned", "allow": "allowed"}


class DriftRejected(NormalizeError):
    """Drift the contract's evolution policy rejects: the batch is quarantined, nothing published."""

    def __init__(self, dataset: str, path: Path | str, event: DriftEvent, row: int | None = None):
        super().__init__(
            dataset, path, f"{event.kind}: {event.detail} (evolution policy: reject)", row, event.field
        )
        self.event = event


class RawPage:
    """A landed response as normalize sees it: the exact bytes and their manifest.

    The body is read from the landed file on first use, so a source that streams a large file
    (``parse_batches`` reading ``path`` itself) never holds it whole in memory.
    """

    __slots__ = ("_body", "dataset", "manifest", "path")

    def __init__(self, dataset: str, path: Path, manifest: dict[str, Any], body: bytes | None = None):
        self.dataset = dataset
        self.path = path
        self.manifest = manifest
        self._body = body

    @property
    def body(self) -> bytes:
        """The exact bytes the agency sent (or the file in hand)."""
        if self._body is None:
            self._body = self.path.read_bytes()
        return self._body

    @property
    def status(self) -> int:
        return int(self.manifest["status"])

    def __repr__(self) -> str:
        return f"RawPage({self.dataset!r}, {str(self.path)!r})"


@dataclass(frozen=True)
class SourceRows:
    """One page with the agency's quirks undone: text columns under the agency's own names."""

    columns: Mapping[str, Sequence[str | None]]
    source_rows: int
    # Values the source computes itself, by contract field name (e.g. Census partner_kind).
    derived: Mapping[str, Sequence[str | None]] = field(default_factory=dict)
    # Unit of a source column in this page, when the page says so (USGS headers: Prod_kt_2022).
    units: dict[str, str] = field(default_factory=dict)
    # Row number, as a person reading the file counts, of the first data row (header is row 1).
    first_row: int = 2
    # Source columns this format never carries, with why (a USA Trade Online report has one
    # measure): null where the field is nullable, recorded as drift; not the unexpected absence
    # the contract's missing_field policy judges.
    absent: Mapping[str, str] = field(default_factory=dict)
    # How many records the agency says the whole request holds (AFDC total_results, EIA total),
    # when the response says so: a batch holding fewer is short (the contract's publish.short_batch).
    declared_records: int | None = None
    # Drift the parse step met and resolved itself (a field derived from an older one, a note in
    # wording it does not know under a lenient policy); normalize records them with its own.
    drift: tuple[DriftEvent, ...] = ()


class SourceModule(Protocol):
    # The formats of pipelines.sources.formats a response or file of this source can be ("json", "csv", "zip").
    FORMATS: tuple[str, ...]

    def fetch_pages(self, ctx: PageContext) -> Iterator[FetchedPage]: ...

    def parse_page(self, page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None: ...


def source_module(name: str) -> SourceModule:
    """The source module called ``name`` (``pipelines/sources/<name>.py``, or the package ``<name>/``)."""
    try:
        module = importlib.import_module(f"pipelines.sources.{name}")
    except ModuleNotFoundError:
        raise ValueError(f"no source module pipelines/sources/{name}.py") from None
    return cast(SourceModule, module)


__all__ = [
    "ACTIONS",
    "DriftEvent",
    "DriftRejected",
    "FormatRefused",
    "NormalizeError",
    "RawPage",
    "SourceModule",
    "SourceRows",
    "source_module",
]
