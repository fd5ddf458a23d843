"""The one-pass validation of a batch agrees with the item-by-item parser."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbor_cli.publisher import event_id
from arbor_cli.simulator import Simulation
from arbor_ingest.entrypoints.parsing import (
    MAX_MINOR,
    InvalidSubmissionError,
    parse_event,
)
from arbor_ingest.entrypoints.submissions import parse_batch, parse_one
from arbor_shared.events import ClockAdvanced, EventData
from tests.ingest.test_api import invoice, payment
from tests.ingest.test_api_fuzz import mutated_events


def simulated(count: int) -> list[dict[str, Any]]:
    simulation = Simulation(seed=3, customers=30, start=date(2025, 1, 1))
    events: list[EventData] = [
        e for e in simulation.events() if not isinstance(e, ClockAdvanced)
    ][:count]
    return [
        {
            "id": event_id(e),
            "type": e.event_type,
            "data": orjson.loads(e.model_dump_json()),
        }
        for e in events
    ]


def item_by_item(raw: Any) -> tuple[str, EventData] | None:
    try:
        return parse_event(raw)
    except InvalidSubmissionError:
        return None


def agree(
    fast: tuple[str, EventData] | None, slow: tuple[str, EventData] | None, raw: Any
) -> bool:
    """The same event, or one without an id given a fresh id by both."""
    if fast is None or slow is None:
        return fast is slow
    given_id = isinstance(raw, dict) and "id" in raw
    return fast[1] == slow[1] and (fast[0] == slow[0] or not given_id)


def test_batch_of_simulated_events_parses_as_item_by_item() -> None:
    events = simulated(600)
    assert len({e["type"] for e in events}) >= 5

    parsed = parse_batch(orjson.dumps({"events": events}), limit=5000)

    assert parsed == [item_by_item(e) for e in events]


@settings(max_examples=400, deadline=None)
@given(event=mutated_events())
def test_one_pass_accepts_only_what_the_item_parser_accepts(event: Any) -> None:
    body = orjson.dumps(event)

    fast, slow = parse_one(body), item_by_item(event)

    if fast is not None:
        assert agree(fast, slow, event)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(mutated_events(), min_size=1, max_size=5))
def test_one_pass_batch_is_all_or_nothing(events: list[Any]) -> None:
    parsed = parse_batch(orjson.dumps({"events": events}), limit=5000)

    slow = [item_by_item(e) for e in events]
    if None in slow:
        assert parsed is None
    elif parsed is not None:
        assert all(map(agree, parsed, slow, events))


def _with(event: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {**event, "data": {**event["data"], **data}}


@pytest.mark.parametrize(
    "event",
    [
        _with(invoice(), amount_minor=256.0),
        _with(invoice(), amount_minor="100"),
        _with(invoice(), amount_minor=True),
        _with(invoice(), amount_minor=MAX_MINOR + 1),
        _with(payment(), amount_minor=-(MAX_MINOR + 1)),
        _with(invoice(), unexpected=1),
        {**invoice(), "type": "ClockAdvanced"},
        {**invoice(), "type": "InvoiceSettled"},
        {**invoice(), "extra": 1},
    ],
)
def test_one_pass_leaves_every_doubt_to_the_item_parser(event: Any) -> None:
    assert parse_one(orjson.dumps(event)) is None
    assert parse_batch(orjson.dumps({"events": [event]}), limit=10) is None


def test_one_pass_leaves_batches_outside_the_limit_to_the_item_parser() -> None:
    assert parse_batch(orjson.dumps({"events": []}), limit=10) is None
    assert parse_batch(orjson.dumps({"events": [invoice()] * 3}), limit=2) is None
    assert parse_batch(orjson.dumps({"events": [invoice()], "x": 1}), limit=9) is None


def test_the_largest_amount_passes_either_way() -> None:
    event = _with(invoice(), amount_minor=MAX_MINOR)

    assert item_by_item(event) is not None
    assert parse_one(orjson.dumps(event)) in (None, item_by_item(event))
