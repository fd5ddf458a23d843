"""The operations API: definitions, preview, activation, membership history, auth."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from arbor_shared import topics
from tests.segmentation.conftest import Service, Start, customer
from tests.support import eventually

CARD_FIRST = {
    "description": "card payers apart",
    "default_cohort": "standard",
    "rules": [
        {
            "name": "card-payers",
            "priority": 10,
            "expression": 'payment_method == "card"',
        },
        {
            "name": "german",
            "priority": 20,
            "expression": 'country == "DE"',
        },
    ],
}


async def _customers(service: Service) -> None:
    await service.send(
        customer("cus-1", payment_method="card"),
        customer("cus-2", payment_method="card", country="FR", time_zone="UTC"),
        customer("cus-3", payment_method="direct_debit"),
        customer("cus-4", country="FR", time_zone="UTC"),
    )
    await service.read(topics.COHORTS, 4)


async def test_preview_counts_equal_what_activation_then_publishes(
    start_segmentation: Start,
) -> None:
    async with start_segmentation() as service:
        await _customers(service)
        preview = await service.http.post(
            "/v1/cohorts:preview", json=CARD_FIRST, headers=service.operator
        )
        created = await service.http.post(
            "/v1/cohorts", json=CARD_FIRST, headers=service.operator
        )
        version = created.json()["version"]
        started = await service.http.post(
            f"/v1/cohorts/{version}/activations", headers=service.operator
        )
        activation = await _finished(service, started.json()["id"])
        moves = await service.read(topics.COHORTS, 4 + activation["moved"])

    assert (preview.status_code, created.status_code, started.status_code) == (
        200,
        201,
        202,
    )
    flows = {(f["from_cohort"], f["to_cohort"]): f for f in preview.json()["flows"]}
    assert flows[("standard", "card-payers")]["count"] == 2
    assert flows[("direct-debit", "german")]["samples"] == ["cus-3"]
    assert preview.json()["moving"] == activation["moved"] == 3
    rescored = [m for m in moves if m["definition_version"] == version]
    published = {(m["customer_id"], m["from_cohort"], m["to_cohort"]) for m in rescored}
    assert published == {
        ("cus-1", "standard", "card-payers"),
        ("cus-2", "standard", "card-payers"),
        ("cus-3", "direct-debit", "german"),
    }
    assert len(rescored) == 3
    assert (activation["processed"], activation["progress"]) == (4, 1.0)


async def test_report_shows_overlaps_with_winner_and_default_only_customers(
    start_segmentation: Start,
) -> None:
    async with start_segmentation() as service:
        await _customers(service)
        response = await service.http.post(
            "/v1/cohorts:preview", json=CARD_FIRST, headers=service.operator
        )
        created = await service.http.post(
            "/v1/cohorts", json=CARD_FIRST, headers=service.operator
        )
        stored = await service.http.get(
            f"/v1/cohorts/{created.json()['version']}/report", headers=service.operator
        )

    report = response.json()
    assert stored.json()["overlaps"] == report["overlaps"]
    assert stored.json()["gaps"] == report["gaps"]
    assert report["overlaps"] == [
        {
            "rules": ["card-payers", "german"],
            "winner": "card-payers",
            "count": 1,
            "samples": ["cus-1"],
        }
    ]
    assert report["gaps"] == {
        "default_cohort": "standard",
        "count": 1,
        "samples": ["cus-4"],
    }


async def test_invalid_definitions_are_rejected_naming_rule_and_reason(
    start_segmentation: Start,
) -> None:
    rules = [
        {"name": "typo", "priority": 1, "expression": "on_time_rat_90 < 0.5"},
        {"name": "broken", "priority": 2, "expression": "tenure_days >"},
        {"name": "mistyped", "priority": 3, "expression": 'tenure_days > "long"'},
        {"name": "everyone", "priority": 4, "expression": "true"},
        {"name": "shadowed", "priority": 5, "expression": "tenure_days > 10"},
        {"name": "twin", "priority": 5, "expression": "invoices_settled > 1"},
    ]
    body = {"default_cohort": "standard", "rules": rules}
    async with start_segmentation() as service:
        created = await service.http.post(
            "/v1/cohorts", json=body, headers=service.operator
        )
        previewed = await service.http.post(
            "/v1/cohorts:preview", json=body, headers=service.operator
        )

    assert created.status_code == previewed.status_code == 422
    reasons: dict[str, list[str]] = {}
    for problem in created.json()["detail"]:
        reasons.setdefault(problem["loc"][-1], []).append(problem["msg"])
    assert reasons["typo"] == ["unknown feature on_time_rat_90"]
    assert reasons["broken"][0].startswith("the expression does not parse")
    assert reasons["mistyped"][0].startswith("type error")
    assert reasons["shadowed"] == ["unreachable: everyone before it always holds"]
    assert "priority 5 is also shadowed's" in reasons["twin"]
    assert "everyone" not in reasons


async def test_membership_as_of_answers_cohort_and_reason_across_moves(
    start_segmentation: Start,
) -> None:
    async with start_segmentation() as service:
        await service.send(customer("cus-1", payment_method="direct_debit"))
        await service.read(topics.COHORTS, 1)
        await service.send(customer("cus-1", payment_method="card"))
        moves = await service.read(topics.COHORTS, 2)
        before = datetime.fromisoformat(moves[1]["changed_at"]) - timedelta(
            microseconds=1
        )
        then = await _membership(service, "cus-1", before)
        now = await _membership(service, "cus-1", None)
        never = await _membership(service, "cus-1", before - timedelta(days=1))
        naive = await service.http.get(
            "/v1/customers/cus-1/cohorts",
            params={"as_of": "2024-01-01T00:00:00"},
            headers=service.operator,
        )

    assert (then["cohort"], then["current"]["rule"]) == ("direct-debit", "direct-debit")
    assert then["current"]["features"] == {"payment_method": "direct_debit"}
    assert (now["cohort"], now["current"]["rule"]) == ("standard", "default")
    first, second = now["history"]
    assert [first["to_cohort"], second["to_cohort"]] == ["direct-debit", "standard"]
    assert first["valid_to"] == second["valid_from"] == moves[1]["changed_at"]
    assert second["valid_to"] is None
    assert never["cohort"] is None
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["loc"] == ["query", "as_of"]


async def test_operations_api_requires_the_operator_role(
    start_segmentation: Start,
) -> None:
    async with start_segmentation() as service:
        token = service.namespace.issuer.mint("cus-1", roles=("customer",))
        as_customer = {"Authorization": f"Bearer {token}"}
        forbidden = await service.http.get("/v1/cohorts", headers=as_customer)
        anonymous = await service.http.get("/v1/cohorts")
        preview = await service.http.post(
            "/v1/cohorts:preview", json=CARD_FIRST, headers=as_customer
        )
        allowed = await service.http.get("/v1/cohorts", headers=service.operator)

    assert (forbidden.status_code, preview.status_code) == (403, 403)
    assert anonymous.status_code == 401
    assert allowed.status_code == 200
    assert [d["status"] for d in allowed.json()] == ["active"]


async def test_an_activated_tenure_rule_moves_customers_as_their_tenure_passes(
    start_segmentation: Start,
) -> None:
    first_year = {
        "description": "the first year apart",
        "default_cohort": "established",
        "rules": [
            {"name": "first-year", "priority": 10, "expression": "tenure_days < 365"}
        ],
    }
    async with start_segmentation(clock="event") as service:
        await service.advance_clock(datetime(2024, 2, 1, 12, tzinfo=UTC))
        await service.send(customer("cus-1", started_on=date(2023, 12, 1)))
        await service.read(topics.COHORTS, 1)
        created = await service.http.post(
            "/v1/cohorts", json=first_year, headers=service.operator
        )
        started = await service.http.post(
            f"/v1/cohorts/{created.json()['version']}/activations",
            headers=service.operator,
        )
        await _finished(service, started.json()["id"])
        # A year of tenure on 30 November 2024, with no event for the customer.
        await service.advance_clock(datetime(2024, 12, 1, 9, tzinfo=UTC))
        changes = await service.read(topics.COHORTS, 3)

    assert [c["to_cohort"] for c in changes] == [
        "new-customers",
        "first-year",
        "established",
    ]
    assert changes[2]["changed_at"].startswith("2024-12-01T09:00")


async def _finished(service: Service, activation_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        response = await service.http.get(
            f"/v1/cohorts/activations/{activation_id}", headers=service.operator
        )
        body: dict[str, Any] = response.json()
        return body if body["status"] == "done" else None

    return await eventually(done)


async def _membership(
    service: Service, customer_id: str, as_of: datetime | None
) -> dict[str, Any]:
    params = {"as_of": as_of.isoformat()} if as_of else {}
    response = await service.http.get(
        f"/v1/customers/{customer_id}/cohorts", params=params, headers=service.operator
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
