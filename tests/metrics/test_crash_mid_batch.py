"""F3: metrics killed mid-batch, restarted: every KPI still equals the CSV's.

The first life exits hard right after a batch commits and before its offsets do, so
the batch is redelivered; the second is killed with SIGKILL part-way through; the
third finishes. The inbox and the insert-only facts must make the redelivery a no-op.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from arbor_metrics.adapters.tables import invoice_snapshots
from arbor_metrics.bootstrap import MIGRATIONS
from arbor_metrics.config import MetricsSettings
from arbor_metrics.entrypoints.rebuild import digest_of, rebuild
from arbor_shared import topics
from arbor_shared.db import create_engine
from tests.conftest import Namespace
from tests.e2e.processes import ServiceProcess, free_port
from tests.metrics import ibm_reference as ref
from tests.metrics.ibm_facts import ledger_records
from tests.support import create_topics, eventually, migrate, produce, service_settings

DATA = ref.rows()


async def _stored(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count: int | None = await connection.scalar(
            sa.select(sa.func.count()).select_from(invoice_snapshots)
        )
    return count or 0


async def test_killed_mid_batch_then_restarted_kpis_stay_exact(
    namespace: Namespace, tmp_path: Path
) -> None:
    settings = service_settings(MetricsSettings, namespace, "metrics")
    await migrate(MIGRATIONS, settings)
    await create_topics(namespace)
    await produce(
        namespace.kafka.bootstrap,
        f"{namespace.name}.{topics.LEDGER}",
        ledger_records(DATA),
    )
    env = namespace.env("metrics", "ARBOR_METRICS_", free_port())
    env["ARBOR_METRICS_KAFKA__MAX_POLL_RECORDS"] = "200"
    metrics = ServiceProcess(
        "arbor_metrics", env, int(env["ARBOR_METRICS_HTTP_PORT"]), tmp_path / "m.log"
    )
    engine = create_engine(namespace.postgres.url, settings.database_schema)
    total = 2 * len(DATA)

    metrics.start(extra_env={"ARBOR_FAILPOINTS": "consumer_after_commit"})
    assert await metrics.wait_exit() == 137
    first = await _stored(engine)
    assert 0 < first < total

    metrics.start()

    async def progressed() -> bool:
        return first < await _stored(engine) < total

    await eventually(progressed, timeout=60)
    metrics.kill()

    metrics.start()
    await metrics.wait_ready()

    async def complete() -> bool:
        return await _stored(engine) == total

    await eventually(complete, timeout=120)
    token = namespace.issuer.mint("ops", roles=("operator",))
    async with httpx.AsyncClient(
        base_url=metrics.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        for as_of in (date(2013, 6, 30), date(2014, 1, 31)):
            response = await client.get(
                "/v1/kpis", params={"as_of": as_of.isoformat(), "currency": "USD"}
            )
            wanted = ref.expected(DATA, as_of, None)
            assert ref.subset(response.json(), wanted) == wanted
    metrics.stop()
    await engine.dispose()

    rebuilt = await rebuild(settings, schema=namespace.schema("metrics_rebuild"))
    assert rebuilt.digest == await digest_of(settings)
