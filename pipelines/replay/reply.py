"""What a replay handler answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # A large recorded file is served from disk in chunks instead of ``body`` (memory stays flat).
    file: Path | None = None

    @property
    def length(self) -> int:
        """Bytes of the answer's body."""
        return self.file.stat().st_size if self.file is not None else len(self.body)

    def payload(self) -> bytes:
        """The whole body in memory (fault injection on small answers)."""
        return self.file.read_bytes() if self.file is not None else self.body
