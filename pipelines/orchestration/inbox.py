"""Authenticated partner submissions: the inbox, signed envelopes, and their ingest.

A partner submits a file with an envelope (``<data dir>/inbox/<submission_id>.envelope.json``)
naming the partner, the dataset, the file's sha256 and a fresh submission id (the nonce), signed
with HMAC-SHA256 under the partner's key over the envelope's canonical JSON, which holds the
file's sha256: so the signature covers the bytes, the partner, the dataset and the nonce.

:func:`ingest_inbox` verifies each envelope: an unknown partner, a bad signature, a dataset the
partner may not submit, a replayed submission id, a file that is not the signed one or not in a
format the dataset reads (CSV or Parquet, told from the bytes; a damaged Parquet file) is moved to
``inbox/refused/<submission_id>/`` with ``reason.txt`` and never ingested. A valid one moves to
``inbox/accepted/<submission_id>/`` (which remembers its id) and goes the land -> validate ->
publish path of any file (:func:`ingest_file`) into the dataset's tier, every row's partner_id
taken from the envelope. After a pass that published partner data, the disclosure-controlled public
aggregates are published again from the restricted tier (pipelines.stages.publish_aggregates),
then every partner's extract (pipelines.orchestration.extracts). Keys are handed in by the
caller (the Airflow task resolves them from connections) or read from the partners'
environment variables, and never written.

Each submission also leaves a flag file (:data:`NEW_SUBMISSION_FLAG`) that the ``partner_inbox``
DAG's asset watcher consumes to schedule an ingest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.common.errors import ScdxError
from pipelines.common.settings import Settings
from pipelines.contracts import Contract, ContractError, Partner, PartnerRegistry, Registry
from pipelines.orchestration.dag_support import NEW_SUBMISSION_FLAG, partner_inbox_dir
from pipelines.orchestration.extracts import write_partner_extracts
from pipelines.orchestration.refresh import ingest_file
from pipelines.sources import source_module
from pipelines.sources.formats import parquet_damage, sniff
from pipelines.sources.formats import refusal as format_refusal
from pipelines.stages.publish_aggregates import PARTNER_DATASETS, publish_flow_aggregates
from pipelines.store.layout import Layout

log = logging.getLogger("scdx.inbox")

ENVELOPE_SUFFIX = ".envelope.json"
SUBMISSION_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}$")


@dataclass(frozen=True)
class Envelope:
    """What a partner signs about one submitted file."""

    submission_id: str
    partner_id: str
    dataset: str
    file_name: str
    sha256: str
    submitted_at: str
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """The canonical JSON the signature is computed over (every field but the signature)."""
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def signed_with(self, key: bytes) -> str:
        return hmac.new(key, self.signed_bytes(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What became of one submission: ``published`` (or the run's status), ``refused`` or ``failed``."""

    submission_id: str
    partner_id: str
    dataset: str
    status: str
    reason: str = ""
    run_id: str | None = None


def inbox_dir(settings: Settings) -> Path:
    return partner_inbox_dir(settings.data_dir)


def submit(inbox: Path, partner_id: str, dataset: str, path: Path, key: bytes) -> Path:
    """Put a copy of ``path`` and its envelope, signed with ``key``, in the inbox; the envelope's path."""
    data = path.read_bytes()
    now = datetime.now(UTC)
    submission_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(8)}"
    # Named by what the bytes are, not what the partner called the file (a suffix is a claim).
    suffix = {"parquet": ".parquet", "csv": ".csv"}.get(sniff(path).kind, path.suffix.lower() or ".bin")
    unsigned = Envelope(
        submission_id,
        partner_id,
        dataset,
        f"{submission_id}{suffix}",
        hashlib.sha256(data).hexdigest(),
        now.isoformat(),
    )
    envelope = Envelope(**{**asdict(unsigned), "signature": unsigned.signed_with(key)})
    inbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    (inbox / envelope.file_name).write_bytes(data)
    target = inbox / f"{submission_id}{ENVELOPE_SUFFIX}"
    # Written aside and renamed: an ingest running meanwhile never reads half an envelope.
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(asdict(envelope), indent=2) + "\n", encoding="utf-8")
    partial.replace(target)
    (inbox / NEW_SUBMISSION_FLAG).touch()
    return target


def _read_envelope(path: Path) -> Envelope | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        envelope = Envelope(**{k: str(raw[k]) for k in Envelope.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not SUBMISSION_ID.match(envelope.submission_id) or Path(envelope.file_name).name != envelope.file_name:
        return None
    return envelope


def pending_partners(inbox: Path) -> set[str]:
    """The partners named by the envelopes waiting in the inbox (whose keys an ingest will need)."""
    envelopes = (_read_envelope(path) for path in inbox.glob(f"*{ENVELOPE_SUFFIX}"))
    return {envelope.partner_id for envelope in envelopes if envelope is not None}


def _key(partner: Partner, keys: Mapping[str, bytes] | None) -> bytes:
    """The partner's key as the caller handed it in, else from its environment variable."""
    if keys is not None and partner.id in keys:
        return keys[partner.id]
    return partner.key()


def refusal(
    envelope: Envelope,
    inbox: Path,
    partners: PartnerRegistry,
    registry: Registry,
    keys: Mapping[str, bytes] | None = None,
) -> str | None:
    """Why this submission is refused, or None when it is authentic, allowed and new."""
    partner = partners.find(envelope.partner_id)
    if partner is None:
        return f"unknown partner {envelope.partner_id!r}"
    try:
        key = _key(partner, keys)
    except ContractError as exc:
        return f"cannot verify: {exc}"
    if not hmac.compare_digest(envelope.signed_with(key), envelope.signature):
        return f"bad signature: not signed with the key of partner {partner.id}"
    if envelope.dataset not in partner.datasets or envelope.dataset not in registry.contracts:
        return f"partner {partner.id} may not submit dataset {envelope.dataset!r}"
    if not registry.get(envelope.dataset).source.inbox:
        return f"dataset {envelope.dataset!r} is not submitted by partners"
    if (inbox / "accepted" / envelope.submission_id).exists():
        return f"replayed submission: {envelope.submission_id} was already accepted"
    body = inbox / envelope.file_name
    if not body.is_file() or hashlib.sha256(body.read_bytes()).hexdigest() != envelope.sha256:
        return "the file is not the one signed (sha256 differs or file missing)"
    return unreadable(registry.get(envelope.dataset), body)


def unreadable(contract: Contract, body: Path) -> str | None:
    """Why a signed file is not one its dataset's source reads (damaged Parquet included), or None."""
    kind = sniff(body, whole=True)
    why = format_refusal(source_module(contract.source.module).FORMATS, kind)
    if why is None and kind.kind == "parquet":
        why = parquet_damage(body)
    return None if why is None else f"{contract.dataset}: {body.name}: {why}"


def _set_aside(inbox: Path, envelope_path: Path, name: str, body: Path | None, reason: str) -> Path:
    """Move a refused submission to ``inbox/refused/<name>/`` with its reason."""
    target = inbox / "refused" / name
    while target.exists():
        target = target.with_name(f"{target.name}+")
    target.mkdir(parents=True, mode=0o700)
    shutil.move(envelope_path, target / envelope_path.name)
    if body is not None and body.is_file():
        shutil.move(body, target / body.name)
    (target / "reason.txt").write_text(reason + "\n", encoding="utf-8")
    return target


def ingest_inbox(
    settings: Settings,
    registry: Registry,
    partners: PartnerRegistry,
    keys: Mapping[str, bytes] | None = None,
) -> list[Outcome]:
    """Verify and ingest every submission waiting in the inbox, oldest id first.

    ``keys`` maps partner ids to signing keys resolved by the caller (Airflow task code reads
    them from connections); a partner not in it is verified with the key in its environment
    variable."""
    inbox = inbox_dir(settings)
    outcomes = []
    for envelope_path in sorted(inbox.glob(f"*{ENVELOPE_SUFFIX}")):
        envelope = _read_envelope(envelope_path)
        if envelope is None:
            name = envelope_path.name.removesuffix(ENVELOPE_SUFFIX)
            _set_aside(inbox, envelope_path, name, None, "malformed envelope")
            outcomes.append(Outcome(name, "", "", "refused", "malformed envelope"))
            continue
        reason = refusal(envelope, inbox, partners, registry, keys)
        if reason is not None:
            _set_aside(inbox, envelope_path, envelope.submission_id, inbox / envelope.file_name, reason)
            # The reason names partners: it stays in the inbox (owner-only), not in the logs.
            log.warning(
                "submission %s refused; why: inbox/refused/%s/reason.txt", *[envelope.submission_id] * 2
            )
            outcomes.append(
                Outcome(envelope.submission_id, envelope.partner_id, envelope.dataset, "refused", reason)
            )
            continue
        outcomes.append(_accept(settings, registry, inbox, envelope_path, envelope))
    if any(o.status == "published" and o.dataset in PARTNER_DATASETS for o in outcomes):
        # The public aggregates follow every restricted publish of partner data, once per pass, and
        # every partner's extract follows them (its own rows, and the aggregates all partners see).
        publish_flow_aggregates(Layout(settings.data_dir), registry, settings.keep_versions)
        write_partner_extracts(settings, partners)
    return outcomes


def _accept(
    settings: Settings, registry: Registry, inbox: Path, envelope_path: Path, envelope: Envelope
) -> Outcome:
    """Keep a verified submission (its id is now used) and ingest it."""
    kept = inbox / "accepted" / envelope.submission_id
    kept.mkdir(parents=True, mode=0o700)
    shutil.move(envelope_path, kept / envelope_path.name)
    body = kept / envelope.file_name
    shutil.move(inbox / envelope.file_name, body)
    submission = {"partner_id": envelope.partner_id, "submission_id": envelope.submission_id}
    contract = registry.get(envelope.dataset)
    try:
        run = ingest_file(contract, registry, settings, body, submission=submission)
    except ScdxError as exc:
        # The error may quote the partner's rows: the outcome carries it to the owner, not the logs.
        log.warning("submission %s failed (%s)", envelope.submission_id, type(exc).__name__)
        return Outcome(envelope.submission_id, envelope.partner_id, envelope.dataset, "failed", str(exc))
    log.info("submission %s: %s", envelope.submission_id, run.status)
    return Outcome(
        envelope.submission_id, envelope.partner_id, envelope.dataset, run.status, run_id=run.run_id
    )
