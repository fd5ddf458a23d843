"""Re-scoring after activation: resumable, and never publishing a move twice."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from arbor_segmentation.adapters import definitions
from arbor_segmentation.adapters.definitions import Activation, DefinitionCache
from arbor_segmentation.adapters.moves import MoveCounter
from arbor_segmentation.adapters.tables import membership_history
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_segmentation.handlers import Segmenter
from arbor_shared import topics
from arbor_shared.runtime import ServiceRuntime
from tests.segmentation.conftest import Start, customer
from tests.support import eventually

CUSTOMERS = [f"cus-{i}" for i in range(5)]


class CrashError(Exception):
    pass


async def test_rescore_interrupted_mid_page_resumes_without_publishing_twice(
    start_segmentation: Start,
) -> None:
    async with start_segmentation() as service:
        await service.send(*(customer(c) for c in CUSTOMERS))
        await service.read(topics.COHORTS, len(CUSTOMERS))
        runtime: ServiceRuntime = service.app.state.runtime
        moves_before = _moves(service.app)

    activation = await _activate_everyone(runtime)
    segmenter = Segmenter(
        LatePaymentModel(),
        DefinitionCache(),
        MoveCounter.create(CollectorRegistry()),
    )
    await _rescore_page(runtime, segmenter, activation.id)
    with pytest.raises(CrashError):
        await _rescore_page(runtime, segmenter, activation.id, crash=True)

    async with start_segmentation(rescore_batch_size=2) as service:
        done = await _finished(service, activation.id)
        records = await service.read(topics.COHORTS, 2 * len(CUSTOMERS))
        history = await _history_versions(service.app.state.runtime)
        moves_after = _moves(service.app)

    rescored = [
        r for r in records if r["definition_version"] == activation.definition_version
    ]
    assert sorted(r["customer_id"] for r in rescored) == CUSTOMERS
    assert {r["to_cohort"] for r in rescored} == {"everyone"}
    assert (done["processed"], done["moved"]) == (5, 5)
    assert history == {c: [1, 2] for c in CUSTOMERS}
    assert moves_before == 5.0
    assert moves_after == 3.0


async def _activate_everyone(runtime: ServiceRuntime) -> Activation:
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        stored = await definitions.add(
            session,
            [("everyone", 1, "tenure_days >= 0", None)],
            "standard",
            description="one cohort",
            created_by="test",
            at=now,
        )
        version = stored.definition.version
        await definitions.mark_active(session, version, now)
        activation = Activation(
            id=str(uuid.uuid4()),
            definition_version=version,
            status="running",
            total=len(CUSTOMERS),
            processed=0,
            moved=0,
            cursor=None,
            requested_by="test",
            started_at=now,
            finished_at=None,
        )
        await definitions.add_activation(session, activation)
    return activation


async def _rescore_page(
    runtime: ServiceRuntime,
    segmenter: Segmenter,
    activation_id: str,
    *,
    crash: bool = False,
) -> None:
    async with runtime.sessions() as session, session.begin():
        activation = await definitions.get_activation(session, activation_id, lock=True)
        assert activation is not None
        await segmenter.rescore_batch(
            session, runtime.outbox, activation, now=runtime.clock.now(), limit=2
        )
        if crash:
            raise CrashError


async def _finished(service: Any, activation_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        response = await service.http.get(
            f"/v1/cohorts/activations/{activation_id}", headers=service.operator
        )
        body: dict[str, Any] = response.json()
        return body if body["status"] == "done" else None

    return await eventually(done)


async def _history_versions(runtime: ServiceRuntime) -> dict[str, list[int]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            sa.select(
                membership_history.c.customer_id, membership_history.c.version
            ).order_by(membership_history.c.customer_id, membership_history.c.version)
        )
    versions: dict[str, list[int]] = {}
    for customer_id, version in rows:
        versions.setdefault(customer_id, []).append(version)
    return versions


def _moves(app: Any) -> float:
    registry = app.state.runtime.metrics.registry
    total = 0.0
    for metric in registry.collect():
        if metric.name == "arbor_segmentation_cohort_moves":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total
