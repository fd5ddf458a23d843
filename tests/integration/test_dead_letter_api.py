"""Operators review a service's dead letters over HTTP; customers may not."""

from __future__ import annotations

import httpx

from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared import topics
from tests.conftest import Namespace
from tests.support import eventually, migrate, produce, running, service_settings


async def test_operator_lists_dead_letters_with_reasons_and_customer_is_refused(
    namespace: Namespace,
) -> None:
    settings = service_settings(MetricsSettings, namespace, "metrics")
    await migrate(MIGRATIONS, settings)
    app = create_app(settings)
    operator = namespace.issuer.mint("ops", roles=("operator",))
    customer = namespace.issuer.mint("cus-1")
    async with running(app):
        await produce(
            namespace.kafka.bootstrap,
            f"{namespace.name}.{topics.LEDGER}",
            [(b"cus-1", b"\xff not json", [])],
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

            async def listed() -> list[dict[str, object]]:
                response = await http.get(
                    "/v1/ops/dead-letters",
                    params={"topic": topics.LEDGER},
                    headers={"Authorization": f"Bearer {operator}"},
                )
                assert response.status_code == 200
                letters: list[dict[str, object]] = response.json()
                return letters

            letters = await eventually(listed)
            refused = await http.get(
                "/v1/ops/dead-letters",
                params={"topic": topics.LEDGER},
                headers={"Authorization": f"Bearer {customer}"},
            )
            anonymous = await http.get(
                "/v1/ops/dead-letters", params={"topic": topics.LEDGER}
            )

    assert [(d["reason"], d["consumer"]) for d in letters] == [
        ("bad_envelope", "metrics.kpis")
    ]
    assert refused.status_code == 403
    assert anonymous.status_code == 401
