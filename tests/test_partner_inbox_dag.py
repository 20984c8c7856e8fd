"""The ``partner_inbox`` DAG: it parses without touching the disk, waits for submissions in the
triggerer (an asset watcher's event trigger), and ingests what ``scdx partner submit`` leaves in
the inbox the way ``scdx partner ingest`` does, with keys from Airflow connections kept out of
the logs.

Airflow reads its configuration at import, so each check runs in a subprocess with its own env
(the SQLite metadata database of ``tests/test_airflow.py``'s ``airflow_env``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.airflow_cluster import AirflowCluster
from pipelines.orchestration.inbox import submit
from pipelines.replay.flow_generate import write_submissions
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_current

from .test_airflow import DAGS, _last_json, _python, airflow_env  # noqa: F401 (a fixture)

pytestmark = pytest.mark.airflow
DAG_FILE = DAGS / "scdx_partner_inbox.py"
THROUGHPUT = "flow_port_throughput"
GARDEN, OCEAN = "sav_garden_terminal", "sav_ocean_terminal"
# Distinctive keys: the tests look for them in logs and on disk.
GARDEN_CONN_KEY = "garden-conn-key-5e1d9a7c3b2f4e60"
OCEAN_ENV_KEY = "ocean-env-key-8c2b4a6d0e1f3579"


@pytest.fixture
def inbox_env(airflow_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:  # noqa: F811
    """A data dir of its own; the garden terminal's key only in its Airflow connection (defined the
    way Airflow reads connections from the environment), the ocean terminal's in its variable."""
    env = {k: v for k, v in airflow_env.items() if not k.startswith("SCDX_PARTNER_")}
    env["SCDX_DATA_DIR"] = str(tmp_path / "data")
    env[f"AIRFLOW_CONN_SCDX_PARTNER_{GARDEN.upper()}"] = json.dumps(
        {"conn_type": "generic", "password": GARDEN_CONN_KEY}
    )
    env[f"SCDX_PARTNER_{OCEAN.upper()}_KEY"] = OCEAN_ENV_KEY
    yield env


def _generated(tmp_path: Path) -> dict[str, Path]:
    """The replay tooling's partner submissions (one CSV per partner), by partner id."""
    return {path.stem: path for path in write_submissions(tmp_path / "flow")}


def _restricted_rows(data_dir: Path) -> list[tuple[str, int]]:
    with open_current(Layout(data_dir), "restricted") as con:
        return con.execute(
            "SELECT partner_id, count(*) FROM curated.flow_port_throughput GROUP BY ALL ORDER BY ALL"
        ).fetchall()


def test_the_task_body_verifies_with_the_keys_handed_in_and_records_no_partner_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the Airflow task calls, without Airflow: the keys come in as values (no variable is
    set), only the waiting partners' key references are asked for, and the returned record (the
    task's XCom) names submissions and datasets, never a partner."""
    from pipelines.orchestration import tasks

    generated = _generated(tmp_path)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SCDX_DATA_DIR", str(data_dir))
    for partner in (GARDEN, OCEAN):
        monkeypatch.delenv(f"SCDX_PARTNER_{partner.upper()}_KEY", raising=False)
    good = submit(data_dir / "inbox", GARDEN, THROUGHPUT, generated[GARDEN], GARDEN_CONN_KEY.encode())
    bad = submit(data_dir / "inbox", OCEAN, THROUGHPUT, generated[OCEAN], b"not-the-ocean-terminals-key")
    secrets = tasks.waiting_partner_secrets()
    assert sorted(secrets) == [GARDEN, OCEAN]
    assert secrets[GARDEN].airflow_conn_id == f"scdx_partner_{GARDEN}"
    record = tasks.ingest_partner_inbox({GARDEN: GARDEN_CONN_KEY.encode(), OCEAN: OCEAN_ENV_KEY.encode()})
    assert record == {
        "published": [THROUGHPUT],
        "submissions": [
            {
                "submission_id": envelope.name.removesuffix(".envelope.json"),
                "dataset": THROUGHPUT,
                "status": status,
            }
            for envelope, status in sorted([(good, "published"), (bad, "refused")])
        ],
    }
    assert GARDEN not in json.dumps(record) and OCEAN not in json.dumps(record)
    assert tasks.waiting_partner_secrets() == {}


def test_parsing_the_dag_file_reads_no_file_lists_no_directory_and_imports_no_pipeline_stage(
    inbox_env: dict[str, str],
) -> None:
    result = _python(
        f"""
        import json, runpy, sys
        # What the DAG file imports is loaded first, and code Airflow imports lazily is not data:
        # what is audited is the DAG file's own reading, listing and writing.
        import pendulum, airflow.sdk, airflow.providers.standard.triggers.file
        import pipelines.common.settings, pipelines.orchestration.dag_support
        touched = []
        def audit(event, args):
            if event in ("open", "os.listdir", "os.scandir", "os.mkdir", "os.remove", "os.rename", "glob.glob"):
                path = str(args[0])
                if not path.endswith((".py", ".pyc", ".so")) and "site-packages" not in path:
                    touched.append([event, path])
        sys.addaudithook(audit)
        namespace = runpy.run_path({str(DAG_FILE)!r})
        heavy = ["pyarrow", "duckdb", "great_expectations", "pipelines.orchestration.inbox",
                 "pipelines.orchestration.tasks", "pipelines.orchestration.refresh"]
        print(json.dumps({{
            "touched": [t for t in touched if t[1] != {str(DAG_FILE)!r}],
            "loaded": [m for m in heavy if m in sys.modules],
            "dags": [v.dag_id for v in namespace.values() if hasattr(v, "dag_id")],
        }}))
        """,
        inbox_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = _last_json(result.stdout)
    assert parsed["touched"] == [] and parsed["loaded"] == []
    assert parsed["dags"] == ["partner_inbox"]
    assert not Path(inbox_env["SCDX_DATA_DIR"]).exists()


def test_the_dag_waits_in_the_triggerer_on_an_event_trigger_that_fires_when_a_submission_arrives(
    inbox_env: dict[str, str], tmp_path: Path
) -> None:
    """No task of the DAG waits: it is scheduled on an asset whose watcher's event trigger scans the
    inbox. Run that trigger's own ``run()``: it does not fire on an empty inbox, fires when ``scdx
    partner submit`` leaves a submission, consumes the flag and leaves the submission for the run."""
    garden = _generated(tmp_path)[GARDEN]
    result = _python(
        f"""
        import asyncio, json, runpy
        from pathlib import Path
        from airflow.triggers.base import BaseEventTrigger
        from pipelines.orchestration.inbox import submit

        namespace = runpy.run_path({str(DAG_FILE)!r})
        dag = next(v for v in namespace.values() if getattr(v, "dag_id", None) == "partner_inbox")
        (asset,) = dag.timetable.asset_condition.objects
        (watcher,) = asset.watchers
        classpath, kwargs = watcher.trigger.serialize()
        # The same trigger on the same inbox, scanning often so the test is quick.
        trigger = type(watcher.trigger)(**{{**kwargs, "poke_interval": 0.01}})

        async def main():
            # As the triggerer runs it: one shared directory scan, filtered by the trigger. The
            # scan is observed: once the trigger asks for a second snapshot it has looked at the
            # first (the empty inbox) without firing.
            looked = asyncio.Event()
            async def observed(snapshots):
                async for snapshot in snapshots:
                    yield snapshot
                    looked.set()
            events = trigger.filter_shared_stream(observed(type(trigger).open_shared_stream(kwargs)))
            first = asyncio.ensure_future(anext(events))
            await looked.wait()
            fired_on_empty_inbox = first.done()
            inbox = Path(kwargs["directory"])
            envelope = submit(inbox, {GARDEN!r}, {THROUGHPUT!r}, Path({str(garden)!r}), {GARDEN_CONN_KEY!r}.encode())
            event = await first
            await events.aclose()
            return {{
                "event_trigger": isinstance(watcher.trigger, BaseEventTrigger),
                "shared_scan": watcher.trigger.shared_stream_key() is not None,
                "classpath": classpath,
                "directory": kwargs["directory"],
                "fired_on_empty_inbox": fired_on_empty_inbox,
                "payload": event.payload,
                "left_in_inbox": sorted(p.name for p in inbox.iterdir()),
                "envelope": envelope.name,
                "tasks": sorted(t.task_id for t in dag.tasks),
                "deferrable_tasks": [t.task_id for t in dag.tasks if getattr(t, "deferrable", False)],
            }}

        print(json.dumps(asyncio.run(main())))
        """,
        inbox_env,
        timeout=300,  # a trigger that never fires fails here rather than hanging the suite
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = _last_json(result.stdout)
    inbox = Path(inbox_env["SCDX_DATA_DIR"]) / "inbox"
    assert seen["event_trigger"] is True and seen["shared_scan"] is True
    assert seen["classpath"] == "airflow.providers.standard.triggers.file.DirectoryFileDeleteTrigger"
    assert seen["directory"] == str(inbox)
    assert seen["fired_on_empty_inbox"] is False
    assert seen["payload"] == {"filepath": str(inbox / "new-submission.flag")}
    envelope = str(seen["envelope"])
    assert seen["left_in_inbox"] == sorted([envelope, envelope.replace(".envelope.json", ".csv")])
    # Nothing in a worker waits for files: the tasks ingest, announce and check.
    assert seen["tasks"] == ["announce_restricted_publish", "check_submissions", "ingest_submissions"]
    assert seen["deferrable_tasks"] == []


def test_a_run_ingests_a_signed_submission_with_the_connection_key_and_keeps_a_bad_signature_aside(
    inbox_env: dict[str, str], tmp_path: Path
) -> None:
    generated = _generated(tmp_path)
    data_dir = Path(inbox_env["SCDX_DATA_DIR"])
    inbox = data_dir / "inbox"
    good = submit(inbox, GARDEN, THROUGHPUT, generated[GARDEN], GARDEN_CONN_KEY.encode())
    # The ocean terminal's file, signed with a key that is not the ocean terminal's.
    forged = submit(inbox, OCEAN, THROUGHPUT, generated[OCEAN], b"not-the-ocean-terminals-key")
    result = _python(
        f"""
        import json
        from pathlib import Path
        from sqlalchemy import select
        from airflow.dag_processing.dagbag import DagBag
        from airflow.models.asset import AssetEvent
        from airflow.sdk.log import redact
        from airflow.utils.session import create_session
        from pipelines.orchestration.inbox import submit

        dag = DagBag(dag_folder={str(DAGS)!r}).get_dag("partner_inbox")
        runs = [dag.test()]
        # A second run with only a refused submission publishes nothing, so it announces nothing.
        submit(Path({str(inbox)!r}), {OCEAN!r}, {THROUGHPUT!r}, Path({str(generated[OCEAN])!r}), b"another-wrong-key")
        runs.append(dag.test())
        with create_session() as session:
            events = [
                {{"uri": e.asset.uri, "task": e.source_task_id, "extra": e.extra}}
                for e in session.scalars(select(AssetEvent).order_by(AssetEvent.id))
            ]
        print(json.dumps({{
            "runs": [{{"state": str(r.state), "tasks": {{t.task_id: str(t.state) for t in r.get_task_instances()}}}} for r in runs],
            "events": events,
            "masked": redact({GARDEN_CONN_KEY!r}) != {GARDEN_CONN_KEY!r} and redact({OCEAN_ENV_KEY!r}) != {OCEAN_ENV_KEY!r},
        }}))
        """,
        inbox_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    first, second = outcome["runs"]  # type: ignore[misc]
    assert first == {
        "state": "success",
        "tasks": {
            "ingest_submissions": "success",
            "announce_restricted_publish": "success",
            "check_submissions": "success",
        },
    }
    assert second["state"] == "success" and second["tasks"]["announce_restricted_publish"] == "skipped"
    # Every week of the generated file, in the garden terminal's name; nothing of the forged one.
    weeks = len(generated[GARDEN].read_text().splitlines()) - 1
    assert _restricted_rows(data_dir) == [(GARDEN, weeks)]
    assert (inbox / "accepted" / good.name.removesuffix(".envelope.json") / good.name).is_file()
    refused = inbox / "refused" / forged.name.removesuffix(".envelope.json")
    assert (refused / forged.name).is_file()
    assert (
        (refused / "reason.txt")
        .read_text()
        .startswith(f"bad signature: not signed with the key of partner {OCEAN}")
    )
    assert len(list((inbox / "refused").iterdir())) == 2
    # One announcement, from the run that published, naming the dataset: what the public
    # aggregates are scheduled on.
    assert outcome["events"] == [
        {
            "uri": "scdx://restricted/partner_data",
            "task": "announce_restricted_publish",
            "extra": {"datasets": [THROUGHPUT]},
        }
    ]
    # The keys were registered with the secrets masker and appear in no log line nor on disk.
    assert outcome["masked"] is True
    logs = result.stdout + result.stderr
    assert "restricted release 1: published curated.flow_port_throughput" in logs
    for key in (GARDEN_CONN_KEY, OCEAN_ENV_KEY):
        assert key not in logs
        assert not [p for p in data_dir.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]


@pytest.mark.timeout(900)  # a cluster start, a parse and one run, on two shared cores
def test_under_a_real_scheduler_a_submission_wakes_the_watcher_and_its_run_publishes_it(
    tmp_path: Path,
) -> None:
    """PostgreSQL, LocalExecutor, api-server, scheduler, dag-processor and the triggerer: nothing
    is triggered by hand. The partner submits; the triggerer's watcher sees the flag and the
    scheduler starts an asset-triggered run that publishes into the restricted tier."""
    data_dir = tmp_path / "data"
    home = tmp_path / "airflow"
    home.mkdir()
    env = {
        "SCDX_DATA_DIR": str(data_dir),
        f"AIRFLOW_CONN_SCDX_PARTNER_{GARDEN.upper()}": json.dumps(
            {"conn_type": "generic", "password": GARDEN_CONN_KEY}
        ),
    }
    garden = _generated(tmp_path)[GARDEN]
    airflow = AirflowCluster(home, DAGS, env, components=("triggerer",))
    try:
        airflow.start()
        airflow.wait_for_dag("partner_inbox")
        airflow.run("airflow", "dags", "unpause", "partner_inbox")
        submit(data_dir / "inbox", GARDEN, THROUGHPUT, garden, GARDEN_CONN_KEY.encode())
        run = airflow.wait_for_run("partner_inbox", lambda r: r["run_type"] == "asset_triggered")
    finally:
        airflow.stop()
    assert run["state"] == "success"
    weeks = len(garden.read_text().splitlines()) - 1
    assert _restricted_rows(data_dir) == [(GARDEN, weeks)]
    # The watcher consumed the flag; the run moved the submission to accepted/.
    assert sorted(p.name for p in (data_dir / "inbox").iterdir()) == ["accepted"]
    # Task logs and the components' logs (scheduler, triggerer, ...) never hold the key.
    logs = [p for p in home.rglob("*.log") if p.is_file()]
    assert any("task_id=ingest_submissions" in str(p) for p in logs)
    assert not [p for p in logs if GARDEN_CONN_KEY.encode() in p.read_bytes()]
