"""Run-time settings, read from the environment once and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# The contracts and the recorded agency responses ship inside the package (pipelines/bundled/
# links to the top-level schemas/ and recordings/ of a checkout), so an installed wheel runs the
# same offline demo as a checkout does.
BUNDLED = Path(__file__).resolve().parents[1] / "bundled"
DEFAULT_SCHEMAS_DIR = BUNDLED / "schemas"
DEFAULT_RECORDINGS_DIR = BUNDLED / "recordings"


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, retry bounds and size limits of every agency request."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_attempts: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    # A server asking us to come back later than this fails the dataset instead of stalling the night.
    retry_after_max_s: float = 300.0
    max_response_bytes: int = 512 * 1024 * 1024
    # A body larger than this is written to a temporary file as it arrives (a bulk file of hundreds
    # of MB never sits in memory); ``spool_dir`` is where (the system's temporary directory if None).
    spool_bytes: int = 64 * 1024 * 1024
    spool_dir: str | None = None


@dataclass(frozen=True)
class Settings:
    """Where data, contracts and recordings live, and how sources are reached."""

    data_dir: Path
    schemas_dir: Path
    recordings_dir: Path
    replay_url: str | None = None
    live: bool = False
    keep_versions: int = 10
    # How long a refresh waits for another refresh of the same dataset before failing cleanly.
    dataset_lock_timeout_s: float = 3600.0
    http: HttpPolicy = field(default_factory=HttpPolicy)
    # SCDX_DATA_URL: raw, staged, quarantine and reports are also put on this root (an object
    # store, docs/scaling.md); None keeps everything under data_dir only, as always.
    data_url: str | None = None
    # Attempts of each object-store request before a run fails (retries with backoff in between).
    data_max_attempts: int = 5

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some settings changed (CLI flags win over the environment)."""
        return replace(self, **changes)  # type: ignore[arg-type]


# Measured (docs/performance.md): 256MB spills the key check of a large batch to disk and keeps a
# refresh's peak RSS the same at 10M and 20M Census rows, at the speed of 512MB or 2GB.
DUCKDB_MEMORY_LIMIT = "256MB"


def duckdb_config() -> dict[str, str | bool | int | float | list[str]]:
    """Settings of the pipeline's own read-write DuckDB connections (validation, publishing).

    A memory limit (``SCDX_DUCKDB_MEMORY_LIMIT``, default 256MB) makes the joins and aggregations of
    a large dataset (a key check over tens of millions of rows) spill to disk instead of growing
    the process: DuckDB's own default is 80% of the machine's memory.
    """
    return {"memory_limit": os.environ.get("SCDX_DUCKDB_MEMORY_LIMIT") or DUCKDB_MEMORY_LIMIT}


def _float_env(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not a number") from None


def data_dir_from_env() -> Path:
    """The data directory ``SCDX_DATA_DIR`` names (default ``./data``), absolute."""
    return Path(os.environ.get("SCDX_DATA_DIR") or "data").expanduser().resolve()


def load_settings() -> Settings:
    """Settings from ``SCDX_*`` environment variables, with the documented defaults."""
    data_dir = data_dir_from_env()
    http = HttpPolicy(
        connect_timeout_s=_float_env("SCDX_HTTP_CONNECT_TIMEOUT", HttpPolicy.connect_timeout_s),
        read_timeout_s=_float_env("SCDX_HTTP_READ_TIMEOUT", HttpPolicy.read_timeout_s),
        max_attempts=int(_float_env("SCDX_HTTP_MAX_ATTEMPTS", HttpPolicy.max_attempts)),
        backoff_initial_s=_float_env("SCDX_HTTP_BACKOFF_INITIAL", HttpPolicy.backoff_initial_s),
        backoff_max_s=_float_env("SCDX_HTTP_BACKOFF_MAX", HttpPolicy.backoff_max_s),
        retry_after_max_s=_float_env("SCDX_HTTP_RETRY_AFTER_MAX", HttpPolicy.retry_after_max_s),
        max_response_bytes=int(_float_env("SCDX_HTTP_MAX_RESPONSE_BYTES", HttpPolicy.max_response_bytes)),
        spool_bytes=int(_float_env("SCDX_HTTP_SPOOL_BYTES", HttpPolicy.spool_bytes)),
    )
    return Settings(
        data_dir=data_dir,
        schemas_dir=Path(os.environ.get("SCDX_SCHEMAS_DIR") or DEFAULT_SCHEMAS_DIR).resolve(),
        recordings_dir=Path(os.environ.get("SCDX_RECORDINGS_DIR") or DEFAULT_RECORDINGS_DIR).resolve(),
        replay_url=os.environ.get("SCDX_REPLAY_URL") or None,
        live=os.environ.get("SCDX_LIVE", "").lower() in {"1", "true", "yes"},
        keep_versions=int(_float_env("SCDX_KEEP_VERSIONS", 10)),
        dataset_lock_timeout_s=_float_env("SCDX_DATASET_LOCK_TIMEOUT", 3600.0),
        http=http,
        data_url=os.environ.get("SCDX_DATA_URL") or None,
        data_max_attempts=int(_float_env("SCDX_DATA_MAX_ATTEMPTS", 5)),
    )
