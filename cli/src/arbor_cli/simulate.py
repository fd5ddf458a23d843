"""``arbor simulate``: publish a simulated company through ingest."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import date
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.status import Status

from arbor_cli.dead_letters import Bootstrap, Prefix
from arbor_cli.feed_gate import FeedGate, services_gate
from arbor_cli.publisher import IngestPublisher, PublishStats
from arbor_cli.simulator import Simulation

console = Console()


def simulate(
    customers: Annotated[int, typer.Option(min=1, max=1_000_000)] = 2_000,
    months: Annotated[int, typer.Option(min=1, max=120)] = 12,
    start: Annotated[str, typer.Option(help="first simulated day")] = "2025-01-01",
    seed: Annotated[int, typer.Option(help="same seed, same company")] = 7,
    speed: Annotated[
        float, typer.Option(help="simulated seconds per real second; 0 = flat out")
    ] = 0.0,
    max_backlog: Annotated[
        int,
        typer.Option(
            min=0,
            help="before each clock step, wait until the services are at most this "
            "many records behind (read from --bootstrap); 0 = do not wait",
        ),
    ] = 0,
    url: Annotated[str, typer.Option(help="ingest base URL")] = "http://127.0.0.1:8001",
    key_id: Annotated[str, typer.Option(envvar="ARBOR_KEY_ID")] = "demo-simulator",
    secret: Annotated[
        str, typer.Option(envvar="ARBOR_SECRET", help="publisher secret")
    ] = "",
    bootstrap: Bootstrap = "127.0.0.1:9092",
    prefix: Prefix = "",
) -> None:
    """Generate customers with payment habits and publish their billing history."""
    if not secret:
        raise typer.BadParameter("pass --secret or set ARBOR_SECRET")
    simulation = Simulation(
        seed=seed, customers=customers, start=date.fromisoformat(start), months=months
    )
    gate = None
    if max_backlog:
        gate = services_gate(
            bootstrap=bootstrap, ingest_url=url, limit=max_backlog, topic_prefix=prefix
        )

    async def run() -> None:
        async with (
            httpx.AsyncClient(base_url=url, timeout=60) as client,
            gate or contextlib.nullcontext(),
        ):
            publisher = IngestPublisher(client, key_id=key_id, secret=secret)
            with console.status("publishing...") as status:
                task = asyncio.create_task(
                    publisher.publish(
                        simulation.events(), speed=speed or None, gate=gate
                    )
                )
                await _show_progress(task, publisher.stats, gate, status)
                stats = await task
        console.print(
            f"{stats.accepted:,} accepted, {stats.duplicate:,} already known, "
            f"{len(stats.rejected)} rejected"
        )
        if stats.rejected:
            raise typer.Exit(1)

    asyncio.run(run())


async def _show_progress(
    task: asyncio.Task[PublishStats],
    stats: PublishStats,
    gate: FeedGate | None,
    status: Status,
) -> None:
    while not task.done():
        line = (
            f"{stats.sent:,} events, {stats.rate():,.0f}/s, "
            f"simulated {stats.simulated_now or '-'}"
        )
        if gate is not None:
            line += f"; {gate.status.summary(time.monotonic())}"
        status.update(line)
        await asyncio.sleep(0.5)
