"""``arbor dead-letters``: review what consumers refused, and send it back."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from arbor_shared.kafka.dead_letters import (
    DeadLetterRecord,
    read_dead_letters,
    redrive,
)
from arbor_shared.settings import KafkaSettings
from arbor_shared.topics import ALL, TopicNames, dead_letter_topic

app = typer.Typer(help="Review and redrive dead letters.", no_args_is_help=True)
console = Console()

Bootstrap = Annotated[
    str, typer.Option(envvar="ARBOR_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers")
]
Prefix = Annotated[str, typer.Option(help="topic namespace, if the system uses one")]
Topic = Annotated[
    str | None,
    typer.Argument(help=f"a source topic such as {ALL[1]}; all of them if omitted"),
]


def _topics(topic: str | None, prefix: str) -> list[str]:
    names = TopicNames(prefix)
    bases = [topic] if topic else list(ALL)
    unknown = [t for t in bases if t not in ALL]
    if unknown:
        raise typer.BadParameter(f"unknown topic {unknown[0]}; known: {', '.join(ALL)}")
    return [names(dead_letter_topic(base)) for base in bases]


async def _collect(
    settings: KafkaSettings, topics: list[str]
) -> list[DeadLetterRecord]:
    letters: list[DeadLetterRecord] = []
    for topic in topics:
        letters.extend(await read_dead_letters(settings, topic))
    return letters


@app.command("list")
def list_(
    topic: Topic = None, bootstrap: Bootstrap = "127.0.0.1:9092", prefix: Prefix = ""
) -> None:
    """List dead letters with the consumer that refused them and why."""
    settings = KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix)
    letters = asyncio.run(_collect(settings, _topics(topic, prefix)))
    table = Table("dlq", "offset", "type", "consumer", "reason", "error", "source")
    for letter in letters:
        table.add_row(
            letter.topic,
            f"{letter.partition}:{letter.offset}",
            letter.event_type,
            letter.consumer,
            letter.reason,
            letter.error[:80],
            letter.source,
        )
    console.print(table)
    console.print(f"{len(letters)} dead letters")


@app.command("redrive")
def redrive_(
    topic: Annotated[
        str, typer.Argument(help="the source topic, e.g. billing.ledger.v1")
    ],
    offsets: Annotated[
        list[str] | None,
        typer.Option("--offset", help="partition:offset to redrive (repeatable)"),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="redrive every letter")] = False,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    prefix: Prefix = "",
) -> None:
    """Send dead letters back to their consumer, after the cause was fixed."""
    if not offsets and not every:
        raise typer.BadParameter("name letters with --offset P:O, or pass --all")
    settings = KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix)
    letters = asyncio.run(_collect(settings, _topics(topic, prefix)))
    chosen = [
        letter
        for letter in letters
        if every or f"{letter.partition}:{letter.offset}" in set(offsets or ())
    ]
    if not chosen:
        console.print("[yellow]nothing matched; nothing was sent[/yellow]")
        raise typer.Exit(1)
    sent = asyncio.run(redrive(settings, chosen))
    console.print(f"redriven {sent} letters to {topic}, each for its own consumer")
