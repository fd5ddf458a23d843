"""Profile and case features equal a direct computation, whatever the arrival order.

``test_features.py`` holds the invoice features (balances, punctuality) to a direct
computation. Here the rest: the profile a rule reads (billing cycle, payment method,
currency, country, region, time zone, acquisition channel, preferred channel,
tenure) and the cases (disputes, promises to pay, payment failures). Each arrives
from its own source, on a topic of its own, so any may come late, and a case may be
delivered again under another event id; the features must be those of the newest
facts all the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from arbor_segmentation.domain import codec, engine
from arbor_segmentation.domain.features import CustomerState, features
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_shared.events import (
    BillingDetailsChanged,
    CustomerCreated,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    EventData,
    PaymentFailed,
    PromiseToPayBroken,
    PromiseToPayKept,
    PromiseToPayMade,
)
from arbor_shared.events.billing import BillingCycle, Channel, PaymentMethod
from arbor_shared.events.collections import DisputeOutcome

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CYCLES: tuple[BillingCycle, ...] = ("monthly", "quarterly", "annual")
METHODS: tuple[PaymentMethod, ...] = ("card", "bank_transfer", "direct_debit")
CHANNELS: tuple[Channel, ...] = ("email", "sms", "letter")
REASONS = ("card declined", "insufficient funds", "mandate revoked")
PROFILE = (
    "billing_cycle",
    "payment_method",
    "currency",
    "country",
    "region",
    "time_zone",
    "acquisition_channel",
    "preferred_channel",
)


@dataclass(frozen=True)
class Timed:
    """An event and the moment its source says it happened."""

    at: datetime
    event: EventData


@dataclass(frozen=True)
class Place:
    country: str
    region: str | None
    time_zone: str
    currency: str


@dataclass(frozen=True)
class Snapshot:
    """One version of the customer record, as the customer system sends it."""

    place: Place
    billing_cycle: BillingCycle
    payment_method: PaymentMethod
    preferred_channel: Channel
    acquisition_channel: str | None
    started_on: date


@dataclass(frozen=True)
class PortalChange:
    preferred_channel: Channel | None
    time_zone: str | None


PLACES = (
    Place("DE", "EMEA", "Europe/Berlin", "EUR"),
    Place("US", "AMER", "America/New_York", "USD"),
    Place("JP", None, "Asia/Tokyo", "JPY"),
)
snapshots = st.lists(
    st.builds(
        Snapshot,
        place=st.sampled_from(PLACES),
        billing_cycle=st.sampled_from(CYCLES),
        payment_method=st.sampled_from(METHODS),
        preferred_channel=st.sampled_from(CHANNELS),
        acquisition_channel=st.one_of(st.none(), st.sampled_from(("partner", "ads"))),
        started_on=st.dates(date(2023, 1, 1), date(2024, 12, 31)),
    ),
    min_size=1,
    max_size=5,
)
portal_changes = st.lists(
    st.builds(
        PortalChange,
        preferred_channel=st.one_of(st.none(), st.sampled_from(CHANNELS)),
        time_zone=st.one_of(st.none(), st.sampled_from(("Europe/Paris", "UTC"))),
    ).filter(lambda change: change.preferred_channel or change.time_zone),
    max_size=3,
)
# Each case ends one of three ways: still open, or closed by the first or second kind
# of ending (a dispute won or lost, a promise kept or broken).
case_endings = st.lists(st.sampled_from((None, "first", "second")), max_size=4)
failure_reasons = st.lists(st.sampled_from(REASONS), max_size=4)


def _snapshot_events(found: list[Snapshot]) -> list[Timed]:
    # Versions an hour apart: the customer system's order, not the arrival order.
    timed = []
    for i, snapshot in enumerate(found):
        kind = CustomerCreated if i == 0 else CustomerUpdated
        event = kind(
            customer_id="cus-1",
            name="Acme",
            country=snapshot.place.country,
            region=snapshot.place.region,
            time_zone=snapshot.place.time_zone,
            currency=snapshot.place.currency,
            billing_cycle=snapshot.billing_cycle,
            payment_method=snapshot.payment_method,
            preferred_channel=snapshot.preferred_channel,
            acquisition_channel=snapshot.acquisition_channel,
            started_on=snapshot.started_on,
        )
        timed.append(Timed(T0 + timedelta(hours=i), event))
    return timed


def _portal_events(found: list[PortalChange]) -> list[Timed]:
    # Between the snapshots: the half hours.
    timed = []
    for i, change in enumerate(found):
        at = T0 + timedelta(hours=i, minutes=30)
        fields = [
            name
            for name in ("preferred_channel", "time_zone")
            if getattr(change, name) is not None
        ]
        event = BillingDetailsChanged(
            customer_id="cus-1",
            changed_fields=tuple(fields),
            preferred_channel=change.preferred_channel,
            time_zone=change.time_zone,
            changed_at=at,
        )
        timed.append(Timed(at, event))
    return timed


def _dispute_events(endings: list[str | None]) -> list[Timed]:
    timed = []
    for i, ending in enumerate(endings):
        at = T0 + timedelta(days=i)
        dispute = f"dsp-{i}"
        timed.append(
            Timed(
                at,
                DisputeOpened(
                    customer_id="cus-1",
                    dispute_id=dispute,
                    invoice_id=f"inv-{i}",
                    currency="EUR",
                    amount_minor=100,
                    reason="wrong amount",
                    opened_at=at,
                ),
            )
        )
        if ending is not None:
            outcome: DisputeOutcome = "won" if ending == "first" else "lost"
            resolved = DisputeResolved(
                customer_id="cus-1",
                dispute_id=dispute,
                invoice_id=f"inv-{i}",
                outcome=outcome,
                resolved_at=at + timedelta(hours=2),
            )
            timed.append(Timed(at + timedelta(hours=2), resolved))
    return timed


def _promise_events(endings: list[str | None]) -> list[Timed]:
    timed = []
    for i, ending in enumerate(endings):
        at = T0 + timedelta(days=i)
        promise, invoice = f"ptp-{i}", f"inv-{i}"
        made = PromiseToPayMade(
            customer_id="cus-1",
            promise_id=promise,
            invoice_id=invoice,
            currency="EUR",
            amount_minor=100,
            promised_date=at.date() + timedelta(days=7),
            made_at=at,
        )
        timed.append(Timed(at, made))
        ended = at + timedelta(days=7)
        if ending == "first":
            kept = PromiseToPayKept(
                customer_id="cus-1",
                promise_id=promise,
                invoice_id=invoice,
                kept_at=ended,
            )
            timed.append(Timed(ended, kept))
        elif ending == "second":
            broken = PromiseToPayBroken(
                customer_id="cus-1",
                promise_id=promise,
                invoice_id=invoice,
                promised_date=made.promised_date,
                broken_at=ended,
            )
            timed.append(Timed(ended, broken))
    return timed


def _failure_events(reasons: list[str]) -> list[Timed]:
    return [
        Timed(
            T0 + timedelta(days=i, hours=3),
            PaymentFailed(
                customer_id="cus-1",
                payment_id=f"pay-{i}",
                currency="EUR",
                amount_minor=100,
                reason=reason,
                failed_at=T0 + timedelta(days=i, hours=3),
            ),
        )
        for i, reason in enumerate(reasons)
    ]


def _expected_profile(
    found: list[Snapshot], changes: list[PortalChange], as_of: datetime
) -> dict[str, object]:
    """Each field from the newest fact that states it; a snapshot states them all."""
    newest = found[-1]
    zone = _newest_stated(found, changes, "time_zone")
    today = as_of.astimezone(ZoneInfo(zone)).date()
    values: dict[str, object] = {
        "billing_cycle": newest.billing_cycle,
        "payment_method": newest.payment_method,
        "currency": newest.place.currency,
        "country": newest.place.country,
        "region": newest.place.region or "",
        "acquisition_channel": newest.acquisition_channel or "",
        "tenure_days": max((today - newest.started_on).days, 0),
    }
    values["preferred_channel"] = _newest_stated(found, changes, "preferred_channel")
    values["time_zone"] = zone
    return values


def _newest_stated(
    found: list[Snapshot], changes: list[PortalChange], name: str
) -> str:
    """The newest value of a field both the snapshots and the portal state."""
    # Snapshot i was sent at hour i, portal change i half an hour later.
    stated = [(float(i), _snapshot_value(s, name)) for i, s in enumerate(found)]
    stated += [
        (i + 0.5, value)
        for i, change in enumerate(changes)
        if (value := getattr(change, name)) is not None
    ]
    return max(stated)[1]


def _snapshot_value(snapshot: Snapshot, name: str) -> str:
    value: str = (
        snapshot.place.time_zone if name == "time_zone" else snapshot.preferred_channel
    )
    return value


def _expected_cases(
    disputes: list[str | None], promises: list[str | None], reasons: list[str]
) -> dict[str, object]:
    return {
        "disputes_total": len(disputes),
        "disputes_open": disputes.count(None),
        "disputes_lost": disputes.count("second"),
        "promises_made": len(promises),
        "promises_broken": promises.count("second"),
        "payment_failures": len(reasons),
        "last_payment_failure_reason": reasons[-1] if reasons else "",
    }


def _replay(timed: list[Timed], as_of: datetime) -> CustomerState:
    state = CustomerState("cus-1")
    model = LatePaymentModel()
    for item in timed:
        engine.apply(state, item.event, at=item.at, as_of=as_of, model=model)
    return state


@settings(max_examples=100, deadline=None)
@given(
    snapshots,
    portal_changes,
    case_endings,
    case_endings,
    failure_reasons,
    st.randoms(use_true_random=False),
)
def test_profile_and_case_features_equal_the_newest_facts_in_any_order(
    found: list[Snapshot],
    changes: list[PortalChange],
    disputes: list[str | None],
    promises: list[str | None],
    reasons: list[str],
    shuffler: random.Random,
) -> None:
    cases = _dispute_events(disputes) + _promise_events(promises)
    timed = (
        _snapshot_events(found)
        + _portal_events(changes)
        + cases
        + _failure_events(reasons)
    )
    arrivals = shuffler.sample(timed, k=len(timed))
    # Cases are counted once per business key: a case sent again under another
    # event id (the inbox drops the same id) changes nothing.
    arrivals += shuffler.sample(cases, k=min(3, len(cases)))
    as_of = T0 + timedelta(days=30)

    values = features(_replay(arrivals, as_of), as_of)

    expected = _expected_profile(found, changes, as_of)
    expected |= _expected_cases(disputes, promises, reasons)
    assert {name: values[name] for name in expected} == expected


def test_a_state_stored_with_one_profile_time_gives_that_time_to_every_field() -> None:
    snapshot = Snapshot(PLACES[0], "monthly", "card", "email", None, date(2024, 5, 1))
    state = _replay(_snapshot_events([snapshot]), T0)
    document = codec.dump(state)
    del document["profile_times"]
    document["profile_at"] = T0.isoformat()

    loaded = codec.load(document)

    assert loaded.profile == state.profile
    assert loaded.profile_times == dict.fromkeys([*state.profile, "started_on"], T0)
    earlier = BillingDetailsChanged(
        customer_id="cus-1",
        changed_fields=("preferred_channel",),
        preferred_channel="sms",
        changed_at=T0 - timedelta(hours=1),
    )
    assert not _replay_onto(loaded, earlier).changed
    assert features(loaded, T0)["preferred_channel"] == "email"


def _replay_onto(state: CustomerState, change: BillingDetailsChanged) -> engine.Applied:
    return engine.apply(
        state, change, at=change.changed_at, as_of=T0, model=LatePaymentModel()
    )
