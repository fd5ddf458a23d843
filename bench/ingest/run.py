"""Ingest throughput and latency, against the raw producer on the same machine.

Measures, in one run:
  1. the raw aiokafka producer rate (acks=all, idempotent) for the same events: the
     ceiling any service on this machine could reach;
  2. durable accepted events per second through POST /v1/events:batch on one
     uvicorn worker (a 2xx means committed to PostgreSQL with its outbox rows), and
     the time until the relay has published all of them to Kafka;
  3. single-event POST /v1/events latency at a steady request rate.

Usage: uv run python -m bench.ingest.run [--events 100000] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from arbor_cli.publisher import event_id
from arbor_cli.simulator import Simulation
from arbor_ingest.signing import sign
from arbor_shared.events import ClockAdvanced, Envelope, EventData
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer
from bench import vegeta
from bench.common import (
    REPO,
    Infra,
    free_port,
    infrastructure,
    percentile,
    service,
    wait_ready,
    write_results,
)
from bench.ingest import raw_http
from bench.ingest.cpu import CpuMeter, postmaster_pid, server_pid

HERE = Path(__file__).resolve().parent
KEY_ID = "bench"
SECRET = secrets.token_hex(32)


def realistic_events(count: int) -> list[EventData]:
    """Customers, invoices and payments from the demo simulator, in time order."""
    simulation = Simulation(
        seed=11, customers=max(count // 20, 50), start=date(2025, 1, 1)
    )
    events = [e for e in simulation.events() if not isinstance(e, ClockAdvanced)]
    return events[:count]


async def raw_producer_rate(
    bootstrap: str, events: list[EventData]
) -> dict[str, float]:
    """Events per second, and this process's CPU per event, of a bare producer."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    topic = f"bench-raw-{secrets.token_hex(4)}"
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1_048_576,
    )
    await producer.start()
    records = [
        (
            e.customer_id.encode(),
            e.model_dump_json().encode(),
            Envelope.for_data(e, source="bench", time=datetime.now(UTC)).to_headers(),
        )
        for e in events
    ]
    started, cpu = time.perf_counter(), time.process_time()
    acks = [
        await producer.send(topic, value=value, key=key, headers=headers)
        for key, value, headers in records
    ]
    await asyncio.gather(*acks)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await producer.stop()
    return {
        "events_per_second": len(events) / elapsed,
        "cpu_us": 1e6 * cpu / len(events),
    }


def _batch_body(events: list[EventData]) -> bytes:
    return orjson.dumps(
        {
            "events": [
                {
                    "id": event_id(e),
                    "type": e.event_type,
                    "data": orjson.loads(e.model_dump_json()),
                }
                for e in events
            ]
        }
    )


def batch_bodies(events: list[EventData], batch_size: int) -> list[bytes]:
    """The events as batch request bodies of ``batch_size`` events each."""
    return [
        _batch_body(events[i : i + batch_size])
        for i in range(0, len(events), batch_size)
    ]


async def batch_rate(
    url: str, events: list[EventData], batch_size: int, concurrency: int
) -> dict[str, float]:
    bodies = batch_bodies(events, batch_size)
    latencies: list[float] = []
    accepted = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
            headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            response = await client.post(
                "/v1/events:batch", content=body, headers=headers
            )
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            accepted += orjson.loads(response.content)["accepted"]

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "events_per_second": accepted / elapsed,
        "accepted": accepted,
        "count": accepted,
        "batch_size": batch_size,
        "concurrency": concurrency,
        "batch_latency_p50_ms": percentile(latencies, 0.5) * 1000,
        "batch_latency_p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def outbox_drained(url: str, events: float) -> dict[str, float]:
    """Seconds until the relay reports an empty outbox (``events`` are counted)."""
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            text = (await client.get("/metrics")).text
            backlog = [
                line
                for line in text.splitlines()
                if line.startswith("arbor_ingest_outbox_backlog_events ")
            ]
            if backlog and float(backlog[0].split()[1]) == 0:
                return {"seconds": time.perf_counter() - started, "count": events}
            await asyncio.sleep(0.2)


# Requests in flight at once; a request beyond them waits for a free connection,
# and the wait counts in its latency.
SINGLE_EVENT_CONNECTIONS = 200


def _single_body(event: EventData) -> bytes:
    return orjson.dumps(
        {
            "id": event_id(event) + "-single",
            "type": event.event_type,
            "data": orjson.loads(event.model_dump_json()),
        }
    )


async def single_event_latency(url: str, rate: int, seconds: int) -> dict[str, float]:
    events = realistic_events(rate * seconds)
    latencies: list[float] = []
    interval = 1 / rate

    async def send(free: asyncio.Queue[raw_http.Connection], event: EventData) -> None:
        body = _single_body(event)
        headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
        headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        connection = await free.get()
        status_code = await connection.post("/v1/events", body, headers)
        free.put_nowait(connection)
        latencies.append(time.perf_counter() - started)
        if status_code >= 500:
            raise RuntimeError(f"POST /v1/events answered {status_code}")

    async with raw_http.connections(url, SINGLE_EVENT_CONNECTIONS) as free:
        tasks = []
        start = time.perf_counter()
        for n, event in enumerate(events):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(free, event)))
        await asyncio.gather(*tasks)
        achieved = len(events) / (time.perf_counter() - start)
    return {
        "count": len(events),
        "target_rps": rate,
        "achieved_rps": achieved,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def single_event_open_loop(url: str, rate: int, seconds: int) -> dict[str, float]:
    """The same requests from vegeta, on a fixed schedule and off the Python heap.

    The bodies are signed up front (the signature's timestamp stays within the
    tolerance for a run of a few minutes), so the generator only sends; it costs
    the two cores a fraction of what the Python client does.
    """
    events = realistic_events(rate * seconds)
    targets = []
    for event in events:
        # Customers of their own (every business id derives from the customer's),
        # so that nothing the earlier runs booked makes these duplicates.
        body = _single_body(event).replace(b'-single"', b'-open-loop"', 1)
        body = body.replace(b'"cus-', b'"olp-')
        headers = sign(body, KEY_ID, SECRET, datetime.now(UTC))
        headers["Content-Type"] = "application/json"
        targets.append(vegeta.Target("POST", f"{url}/v1/events", headers, body))
    found = await vegeta.attack(targets, rate=rate, seconds=seconds)
    if found["failed"]:
        raise RuntimeError(f"{found['failed']:.0f} single POSTs failed")
    return found


async def mean_group_size(url: str) -> float:
    """Single-event requests per group-commit transaction, from /metrics."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    name = "arbor_ingest_single_event_group_size"
    return values[f"{name}_sum"] / max(values[f"{name}_count"], 1.0)


def _service_env(infra: Infra, port: int) -> dict[str, str]:
    issuer = LocalIssuer(REPO / ".local" / "bench-issuer")
    publisher = {"key_id": KEY_ID, "secret": SECRET, "scopes": ["events:write"]}
    return {
        "ARBOR_INGEST_DATABASE_URL": infra.database_url,
        "ARBOR_INGEST_DATABASE_SCHEMA": f"bench_ingest_{secrets.token_hex(3)}",
        "ARBOR_INGEST_KAFKA__BOOTSTRAP": infra.bootstrap,
        "ARBOR_INGEST_KAFKA__TOPIC_PREFIX": f"bench{secrets.token_hex(3)}",
        "ARBOR_INGEST_OIDC_ISSUER": ISSUER,
        "ARBOR_INGEST_OIDC_AUDIENCE": AUDIENCE,
        "ARBOR_INGEST_OIDC_JWKS_URL": issuer.jwks_url,
        "ARBOR_INGEST_HTTP_PORT": str(port),
        "ARBOR_INGEST_LOG_LEVEL": "WARNING",
        "ARBOR_INGEST_RATE_PER_SECOND": "100000",
        "ARBOR_INGEST_RATE_BURST": "100000",
        "ARBOR_INGEST_PUBLISHERS": json.dumps([publisher]),
    }


async def measure_service(
    infra: Infra, events: list[EventData], arguments: argparse.Namespace
) -> dict[str, object]:
    """Batch rate, relay drain and single-event latency of one ingest process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with service("arbor_ingest", _service_env(infra, port), HERE / "ingest.log"):
        await wait_ready(url)
        cpu = CpuMeter(
            server=server_pid("arbor_ingest"),
            postgres=await postmaster_pid(infra.database_url),
        )
        batch = await cpu.per_event(
            batch_rate(url, events, arguments.batch, arguments.concurrency)
        )
        print(
            f"batch endpoint: {batch['events_per_second']:,.0f} events/s durable; "
            f"CPU per event: server {batch['server_cpu_us']:.0f} us, "
            f"PostgreSQL {batch['postgres_cpu_us']:.0f} us"
        )
        drain = await cpu.per_event(outbox_drained(url, batch["accepted"]))
        single = await cpu.per_event(
            single_event_latency(url, arguments.rate, arguments.seconds)
        )
        single["mean_group_size"] = await mean_group_size(url)
        print(
            f"single POST at {arguments.rate}/s: {single['achieved_rps']:.0f}/s "
            f"achieved, p99 {single['p99_ms']:.1f} ms; server "
            f"{single['server_cpu_us']:.0f} us CPU per request, "
            f"{single['mean_group_size']:.1f} requests per transaction"
        )
        open_loop = await cpu.per_event(
            single_event_open_loop(url, arguments.rate, arguments.seconds)
        )
        print(
            f"single POST at {arguments.rate}/s, open loop (vegeta): "
            f"{open_loop['answered_rps']:.0f}/s answered, p50 "
            f"{open_loop['p50_ms']:.1f} ms, p99 {open_loop['p99_ms']:.1f} ms; server "
            f"{open_loop['server_cpu_us']:.0f} us CPU per request"
        )
    return {
        "batch": batch,
        "relay_drain": drain,
        "single_event": single,
        "single_event_open_loop": open_loop,
    }


async def main(arguments: argparse.Namespace) -> None:
    events = realistic_events(arguments.events)
    with infrastructure() as infra:
        raw = await raw_producer_rate(infra.bootstrap, events)
        print(
            f"raw producer: {raw['events_per_second']:,.0f} events/s, "
            f"{raw['cpu_us']:.0f} us CPU per event"
        )
        measured = await measure_service(infra, events, arguments)
    batch: Any = measured["batch"]
    results = {
        "events": len(events),
        "raw_producer": raw,
        **measured,
        "batch_share_of_raw": batch["events_per_second"] / raw["events_per_second"],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1_5_15_minutes": os.getloadavg(),
        "arguments": vars(arguments),
    }
    write_results(HERE, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
