"""Benchmark: a payment entering ingest → its invoice's pending steps cancelled.

    uv run python bench/dunning/run.py --seconds 20 --rate 50 --rate 200
    uv run python bench/dunning/run.py --path ledger --invoices 400 --rate 25

``--path ingest`` (the default) POSTs a signed ``PaymentReceived`` per invoice to
ingest's ``/v1/events`` and times it until dunning's cancelling transaction commits,
with both services as real processes (``through_ingest``). ``--path ledger`` times
only dunning's share, from an ``InvoiceSettled`` handed to Kafka (``ledger_mode``).
Each ``--rate`` is one run with its own topic prefix, schemas and service processes.

Uses the broker and database in ``ARBOR_BENCH_KAFKA`` / ``ARBOR_BENCH_DATABASE_URL``
or starts private ones. Prints the figures and writes them to ``results.json``;
exits 1 when a payment's cancellation was never seen. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import uvloop

HERE = Path(__file__).resolve().parent
# Run as a script (as bench/run_all.py does) the repository root is not on the path.
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))

from bench.common import Infra, infrastructure  # noqa: E402
from bench.dunning import ledger_mode, publisher, through_ingest  # noqa: E402


async def _one(
    infra: Infra, arguments: argparse.Namespace, rate: float
) -> dict[str, object]:
    logs = HERE / "logs" / f"{arguments.path}-{rate:g}"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    invoices = round(rate * arguments.seconds) if arguments.seconds else None
    invoices = invoices or arguments.invoices
    if arguments.path == "ingest":
        warmup = round(rate * arguments.warmup_seconds)
        load = publisher.Load(invoices, rate, warmup, arguments.max_poll_records)
        return await through_ingest.run(infra, load, logs)
    with tempfile.TemporaryDirectory(prefix="arbor-bench-") as folder:
        return await ledger_mode.run(
            infra, invoices, rate, arguments.max_poll_records, Path(folder)
        )


async def _all(infra: Infra, arguments: argparse.Namespace) -> list[dict[str, object]]:
    runs = []
    for rate in arguments.rate or [50.0]:
        result = await _one(infra, arguments, rate)
        print(json.dumps(result, indent=2), flush=True)
        runs.append(result)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=["ingest", "ledger"], default="ingest")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--invoices", type=int, default=1000, help="timed, per run")
    size.add_argument("--seconds", type=float, help="or: rate * seconds invoices")
    parser.add_argument(
        "--rate", type=float, action="append", help="payments per s; repeatable"
    )
    parser.add_argument("--max-poll-records", type=int, default=500)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=3.0,
        help="payments at the same rate before the timed ones (ingest path only)",
    )
    arguments = parser.parse_args()
    started = datetime.now(UTC)
    with infrastructure() as infra:
        # uvloop, as the services run on: the load generator must stay light on
        # two shared cores, and NOTIFY arrivals are timed on this loop.
        runs = uvloop.run(_all(infra, arguments))
    results = {
        "measured_at": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv[1:]),
        "runs": runs,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["complete"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
