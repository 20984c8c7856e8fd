"""What a landed file is, told from its bytes: empty, JSON, CSV, Parquet, a zip archive or other
binary data, and in which text encoding.

A file in hand (``scdx ingest-file``) is checked against the formats its dataset's source reads
before anything is landed, so a binary file, an empty one or JSON given for CSV is refused with
one message naming the file, what was expected and what was found. Text that is not UTF-8 (UTF-16
with or without a byte-order mark, Latin-1 / Windows-1252) is read: normalize hands the source a
UTF-8 copy, the landed bytes stay exactly as they came. A UTF-8 byte-order mark and CRLF line ends
are the sources' to read, as the agencies send them.

Parquet is told by its magic bytes, ``PAR1`` at both ends of the file (never by its name); a file
that opens with them and does not close with them was cut short or altered, and is damaged.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

PROBE_BYTES = 1 << 16
CHUNK_BYTES = 1 << 20

# Leading bytes of binary formats a person might hand over by mistake.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"%PDF", "PDF"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"\xd0\xcf\x11\xe0", "Microsoft Office (OLE) document"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\x7fELF", "executable"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
# (mark, the codec that reads the whole file and drops the mark, the codec of what follows it, name)
_BOMS: tuple[tuple[bytes, str, str, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8", "UTF-8 with byte-order mark"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be", "UTF-16 BE"),
)
# Control characters that never occur in text (tab, line feed, carriage return and form feed do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
UTF8 = ("utf-8", "utf-8-sig")
KIND_NAMES = {"json": "JSON", "csv": "CSV", "zip": "a zip archive", "parquet": "Parquet"}
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class FileKind:
    """What a file holds: ``kind`` (empty, json, csv, parquet, zip, html, binary), its text encoding, and
    how to say it to a person (``found``: "CSV text (Latin-1)", "binary data (gzip)")."""

    kind: str
    encoding: str | None
    found: str

    @property
    def needs_transcoding(self) -> bool:
        return self.encoding is not None and self.encoding not in UTF8


def _utf16_without_bom(probe: bytes) -> str | None:
    """``utf-16-le``/``utf-16-be`` when every other byte is NUL (ASCII text as UTF-16), else None."""
    if len(probe) < 4:
        return None
    even, odd = probe[0::2], probe[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _decodes(path: Path, codec: str, whole: bool, probe: bytes) -> bool:
    """Whether the file (``whole``) or its probe decodes with ``codec``; a character cut by the probe's end counts."""
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        if not whole:
            decoder.decode(probe, final=False)
            return True
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                decoder.decode(chunk, final=False)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _text_kind(text: str) -> str:
    opening = text.lstrip()[:1]
    if opening in ("{", "["):
        return "json"
    if opening == "<":
        return "html"
    return "csv"


def _parquet_kind(path: Path) -> FileKind:
    """A file opening with Parquet's magic: Parquet when its footer closes with it too, else damaged."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - len(PARQUET_MAGIC)))
        tail = handle.read()
    if size >= 2 * len(PARQUET_MAGIC) + 4 and tail == PARQUET_MAGIC:
        return FileKind("parquet", None, "Parquet data")
    return FileKind("binary", None, "damaged Parquet data (no closing PAR1 footer: cut short or altered)")


def parquet_damage(path: Path) -> str | None:
    """Why a file of kind ``parquet`` cannot be read (its footer or schema is damaged), or None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        return f"damaged Parquet data: {str(exc).strip().splitlines()[0]}"
    return None


def sniff(path: Path, whole: bool = False) -> FileKind:
    """What ``path`` holds, from its first bytes (``whole``: check the encoding over the whole file).

    A file in hand is checked whole (a Latin-1 character can sit in its last row); a response is
    told from its opening bytes and its declared charset.
    """
    if path.is_dir():
        return FileKind("directory", None, "a directory")
    with path.open("rb") as handle:
        probe = handle.read(PROBE_BYTES)
    if not probe:
        return FileKind("empty", None, "an empty file (0 bytes)")
    if probe.startswith(PARQUET_MAGIC):
        return _parquet_kind(path)
    for magic, name in _MAGIC:
        if probe.startswith(magic):
            return FileKind("zip" if name == "zip" else "binary", None, f"binary data ({name})")
    encoding, probe_codec, described, skip = None, "", "", 0
    for bom, codec, after_bom, name in _BOMS:
        if probe.startswith(bom):
            encoding, probe_codec, described, skip = codec, after_bom, name, len(bom)
            break
    if encoding is None:
        encoding = _utf16_without_bom(probe)
        probe_codec, described = encoding or "", "UTF-16 without byte-order mark" if encoding else ""
    if encoding is None:
        if _decodes(path, "utf-8", whole, probe):
            encoding, described = "utf-8", "UTF-8"
        elif _decodes(path, "cp1252", whole, probe):
            encoding, described = "cp1252", "Windows-1252 / Latin-1"
        else:
            encoding, described = "latin-1", "Latin-1"
        probe_codec = encoding
    body = probe[skip:]
    if probe_codec.startswith("utf-16") and len(body) % 2:
        body = body[:-1]  # the probe cut a character in two
    text = body.decode(probe_codec, errors="replace")
    controls = len(_CONTROL.findall(text))
    if controls > max(2, len(text) // 100) or "\x00" in text:
        return FileKind("binary", None, "binary data (not text in UTF-8, UTF-16 or Latin-1)")
    kind = _text_kind(text)
    label = {"json": "JSON text", "csv": "delimited text", "html": "an HTML or XML document"}[kind]
    return FileKind(kind, encoding, f"{label} ({described})")


def expected(formats: tuple[str, ...]) -> str:
    """ "CSV or JSON": how to name the formats a source reads."""
    return " or ".join(KIND_NAMES.get(f, f) for f in formats)


def refusal(formats: tuple[str, ...], found: FileKind) -> str | None:
    """Why a file of kind ``found`` cannot be what a source reading ``formats`` reads, or None."""
    if found.kind in formats:
        return None
    return f"expected {expected(formats)}, found {found.found}"


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` a response declares (``text/csv; charset=ISO-8859-1`` -> ``iso-8859-1``)."""
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip():
            try:
                return codecs.lookup(value.strip().strip('"')).name
            except LookupError:
                return None
    return None


def transcode_to_utf8(source: Path, encoding: str, target: Path) -> Path:
    """Write ``source`` (text in ``encoding``) to ``target`` as UTF-8, in chunks; returns ``target``."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with source.open("rb") as reader, target.open("xb") as writer:
        while chunk := reader.read(CHUNK_BYTES):
            writer.write(decoder.decode(chunk).encode("utf-8"))
        writer.write(decoder.decode(b"", final=True).encode("utf-8"))
    return target
