"""``make run``: Kafka, PostgreSQL and the five services under one supervisor.

Log lines are prefixed with the service name; a realistic dataset is fed through
ingest as an internal system would; KPIs per cohort are printed as they move. Ctrl-C
stops everything cleanly, in reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import prometheus
from sinks import Sinks

from arbor_cli.demo import INGEST, ensure_publisher_keys, feed, report
from arbor_cli.feed_gate import FeedGate, services_gate
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".local"
COLOURS = ("\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m")
RESET = "\033[0m"
_log_pipes: set[asyncio.Task[None]] = set()
SINKS = Sinks(STATE / "delivered")
PROMETHEUS_PORT = int(os.environ.get("ARBOR_RUN_PROMETHEUS_PORT", "9090"))
# As kafka.sh reads ARBOR_KAFKA_DIR: another state dir keeps the run off a cluster
# that the tests or another run already use.
POSTGRES = Path(os.environ.get("ARBOR_PG_DIR", str(STATE / "postgres")))


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    prefix: str
    port: int


SERVICES = (
    Service("ingest", "arbor_ingest", "ARBOR_INGEST_", 8001),
    Service("segmentation", "arbor_segmentation", "ARBOR_SEGMENTATION_", 8002),
    Service("dunning", "arbor_dunning", "ARBOR_DUNNING_", 8003),
    Service("metrics", "arbor_metrics", "ARBOR_METRICS_", 8004),
    Service("portal-api", "arbor_portal", "ARBOR_PORTAL_", 8005),
)


def start_infrastructure() -> tuple[str, str]:
    """Start (or reuse) the local broker and database; return their addresses."""
    kafka = _script("kafka.sh", "start")
    postgres = _script("postgres.sh", "start", env={"ARBOR_PG_DIR": str(POSTGRES)})
    return kafka, postgres


def _script(name: str, command: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "local" / name), command],
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"{name} {command} failed:\n{done.stdout}{done.stderr}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def service_env(
    service: Service, kafka: str, database: str, issuer: LocalIssuer
) -> dict[str, str]:
    """The environment one service runs with under ``make run``."""
    p = service.prefix
    return {
        f"{p}DATABASE_URL": database,
        f"{p}DATABASE_SCHEMA": service.name.replace("-", "_"),
        f"{p}KAFKA__BOOTSTRAP": kafka,
        f"{p}OIDC_ISSUER": ISSUER,
        f"{p}OIDC_AUDIENCE": AUDIENCE,
        f"{p}OIDC_JWKS_URL": issuer.jwks_url,
        f"{p}HTTP_PORT": str(service.port),
        f"{p}LOG_FORMAT": "console",
        f"{p}LOG_LEVEL": os.environ.get("ARBOR_RUN_LOG_LEVEL", "WARNING"),
        f"{p}CLOCK": os.environ.get("ARBOR_RUN_CLOCK", "event"),
        **_extra_env(service),
    }


def _extra_env(service: Service) -> dict[str, str]:
    if service.name == "ingest":
        return {"ARBOR_INGEST_PUBLISHERS": ensure_publisher_keys()}
    if service.name == "dunning":
        return {
            "ARBOR_DUNNING_SMTP_HOST": "127.0.0.1",
            "ARBOR_DUNNING_SMTP_PORT": str(SINKS.smtp_port),
            "ARBOR_DUNNING_MAIL_FROM": "collections@arbor.local",
            "ARBOR_DUNNING_WEBHOOK_URL": f"http://127.0.0.1:{SINKS.webhook_port}/send",
            "ARBOR_DUNNING_WEBHOOK_SECRET": "local-only-webhook-secret",
        }
    return {}


async def pipe_logs(name: str, colour: str, stream: asyncio.StreamReader) -> None:
    """Copy a child's output to ours, each line prefixed with its name."""
    prefix = f"{colour}{name:>13} |{RESET} "
    while line := await stream.readline():
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


async def start_service(
    service: Service, env: dict[str, str], colour: str
) -> asyncio.subprocess.Process:
    """Migrate the service's schema, then start it with its logs piped."""
    full_env = os.environ | env
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", service.module, "migrate", env=full_env
    )
    if await migrate.wait() != 0:
        sys.exit(f"{service.name}: migrations failed")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        service.module,
        "serve",
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Out of the terminal's process group: Ctrl-C reaches only the supervisor,
        # which stops the services one by one with SIGTERM, as a cluster would.
        start_new_session=True,
    )
    assert process.stdout is not None
    _log_pipes.add(asyncio.create_task(pipe_logs(service.name, colour, process.stdout)))
    return process


READY_SECONDS = 120.0
# Dunning, the slowest consumer, has a few hundred records per simulated day; much
# further behind, it finds steps already overdue and cancels them as missed.
DEFAULT_MAX_BACKLOG = 500


async def wait_ready(service: Service) -> None:
    """Poll /readyz until the service answers 200."""
    url = f"http://127.0.0.1:{service.port}/readyz"
    deadline = asyncio.get_running_loop().time() + READY_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.5)
    sys.exit(f"{service.name} did not become ready within {READY_SECONDS:.0f} s")


async def stop_all(processes: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM in reverse start order and wait for each graceful shutdown."""
    for process in reversed(processes):
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in reversed(processes):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 40)
        if process.returncode is None:
            process.kill()


async def supervise(arguments: argparse.Namespace) -> None:
    kafka, database = start_infrastructure()
    SINKS.start()
    issuer = LocalIssuer(STATE / "issuer")
    processes: list[asyncio.subprocess.Process] = []
    scraper: subprocess.Popen[bytes] | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for service, colour in zip(SERVICES, COLOURS, strict=False):
            env = service_env(service, kafka, database, issuer)
            processes.append(await start_service(service, env, colour))
        await asyncio.gather(*(wait_ready(s) for s in SERVICES))
        scraper = prometheus.start(
            STATE / "prometheus", {s.name: s.port for s in SERVICES}, PROMETHEUS_PORT
        )
        print_banner(kafka, database, issuer, with_prometheus=scraper is not None)
        feeder = asyncio.create_task(
            feed_and_report(arguments, issuer, stop, _gate(kafka, arguments))
        )
        await stop.wait()
        feeder.cancel()
    finally:
        sys.stdout.write("\nstopping the services...\n")
        await stop_all(processes)
        if scraper is not None:
            scraper.terminate()
            scraper.wait(30)
        SINKS.stop()
        if not arguments.keep_infra:
            _script("kafka.sh", "stop")
            _script("postgres.sh", "stop", env={"ARBOR_PG_DIR": str(POSTGRES)})


def print_banner(
    kafka: str, database: str, issuer: LocalIssuer, *, with_prometheus: bool
) -> None:
    token = issuer.mint("operator@local", roles=("operator",))
    scraping = (
        f"http://127.0.0.1:{PROMETHEUS_PORT}/graph  (alert rules loaded; try "
        "arbor_metrics_on_time_rate_ratio)"
        if with_prometheus
        else "not installed (apt-get install prometheus)"
    )
    lines = [
        "",
        "Arbor is running.",
        *(
            f"  {s.name:<13} http://127.0.0.1:{s.port}/docs   metrics: /metrics"
            for s in SERVICES
        ),
        f"  Kafka         {kafka}",
        f"  PostgreSQL    {database}",
        f"  Prometheus    {scraping}",
        "  KPIs (JSON)   http://127.0.0.1:8004/v1/kpis  (operator token below)",
        f"  operator token (12 h): {token[:24]}... (full: .local/operator.token)",
        "  Ctrl-C stops everything.",
        "",
    ]
    (STATE / "operator.token").write_text(token)
    sys.stdout.write("\n".join(lines) + "\n")


def _gate(kafka: str, arguments: argparse.Namespace) -> FeedGate | None:
    if arguments.max_backlog <= 0:
        return None
    return services_gate(
        bootstrap=kafka, ingest_url=INGEST, limit=arguments.max_backlog
    )


async def feed_and_report(
    arguments: argparse.Namespace,
    issuer: LocalIssuer,
    stop: asyncio.Event,
    gate: FeedGate | None,
) -> None:
    """Feed the chosen dataset through ingest while printing KPIs, until stopped."""
    feeding = asyncio.create_task(
        feed(arguments.dataset, issuer, speed=arguments.speed, gate=gate)
    )
    while not stop.is_set():
        await report(issuer)
        sys.stdout.write(
            f"reminders delivered: {SINKS.received_mail} e-mails "
            f"(.local/delivered/mail), {SINKS.received_webhooks} SMS/letters\n"
        )
        if gate is not None:
            sys.stdout.write(gate.status.summary(time.monotonic()) + "\n")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), arguments.report_every)
    feeding.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dataset",
        choices=("simulated", "ibm"),
        default="simulated",
        help="a simulated company (default) or the IBM accounts-receivable sample",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=86_400.0,
        help="simulated seconds per real second, at most",
    )
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=DEFAULT_MAX_BACKLOG,
        help="before each clock step, wait until the services are at most this many "
        "records behind (0: pace by --speed alone)",
    )
    parser.add_argument("--report-every", type=float, default=10.0)
    parser.add_argument(
        "--keep-infra",
        action="store_true",
        help="leave Kafka and PostgreSQL running on exit",
    )
    # Line by line even into a pipe or a file (`make run | tee run.log`).
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    asyncio.run(supervise(parser.parse_args()))


if __name__ == "__main__":
    main()
