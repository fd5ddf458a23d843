"""How far the services are behind: records they have not consumed yet.

The backlog is read where it is kept: committed offsets against the ends of the
partitions, from the broker, and the ingest relay's outbox gauge. The services'
``consumer_lag_records`` gauges are no use here: a consumer sets them only after a
batch, so an idle one keeps showing the lag it had when it last had work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Self

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from prometheus_client.parser import text_string_to_metric_families

from arbor_shared.topics import TopicNames

# ServiceRuntime.add_consumer names every group "arbor.<service>.<consumer>", under
# the topic namespace when there is one.
GROUP_PREFIX = "arbor."
_REQUEST_TIMEOUT_MS = 10_000
_OUTBOX_GAUGE = "arbor_ingest_outbox_backlog_events"

Positions = Mapping[TopicPartition, int | None]
"""One group's committed offset per partition it owns; None where it committed none."""


def unconsumed(
    positions: Iterable[Positions],
    *,
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
) -> int:
    """Records between each group's position and the end of each of its partitions.

    A partition a group owns but never committed counts from its first offset, where
    the services' consumers begin.
    """
    return sum(
        max(ends[partition] - (starts[partition] if offset is None else offset), 0)
        for group in positions
        for partition, offset in group.items()
    )


class BrokerLag:
    """Records the arbor consumer groups have not consumed, asked of the broker."""

    def __init__(self, bootstrap: str, *, topic_prefix: str = "") -> None:
        self._bootstrap = bootstrap
        self._group_prefix = TopicNames(topic_prefix)(GROUP_PREFIX)
        self._stack = AsyncExitStack()
        self._admin: Any = None
        self._reader: Any = None

    async def __aenter__(self) -> Self:
        # aiokafka binds a client to the running loop, so both are made here.
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            client_id="arbor-feed-gate",
            request_timeout_ms=_REQUEST_TIMEOUT_MS,
        )
        await admin.start()
        self._stack.push_async_callback(admin.close)
        reader = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id="arbor-feed-gate",
            enable_auto_commit=False,
            isolation_level="read_committed",
            request_timeout_ms=_REQUEST_TIMEOUT_MS,
        )
        await reader.start()
        self._stack.push_async_callback(reader.stop)
        self._admin, self._reader = admin, reader
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def records_behind(self) -> int:
        """The sum over groups and partitions of records not yet committed."""
        listed = await self._admin.list_consumer_groups()
        groups = [g[0] for g in listed if g[0].startswith(self._group_prefix)]
        positions = [await self._positions(group) for group in groups]
        partitions = {p for group in positions for p in group}
        fresh = {p for group in positions for p, o in group.items() if o is None}
        ends = await self._reader.end_offsets(list(partitions)) if partitions else {}
        starts = await self._reader.beginning_offsets(list(fresh)) if fresh else {}
        return unconsumed(positions, starts=starts, ends=ends)

    async def _positions(self, group: str) -> dict[TopicPartition, int | None]:
        # One group per request: aiokafka 0.14 reads a v3 DescribeGroups response
        # with the v2 layout, which leaves each group's last field unread and
        # garbles every group after the first.
        described = await self._admin.describe_consumer_groups([group])
        positions: dict[TopicPartition, int | None] = dict.fromkeys(_owned(described))
        committed = await self._admin.list_consumer_group_offsets(group)
        for partition, meta in committed.items():
            positions[partition] = meta.offset if meta.offset >= 0 else None
        return positions


def _owned(responses: Iterable[Any]) -> set[TopicPartition]:
    """The partitions the members of the described groups own, from raw responses.

    Committed offsets alone would miss a partition a group has not reached yet: at
    the start of a run every group is all backlog and would look like none.
    """
    # (error_code, group, state, protocol_type, protocol, members): the assignment
    # ends every member tuple in each version of the response.
    return {
        partition
        for response in responses
        for group in response.groups
        for member in group[5]
        if member[-1]
        for partition in ConsumerProtocolMemberAssignment.decode(
            member[-1]
        ).partitions()
    }


class OutboxBacklog:
    """Events ingest has accepted and its relay has not yet put on the broker.

    Committed offsets see only what reached the broker, and ingest's outbox is the
    one the feed fills at HTTP speed, faster than a slow relay can drain it. The
    other services' outboxes fill inside their consumers' transactions, no faster
    than those consumers run, so their relays keep up; scraping their /metrics at
    every step would also take CPU from the consumers the feed is waiting for. The
    gauge, unlike consumer lag, is refreshed by the relay's rounds, idle or busy.
    """

    def __init__(self, ingest_url: str) -> None:
        self._ingest_url = ingest_url
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(base_url=self._ingest_url, timeout=5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def records_behind(self) -> int:
        """Ingest's outbox rows not yet acknowledged by the broker."""
        assert self._client is not None, "enter the backlog before asking it"
        response = await self._client.get("/metrics")
        response.raise_for_status()
        return outbox_backlog(response.text)


def outbox_backlog(exposition: str) -> int:
    """The value of ingest's outbox gauge in a Prometheus exposition; 0 if absent."""
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if sample.name == _OUTBOX_GAUGE
        )
    )
