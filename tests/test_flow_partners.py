"""Partner data (FLOW-style sharing): the registry, signed submissions, and what is refused."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.common.settings import Settings
from pipelines.contracts import ContractError, PartnerRegistry, Registry, load_partners
from pipelines.orchestration.inbox import Outcome, inbox_dir, ingest_inbox, submit
from pipelines.replay.flow_generate import DEFAULT_SEED, write_submissions
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_current

from .conftest import RECORDINGS, SCHEMAS

THROUGHPUT = "flow_port_throughput"
HEADER = "port_code,terminal_code,week,loaded_teu_in,loaded_teu_out,empty_teu_in,empty_teu_out,vessel_arrivals,dwell_days"
GARDEN, OCEAN = "sav_garden_terminal", "sav_ocean_terminal"
GARDEN_KEY = "garden-key-7f3c1b9e5a2d4c68"
OCEAN_KEY = "ocean-key-0a9b8c7d6e5f4321"


@pytest.fixture
def partners(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> PartnerRegistry:
    monkeypatch.setenv(f"SCDX_PARTNER_{GARDEN.upper()}_KEY", GARDEN_KEY)
    monkeypatch.setenv(f"SCDX_PARTNER_{OCEAN.upper()}_KEY", OCEAN_KEY)
    return load_partners(SCHEMAS, set(registry.contracts))


def _csv(tmp_path: Path, name: str, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _week(week: str, terminal: str, teu: int) -> str:
    return f"USSAV,{terminal},{week},{teu},{teu // 2},{teu // 10},{teu // 5},7,4.5"


def _rows(settings: Settings) -> list[tuple[str, str, str, float]]:
    with open_current(Layout(settings.data_dir), "restricted") as con:
        return con.execute(
            "SELECT partner_id, terminal_code, week, loaded_teu_in FROM curated.flow_port_throughput ORDER BY ALL"
        ).fetchall()


def _only(outcomes: list[Outcome]) -> Outcome:
    (outcome,) = outcomes
    return outcome


def _refused_reason(settings: Settings, outcome: Outcome) -> str:
    folder = inbox_dir(settings) / "refused" / outcome.submission_id
    assert (folder / f"{outcome.submission_id}.envelope.json").is_file()
    return (folder / "reason.txt").read_text()


def test_the_registry_lists_partners_with_roles_datasets_and_where_their_key_is_never_the_key(
    partners: PartnerRegistry,
) -> None:
    garden = partners.get(GARDEN)
    assert garden.role == "port_terminal" and garden.datasets == [THROUGHPUT]
    assert garden.secret.env == "SCDX_PARTNER_SAV_GARDEN_TERMINAL_KEY"
    assert GARDEN_KEY not in (SCHEMAS / "partners.yaml").read_text()
    with pytest.raises(ContractError, match="unknown partner 'nobody'"):
        partners.get("nobody")


def test_a_valid_submission_is_published_to_the_restricted_tier_with_the_partner_from_the_envelope(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    # The file claims to be another partner's rows: the column is ignored, recorded as drift.
    forged = _csv(tmp_path, "w.csv", [f"{OCEAN},{_week('2024-W07', 'GCT', 900)}"], "partner_id," + HEADER)
    submit(inbox_dir(settings), GARDEN, THROUGHPUT, forged, GARDEN_KEY.encode())
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "published"
    assert _rows(settings) == [(GARDEN, "GCT", "2024-W07", 900.0)]
    with open_current(Layout(settings.data_dir), "public") as con:
        # The public tier gets only the aggregates, and a one-partner cell suppressed in them.
        curated = con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'curated'").fetchall()
        assert curated == [("flow_port_weekly",)]
        assert con.execute("SELECT DISTINCT suppressed FROM curated.flow_port_weekly").fetchall() == [(True,)]
    with open_current(Layout(settings.data_dir), "restricted") as con:
        (drift,) = con.execute("SELECT field, action FROM meta.schema_drift").fetchall()
    assert drift == ("partner_id", "ignored")


def test_a_resubmission_replaces_only_that_partners_weeks(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    inbox = inbox_dir(settings)
    first = [_week("2024-W07", "GCT", 900), _week("2024-W08", "GCT", 950)]
    submit(inbox, GARDEN, THROUGHPUT, _csv(tmp_path, "g1.csv", first), GARDEN_KEY.encode())
    ocean = [_week("2024-W07", "OCT", 100), _week("2024-W08", "OCT", 110)]
    submit(inbox, OCEAN, THROUGHPUT, _csv(tmp_path, "o1.csv", ocean), OCEAN_KEY.encode())
    assert {o.status for o in ingest_inbox(settings, registry, partners)} == {"published"}
    correction = [_week("2024-W08", "GCT", 990)]
    submit(inbox, GARDEN, THROUGHPUT, _csv(tmp_path, "g2.csv", correction), GARDEN_KEY.encode())
    assert _only(ingest_inbox(settings, registry, partners)).status == "published"
    assert _rows(settings) == [
        (GARDEN, "GCT", "2024-W07", 900.0),
        (GARDEN, "GCT", "2024-W08", 990.0),
        (OCEAN, "OCT", "2024-W07", 100.0),
        (OCEAN, "OCT", "2024-W08", 110.0),
    ]


def test_an_unknown_partner_is_refused_and_kept_aside_with_the_reason(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    path = _csv(tmp_path, "x.csv", [_week("2024-W07", "GCT", 900)])
    submit(inbox_dir(settings), "sav_phantom", THROUGHPUT, path, b"any-key")
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "refused"
    assert "unknown partner 'sav_phantom'" in _refused_reason(settings, outcome)
    assert not Layout(settings.data_dir).store("restricted").link.exists()


def test_a_bad_signature_is_refused_and_kept_aside_with_the_reason(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    path = _csv(tmp_path, "x.csv", [_week("2024-W07", "GCT", 900)])
    # Signed with the other partner's key, in the garden terminal's name.
    submit(inbox_dir(settings), GARDEN, THROUGHPUT, path, OCEAN_KEY.encode())
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "refused"
    assert "bad signature" in _refused_reason(settings, outcome)
    assert not Layout(settings.data_dir).store("restricted").link.exists()


def test_a_file_changed_after_signing_is_refused(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    envelope = submit(
        inbox_dir(settings),
        GARDEN,
        THROUGHPUT,
        _csv(tmp_path, "x.csv", [_week("2024-W07", "GCT", 900)]),
        GARDEN_KEY.encode(),
    )
    signed = json.loads(envelope.read_text())
    (inbox_dir(settings) / signed["file_name"]).write_text(HEADER + "\n" + _week("2024-W07", "GCT", 1) + "\n")
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "refused" and "not the one signed" in _refused_reason(settings, outcome)


def test_a_dataset_the_partner_may_not_submit_is_refused_and_kept_aside_with_the_reason(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    path = _csv(
        tmp_path,
        "x.csv",
        ["2024-W07,2024-W09,2,USSAV,SCTG2,34,120"],
        "issued_week,week,horizon_weeks,port_code,commodity_system,commodity_code,teu_expected",
    )
    submit(inbox_dir(settings), GARDEN, "flow_shipper_forecasts", path, GARDEN_KEY.encode())
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "refused"
    assert "may not submit dataset 'flow_shipper_forecasts'" in _refused_reason(settings, outcome)


def test_a_replayed_submission_is_refused_and_kept_aside_with_the_reason(
    tmp_path: Path, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    inbox = inbox_dir(settings)
    envelope = submit(
        inbox,
        GARDEN,
        THROUGHPUT,
        _csv(tmp_path, "x.csv", [_week("2024-W07", "GCT", 900)]),
        GARDEN_KEY.encode(),
    )
    captured = envelope.read_bytes(), (inbox / json.loads(envelope.read_text())["file_name"]).read_bytes()
    assert _only(ingest_inbox(settings, registry, partners)).status == "published"
    # The same signed envelope and file, sent again.
    envelope.write_bytes(captured[0])
    (inbox / json.loads(captured[0])["file_name"]).write_bytes(captured[1])
    outcome = _only(ingest_inbox(settings, registry, partners))
    assert outcome.status == "refused"
    assert "replayed submission" in _refused_reason(settings, outcome)


def test_the_key_appears_nowhere_in_the_data_dir_or_the_logs(
    tmp_path: Path,
    settings: Settings,
    registry: Registry,
    partners: PartnerRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    submit(
        inbox_dir(settings),
        GARDEN,
        THROUGHPUT,
        _csv(tmp_path, "a.csv", [_week("2024-W07", "GCT", 900)]),
        GARDEN_KEY.encode(),
    )
    submit(
        inbox_dir(settings),
        GARDEN,
        THROUGHPUT,
        _csv(tmp_path, "b.csv", [_week("2024-W07", "GCT", 9)]),
        OCEAN_KEY.encode(),
    )
    assert sorted(o.status for o in ingest_inbox(settings, registry, partners)) == ["published", "refused"]
    for key in (GARDEN_KEY, OCEAN_KEY):
        assert key not in caplog.text
        for path in settings.data_dir.rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path


def test_the_cli_lists_partners_and_rotate_key_prints_a_new_key_once_and_writes_it_nowhere(
    tmp_path: Path, data_dir: Path
) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["partner", "list", "--data-dir", str(data_dir)])
    assert (
        listed.exit_code == 0 and "sav_garden_terminal  port_terminal  flow_port_throughput" in listed.output
    )
    before = (SCHEMAS / "partners.yaml").read_bytes()
    rotated = runner.invoke(app, ["partner", "rotate-key", GARDEN, "--data-dir", str(data_dir)])
    assert rotated.exit_code == 0
    key = rotated.stdout.strip().splitlines()[-1]
    assert len(key) >= 40
    assert (SCHEMAS / "partners.yaml").read_bytes() == before
    assert not any(key.encode() in p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


def test_the_generator_is_deterministic_and_the_bundled_submissions_are_what_it_writes(
    tmp_path: Path,
) -> None:
    written = write_submissions(tmp_path, DEFAULT_SEED)
    assert len(written) == 17
    for path in written:
        bundled = RECORDINGS / "flow" / path.parent.name / path.name
        assert path.read_bytes() == bundled.read_bytes(), bundled


def test_generated_submissions_pass_their_contracts_and_publish(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, registry: Registry, partners: PartnerRegistry
) -> None:
    shipper = "shipper_delta_home"
    monkeypatch.setenv(f"SCDX_PARTNER_{shipper.upper()}_KEY", "delta-key")
    flow = RECORDINGS / "flow"
    submit(
        inbox_dir(settings),
        shipper,
        "flow_shipper_forecasts",
        flow / "flow_shipper_forecasts" / f"{shipper}.csv",
        b"delta-key",
    )
    submit(inbox_dir(settings), GARDEN, THROUGHPUT, flow / THROUGHPUT / f"{GARDEN}.csv", GARDEN_KEY.encode())
    assert [o.status for o in ingest_inbox(settings, registry, partners)] == ["published", "published"]
