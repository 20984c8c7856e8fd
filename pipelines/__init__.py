"""scdx pipelines: the library behind the CLI and the Airflow DAGs.

Kept import-light on purpose: DAG files import ``pipelines.contracts`` at parse time, so nothing
here pulls in pyarrow, DuckDB or Great Expectations.
"""
