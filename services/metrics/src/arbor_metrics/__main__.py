"""``python -m arbor_metrics serve|migrate|rebuild``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from arbor_metrics.bootstrap import MIGRATIONS, SERVICE, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared.cli import service_cli
from arbor_shared.logging import configure_logging


def _rebuild(argv: list[str]) -> int:
    from arbor_metrics.entrypoints.rebuild import digest_of, rebuild

    parser = argparse.ArgumentParser(prog=f"arbor-{SERVICE} rebuild")
    parser.add_argument(
        "--schema",
        help="fresh schema to rebuild into (dropped first); "
        "default: <database_schema>_rebuild",
    )
    parser.add_argument(
        "--via-consumer-loop",
        action="store_true",
        help="replay through the live consumer loop (inbox, spans) instead of in bulk",
    )
    arguments = parser.parse_args(argv)
    settings = MetricsSettings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    schema = arguments.schema or f"{settings.database_schema}_rebuild"
    if schema == settings.database_schema:
        parser.error("the rebuild schema must differ from the live one")
    report = asyncio.run(
        rebuild(settings, schema=schema, via_loop=arguments.via_consumer_loop)
    )
    live = asyncio.run(digest_of(settings))
    identical = live == report.digest
    print(
        json.dumps(
            {
                "schema": report.schema,
                "records": report.records,
                "seconds": round(report.seconds, 3),
                "digest_seconds": round(report.digest_seconds, 3),
                "rebuilt": report.digest,
                "live": live,
                "identical": identical,
            },
            indent=2,
        )
    )
    return 0 if identical else 1


if len(sys.argv) > 1 and sys.argv[1] == "rebuild":
    sys.exit(_rebuild(sys.argv[2:]))
service_cli(SERVICE, MetricsSettings, create_app, MIGRATIONS)
