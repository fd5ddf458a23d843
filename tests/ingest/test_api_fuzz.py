"""Fuzzing the canonical API: no input makes it fail, none that breaks the contract
is accepted, and every refusal names a field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from arbor_ingest.config import IngestSettings
from arbor_shared.events import model_for
from tests.conftest import Namespace
from tests.ingest.conftest import SignedClient, ingest_settings
from tests.ingest.test_api import invoice, payment

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["EUR", "XYZ", "2024-02-30", "2024-03-01T09:00:00", "inv-1"])
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
TEMPLATES = [
    invoice("inv-1"),
    invoice("inv-2", amount=0),
    payment("pay-1", 500, [("inv-1", 300)]),
    payment("pay-2", 700, [("inv-9", 700)], provider_payment_id="ch_9"),
]


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    event: dict[str, Any] = orjson.loads(orjson.dumps(draw(st.sampled_from(TEMPLATES))))
    event["id"] = f"ev-{draw(st.integers(0, 50))}"
    for _ in range(draw(st.integers(0, 2))):
        data = event.get("data")
        target = data if isinstance(data, dict) and draw(st.booleans()) else event
        keys = [*sorted(target), "unexpected"]
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(JSON)
    return event


def _accepted_data_is_valid(event: Any) -> None:
    model = model_for(event["type"])
    try:
        model.model_validate_json(orjson.dumps(event["data"]))
    except ValidationError as exc:
        raise AssertionError(f"accepted an invalid event: {exc}") from exc


@pytest.fixture
def settings(namespace: Namespace) -> IngestSettings:
    """The app of these tests: fuzzing is about input, not the rate limit."""
    return ingest_settings(namespace, rate_per_second=1e6, rate_burst=1_000_000)


FUZZ = fuzz_settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(events=st.lists(mutated_events(), min_size=1, max_size=6))
async def test_fuzzed_batches_answer_per_item_and_never_fail(
    client: SignedClient, events: list[Any]
) -> None:
    response = await client.post("/v1/events:batch", {"events": events})

    assert response.status_code == 200, response.text
    for n, result in enumerate(response.json()["results"]):
        assert result["index"] == n
        if result["status"] == "rejected":
            assert result["errors"], result
            for problem in result["errors"]:
                assert problem["field"].startswith(f"events[{n}]")
                assert problem["reason"]
        else:
            _accepted_data_is_valid(events[n])


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=64),
        JSON.map(orjson.dumps),
        mutated_events().map(orjson.dumps),
    )
)
async def test_fuzzed_single_events_get_2xx_or_a_named_422(
    client: SignedClient, body: bytes
) -> None:
    response = await client.post("/v1/events", body)

    assert response.status_code in (202, 422), response.text
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert isinstance(detail, list)
        assert all(p["field"] and p["msg"] for p in detail)
    else:
        _accepted_data_is_valid(orjson.loads(body))
