"""Session-wide real infrastructure: one Kafka broker, one PostgreSQL server.

Each test gets its own namespace: a topic prefix, consumer groups under it and a
database schema per service, so tests never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer
from arbor_shared.settings import KafkaSettings
from tests.infra import KafkaHandle, PostgresHandle, start_kafka, start_postgres


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
    # A developer can point the suite at a broker that is already running; namespaces
    # keep the tests apart from whatever else uses it.
    if bootstrap := os.environ.get("ARBOR_TEST_KAFKA_BOOTSTRAP"):
        yield KafkaHandle(state_dir=Path(), bootstrap=bootstrap)
        return
    handle = start_kafka(tmp_path_factory.mktemp("kafka"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresHandle]:
    if url := os.environ.get("ARBOR_TEST_DATABASE_URL"):
        admin = url.rpartition("/")[0] + "/postgres"
        yield PostgresHandle(state_dir=Path(), url=url, admin_url=admin)
        return
    # PostgreSQL runs as an unprivileged user when the tests run as root, and pytest's
    # own temporary folders are private to root, so the cluster lives in its own.
    state_dir = Path(tempfile.mkdtemp(prefix="arbor-pg-"))
    state_dir.chmod(0o755)
    handle = start_postgres(state_dir)
    yield handle
    handle.stop()
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer(tmp_path_factory.mktemp("issuer"))


@dataclass(frozen=True)
class Namespace:
    """Names private to one test."""

    name: str
    kafka: KafkaHandle
    postgres: PostgresHandle
    issuer: LocalIssuer

    def schema(self, service: str) -> str:
        return f"{self.name}_{service.replace('-', '_')}"

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap=self.kafka.bootstrap, topic_prefix=self.name, topic_partitions=3
        )

    def env(self, service: str, prefix: str, port: int) -> dict[str, str]:
        """Environment variables configuring ``service`` for this namespace."""
        return {
            f"{prefix}DATABASE_URL": self.postgres.url,
            f"{prefix}DATABASE_SCHEMA": self.schema(service),
            f"{prefix}KAFKA__BOOTSTRAP": self.kafka.bootstrap,
            f"{prefix}KAFKA__TOPIC_PREFIX": self.name,
            f"{prefix}KAFKA__TOPIC_PARTITIONS": "3",
            f"{prefix}OIDC_ISSUER": ISSUER,
            f"{prefix}OIDC_AUDIENCE": AUDIENCE,
            f"{prefix}OIDC_JWKS_URL": self.issuer.jwks_url,
            f"{prefix}HTTP_PORT": str(port),
        }


@pytest.fixture
async def namespace(
    kafka: KafkaHandle, postgres: PostgresHandle, issuer: LocalIssuer
) -> AsyncIterator[Namespace]:
    created = Namespace(f"t{uuid.uuid4().hex[:10]}", kafka, postgres, issuer)
    yield created
    await _delete_topics(kafka.bootstrap, f"{created.name}.")


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    # Every partition holds open, memory-mapped index files on the one broker; a
    # suite that kept every test's topics would exhaust the broker's file handles
    # and memory maps long before it finished.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
