# Airflow 3 image with the scdx project installed. Built by docker-compose.yml (`docker compose build`).
FROM apache/airflow:3.3.2-python3.11

USER root
# The data directory exists (owned by airflow) so the named volume mounted there starts writable.
RUN mkdir -p /opt/scdx/data && chown -R airflow:root /opt/scdx
USER airflow
WORKDIR /opt/scdx
COPY --chown=airflow:root requirements.lock pyproject.toml README.md ./
# The lock was resolved for Airflow 3.3.2 on Python 3.11, the same versions as this base image.
RUN pip install --no-cache-dir -r requirements.lock
COPY --chown=airflow:root pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps .
COPY --chown=airflow:root schemas ./schemas
COPY --chown=airflow:root recordings ./recordings
COPY --chown=airflow:root dags ./dags
WORKDIR /opt/airflow
