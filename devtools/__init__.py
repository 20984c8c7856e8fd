"""Developer tooling: the benches and the fault catalogue. Not part of the product package
(``pipelines``), which never imports it; run from a checkout (``python -m devtools ...``)."""

from __future__ import annotations

from pathlib import Path

# The checkout this tooling runs from (inputs, schemas, docs it measures or writes).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
