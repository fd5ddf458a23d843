"""The command line every service shares: ``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from arbor_shared.db.migrations import upgrade
from arbor_shared.logging import configure_logging
from arbor_shared.settings import ServiceSettings
from arbor_shared.telemetry import configure_tracing

S = TypeVar("S", bound=ServiceSettings)

# Long enough to finish the batch in flight and leave the consumer group cleanly;
# Kubernetes' terminationGracePeriodSeconds must be larger.
GRACEFUL_SHUTDOWN_SECONDS = 30


def service_cli(
    service: str,
    settings_type: type[S],
    create_app: Callable[[S], FastAPI],
    migrations: str,
) -> None:
    """Parse the command line and run the service or its migrations."""
    parser = argparse.ArgumentParser(prog=f"arbor-{service}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP API, consumers and relay")
    commands.add_parser("migrate", help="upgrade the service's schema to the newest")
    arguments = parser.parse_args()

    settings = settings_type()
    configure_logging(service, level=settings.log_level, fmt=settings.log_format)
    if arguments.command == "migrate":
        upgrade(
            migrations,
            settings.database_url.get_secret_value(),
            settings.database_schema,
        )
        return
    configure_tracing(service, settings.otlp_endpoint)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        access_log=False,
    )
