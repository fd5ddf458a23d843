"""aiokafka clients with every safety-relevant setting explicit.

aiokafka's defaults are the unsafe ones (``acks=1``, no idempotence, auto-commit,
start at latest, read uncommitted), so nothing here relies on a default.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from arbor_shared.settings import KafkaSettings


def _connection(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "client_id": client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
        "retry_backoff_ms": 200,
        "metadata_max_age_ms": 60_000,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=settings.ssl_cafile)
    if settings.sasl_mechanism:
        password = settings.sasl_password
        options |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options


def consumer_options(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    """Options for a group-less reader (review tools): reads committed data only."""
    return {
        **_connection(settings, client_id),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }


def create_producer(settings: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica."""
    return AIOKafkaProducer(
        **_connection(settings, client_id),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1_048_576,
        max_request_size=1_048_576,
        compression_type=None,
    )


def create_consumer(
    settings: KafkaSettings, *, group_id: str, client_id: str, topics: list[str]
) -> AIOKafkaConsumer:
    """A group consumer that commits only when told and reads committed data."""
    return AIOKafkaConsumer(
        *topics,
        **_connection(settings, client_id),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.max_poll_records,
        max_partition_fetch_bytes=1_048_576,
        fetch_max_wait_ms=100,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=max(settings.session_timeout_ms // 6, 500),
        max_poll_interval_ms=300_000,
        rebalance_timeout_ms=30_000,
    )


async def ensure_topics(settings: KafkaSettings, names: list[str]) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(**_connection(settings, "arbor-admin"))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
            )
            for name in names
            if name not in existing
        ]
        if missing:
            await _create(admin, missing)
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    try:
        await admin.create_topics(topics)
    except TopicAlreadyExistsError:
        # Another replica created them between our listing and our request.
        return
