"""Stripe objects with any field replaced by any JSON value: a reason, never a crash.

A webhook that raised would answer 500 and Stripe would retry it for days; every
verified delivery must end as events, an ignore reason, or a named refusal.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arbor_ingest.domain.stripe import StripePayloadError, parse_event
from arbor_ingest.domain.stripe_mapping import MAPPERS, lookup_keys, map_event
from arbor_ingest.domain.stripe_objects import Booking, Ignored, StripeDefaults
from tests.ingest.fixtures.data import envelope, object_for

DEFAULTS = StripeDefaults(country="US", time_zone="UTC", currency="USD")
BOOKINGS = {
    "payment:pi_1PgafyB7WZ01zgkWSjxsAJo3": Booking(
        "payment:pi_1PgafyB7WZ01zgkWSjxsAJo3", "cus_1", "evt_0", "in_1", "pi_1"
    ),
    "charge:ch_1PgafuB7WZ01zgkWXYmPNZs8": Booking(
        "charge:ch_1PgafuB7WZ01zgkWXYmPNZs8", "cus_1", "evt_0", None, "ch_1"
    ),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = [
    "id", "customer", "currency", "amount", "amount_due", "amount_paid",
    "amount_received", "amount_remaining", "total", "invoice", "charge",
    "payment_intent", "latest_charge", "lines", "refunds", "status", "due_date",
    "effective_at", "status_transitions", "address", "metadata", "created",
    "payment_method_types", "payment_method_details", "preferred_locales", "name",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@example("customer.created", {"created": 2**40}, False)
@example("invoice.finalized", {"due_date": -(2**40)}, False)
@given(
    st.sampled_from(sorted(MAPPERS)),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
    st.booleans(),
)
def test_any_field_of_a_mapped_type_yields_an_outcome_or_a_named_refusal(
    event_type: str, changes: dict[str, Any], booked: bool
) -> None:
    obj = object_for(event_type) | changes
    event = parse_event(orjson.dumps(envelope(event_type, obj, event_id="evt_f")))

    assert all(":" in key for key in lookup_keys(event))
    try:
        outcome = map_event(event, BOOKINGS if booked else {}, DEFAULTS)
    except StripePayloadError as exc:
        refusal = str(exc)
        assert refusal
        return
    assert outcome.reason if isinstance(outcome, Ignored) else outcome.events
