"""Run every benchmark under bench/ one after another, on one broker and database.

    uv run python bench/run_all.py            # quick sizes, a few minutes
    uv run python bench/run_all.py --full     # the sizes the targets are stated at

Each benchmark writes its own ``results.json`` beside its script; the figures and
how to read them are in that folder's README and in ``bench/README.md``. The
benchmarks run in sequence because they measure a two-core machine: two at once
would each measure the other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.infra import start_kafka, start_postgres  # noqa: E402

QUICK: dict[str, list[str]] = {
    "ingest": ["-m", "bench.ingest.run", "--events", "20000", "--seconds", "10"],
    "segmentation": ["-m", "bench.segmentation.throughput", "2000", "4"],
    "late-payment model": ["-m", "bench.segmentation.evaluate_ibm"],
    "dunning": ["bench/dunning/run.py", "--invoices", "200"],
    "metrics": ["bench/metrics/run.py", "--events", "50000"],
    "portal": ["bench/portal/run.py", "--customers", "10000", "--seconds", "10"],
}

FULL: dict[str, list[str]] = QUICK | {
    "ingest": ["-m", "bench.ingest.run"],
    "segmentation": ["-m", "bench.segmentation.throughput", "100000", "2"],
    "dunning": ["bench/dunning/run.py", "--invoices", "1000"],
    "metrics": ["bench/metrics/run.py"],
    "portal": ["bench/portal/run.py", "--drop"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the targets' sizes")
    parser.add_argument("only", nargs="*", help="names of the benchmarks to run")
    options = parser.parse_args()
    plan = FULL if options.full else QUICK
    unknown = set(options.only) - set(plan)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; known: {sorted(plan)}")
    chosen = {name: plan[name] for name in options.only or plan}

    with tempfile.TemporaryDirectory(prefix="arbor-bench-") as state:
        kafka = start_kafka(Path(state) / "kafka")
        postgres = start_postgres(Path(state) / "postgres")
        try:
            env = os.environ | _infra_env(kafka.bootstrap, postgres.url)
            failed = [
                name for name, args in chosen.items() if not _run(name, args, env)
            ]
        finally:
            kafka.stop()
            postgres.stop()
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def _infra_env(bootstrap: str, database_url: str) -> dict[str, str]:
    # The scripts grew up reading either the test suite's variables or their own.
    return {
        "ARBOR_TEST_KAFKA_BOOTSTRAP": bootstrap,
        "ARBOR_TEST_DATABASE_URL": database_url,
        "ARBOR_BENCH_KAFKA": bootstrap,
        "ARBOR_BENCH_DATABASE_URL": database_url,
    }


def _run(name: str, args: list[str], env: dict[str, str]) -> bool:
    print(f"== {name}: python {' '.join(args)}", flush=True)
    started = time.monotonic()
    finished = subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=False)
    took = time.monotonic() - started
    print(f"== {name}: exit {finished.returncode} after {took:.0f} s", flush=True)
    return finished.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
