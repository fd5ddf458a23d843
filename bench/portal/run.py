"""Load benchmark of the portal's invoice list against the service on loopback.

    uv run python bench/portal/run.py --customers 100000 --rate 500 --seconds 30

Seeds the portal's read model straight through SQL (``--customers`` customers with
``--invoices`` monthly invoices each, and an identity link per customer), starts
``python -m arbor_portal serve`` as a separate process with one worker, mints tokens
for a sample of customers and drives ``GET /v1/invoices`` three ways:

- **open loop at ``--rate``** with ``vegeta`` (``make install`` builds it with Go):
  requests start on a fixed schedule whatever the answers do, cycling through the
  customers' tokens, so the latencies are those of a server offered exactly that
  rate, queueing included: the figure the target is stated in;
- **paced** with ``wrk`` (apt package; ``invoices.lua`` picks a random customer per
  request): each connection pauses after every answer. wrk measures from send to
  answer, so a server that stalls also slows the senders, and the achieved rate in
  the RESULT line shows when that happened;
- **unpaced** with ``wrk``: the throughput ceiling.

Needs a broker and a PostgreSQL server (``ARBOR_TEST_KAFKA_BOOTSTRAP`` and
``ARBOR_TEST_DATABASE_URL``, as for the tests). The schema ``bench_portal`` is kept
between runs so the seed is paid once; ``--drop`` removes it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from arbor_portal.bootstrap import MIGRATIONS
from arbor_shared.db.migrations import upgrade_async
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer

# Run as a script (as bench/run_all.py does) the repository root is not on the path.
if str(Path(__file__).resolve().parents[2]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import vegeta
from bench.common import infrastructure

SCHEMA = "bench_portal"
PREFIX = "benchportal"


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(url: str, customers: int, invoices: int) -> None:
    """Fill the read model with SQL; skipped when it already has these customers."""
    await upgrade_async(MIGRATIONS, url, SCHEMA)
    connection = await asyncpg.connect(
        _dsn(url), server_settings={"search_path": SCHEMA}
    )
    try:
        have = await connection.fetchval("SELECT count(*) FROM identities")
        if have == customers:
            print(f"read model already seeded with {have} customers")
            return
        started = time.perf_counter()
        for table in ("identities", "customers", "invoices"):
            await connection.execute(f"TRUNCATE {table}")
        await connection.execute(_SEED_SQL, customers, invoices)
        await connection.execute("ANALYZE")
        rows = await connection.fetchval("SELECT count(*) FROM invoices")
        print(
            f"seeded {customers} customers, {rows} invoices "
            f"in {time.perf_counter() - started:.1f} s"
        )
    finally:
        await connection.close()


_SEED_SQL = """
WITH c AS (SELECT i FROM generate_series(1, $1::int) AS i),
ids AS (
    INSERT INTO identities (subject, customer_id, linked_at, linked_by)
    SELECT 'bench|' || i, 'cus-' || i, now(), 'bench' FROM c
),
profiles AS (
    INSERT INTO customers (customer_id, name, time_zone, currency, language,
                           preferred_channel, profile_at)
    SELECT 'cus-' || i, 'Customer ' || i, 'Europe/Paris', 'EUR', 'en', 'email', now()
    FROM c
)
INSERT INTO invoices (invoice_id, customer_id, number, currency, amount_minor,
                      issue_date, due_date, issued_at, lines, status, balance_minor,
                      paid_minor, settled_date, ledger_at)
SELECT 'inv-' || i || '-' || j, 'cus-' || i, i || '/' || j, 'EUR', 10000 + j,
       date '2025-01-01' + 30 * j, date '2025-01-31' + 30 * j, now(),
       '[{"description": "Plan", "quantity": 1, "unit_amount_minor": 10000,
          "amount_minor": 10000}]'::jsonb,
       CASE WHEN j < $2 - 1 THEN 'settled' ELSE 'open' END,
       CASE WHEN j < $2 - 1 THEN 0 ELSE 10000 + j END,
       CASE WHEN j < $2 - 1 THEN 10000 + j ELSE 0 END,
       CASE WHEN j < $2 - 1 THEN date '2025-01-25' + 30 * j END,
       now()
FROM c, generate_series(0, $2::int - 1) AS j
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_service(
    url: str, bootstrap: str, issuer: LocalIssuer, port: int, *, pool: int = 10
) -> subprocess.Popen[bytes]:
    prefix = "ARBOR_PORTAL_"
    env = os.environ | {
        f"{prefix}DATABASE_URL": url,
        f"{prefix}DATABASE_SCHEMA": SCHEMA,
        f"{prefix}DATABASE_POOL_SIZE": str(pool),
        f"{prefix}KAFKA__BOOTSTRAP": bootstrap,
        f"{prefix}KAFKA__TOPIC_PREFIX": PREFIX,
        f"{prefix}KAFKA__TOPIC_PARTITIONS": "1",
        f"{prefix}OIDC_ISSUER": ISSUER,
        f"{prefix}OIDC_AUDIENCE": AUDIENCE,
        f"{prefix}OIDC_JWKS_URL": issuer.jwks_url,
        f"{prefix}HTTP_PORT": str(port),
        f"{prefix}LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "arbor_portal", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
    )


async def wait_ready(
    client: httpx.AsyncClient, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the portal exited during start")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the portal did not start within 60 s")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu_per_second(pid: int, seconds: float = 5.0) -> float:
    """CPU seconds per second the server spends with no requests (consumers, relay)."""
    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def run_wrk(
    port: int,
    tokens_file: Path,
    *,
    connections: int,
    pause_ms: int,
    seconds: int,
    pid: int,
    idle: float = 0.0,
) -> str:
    """One wrk run; its RESULT line (see invoices.lua) and the server's CPU use."""
    before, started = cpu_seconds(pid), time.monotonic()
    env = os.environ | {"TOKENS_FILE": str(tokens_file), "PAUSE_MS": str(pause_ms)}
    completed = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(Path(__file__).with_name("invoices.lua")),
            f"http://127.0.0.1:{port}/v1/invoices",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result = next(
        line for line in completed.stdout.splitlines() if line.startswith("RESULT")
    )
    requests = max(1, int(result.split()[1].partition("=")[2]))
    used = cpu_seconds(pid) - before
    # CPU per request depends far less on what else the machine runs than latency
    # does, so it is the figure to project one worker's capacity from. The idle
    # share (polling consumers and relay) is also given apart, since at low rates
    # it weighs on every request.
    requests_only = used - idle * (time.monotonic() - started)
    return (
        f"{result} server_cpu_ms_per_request={1000 * used / requests:.2f} "
        f"net_of_idle={1000 * requests_only / requests:.2f}"
    )


async def run_open_loop(
    port: int, tokens: list[str], *, rate: float, seconds: int, pid: int, idle: float
) -> str:
    """Requests at a fixed ``rate`` for ``seconds`` (vegeta); a RESULT line as wrk's."""
    url = f"http://127.0.0.1:{port}/v1/invoices"
    targets = [
        vegeta.Target("GET", url, {"Authorization": f"Bearer {token}"})
        for token in tokens
    ]
    before, started = cpu_seconds(pid), time.monotonic()
    found = await vegeta.attack(targets, rate=rate, seconds=seconds)
    used = cpu_seconds(pid) - before
    requests_only = used - idle * (time.monotonic() - started)
    requests = max(1.0, found["count"])
    return (
        f"RESULT requests={requests:.0f} offered_rps={found['offered_rps']:.0f} "
        f"answered_rps={found['answered_rps']:.0f} p50_ms={found['p50_ms']:.1f} "
        f"p90_ms={found['p90_ms']:.1f} p99_ms={found['p99_ms']:.1f} "
        f"max_ms={found['max_ms']:.1f} non2xx={found['failed']:.0f} "
        f"server_cpu_ms_per_request={1000 * used / requests:.2f} "
        f"net_of_idle={1000 * requests_only / requests:.2f}"
    )


async def database_sessions(url: str) -> int:
    """Sessions the database server has started so far (PostgreSQL 14 or later)."""
    connection = await asyncpg.connect(_dsn(url))
    try:
        query = (
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        started: int = await connection.fetchval(query)
        return started
    finally:
        await connection.close()


async def _measured(
    url: str,
    port: int,
    tokens_file: Path,
    pid: int,
    idle: float,
    *,
    connections: int,
    pause_ms: int,
    seconds: int,
) -> None:
    before = await database_sessions(url)
    result = run_wrk(
        port,
        tokens_file,
        connections=connections,
        pause_ms=pause_ms,
        seconds=seconds,
        pid=pid,
        idle=idle,
    )
    # New sessions mean the pool overflowed: more requests were in flight than it
    # holds, and each extra connection costs milliseconds of CPU on both sides.
    opened = await database_sessions(url) - before
    print(f"{result} new_database_sessions={opened}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=12)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--sample", type=int, default=2_000, help="customers with tokens"
    )
    parser.add_argument("--connections", type=int, default=50, help="paced run")
    parser.add_argument("--workers", type=int, default=16, help="unpaced run")
    parser.add_argument("--pool", type=int, default=10, help="database pool size")
    parser.add_argument("--drop", action="store_true")
    arguments = parser.parse_args()
    url = os.environ.get("ARBOR_TEST_DATABASE_URL")
    bootstrap = os.environ.get("ARBOR_TEST_KAFKA_BOOTSTRAP")
    if url and bootstrap:
        await measure(arguments, url, bootstrap)
        return
    # Without a shared broker and server, a private pair for this run.
    with infrastructure() as infra:
        await measure(arguments, infra.database_url, infra.bootstrap)


async def measure(arguments: argparse.Namespace, url: str, bootstrap: str) -> None:
    """Seed, start the portal, then the paced and the unpaced runs."""
    await seed(url, arguments.customers, arguments.invoices)
    issuer = LocalIssuer(Path(tempfile.mkdtemp(prefix="portal-bench-")))
    chosen = random.sample(range(1, arguments.customers + 1), arguments.sample)
    tokens = [issuer.mint(f"bench|{i}") for i in chosen]
    tokens_file = issuer.folder / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    port = _free_port()
    process = start_service(url, bootstrap, issuer, port, pool=arguments.pool)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await wait_ready(client, process)
        pid = process.pid
        run_wrk(port, tokens_file, connections=10, pause_ms=0, seconds=5, pid=pid)
        idle = await idle_cpu_per_second(pid)
        print(f"idle server: {1000 * idle:.1f} ms of CPU per second")
        print(f"== open loop, {arguments.rate:.0f} requests/s (vegeta)")
        before = await database_sessions(url)
        result = await run_open_loop(
            port,
            tokens,
            rate=arguments.rate,
            seconds=arguments.seconds,
            pid=pid,
            idle=idle,
        )
        opened = await database_sessions(url) - before
        print(f"{result} new_database_sessions={opened}")
        # Paced: each connection waits ``pause`` after every answer, so the rate is
        # about connections / (pause + latency); the RESULT line gives the real one.
        pause = max(0, int(arguments.connections * 1000 / arguments.rate) - 5)
        target = f"target {arguments.rate:.0f}/s"
        print(f"== paced, {arguments.connections} connections, {target}")
        paced = {"connections": arguments.connections, "pause_ms": pause}
        seconds = arguments.seconds
        await _measured(url, port, tokens_file, pid, idle, seconds=seconds, **paced)
        print(f"== unpaced, {arguments.workers} connections: the throughput ceiling")
        unpaced = {"connections": arguments.workers, "pause_ms": 0}
        await _measured(url, port, tokens_file, pid, idle, seconds=15, **unpaced)
    finally:
        process.terminate()
        process.wait(timeout=40)
        if arguments.drop:
            connection = await asyncpg.connect(_dsn(url))
            await connection.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
            await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
