"""The event contract: committed schemas match the models; old samples still parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arbor_shared.events import EVENT_TYPES, Envelope, InvoiceIssued
from arbor_shared.events.schemas import render

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = sorted((SHARED / "samples").glob("*.json"))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_committed_schema_matches_the_model(event_type: str) -> None:
    version = EVENT_TYPES[event_type].schema_version
    committed = SHARED / "schemas" / f"{event_type}.v{version}.json"
    assert committed.read_text() == render(event_type), (
        f"the {event_type} contract changed: regenerate with "
        "`uv run python -m arbor_shared.events.schemas shared/schemas` "
        "and check that stored events still parse"
    )


def test_every_event_type_has_a_stored_sample() -> None:
    stored = {path.name.split(".")[0] for path in SAMPLES}
    assert stored == set(EVENT_TYPES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.name)
def test_stored_sample_still_parses_and_round_trips(sample: Path) -> None:
    model = EVENT_TYPES[sample.name.split(".")[0]]
    parsed = model.model_validate_json(sample.read_bytes())
    assert json.loads(parsed.model_dump_json()) == json.loads(sample.read_text())


def test_envelope_survives_kafka_headers() -> None:
    data = InvoiceIssued.model_validate_json(
        (SHARED / "samples" / "InvoiceIssued.v1.json").read_bytes()
    )
    envelope = Envelope.for_data(data, source="arbor/tests", time=data.issued_at)
    assert Envelope.from_headers(envelope.to_headers()) == envelope


def test_event_catalogue_document_lists_every_event_type() -> None:
    catalogue = (SHARED.parent / "docs" / "asyncapi.yaml").read_text()
    missing = [t for t in EVENT_TYPES if f"      name: {t}\n" not in catalogue]
    assert missing == []
