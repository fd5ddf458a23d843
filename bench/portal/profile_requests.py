"""Where the CPU of one invoice-list request goes, measured inside the process.

    uv run python -m bench.portal.profile_requests [--cprofile out.prof] [--asyncio]

Runs the portal application in this process against the schema that ``run.py``
seeded and calls it straight through ASGI, one request at a time: no HTTP server,
no client library, so the figures are the application's own (authentication,
dependencies, rate limit, SQL, serialisation). It prints the CPU milliseconds per
request, with and without warm token caches, and optionally writes a cProfile dump
(``python -m pstats`` or snakeviz read it). Needs the same environment as ``run.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import statistics
import tempfile
import time
from argparse import Namespace
from collections.abc import Sequence
from pathlib import Path

import uvloop
from starlette.types import ASGIApp, Message

from arbor_portal.bootstrap import create_server_app
from arbor_portal.config import PortalSettings
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer
from arbor_shared.settings import KafkaSettings
from arbor_shared.telemetry import configure_tracing
from bench.portal.run import PREFIX, SCHEMA, seed

PATH = "/v1/invoices"


def _settings(url: str, bootstrap: str, issuer: LocalIssuer) -> PortalSettings:
    return PortalSettings(
        database_url=url,
        database_schema=SCHEMA,
        kafka=KafkaSettings(bootstrap=bootstrap, topic_prefix=PREFIX),
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=issuer.jwks_url,
        http_port=1,
        consumers_enabled=False,
        log_level="WARNING",
    )


async def call(app: ASGIApp, token: str) -> int:
    """One GET through the whole ASGI stack; returns the status code."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", b"Bearer " + token.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8005),
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(app: ASGIApp, tokens: Sequence[str]) -> float:
    """CPU milliseconds per request, one request per token in ``tokens``."""
    started = time.process_time()
    for token in tokens:
        status = await call(app, token)
        if status != 200:
            raise SystemExit(f"GET {PATH} answered {status}")
    return 1000 * (time.process_time() - started) / len(tokens)


async def profile(app: ASGIApp, tokens: list[str], arguments: Namespace) -> None:
    """Print the cold and warm CPU cost; the warm runs are the ones profiled."""
    await measure(app, tokens[:50])
    cold = await measure(app, tokens[50:])
    print(f"first use of each token: {cold:.3f} CPU ms/request")
    profiler = cProfile.Profile(time.process_time) if arguments.cprofile else None
    if profiler is not None:
        profiler.enable()
    # Other work on a shared host inflates CPU time too (caches, frequency), so the
    # least of several rounds is the figure closest to the request's own cost.
    rounds = [
        await measure(app, random.choices(tokens, k=arguments.requests))
        for _ in range(arguments.rounds)
    ]
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(arguments.cprofile)
    print(
        f"tokens seen before:      {min(rounds):.3f} CPU ms/request "
        f"(median {statistics.median(rounds):.3f} of {len(rounds)} rounds "
        f"of {arguments.requests})"
    )


def _arguments() -> Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=12)
    parser.add_argument("--requests", type=int, default=1_000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--cprofile", type=Path, help="write a cProfile dump here")
    parser.add_argument(
        "--asyncio", action="store_true", help="asyncio's own loop, not uvloop"
    )
    return parser.parse_args()


async def main(arguments: Namespace) -> None:
    url = os.environ["ARBOR_TEST_DATABASE_URL"]
    bootstrap = os.environ["ARBOR_TEST_KAFKA_BOOTSTRAP"]

    await seed(url, arguments.customers, arguments.invoices)
    issuer = LocalIssuer(Path(tempfile.mkdtemp(prefix="portal-profile-")))
    chosen = random.sample(range(1, arguments.customers + 1), arguments.sample)
    tokens = [issuer.mint(f"bench|{i}") for i in chosen]
    # The limiter still runs on every request; only its limit is out of the way.
    settings = _settings(url, bootstrap, issuer).model_copy(
        update={"rate_limit_per_second": 1e6, "rate_limit_burst": 1_000_000}
    )
    # As ``serve`` does: spans are recorded (and dropped, with no exporter).
    configure_tracing("portal-api", None)
    app = create_server_app(settings)
    async with app.router.lifespan_context(app):
        await profile(app, tokens, arguments)


if __name__ == "__main__":
    options = _arguments()
    # The server runs on uvloop (uvicorn's choice when it is installed), so the
    # profile does too unless asked otherwise.
    (asyncio.run if options.asyncio else uvloop.run)(main(options))
