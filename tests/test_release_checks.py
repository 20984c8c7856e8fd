"""The release checksums the cross-store tests compare: exact by default; to a number of significant
digits for floating-point columns when two stores' releases are compared (their sums of doubles add
rows in different orders)."""

from __future__ import annotations

import duckdb

from devtools.release_checks import CROSS_STORE_DIGITS, checksums


def _release(scale: float) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.rows (weight_t DOUBLE, sctg2 VARCHAR, share DOUBLE)")
    con.execute(
        "INSERT INTO marts.rows VALUES (0.1 + 0.2, '14', 0), (1e20 / 3, '20', NULL), (-12345.678901234567, '32', 'inf')"
    )
    con.execute("UPDATE marts.rows SET weight_t = weight_t * ?", [scale])
    con.execute("CREATE VIEW marts.freight AS SELECT * FROM marts.rows")
    return con


def test_sums_differing_in_the_last_bits_agree_to_the_cross_store_digits() -> None:
    same, last_bits = _release(1.0), _release(1 + 2e-16 * 4)
    assert checksums(same) != checksums(last_bits)
    assert checksums(same, CROSS_STORE_DIGITS) == checksums(last_bits, CROSS_STORE_DIGITS)


def test_a_difference_within_the_cross_store_digits_is_seen() -> None:
    assert checksums(_release(1.0), CROSS_STORE_DIGITS) != checksums(_release(1 + 1e-9), CROSS_STORE_DIGITS)
