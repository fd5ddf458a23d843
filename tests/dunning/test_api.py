"""The operations API: policies and a customer's dunning page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Namespace
from tests.dunning.conftest import Harness, customer, invoice

POLICY: dict[str, Any] = {
    "steps": [
        {"name": "nudge", "offset_days": -2, "channel": "sms", "template": "courtesy"},
        {
            "name": "fee",
            "offset_days": 10,
            "channel": "email",
            "template": "late_fee",
            "fee": {"percent": "2.5", "grace_days": 5, "cap_minor": 10_000},
        },
    ],
    "rules": {"window_start": "08:00:00", "window_end": "20:00:00", "weekly_cap": 2},
    "variants": [
        {
            "name": "early",
            "weight": 30,
            "steps": [
                {
                    "name": "discount",
                    "offset_days": -10,
                    "channel": "email",
                    "template": "courtesy",
                    "incentive": {
                        "kind": "early_payment_discount",
                        "percent": "2",
                        "valid_days": 10,
                    },
                }
            ],
        }
    ],
    "holdout_percent": 10,
}


async def test_operator_creates_and_reads_a_policy_version(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/v1/policies", json={"cohort": "vip", "policy": POLICY})
    fetched = await api.get("/v1/policies/vip")
    listed = await api.get("/v1/policies")

    assert created.status_code == 201, created.text
    assert created.json()["version"] == 2  # version 1 is the seeded default
    assert fetched.json()["policy"]["steps"][1]["fee"]["percent"] == "2.5"
    assert [p["cohort"] for p in listed.json()] == ["default", "vip"]


async def test_policy_routes_need_the_operator_role(
    api: httpx.AsyncClient, namespace: Namespace
) -> None:
    customer_token = namespace.issuer.mint("cus-1", roles=("customer",))
    headers = {"Authorization": f"Bearer {customer_token}"}

    forbidden = await api.get("/v1/policies", headers=headers)
    anonymous = await api.get("/v1/policies", headers={"Authorization": ""})

    assert forbidden.status_code == 403
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": []}, "steps"),
        ({"holdout_percent": 80}, "holdout_percent"),
        ({"unknown": 1}, "unknown"),
        ({"rules": {"weekly_cap": "3"}}, "weekly_cap"),
    ],
)
async def test_invalid_policy_is_refused_naming_the_field(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await api.post(
        "/v1/policies", json={"cohort": "vip", "policy": POLICY | change}
    )

    assert response.status_code == 422
    assert field in response.text


async def test_policy_breaking_a_domain_rule_is_refused_with_the_reason(
    api: httpx.AsyncClient,
) -> None:
    steps = [POLICY["steps"][1], POLICY["steps"][0]]

    response = await api.post(
        "/v1/policies", json={"cohort": "vip", "policy": POLICY | {"steps": steps}}
    )

    assert response.status_code == 422
    assert "strictly increasing" in response.json()["detail"]


async def test_unknown_cohort_policy_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/policies/nobody")).status_code == 404


async def test_customer_dunning_shows_sent_and_upcoming_with_reasons(
    api: httpx.AsyncClient, dunning: Harness
) -> None:
    await dunning.feed(customer(), invoice())
    await dunning.at(datetime(2026, 3, 13, 8, tzinfo=UTC))

    response = await api.get("/v1/customers/cus-1/dunning")
    missing = await api.get("/v1/customers/cus-404/dunning")

    body = response.json()
    assert [(a["step"], a["state"]) for a in body["sent"]] == [("courtesy", "sent")]
    assert body["sent"][0]["reason"]["facts"]["days_past_due"] == -3
    assert [a["step"] for a in body["upcoming"]] == [
        "due_today",
        "plan_offer",
        "late_fee",
        "escalation",
    ]
    assert body["upcoming"][0]["reason"]["policy_id"] == "policy-default"
    assert missing.status_code == 404
